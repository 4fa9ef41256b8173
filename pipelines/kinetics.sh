#!/usr/bin/env bash
# kinetics.sh — label a camera, a file or an RTSP stream with a published Kinetics-400 classifier,
# its top-5 labels drawn on the video.
#
# Shows: a model nobody trained here (torchvision's MViT, Swin3D, R(2+1)D, S3D; Hugging Face's
# ViViT, VideoMAE) running in vidclsinfer with the publisher's own clip spec, which the clipper
# takes from the checkpoint: frames, frame rate, resize, crop, normalisation. MODEL is a vidcls
# checkpoint, or the file as downloaded from the publisher (docs/kinetics.md lists them), which
# is imported once with vidcls-import into VIDCLS_CACHE (default ~/.cache/vidcls). Inference runs
# with mode=async: the video plays at its own rate and, when the model is slower (every published
# model is, on a CPU: docs/benchmarks.md), clips are dropped and the last result stays drawn.
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (decodebin, uridecodebin, videoconvert), the
# source's elements (plugins-good: v4l2src, rtspsrc) and decoders; a display for autovideosink;
# the vidcls plugins (libgstvidcls, libgstvidclsresults) and tools installed, or
# GST_PLUGIN_PATH=<build>/gst-plugins and PATH=<build>/models:$PATH.
#
# Usage: kinetics.sh MODEL [SOURCE]
#   SOURCE: /dev/videoN (default /dev/video0), rtsp://..., another URI, or a file.
#   SINK="..." another sink (word-split: a sink with its properties), e.g. SINK=fakesink.
#   MODE=sync classifies every clip, holding the video (a file at the model's speed).
set -euo pipefail

filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 MODEL [SOURCE]" >&2
  exit 2
fi
model=$1
source=${2:-/dev/video0}
read -r -a sink <<< "${SINK:-autovideosink}"

for tool in vidcls-info vidcls-import; do
  if ! command -v "$tool" > /dev/null; then
    echo "$0: $tool not found: install vidcls, or put <build>/models on PATH" >&2
    exit 2
  fi
done

# A publisher's file (not a vidcls checkpoint): import it once.
if ! vidcls-info "$model" > /dev/null 2>&1; then
  cache=${VIDCLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vidcls}
  mkdir -p "$cache"
  imported="$cache/$(basename "${model%.*}").safetensors"
  if [ ! -s "$imported" ] || [ "$model" -nt "$imported" ]; then
    vidcls-import "$model" -o "$imported"
  fi
  model=$imported
fi

case "$source" in
  /dev/video*) src=(v4l2src device="$source" '!' decodebin) ;;
  *://*) src=(uridecodebin uri="$source") ;;
  *) src=(filesrc location="$source" '!' decodebin) ;;
esac

gst-launch-1.0 -e -m \
  "${src[@]}" ! videoconvert \
  ! vidclsclipper ! vidclsinfer model="$model" top-k=5 mode="${MODE:-async}" \
  ! vidclsoverlay ! videoconvert ! "${sink[@]}" \
  | { trap '' INT; sed -u -n "$filter" || true; }
