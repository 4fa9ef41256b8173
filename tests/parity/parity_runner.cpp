// The C++ half of the parity tests (test_parity.py is the other): runs our models on an input
// tensor read from a safetensors file and writes what they compute, for comparison with PyTorch.
//
//   parity_runner resnet --pretrained FILE --depth N --num-classes N --input IN --out OUT
//       a ResNet-N with an N-way fc, weights by import_resnet; IN holds "images" [N, 3, H, W];
//       OUT gets "features" (pooled, the fc input) and "logits".
//   parity_runner checkpoint --checkpoint CKPT --input IN --out OUT
//       a model rebuilt by load_checkpoint. resnet-tvit: IN holds "images", OUT gets the
//       backbone's "features". vivit / mini-vivit: IN holds "clip" [B, T, C, H, W], OUT gets
//       "spatial_cls" [B, nt, D] (ViViTTrace) and "logits"; any other architecture (the imported
//       classifiers): IN holds "clip", OUT gets "logits".
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "vidcls/checkpoint.h"
#include "vidcls/pretrained.h"
#include "vidcls/resnet.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/runtime.h"
#include "vidcls/safetensors.h"
#include "vidcls/vivit.h"

namespace {

constexpr const char *kUsage =
    "usage: parity_runner resnet --pretrained FILE --depth N --num-classes N --input IN --out OUT\n"
    "       parity_runner checkpoint --checkpoint CKPT --input IN --out OUT\n";

torch::Tensor input_tensor(const std::string &path, const std::string &name) {
  for (const auto &[key, t] : vidcls::read_safetensors(path).tensors) {
    if (key == name) return t;
  }
  throw std::runtime_error(path + ": no tensor '" + name + "'");
}

int run(const std::string &mode, const std::map<std::string, std::string> &args) {
  auto arg = [&](const std::string &name) {
    auto it = args.find(name);
    if (it == args.end()) throw std::invalid_argument("missing --" + name + "\n" + kUsage);
    return it->second;
  };
  torch::NoGradGuard no_grad;
  vidcls::NamedTensors out;
  if (mode == "resnet") {
    vidcls::ResNetConfig cfg;
    cfg.depth = std::stoll(arg("depth"));
    cfg.num_classes = std::stoll(arg("num-classes"));
    vidcls::ResNet model(cfg);
    auto report = vidcls::import_resnet(*model, vidcls::read_pretrained(arg("pretrained")));
    std::printf("parity_runner: %zu tensors from %s (%s)\n", report.loaded.size(),
                arg("pretrained").c_str(), report.source_format.c_str());
    model->eval();
    const auto images = input_tensor(arg("input"), "images");
    const auto features = model->features(images);
    out = {{"features", features}, {"logits", model->fc(features)}};
  } else if (mode == "checkpoint") {
    auto loaded = vidcls::load_checkpoint(arg("checkpoint"));
    std::printf("parity_runner: %s (%s)\n", arg("checkpoint").c_str(),
                loaded.info.architecture.c_str());
    if (auto rtv = std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(loaded.model)) {
      out = {{"features", rtv->backbone->features(input_tensor(arg("input"), "images"))}};
    } else if (auto vivit = std::dynamic_pointer_cast<vidcls::ViViTImpl>(loaded.model)) {
      vidcls::ViViTTrace trace;
      auto logits = vivit->forward_trace(input_tensor(arg("input"), "clip"), trace, false);
      out = {{"spatial_cls", trace.spatial_cls}, {"logits", logits}};
    } else {  // the published classifiers: logits of the clip
      out = {{"logits", loaded.model->forward(input_tensor(arg("input"), "clip"))}};
    }
  } else {
    throw std::invalid_argument(std::string("unknown mode '") + mode + "'\n" + kUsage);
  }
  vidcls::write_safetensors(arg("out"), out, {});
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || (argc % 2) != 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::map<std::string, std::string> args;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    args[key.substr(2)] = argv[i + 1];
  }
  vidcls::configure_runtime();
  try {
    return run(argv[1], args);
  } catch (const c10::Error &e) {
    std::fprintf(stderr, "parity_runner: %s\n", e.what_without_backtrace());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "parity_runner: %s\n", e.what());
  }
  return 1;
}
