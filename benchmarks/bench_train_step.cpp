// One training step (forward, cross-entropy, backward, AdamW) of a preset on random clips, in
// milliseconds: the LibTorch side of train_step_vs_pytorch.py.
//
//   bench-train-step --preset vivit-xs --batch 16 --iters 10
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>

#include "vidcls/registry.h"
#include "vidcls/runtime.h"

int main(int argc, char **argv) {
  std::string preset = "vivit-xs";
  int batch = 16, iters = 10, classes = 6;
  CLI::App app{"Time a training step of a preset."};
  app.add_option("--preset", preset)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--iters", iters)->capture_default_str();
  app.add_option("--classes", classes)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  vidcls::configure_runtime();
  torch::manual_seed(0);
  auto model = vidcls::make_preset_model(preset, classes);
  model->train();
  const auto shape = model->input_shape();
  std::vector<int64_t> dims = {batch, shape.frames, shape.channels, shape.height, shape.width};
  const auto x = torch::randn(dims);
  const auto y = torch::randint(classes, {batch}, torch::kInt64);
  std::vector<torch::Tensor> params;
  int64_t n = 0;
  for (auto &p : model->parameters()) {
    if (p.requires_grad()) {
      params.push_back(p);
      n += p.numel();
    }
  }
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 2; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("{\"preset\": \"%s\", \"batch\": %d, \"trainable_parameters\": %lld, "
              "\"threads\": %d, \"step_ms\": %.3f}\n",
              preset.c_str(), batch, static_cast<long long>(n), at::get_num_threads(),
              ms[ms.size() / 2]);
  return 0;
}
