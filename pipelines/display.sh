#!/usr/bin/env bash
# display.sh — play a video file in a window while it is classified, printing the results.
#
# Shows: splitting a stream with tee so the display never waits for the model. The display
# branch plays at real time (autovideosink syncs to the clock); the classification branch runs
# the inference element with mode=async, so when the model is slower than real time it drops
# clips (counted in clips-dropped) instead of slowing playback down. For a result for every
# clip, use file.sh.
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (decodebin, videoconvert) and the file's
# decoders; a display for autovideosink; the vidcls plugin installed, or
# GST_PLUGIN_PATH=<build>/gst-plugins/vidcls.
#
# Usage: display.sh VIDEO MODEL
#   A ResNet + Temporal ViT checkpoint: INFER=resnetvitinfer display.sh VIDEO MODEL
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification ones, without its
# prefix. The filter ignores Ctrl-C so that the results of the end of stream that gst-launch-1.0
# -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

if [ $# -ne 2 ]; then
  echo "usage: $0 VIDEO MODEL" >&2
  exit 2
fi
video=$1
model=$2
infer=${INFER:-vividinfer}

gst-launch-1.0 -e -m \
  filesrc location="$video" ! decodebin ! videoconvert ! tee name=split \
  split. ! queue ! videoconvert ! autovideosink \
  split. ! queue ! vidclsclipper ! "$infer" model="$model" mode=async ! fakesink \
  | { trap '' INT; sed -u -n "$filter" || true; }
