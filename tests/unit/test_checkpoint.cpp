// The checkpoint file: round trip and every way a bad file is refused with a message that names
// the problem.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/init.h"
#include "vidcls/registry.h"
#include "vidcls/resnet_tvit.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vidcls-ckpt-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string &name) const { return (dir_ / name).string(); }

  // A valid checkpoint of vivit-xs with 3 labels; returns its path.
  std::string write_valid(const std::string &name = "ok.safetensors") {
    torch::manual_seed(3);
    auto model = vidcls::make_preset_model("vivit-xs", 3);
    vidcls::CheckpointInfo info;
    info.preset = "vivit-xs";
    info.labels = {"left", "right", "up"};
    info.clip = vidcls::find_preset("vivit-xs").clip;
    info.provenance = {{"dataset", "unit-test"}};
    vidcls::save_checkpoint(path(name), *model, info);
    return path(name);
  }

  static std::string slurp(const std::string &p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void spit(const std::string &p, const std::string &bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  // Rewrites the JSON header of a safetensors file through `edit` (data section unchanged).
  std::string edit_header(const std::string &src, const std::string &name,
                          const std::function<void(nlohmann::json &)> &edit) {
    auto bytes = slurp(src);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    auto header = nlohmann::json::parse(bytes.substr(8, n));
    edit(header);
    auto text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    uint64_t m = text.size();
    std::string out(reinterpret_cast<const char *>(&m), 8);
    out += text + bytes.substr(8 + n);
    spit(path(name), out);
    return path(name);
  }

  void expect_refused(const std::string &file, const std::string &needle) {
    try {
      vidcls::load_checkpoint(file);
      FAIL() << "loaded a bad checkpoint; expected an error mentioning '" << needle << "'";
    } catch (const std::runtime_error &e) {  // FormatError and MismatchError
      EXPECT_THAT(std::string(e.what()), HasSubstr(needle));
      EXPECT_THAT(std::string(e.what()), HasSubstr(file));
    }
  }

  fs::path dir_;
};

TEST_F(CheckpointTest, RoundTripGivesIdenticalOutputs) {
  for (const char *preset : {"vivit-xs", "mini-vivit-xs", "resnet18-tvit-xs"}) {
    torch::manual_seed(7);
    auto model = vidcls::make_preset_model(preset, 4);
    model->eval();
    vidcls::CheckpointInfo info;
    info.preset = preset;
    info.labels = {"a", "b", "c", "d"};
    info.clip = vidcls::find_preset(preset).clip;
    info.clip.hop = 3;
    info.provenance = {{"epochs", 2}};
    const auto file = path(std::string(preset) + ".safetensors");
    vidcls::save_checkpoint(file, *model, info, {{"optimizer.step", torch::tensor({42})}});

    auto loaded = vidcls::load_checkpoint(file);
    EXPECT_EQ(loaded.info.architecture, model->architecture());
    EXPECT_EQ(loaded.info.preset, preset);
    EXPECT_EQ(loaded.info.labels, info.labels);
    EXPECT_EQ(loaded.info.clip.hop, 3);
    EXPECT_EQ(loaded.info.provenance["epochs"], 2);
    ASSERT_EQ(loaded.extra.size(), 1u);
    EXPECT_EQ(loaded.extra[0].first, "optimizer.step");
    EXPECT_FALSE(loaded.model->is_training());
    // BatchNorm statistics and every other buffer come back too.
    auto a = vidcls::state_of(*model), b = vidcls::state_of(*loaded.model);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    }
    torch::NoGradGuard no_grad;
    auto clip = torch::randn({2, model->input_shape().frames, 3, model->input_shape().height,
                              model->input_shape().width});
    EXPECT_TRUE(torch::equal(model->forward(clip), loaded.model->forward(clip))) << preset;
  }
}

