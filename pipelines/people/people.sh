#!/usr/bin/env bash
# people.sh — an action per person on a real recording nobody here made: boxes and track ids
# from OpenCV's HOG people detector (vidcls-hog-tracks), replayed onto the stream as
# region-of-interest metas, clips per person (vidclsclipper inference-region=roi-list), and each
# person's labels and open actions drawn at their box (vidclsoverlay). Saves one frame as PNG,
# or JPEG when OUT ends in .jpg.
#
# docs/people.jpg (in docs/elements.md) was made with
#   pipelines/people/people.sh people-run/last.safetensors docs/people.jpg
# where people-run/ is vivit-xs trained on synthetic people (docs/accuracy.md, "People"): its
# labels are the synthetic motions (slide_left, rotate_cw, ...), not real actions, so what the
# picture shows is where the labels go, not that they are right.
#
# Needs: opencv-doc (vtest.avi, pedestrians filmed by a fixed camera, 768x576 at 10 fps), the
# build's vidcls-hog-tracks (OpenCV), gst-launch-1.0 with gstreamer1.0-plugins-base and -good,
# and the vidcls plugins (installed, or GST_PLUGIN_PATH=<build>/gst-plugins).
#
# Usage: people.sh MODEL OUT.png|OUT.jpg [VIDEO] [FRAME]
#   VIDEO  default /usr/share/doc/opencv-doc/examples/data/vtest.avi
#   FRAME  index of the frame to save, from 0 (default 120)
#   HOG_TRACKS=path/to/vidcls-hog-tracks (default: build/pipelines/vidcls-hog-tracks)
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: $0 MODEL OUT.png|OUT.jpg [VIDEO] [FRAME]" >&2
  exit 2
fi
model=$1
out=$2
video=${3:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}
frame=${4:-120}
hog=${HOG_TRACKS:-build/pipelines/vidcls-hog-tracks}
if [ ! -f "$video" ]; then
  echo "$0: $video not found (apt-get install opencv-doc, or name a video)" >&2
  exit 1
fi

encode=(pngenc snapshot=false)
ext=png
case $out in
  *.jpg|*.jpeg) encode=(jpegenc quality=85); ext=jpg ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A detection every 3rd frame; vidclsroireplay interpolates the boxes in between (up to 1.5 s).
"$hog" "$video" "$tmp/tracks.txt" --every 3 --frames $((frame + 1))
gst-launch-1.0 -q filesrc location="$video" ! decodebin ! videoconvert \
  ! vidclsroireplay location="$tmp/tracks.txt" max-gap=1500000000 \
  ! vidclsclipper inference-region=roi-list ! vividinfer model="$model" \
  ! vidclsaction ! vidclsoverlay font-size=14 ! identity eos-after=$((frame + 1)) \
  ! videoconvert ! "${encode[@]}" ! multifilesink location="$tmp/%06d.$ext"
cp "$tmp/$(printf %06d "$frame").$ext" "$out"
echo "wrote $out (frame $frame of $video)"
