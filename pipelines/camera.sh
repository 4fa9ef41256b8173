#!/usr/bin/env bash
# camera.sh — classify a V4L2 camera live while showing it in a window.
#
# Shows: a live pipeline. With a live source the inference element runs in a worker with a
# bounded queue (mode=auto resolves to async): frames keep flowing to the display at the camera's
# rate and, when the model is slower than the camera, clips are dropped (drop=oldest) and
# counted in the clips-dropped field of its stats property. Results are printed here, from the
# bus; display.sh draws them on the video with vidclsoverlay. To print them from the buffers'
# GstVidclsClassificationMeta instead, run the same description under vidcls-meta-reader
# --sink display.
#
# Needs: gst-launch-1.0; a camera at DEVICE (default /dev/video0) and gstreamer1.0-plugins-good
# (v4l2src); plugins-base (decodebin, videoconvert; decodebin also takes MJPEG cameras with a
# JPEG decoder from plugins-good); a display for autovideosink; the vidcls plugin installed, or
# GST_PLUGIN_PATH=<build>/gst-plugins.
#
# Usage: camera.sh MODEL [DEVICE]     (Ctrl-C stops; the clip in progress is still reported)
#   A ResNet + Temporal ViT checkpoint: INFER=resnetvitinfer camera.sh MODEL
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification ones, without its
# prefix. The filter ignores Ctrl-C so that the results of the end of stream that gst-launch-1.0
# -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 MODEL [DEVICE]" >&2
  exit 2
fi
model=$1
device=${2:-/dev/video0}
infer=${INFER:-vividinfer}

gst-launch-1.0 -e -m \
  v4l2src device="$device" ! decodebin ! videoconvert \
  ! vidclsclipper ! "$infer" model="$model" \
  ! videoconvert ! autovideosink name=display \
  | { trap '' INT; sed -u -n "$filter" || true; }
