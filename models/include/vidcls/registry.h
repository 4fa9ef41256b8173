// One place where architectures and presets are looked up by name.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vidcls/classifier.h"
#include "vidcls/clip_spec.h"

namespace vidcls {

struct Preset {
  std::string name;
  std::string architecture;  // "vivit", "mini-vivit", "resnet-tvit"
  std::string description;
  nlohmann::json config;     // full model config with the default num_classes
  ClipSpec clip;             // the clip spec a checkpoint of this preset starts with
};

const std::vector<Preset> &presets();
// Throws std::invalid_argument listing the known names.
const Preset &find_preset(const std::string &name);

// Builds a module of `architecture` from its full config. Throws std::invalid_argument for an
// unknown architecture, c10::Error (TORCH_CHECK) for an invalid config.
ClassifierPtr make_model(const std::string &architecture, const nlohmann::json &config);
// A preset with its head resized to num_classes (> 0), or as stored when 0.
ClassifierPtr make_preset_model(const std::string &preset, int64_t num_classes = 0);
nlohmann::json preset_config(const std::string &preset, int64_t num_classes = 0);

std::vector<std::string> architectures();

}  // namespace vidcls
