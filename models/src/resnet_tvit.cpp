#include "vidcls/resnet_tvit.h"

#include <nlohmann/json.hpp>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include "vidcls/init.h"
#include "vidcls/motion.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

void ResNetTViTConfig::validate() const {
  backbone.validate();
  TORCH_CHECK(backbone.num_classes == 0, "the backbone of ResNet + Temporal ViT has no fc layer");
  TORCH_CHECK(frames > 0, "frames must be > 0, got ", frames);
  TORCH_CHECK(image_size >= 32, "image_size must be >= 32, got ", image_size);
  TORCH_CHECK(num_classes > 0, "num_classes must be > 0, got ", num_classes);
  TORCH_CHECK(input == "rgb" || input == "motion" || input == "motion-stabilised" ||
                  input == "two-stream",
              "input must be 'rgb', 'motion', 'motion-stabilised' or 'two-stream', got '", input,
              "'");
  TORCH_CHECK(!sees_motion() || frames > 1, "input '", input,
              "' needs clips of more than one frame (a feature per pair of frames), got frames = ",
              frames);
}

ResNetTViTImpl::ResNetTViTImpl(const ResNetTViTConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  backbone = register_module("backbone", ResNet(cfg_.backbone));
  if (cfg_.input == "two-stream")
    motion_backbone = register_module("motion_backbone", ResNet(cfg_.backbone));
  proj = register_module(
      "proj", make_linear(torch::nn::LinearOptions(cfg_.feature_dim(), cfg_.temporal.dim)));
  temporal = register_module(
      "temporal", TokenEncoder(cfg_.temporal, cfg_.tokens(), true, cfg_.temporal_pos_embed));
  head = register_module(
      "head", make_linear(torch::nn::LinearOptions(cfg_.temporal.dim, cfg_.num_classes)));
  if (!init_skipped()) {
    torch::NoGradGuard no_grad;
    for (auto *l : {&proj, &head}) {
      trunc_normal_((*l)->weight, 0.02);
      (*l)->bias.zero_();
    }
  }
  set_backbone_frozen(cfg_.freeze_backbone);
}

void ResNetTViTImpl::set_backbone_frozen(bool frozen) {
  cfg_.freeze_backbone = frozen;
  for (auto *net : {&backbone, &motion_backbone}) {
    if (!*net) continue;
    for (auto &p : (*net)->parameters()) p.set_requires_grad(!frozen);
    (*net)->train(is_training() && !frozen);
  }
}

void ResNetTViTImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!cfg_.freeze_backbone) return;
  backbone->train(false);
  if (motion_backbone) motion_backbone->train(false);
}

InputShape ResNetTViTImpl::input_shape() const {
  return {cfg_.frames, 3, cfg_.image_size, cfg_.image_size};
}

torch::Tensor ResNetTViTImpl::frame_features(const torch::Tensor &frames,
                                             const torch::Tensor &earlier) {
  TORCH_CHECK(!cfg_.sees_motion() || (earlier.defined() && earlier.sizes() == frames.sizes()),
              "input '", cfg_.input, "' computes a frame's feature from the frame and the one "
              "sampled before it: give both, [N, 3, H, W] each");
  c10::optional<torch::NoGradGuard> no_grad;
  if (cfg_.freeze_backbone) no_grad.emplace();
  if (cfg_.input == "rgb") return backbone->features(frames);
  const auto motion = pair_motion(earlier, frames, cfg_.input == "motion-stabilised");
  if (cfg_.input != "two-stream") return backbone->features(motion);
  return torch::cat({backbone->features(frames), motion_backbone->features(motion)}, 1);
}

torch::Tensor ResNetTViTImpl::window_tokens(const torch::Tensor &windows) {
  TORCH_CHECK(windows.dim() == 5 && windows.size(1) == token_window(), "expected windows [N, ",
              token_window(), ", C, H, W], got ", windows.sizes());
  const auto frames = windows.select(1, token_window() - 1);
  return frame_context() > 0 ? frame_features(frames, windows.select(1, 0))
                             : frame_features(frames);
}

torch::Tensor ResNetTViTImpl::classify_features(const torch::Tensor &features) {
  TORCH_CHECK(features.dim() == 3 && features.size(1) == cfg_.tokens() &&
                  features.size(2) == cfg_.feature_dim(),
              "expected frame features [B, ", cfg_.tokens(), ", ", cfg_.feature_dim(), "], got ",
              features.sizes());
  auto t = temporal(proj(features), cfg_.tokens(), 1);
  auto x = F::dropout(t.select(1, 0),
                      F::DropoutFuncOptions().p(cfg_.head_dropout).training(is_training()));
  return head(x);
}

torch::Tensor ResNetTViTImpl::forward(torch::Tensor clips) {
  TORCH_CHECK(clips.dim() == 5 && clips.size(1) == cfg_.frames && clips.size(2) == 3 &&
                  clips.size(3) == cfg_.image_size && clips.size(4) == cfg_.image_size,
              "ResNet + Temporal ViT expects clips [B, ", cfg_.frames, ", 3, ", cfg_.image_size,
              ", ", cfg_.image_size, "], got ", clips.sizes());
  const int64_t B = clips.size(0), T = cfg_.tokens(), skip = cfg_.frames - T;
  const auto later = clips.narrow(1, skip, T).flatten(0, 1);
  const auto f = cfg_.sees_motion()
                     ? frame_features(later, clips.narrow(1, 0, T).flatten(0, 1))
                     : frame_features(later);
  return classify_features(f.reshape({B, T, f.size(1)}));
}

nlohmann::json ResNetTViTImpl::config() const { return cfg_; }

}  // namespace vidcls
