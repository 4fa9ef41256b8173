#!/usr/bin/env bash
# Installs every Debian 12 or Debian 13 package that building, testing and running vidcls needs.
# Idempotent: does nothing (and needs no network) when all of them are already installed.
# Run as root, or with sudo available.
set -euo pipefail

packages=(
  # toolchain and build
  build-essential g++ pkg-config meson ninja-build ccache git
  # LibTorch (CPU) and a fast BLAS for it: with the reference BLAS matrix products run ~25x slower.
  # OpenBLAS's OpenMP build, not its pthreads one: LibTorch runs on OpenMP, and two thread pools
  # spinning on the same cores made small models up to 40x slower (see blas_alternatives below).
  libtorch-dev libopenblas0-openmp
  # data-parallel vidcls-train: LibTorch's c10d headers (ProcessGroupGloo) include Gloo's
  libgloo-dev
  # libraries used by the code
  nlohmann-json3-dev libcli11-dev libopencv-dev
  # vidcls-import's Flax checkpoints (scenic's ViViT): msgpack-c (on Debian 13 this name is the
  # transitional package of libmsgpack-c-dev; on Debian 12 it brings the C++ headers and Boost)
  libmsgpack-dev
  # vidcls-train's curves.png: PLplot, and its Cairo driver for PNG (loaded at run time)
  libplplot-dev plplot-driver-cairo
  # GStreamer: development files, plugins for decoding/encoding in tests and demo, tools
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # the analytics library (GstAnalyticsRelationMeta, ClsMtd) ships here from GStreamer 1.24
  # (Debian 13); on 1.22 (Debian 12) the package has no analytics library and the build leaves it out
  libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav gstreamer1.0-tools
  # vidclspublish: MQTT through libmosquitto, TLS through OpenSSL (libmosquitto's own); the tests
  # start Debian's broker and subscribe with its clients, and give a host name several addresses
  # with nss_wrapper
  libmosquitto-dev libssl-dev mosquitto mosquitto-clients libnss-wrapper
  # the service test's camera: GStreamer's RTSP server, from Python
  gir1.2-gst-rtsp-server-1.0
  # the publish tests: JSON Schema validation of the lines, a CA and broker certificate for TLS
  python3-jsonschema openssl
  # vidclsoverlay: text drawn with Pango on Cairo
  libcairo2-dev libpango1.0-dev
  # results from Python: the meta library's GObject-introspection typelib (g-ir-scanner), read
  # through PyGObject with GStreamer's own typelibs
  gobject-introspection libgirepository1.0-dev python3-gi gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0
  # tests: GoogleTest/GoogleMock, and the Python reference implementations for parity tests
  libgtest-dev libgmock-dev python3 python3-torch python3-torchvision python3-numpy
  # the scenic import test writes its Flax checkpoint as Flax does, with msgpack
  python3-msgpack
  # fuzzing (meson -Dfuzz=true with CXX=clang++): libFuzzer runtime of the distribution's default
  # clang (14 on Debian 12, 19 on Debian 13), through the unversioned package
  clang libclang-rt-dev
)

# Debian picks the BLAS through alternatives, and ranks OpenBLAS's pthreads build above its
# OpenMP build when both are installed: point libblas, liblapack and libopenblas at the OpenMP
# build. Measured with bench-forward, 2 cores: vivit-xs 200 ms per clip with the pthreads build
# on Debian 13 against 3.5 ms with the OpenMP one; mini-vivit-seed 316 against 61 ms on Debian 12.
blas_alternatives() {
  local arch dir a current
  arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
  dir=/usr/lib/$arch/openblas-openmp
  [ -d "$dir" ] || return 0
  for a in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    [ -e "$dir/$a" ] || continue
    current=$(update-alternatives --query "$a-$arch" 2>/dev/null | sed -n 's/^Value: //p')
    if [ "$current" != "$dir/$a" ]; then
      echo "setup: $a -> OpenBLAS (OpenMP build)"
      $SUDO update-alternatives --set "$a-$arch" "$dir/$a" >/dev/null
    fi
  done
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  blas_alternatives
  exit 0
fi

echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
blas_alternatives
