// Forward time per preset on this machine's CPU: batch 1, clips of the preset's documented
// shape (an imported classifier's: the publisher's clip length and size), eval mode, no
// autograd; clips per second, the cost per sampled frame, and the process's peak resident memory
// while the model runs (VmHWM, reset before each model's first forward: weights, activations and
// the rest of the process). Where LibTorch has the fused scaled-dot-product attention (>= 2.0), a
// last column times the same model with the explicit math path, which is what LibTorch 1.13
// runs. Prints a table; optional --json FILE writes the numbers.
//
//   bench-forward [--presets a,b,... | --published] [--iters N] [--json FILE]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>
#include <torch/version.h>

#include "vidcls/layers.h"
#include "vidcls/published.h"
#include "vidcls/registry.h"
#include "vidcls/resnet.h"
#include "vidcls/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median of timed calls after `warmup` untimed ones, in milliseconds: at least `iters` calls and,
// for fast models, more until a second has passed (at most 50): this machine's timings scatter
// by 2x from call to call, and a median of three 40 ms calls says little.
template <typename F>
double median_ms(F &&fn, int iters, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < iters ||
         (ms.size() < 50 && Clock::now() - start < std::chrono::seconds(1))) {
    auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Hands the heap's free pages back to the kernel (the previous model's), then resets the kernel's
// peak-RSS mark of this process to its current RSS (Linux >= 4.0).
void reset_peak_rss() {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
}

// VmRSS of /proc/self/status, MiB.
double rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

// VmHWM of /proc/self/status, MiB (0 where it cannot be read).
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

std::vector<std::string> split(const std::string &s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  std::vector<std::string> names;
  int iters = 5;
  std::string json_path;
  bool resnet50_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--presets" && i + 1 < argc) names = split(argv[++i]);
    else if (a == "--iters" && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--resnet50-batch") resnet50_only = true;
    else if (a == "--published") {
      for (const auto *p : vidcls::published_presets()) names.push_back(p->name);
    }
    else {
      std::fprintf(stderr,
                   "usage: %s [--presets a,b | --published] [--iters N] [--json FILE] "
                   "[--resnet50-batch]\n",
                   argv[0]);
      return 2;
    }
  }
  const int threads = vidcls::configure_runtime();
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  nlohmann::json results = nlohmann::json::array();

  if (resnet50_only) {
    // The input the Python side times too: 8 frames of 224 x 224 through ResNet-50.
    vidcls::ResNetConfig cfg;
    cfg.depth = 50;
    cfg.num_classes = 1000;
    vidcls::ResNet net(cfg);
    net->eval();
    auto x = torch::randn({8, 3, 224, 224});
    const double ms = median_ms([&] { net->forward(x); }, iters);
    std::printf("resnet50_ms %.3f\n", ms);
    return 0;
  }

  if (names.empty()) {
    for (const auto &p : vidcls::presets()) names.push_back(p.name);
  }
  std::printf("forward time per clip, batch 1, eval, %d threads, median of >= %d calls (fast "
              "presets: more, up to 1 s)\n",
              threads, iters);
  reset_peak_rss();
  std::printf("peak MiB: the process's peak resident memory while the model ran (weights, "
              "activations, and %.0f MiB of process before any model)\n",
              rss_mib());
  const bool fused = vidcls::fused_attention_available();
  std::printf("LibTorch %s, attention: %s\n", TORCH_VERSION,
              fused ? "fused scaled_dot_product_attention (math path in the last column)"
                    : "math path only");
  std::printf("%-18s %-12s %10s %16s %11s %9s %11s %10s %10s\n", "preset", "arch", "params (M)",
              "clip TxHxW", "ms / clip", "clips/s", "ms / frame", "peak MiB",
              fused ? "math ms" : "");
  for (const auto &name : names) {
    auto model = vidcls::make_preset_model(name);
    model->eval();
    const auto s = model->input_shape();
    auto clip = torch::randn({1, s.frames, s.channels, s.height, s.width});
    int64_t params = 0;
    for (const auto &p : model->parameters()) params += p.numel();
    reset_peak_rss();
    const double ms = median_ms([&] { model->forward(clip); }, iters, 1);
    const double peak = peak_rss_mib();
    double math_ms = ms;
    if (fused) {
      vidcls::set_attention_path(vidcls::AttentionPath::kMath);
      math_ms = median_ms([&] { model->forward(clip); }, iters, 1);
      vidcls::set_attention_path(vidcls::AttentionPath::kAuto);
    }
    std::printf("%-18s %-12s %10.2f %7lldx%lldx%-6lld %11.1f %9.3f %11.2f %10.0f", name.c_str(),
                model->architecture().c_str(), params / 1e6, static_cast<long long>(s.frames),
                static_cast<long long>(s.height), static_cast<long long>(s.width), ms, 1000.0 / ms,
                ms / static_cast<double>(s.frames), peak);
    if (fused) std::printf(" %10.1f", math_ms);
    std::printf("\n");
    std::fflush(stdout);
    results.push_back({{"preset", name},      {"ms", ms},           {"math_ms", math_ms},
                       {"params", params},    {"frames", s.frames}, {"peak_rss_mib", peak},
                       {"threads", threads}, {"torch", TORCH_VERSION}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
  return 0;
}