// A ResNet + Temporal ViT checkpoint written before the backbone had an `input` (8 frames, RGB,
// no "input" in its config) loads as "rgb" and scores as the model that wrote it: every frame's
// ResNet feature, in order, into the temporal transformer.
TEST_F(CheckpointTest, ResNetTViTWithoutInputFieldLoadsAsRgb) {
  torch::manual_seed(5);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 3);
  cfg["input"] = "rgb";
  cfg["frames"] = 8;
  auto model = vidcls::make_model("resnet-tvit", cfg);
  model->eval();
  vidcls::CheckpointInfo info;
  info.preset = "resnet18-tvit-xs";
  info.labels = {"a", "b", "c"};
  info.clip = vidcls::find_preset("resnet18-tvit-xs").clip;
  info.clip.frames = 8;
  vidcls::save_checkpoint(path("rgb-new.safetensors"), *model, info);
  const auto old = edit_header(path("rgb-new.safetensors"), "rgb-old.safetensors",
                               [](nlohmann::json &h) {
                                 auto c = nlohmann::json::parse(
                                     h["__metadata__"]["vidcls.config"].get<std::string>());
                                 ASSERT_EQ(c.erase("input"), 1u);
                                 h["__metadata__"]["vidcls.config"] = c.dump();
                               });
  auto loaded = vidcls::load_checkpoint(old);
  EXPECT_EQ(loaded.model->config().at("input"), "rgb");
  EXPECT_EQ(loaded.model->input_shape().frames, 8);
  auto *net = dynamic_cast<vidcls::ResNetTViTImpl *>(loaded.model.get());
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->frame_context(), 0);
  torch::NoGradGuard no_grad;
  const auto clip = torch::randn({2, 8, 3, 64, 64});
  const auto per_frame = net->backbone->features(clip.flatten(0, 1)).reshape({2, 8, -1});
  const auto logits = loaded.model->forward(clip);
  EXPECT_TRUE(torch::equal(logits, model->forward(clip)));
  EXPECT_TRUE(torch::allclose(logits, net->classify_features(per_frame), 1e-6, 1e-6));
}

// Loading builds the model without initial values and copies the file's tensors into it: every
// parameter and buffer, including ones no initialiser would produce, comes back bit for bit.
TEST_F(CheckpointTest, FastLoadGivesBitIdenticalTensorsAndLogits) {
  for (const char *preset : {"vivit-xs", "mini-vivit-xs", "resnet18-tvit-xs"}) {
    torch::manual_seed(11);
    auto model = vidcls::make_preset_model(preset, 5);
    {
      torch::NoGradGuard no_grad;
      for (auto &t : model->buffers()) {
        if (t.is_floating_point()) t.uniform_(0.5, 1.5);  // BatchNorm statistics as if trained
      }
      for (auto &t : model->parameters()) t.add_(torch::randn_like(t), 0.01);
    }
    model->eval();
    vidcls::CheckpointInfo info;
    info.clip = vidcls::find_preset(preset).clip;
    const auto file = path(std::string(preset) + ".safetensors");
    vidcls::save_checkpoint(file, *model, info, {{"ema.scale", torch::tensor({0.25f, 4.0f})}});

    auto loaded = vidcls::load_checkpoint(file);
    const auto a = vidcls::state_of(*model), b = vidcls::state_of(*loaded.model);
    ASSERT_EQ(a.size(), b.size()) << preset;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].first, b[i].first) << preset;
      EXPECT_EQ(a[i].second.scalar_type(), b[i].second.scalar_type()) << a[i].first;
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << preset << " " << a[i].first;
      EXPECT_NE(a[i].second.data_ptr(), b[i].second.data_ptr()) << a[i].first;
    }
    // The extras outlive the file's mapping.
    ASSERT_EQ(loaded.extra.size(), 1u);
    EXPECT_TRUE(torch::equal(loaded.extra[0].second, torch::tensor({0.25f, 4.0f})));
    torch::NoGradGuard no_grad;
    const auto s = model->input_shape();
    auto clip = torch::randn({2, s.frames, s.channels, s.height, s.width});
    EXPECT_TRUE(torch::equal(model->forward(clip), loaded.model->forward(clip))) << preset;
  }
}

