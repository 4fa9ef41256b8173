// Pretrained image weights as users download them, imported into our models. The files are made
// at test time by tests/parity/make_pretrained.py from seeded random torchvision models, so every
// naming holds the same weights and each must import to the same model.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <torch/nn/functional/conv.h>
#include <torch/torch.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/pretrained.h"
#include "vidcls/registry.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/vivit.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

namespace vidcls {
namespace {

constexpr const char *kKinds[] = {
    "tv-vit-small",  "timm-vit-small", "hf-vit-small", "deit-vit-small", "deit-distilled-small",
    "hf-deit-small", "tv-resnet18",    "hf-resnet18",  "tv-resnet50",    "hf-resnet50",
};

class PretrainedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char *python = std::getenv("VIDCLS_PYTHON");
    if (python == nullptr || *python == '\0') {
      skip_reason_ = "VIDCLS_PYTHON is not set (a python3 with torch and torchvision)";
      return;
    }
    // The generator sits in tests/parity; VIDCLS_TEST_DATA is the tests folder.
    std::string script;
    if (const char *s = std::getenv("VIDCLS_MAKE_PRETRAINED")) {
      script = s;
    } else if (const char *d = std::getenv("VIDCLS_TEST_DATA")) {
      script = (fs::path(d) / "parity" / "make_pretrained.py").string();
    } else {
      script = (fs::path(__FILE__).parent_path() / ".." / "parity" / "make_pretrained.py").string();
    }
    if (!fs::exists(script)) {
      skip_reason_ =
          "make_pretrained.py not found at '" + script + "' (set VIDCLS_MAKE_PRETRAINED)";
      return;
    }
    const std::string check =
        "'" + std::string(python) + "' -c 'import torch, torchvision' > /dev/null 2>&1";
    if (std::system(check.c_str()) != 0) {
      skip_reason_ = std::string(python) + " cannot import torch and torchvision";
      return;
    }
    char tmpl[] = "/tmp/vidcls-pretrained-XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    ASSERT_NE(tmp, nullptr);
    dir_ = tmp;
    std::string kinds;
    for (const char *k : kKinds) kinds += (kinds.empty() ? "" : ",") + std::string(k);
    const std::string cmd =
        "'" + std::string(python) + "' '" + script + "' " + kinds + " '" + dir_ + "' 7";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "failed: " << cmd;
  }

  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
    dir_.clear();
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_FALSE(dir_.empty());
  }

  static std::string file(const std::string &kind) {
    const bool pth = kind.rfind("tv-", 0) == 0 || kind.rfind("deit-", 0) == 0;
    return dir_ + "/" + kind + (pth ? ".pth" : ".safetensors");
  }

  static std::string dir_;
  static std::string skip_reason_;
};

std::string PretrainedTest::dir_;
std::string PretrainedTest::skip_reason_;

EncoderConfig encoder(int64_t dim, int64_t depth, int64_t heads, int64_t mlp_dim) {
  EncoderConfig e;
  e.dim = dim;
  e.depth = depth;
  e.heads = heads;
  e.mlp_dim = mlp_dim;
  return e;
}

// A ViViT whose spatial encoder fits the small ViT of make_pretrained.py: 32-d, 2 heads, MLP 64,
// 8x8 patches.
ViViTConfig small_vivit(int64_t depth = 4, int64_t image_size = 32) {
  ViViTConfig c;
  c.frames = 4;
  c.image_size = image_size;
  c.tubelet_t = 2;
  c.tubelet_h = c.tubelet_w = 8;
  c.num_classes = 3;
  c.spatial = encoder(32, depth, 2, 64);
  c.temporal = encoder(32, 1, 2, 64);
  return c;
}

std::map<std::string, torch::Tensor> by_name(const NamedTensors &tensors) {
  std::map<std::string, torch::Tensor> out;
  for (const auto &[k, v] : tensors) out[k] = v;
  return out;
}

std::map<std::string, torch::Tensor> state(const torch::nn::Module &m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto &[k, v] : state_of(m)) out[k] = v.detach().clone();
  return out;
}

