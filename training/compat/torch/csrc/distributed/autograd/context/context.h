// Debian's libtorch-dev (1.13) ships c10d/reducer.hpp but not the distributed-autograd headers it
// includes. The Reducer only holds a shared_ptr to a distributed-autograd context (null unless
// RPC's distributed autograd drives the backward pass, which vidcls-train never does) and checks
// that its gradient-callback type is the context's. These are the two names it needs, declared as
// libtorch declares them; training/meson.build puts this folder on the include path only when the
// real header is missing.
#pragma once

#include <functional>
#include <memory>

#include <ATen/core/Tensor.h>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor &)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