// Loading draws no initial weights only to overwrite them. Each float uniform_ takes one number
// from the CPU generator, so what loading drew shows as how far the random stream moved: a
// convolution built under SkipInit still draws one kernel of one channel and one bias value
// (init.h); the randomly initialised vivit-xs draws one per parameter (~500k).
TEST_F(CheckpointTest, LoadingDrawsNoInitialWeights) {
  const auto file = write_valid();
  torch::manual_seed(5);
  const auto stream = torch::rand({4096});
  auto moved = [&] {
    const auto next = torch::rand({16});
    for (int64_t k = 0; k + 16 <= stream.size(0); ++k) {
      if (torch::equal(stream.narrow(0, k, 16), next)) return k;
    }
    return stream.size(0);
  };
  torch::manual_seed(5);
  vidcls::load_checkpoint(file);
  EXPECT_LE(moved(), 2 * 8 * 8 + 1);  // vivit-xs's tubelet Conv3d: a 2x8x8 kernel and a bias
  EXPECT_FALSE(vidcls::init_skipped());
  torch::manual_seed(5);
  {
    const vidcls::SkipInit skip_init;
    vidcls::make_linear(torch::nn::LinearOptions(768, 3072));
  }
  EXPECT_EQ(moved(), 0);
  // Building a model outside a load still initialises it.
  torch::manual_seed(5);
  vidcls::make_preset_model("vivit-xs", 3);
  EXPECT_EQ(moved(), stream.size(0));
}

TEST_F(CheckpointTest, SkipInitIsScopedToItsThreadAndNests) {
  EXPECT_FALSE(vidcls::init_skipped());
  {
    const vidcls::SkipInit outer;
    {
      const vidcls::SkipInit inner;
      EXPECT_TRUE(vidcls::init_skipped());
    }
    EXPECT_TRUE(vidcls::init_skipped());
    bool other_thread = true;
    std::thread([&] { other_thread = vidcls::init_skipped(); }).join();
    EXPECT_FALSE(other_thread);
  }
  EXPECT_FALSE(vidcls::init_skipped());
  // A load that fails leaves no guard behind.
  expect_refused(path("nope.safetensors"), "nope.safetensors");
  EXPECT_FALSE(vidcls::init_skipped());
}

// make_linear / make_conv under SkipInit build the module LibTorch builds, minus the fill.
TEST_F(CheckpointTest, UninitialisedModulesMatchLibTorchs) {
  torch::manual_seed(2);
  torch::nn::Linear linear(torch::nn::LinearOptions(6, 4).bias(false));
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 8, 3).padding(1).groups(4).stride(2));
  torch::nn::Conv3d conv3(torch::nn::Conv3dOptions(3, 5, {2, 4, 4}).stride({2, 4, 4}));
  torch::nn::Linear fast_linear{nullptr};
  torch::nn::Conv2d fast_conv{nullptr};
  torch::nn::Conv3d fast_conv3{nullptr};
  {
    const vidcls::SkipInit skip_init;
    fast_linear = vidcls::make_linear(linear->options);
    fast_conv = vidcls::make_conv(torch::nn::Conv2dOptions(8, 8, 3).padding(1).groups(4).stride(2));
    fast_conv3 = vidcls::make_conv(torch::nn::Conv3dOptions(3, 5, {2, 4, 4}).stride({2, 4, 4}));
  }
  auto check = [](torch::nn::Module &want, torch::nn::Module &got, const torch::Tensor &x,
                  const std::function<torch::Tensor(const torch::Tensor &)> &forward,
                  const std::function<torch::Tensor(const torch::Tensor &)> &reference) {
    auto w = want.named_parameters(), g = got.named_parameters();
    ASSERT_EQ(w.keys(), g.keys());
    torch::NoGradGuard no_grad;
    for (const auto &p : w) {
      ASSERT_EQ(p.value().sizes(), g[p.key()].sizes()) << p.key();
      EXPECT_TRUE(g[p.key()].requires_grad()) << p.key();
      g[p.key()].copy_(p.value());
    }
    EXPECT_TRUE(torch::equal(forward(x), reference(x)));
  };
  check(*linear, *fast_linear, torch::randn({2, 6}),
        [&](const torch::Tensor &x) { return fast_linear(x); },
        [&](const torch::Tensor &x) { return linear(x); });
  check(*conv, *fast_conv, torch::randn({1, 8, 9, 9}),
        [&](const torch::Tensor &x) { return fast_conv(x); },
        [&](const torch::Tensor &x) { return conv(x); });
  check(*conv3, *fast_conv3, torch::randn({1, 3, 4, 8, 8}),
        [&](const torch::Tensor &x) { return fast_conv3(x); },
        [&](const torch::Tensor &x) { return conv3(x); });
  EXPECT_EQ(fast_conv->options.groups(), 4);
  EXPECT_EQ(fast_conv->options.in_channels(), 8);
}

