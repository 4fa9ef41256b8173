// Behaviour of the three models that training and the elements rely on: shapes, gradients,
// weight sharing, the frozen backbone, tubelet initialisation, presets and threads.
#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <set>
#include <string>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function.h>
#include <torch/nn/functional/conv.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "vidcls/layers.h"
#include "vidcls/motion.h"
#include "vidcls/registry.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/runtime.h"
#include "vidcls/vivit.h"

namespace {

using vidcls::ClassifierPtr;

torch::Tensor random_clip(const vidcls::InputShape &s, int64_t batch = 2) {
  return torch::randn({batch, s.frames, s.channels, s.height, s.width});
}

int64_t count(const std::vector<torch::Tensor> &params) {
  int64_t n = 0;
  for (const auto &p : params) n += p.numel();
  return n;
}

class PresetTest : public ::testing::TestWithParam<std::string> {};

// CPU presets: forward gives [B, classes], backward reaches every trainable parameter.
TEST_P(PresetTest, ForwardBackwardShapes) {
  torch::manual_seed(0);
  const auto &preset = vidcls::find_preset(GetParam());
  auto model = vidcls::make_preset_model(preset.name, 5);
  EXPECT_EQ(model->architecture(), preset.architecture);
  EXPECT_EQ(model->num_classes(), 5);
  const auto shape = model->input_shape();
  EXPECT_EQ(shape.frames, preset.clip.frames);
  EXPECT_EQ(shape.height, preset.clip.height);
  EXPECT_EQ(shape.width, preset.clip.width);
  model->train();
  auto logits = model->forward(random_clip(shape));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 5}));
  logits.square().sum().backward();
  for (const auto &p : model->named_parameters()) {
    if (!p.value().requires_grad()) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " got no gradient";
  }
  // A config read back from JSON builds the same architecture.
  auto again = vidcls::make_model(model->architecture(), model->config());
  EXPECT_EQ(count(again->parameters()), count(model->parameters()));
}

INSTANTIATE_TEST_SUITE_P(CpuPresets, PresetTest,
                         ::testing::Values("vivit-xs", "mini-vivit-xs", "resnet18-tvit-xs"));

// The large presets at their documented shapes (batch 1): forward and backward on the CPU.
class LargePresetTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LargePresetTest, ForwardBackwardAtDocumentedShape) {
  torch::manual_seed(0);
  auto model = vidcls::make_preset_model(GetParam());
  const auto shape = model->input_shape();
  EXPECT_EQ(shape.height, 224);
  model->train();
  auto logits = model->forward(random_clip(shape, 1));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{1, model->num_classes()}));
  logits.sum().backward();
  int64_t with_grad = 0;
  for (const auto &p : model->parameters()) with_grad += p.grad().defined();
  EXPECT_GT(with_grad, 0);
}

INSTANTIATE_TEST_SUITE_P(Presets, LargePresetTest,
                         ::testing::Values("vivit-b16x2-fe", "vivit-seed", "mini-vivit-ti",
                                           "mini-vivit-seed", "resnet50-tvit"));

TEST(Presets, DocumentedWidthsAndDepths) {
  auto fe = vidcls::preset_config("vivit-b16x2-fe");
  EXPECT_EQ(fe["spatial"]["dim"], 768);
  EXPECT_EQ(fe["spatial"]["depth"], 12);
  EXPECT_EQ(fe["temporal"]["depth"], 4);
  EXPECT_EQ(fe["tubelet"], (std::vector<int64_t>{2, 16, 16}));
  auto seed = vidcls::preset_config("vivit-seed");
  EXPECT_EQ(seed["temporal"]["depth"], 12);
  EXPECT_EQ(seed["temporal_pos_embed"], false);
  EXPECT_EQ(seed["tubelet_bias_from_image"], false);
  EXPECT_EQ(seed["pos_embed_from_image"], false);
  EXPECT_DOUBLE_EQ(seed["spatial"]["drop_path"].get<double>(), 0.5);
  auto mini = vidcls::preset_config("mini-vivit-seed");
  EXPECT_EQ(mini["spatial"]["dim"], 192);
  EXPECT_EQ(mini["spatial"]["heads"], 3);
  EXPECT_EQ(mini["spatial"]["depth"], 4);
  EXPECT_EQ(mini["temporal"]["depth"], 4);
  EXPECT_EQ(mini["spatial"]["share"], 1);
  auto r50 = vidcls::preset_config("resnet50-tvit");
  EXPECT_EQ(r50["backbone"]["depth"], 50);
  EXPECT_EQ(r50["temporal"]["dim"], 768);
  EXPECT_THROW(vidcls::find_preset("vivit-huge"), std::invalid_argument);
  EXPECT_THROW(vidcls::make_model("i3d", nlohmann::json::object()), std::invalid_argument);
}

