// Published classifiers as their publishers distribute them (torchvision .pth files, Hugging Face
// safetensors) into vidcls checkpoints: the weights, the publisher's labels and clip spec, and
// where it all came from. The registry's presets with PublishedWeights name what is known;
// docs/kinetics.md lists them with where to download each file.
#pragma once

#include <string>
#include <vector>

#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"
#include "vidcls/safetensors.h"

namespace vidcls {

struct PublishedImport {
  const Preset *preset = nullptr;
  ClassifierPtr model;  // every tensor from the file, in eval mode
  CheckpointInfo info;  // labels, clip spec and provenance for save_checkpoint
};

// How far a file's tensors are from a preset's model: names the model has and the file lacks,
// names the file has and the model lacks, names whose shapes differ ("name: file [..], model
// [..]"). All empty when the file is exactly that model.
struct LayoutDiff {
  std::vector<std::string> missing, unexpected, misshapen;
  bool exact() const { return missing.empty() && unexpected.empty() && misshapen.empty(); }
  size_t size() const { return missing.size() + unexpected.size() + misshapen.size(); }
};
LayoutDiff compare_layout(const Preset &preset, const NamedTensors &weights);

// The presets vidcls-import reads (those with PublishedWeights).
std::vector<const Preset *> published_presets();

// Reads the file at `path` (torch.save zip or safetensors, through the restricted unpickler:
// no code runs) as the preset named `preset`, or, when it is empty, as the one published preset
// whose tensors it holds exactly. Throws FormatError naming the file and, when no preset
// matches, the nearest one with the tensors that differ by name (missing, unexpected, or of
// another shape); nothing is written then.
PublishedImport import_published(const std::string &path, const std::string &preset = "");

}  // namespace vidcls
