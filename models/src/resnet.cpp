#include "vidcls/resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include "vidcls/init.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return make_conv(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

// A residual unit: BasicBlock (two 3x3) or Bottleneck (1x1, 3x3 with the stride, 1x1 x4).
class UnitImpl : public torch::nn::Module {
 public:
  UnitImpl(int64_t in, int64_t width, int64_t stride, bool bottleneck) {
    const int64_t out = bottleneck ? width * 4 : width;
    if (bottleneck) {
      conv1 = register_module("conv1", conv(in, width, 1, 1));
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
      conv2 = register_module("conv2", conv(width, width, 3, stride));
      bn2 = register_module("bn2", torch::nn::BatchNorm2d(width));
      conv3 = register_module("conv3", conv(width, out, 1, 1));
      bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
    } else {
      conv1 = register_module("conv1", conv(in, width, 3, stride));
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
      conv2 = register_module("conv2", conv(width, width, 3, 1));
      bn2 = register_module("bn2", torch::nn::BatchNorm2d(width));
    }
    if (stride != 1 || in != out) {
      downsample = register_module(
          "downsample", torch::nn::Sequential(conv(in, out, 1, stride), torch::nn::BatchNorm2d(out)));
    }
  }

  torch::Tensor forward(const torch::Tensor &x) {
    auto y = F::relu(bn1(conv1(x)));
    if (conv3) {
      y = F::relu(bn2(conv2(y)));
      y = bn3(conv3(y));
    } else {
      y = bn2(conv2(y));
    }
    return F::relu(y + (downsample ? downsample->forward(x) : x));
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Unit);

std::array<int64_t, 4> units_per_stage(int64_t depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    case 50: return {3, 4, 6, 3};
    case 101: return {3, 4, 23, 3};
    case 152: return {3, 8, 36, 3};
    default: TORCH_CHECK(false, "ResNet depth must be 18, 34, 50, 101 or 152, got ", depth);
  }
}

}  // namespace

void ResNetConfig::validate() const {
  units_per_stage(depth);
  TORCH_CHECK(num_classes >= 0, "num_classes must be >= 0");
  TORCH_CHECK(pool == "avg" || pool == "max", "ResNet pool must be \"avg\" or \"max\", got \"",
              pool, "\"");
}

ResNetImpl::ResNetImpl(const ResNetConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  const bool bottleneck = cfg_.depth >= 50;
  const auto units = units_per_stage(cfg_.depth);
  conv1 = register_module(
      "conv1", make_conv(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  int64_t in = 64;
  torch::nn::Sequential *stages[4] = {&layer1, &layer2, &layer3, &layer4};
  const char *names[4] = {"layer1", "layer2", "layer3", "layer4"};
  for (int s = 0; s < 4; ++s) {
    const int64_t width = 64 << s;
    torch::nn::Sequential stage;
    for (int64_t u = 0; u < units[s]; ++u) {
      stage->push_back(Unit(in, width, (u == 0 && s > 0) ? 2 : 1, bottleneck));
      in = bottleneck ? width * 4 : width;
    }
    *stages[s] = register_module(names[s], stage);
  }
  if (cfg_.num_classes > 0) {
    fc = register_module("fc", make_linear(torch::nn::LinearOptions(in, cfg_.num_classes)));
  }
  if (init_skipped()) return;
  // torchvision's initialisation: He normal (fan_out) convolutions, BatchNorm at identity.
  torch::NoGradGuard no_grad;
  for (auto &m : modules(/*include_self=*/false)) {
    if (auto *c = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto *b = m->as<torch::nn::BatchNorm2d>()) {
      b->weight.fill_(1.0);
      b->bias.zero_();
    }
  }
}

torch::Tensor ResNetImpl::features(const torch::Tensor &images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "ResNet expects images [N, 3, H, W], got ",
              images.sizes());
  auto x = F::relu(bn1(conv1(images)));
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  return cfg_.pool == "max" ? x.amax({2, 3}) : x.mean({2, 3});
}

torch::Tensor ResNetImpl::forward(const torch::Tensor &images) {
  auto f = features(images);
  return fc ? fc(f) : f;
}

}  // namespace vidcls
