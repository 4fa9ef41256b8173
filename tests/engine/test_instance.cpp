// Model instances without GStreamer: real checkpoints (random weights of the CPU presets) loaded
// by id, shared, refused with a message that names both sides, classified through the worker,
// and swapped between batches.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "engine/instance.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace {

namespace fs = std::filesystem;
using vidcls::engine::Classification;
using vidcls::engine::InstanceRefused;
using vidcls::engine::InstanceRequest;
using vidcls::engine::Member;
using vidcls::engine::ModelInstance;
using vidcls::engine::Outcome;
using namespace std::chrono_literals;

fs::path scratch() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("vidcls-engine-test-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// A checkpoint of `preset` with `n` labels and a clip spec of `frames` frames (0: the preset's).
std::string checkpoint(const std::string &preset, int n, const std::string &name) {
  const auto path = (scratch() / (name + ".safetensors")).string();
  if (fs::exists(path)) return path;
  torch::manual_seed(1);
  auto model = vidcls::make_preset_model(preset, n);
  vidcls::CheckpointInfo info;
  info.preset = preset;
  info.clip = vidcls::find_preset(preset).clip;
  for (int i = 0; i < n; ++i) info.labels.push_back("l" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

InstanceRequest request(const std::string &id, const std::string &path,
                        const std::string &element = "e0") {
  InstanceRequest r;
  r.id = id;
  r.path = path;
  r.device = "cpu";
  r.element = element;
  return r;
}

// What a member heard.
struct Heard {
  std::mutex lock;
  std::condition_variable changed;
  std::vector<std::string> swaps, failed_swaps;
  bool spec_changed = false;
  Member member(const std::string &name, const std::string &refuse_architecture = "") {
    Member m;
    m.name = name;
    m.client.publish = [](const std::vector<Classification> &, uint64_t) {};
    m.client.fail = [](const Outcome &) {};
    m.check = [refuse_architecture](const std::string &, const vidcls::CheckpointInfo &info) {
      return info.architecture == refuse_architecture ? "not " + info.architecture : "";
    };
    m.model_changed = [this](const std::string &path, const vidcls::engine::InferenceModel &,
                             bool spec) {
      std::lock_guard<std::mutex> l(lock);
      swaps.push_back(path);
      spec_changed = spec;
      changed.notify_all();
    };
    m.swap_failed = [this](const std::string &problem) {
      std::lock_guard<std::mutex> l(lock);
      failed_swaps.push_back(problem);
      changed.notify_all();
    };
    return m;
  }
  bool wait(size_t n) {
    std::unique_lock<std::mutex> l(lock);
    return changed.wait_for(l, 60s, [&] { return swaps.size() + failed_swaps.size() >= n; });
  }
};

// A clip of random pixels that fits `m`.
vidcls::engine::Job clip_for(const std::shared_ptr<const vidcls::engine::InferenceModel> &m,
                             uint64_t index) {
  const auto s = m->model->input_shape();
  vidcls::engine::Job j;
  j.clip = torch::rand({s.frames, s.channels, s.height, s.width});
  j.record.stream = "s";
  j.record.index = index;
  j.record.n_frames = s.frames;
  j.top_k = 3;
  return j;
}

TEST(ModelInstance, OneIdIsOneModelAndAnotherCheckpointIsRefusedByName) {
  const auto a = checkpoint("vivit-xs", 4, "a"), b = checkpoint("vivit-xs", 4, "b");
  auto first = vidcls::engine::acquire_model_instance(request("cams", a, "infer0"));
  auto second = vidcls::engine::acquire_model_instance(request("cams", a, "infer1"));
  EXPECT_EQ(first.get(), second.get()) << "the same id and checkpoint share one instance";
  Heard h;
  first->join(h.member("infer0"));
  try {
    vidcls::engine::acquire_model_instance(request("cams", b, "infer2"));
    FAIL() << "another checkpoint under a held id must be refused";
  } catch (const InstanceRefused &e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model-instance-id 'cams' is held by infer0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("infer2 asks for"), std::string::npos) << msg;
    EXPECT_NE(msg.find("b.safetensors"), std::string::npos) << msg;
  }
  auto own = vidcls::engine::acquire_model_instance(request("", a));
  EXPECT_NE(own.get(), first.get()) << "no id: a model of the element's own";
  first.reset();
  second.reset();
  auto again = vidcls::engine::acquire_model_instance(request("cams", b, "infer3"));
  EXPECT_EQ(again->model()->info.labels.size(), 4u) << "a freed id can be taken with another model";
}

TEST(ModelInstance, ClassifiesThroughItsWorkerWithTheTopKOfEachClip) {
  const auto a = checkpoint("mini-vivit-xs", 5, "mini");
  auto inst = vidcls::engine::acquire_model_instance(request("", a));
  Heard h;
  const auto id = inst->join(h.member("infer0"));
  const auto m = inst->model();
  vidcls::engine::Batching b;
  Outcome o;
  ASSERT_TRUE(inst->worker().classify_now(id, clip_for(m, 3), b, &o));
  ASSERT_EQ(o.kind, Outcome::Kind::kDone) << o.error << ": " << o.detail;
  EXPECT_EQ(o.result.clip.index, 3u);
  EXPECT_EQ(o.result.labels.size(), 3u) << "top_k 3 of 5 labels";
  EXPECT_EQ(o.result.model, "mini (mini-vivit-xs)");
  float sum = 0;
  for (float s : o.result.scores) sum += s;
  EXPECT_LE(sum, 1.0f + 1e-5f);
  EXPECT_GE(o.result.scores.front(), o.result.scores.back()) << "best first";
  // A clip of another size is an error that says what to change.
  auto wrong = clip_for(m, 4);
  wrong.clip = wrong.clip.narrow(2, 0, 8);
  ASSERT_TRUE(inst->worker().classify_now(id, std::move(wrong), b, &o));
  EXPECT_EQ(o.kind, Outcome::Kind::kFailed);
  EXPECT_TRUE(o.format);
  EXPECT_NE(o.detail.find("leave vidclsclipper's clip-length, width and height unset"),
            std::string::npos)
      << o.detail;
  inst->leave(id);
}

TEST(ModelInstance, ASwapReplacesTheModelOrLeavesItRunningWithTheReason) {
  const auto a = checkpoint("vivit-xs", 4, "swap-a"), b = checkpoint("mini-vivit-xs", 6, "swap-b");
  const auto r = checkpoint("resnet18-tvit-xs", 4, "swap-r");
  auto inst = vidcls::engine::acquire_model_instance(request("swap", a));
  Heard h;
  const auto id = inst->join(h.member("infer0", "resnet-tvit"));
  inst->swap(r, id);
  ASSERT_TRUE(h.wait(1));
  {
    std::lock_guard<std::mutex> l(h.lock);
    ASSERT_EQ(h.failed_swaps.size(), 1u);
    EXPECT_EQ(h.failed_swaps[0], "not resnet-tvit") << "the member's check decides";
  }
  EXPECT_EQ(inst->model()->info.labels.size(), 4u) << "the old model runs on";
  inst->swap((scratch() / "missing.safetensors").string(), id);
  ASSERT_TRUE(h.wait(2));
  {
    std::lock_guard<std::mutex> l(h.lock);
    ASSERT_EQ(h.failed_swaps.size(), 2u);
    EXPECT_NE(h.failed_swaps[1].find("could not load"), std::string::npos) << h.failed_swaps[1];
  }
  inst->swap(b, id);
  ASSERT_TRUE(h.wait(3));
  {
    std::lock_guard<std::mutex> l(h.lock);
    ASSERT_EQ(h.swaps.size(), 1u);
    EXPECT_EQ(h.swaps[0], b);
  }
  EXPECT_EQ(inst->model()->info.labels.size(), 6u) << "the new model classifies from now on";
  EXPECT_EQ(inst->model()->info.architecture, "mini-vivit");
  Outcome o;
  ASSERT_TRUE(
      inst->worker().classify_now(id, clip_for(inst->model(), 0), vidcls::engine::Batching(), &o));
  EXPECT_EQ(o.kind, Outcome::Kind::kDone);
  inst->leave(id);
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  return rc;
}