// MiniViT multiplexing keeps about 1/R of the block weights of the same model unshared.
TEST(MiniViViT, HoldsAboutOneOverRBlockParameters) {
  for (const char *name : {"mini-vivit-ti", "mini-vivit-xs"}) {
    auto cfg = vidcls::preset_config(name).get<vidcls::ViViTConfig>();
    const int64_t R = cfg.spatial.share;
    ASSERT_GE(R, 2) << name;
    auto unshared_cfg = cfg;
    for (auto *e : {&unshared_cfg.spatial, &unshared_cfg.temporal}) {
      e->share = 1;
      e->attn_mix = false;
      e->mlp_dwconv = false;
    }
    vidcls::ViViT shared(cfg), unshared(unshared_cfg);
    auto block_params = [](vidcls::ViViT &m) {
      int64_t n = 0;
      for (auto *enc : {&m->spatial, &m->temporal}) {
        n += count((*enc)->blocks->parameters()) + count((*enc)->weights->parameters());
      }
      return n;
    };
    const double ratio =
        static_cast<double>(block_params(shared)) / static_cast<double>(block_params(unshared));
    EXPECT_GT(ratio, 1.0 / R) << name;          // per-layer norms and transforms add a little
    EXPECT_LT(ratio, 1.0 / R + 0.05) << name;   // but only a little
    // And the shared model computes: its per-layer transforms get gradients.
    auto out = shared->forward(random_clip(shared->input_shape(), 1));
    out.sum().backward();
    auto *b1 = shared->spatial->blocks[1]->as<vidcls::BlockImpl>();
    ASSERT_TRUE(b1->mix_pre && b1->dwconv);
    EXPECT_TRUE(b1->mix_pre->weight.grad().defined());
    EXPECT_TRUE(b1->dwconv->weight.grad().defined());
  }
}

// Distillation needs per-layer hidden states and attention maps.
TEST(MiniViViT, TraceExposesHiddenStatesAndAttention) {
  auto model = std::dynamic_pointer_cast<vidcls::ViViTImpl>(
      vidcls::make_preset_model("mini-vivit-xs"));
  ASSERT_TRUE(model);
  const auto &cfg = model->cfg();
  vidcls::ViViTTrace trace;
  auto logits = model->forward_trace(random_clip(model->input_shape()), trace, true);
  ASSERT_EQ(trace.spatial.hidden.size(), static_cast<size_t>(cfg.spatial.depth));
  ASSERT_EQ(trace.temporal.attention.size(), static_cast<size_t>(cfg.temporal.depth));
  const int64_t n = cfg.grid_h() * cfg.grid_w() + 1;
  EXPECT_EQ(trace.spatial.attention[0].sizes(),
            (std::vector<int64_t>{2 * cfg.grid_t(), cfg.spatial.heads, n, n}));
  // Attention maps (after the post-softmax mix, which starts as the identity) sum to one.
  EXPECT_TRUE(torch::allclose(trace.spatial.attention[0].sum(-1),
                              torch::ones({2 * cfg.grid_t(), cfg.spatial.heads, n}), 1e-5, 1e-5));
  EXPECT_EQ(trace.spatial_cls.sizes(), (std::vector<int64_t>{2, cfg.grid_t(), cfg.spatial.dim}));
  EXPECT_TRUE(torch::equal(logits, model->head(trace.features)));
}

// With a frozen backbone no backbone parameter receives a gradient and BatchNorm statistics do
// not move in training mode; unfrozen, both change.
TEST(ResNetTViT, FrozenBackboneGetsNoGradient) {
  torch::manual_seed(0);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 3);
  cfg["input"] = "two-stream";  // both backbones
  cfg["freeze_backbone"] = true;  // the study's setting (the xs preset trains its backbone)
  auto model = std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(
      vidcls::make_model("resnet-tvit", cfg));
  ASSERT_TRUE(model);
  ASSERT_TRUE(model->backbone_frozen());
  model->train();
  EXPECT_FALSE(model->backbone->is_training());
  auto mean_before = model->backbone->bn1->running_mean.clone();
  auto clip = random_clip(model->input_shape());
  model->forward(clip).sum().backward();
  for (const auto &p : model->backbone->named_parameters()) {
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  ASSERT_TRUE(model->motion_backbone);
  for (const auto &p : model->motion_backbone->named_parameters())
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  EXPECT_FALSE(model->motion_backbone->is_training());
  EXPECT_TRUE(model->proj->weight.grad().defined());
  EXPECT_TRUE(torch::equal(mean_before, model->backbone->bn1->running_mean));

  model->set_backbone_frozen(false);
  model->train();
  EXPECT_TRUE(model->backbone->is_training());
  EXPECT_TRUE(model->motion_backbone->is_training());
  model->forward(clip).sum().backward();
  EXPECT_TRUE(model->backbone->conv1->weight.grad().defined());
  EXPECT_TRUE(model->motion_backbone->conv1->weight.grad().defined());
  EXPECT_FALSE(torch::equal(mean_before, model->backbone->bn1->running_mean));
}

// The per-clip path over cached per-frame features gives the same logits as the full forward.
TEST(ResNetTViT, FeaturePathMatchesForward) {
  auto model = std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(
      vidcls::make_preset_model("resnet18-tvit-xs", 4));
  model->eval();
  torch::NoGradGuard no_grad;
  auto clip = random_clip(model->input_shape());
  const int64_t T = model->cfg().tokens(), skip = clip.size(1) - T;
  auto features = model->frame_features(clip.narrow(1, skip, T).flatten(0, 1),
                                        clip.narrow(1, 0, T).flatten(0, 1))
                      .reshape({2, T, -1});
  EXPECT_TRUE(torch::allclose(model->classify_features(features), model->forward(clip), 1e-5,
                              1e-5));
}

