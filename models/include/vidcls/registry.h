// One place where architectures and presets are looked up by name.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vidcls/classifier.h"
#include "vidcls/clip_spec.h"

namespace vidcls {

// Where the weights of a preset come from when it is a published classifier that vidcls-import
// reads (empty `publisher` for the presets vidcls trains). Every figure is the publisher's own,
// from the place `source` names.
struct PublishedWeights {
  std::string publisher;  // "torchvision", "Hugging Face"
  std::string source;     // where the figures below are stated
  std::string file;       // the file as the publisher names it
  std::string url;        // where to download it
  std::string labels;     // the label set of its classifier: "kinetics-400"
  double top1 = 0;        // claimed accuracy, %
  double top5 = 0;
  std::string evaluation;  // how the claim was measured (views, clip length, frame rate)
  double gflops = 0;       // per clip, as the publisher states it (0: not stated)
  // How the file names its tensors: "" as the model's own parameters (torchvision, Hugging Face
  // layouts), "scenic" as scenic's Flax ViViT (scenic.h maps it).
  std::string layout;
};

struct Preset {
  std::string name;
  std::string architecture;  // "vivit", "mini-vivit", "resnet-tvit", "video-resnet", "s3d", ...
  std::string description;
  nlohmann::json config;     // full model config with the default num_classes
  ClipSpec clip;             // the clip spec a checkpoint of this preset starts with
  PublishedWeights published;
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

// Fine-tuning a model of any architecture on other classes.
// The names of the tensors that make up its classifier head: those whose shape changes with
// num_classes (found by building the architecture at num_classes + 1, without drawing weights).
std::vector<std::string> head_tensors(const VideoClassifierImpl &model);
// Freezes every parameter but the head's (requires_grad false). Returns how many parameters
// stay trainable.
int64_t freeze_all_but_head(VideoClassifierImpl &model);
// Puts back in eval mode every submodule whose parameters are all frozen (and that has any), so
// that a frozen part keeps its BatchNorm statistics and runs without dropout while the rest
// trains; call after train().
void keep_frozen_in_eval(torch::nn::Module &model);

}  // namespace vidcls