bool contains(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool any_note_has(const ImportReport &r, const std::string &s) {
  for (const auto &n : r.notes) {
    if (n.find(s) != std::string::npos) return true;
  }
  return false;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "";
}

TEST_F(PretrainedTest, ReadsTorchSaveAndSafetensorsByContent) {
  auto tv = by_name(read_pretrained(file("tv-vit-small")));
  EXPECT_TRUE(tv.count("conv_proj.weight"));
  EXPECT_EQ(tv["encoder.pos_embedding"].sizes(), torch::IntArrayRef({1, 17, 32}));
  auto hf = by_name(read_pretrained(file("hf-vit-small")));
  EXPECT_TRUE(hf.count("vit.embeddings.patch_embeddings.projection.weight"));
  // DeiT's {"model": state_dict} is unwrapped.
  auto deit = by_name(read_pretrained(file("deit-vit-small")));
  EXPECT_TRUE(deit.count("patch_embed.proj.weight"));
  EXPECT_TRUE(torch::equal(deit["patch_embed.proj.weight"], tv["conv_proj.weight"]));
  // Content decides, not the file name.
  const std::string renamed = dir_ + "/weights.bin";
  fs::copy_file(file("timm-vit-small"), renamed, fs::copy_options::overwrite_existing);
  EXPECT_TRUE(by_name(read_pretrained(renamed)).count("patch_embed.proj.weight"));
}

TEST_F(PretrainedTest, RefusesFilesThatAreNeitherFormatNamingThePath) {
  const std::string junk = dir_ + "/junk.pth";
  std::ofstream(junk) << "this is not a state dict";
  const auto msg = error_of([&] { read_pretrained(junk); });
  EXPECT_NE(msg.find(junk), std::string::npos) << msg;
  EXPECT_THROW(read_pretrained(junk), FormatError);
  EXPECT_THROW(read_pretrained(dir_ + "/missing.pth"), FormatError);
  const std::string legacy = dir_ + "/legacy.pth";
  std::ofstream(legacy) << "\x80\x02}q\x00.";
  EXPECT_NE(error_of([&] { read_pretrained(legacy); }).find("legacy"), std::string::npos);
}

TEST_F(PretrainedTest, TorchvisionViTLandsWhereItBelongs) {
  torch::manual_seed(0);
  ViViT model(small_vivit());
  const auto before = state(*model);
  auto src = by_name(read_pretrained(file("tv-vit-small")));
  auto report =
      import_vit(*model, read_pretrained(file("tv-vit-small")), TubeletInit::kCentralFrame);
  EXPECT_EQ(report.source_format, "torchvision vit");
  auto after = state(*model);

  const auto kernel = after["tubelet.weight"];  // [D, C, t, h, w], t = 2, central slice 1
  EXPECT_TRUE(torch::equal(kernel.select(2, 1), src["conv_proj.weight"]));
  EXPECT_EQ(kernel.select(2, 0).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(after["tubelet.bias"], src["conv_proj.bias"]));
  EXPECT_TRUE(torch::equal(after["spatial.cls"], src["class_token"]));
  EXPECT_TRUE(torch::equal(after["spatial.pos_embed"], src["encoder.pos_embedding"]));
  for (int i = 0; i < 4; ++i) {
    const std::string tv = "encoder.layers.encoder_layer_" + std::to_string(i) + ".";
    const std::string blk = "spatial.blocks." + std::to_string(i) + ".";
    const std::string w = "spatial.weights." + std::to_string(i) + ".";
    EXPECT_TRUE(torch::equal(after[blk + "norm1.weight"], src[tv + "ln_1.weight"]));
    EXPECT_TRUE(torch::equal(after[blk + "norm1.bias"], src[tv + "ln_1.bias"]));
    EXPECT_TRUE(torch::equal(after[blk + "norm2.weight"], src[tv + "ln_2.weight"]));
    EXPECT_TRUE(torch::equal(after[blk + "norm2.bias"], src[tv + "ln_2.bias"]));
    EXPECT_TRUE(torch::equal(after[w + "qkv.weight"], src[tv + "self_attention.in_proj_weight"]));
    EXPECT_TRUE(torch::equal(after[w + "qkv.bias"], src[tv + "self_attention.in_proj_bias"]));
    EXPECT_TRUE(torch::equal(after[w + "proj.weight"], src[tv + "self_attention.out_proj.weight"]));
    EXPECT_TRUE(torch::equal(after[w + "proj.bias"], src[tv + "self_attention.out_proj.bias"]));
    EXPECT_TRUE(torch::equal(after[w + "fc1.weight"], src[tv + "mlp.0.weight"]));
    EXPECT_TRUE(torch::equal(after[w + "fc1.bias"], src[tv + "mlp.0.bias"]));
    EXPECT_TRUE(torch::equal(after[w + "fc2.weight"], src[tv + "mlp.3.weight"]));
    EXPECT_TRUE(torch::equal(after[w + "fc2.bias"], src[tv + "mlp.3.bias"]));
  }
  EXPECT_TRUE(torch::equal(after["spatial.norm.weight"], src["encoder.ln.weight"]));
  EXPECT_TRUE(torch::equal(after["spatial.norm.bias"], src["encoder.ln.bias"]));

  // The temporal encoder and the head are the video model's own.
  std::set<std::string> loaded(report.loaded.begin(), report.loaded.end());
  for (const auto &[name, t] : before) {
    if (name.rfind("temporal.", 0) == 0 || name.rfind("head.", 0) == 0) {
      EXPECT_FALSE(loaded.count(name)) << name;
      EXPECT_TRUE(torch::equal(after[name], t)) << name;
    } else {
      EXPECT_TRUE(loaded.count(name)) << name << " was not loaded";
    }
  }
  EXPECT_TRUE(contains(report.skipped, "heads.head.weight"));
  EXPECT_TRUE(contains(report.skipped, "heads.head.bias"));
}

// Every naming of the same weights gives the same model as the torchvision file.
TEST_F(PretrainedTest, EveryViTNamingImportsTheSameWeights) {
  ViViT reference(small_vivit());
  const auto ref_report =
      import_vit(*reference, read_pretrained(file("tv-vit-small")), TubeletInit::kAverage);
  const auto ref = state(*reference);
  const std::map<std::string, std::string> formats = {
      {"timm-vit-small", "timm vit"}, {"hf-vit-small", "hf vit"},
      {"deit-vit-small", "timm vit"}, {"deit-distilled-small", "timm vit"},
      {"hf-deit-small", "hf vit"},
  };
  for (const auto &[kind, format] : formats) {
    SCOPED_TRACE(kind);
    ViViT model(small_vivit());
    auto report = import_vit(*model, read_pretrained(file(kind)), TubeletInit::kAverage);
    EXPECT_EQ(report.source_format, format);
    EXPECT_EQ(std::set<std::string>(report.loaded.begin(), report.loaded.end()),
              std::set<std::string>(ref_report.loaded.begin(), ref_report.loaded.end()));
    auto got = state(*model);
    for (const auto &name : ref_report.loaded) {
      EXPECT_TRUE(torch::equal(got[name], ref.at(name))) << name;
    }
    const bool distilled = kind.find("deit-") != std::string::npos && kind != "deit-vit-small";
    EXPECT_EQ(any_note_has(report, "distillation token dropped"), distilled);
  }
}

TEST_F(PretrainedTest, ShallowerModelTakesTheFirstLayers) {
  ViViT model(small_vivit(/*depth=*/2));
  auto report =
      import_vit(*model, read_pretrained(file("timm-vit-small")), TubeletInit::kCentralFrame);
  auto src = by_name(read_pretrained(file("timm-vit-small")));
  auto got = state(*model);
  EXPECT_TRUE(torch::equal(got["spatial.weights.1.qkv.weight"], src["blocks.1.attn.qkv.weight"]));
  EXPECT_TRUE(torch::equal(got["spatial.norm.weight"], src["norm.weight"]));
  EXPECT_TRUE(contains(report.skipped, "blocks.2.attn.qkv.weight"));
  EXPECT_TRUE(contains(report.skipped, "blocks.3.norm1.weight"));
  EXPECT_TRUE(any_note_has(report, "first 2 of the image model's 4 layers"));
}

TEST_F(PretrainedTest, WeightSharedEncoderTakesTheFirstLayerOfEachGroup) {
  auto cfg = small_vivit();
  cfg.architecture = "mini-vivit";
  for (auto *e : {&cfg.spatial, &cfg.temporal}) {
    e->share = 2;
    e->attn_mix = true;
    e->mlp_dwconv = true;
  }
  ViViT model(cfg);
  ASSERT_EQ(model->spatial->weights->size(), 2u);
  auto report =
      import_vit(*model, read_pretrained(file("hf-vit-small")), TubeletInit::kCentralFrame);
  auto src = by_name(read_pretrained(file("tv-vit-small")));
  auto got = state(*model);
  const std::string l = "encoder.layers.encoder_layer_";
  EXPECT_TRUE(torch::equal(got["spatial.weights.0.qkv.weight"],
                           src[l + "0.self_attention.in_proj_weight"]));
  EXPECT_TRUE(torch::equal(got["spatial.weights.1.qkv.weight"],
                           src[l + "2.self_attention.in_proj_weight"]));
  EXPECT_TRUE(torch::equal(got["spatial.weights.1.fc2.bias"], src[l + "2.mlp.3.bias"]));
  // Per-layer LayerNorms come from every layer, shared or not.
  for (int i = 0; i < 4; ++i) {
    const auto p = "spatial.blocks." + std::to_string(i) + ".";
    EXPECT_TRUE(torch::equal(got[p + "norm1.weight"], src[l + std::to_string(i) + ".ln_1.weight"]));
    EXPECT_TRUE(torch::equal(got[p + "norm2.bias"], src[l + std::to_string(i) + ".ln_2.bias"]));
  }
  // The MiniViT transformations start as the identity.
  EXPECT_TRUE(torch::equal(got["spatial.blocks.1.mix_pre.weight"], torch::eye(2)));
  EXPECT_TRUE(contains(report.skipped, "vit.encoder.layer.1.attention.attention.query.weight"));
  EXPECT_FALSE(contains(report.skipped, "vit.encoder.layer.1.layernorm_before.weight"));
}

TEST_F(PretrainedTest, PositionEmbeddingIsResizedWhenTheGridDiffers) {
  ViViT model(small_vivit(4, /*image_size=*/48));  // 6x6 tubelet grid, the image model's is 4x4
  auto weights = read_pretrained(file("tv-vit-small"));
  auto src = by_name(weights);
  auto report = import_vit(*model, weights, TubeletInit::kCentralFrame);
  auto pos = model->spatial->pos_embed.detach();
  EXPECT_EQ(pos.sizes(), torch::IntArrayRef({1, 37, 32}));
  EXPECT_TRUE(torch::equal(pos.narrow(1, 0, 1), src["encoder.pos_embedding"].narrow(1, 0, 1)));
  EXPECT_TRUE(any_note_has(report, "4x4 to a 6x6 grid"));

  // A grid that is the same everywhere stays the same everywhere.
  const auto per_channel = torch::randn({1, 1, 32});
  for (auto &[name, t] : weights) {
    if (name == "encoder.pos_embedding") {
      t = torch::cat({t.narrow(1, 0, 1), per_channel.expand({1, 16, 32})}, 1);
    }
  }
  for (int64_t size : {48, 24}) {  // up and down
    ViViT resized(small_vivit(4, size));
    import_vit(*resized, weights, TubeletInit::kCentralFrame);
    const int64_t n = (size / 8) * (size / 8);
    auto grid = resized->spatial->pos_embed.detach().narrow(1, 1, n);
    EXPECT_TRUE(torch::allclose(grid, per_channel.expand({1, n, 32}), 1e-6, 1e-6)) << size;
  }
}

TEST_F(PretrainedTest, ModelWithoutSpatialPositionEmbeddingSkipsIt) {
  auto cfg = small_vivit();
  cfg.spatial_pos_embed = false;
  ViViT model(cfg);
  auto report =
      import_vit(*model, read_pretrained(file("tv-vit-small")), TubeletInit::kCentralFrame);
  EXPECT_TRUE(contains(report.skipped, "encoder.pos_embedding"));
  EXPECT_TRUE(any_note_has(report, "no spatial position embedding"));
}

TEST_F(PretrainedTest, RefusesModelsTheWeightsDoNotFitAndChangesNothing) {
  const auto weights = read_pretrained(file("tv-vit-small"));
  auto refused = [&](const ViViTConfig &cfg, const std::string &expected) {
    ViViT model(cfg);
    const auto before = state(*model);
    std::string msg;
    try {
      import_vit(*model, weights, TubeletInit::kCentralFrame);
    } catch (const MismatchError &e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find(expected), std::string::npos) << "message: '" << msg << "'";
    for (const auto &[name, t] : state(*model)) {
      EXPECT_TRUE(torch::equal(t, before.at(name))) << name << " changed by a refused import";
    }
  };
  refused(small_vivit(/*depth=*/5), "the image model has 4 layers");
  auto wide = small_vivit();
  wide.spatial.dim = wide.temporal.dim = 48;
  wide.spatial.heads = wide.temporal.heads = 3;
  refused(wide, "the image model is 32-d but the model's spatial encoder is 48-d");
  auto mlp = small_vivit();
  mlp.spatial.mlp_dim = 128;
  refused(mlp, "MLP is 64 wide");
  auto patches = small_vivit();
  patches.tubelet_h = patches.tubelet_w = 16;
  refused(patches, "patches are 8x8");
}

// On a clip whose frames are all the same image, either inflation gives exactly the image
// model's patch embedding of that image at every temporal index.
TEST_F(PretrainedTest, InflatedTubeletOnAStaticClipIsThe2DEmbedding) {
  auto src = by_name(read_pretrained(file("tv-vit-small")));
  torch::manual_seed(3);
  const auto image = torch::randn({1, 3, 32, 32});
  const auto clip = image.unsqueeze(1).expand({1, 4, 3, 32, 32}).contiguous();
  auto expected = F::conv2d(image, src["conv_proj.weight"],
                            F::Conv2dFuncOptions().bias(src["conv_proj.bias"]).stride(8));
  expected = expected.flatten(2).transpose(1, 2);  // [1, 16, D]
  for (auto init : {TubeletInit::kCentralFrame, TubeletInit::kAverage}) {
    ViViT model(small_vivit());
    import_vit(*model, read_pretrained(file("tv-vit-small")), init);
    torch::NoGradGuard no_grad;
    auto tokens = model->embed(clip);  // [1, 2, 16, D]
    ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({1, 2, 16, 32}));
    for (int t = 0; t < 2; ++t) {
      EXPECT_TRUE(torch::allclose(tokens[0][t], expected[0], 1e-5, 1e-5))
          << "init " << (init == TubeletInit::kAverage ? "average" : "central-frame") << " t " << t;
    }
  }
}