// The backbone inputs of ResNet + Temporal ViT: resnet18-tvit-xs with `input` set.
std::shared_ptr<vidcls::ResNetTViTImpl> resnet_tvit(const std::string &input, int64_t classes) {
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", classes);
  cfg["input"] = input;
  return std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(
      vidcls::make_model("resnet-tvit", cfg));
}

// Shapes of each input: a clip of 9 frames gives 9 RGB tokens, or 8 pair tokens with motion; the
// two streams' features are concatenated (late fusion).
TEST(ResNetTViT, ShapesOfEachBackboneInput) {
  struct Case {
    const char *input;
    int64_t context, tokens, dim;
  };
  for (const Case c : {Case{"rgb", 0, 9, 512}, Case{"motion", 1, 8, 512},
                       Case{"motion-stabilised", 1, 8, 512}, Case{"two-stream", 1, 8, 1024}}) {
    SCOPED_TRACE(c.input);
    torch::manual_seed(0);
    auto model = resnet_tvit(c.input, 5);
    EXPECT_EQ(model->config().at("input"), c.input);
    EXPECT_EQ(model->input_shape().frames, 9);
    EXPECT_EQ(model->frame_context(), c.context);
    EXPECT_EQ(static_cast<bool>(model->motion_backbone), std::string(c.input) == "two-stream");
    const auto clip = random_clip(model->input_shape());
    model->train();
    auto logits = model->forward(clip);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 5}));
    // The per-clip path over features of the clip's own frames (pairs) is forward's.
    model->eval();
    torch::NoGradGuard no_grad;
    const auto later = clip.narrow(1, c.context, c.tokens).flatten(0, 1);
    const auto earlier = clip.narrow(1, 0, c.tokens).flatten(0, 1);
    const auto f = model->frame_features(later, earlier);
    ASSERT_EQ(f.sizes(), (std::vector<int64_t>{2 * c.tokens, c.dim}));
    EXPECT_TRUE(torch::allclose(model->classify_features(f.reshape({2, c.tokens, c.dim})),
                                model->forward(clip), 1e-5, 1e-5));
  }
}

// The backbone's pooling: a frame's feature is the mean ("avg") or the max ("max") of the last
// stage's map, per channel; the choice is in the checkpoint's config, and another is refused.
TEST(ResNetTViT, BackbonePoolIsTheMeanOrTheMaxOfTheLastMap) {
  torch::manual_seed(0);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 3);
  cfg["backbone"]["pool"] = "max";
  auto model = std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(
      vidcls::make_model("resnet-tvit", cfg));
  ASSERT_TRUE(model);
  EXPECT_EQ(model->config().at("backbone").at("pool"), "max");
  model->eval();
  torch::NoGradGuard no_grad;
  auto &net = *model->backbone;
  const auto images = torch::randn({3, 3, 96, 96});  // a 3x3 last map
  auto map = torch::relu(net.bn1(net.conv1(images)));
  map = torch::max_pool2d(map, {3, 3}, {2, 2}, {1, 1});
  map = net.layer4->forward(net.layer3->forward(net.layer2->forward(net.layer1->forward(map))));
  ASSERT_EQ(map.size(2), 3);
  EXPECT_TRUE(torch::allclose(net.features(images), map.amax({2, 3}), 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(net.features(images), map.mean({2, 3}), 1e-3, 1e-3));
  EXPECT_EQ(vidcls::preset_config("resnet18-tvit-xs").at("backbone").at("pool"), "avg");
  cfg["backbone"]["pool"] = "sum";
  try {
    vidcls::make_model("resnet-tvit", cfg);
    FAIL() << "accepted pool=sum";
  } catch (const c10::Error &e) {
    EXPECT_NE(std::string(e.what()).find("pool"), std::string::npos);
  }
}

// A motion feature needs the frame sampled before; a config that cannot make pairs is refused.
TEST(ResNetTViT, MotionInputsSayWhatTheyNeed) {
  auto model = resnet_tvit("motion", 3);
  const auto frames = torch::randn({2, 3, 64, 64});
  try {
    model->frame_features(frames);
    FAIL() << "a motion feature without the earlier frame";
  } catch (const c10::Error &e) {
    EXPECT_NE(std::string(e.what()).find("sampled before"), std::string::npos) << e.what();
  }
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 3);
  for (const auto &bad : {std::make_pair("optical-flow", 9), std::make_pair("motion", 1)}) {
    cfg["input"] = bad.first;
    cfg["frames"] = bad.second;
    try {
      vidcls::make_model("resnet-tvit", cfg);
      FAIL() << "accepted input " << bad.first << " with " << bad.second << " frames";
    } catch (const c10::Error &e) {
      EXPECT_NE(std::string(e.what()).find("input"), std::string::npos) << e.what();
    }
  }
}

