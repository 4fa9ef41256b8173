#include "vidcls/init.h"

#include <vector>

#include <torch/types.h>

namespace vidcls {

namespace {

thread_local bool t_skip_init = false;

// Only the channel counts differ from the real module: kernel, stride, padding and what ConvNd
// derives from them at construction stay as given. ConvNd cannot be built with no channels, so
// its fill still draws one kernel's worth of values (e.g. 3x3) and one bias value.
template <typename Conv, size_t D>
Conv conv_without_fill(const torch::nn::ConvOptions<D> &options) {
  if (!init_skipped()) return Conv(options);
  TORCH_CHECK(options.groups() > 0 && options.in_channels() % options.groups() == 0 &&
                  options.out_channels() % options.groups() == 0,
              "in_channels (", options.in_channels(), ") and out_channels (",
              options.out_channels(), ") must be divisible by groups (", options.groups(), ")");
  auto small = options;
  small.in_channels(1).out_channels(1).groups(1);
  Conv conv(small);
  conv->options.in_channels(options.in_channels())
      .out_channels(options.out_channels())
      .groups(options.groups());
  std::vector<int64_t> sizes = {options.out_channels(), options.in_channels() / options.groups()};
  for (int64_t k : *options.kernel_size()) sizes.push_back(k);
  conv->weight.set_data(torch::empty(sizes));
  if (conv->bias.defined()) conv->bias.set_data(torch::empty({options.out_channels()}));
  return conv;
}

}  // namespace

SkipInit::SkipInit() : previous_(t_skip_init) { t_skip_init = true; }

SkipInit::~SkipInit() { t_skip_init = previous_; }

bool init_skipped() { return t_skip_init; }

torch::nn::Linear make_linear(const torch::nn::LinearOptions &options) {
  if (!init_skipped()) return torch::nn::Linear(options);
  // No output features: the fill covers no element and draws no random number.
  torch::nn::Linear linear(torch::nn::LinearOptions(1, 0).bias(options.bias()));
  linear->options = options;
  linear->weight.set_data(torch::empty({options.out_features(), options.in_features()}));
  if (linear->bias.defined()) linear->bias.set_data(torch::empty({options.out_features()}));
  return linear;
}

torch::nn::Conv2d make_conv(const torch::nn::Conv2dOptions &options) {
  return conv_without_fill<torch::nn::Conv2d>(options);
}

torch::nn::Conv3d make_conv(const torch::nn::Conv3dOptions &options) {
  return conv_without_fill<torch::nn::Conv3d>(options);
}

}  // namespace vidcls