TEST_F(CheckpointTest, WriteIsAtomicAndLeavesNoTemporaryFile) {
  write_valid();
  write_valid();  // overwrite in place
  int files = 0;
  for (const auto &e : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "ok.safetensors");
  }
  EXPECT_EQ(files, 1);
}

TEST_F(CheckpointTest, InfoWithoutLoadingTensors) {
  auto info = vidcls::read_checkpoint_info(write_valid());
  EXPECT_EQ(info.architecture, "vivit");
  EXPECT_EQ(info.labels.size(), 3u);
  EXPECT_EQ(info.clip.frames, 8);
}

TEST_F(CheckpointTest, MissingFileIsNamed) {
  expect_refused(path("nope.safetensors"), "nope.safetensors");
}

TEST_F(CheckpointTest, TruncatedFileIsRefused) {
  auto bytes = slurp(write_valid());
  spit(path("trunc.safetensors"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(vidcls::load_checkpoint(path("trunc.safetensors")), vidcls::FormatError);
  spit(path("tiny.safetensors"), bytes.substr(0, 5));
  EXPECT_THROW(vidcls::load_checkpoint(path("tiny.safetensors")), vidcls::FormatError);
}

TEST_F(CheckpointTest, HeaderOverrunningTheFileIsRefused) {
  auto bytes = slurp(write_valid());
  uint64_t huge = bytes.size() * 4;
  std::memcpy(bytes.data(), &huge, 8);
  spit(path("overrun.safetensors"), bytes);
  EXPECT_THROW(vidcls::load_checkpoint(path("overrun.safetensors")), vidcls::FormatError);
}

TEST_F(CheckpointTest, BadJsonIsRefused) {
  auto bytes = slurp(write_valid());
  bytes[8] = '[';
  bytes[9] = '{';
  spit(path("json.safetensors"), bytes);
  expect_refused(path("json.safetensors"), "JSON");
}

TEST_F(CheckpointTest, OffsetsOutOfRangeAreRefused) {
  auto f = edit_header(write_valid(), "range.safetensors", [](nlohmann::json &h) {
    h["head.bias"]["data_offsets"][1] = h["head.bias"]["data_offsets"][1].get<int64_t>() + (int64_t{1} << 30);
  });
  EXPECT_THROW(vidcls::load_checkpoint(f), vidcls::FormatError);
}

TEST_F(CheckpointTest, OverlappingOffsetsAreRefused) {
  auto f = edit_header(write_valid(), "overlap.safetensors", [](nlohmann::json &h) {
    h["head.bias"]["data_offsets"] = h["tubelet.bias"]["data_offsets"];
    h["head.bias"]["shape"] = h["tubelet.bias"]["shape"];
  });
  EXPECT_THROW(vidcls::load_checkpoint(f), vidcls::FormatError);
}

TEST_F(CheckpointTest, UnknownDtypeIsRefused) {
  auto f = edit_header(write_valid(), "dtype.safetensors",
                       [](nlohmann::json &h) { h["head.bias"]["dtype"] = "F24"; });
  expect_refused(f, "F24");
}

TEST_F(CheckpointTest, WrongDtypeForTheArchitectureIsRefused) {
  // Same byte count, other dtype: I32 instead of F32.
  auto f = edit_header(write_valid(), "i32.safetensors",
                       [](nlohmann::json &h) { h["head.bias"]["dtype"] = "I32"; });
  expect_refused(f, "head.bias");
}

TEST_F(CheckpointTest, MissingTensorIsRefused) {
  auto model = vidcls::make_preset_model("vivit-xs", 3);
  auto tensors = vidcls::state_of(*model);
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](const auto &nt) { return nt.first == "spatial.norm.weight"; }),
                tensors.end());
  auto meta = vidcls::read_safetensors_header(write_valid()).metadata;
  vidcls::write_safetensors(path("missing.safetensors"), tensors, meta);
  expect_refused(path("missing.safetensors"), "spatial.norm.weight");
}