// The motion image of a still pair is zero (a padded clip's repeated last frame), and a pattern
// moving right gives u > 0 where it has texture along x, whatever its contrast.
TEST(Motion, PairMotionSeesDirectionNotContrast) {
  const auto x = torch::arange(64, torch::kFloat).mul(0.4).sin().view({1, 1, 1, 64})
                     .expand({1, 3, 64, 64}).contiguous();
  const auto moved = torch::roll(x, {1}, {3});
  EXPECT_LT(vidcls::pair_motion(x, x).abs().max().item<float>(), 1e-7f);
  for (const float sign : {1.0f, -1.0f}) {
    const auto m = vidcls::pair_motion(sign * x, sign * moved);
    ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 3, 64, 64}));
    EXPECT_GT(m[0][0].narrow(1, 2, 60).mean().item<float>(), 0.3f) << "u, contrast " << sign;
    EXPECT_LT(m[0][1].abs().max().item<float>(), 1e-5f) << "no vertical motion";
  }
}

// Tubelet initialisation from a 2D patch embedding: on a static clip (all frames the same
// image) both modes give exactly the 2D embedding of that image.
TEST(TubeletInit, StaticClipGivesTheImageEmbedding) {
  torch::manual_seed(1);
  const int64_t t = 4, p = 8, D = 16;
  auto k2 = torch::randn({D, 3, p, p});
  auto image = torch::randn({1, 3, 32, 32});
  auto expected = torch::nn::functional::conv2d(image, k2,
                                                torch::nn::functional::Conv2dFuncOptions().stride(p));
  auto clip = image.unsqueeze(2).expand({1, 3, t, 32, 32});  // [B, C, T, H, W]
  for (auto mode : {vidcls::TubeletInit::kCentralFrame, vidcls::TubeletInit::kAverage}) {
    auto k3 = vidcls::inflate_patch_kernel(k2, t, mode);
    ASSERT_EQ(k3.sizes(), (std::vector<int64_t>{D, 3, t, p, p}));
    auto got = torch::nn::functional::conv3d(
        clip, k3, torch::nn::functional::Conv3dFuncOptions().stride({t, p, p}));
    EXPECT_TRUE(torch::allclose(got.squeeze(2), expected, 1e-4, 1e-5));
  }
  auto central = vidcls::inflate_patch_kernel(k2, t, vidcls::TubeletInit::kCentralFrame);
  EXPECT_TRUE(torch::equal(central.select(2, t / 2), k2));
  EXPECT_EQ(central.select(2, 0).abs().sum().item<float>(), 0.0f);
  EXPECT_THROW(vidcls::tubelet_init_from_string("inflate"), std::invalid_argument);
}

// temporal-residual input: the model sees only what changes within the clip, so a static clip
// classifies the same whatever its image, and so does a clip with a constant image added to
// every frame; without it the image matters.
TEST(ViViT, TemporalResidualInputSeesOnlyWhatChanges) {
  torch::manual_seed(0);
  auto cfg = vidcls::preset_config("vivit-xs", 4);
  cfg["input_transform"] = "temporal-residual";
  auto model = vidcls::make_model("vivit", cfg);
  model->eval();
  const auto shape = model->input_shape();
  torch::NoGradGuard no_grad;
  auto still = [&](const torch::Tensor &image) {
    return image.unsqueeze(0).unsqueeze(0).expand({1, shape.frames, 3, shape.height, shape.width});
  };
  const auto a = torch::randn({3, shape.height, shape.width});
  const auto b = torch::randn({3, shape.height, shape.width});
  EXPECT_TRUE(torch::allclose(model->forward(still(a)), model->forward(still(b)), 1e-5, 1e-6));
  const auto moving = random_clip(shape, 1);
  EXPECT_TRUE(torch::allclose(model->forward(moving), model->forward(moving + still(a)), 1e-4,
                              1e-5));
  EXPECT_FALSE(torch::allclose(model->forward(moving), model->forward(still(a)), 1e-3, 1e-4));

  cfg["input_transform"] = "none";
  auto plain = vidcls::make_model("vivit", cfg);
  plain->eval();
  EXPECT_FALSE(torch::allclose(plain->forward(still(a)), plain->forward(still(b)), 1e-3, 1e-4));
  EXPECT_EQ(plain->config().at("input_transform"), "none");
  // Checkpoints written before the option existed read as "none".
  cfg.erase("input_transform");
  EXPECT_EQ(vidcls::make_model("vivit", cfg)->config().at("input_transform"), "none");
  cfg["input_transform"] = "frame-difference";
  try {
    vidcls::make_model("vivit", cfg);
    FAIL() << "accepted input_transform=frame-difference";
  } catch (const c10::Error &e) {
    EXPECT_NE(std::string(e.what()).find("input_transform"), std::string::npos);
  }
}

