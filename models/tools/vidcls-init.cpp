// vidcls-init: writes a checkpoint for a preset, with random weights or initialised from a
// pretrained image model (ViT/DeiT into ViViT's spatial encoder and tubelet, ResNet into the
// backbone of ResNet + Temporal ViT).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/utils.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/pretrained.h"
#include "vidcls/registry.h"

namespace {

std::vector<std::string> read_labels(const std::string &path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open labels file '" + path + "'");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r");
    labels.push_back(line.substr(b, e - b + 1));
  }
  if (labels.empty()) throw std::runtime_error("labels file '" + path + "' has no labels");
  return labels;
}

std::string preset_list() {
  std::string out;
  for (const auto &p : vidcls::presets()) {
    out += "\n  " + p.name + " (" + p.architecture + "): " + p.description;
  }
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"Write a vidcls checkpoint for a preset, random or from pretrained image weights.\n"
               "Presets:" + preset_list()};
  std::string preset, labels_file, pretrained, tubelet_init = "central-frame", out;
  int64_t num_classes = 0;
  uint64_t seed = 0;
  app.add_option("--preset", preset, "model preset")->required();
  auto *nc = app.add_option("--num-classes", num_classes, "number of classes (labels class_0..)")
                 ->check(CLI::PositiveNumber);
  auto *lf = app.add_option("--labels", labels_file, "file with one class label per line")
                 ->check(CLI::ExistingFile);
  nc->excludes(lf);
  app.add_option("--pretrained", pretrained,
                 "image model weights: torchvision/DeiT .pth, timm or Hugging Face .safetensors")
      ->check(CLI::ExistingFile);
  app.add_option("--tubelet-init", tubelet_init,
                 "how a 2D patch embedding becomes the tubelet kernel (default central-frame)")
      ->check(CLI::IsMember({"central-frame", "average"}));
  app.add_option("--seed", seed, "random seed for the weights not imported (default 0)");
  app.add_option("--out", out, "checkpoint to write (.safetensors)")->required();
  CLI11_PARSE(app, argc, argv);

  return vidcls::run_tool("vidcls-init", [&] {
    vidcls::CheckpointInfo info;
    if (!labels_file.empty()) {
      info.labels = read_labels(labels_file);
      num_classes = static_cast<int64_t>(info.labels.size());
    } else if (num_classes <= 0) {
      std::fprintf(stderr, "vidcls-init: give --num-classes N or --labels FILE\n");
      return 2;
    }
    torch::manual_seed(seed);
    const auto &p = vidcls::find_preset(preset);
    auto model = vidcls::make_preset_model(preset, num_classes);
    info.preset = p.name;
    info.clip = p.clip;
    info.provenance = {{"tool", "vidcls-init"}, {"seed", seed}};
    if (!pretrained.empty()) {
      auto report = vidcls::import_pretrained(*model, pretrained,
                                              vidcls::tubelet_init_from_string(tubelet_init));
      info.provenance["pretrained"] = {{"file", pretrained},
                                       {"format", report.source_format},
                                       {"tubelet_init", tubelet_init},
                                       {"tensors_loaded", report.loaded.size()}};
      std::printf("imported %zu tensors from %s (%s); %zu source tensors unused\n",
                  report.loaded.size(), pretrained.c_str(), report.source_format.c_str(),
                  report.skipped.size());
      for (const auto &note : report.notes) std::printf("  note: %s\n", note.c_str());
    }
    vidcls::save_checkpoint(out, *model, info);
    int64_t params = 0;
    for (const auto &t : model->parameters()) params += t.numel();
    std::printf("wrote %s: %s (%s), %lld parameters, %lld classes\n", out.c_str(), p.name.c_str(),
                model->architecture().c_str(), static_cast<long long>(params),
                static_cast<long long>(num_classes));
    return 0;
  });
}
