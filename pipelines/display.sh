#!/usr/bin/env bash
# display.sh — play a video file in a window with its labels drawn on it, printing the results.
#
# Shows: vidclsoverlay drawing the latest top-k labels with their scores, and the actions
# vidclsaction has open, on the video. The inference element runs with
# mode=async, so the window plays at real time: frames never wait for the model, and when the
# model is slower than real time clips are dropped (counted in stats.clips-dropped) instead of slowing
# playback down; each result is drawn from the first frame after it is ready until the next.
# For a result for every clip, use file.sh.
#
# With a sink that draws overlay compositions itself (glimagesink), vidclsoverlay attaches the
# text instead of drawing into the frames, and the sink draws it at the window's resolution.
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (decodebin, videoconvert) and the file's
# decoders; a display for autovideosink; the vidcls plugins (libgstvidcls, libgstvidclsresults)
# installed, or GST_PLUGIN_PATH=<build>/gst-plugins.
#
# Usage: display.sh VIDEO MODEL
#   A ResNet + Temporal ViT checkpoint: INFER=resnetvitinfer display.sh VIDEO MODEL
#   Another sink, or the overlay's properties:
#     SINK=glimagesink OVERLAY="position=bottom-left font-size=32" display.sh VIDEO MODEL
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification and vidcls-action-*
# ones, without their prefix. The filter ignores Ctrl-C so that the results of the end of stream
# that gst-launch-1.0 -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): \(vidcls-action-[a-z]*\|vidcls-classification\), /\1: \2 /p'

if [ $# -ne 2 ]; then
  echo "usage: $0 VIDEO MODEL" >&2
  exit 2
fi
video=$1
model=$2
infer=${INFER:-vividinfer}
# word-split on purpose: a sink with its properties, the overlay's properties
read -r -a sink <<< "${SINK:-autovideosink}"
read -r -a overlay <<< "${OVERLAY:-}"

gst-launch-1.0 -e -m \
  filesrc location="$video" ! decodebin ! videoconvert \
  ! vidclsclipper ! "$infer" model="$model" mode=async ! vidclsaction \
  ! vidclsoverlay "${overlay[@]}" ! videoconvert ! "${sink[@]}" \
  | { trap '' INT; sed -u -n "$filter" || true; }