TEST_F(PretrainedTest, TubeletBiasStaysWhenTheConfigSaysSo) {
  auto cfg = small_vivit();
  cfg.tubelet_bias_from_image = false;
  ViViT model(cfg);
  const auto bias = model->tubelet->bias.detach().clone();
  auto report =
      import_vit(*model, read_pretrained(file("tv-vit-small")), TubeletInit::kCentralFrame);
  EXPECT_TRUE(torch::equal(model->tubelet->bias, bias));
  EXPECT_FALSE(contains(report.loaded, "tubelet.bias"));
  EXPECT_TRUE(contains(report.skipped, "conv_proj.bias"));
}

TEST_F(PretrainedTest, UnknownNamingAndIncompleteQkvAreFormatErrors) {
  NamedTensors unknown = {{"features.0.weight", torch::zeros({2})}};
  ViViT model(small_vivit());
  EXPECT_THROW(import_vit(*model, unknown, TubeletInit::kCentralFrame), FormatError);
  auto hf = read_pretrained(file("hf-vit-small"));
  hf.erase(std::remove_if(hf.begin(), hf.end(),
                          [](const auto &kv) {
                            return kv.first == "vit.encoder.layer.2.attention.attention.key.weight";
                          }),
           hf.end());
  const auto msg = error_of([&] { import_vit(*model, hf, TubeletInit::kCentralFrame); });
  EXPECT_NE(msg.find("without the matching key projection"), std::string::npos) << msg;
}

