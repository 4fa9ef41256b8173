#!/usr/bin/env bash
# rtsp.sh — classify an RTSP stream (an IP camera, a media server) live.
#
# Shows: a live network source. rtspsrc is live, so the inference element never stalls the
# stream: it classifies in a worker and drops clips it cannot keep up with (see camera.sh). Only
# the video stream is taken (the caps filter), so cameras that also send audio work.
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-good (rtspsrc, RTP depayloaders); the decoder for
# the camera's codec (gstreamer1.0-libav for H.264/H.265); plugins-base; the vidcls plugin
# installed, or GST_PLUGIN_PATH=<build>/gst-plugins. URL may carry credentials
# (rtsp://user:pass@host/path).
#
# Usage: rtsp.sh URL MODEL     (Ctrl-C stops)
#   A ResNet + Temporal ViT checkpoint: INFER=resnetvitinfer rtsp.sh URL MODEL
#   LATENCY=ms sets rtspsrc's jitter buffer (default 200).
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification ones, without its
# prefix. The filter ignores Ctrl-C so that the results of the end of stream that gst-launch-1.0
# -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

if [ $# -ne 2 ]; then
  echo "usage: $0 URL MODEL" >&2
  exit 2
fi
url=$1
model=$2
infer=${INFER:-vividinfer}

gst-launch-1.0 -e -m \
  rtspsrc location="$url" latency="${LATENCY:-200}" ! application/x-rtp,media=video \
  ! decodebin ! videoconvert \
  ! vidclsclipper ! "$infer" model="$model" ! fakesink \
  | { trap '' INT; sed -u -n "$filter" || true; }
