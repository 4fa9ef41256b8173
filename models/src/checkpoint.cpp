#include "vidcls/checkpoint.h"

#include <cstring>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "vidcls/errors.h"
#include "vidcls/init.h"
#include "vidcls/mapped_file.h"
#include "vidcls/registry.h"

namespace vidcls {

namespace {

constexpr const char *kFormatVersion = "1";
constexpr const char *kExtraPrefix = "extra.";

nlohmann::json parse_meta_json(const std::map<std::string, std::string> &meta,
                               const std::string &key, const std::string &what) {
  auto it = meta.find(key);
  if (it == meta.end()) {
    throw FormatError(what + ": metadata field '" + key + "' is missing");
  }
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception &e) {
    throw FormatError(what + ": metadata field '" + key + "' is not valid JSON: " + e.what());
  }
}

CheckpointInfo info_from_metadata(const std::map<std::string, std::string> &meta,
                                  const std::string &what) {
  auto fmt = meta.find("vidcls.format");
  if (fmt == meta.end()) {
    throw FormatError(what +
                      ": not a vidcls checkpoint (a safetensors file without 'vidcls.format' "
                      "metadata; pretrained image weights go through vidcls-init --pretrained)");
  }
  if (fmt->second != kFormatVersion) {
    throw FormatError(what + ": checkpoint format version '" + fmt->second +
                      "' is not supported by this vidcls (expects " + kFormatVersion + ")");
  }
  CheckpointInfo info;
  auto arch = meta.find("vidcls.architecture");
  if (arch == meta.end()) throw FormatError(what + ": metadata field 'vidcls.architecture' is missing");
  info.architecture = arch->second;
  if (auto p = meta.find("vidcls.preset"); p != meta.end()) info.preset = p->second;
  info.config = parse_meta_json(meta, "vidcls.config", what);
  if (!info.config.is_object()) throw FormatError(what + ": 'vidcls.config' is not a JSON object");
  auto labels = parse_meta_json(meta, "vidcls.labels", what);
  if (!labels.is_array()) throw FormatError(what + ": 'vidcls.labels' is not a JSON array");
  for (const auto &l : labels) {
    if (!l.is_string()) throw FormatError(what + ": 'vidcls.labels' holds a non-string label");
    info.labels.push_back(l.get<std::string>());
  }
  try {
    info.clip = parse_meta_json(meta, "vidcls.clip", what).get<ClipSpec>();
    info.clip.validate();
  } catch (const FormatError &) {
    throw;
  } catch (const std::exception &e) {
    throw FormatError(what + ": bad clip spec in 'vidcls.clip': " + e.what());
  }
  if (meta.count("vidcls.provenance")) {
    info.provenance = parse_meta_json(meta, "vidcls.provenance", what);
  }
  return info;
}

// Built without initial values: load_state overwrites every parameter and buffer or throws, and
// the model is returned only after it has.
ClassifierPtr build_uninitialised(const CheckpointInfo &info, const std::string &what) {
  const SkipInit skip_init;
  try {
    return make_model(info.architecture, info.config);
  } catch (const std::invalid_argument &e) {
    throw FormatError(what + ": " + e.what());
  } catch (const nlohmann::json::exception &e) {
    throw FormatError(what + ": bad model config in 'vidcls.config': " + e.what());
  } catch (const c10::Error &e) {
    throw FormatError(what + ": invalid model config in 'vidcls.config': " +
                      e.what_without_backtrace());
  }
}

// `views`: the file's tensors alias memory that goes away after loading (a mapping), so the
// extras are copied out; the model's tensors are copied once into its parameters either way.
LoadedCheckpoint checkpoint_from_tensors(const SafetensorsFile &file, const std::string &what,
                                         bool views) {
  LoadedCheckpoint out;
  out.info = info_from_metadata(file.metadata, what);
  out.model = build_uninitialised(out.info, what);
  if (static_cast<int64_t>(out.info.labels.size()) != out.model->num_classes()) {
    throw MismatchError(what + ": the file has " + std::to_string(out.info.labels.size()) +
                        " labels but the model's head has " +
                        std::to_string(out.model->num_classes()) + " classes");
  }
  NamedTensors model_tensors;
  const std::string prefix = kExtraPrefix;
  for (const auto &[name, t] : file.tensors) {
    if (name.compare(0, prefix.size(), prefix) == 0) {
      out.extra.emplace_back(name.substr(prefix.size()), views ? t.clone() : t);
    } else {
      model_tensors.emplace_back(name, t);
    }
  }
  load_state(*out.model, model_tensors, what);
  out.model->eval();
  return out;
}

}  // namespace

