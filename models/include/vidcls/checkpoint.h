// The vidcls checkpoint: one safetensors file whose __metadata__ describes everything needed to
// rebuild and use the model (docs/architecture.md, "The checkpoint").
//
// __metadata__ keys (values are strings; JSON where noted):
//   vidcls.format        "1"
//   vidcls.architecture  "vivit" | "mini-vivit" | "resnet-tvit"
//   vidcls.preset        preset the model was made from (informational)
//   vidcls.config        JSON: the full model config (make_model input)
//   vidcls.labels        JSON: array of class names, one per head output
//   vidcls.clip          JSON: the ClipSpec (preprocessing contract)
//   vidcls.provenance    JSON: free-form object (dataset, epochs, metrics, git revision, ...)
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vidcls/classifier.h"
#include "vidcls/clip_spec.h"
#include "vidcls/safetensors.h"

namespace vidcls {

struct CheckpointInfo {
  std::string architecture;
  std::string preset;
  nlohmann::json config;
  std::vector<std::string> labels;
  ClipSpec clip;
  nlohmann::json provenance = nlohmann::json::object();
};

struct LoadedCheckpoint {
  CheckpointInfo info;
  ClassifierPtr model;     // in eval mode, on the CPU
  NamedTensors extra;      // tensors under "extra." (e.g. optimiser state), prefix removed
};

// Writes model parameters and buffers plus `extra` tensors (stored under "extra.") atomically.
// info.architecture and info.config are taken from the model.
void save_checkpoint(const std::string &path, VideoClassifierImpl &model, CheckpointInfo info,
                     const NamedTensors &extra = {});

// Reads only the metadata. Throws FormatError / MismatchError naming the path and the problem.
CheckpointInfo read_checkpoint_info(const std::string &path);

// Rebuilds the model from the file alone. Refuses, naming the tensor or field: a file that is
// not a vidcls checkpoint, bad metadata JSON, an unknown architecture, a missing or unexpected
// tensor, a tensor whose shape or dtype differs from the architecture, a label count that
// differs from the head size.
LoadedCheckpoint load_checkpoint(const std::string &path);

// The same checks over tensors already read (for in-memory files).
LoadedCheckpoint checkpoint_from_safetensors(const SafetensorsFile &file, const std::string &what);

// Copies `tensors` into the model's parameters and buffers by name; every model tensor must be
// present with the same shape (MismatchError names the first that is not). Unknown names are
// refused too unless allow_unexpected.
void load_state(torch::nn::Module &model, const NamedTensors &tensors, const std::string &what,
                bool allow_unexpected = false);
NamedTensors state_of(const torch::nn::Module &model);

}  // namespace vidcls
