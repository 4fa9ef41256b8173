#include "vidcls/published.h"

#include <algorithm>
#include <map>
#include <utility>

#include <c10/util/StringUtil.h>
#include <nlohmann/json.hpp>

#include "vidcls/errors.h"
#include "vidcls/init.h"
#include "vidcls/kinetics.h"
#include "vidcls/pretrained.h"
#include "vidcls/scenic.h"

namespace vidcls {

namespace {

// BatchNorm's step counter: it plays no part in a forward pass, and a file saved before PyTorch
// 0.4.1 has none, so its absence is filled in rather than refused.
bool optional_tensor(const std::string &name) {
  const std::string suffix = ".num_batches_tracked";
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ClassifierPtr build_skipping_init(const Preset &p) {
  SkipInit skip;  // every tensor is read from the file
  return make_model(p.architecture, p.config);
}

std::vector<std::string> labels_of(const Preset &p, int64_t classes) {
  if (p.published.labels == "kinetics-400") {
    const auto &k = kinetics400_labels();
    if (static_cast<int64_t>(k.size()) == classes) return k;
  }
  throw MismatchError("preset " + p.name + ": no label set '" + p.published.labels + "' of " +
                      std::to_string(classes) + " classes");
}

nlohmann::json provenance_of(const Preset &p, const std::string &path) {
  const auto &w = p.published;
  nlohmann::json claim = {{"top1", w.top1}, {"top5", w.top5}, {"evaluation", w.evaluation}};
  return {{"imported_from", path.substr(path.find_last_of('/') + 1)},
          {"publisher", w.publisher},
          {"publisher_file", w.file},
          {"url", w.url},
          {"source", w.source},
          {"labels", w.labels},
          {"claimed_accuracy", claim},
          {"gflops_per_clip", w.gflops}};
}

std::string describe(const LayoutDiff &d) {
  std::string out;
  auto list = [&out](const char *what, const std::vector<std::string> &names) {
    if (names.empty()) return;
    out += std::string(out.empty() ? "" : "; ") + what + ": ";
    for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > 5) out += " and " + std::to_string(names.size() - 5) + " more";
  };
  list("missing from the file", d.missing);
  list("not in the model", d.unexpected);
  list("of another shape", d.misshapen);
  return out;
}

// The published preset whose tensors the file holds exactly. Presets of one architecture and
// size (Swin3D-B pretrained on ImageNet-1k or -22k) differ only in their values: the file's
// name, as the publisher names it, tells them apart, else --preset must.
const Preset *detect(const std::string &path, const NamedTensors &weights) {
  const std::string base = path.substr(path.find_last_of('/') + 1);
  std::vector<const Preset *> exact;
  const Preset *nearest = nullptr;
  LayoutDiff nearest_diff;
  for (const auto *p : published_presets()) {
    auto d = compare_layout(*p, weights);
    if (d.exact()) {
      exact.push_back(p);
    } else if (!nearest || d.size() < nearest_diff.size()) {
      nearest = p;
      nearest_diff = std::move(d);
    }
  }
  if (exact.size() == 1) return exact[0];
  for (const auto *p : exact) {
    if (p->published.file == base) return p;
  }
  if (exact.empty()) {
    throw FormatError(
        path + ": is none of the published classifiers vidcls knows; nearest is " +
        (nearest ? nearest->name + " (" + describe(nearest_diff) + ")" : std::string("none")));
  }
  std::string names;
  for (const auto *p : exact) names += (names.empty() ? "" : ", ") + p->name;
  throw FormatError(path + ": holds the tensors of " + names +
                    ", which differ only in their values: say which with --preset");
}

}  // namespace

std::vector<const Preset *> published_presets() {
  std::vector<const Preset *> out;
  for (const auto &p : presets()) {
    if (!p.published.publisher.empty()) out.push_back(&p);
  }
  return out;
}

namespace {

using Layout = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// The tensors, by name and shape, of the preset's model as its publisher's file holds them.
Layout expected_layout(const Preset &preset) {
  Layout out;
  if (preset.published.layout == "scenic") {
    for (auto &t : scenic_vivit_layout(preset.config.get<ViViTConfig>())) {
      out.emplace_back(std::move(t.name), std::move(t.shape));
    }
    return out;
  }
  const auto model = build_skipping_init(preset);
  for (const auto &[name, t] : state_of(*model)) out.emplace_back(name, t.sizes().vec());
  return out;
}

// The file's tensors that are the model's parameters, named as in expected_layout.
NamedTensors parameters_of(const Preset &preset, const NamedTensors &weights) {
  return preset.published.layout == "scenic" ? scenic_parameters(weights) : weights;
}

}  // namespace

LayoutDiff compare_layout(const Preset &preset, const NamedTensors &weights) {
  const auto params = parameters_of(preset, weights);
  std::map<std::string, const torch::Tensor *> file;
  for (const auto &[name, t] : params) file.emplace(name, &t);
  LayoutDiff d;
  for (const auto &[name, shape] : expected_layout(preset)) {
    auto it = file.find(name);
    if (it == file.end()) {
      if (!optional_tensor(name)) d.missing.push_back(name);
      continue;
    }
    if (it->second->sizes() != c10::IntArrayRef(shape)) {
      d.misshapen.push_back(name + ": file " + c10::str(it->second->sizes()) + ", model " +
                            c10::str(c10::IntArrayRef(shape)));
    }
    file.erase(it);
  }
  for (const auto &kv : file) d.unexpected.push_back(kv.first);
  return d;
}

PublishedImport import_published(const std::string &path, const std::string &preset_name) {
  auto weights = read_pretrained(path);
  const Preset *preset = nullptr;
  if (!preset_name.empty()) {
    preset = &find_preset(preset_name);
    if (preset->published.publisher.empty()) {
      throw std::invalid_argument("preset " + preset_name +
                                  " is not a published classifier (see vidcls-import --list)");
    }
    const auto d = compare_layout(*preset, weights);
    if (!d.exact()) {
      throw FormatError(path + ": is not " + preset->name + " as " + preset->published.publisher +
                        " publishes it: " + describe(d));
    }
  } else {
    preset = detect(path, weights);
  }
  PublishedImport out;
  out.preset = preset;
  out.model = build_skipping_init(*preset);
  if (preset->published.layout == "scenic") {
    weights = vivit_from_scenic(scenic_parameters(weights), preset->config.get<ViViTConfig>());
  }
  // Fill in the optional counters the file lacks, then take every tensor by name.
  for (const auto &[name, t] : state_of(*out.model)) {
    const bool present = std::any_of(weights.begin(), weights.end(),
                                     [&](const auto &kv) { return kv.first == name; });
    if (!present && optional_tensor(name)) weights.emplace_back(name, torch::zeros_like(t));
  }
  load_state(*out.model, weights, path);
  out.model->eval();
  out.info.preset = preset->name;
  out.info.labels = labels_of(*preset, out.model->num_classes());
  out.info.clip = preset->clip;
  out.info.provenance = provenance_of(*preset, path);
  return out;
}

}  // namespace vidcls
