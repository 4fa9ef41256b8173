#!/usr/bin/env bash
# snapshot.sh — classify a video and save one of its frames, with the labels drawn on it, as PNG.
#
# Shows: vidclsoverlay drawing into the frames (nothing downstream draws overlay compositions,
# so it blends the text in) before pngenc; vidclsaction between the model and the overlay, when
# the plugin has it, so the open actions are drawn under the labels. The model sees the video as
# it is; WIDTH scales only what is drawn on and saved.
#
# docs/overlay.png (in docs/elements.md) was made with
#   WIDTH=384 pipelines/snapshot.sh demo/unseen/a01_s01_e01_rgb.avi \
#       demo/run/best.safetensors docs/overlay.png 40
# (demo/: scripts/demo.sh's unseen videos and trained vivit-xs).
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (decodebin, videoconvert, videoscale),
# gstreamer1.0-plugins-good (pngenc, multifilesink) and the file's decoders; the vidcls plugins
# (libgstvidcls, libgstvidclsresults) installed, or GST_PLUGIN_PATH=<build>/gst-plugins.
#
# Usage: snapshot.sh VIDEO MODEL OUT.png [FRAME]
#   FRAME  index of the frame to save, from 0 (default: the last one)
#   INFER=resnetvitinfer for a ResNet + Temporal ViT checkpoint
#   WIDTH=384 to scale the frames to that width (height keeps the aspect ratio)
#   OVERLAY="position=bottom-left font-size=24": vidclsoverlay's properties
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 VIDEO MODEL OUT.png [FRAME]" >&2
  exit 2
fi
video=$1
model=$2
out=$3
frame=${4:-}
infer=${INFER:-vividinfer}
read -r -a overlay <<< "${OVERLAY:-}"   # word-split on purpose: property=value ...

scale=()
if [ -n "${WIDTH:-}" ]; then
  scale=(videoscale ! "video/x-raw,width=$WIDTH,pixel-aspect-ratio=1/1" !)
fi
action=()
if gst-inspect-1.0 vidclsaction > /dev/null 2>&1; then
  action=(vidclsaction !)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gst-launch-1.0 -q filesrc location="$video" ! decodebin ! videoconvert \
  ! vidclsclipper ! "$infer" model="$model" ! "${action[@]}" "${scale[@]}" \
  vidclsoverlay "${overlay[@]}" ! videoconvert ! pngenc snapshot=false \
  ! multifilesink location="$tmp/%06d.png"

if [ -z "$frame" ]; then
  png=$(find "$tmp" -name '*.png' | sort | tail -n 1)
else
  png=$tmp/$(printf '%06d' "$frame").png
fi
if [ -z "$png" ] || [ ! -f "$png" ]; then
  echo "$0: no frame ${frame:-at all} in $video ($(find "$tmp" -name '*.png' | wc -l) frames)" >&2
  exit 1
fi
cp "$png" "$out"
echo "$out: frame $(basename "$png" .png) of $video"