// A soft vertical (or horizontal) edge that moves by (dx, dy) pixels per frame: [1, T, 3, S, S].
torch::Tensor moving_edge(int64_t T, int64_t S, double dx, double dy, double contrast) {
  auto clip = torch::empty({1, T, 3, S, S});
  auto coord = torch::arange(S, torch::kFloat32);
  for (int64_t t = 0; t < T; ++t) {
    torch::Tensor img;
    if (dy == 0) img = torch::tanh((coord - (S / 2.0 - 8 + dx * t)) / 1.5).view({1, S}).expand({S, S});
    else img = torch::tanh((coord - (S / 2.0 - 8 + dy * t)) / 1.5).view({S, 1}).expand({S, S});
    for (int c = 0; c < 3; ++c) clip[0][t][c].copy_(img * contrast * (c + 1) / 3.0);
  }
  return clip;
}

TEST(ViViT, NormalFlowInputMeasuresTheMotionWhateverTheContrast) {
  const int64_t T = 8, S = 48;
  auto flow_at_edge = [&](const torch::Tensor &clip, int channel) {
    const auto in = vidcls::motion_input(clip, "normal-flow");
    EXPECT_EQ(in.sizes(), clip.sizes());
    // Where the edge is (strong gradient) in frame pair 3 -> 4: the edge sits near S/2 - 8 + 3.5.
    return in[0][3][channel];
  };
  // Right by one pixel per frame: u is about +1 across the edge, v about 0.
  const auto right = moving_edge(T, S, 1, 0, 1.0);
  const auto u = flow_at_edge(right, 0);
  const int64_t edge = S / 2 - 8 + 3;
  EXPECT_NEAR(u[S / 2][edge].item<float>(), 1.0, 0.15);
  EXPECT_NEAR(u[S / 2][edge + 1].item<float>(), 1.0, 0.15);
  EXPECT_NEAR(flow_at_edge(right, 1).abs().max().item<float>(), 0.0, 1e-6);
  // Left: u flips. Down: v is about +1 (image rows grow downwards).
  EXPECT_NEAR(flow_at_edge(moving_edge(T, S, -1, 0, 1.0), 0)[S / 2][edge - 7].item<float>(), -1.0,
              0.15);
  EXPECT_NEAR(flow_at_edge(moving_edge(T, S, 0, 1, 1.0), 1)[edge][S / 2].item<float>(), 1.0, 0.15);
  // The same motion with the contrast reversed (dark on light instead of light on dark): the same
  // flow, exactly; only the grey residual changes sign.
  const auto a = vidcls::motion_input(right, "normal-flow");
  const auto b = vidcls::motion_input(-right, "normal-flow");
  EXPECT_TRUE(torch::equal(a.narrow(2, 0, 2), b.narrow(2, 0, 2)));
  EXPECT_TRUE(torch::allclose(a.narrow(2, 2, 1), -b.narrow(2, 2, 1)));
  // Nothing moves: nothing to see.
  const auto still = right.narrow(1, 0, 1).expand({1, T, 3, S, S});
  EXPECT_LT(vidcls::motion_input(still, "normal-flow").abs().max().item<float>(), 1e-6f);

  // The CPU presets use it; a model with it classifies any still clip the same.
  torch::manual_seed(0);
  auto cfg = vidcls::preset_config("vivit-xs", 4);
  EXPECT_EQ(cfg.at("input_transform"), "normal-flow");
  EXPECT_EQ(vidcls::preset_config("mini-vivit-xs", 4).at("input_transform"), "normal-flow");
  auto model = vidcls::make_model("vivit", cfg);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto shape = model->input_shape();
  auto still_of = [&](const torch::Tensor &image) {
    return image.unsqueeze(0).unsqueeze(0).expand({1, shape.frames, 3, shape.height, shape.width});
  };
  EXPECT_TRUE(torch::allclose(model->forward(still_of(torch::randn({3, 64, 64}))),
                              model->forward(still_of(torch::randn({3, 64, 64}))), 1e-5, 1e-6));
  cfg["channels"] = 4;
  EXPECT_THROW(vidcls::make_model("vivit", cfg), c10::Error);
}

// A textured scene seen by a camera that moves by (cam_x, cam_y) pixels per frame, with a soft
// square that moves by (obj_x, 0) per frame relative to the scene: [1, T, 3, S, S]. Analytic, so
// sub-pixel shifts are exact.
torch::Tensor drifting_scene(int64_t T, int64_t S, double cam_x, double cam_y, double obj_x) {
  auto clip = torch::empty({1, T, 3, S, S});
  const auto x = torch::arange(S, torch::kFloat64).view({1, S}).expand({S, S});
  const auto y = torch::arange(S, torch::kFloat64).view({S, 1}).expand({S, S});
  for (int64_t t = 0; t < T; ++t) {
    const auto xs = x + cam_x * t, ys = y + cam_y * t;  // scene coordinates of each pixel
    auto bg = 0.8 * torch::sin(0.45 * xs + 0.25 * ys + 0.5) + 0.6 * torch::sin(0.35 * ys - 0.2 * xs) +
              0.4 * torch::cos(0.5 * xs + 0.4 * ys + 1.0);
    const double ox = 20 + obj_x * t, oy = 32;  // the object's centre in scene coordinates
    const auto inside = 0.25 * (torch::tanh((7 - (xs - ox).abs()) / 1.2) + 1) *
                        (torch::tanh((7 - (ys - oy).abs()) / 1.2) + 1);
    const auto img = bg * (1 - inside) + 1.5 * inside;
    for (int c = 0; c < 3; ++c) clip[0][t][c].copy_(img.to(torch::kFloat32) * (0.8 + 0.1 * c));
  }
  return clip;
}

