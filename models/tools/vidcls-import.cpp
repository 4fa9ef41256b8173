// vidcls-import: a published classifier, as its publisher distributes it, into a vidcls
// checkpoint with the publisher's labels, clip spec and claims (docs/kinetics.md).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vidcls/errors.h"
#include "vidcls/published.h"

namespace {

std::string published_list() {
  std::string out;
  for (const auto *p : vidcls::published_presets()) {
    const auto &w = p->published;
    char claim[64];
    std::snprintf(claim, sizeof claim, "%.1f %% top-1", w.top1);
    out += "\n  " + p->name + " (" + p->architecture + "): " + w.file + " from " + w.publisher +
           ", " + claim;
  }
  return out;
}

// Class names from a Hugging Face config.json (id2label) or a text file, one per line.
std::vector<std::string> read_labels(const std::string &path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open labels file '" + path + "'");
  std::vector<std::string> labels;
  if (in.peek() == '{') {
    const auto j = nlohmann::json::parse(in);
    if (!j.contains("id2label")) throw std::runtime_error(path + ": a JSON file without id2label");
    const auto &map = j.at("id2label");
    labels.resize(map.size());
    for (const auto &[key, name] : map.items()) {
      const auto i = std::stoul(key);
      if (i >= labels.size()) throw std::runtime_error(path + ": id2label is not 0..N-1");
      labels[i] = name.get<std::string>();
    }
    return labels;
  }
  for (std::string line; std::getline(in, line);) {
    const auto b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b != std::string::npos) labels.push_back(line.substr(b, e - b + 1));
  }
  return labels;
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{
      "Import a published video classifier (a torchvision .pth, a Hugging Face .safetensors) "
      "into a vidcls checkpoint. The file is read as data (no pickled code runs); which model it "
      "is comes from its tensors unless --preset says.\nKnown:" +
      published_list()};
  std::string weights, preset, out, labels;
  bool list = false;
  app.add_option("weights", weights, "the downloaded file")->check(CLI::ExistingFile);
  app.add_option("--preset", preset, "read the file as this preset (default: detect)");
  app.add_option("-o,--out", out, "checkpoint to write (.safetensors)");
  app.add_option("--labels", labels,
                 "class names: the model's Hugging Face config.json (id2label) or a text file, one "
                 "per line (default: the preset's label set)")
      ->check(CLI::ExistingFile);
  app.add_flag("--list", list, "list the published classifiers and exit");
  CLI11_PARSE(app, argc, argv);
  if (list) {
    std::printf("%s\n", published_list().substr(1).c_str());
    return 0;
  }
  if (weights.empty() || out.empty()) {
    std::fprintf(stderr, "vidcls-import: give the weights file and --out CHECKPOINT\n");
    return 2;
  }
  return vidcls::run_tool("vidcls-import", [&] {
    auto imported = vidcls::import_published(weights, preset);
    imported.info.provenance["tool"] = "vidcls-import";
    if (!labels.empty()) {
      auto names = read_labels(labels);
      if (names.size() != imported.info.labels.size()) {
        throw std::runtime_error(labels + " names " + std::to_string(names.size()) +
                                 " classes; the model has " +
                                 std::to_string(imported.info.labels.size()));
      }
      imported.info.labels = std::move(names);
      imported.info.provenance["labels_file"] = labels.substr(labels.find_last_of('/') + 1);
    }
    vidcls::save_checkpoint(out, *imported.model, imported.info);
    int64_t params = 0;
    for (const auto &t : imported.model->parameters()) params += t.numel();
    const auto &clip = imported.info.clip;
    std::printf(
        "wrote %s: %s (%s), %lld parameters, %zu labels (%s); clip %d frames at %g fps, "
        "%d x %d\n",
        out.c_str(), imported.preset->name.c_str(), imported.model->architecture().c_str(),
        static_cast<long long>(params), imported.info.labels.size(),
        imported.preset->published.labels.c_str(), clip.frames, clip.sample_rate, clip.width,
        clip.height);
    return 0;
  });
}