TEST_F(PretrainedTest, TorchvisionResNetIsLoadedAsIs) {
  ResNetConfig cfg;
  cfg.depth = 18;
  cfg.num_classes = 1000;
  ResNet model(cfg);
  auto report = import_resnet(*model, read_pretrained(file("tv-resnet18")));
  EXPECT_EQ(report.source_format, "torchvision resnet");
  auto src = by_name(read_pretrained(file("tv-resnet18")));
  const auto got = state(*model);
  EXPECT_EQ(got.size(), src.size());
  for (const auto &[name, t] : got) {
    ASSERT_TRUE(src.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, src[name])) << name;
  }
  EXPECT_TRUE(report.skipped.empty());
}

TEST_F(PretrainedTest, HuggingFaceResNetMapsToTorchvisionNames) {
  for (int depth : {18, 50}) {
    SCOPED_TRACE(depth);
    ResNetConfig cfg;
    cfg.depth = depth;
    cfg.num_classes = 1000;
    ResNet tv(cfg), hf(cfg);
    import_resnet(*tv, read_pretrained(file("tv-resnet" + std::to_string(depth))));
    auto report = import_resnet(*hf, read_pretrained(file("hf-resnet" + std::to_string(depth))));
    EXPECT_EQ(report.source_format, "hf resnet");
    EXPECT_TRUE(report.skipped.empty());
    const auto a = state(*tv), b = state(*hf);
    for (const auto &[name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
}

TEST_F(PretrainedTest, ResNetDepthMustMatch) {
  ResNetConfig cfg;
  cfg.depth = 18;
  ResNet model(cfg);
  const auto msg = error_of([&] { import_resnet(*model, read_pretrained(file("hf-resnet50"))); });
  EXPECT_NE(msg.find("pretrained file is a ResNet-50 but the model uses ResNet-18"),
            std::string::npos)
      << msg;
  EXPECT_THROW(import_resnet(*model, read_pretrained(file("tv-resnet50"))), MismatchError);
}

TEST_F(PretrainedTest, ResNetClassifierOnlyWhenItFits) {
  ResNetConfig cfg;
  cfg.depth = 18;
  ResNet headless(cfg);  // num_classes 0: no fc
  auto report = import_resnet(*headless, read_pretrained(file("tv-resnet18")));
  EXPECT_TRUE(contains(report.skipped, "fc.weight"));
  EXPECT_TRUE(contains(report.skipped, "fc.bias"));

  cfg.num_classes = 5;
  ResNet five(cfg);
  const auto fc = five->fc->weight.detach().clone();
  report = import_resnet(*five, read_pretrained(file("hf-resnet18")));
  EXPECT_TRUE(torch::equal(five->fc->weight, fc));
  EXPECT_TRUE(contains(report.skipped, "classifier.1.weight"));
  EXPECT_TRUE(any_note_has(report, "classifier not loaded"));
}

TEST_F(PretrainedTest, ImportPretrainedDispatchesOnTheModel) {
  auto rtv = make_preset_model("resnet18-tvit-xs", 4);
  auto report = import_pretrained(*rtv, file("tv-resnet18"));
  EXPECT_TRUE(contains(report.loaded, "backbone.conv1.weight"));
  auto src = by_name(read_pretrained(file("tv-resnet18")));
  auto &backbone = *std::dynamic_pointer_cast<ResNetTViTImpl>(rtv)->backbone;
  EXPECT_TRUE(
      torch::equal(state(backbone).at("layer4.1.conv2.weight"), src["layer4.1.conv2.weight"]));

  auto msg = error_of([&] { import_pretrained(*rtv, file("timm-vit-small")); });
  EXPECT_NE(msg.find(file("timm-vit-small")), std::string::npos) << msg;
  EXPECT_NE(msg.find("takes ResNet weights"), std::string::npos) << msg;
  EXPECT_THROW(import_pretrained(*rtv, file("tv-resnet50")), MismatchError);

  auto vivit = make_model("vivit", nlohmann::json(small_vivit()));
  msg = error_of([&] { import_pretrained(*vivit, file("hf-resnet18")); });
  EXPECT_NE(msg.find("takes ViT weights"), std::string::npos) << msg;
  report = import_pretrained(*vivit, file("deit-distilled-small"), TubeletInit::kAverage);
  EXPECT_EQ(report.source_format, "timm vit");
}

}  // namespace
}  // namespace vidcls