TEST(ViViT, StabilisedNormalFlowRemovesTheCameraMotionAndKeepsTheObjects) {
  const int64_t T = 8, S = 64;
  const auto clip = drifting_scene(T, S, 0.6, -0.4, 1.5);
  const auto plain = vidcls::motion_input(clip, "normal-flow");
  const auto stable = vidcls::motion_input(clip, "normal-flow-stabilised");
  ASSERT_EQ(stable.sizes(), clip.sizes());
  // Background well away from the object (its path covers x in [13, 39] in frame 3 -> 4 at most).
  const auto bg_plain = plain.narrow(1, 3, 1).narrow(2, 0, 2).narrow(4, 46, 14).narrow(3, 4, 56);
  const auto bg_stable = stable.narrow(1, 3, 1).narrow(2, 0, 2).narrow(4, 46, 14).narrow(3, 4, 56);
  EXPECT_GT(bg_plain.abs().mean().item<float>(), 0.1f) << "the camera motion shows in the flow";
  EXPECT_LT(bg_stable.abs().mean().item<float>(), 0.01f) << "and is gone once stabilised";
  // The object's motion relative to the scene survives: u at its trailing and leading vertical
  // edges (frame pair 3 -> 4: centre at x = 20 + 1.5 * 3.5 - 0.6 * 3.5 ~ 23) is about +1.5.
  const auto u = stable[0][3][0];
  const double centre = 20 + 3.5 * (1.5 - 0.6);
  for (double edge : {centre - 7, centre + 7}) {
    const auto col = static_cast<int64_t>(std::lround(edge));
    const double row_centre = 32 + 0.4 * 3.5;
    const float mean_u =
        u.narrow(0, static_cast<int64_t>(row_centre) - 3, 6).narrow(1, col - 1, 3).mean().item<float>();
    EXPECT_NEAR(mean_u, 1.5, 0.4) << "edge at x " << edge << ": u " << u[static_cast<int64_t>(row_centre)];
  }
  // The grey residual is the same channel as normal-flow's; a still clip gives nothing.
  EXPECT_TRUE(torch::equal(plain.narrow(2, 2, 1), stable.narrow(2, 2, 1)));
  const auto still = clip.narrow(1, 0, 1).expand({1, T, 3, S, S});
  EXPECT_LT(vidcls::motion_input(still, "normal-flow-stabilised").abs().max().item<float>(), 1e-5f);
  // A model with it, through the config.
  auto cfg = vidcls::preset_config("vivit-xs", 4);
  cfg["input_transform"] = "normal-flow-stabilised";
  auto model = vidcls::make_model("vivit", cfg);
  EXPECT_EQ(model->config().at("input_transform"), "normal-flow-stabilised");
  cfg["input_transform"] = "normal-flow-steady";
  EXPECT_THROW(vidcls::make_model("vivit", cfg), c10::Error);
}

// ResNet + Temporal ViT's "motion-stabilised": the motion image of a pair (flow and grey
// difference) loses the camera's drift on the background, and a model takes it from its config.
TEST(ResNetTViT, StabilisedMotionRemovesTheCameraMotion) {
  const auto clip = drifting_scene(8, 64, 0.6, -0.4, 1.5);
  const auto earlier = clip[0].narrow(0, 3, 1), later = clip[0].narrow(0, 4, 1);
  const auto plain = vidcls::pair_motion(earlier, later);
  const auto stable = vidcls::pair_motion(earlier, later, true);
  EXPECT_TRUE(torch::equal(plain, vidcls::pair_motion(earlier, later, false)));
  ASSERT_EQ(stable.sizes(), (std::vector<int64_t>{1, 3, 64, 64}));
  for (int64_t c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    const auto bg = [&](const torch::Tensor &m) {
      return m[0][c].narrow(1, 46, 14).narrow(0, 4, 56).abs().mean().item<float>();
    };
    EXPECT_GT(bg(plain), 0.05f) << "the camera motion shows";
    EXPECT_LT(bg(stable), bg(plain) / 10) << "and is gone once stabilised";
  }
  // The same weights on the two inputs: the features differ by what the backbone saw.
  torch::manual_seed(0);
  auto model = resnet_tvit("motion-stabilised", 3);
  torch::manual_seed(0);
  auto unstabilised = resnet_tvit("motion", 3);
  EXPECT_EQ(model->config().at("input"), "motion-stabilised");
  EXPECT_EQ(model->frame_context(), 1);
  EXPECT_FALSE(model->motion_backbone);
  EXPECT_TRUE(
      torch::equal(model->backbone->parameters()[0], unstabilised->backbone->parameters()[0]));
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(torch::allclose(model->frame_features(later, earlier),
                               unstabilised->frame_features(later, earlier)));
}

