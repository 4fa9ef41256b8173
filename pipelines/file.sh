#!/usr/bin/env bash
# file.sh — classify every clip of a video file, printing one result per clip.
#
# Shows: the offline pipeline. vidclsclipper needs no settings: it asks the inference element
# downstream for the checkpoint's clip spec (frames per clip, sampling, size, normalisation,
# device). A file is not live, so the inference element classifies every clip (back-pressure).
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (decodebin, videoconvert) and the decoders
# for the file (gstreamer1.0-libav for H.264/MPEG-4, plugins-good for MJPEG/VP8...); the vidcls
# plugin installed, or GST_PLUGIN_PATH=<build>/gst-plugins.
#
# Usage: file.sh [--resnet] VIDEO MODEL
#   --resnet  the checkpoint is a ResNet-50 + Temporal ViT (resnetvitinfer); the default is
#             vividinfer (ViViT and Mini-ViViT). vidcls-classify picks it from the checkpoint.
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification ones, without its
# prefix. The filter ignores Ctrl-C so that the results of the end of stream that gst-launch-1.0
# -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

infer=vividinfer
if [ "${1:-}" = "--resnet" ]; then
  infer=resnetvitinfer
  shift
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--resnet] VIDEO MODEL" >&2
  exit 2
fi
video=$1
model=$2

gst-launch-1.0 -e -m \
  filesrc location="$video" ! decodebin ! videoconvert \
  ! vidclsclipper ! "$infer" model="$model" ! fakesink \
  | { trap '' INT; sed -u -n "$filter" || true; }
