// Building a model only to overwrite every tensor from a checkpoint. Drawing initial weights
// costs more than reading the file they are replaced by (trunc_normal_'s erfinv and LibTorch's
// kaiming_uniform_ over 100M+ parameters), so while a SkipInit guard lives on a thread the
// models' constructors leave parameters as torch::empty memory. Such a model must not run until
// every parameter and buffer has been written: load_state checks that each one is present.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace vidcls {

class SkipInit {
 public:
  SkipInit();
  ~SkipInit();
  SkipInit(const SkipInit &) = delete;
  SkipInit &operator=(const SkipInit &) = delete;

 private:
  bool previous_;
};

// Whether a SkipInit guard is alive on this thread.
bool init_skipped();

// torch::nn::Linear / Conv2d / Conv3d as their constructors build them; under SkipInit without
// the kaiming_uniform_ fill of LibTorch's reset_parameters(): the module is built at the smallest
// size LibTorch accepts and then given uninitialised weights of the real size. A Linear draws no
// random number; a convolution draws one kernel of one channel (e.g. 3x3 values), not one per
// weight.
torch::nn::Linear make_linear(const torch::nn::LinearOptions &options);
torch::nn::Conv2d make_conv(const torch::nn::Conv2dOptions &options);
torch::nn::Conv3d make_conv(const torch::nn::Conv3dOptions &options);

}  // namespace vidcls
