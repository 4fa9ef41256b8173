#include "vidcls/video_cnn.h"

#include <stdexcept>

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/pooling.h>
#include <nlohmann/json.hpp>

#include "json_fields.h"
#include "vidcls/init.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

using Dims = torch::ExpandingArray<3>;
using Sequential = Chain;

torch::nn::Conv3d conv3d(int64_t in, int64_t out, Dims kernel, Dims stride, Dims padding,
                         bool bias = false) {
  return make_conv(
      torch::nn::Conv3dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

// [B, T, C, H, W] -> [B, C, T, H, W], checking the channels.
torch::Tensor to_channels_first(const torch::Tensor &clips, const char *model) {
  TORCH_CHECK(clips.dim() == 5 && clips.size(2) == 3, model,
              ": clips must be [B, T, 3, H, W], got ", clips.sizes());
  return clips.permute({0, 2, 1, 3, 4});
}

// ---------------------------------------------------------------------------------------------
// Video ResNet

// The convolution a stage is made of, as the published weights lay it out: one Conv3d ("3d", or
// "2d" for a 1x3x3 kernel that leaves time alone), or a sequence of a spatial convolution to
// `mid` channels, its BatchNorm and ReLU, and a temporal convolution ("2plus1d").
torch::nn::AnyModule stage_conv(const std::string &kind, int64_t in, int64_t out, int64_t mid,
                                int64_t stride) {
  if (kind == "3d") return torch::nn::AnyModule(conv3d(in, out, 3, stride, 1));
  if (kind == "2d") {
    return torch::nn::AnyModule(conv3d(in, out, {1, 3, 3}, {1, stride, stride}, {0, 1, 1}));
  }
  return torch::nn::AnyModule(Sequential(conv3d(in, mid, {1, 3, 3}, {1, stride, stride}, {0, 1, 1}),
                                         torch::nn::BatchNorm3d(mid),
                                         torch::nn::ReLU(torch::nn::ReLUOptions(true)),
                                         conv3d(mid, out, {3, 1, 1}, {stride, 1, 1}, {1, 0, 0})));
}

// Two stage convolutions with a residual connection, projected by a strided 1x1x1 convolution
// when the shape changes.
class VideoBasicBlockImpl : public torch::nn::Module {
 public:
  VideoBasicBlockImpl(const std::string &kind, int64_t in, int64_t planes, int64_t stride) {
    // The (2+1)D middle width that gives the pair the parameters of one 3x3x3 convolution.
    const int64_t mid = (in * planes * 27) / (in * 9 + 3 * planes);
    Sequential c1, c2;
    c1->push_back(stage_conv(kind, in, planes, mid, stride));
    c1->push_back(torch::nn::BatchNorm3d(planes));
    c1->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
    c2->push_back(stage_conv(kind, planes, planes, mid, 1));
    c2->push_back(torch::nn::BatchNorm3d(planes));
    conv1 = register_module("conv1", c1);
    conv2 = register_module("conv2", c2);
    if (stride != 1 || in != planes) {
      // A spatial-only stage keeps time in its shortcut as well.
      const int64_t ts = kind == "2d" ? 1 : stride;
      downsample =
          register_module("downsample", Sequential(conv3d(in, planes, 1, {ts, stride, stride}, 0),
                                                   torch::nn::BatchNorm3d(planes)));
    }
  }

  torch::Tensor forward(const torch::Tensor &x) {
    auto y = conv2->forward(conv1->forward(x));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }

  Sequential conv1{nullptr}, conv2{nullptr}, downsample{nullptr};
};
TORCH_MODULE(VideoBasicBlock);

// The stage convolution of each of the four stages.
std::vector<std::string> stage_kinds(const std::string &variant) {
  if (variant == "r3d") return {"3d", "3d", "3d", "3d"};
  if (variant == "mc3") return {"3d", "2d", "2d", "2d"};
  return {"2plus1d", "2plus1d", "2plus1d", "2plus1d"};
}

Sequential video_stem(const std::string &variant) {
  auto relu = [] { return torch::nn::ReLU(torch::nn::ReLUOptions(true)); };
  if (variant == "r2plus1d") {
    return Sequential(conv3d(3, 45, {1, 7, 7}, {1, 2, 2}, {0, 3, 3}), torch::nn::BatchNorm3d(45),
                      relu(), conv3d(45, 64, {3, 1, 1}, 1, {1, 0, 0}), torch::nn::BatchNorm3d(64),
                      relu());
  }
  return Sequential(conv3d(3, 64, {3, 7, 7}, {1, 2, 2}, {1, 3, 3}), torch::nn::BatchNorm3d(64),
                    relu());
}

// torchvision's initialisation, for training from scratch: He-normal (fan out) convolutions,
// unit BatchNorm, N(0, 0.01) classifier.
void init_video_resnet(torch::nn::Module &model) {
  if (init_skipped()) return;
  torch::NoGradGuard no_grad;
  for (auto &m : model.modules(/*include_self=*/false)) {
    if (auto *c = m->as<torch::nn::Conv3d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto *bn = m->as<torch::nn::BatchNorm3d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    } else if (auto *fc = m->as<torch::nn::Linear>()) {
      fc->weight.normal_(0.0, 0.01);
      fc->bias.zero_();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// S3D

// Convolution, BatchNorm (TensorFlow's epsilon and momentum, as the weights were trained) and
// ReLU; padding keeps the size at stride 1 unless given.
Sequential conv_bn_relu(int64_t in, int64_t out, Dims kernel, Dims stride, Dims padding) {
  return Sequential(
      conv3d(in, out, kernel, stride, padding),
      torch::nn::BatchNorm3d(torch::nn::BatchNormOptions(out).eps(1e-3).momentum(1e-3)),
      torch::nn::ReLU(torch::nn::ReLUOptions(true)));
}

Sequential pointwise(int64_t in, int64_t out) { return conv_bn_relu(in, out, 1, 1, 0); }

// A k x k x k convolution separated into 1 x k x k (space) and k x 1 x 1 (time).
Sequential separable(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return Sequential(conv_bn_relu(in, out, {1, k, k}, {1, stride, stride}, {0, pad, pad}),
                    conv_bn_relu(out, out, {k, 1, 1}, {stride, 1, 1}, {pad, 0, 0}));
}

torch::nn::MaxPool3d max_pool(Dims kernel, Dims stride, Dims padding) {
  return torch::nn::MaxPool3d(torch::nn::MaxPool3dOptions(kernel).stride(stride).padding(padding));
}

// Inception block of four branches concatenated along channels: 1x1x1; 1x1x1 then separable
// 3x3x3; the same with other widths; 3x3x3 max-pooling then 1x1x1.
class SepInceptionImpl : public torch::nn::Module {
 public:
  SepInceptionImpl(int64_t in, int64_t b0, int64_t b1_mid, int64_t b1, int64_t b2_mid, int64_t b2,
                   int64_t b3) {
    branch0 = register_module("branch0", pointwise(in, b0));
    branch1 = register_module("branch1",
                              Sequential(pointwise(in, b1_mid), separable(b1_mid, b1, 3, 1, 1)));
    branch2 = register_module("branch2",
                              Sequential(pointwise(in, b2_mid), separable(b2_mid, b2, 3, 1, 1)));
    branch3 = register_module("branch3", Sequential(max_pool(3, 1, 1), pointwise(in, b3)));
  }

  torch::Tensor forward(const torch::Tensor &x) {
    return torch::cat(
        {branch0->forward(x), branch1->forward(x), branch2->forward(x), branch3->forward(x)}, 1);
  }

  Sequential branch0{nullptr}, branch1{nullptr}, branch2{nullptr}, branch3{nullptr};
};
TORCH_MODULE(SepInception);

Sequential s3d_features() {
  Sequential f;
  f->push_back(separable(3, 64, 7, 2, 3));
  f->push_back(max_pool({1, 3, 3}, {1, 2, 2}, {0, 1, 1}));
  f->push_back(pointwise(64, 64));
  f->push_back(separable(64, 192, 3, 1, 1));
  f->push_back(max_pool({1, 3, 3}, {1, 2, 2}, {0, 1, 1}));
  f->push_back(SepInception(192, 64, 96, 128, 16, 32, 32));
  f->push_back(SepInception(256, 128, 128, 192, 32, 96, 64));
  f->push_back(max_pool(3, 2, 1));
  f->push_back(SepInception(480, 192, 96, 208, 16, 48, 64));
  f->push_back(SepInception(512, 160, 112, 224, 24, 64, 64));
  f->push_back(SepInception(512, 128, 128, 256, 24, 64, 64));
  f->push_back(SepInception(512, 112, 144, 288, 32, 64, 64));
  f->push_back(SepInception(528, 256, 160, 320, 32, 128, 128));
  f->push_back(max_pool(2, 2, 0));
  f->push_back(SepInception(832, 256, 160, 320, 32, 128, 128));
  f->push_back(SepInception(832, 384, 192, 384, 48, 128, 128));
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void VideoResNetConfig::validate() const {
  if (variant != "r3d" && variant != "mc3" && variant != "r2plus1d") {
    throw std::invalid_argument("video-resnet: variant must be r3d, mc3 or r2plus1d, not '" +
                                variant + "'");
  }
  if (layers.size() != 4) throw std::invalid_argument("video-resnet: layers needs 4 stages");
  for (auto n : layers) {
    if (n < 1) throw std::invalid_argument("video-resnet: every stage needs a block");
  }
  if (frames < 1 || image_size < 16 || num_classes < 1) {
    throw std::invalid_argument("video-resnet: frames, image_size and num_classes must be > 0");
  }
}

void to_json(nlohmann::json &j, const VideoResNetConfig &c) {
  j = {{"variant", c.variant},
       {"layers", c.layers},
       {"frames", c.frames},
       {"image_size", c.image_size},
       {"num_classes", c.num_classes}};
}

void from_json(const nlohmann::json &j, VideoResNetConfig &c) {
  get_opt(j, "variant", c.variant);
  get_opt(j, "layers", c.layers);
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "num_classes", c.num_classes);
}

VideoResNetImpl::VideoResNetImpl(const VideoResNetConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  stem = register_module("stem", video_stem(cfg_.variant));
  const auto kinds = stage_kinds(cfg_.variant);
  Sequential *stages[] = {&layer1, &layer2, &layer3, &layer4};
  int64_t in = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = 64 << s;
    Sequential stage;
    for (int64_t b = 0; b < cfg_.layers[s]; ++b) {
      stage->push_back(
          VideoBasicBlock(kinds[s], b == 0 ? in : planes, planes, b == 0 && s > 0 ? 2 : 1));
    }
    in = planes;
    *stages[s] = register_module("layer" + std::to_string(s + 1), stage);
  }
  fc = register_module("fc", make_linear(torch::nn::LinearOptions(512, cfg_.num_classes)));
  init_video_resnet(*this);
}

torch::Tensor VideoResNetImpl::forward(torch::Tensor clips) {
  auto x = stem->forward(to_channels_first(clips, "video-resnet"));
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  return fc(F::adaptive_avg_pool3d(x, F::AdaptiveAvgPool3dFuncOptions(1)).flatten(1));
}

nlohmann::json VideoResNetImpl::config() const { return cfg_; }

InputShape VideoResNetImpl::input_shape() const {
  return {cfg_.frames, 3, cfg_.image_size, cfg_.image_size};
}

// ---------------------------------------------------------------------------------------------

void S3DConfig::validate() const {
  // Two max-poolings halve time: 14 frames leave the 2 the head pools over.
  if (frames < 14) throw std::invalid_argument("s3d: frames must be at least 14");
  if (image_size < 224) throw std::invalid_argument("s3d: image_size must be at least 224");
  if (num_classes < 1) throw std::invalid_argument("s3d: num_classes must be > 0");
  if (dropout < 0 || dropout >= 1) throw std::invalid_argument("s3d: dropout must be in [0, 1)");
}

void to_json(nlohmann::json &j, const S3DConfig &c) {
  j = {{"frames", c.frames},
       {"image_size", c.image_size},
       {"num_classes", c.num_classes},
       {"dropout", c.dropout}};
}

void from_json(const nlohmann::json &j, S3DConfig &c) {
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "dropout", c.dropout);
}

S3DImpl::S3DImpl(const S3DConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  features = register_module("features", s3d_features());
  classifier = register_module(
      "classifier",
      Sequential(torch::nn::Dropout(cfg_.dropout), conv3d(1024, cfg_.num_classes, 1, 1, 0, true)));
}

torch::Tensor S3DImpl::forward(torch::Tensor clips) {
  TORCH_CHECK(
      clips.dim() == 5 && clips.size(1) >= 14 && clips.size(3) >= 224 && clips.size(4) >= 224,
      "s3d: clips must be [B, T >= 14, 3, H >= 224, W >= 224], got ", clips.sizes());
  auto x = features->forward(to_channels_first(clips, "s3d"));
  x = F::avg_pool3d(x, F::AvgPool3dFuncOptions({2, 7, 7}).stride(1));
  return classifier->forward(x).mean({2, 3, 4});
}

nlohmann::json S3DImpl::config() const { return cfg_; }

InputShape S3DImpl::input_shape() const {
  return {cfg_.frames, 3, cfg_.image_size, cfg_.image_size};
}

}  // namespace vidcls