// Buffers count as much as parameters: a model built without initial values never runs with a
// tensor the file did not fill.
TEST_F(CheckpointTest, MissingBufferOrParameterIsRefusedByName) {
  auto model = vidcls::make_preset_model("resnet18-tvit-xs", 3);
  vidcls::CheckpointInfo info;
  info.clip = vidcls::find_preset("resnet18-tvit-xs").clip;
  vidcls::save_checkpoint(path("full.safetensors"), *model, info);
  const auto meta = vidcls::read_safetensors_header(path("full.safetensors")).metadata;
  for (const char *name : {"backbone.layer2.0.bn1.running_var", "backbone.bn1.num_batches_tracked",
                           "temporal.blocks.1.norm2.bias", "head.weight"}) {
    auto tensors = vidcls::state_of(*model);
    const auto before = tensors.size();
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [&](const auto &nt) { return nt.first == name; }),
                  tensors.end());
    ASSERT_EQ(tensors.size() + 1, before) << name;
    const auto file = path("missing.safetensors");
    vidcls::write_safetensors(file, tensors, meta);
    expect_refused(file, std::string("tensor '") + name + "' of the model is missing");
  }
}

TEST_F(CheckpointTest, WrongShapeIsRefused) {
  auto model = vidcls::make_preset_model("vivit-xs", 3);
  auto tensors = vidcls::state_of(*model);
  for (auto &[name, t] : tensors) {
    if (name == "spatial.pos_embed") t = torch::zeros({1, 5, 96});
  }
  auto meta = vidcls::read_safetensors_header(write_valid()).metadata;
  vidcls::write_safetensors(path("shape.safetensors"), tensors, meta);
  expect_refused(path("shape.safetensors"), "spatial.pos_embed");
}

TEST_F(CheckpointTest, UnexpectedTensorIsRefused) {
  auto model = vidcls::make_preset_model("vivit-xs", 3);
  auto tensors = vidcls::state_of(*model);
  tensors.emplace_back("spatial.blocks.9.norm1.weight", torch::ones({96}));
  auto meta = vidcls::read_safetensors_header(write_valid()).metadata;
  vidcls::write_safetensors(path("extra.safetensors"), tensors, meta);
  expect_refused(path("extra.safetensors"), "spatial.blocks.9.norm1.weight");
}

TEST_F(CheckpointTest, LabelCountDifferentFromHeadIsRefused) {
  auto f = edit_header(write_valid(), "labels.safetensors", [](nlohmann::json &h) {
    h["__metadata__"]["vidcls.labels"] = R"(["a", "b"])";
  });
  expect_refused(f, "labels");
  EXPECT_THROW(static_cast<void>(vidcls::read_checkpoint_info(f).labels.at(2)), std::out_of_range);
}

TEST_F(CheckpointTest, BadMetadataIsRefused) {
  auto src = write_valid();
  expect_refused(edit_header(src, "cfg.safetensors",
                             [](nlohmann::json &h) { h["__metadata__"]["vidcls.config"] = "{"; }),
                 "vidcls.config");
  expect_refused(edit_header(src, "arch.safetensors",
                             [](nlohmann::json &h) {
                               h["__metadata__"]["vidcls.architecture"] = "timesformer";
                             }),
                 "timesformer");
  expect_refused(edit_header(src, "plain.safetensors",
                             [](nlohmann::json &h) { h.erase("__metadata__"); }),
                 "not a vidcls checkpoint");
  expect_refused(edit_header(src, "clip.safetensors",
                             [](nlohmann::json &h) {
                               h["__metadata__"]["vidcls.clip"] = R"({"frames": 0})";
                             }),
                 "frames");
  expect_refused(edit_header(src, "version.safetensors",
                             [](nlohmann::json &h) { h["__metadata__"]["vidcls.format"] = "9"; }),
                 "version");
  // A config that does not build the stored tensors: deeper spatial encoder.
  expect_refused(edit_header(src, "depth.safetensors",
                             [](nlohmann::json &h) {
                               auto c = nlohmann::json::parse(
                                   h["__metadata__"]["vidcls.config"].get<std::string>());
                               c["spatial"]["depth"] = 5;
                               h["__metadata__"]["vidcls.config"] = c.dump();
                             }),
                 "spatial.blocks.4");
}

TEST_F(CheckpointTest, SaveRefusesLabelsThatDoNotMatchTheHead) {
  auto model = vidcls::make_preset_model("vivit-xs", 3);
  vidcls::CheckpointInfo info;
  info.labels = {"only", "two"};
  EXPECT_THROW(vidcls::save_checkpoint(path("x.safetensors"), *model, info),
               vidcls::MismatchError);
  EXPECT_FALSE(fs::exists(path("x.safetensors")));
}

}  // namespace