NamedTensors state_of(const torch::nn::Module &model) {
  NamedTensors out;
  for (const auto &p : model.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto &b : model.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

void load_state(torch::nn::Module &model, const NamedTensors &tensors, const std::string &what,
                bool allow_unexpected) {
  std::unordered_map<std::string, const torch::Tensor *> by_name;
  for (const auto &[name, t] : tensors) by_name.emplace(name, &t);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto &[name, dst] : state_of(model)) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw MismatchError(what + ": tensor '" + name + "' of the " +
                          "model is missing from the file");
    }
    const auto &src = *it->second;
    if (src.sizes() != dst.sizes()) {
      throw MismatchError(what + ": tensor '" + name + "' has shape " +
                          c10::str(src.sizes()) + " in the file but the model expects " +
                          c10::str(dst.sizes()));
    }
    if (src.scalar_type() != dst.scalar_type()) {
      throw MismatchError(what + ": tensor '" + name + "' has dtype " +
                          c10::toString(src.scalar_type()) + " in the file but the model expects " +
                          c10::toString(dst.scalar_type()));
    }
    if (dst.is_cpu() && src.is_cpu() && dst.is_contiguous() && src.is_contiguous()) {
      // copy_ splits large tensors across LibTorch's OpenMP team; a load is bound by page
      // faults, and on a busy machine the team's waiting made mini-vivit-ti load in 320 ms
      // instead of 75.
      std::memcpy(dst.data_ptr(), src.data_ptr(), src.nbytes());
    } else {
      dst.copy_(src);
    }
    used.insert(name);
  }
  if (!allow_unexpected) {
    for (const auto &[name, t] : tensors) {
      if (!used.count(name)) {
        throw MismatchError(what + ": tensor '" + name +
                            "' in the file is not part of the model's architecture");
      }
    }
  }
}

void save_checkpoint(const std::string &path, VideoClassifierImpl &model, CheckpointInfo info,
                     const NamedTensors &extra) {
  info.architecture = model.architecture();
  info.config = model.config();
  if (info.labels.empty()) {
    for (int64_t i = 0; i < model.num_classes(); ++i) {
      info.labels.push_back("class_" + std::to_string(i));
    }
  }
  if (static_cast<int64_t>(info.labels.size()) != model.num_classes()) {
    throw MismatchError(path + ": " + std::to_string(info.labels.size()) +
                        " labels for a head of " + std::to_string(model.num_classes()) +
                        " classes");
  }
  info.clip.validate();
  std::map<std::string, std::string> meta = {
      {"vidcls.format", kFormatVersion},
      {"vidcls.architecture", info.architecture},
      {"vidcls.preset", info.preset},
      {"vidcls.config", info.config.dump()},
      {"vidcls.labels", nlohmann::json(info.labels).dump()},
      {"vidcls.clip", nlohmann::json(info.clip).dump()},
      {"vidcls.provenance", info.provenance.dump()},
  };
  NamedTensors tensors = state_of(model);
  for (const auto &[name, t] : extra) tensors.emplace_back(kExtraPrefix + name, t);
  write_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string &path) {
  return info_from_metadata(read_safetensors_header(path).metadata, path);
}

LoadedCheckpoint checkpoint_from_safetensors(const SafetensorsFile &file,
                                             const std::string &what) {
  return checkpoint_from_tensors(file, what, /*views=*/false);
}

LoadedCheckpoint load_checkpoint(const std::string &path) {
  // The file's bytes go from the mapping straight into the parameters: one copy.
  const MappedFile file(path);
  return checkpoint_from_tensors(view_safetensors(file.data(), file.size(), path), path,
                                 /*views=*/true);
}

}  // namespace vidcls