// Inference embeds clip by clip and runs the spatial encoder a few frames at a time (its
// activations stay small); the logits are those of the whole batch at once, as training computes
// them. mini-vivit-ti (197 tokens, 768-wide MLP: 27 frames at a time) takes 4 clips one after
// another; vivit-b16x2-fe (3072-wide MLP: 6 frames at a time) splits a clip's 16 slices 6+6+4.
void expect_chunked_equals_whole(const std::string &preset, int64_t batch) {
  torch::manual_seed(3);
  auto model = vidcls::make_preset_model(preset, 7);
  model->eval();
  const auto shape = model->input_shape();
  auto clips = torch::randn({batch, shape.frames, shape.channels, shape.height, shape.width});
  torch::Tensor whole, chunked;
  {
    torch::AutoGradMode grad(true);  // the path that keeps activations for a backward pass
    whole = model->forward(clips).detach();
  }
  {
    torch::NoGradGuard no_grad;
    chunked = model->forward(clips);
  }
  EXPECT_TRUE(torch::allclose(whole, chunked, 1e-5, 1e-5))
      << preset << ": " << (whole - chunked).abs().max().item<float>();
  EXPECT_GT(whole.std().item<float>(), 0.0f);
}

TEST(ViViT, ChunkedInferenceGivesTheLogitsOfTheWholeBatch) {
  expect_chunked_equals_whole("mini-vivit-ti", 4);
  expect_chunked_equals_whole("vivit-b16x2-fe", 1);
}

// A clip as a sequence of tubelet tokens (what vividinfer's reuse runs): the tubelets encoded on
// their own, then the temporal transformer, give the clip's logits, for the inputs whose tubelets
// depend on their own frames; a clip-wide input transform refuses and says why.
TEST(ViViT, TubeletTokensGiveTheClipsLogits) {
  torch::NoGradGuard no_grad;
  for (const auto &[preset, input] :
       std::vector<std::pair<std::string, std::string>>{{"vivit-xs", "tubelet-normal-flow"},
                                                        {"mini-vivit-xs", "tubelet-normal-flow"},
                                                        {"mini-vivit-ti", "none"}}) {
    torch::manual_seed(4);
    auto cfg = vidcls::preset_config(preset, 5);
    cfg["input_transform"] = input;
    auto model = vidcls::make_model(vidcls::find_preset(preset).architecture, cfg);
    model->eval();
    auto *net = model->token_sequence();
    ASSERT_NE(net, nullptr);
    EXPECT_EQ(net->token_reuse_blocker(), "");
    const auto shape = model->input_shape();
    const auto clips = torch::randn({2, shape.frames, shape.channels, shape.height, shape.width});
    const int64_t n = net->tokens_per_clip(shape.frames), w = net->token_window();
    EXPECT_EQ(n, shape.frames / 2);
    const auto windows = clips.reshape({2 * n, w, shape.channels, shape.height, shape.width});
    const auto tokens = net->window_tokens(windows);
    const auto logits = net->classify_tokens(tokens.reshape({2, n, tokens.size(1)}));
    EXPECT_LT((logits - model->forward(clips)).abs().max().item<float>(), 1e-5f) << preset;
  }
  // "tubelet-normal-flow" is "normal-flow" within each tubelet.
  const auto clip = torch::randn({1, 8, 3, 16, 16});
  const auto per_tubelet = vidcls::motion_input(clip, "tubelet-normal-flow", 2);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_TRUE(torch::allclose(per_tubelet.narrow(1, 2 * k, 2),
                                vidcls::motion_input(clip.narrow(1, 2 * k, 2), "normal-flow"),
                                1e-6, 1e-6));
  }
  auto flow = vidcls::make_preset_model("vivit-xs", 5);
  const auto why = flow->token_sequence()->token_reuse_blocker();
  EXPECT_NE(why.find("'normal-flow' looks at the whole clip"), std::string::npos) << why;
  EXPECT_THROW(flow->token_sequence()->window_tokens(torch::zeros({1, 2, 3, 64, 64})), c10::Error);
}

TEST(Config, InvalidConfigsAreRefusedWithTheFieldNamed) {
  auto cfg = vidcls::preset_config("vivit-xs");
  cfg["frames"] = 7;  // not a multiple of the tubelet length
  try {
    vidcls::make_model("vivit", cfg);
    FAIL() << "accepted frames=7";
  } catch (const c10::Error &e) {
    EXPECT_NE(std::string(e.what()).find("frames"), std::string::npos);
  }
  cfg = vidcls::preset_config("vivit-xs");
  cfg["spatial"]["heads"] = 5;  // 96 is not divisible by 5
  EXPECT_THROW(vidcls::make_model("vivit", cfg), c10::Error);
  auto r = vidcls::preset_config("resnet18-tvit-xs");
  r["backbone"]["depth"] = 20;
  EXPECT_THROW(vidcls::make_model("resnet-tvit", r), c10::Error);
}

// Restores the process-wide attention path when a test ends, pass or fail.
struct AttentionPathScope {
  explicit AttentionPathScope(vidcls::AttentionPath p) { vidcls::set_attention_path(p); }
  ~AttentionPathScope() { vidcls::set_attention_path(vidcls::AttentionPath::kAuto); }
};

