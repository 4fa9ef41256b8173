#!/usr/bin/env bash
# The vidcls demo, one command on a fresh Debian 12 machine:
#   1. installs what is missing (scripts/setup-debian.sh) and builds the tools and the plugin,
#   2. writes a small synthetic motion dataset (MSR DailyActivity3D layout: the class is how an
#      object moves, so one frame says nothing about it),
#   3. trains the CPU ViViT preset (vivit-xs): its default recipe, 12 epochs instead of 30,
#      on four slide directions and two senses of rotation,
#   4. classifies videos it has never seen through the real GStreamer pipeline
#        filesrc ! decodebin ! vidclsclipper ! vividinfer model=... ! fakesink
#      and prints the label of each clip over time next to the true label.
# Environment: VIDCLS_BUILD_DIR (default build), VIDCLS_DEMO_DIR (default demo),
# VIDCLS_DEMO_CLASSES (default 6), VIDCLS_DEMO_EPOCHS (default 12).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
build=${VIDCLS_BUILD_DIR:-build}
work=${VIDCLS_DEMO_DIR:-demo}
classes=${VIDCLS_DEMO_CLASSES:-6}
jobs=${VIDCLS_JOBS:-2}
start=$(date +%s)
step() { printf '\n== [%3ds] %s\n' "$(($(date +%s) - start))" "$*"; }

step "1/4 packages and build ($build)"
if [ "$(id -u)" -eq 0 ]; then
  scripts/setup-debian.sh
else
  sudo scripts/setup-debian.sh
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dtraining=enabled -Dgst_plugins=enabled
elif meson introspect "$build" --buildoptions 2>/dev/null | grep -q '"name": "training", "value": "disabled"'; then
  meson configure "$build" -Dtraining=enabled
fi
# Only what the demo runs; `meson compile -C $build` builds the rest (tests, benchmarks).
meson compile -C "$build" -j "$jobs" vidcls-synth vidcls-train vidcls-eval gstvidcls vidcls-classify

build=$(cd "$build" && pwd)
bin=$build/training
export GST_PLUGIN_PATH=$build/gst-plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
export GST_REGISTRY_1_0=$build/demo-registry.bin

step "2/4 synthetic motion dataset ($work/data, $classes classes, MSR layout)"
mkdir -p "$work"
"$bin/vidcls-synth" --layout msr --out "$work/data" --classes "$classes" \
  --videos-per-class 40 --subjects 8 --frames 48 --size 96 --fps 15 --seed 1 -j "$jobs"
# Unseen videos: other seeds, so other shapes, colours, positions and backgrounds.
"$bin/vidcls-synth" --layout msr --out "$work/unseen" --classes "$classes" \
  --videos-per-class 1 --subjects 1 --frames 64 --size 96 --fps 15 --seed 4242 -q

epochs=${VIDCLS_DEMO_EPOCHS:-12}
step "3/4 training vivit-xs ($epochs epochs; cross-subject: odd subjects train, one of them validates, even test)"
"$bin/vidcls-train" --model vivit --data "$work/data" --cache "$work/cache" --out "$work/run" \
  --seed 1 --epochs "$epochs"
model=$work/run/best.safetensors

step "4/4 classifying unseen videos through gst-launch-1.0"
mapfile -t names < "$work/unseen/labels.txt"
for video in "$work"/unseen/a*_rgb.avi; do
  action=$(basename "$video" | sed -E 's/^a0*([0-9]+)_.*/\1/')
  echo
  echo "$(basename "$video")  true label: ${names[$((action - 1))]}"
  gst-launch-1.0 -m filesrc location="$video" ! decodebin ! vidclsclipper \
    ! vividinfer model="$model" ! fakesink 2>&1 \
    | grep -o 'vidcls-classification.*' | sed -E 's/^(.{0,150}).*/  gst-launch: \1.../' | head -1 || true
  "$build/gst-plugins/tools/vidcls-classify" --model "$model" "$video" | sed 's/^/  /'
done

step "done in $(($(date +%s) - start)) s: model $model, metrics $work/run/metrics.csv, curves $work/run/curves.png"
