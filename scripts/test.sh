#!/usr/bin/env bash
# The test command: installs what is missing, configures, builds and runs the whole test suite.
#   scripts/test.sh [BUILD_DIR]          (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

scripts/setup-debian.sh
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" >/dev/null
fi
meson compile -C "$build"
# The tests start many LibTorch processes, some side by side (two-rank training): OpenMP threads
# that spin while they wait slow such a crowd down by several times on a small machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
meson test -C "$build" --print-errorlogs --num-processes 1