struct BlockRun {
  torch::Tensor out, grad_in;
  std::vector<torch::Tensor> grads;
  std::string graph;  // names of the autograd nodes that made `out`
};

std::string autograd_graph(const torch::Tensor &out) {
  std::string names;
  std::vector<std::shared_ptr<torch::autograd::Node>> todo{out.grad_fn()};
  std::set<torch::autograd::Node *> seen;
  while (!todo.empty()) {
    auto node = todo.back();
    todo.pop_back();
    if (!node || !seen.insert(node.get()).second) continue;
    names += node->name() + " ";
    for (const auto &edge : node->next_edges()) todo.push_back(edge.function);
  }
  return names;
}

BlockRun run_block(vidcls::Block &block, vidcls::BlockWeights &w, const torch::Tensor &x,
                   const torch::Tensor &upstream, vidcls::AttentionPath path) {
  AttentionPathScope scope(path);
  block->zero_grad();
  w->zero_grad();
  auto in = x.detach().clone().requires_grad_(true);
  auto out = block->forward(in, w, 1, 4, 4);
  const std::string graph = autograd_graph(out);
  (out * upstream).sum().backward();
  BlockRun r{out.detach(), in.grad().detach(), {}, graph};
  for (const auto &p : w->parameters()) r.grads.push_back(p.grad().detach().clone());
  for (const auto &p : block->parameters()) r.grads.push_back(p.grad().detach().clone());
  return r;
}

// LibTorch >= 2.0 computes attention with the fused scaled-dot-product kernel; the explicit
// softmax path stays for 1.13, for Mini-ViViT's attention-map mixing and for tracing. Both must
// give one model: the same outputs and the same gradients, in float32 and float64.
TEST(Attention, FusedKernelMatchesTheMathPath) {
  if (!vidcls::fused_attention_available())
    GTEST_SKIP() << "this LibTorch (" << TORCH_VERSION << ") has no scaled_dot_product_attention";
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    torch::manual_seed(0);
    vidcls::EncoderConfig cfg;
    cfg.dim = 64;
    cfg.heads = 4;
    cfg.mlp_dim = 128;
    vidcls::Block block(cfg, 0.0);
    vidcls::BlockWeights w(cfg);
    block->to(dtype);
    w->to(dtype);
    block->train();
    // 1 CLS token + a 4x4 grid, batch 3: q, k and v reach the kernel as strided views.
    auto x = torch::randn({3, 17, cfg.dim}, torch::dtype(dtype));
    auto upstream = torch::randn({3, 17, cfg.dim}, torch::dtype(dtype));
    auto fused = run_block(block, w, x, upstream, vidcls::AttentionPath::kAuto);
    auto math = run_block(block, w, x, upstream, vidcls::AttentionPath::kMath);
    const double tol = dtype == torch::kFloat64 ? 1e-10 : 2e-5;
    EXPECT_TRUE(torch::allclose(fused.out, math.out, tol, tol)) << dtype;
    // The two runs did take different kernels.
    EXPECT_TRUE(fused.graph.find("ScaledDotProduct") != std::string::npos) << fused.graph;
    EXPECT_TRUE(math.graph.find("ScaledDotProduct") == std::string::npos) << math.graph;
    EXPECT_TRUE(math.graph.find("Softmax") != std::string::npos) << math.graph;
    EXPECT_TRUE(torch::allclose(fused.grad_in, math.grad_in, tol, tol)) << dtype;
    ASSERT_EQ(fused.grads.size(), math.grads.size());
    for (size_t i = 0; i < fused.grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(fused.grads[i], math.grads[i], tol, tol))
          << dtype << " parameter " << i << " differs by "
          << (fused.grads[i] - math.grads[i]).abs().max().item<double>();
  }
}

// The whole ViViT (spatial then temporal encoder) gives the same logits either way, so a
// checkpoint trained on Debian 12 (math path) classifies alike on Debian 13 (fused path).
TEST(Attention, ViViTLogitsAgreeAcrossPaths) {
  if (!vidcls::fused_attention_available())
    GTEST_SKIP() << "this LibTorch (" << TORCH_VERSION << ") has no scaled_dot_product_attention";
  torch::manual_seed(0);
  auto model = vidcls::make_preset_model("vivit-xs", 6);
  model->eval();
  torch::NoGradGuard no_grad;
  auto clip = random_clip(model->input_shape());
  torch::Tensor fused, math;
  {
    AttentionPathScope scope(vidcls::AttentionPath::kAuto);
    fused = model->forward(clip);
  }
  {
    AttentionPathScope scope(vidcls::AttentionPath::kMath);
    math = model->forward(clip);
  }
  EXPECT_TRUE(torch::allclose(fused, math, 1e-4, 1e-5))
      << "max difference " << (fused - math).abs().max().item<double>();
}

TEST(Runtime, ThreadsFollowTheAvailableCores) {
  const int n = vidcls::configure_runtime();
  if (std::getenv("OMP_NUM_THREADS") == nullptr && std::getenv("VIDCLS_NUM_THREADS") == nullptr) {
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    EXPECT_EQ(n, CPU_COUNT(&set));
  }
  EXPECT_EQ(at::get_num_threads(), n);
}

}  // namespace
