// The c10d headers vidcls-train uses and the one construction that differs between LibTorch
// versions: a Gloo process group. Up to 1.13 ProcessGroupGloo is itself the c10d::ProcessGroup;
// from 2.0 it is a c10d::Backend that a c10d::ProcessGroup dispatches the CPU collectives to,
// assembled here as torch.distributed assembles it (default backend Gloo, registered for CPU).
// training/meson.build compiles this header in its configure check, so a LibTorch whose API
// matches neither branch builds vidcls-train without data parallelism instead of failing.
#pragma once

#include <chrono>
#include <utility>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
// Spelled from /usr/include: meson's compile checks get the libraries of torch_dep, not its
// include path (torch/csrc/api/include).
#include <torch/csrc/api/include/torch/version.h>

namespace vidcls::train {

#if TORCH_VERSION_MAJOR >= 2

inline c10::intrusive_ptr<c10d::ProcessGroup> make_gloo_group(
    const c10::intrusive_ptr<c10d::Store> &store, int rank, int size,
    c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options) {
  using Type = c10d::ProcessGroup::BackendType;
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, std::move(options));
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
  group->setDefaultBackend(Type::GLOO);
  group->setBackend(c10::DeviceType::CPU, Type::GLOO, gloo);
  return group;
}

// 2.x serves the store through libuv by default, which Debian's LibTorch is built without
// ("use_libuv was requested but PyTorch was build without libuv support"); its own server, the
// one 1.13 has, is in every build.
inline void use_builtin_store_server(c10d::TCPStoreOptions &options) { options.useLibUV = false; }

#else

inline c10::intrusive_ptr<c10d::ProcessGroup> make_gloo_group(
    const c10::intrusive_ptr<c10d::Store> &store, int rank, int size,
    c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options) {
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, std::move(options));
}

inline void use_builtin_store_server(c10d::TCPStoreOptions &) {}

#endif

}  // namespace vidcls::train
