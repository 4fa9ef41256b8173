#!/usr/bin/env bash
# finetune-vs-scratch.sh — what `vidcls-train --init` buys on a small data set of one's own:
# the same data, the same 10 epochs, from scratch, from a checkpoint (new head, everything
# trains) and from the checkpoint with its backbone frozen (the head alone trains).
#
# The checkpoint is a vivit-xs trained here on set A (6 classes: slides and rotations, 40 videos
# each, drifting camera): the published Kinetics-400 files cannot be downloaded where vidcls is
# built, and an imported model with random weights would show nothing. The "user's" sets have 10
# classes (4 the checkpoint never saw: grow, shrink, two orbits) and 10 videos each: B with a
# panning camera, C with a shaking camera and background clutter. Held-out top-1 is on each set's
# test subjects (cross-subject split), the model chosen on its validation subject; minutes are
# wall-clock, so run it alone.
#
# Usage: benchmarks/finetune-vs-scratch.sh [BUILD_DIR] [WORK_DIR]    (defaults: build, a temp dir)
set -euo pipefail

build=$(readlink -f "${1:-build}")
work=${2:-$(mktemp -d -t vidcls-finetune-XXXXXX)}
mkdir -p "$work"
cd "$work"
synth=$build/training/vidcls-synth
train=$build/training/vidcls-train
export OMP_WAIT_POLICY=PASSIVE

[ -d a ] || "$synth" --out a --classes 6 --videos-per-class 40 --subjects 8 --seed 11 -q -j 2
[ -d b ] || "$synth" --out b --classes 10 --videos-per-class 10 --subjects 5 --camera pan \
  --seed 21 -q -j 2
[ -d c ] || "$synth" --out c --classes 10 --videos-per-class 10 --subjects 5 --camera shake \
  --clutter 4 --seed 31 -q -j 2

seconds() { local t0=$1; echo $(($(date +%s) - t0)); }
result() { sed -n 's/^best.safetensors: epoch \([0-9]*\), .* its test top-1 \([0-9.]*%\).*/epoch \1, test top-1 \2/p' "$1"; }

if [ ! -f pre/best.safetensors ]; then
  t0=$(date +%s)
  "$train" --model vivit --data a --out pre > pre.log 2>&1
  echo "checkpoint: vivit-xs on set A, $(seconds "$t0") s: $(result pre.log)"
fi
printf '%-4s %-12s %8s  %s\n' set run seconds "best on validation"
for set in b c; do
  for run in scratch init init-frozen; do
    args=(--model vivit)
    [ "$run" != scratch ] && args=(--init pre/best.safetensors)
    [ "$run" = init-frozen ] && args+=(--freeze-backbone)
    t0=$(date +%s)
    "$train" "${args[@]}" --data "$set" --out "$set-$run" --epochs 10 --repeats 4 \
      > "$set-$run.log" 2>&1
    printf '%-4s %-12s %8s  %s\n' "$set" "$run" "$(seconds "$t0")" "$(result "$set-$run.log")"
  done
done
echo "logs and checkpoints: $work"
