// Checkpoints for the element tests: random weights of a preset, saved under a scratch folder of
// the test process that main() removes at the end.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/utils.h>

#include "gst_test_env.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace vidcls_test {

inline std::filesystem::path scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("vidcls-gst-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// A checkpoint of `preset` with labels l0..l{n-1}, random weights from `seed`.
inline std::string make_checkpoint(const std::string &preset, int n = 5, uint64_t seed = 1) {
  const auto path =
      (scratch() / (preset + "-" + std::to_string(seed) + ".safetensors")).string();
  if (std::filesystem::exists(path)) return path;
  torch::manual_seed(seed);
  auto model = vidcls::make_preset_model(preset, n);
  vidcls::CheckpointInfo info;
  info.preset = preset;
  info.clip = vidcls::find_preset(preset).clip;
  for (int i = 0; i < n; ++i) info.labels.push_back("l" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

// The tests with the build's plugin, then the scratch folder removed.
inline int run_element_tests(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new GstEnvironment);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  std::filesystem::remove_all(scratch(), ec);
  return rc;
}

}  // namespace vidcls_test
