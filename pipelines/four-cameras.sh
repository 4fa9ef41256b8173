#!/usr/bin/env bash
# four-cameras.sh — classify four live sources in one process with one shared model.
#
# Shows: many cameras, one model. The four inference elements (cam0..cam3) name the same
# model-instance-id, so the checkpoint is loaded once and one worker classifies the clips of all
# four streams together, up to batch-size=4 per forward pass. The sources are live, so each
# element runs async (mode=auto): a camera never waits for the others or for the model, and
# clips the model cannot keep up with are dropped (stats.clips-dropped). Each result line is
# prefixed with its camera's element name. Without sources it runs on four videotestsrc patterns,
# so it works anywhere; the instance-clips, instance-batches and instance-mean-batch fields of an
# element's stats property say how well the clips were batched (gst-inspect-1.0 vividinfer).
#
# Needs: gst-launch-1.0; gstreamer1.0-plugins-base (videotestsrc, uridecodebin, videoconvert);
# for cameras gstreamer1.0-plugins-good (v4l2src, and for MJPEG cameras the JPEG decoder); for
# RTSP plugins-good (rtspsrc) and the decoder for the camera's codec (gstreamer1.0-libav for
# H.264/H.265); the vidcls plugin installed, or GST_PLUGIN_PATH=<build>/gst-plugins.
#
# Usage: four-cameras.sh MODEL [SRC1 SRC2 SRC3 SRC4]     (Ctrl-C stops)
#   SRC is a V4L2 device (/dev/video0), a URI (rtsp://user:pass@host/path, file:///v.mp4, ...)
#   or a file path; without SRCs, four test patterns at 30 frames/s.
#   A ResNet + Temporal ViT checkpoint: INFER=resnetvitinfer four-cameras.sh MODEL ...
set -euo pipefail

# gst-launch-1.0 -m prints every bus message; keep the vidcls-classification ones, without its
# prefix. The filter ignores Ctrl-C so that the results of the end of stream that gst-launch-1.0
# -e sends still get through.
filter='s/^Got message #[0-9]* from element "\([^"]*\)" (element): vidcls-classification, /\1: /p'

if [ $# -ne 1 ] && [ $# -ne 5 ]; then
  echo "usage: $0 MODEL [SRC1 SRC2 SRC3 SRC4]" >&2
  exit 2
fi
model=$1
shift
infer=${INFER:-vividinfer}
patterns=(ball smpte pinwheel spokes)

# Appends to `launch` the source of camera $1 (SRC $2, or a test pattern when empty), up to raw
# video.
add_source() {
  local i=$1 src=${2:-}
  case "$src" in
    "")
      launch+=(videotestsrc is-live=true pattern="${patterns[$i]}"
        ! "video/x-raw,width=320,height=240,framerate=30/1") ;;
    /dev/video*)
      launch+=(v4l2src device="$src" ! decodebin) ;;
    *://*)
      # Only the video stream is decoded and exposed, so sources with audio work too.
      launch+=(uridecodebin uri="$src" caps=video/x-raw expose-all-streams=false) ;;
    *)
      if [ ! -e "$src" ]; then
        echo "$0: $src is neither a /dev/video device, a URI nor a file" >&2
        exit 2
      fi
      launch+=(uridecodebin uri="file://$(realpath "$src")" caps=video/x-raw
        expose-all-streams=false) ;;
  esac
}

launch=()
for i in 0 1 2 3; do
  add_source "$i" "${1:-}"
  if [ $# -gt 0 ]; then shift; fi
  launch+=(! videoconvert ! vidclsclipper
    ! "$infer" name="cam$i" model="$model" model-instance-id=cams batch-size=4
    ! fakesink)
done

gst-launch-1.0 -e -m "${launch[@]}" \
  | { trap '' INT; sed -u -n "$filter" || true; }
