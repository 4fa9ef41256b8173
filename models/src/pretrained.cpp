// Pretrained image weights into our video models. Every naming we accept is a table of key rules
// that maps the file's keys onto one canonical ViT or ResNet; the import code only ever reads
// canonical names, so a new naming is a new table, not new code.
#include "vidcls/pretrained.h"

#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include <torch/nn/functional/upsampling.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/flax_msgpack.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/torch_pickle.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

// ---------------------------------------------------------------------------------------------
// Key tables
//
// A source pattern is matched against a whole key: "{i}", "{j}", "{k}", "{s}" match a decimal
// index, "{*}" one name component (no dot); everything else literally. The canonical template
// repeats the captures, "{s+1}" adding one (Hugging Face counts stages and convolutions from 0,
// torchvision from 1).
//
// Canonical ViT: patch.weight [D, C, p, p], patch.bias [D], cls [1, 1, D], dist [1, 1, D] (DeiT's
// distillation token), pos [1, prefix + N, D], blocks.{i}.{norm1, qkv, proj, norm2, fc1,
// fc2}.{weight, bias} (qkv = q, k, v stacked along dim 0), norm.{weight, bias}.
// Canonical ResNet: torchvision's names.

enum class Transform {
  kCopy,
  // One third of a fused qkv projection; Hugging Face keeps query, key and value apart.
  kQuery,
  kKey,
  kValue,
  // Known and deliberately unused: image classifier heads, poolers.
  kSkip,
};

struct KeyRule {
  const char *source;
  const char *canonical;
  Transform transform;
};

constexpr KeyRule kTorchvisionViT[] = {
    {"conv_proj.{*}", "patch.{*}", Transform::kCopy},
    {"class_token", "cls", Transform::kCopy},
    {"encoder.pos_embedding", "pos", Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.ln_1.{*}", "blocks.{i}.norm1.{*}", Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.self_attention.in_proj_weight", "blocks.{i}.qkv.weight",
     Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.self_attention.in_proj_bias", "blocks.{i}.qkv.bias",
     Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.self_attention.out_proj.{*}", "blocks.{i}.proj.{*}",
     Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.ln_2.{*}", "blocks.{i}.norm2.{*}", Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.mlp.0.{*}", "blocks.{i}.fc1.{*}", Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.mlp.3.{*}", "blocks.{i}.fc2.{*}", Transform::kCopy},
    // torchvision < 0.13 named the MLP layers.
    {"encoder.layers.encoder_layer_{i}.mlp.linear_1.{*}", "blocks.{i}.fc1.{*}", Transform::kCopy},
    {"encoder.layers.encoder_layer_{i}.mlp.linear_2.{*}", "blocks.{i}.fc2.{*}", Transform::kCopy},
    {"encoder.ln.{*}", "norm.{*}", Transform::kCopy},
    {"heads.{*}.{*}", "", Transform::kSkip},
};

// timm's VisionTransformer and the DeiT repository (same names; DeiT adds dist_token/head_dist).
constexpr KeyRule kTimmViT[] = {
    {"patch_embed.proj.{*}", "patch.{*}", Transform::kCopy},
    {"cls_token", "cls", Transform::kCopy},
    {"dist_token", "dist", Transform::kCopy},
    {"pos_embed", "pos", Transform::kCopy},
    {"blocks.{i}.norm1.{*}", "blocks.{i}.norm1.{*}", Transform::kCopy},
    {"blocks.{i}.attn.qkv.{*}", "blocks.{i}.qkv.{*}", Transform::kCopy},
    {"blocks.{i}.attn.proj.{*}", "blocks.{i}.proj.{*}", Transform::kCopy},
    {"blocks.{i}.norm2.{*}", "blocks.{i}.norm2.{*}", Transform::kCopy},
    {"blocks.{i}.mlp.fc1.{*}", "blocks.{i}.fc1.{*}", Transform::kCopy},
    {"blocks.{i}.mlp.fc2.{*}", "blocks.{i}.fc2.{*}", Transform::kCopy},
    {"norm.{*}", "norm.{*}", Transform::kCopy},
    {"head.{*}", "", Transform::kSkip},
    {"head_dist.{*}", "", Transform::kSkip},
    {"pre_logits.fc.{*}", "", Transform::kSkip},
};

// Hugging Face ViTModel / ViTForImageClassification (google/vit-*) and DeiT
// (DeiTForImageClassificationWithTeacher, facebook/deit-*-distilled-*), after the "vit." or
// "deit." prefix.
constexpr KeyRule kHuggingFaceViT[] = {
    {"embeddings.patch_embeddings.projection.{*}", "patch.{*}", Transform::kCopy},
    {"embeddings.cls_token", "cls", Transform::kCopy},
    {"embeddings.distillation_token", "dist", Transform::kCopy},
    {"embeddings.position_embeddings", "pos", Transform::kCopy},
    {"embeddings.mask_token", "", Transform::kSkip},
    {"encoder.layer.{i}.layernorm_before.{*}", "blocks.{i}.norm1.{*}", Transform::kCopy},
    {"encoder.layer.{i}.attention.attention.query.{*}", "blocks.{i}.qkv.{*}", Transform::kQuery},
    {"encoder.layer.{i}.attention.attention.key.{*}", "blocks.{i}.qkv.{*}", Transform::kKey},
    {"encoder.layer.{i}.attention.attention.value.{*}", "blocks.{i}.qkv.{*}", Transform::kValue},
    {"encoder.layer.{i}.attention.output.dense.{*}", "blocks.{i}.proj.{*}", Transform::kCopy},
    {"encoder.layer.{i}.layernorm_after.{*}", "blocks.{i}.norm2.{*}", Transform::kCopy},
    {"encoder.layer.{i}.intermediate.dense.{*}", "blocks.{i}.fc1.{*}", Transform::kCopy},
    {"encoder.layer.{i}.output.dense.{*}", "blocks.{i}.fc2.{*}", Transform::kCopy},
    {"layernorm.{*}", "norm.{*}", Transform::kCopy},
    {"pooler.dense.{*}", "", Transform::kSkip},
    {"classifier.{*}", "", Transform::kSkip},
    {"cls_classifier.{*}", "", Transform::kSkip},
    {"distillation_classifier.{*}", "", Transform::kSkip},
};

// torchvision's ResNet; timm's resnet* use the same names.
constexpr KeyRule kTorchvisionResNet[] = {
    {"conv1.weight", "conv1.weight", Transform::kCopy},
    {"bn1.{*}", "bn1.{*}", Transform::kCopy},
    {"layer{s}.{j}.conv{k}.weight", "layer{s}.{j}.conv{k}.weight", Transform::kCopy},
    {"layer{s}.{j}.bn{k}.{*}", "layer{s}.{j}.bn{k}.{*}", Transform::kCopy},
    {"layer{s}.{j}.downsample.{k}.{*}", "layer{s}.{j}.downsample.{k}.{*}", Transform::kCopy},
    {"fc.{*}", "fc.{*}", Transform::kCopy},
};

// Hugging Face ResNetModel / ResNetForImageClassification (microsoft/resnet-*), after "resnet.".
// Its bottleneck strides the 3x3 convolution (downsample_in_bottleneck = false), as torchvision.
constexpr KeyRule kHuggingFaceResNet[] = {
    {"embedder.embedder.convolution.weight", "conv1.weight", Transform::kCopy},
    {"embedder.embedder.normalization.{*}", "bn1.{*}", Transform::kCopy},
    {"encoder.stages.{s}.layers.{j}.shortcut.convolution.weight",
     "layer{s+1}.{j}.downsample.0.weight", Transform::kCopy},
    {"encoder.stages.{s}.layers.{j}.shortcut.normalization.{*}", "layer{s+1}.{j}.downsample.1.{*}",
     Transform::kCopy},
    {"encoder.stages.{s}.layers.{j}.layer.{k}.convolution.weight",
     "layer{s+1}.{j}.conv{k+1}.weight", Transform::kCopy},
    {"encoder.stages.{s}.layers.{j}.layer.{k}.normalization.{*}", "layer{s+1}.{j}.bn{k+1}.{*}",
     Transform::kCopy},
    {"classifier.1.{*}", "fc.{*}", Transform::kCopy},
};

enum class Kind { kViT, kResNet };

struct Family {
  const char *name;  // ImportReport::source_format
  Kind kind;
  const char *marker;                 // a key only this naming has (after its prefix)
  std::vector<std::string> prefixes;  // tried in order; "" = none
  const KeyRule *rules;
  std::size_t num_rules;
};

const std::vector<Family> &families() {
  // "module." comes from DataParallel, "model." from a wrapper the unpickler did not unwrap.
  static const std::vector<Family> all = {
      {"torchvision vit",
       Kind::kViT,
       "conv_proj.weight",
       {"", "module.", "model."},
       kTorchvisionViT,
       std::size(kTorchvisionViT)},
      {"timm vit",
       Kind::kViT,
       "patch_embed.proj.weight",
       {"", "module.", "model."},
       kTimmViT,
       std::size(kTimmViT)},
      {"hf vit",
       Kind::kViT,
       "embeddings.patch_embeddings.projection.weight",
       {"vit.", "deit.", ""},
       kHuggingFaceViT,
       std::size(kHuggingFaceViT)},
      {"torchvision resnet",
       Kind::kResNet,
       "layer1.0.conv1.weight",
       {"", "module.", "model."},
       kTorchvisionResNet,
       std::size(kTorchvisionResNet)},
      {"hf resnet",
       Kind::kResNet,
       "embedder.embedder.convolution.weight",
       {"resnet.", ""},
       kHuggingFaceResNet,
       std::size(kHuggingFaceResNet)},
  };
  return all;
}

struct Captures {
  std::map<char, int64_t> index;
  std::string word;
};

bool match(const char *pattern, const std::string &key, Captures &caps) {
  std::size_t k = 0;
  for (const char *p = pattern; *p != '\0';) {
    if (*p != '{') {
      if (k >= key.size() || key[k] != *p) return false;
      ++k;
      ++p;
      continue;
    }
    const char *close = std::strchr(p, '}');
    std::size_t end = k;
    if (p[1] == '*') {
      while (end < key.size() && key[end] != '.') ++end;
      if (end == k) return false;
      caps.word = key.substr(k, end - k);
    } else {
      while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
      if (end == k || end - k > 6 || (end - k > 1 && key[k] == '0')) return false;
      caps.index[p[1]] = std::stoll(key.substr(k, end - k));
    }
    k = end;
    p = close + 1;
  }
  return k == key.size();
}

std::string substitute(const char *tmpl, const Captures &caps) {
  std::string out;
  for (const char *p = tmpl; *p != '\0';) {
    if (*p != '{') {
      out += *p++;
      continue;
    }
    const char *close = std::strchr(p, '}');
    if (p[1] == '*') {
      out += caps.word;
    } else {
      int64_t v = caps.index.at(p[1]);
      if (p[2] == '+') v += std::strtoll(p + 3, nullptr, 10);
      out += std::to_string(v);
    }
    p = close + 1;
  }
  return out;
}

bool starts_with(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string join(const std::vector<std::string> &items, std::size_t max_items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < max_items; ++i) {
    out += (i ? ", " : "") + items[i];
  }
  if (items.size() > max_items) out += ", ... (" + std::to_string(items.size()) + " in all)";
  return out;
}

// The file's tensors under canonical names.
struct Canonical {
  const Family *family = nullptr;
  std::string what;                                         // the file, for messages
  std::map<std::string, torch::Tensor> tensors;             // canonical name -> tensor
  std::map<std::string, std::vector<std::string>> sources;  // canonical name -> source keys
  std::vector<std::string> unused;                          // source keys that map to nothing
  std::vector<std::string> unknown;                         // ... of which no rule knows

  bool has(const std::string &name) const { return tensors.count(name) != 0; }
  std::string source_of(const std::string &name) const {
    std::string out;
    for (const auto &key : sources.at(name)) out += (out.empty() ? "" : " + ") + key;
    return out;
  }
  const torch::Tensor &need(const std::string &name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      std::string msg = what + " (" + family->name + " naming): no tensor for '" + name + "'";
      if (!unknown.empty()) msg += "; keys this naming does not know: " + join(unknown, 5);
      throw FormatError(msg);
    }
    return it->second;
  }
};

std::pair<const Family *, std::string> detect(const NamedTensors &weights,
                                              const std::string &what) {
  std::set<std::string> keys;
  for (const auto &kv : weights) keys.insert(kv.first);
  for (const auto &family : families()) {
    for (const auto &prefix : family.prefixes) {
      if (keys.count(prefix + family.marker)) return {&family, prefix};
    }
  }
  std::vector<std::string> names(keys.begin(), keys.end());
  std::string markers;
  for (const auto &family : families()) {
    markers += std::string(markers.empty() ? "" : ", ") + family.marker + " (" + family.name + ")";
  }
  throw FormatError(what + ": not a ViT or ResNet naming this version knows (looked for " +
                    markers + "); the file's keys are: " + join(names, 8));
}

Canonical to_canonical(const NamedTensors &weights, const std::string &what) {
  Canonical out;
  out.what = what;
  std::string prefix;
  std::tie(out.family, prefix) = detect(weights, what);
  const Family &family = *out.family;

  std::map<std::string, std::array<torch::Tensor, 3>> qkv_parts;
  for (const auto &[key, tensor] : weights) {
    const std::string local = starts_with(key, prefix) ? key.substr(prefix.size()) : key;
    const KeyRule *rule = nullptr;
    Captures caps;
    for (std::size_t r = 0; r < family.num_rules; ++r) {
      caps = Captures();
      if (match(family.rules[r].source, local, caps)) {
        rule = &family.rules[r];
        break;
      }
    }
    if (rule == nullptr) {
      out.unused.push_back(key);
      out.unknown.push_back(key);
      continue;
    }
    if (rule->transform == Transform::kSkip) {
      out.unused.push_back(key);
      continue;
    }
    const std::string name = substitute(rule->canonical, caps);
    if (rule->transform == Transform::kCopy) {
      if (!out.tensors.emplace(name, tensor).second) {
        throw FormatError(what + ": keys '" + out.source_of(name) + "' and '" + key +
                          "' both give '" + name + "'");
      }
      out.sources[name] = {key};
      continue;
    }
    const int part = rule->transform == Transform::kQuery ? 0
                     : rule->transform == Transform::kKey ? 1
                                                          : 2;
    if (qkv_parts[name][part].defined()) {
      throw FormatError(what + ": two keys give the same projection of '" + name + "': '" +
                        out.source_of(name) + "' and '" + key + "'");
    }
    qkv_parts[name][part] = tensor;
    out.sources[name].push_back(key);
  }
  static const char *kPartNames[3] = {"query", "key", "value"};
  for (auto &[name, parts] : qkv_parts) {
    for (int p = 0; p < 3; ++p) {
      if (!parts[p].defined()) {
        throw FormatError(what + ": '" + out.source_of(name) + "' without the matching " +
                          kPartNames[p] + " projection");
      }
      if (parts[p].sizes() != parts[0].sizes()) {
        throw FormatError(what + ": the query, key and value projections '" + out.source_of(name) +
                          "' differ in shape");
      }
    }
    out.tensors[name] = torch::cat({parts[0], parts[1], parts[2]}, 0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Applying: everything is checked first and copied at the end, so a refused import leaves the
// model as it was.

class Plan {
 public:
  Plan(torch::nn::Module &model, std::string what) : what_(std::move(what)) {
    for (auto &p : model.named_parameters()) ours_.emplace(p.key(), p.value());
    for (auto &b : model.named_buffers()) ours_.emplace(b.key(), b.value());
  }

  bool has(const std::string &ours) const { return ours_.count(ours) != 0; }
  const torch::Tensor &target(const std::string &ours) const { return ours_.at(ours); }

  void set(const std::string &ours, const torch::Tensor &value, const std::string &from) {
    auto it = ours_.find(ours);
    TORCH_CHECK(it != ours_.end(), "internal: the model has no tensor '", ours, "'");
    if (value.sizes() != it->second.sizes()) {
      throw MismatchError(what_ + ": '" + from + "' has shape " + c10::str(value.sizes()) +
                          " but the model's '" + ours + "' is " + c10::str(it->second.sizes()));
    }
    steps_.emplace_back(ours, value);
  }

  void apply(ImportReport &report) {
    torch::NoGradGuard no_grad;
    for (auto &[ours, value] : steps_) {
      ours_.at(ours).copy_(value);
      report.loaded.push_back(ours);
    }
  }

 private:
  std::string what_;
  std::map<std::string, torch::Tensor> ours_;
  NamedTensors steps_;
};

void report_unused(const Canonical &src, const std::set<std::string> &used, ImportReport &report) {
  for (const auto &[name, keys] : src.sources) {
    if (!used.count(name)) report.skipped.insert(report.skipped.end(), keys.begin(), keys.end());
  }
  for (const auto &key : src.unused) report.skipped.push_back(key);
  if (!src.unknown.empty()) {
    report.notes.push_back(std::to_string(src.unknown.size()) + " key(s) the " + src.family->name +
                           " naming does not know were ignored: " + join(src.unknown, 5));
  }
}

std::string dims(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

// pos [1, prefix + g*g, D] -> [1, 1 + gh*gw, D]: the CLS slot kept, other prefix tokens dropped,
// the grid resized bicubically (align_corners = false, as timm and scenic do).
torch::Tensor resize_pos_embed(const torch::Tensor &pos, int64_t prefix, int64_t g, int64_t gh,
                               int64_t gw) {
  const int64_t D = pos.size(2);
  auto cls = pos.narrow(1, 0, 1);
  auto grid = pos.narrow(1, prefix, g * g);
  if (g != gh || g != gw) {
    auto image = grid.reshape({1, g, g, D}).permute({0, 3, 1, 2});
    image = F::interpolate(image, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{gh, gw})
                                      .mode(torch::kBicubic)
                                      .align_corners(false));
    grid = image.permute({0, 2, 3, 1}).reshape({1, gh * gw, D});
  }
  return torch::cat({cls, grid}, 1);
}

std::string layer_key(int64_t i, const char *part) {
  return "blocks." + std::to_string(i) + "." + part;
}

// One import of image ViT weights into a ViViT: what was taken, what will be set, what to say.
class VitImport {
 public:
  VitImport(ViViTImpl &model, const Canonical &src)
      : model_(model), cfg_(model.cfg()), enc_(cfg_.spatial), src_(src), what_(src.what),
        plan_(model, src.what) {
    report_.source_format = src.family->name;
  }

  ImportReport run(TubeletInit init) {
    check_geometry();
    tubelet(init);
    tokens();
    blocks();
    for (const char *p : {"weight", "bias"}) {
      const auto name = std::string("norm.") + p;
      plan_.set(std::string("spatial.norm.") + p, take(name), from(name));
    }
    plan_.apply(report_);
    report_unused(src_, used_, report_);
    return report_;
  }

 private:
  const torch::Tensor &take(const std::string &name) {
    used_.insert(name);
    return src_.need(name);
  }
  std::string from(const std::string &name) const { return src_.source_of(name); }
  void note(const std::string &text) { report_.notes.push_back(text); }

  // The image model's geometry, read from its tensors (heads cannot be), against the model's.
  void check_geometry() {
    const auto &patch = take("patch.weight");
    if (patch.dim() != 4) {
      throw FormatError(what_ + ": the patch embedding '" + from("patch.weight") +
                        "' should be [D, C, p, p], got " + c10::str(patch.sizes()));
    }
    D_ = patch.size(0);
    const int64_t C = patch.size(1), ph = patch.size(2), pw = patch.size(3);
    while (src_.has(layer_key(depth_, "norm1.weight"))) ++depth_;
    if (depth_ == 0) throw FormatError(what_ + ": no transformer layers found");
    const int64_t mlp_dim = src_.need(layer_key(0, "fc1.weight")).size(0);
    auto refuse = [&](const std::string &text) { throw MismatchError(what_ + ": " + text); };
    if (D_ != enc_.dim) {
      refuse("the image model is " + std::to_string(D_) + "-d but the model's spatial encoder is " +
             std::to_string(enc_.dim) + "-d");
    }
    if (mlp_dim != enc_.mlp_dim) {
      refuse("the image model's MLP is " + std::to_string(mlp_dim) +
             " wide but the model's spatial encoder has mlp_dim " + std::to_string(enc_.mlp_dim));
    }
    if (enc_.depth > depth_) {
      refuse("the image model has " + std::to_string(depth_) +
             " layers but the model's spatial encoder has " + std::to_string(enc_.depth) +
             "; it can take at most as many");
    }
    if (C != cfg_.channels) {
      refuse("the image model takes " + std::to_string(C) + " channels but the model takes " +
             std::to_string(cfg_.channels));
    }
    // Resizing a patch kernel changes what it computes (a 16x16 kernel bicubically shrunk to
    // 8x8 no longer matches the image model's embedding); refuse rather than import something
    // else.
    if (ph != cfg_.tubelet_h || pw != cfg_.tubelet_w) {
      refuse("the image model's patches are " + dims(ph, pw) + " but the model's tubelets are " +
             std::to_string(cfg_.tubelet_t) + "x" + dims(cfg_.tubelet_h, cfg_.tubelet_w) +
             "; the tubelet's height and width must equal the patch size");
    }
  }

  void tubelet(TubeletInit init) {
    const auto &patch = take("patch.weight");
    plan_.set("tubelet.weight", inflate_patch_kernel(patch, cfg_.tubelet_t, init),
              from("patch.weight"));
    note(std::string("tubelet kernel inflated from the ") + dims(patch.size(2), patch.size(3)) +
         " patch kernel over " + std::to_string(cfg_.tubelet_t) + " frames by " +
         (init == TubeletInit::kAverage ? "average" : "central frame"));
    if (cfg_.tubelet_bias_from_image && src_.has("patch.bias")) {
      plan_.set("tubelet.bias", take("patch.bias"), from("patch.bias"));
    } else if (src_.has("patch.bias")) {
      note("tubelet bias left at its initialisation: tubelet_bias_from_image is off");
    }
  }

  // Tokens in front of the patch grid (CLS, and DeiT's distillation token), and the position
  // embedding of the grid.
  void tokens() {
    plan_.set("spatial.cls", take("cls").reshape({1, 1, -1}), from("cls"));
    int64_t prefix = 1;
    if (src_.has("dist")) {
      prefix = 2;
      note("DeiT distillation token dropped, with its position-embedding slot: the model has one "
           "CLS token");
    }
    const auto &pos = take("pos");
    if (pos.dim() != 3 || pos.size(0) != 1 || pos.size(2) != D_ || pos.size(1) <= prefix) {
      throw FormatError(what_ + ": the position embedding '" + from("pos") + "' should be [1, " +
                        std::to_string(prefix) + " + N, " + std::to_string(D_) + "], got " +
                        c10::str(pos.sizes()));
    }
    const int64_t n = pos.size(1) - prefix;
    const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    if (g * g != n) {
      throw FormatError(what_ + ": the position embedding has " + std::to_string(n) +
                        " patch slots after " + std::to_string(prefix) +
                        " prefix token(s), not a square grid");
    }
    if (!model_.spatial->pos_embed.defined()) {
      used_.erase("pos");
      note("position embedding unused: the model has no spatial position embedding");
    } else if (!cfg_.pos_embed_from_image) {
      used_.erase("pos");
      note("spatial position embedding left random: pos_embed_from_image is off (the study's "
           "choice)");
    } else {
      const int64_t gh = cfg_.grid_h(), gw = cfg_.grid_w();
      plan_.set("spatial.pos_embed", resize_pos_embed(pos, prefix, g, gh, gw), from("pos"));
      if (g != gh || g != gw) {
        note("spatial position embedding resized bicubically from a " + dims(g, g) + " to a " +
             dims(gh, gw) + " grid");
      }
    }
  }

  // Blocks: layer i keeps its own LayerNorms; a group of `share` layers takes the weights of its
  // first layer.
  void blocks() {
    if (src_.has(layer_key(0, "qkv.bias")) && !enc_.qkv_bias) {
      throw MismatchError(what_ + ": the image model has qkv biases but the model's spatial " +
                          "encoder is configured without them (qkv_bias = false)");
    }
    for (int64_t i = 0; i < enc_.depth; ++i) {
      const std::string ours = "spatial.blocks." + std::to_string(i) + ".";
      for (const char *norm : {"norm1", "norm2"}) {
        for (const char *p : {"weight", "bias"}) {
          const auto name = layer_key(i, norm) + "." + p;
          plan_.set(ours + norm + "." + p, take(name), from(name));
        }
      }
    }
    const int64_t groups = static_cast<int64_t>(model_.spatial->weights->size());
    for (int64_t gi = 0; gi < groups; ++gi) {
      const std::string ours = "spatial.weights." + std::to_string(gi) + ".";
      for (const char *linear : {"qkv", "proj", "fc1", "fc2"})
        linear_layer(gi * enc_.share, ours, linear);
    }
    if (enc_.share > 1) {
      note("weight-shared encoder: each group of " + std::to_string(enc_.share) +
           " layers takes the attention and MLP weights of its first layer");
    }
    if (enc_.attn_mix || enc_.mlp_dwconv) {
      note("MiniViT per-layer transformations keep their initialisation");
    }
    if (enc_.depth < depth_) {
      note("the first " + std::to_string(enc_.depth) + " of the image model's " +
           std::to_string(depth_) + " layers used");
    }
  }

  void linear_layer(int64_t i, const std::string &ours, const char *linear) {
    const auto w = layer_key(i, linear) + ".weight";
    plan_.set(ours + linear + ".weight", take(w), from(w));
    const auto b = layer_key(i, linear) + ".bias";
    const std::string bias = ours + linear + ".bias";
    if (!plan_.has(bias)) return;
    if (src_.has(b)) {
      plan_.set(bias, take(b), from(b));
    } else {
      plan_.set(bias, torch::zeros_like(plan_.target(bias)), w + " (no bias: zeros)");
    }
  }

  ViViTImpl &model_;
  const ViViTConfig &cfg_;
  const EncoderConfig &enc_;
  const Canonical &src_;
  const std::string &what_;
  Plan plan_;
  ImportReport report_;
  std::set<std::string> used_;
  int64_t D_ = 0, depth_ = 0;
};

ImportReport import_vit_canonical(ViViTImpl &model, const Canonical &src, TubeletInit init) {
  return VitImport(model, src).run(init);
}

int64_t resnet_depth(const Canonical &src) {
  std::array<int64_t, 4> units{};
  for (int s = 0; s < 4; ++s) {
    while (src.has("layer" + std::to_string(s + 1) + "." + std::to_string(units[s]) +
                   ".conv1.weight")) {
      ++units[s];
    }
  }
  const bool bottleneck = src.has("layer1.0.conv3.weight");
  using Units = std::array<int64_t, 4>;
  if (units == Units{2, 2, 2, 2} && !bottleneck) return 18;
  if (units == Units{3, 4, 6, 3}) return bottleneck ? 50 : 34;
  if (units == Units{3, 4, 23, 3} && bottleneck) return 101;
  if (units == Units{3, 8, 36, 3} && bottleneck) return 152;
  throw FormatError(src.what + ": a ResNet with " + std::to_string(units[0]) + ", " +
                    std::to_string(units[1]) + ", " + std::to_string(units[2]) + ", " +
                    std::to_string(units[3]) + (bottleneck ? " bottleneck" : " basic") +
                    " units per stage, which is not ResNet-18/34/50/101/152");
}

ImportReport import_resnet_canonical(ResNetImpl &model, const Canonical &src) {
  const std::string &what = src.what;
  const int64_t depth = resnet_depth(src);
  if (depth != model.cfg().depth) {
    throw MismatchError(what + ": pretrained file is a ResNet-" + std::to_string(depth) +
                        " but the model uses ResNet-" + std::to_string(model.cfg().depth));
  }
  ImportReport report;
  report.source_format = src.family->name;
  std::set<std::string> used;
  Plan plan(model, what);
  for (const auto &[ours, tensor] : state_of(model)) {
    if (starts_with(ours, "fc.")) continue;
    // Only a step counter that eval-mode BatchNorm never reads may be absent.
    const std::string counter = ".num_batches_tracked";
    if (!src.has(ours) && ours.size() > counter.size() &&
        ours.compare(ours.size() - counter.size(), counter.size(), counter) == 0) {
      continue;
    }
    used.insert(ours);
    plan.set(ours, src.need(ours), src.source_of(ours));
  }
  if (src.has("fc.weight")) {
    const auto &w = src.need("fc.weight");
    if (model.fc && src.has("fc.bias") && w.sizes() == model.fc->weight.sizes()) {
      plan.set("fc.weight", w, src.source_of("fc.weight"));
      plan.set("fc.bias", src.need("fc.bias"), src.source_of("fc.bias"));
      used.insert("fc.weight");
      used.insert("fc.bias");
    } else if (model.fc) {
      report.notes.push_back("classifier not loaded: the file's is " + c10::str(w.sizes()) +
                             ", the model's " + c10::str(model.fc->weight.sizes()));
    }
  }
  plan.apply(report);
  report_unused(src, used, report);
  return report;
}

}  // namespace

NamedTensors read_pretrained(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open: " + std::strerror(errno));
  char magic[9] = {};
  in.read(magic, sizeof magic);
  const auto got = in.gcount();
  in.close();
  NamedTensors tensors;
  if (got >= 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) {
    tensors = read_torch_state_dict(path, /*unwrap=*/true);
  } else if (got >= 2 && static_cast<unsigned char>(magic[0]) == 0x80 && magic[1] >= 2 &&
             magic[1] <= 5) {
    throw FormatError(path +
                      ": a legacy torch.save file (PyTorch < 1.6, a bare pickle); load it "
                      "in Python and save it again with torch.save to get the zip format");
  } else if (got == 9 && magic[8] == '{') {
    tensors = read_safetensors(path).tensors;
  } else if (looks_like_flax_msgpack(reinterpret_cast<const unsigned char *>(magic),
                                     static_cast<std::size_t>(got))) {
    tensors = read_flax_msgpack(path);
  } else {
    throw FormatError(path +
                      ": neither a torch.save archive (.pth, .bin), a safetensors file nor a "
                      "Flax checkpoint");
  }
  if (tensors.empty()) throw FormatError(path + ": holds no tensors");
  // Our models are float32; half-precision and double files are widened or narrowed here.
  for (auto &kv : tensors) {
    if (kv.second.is_floating_point() && kv.second.scalar_type() != torch::kFloat) {
      kv.second = kv.second.to(torch::kFloat);
    }
  }
  return tensors;
}

ImportReport import_vit(ViViTImpl &model, const NamedTensors &weights, TubeletInit init) {
  auto src = to_canonical(weights, "pretrained weights");
  if (src.family->kind != Kind::kViT) {
    throw MismatchError("pretrained weights: a ResNet (" + std::string(src.family->name) +
                        " naming), not a ViT");
  }
  return import_vit_canonical(model, src, init);
}

ImportReport import_resnet(ResNetImpl &model, const NamedTensors &weights) {
  auto src = to_canonical(weights, "pretrained weights");
  if (src.family->kind != Kind::kResNet) {
    throw MismatchError("pretrained weights: a ViT (" + std::string(src.family->name) +
                        " naming), not a ResNet");
  }
  return import_resnet_canonical(model, src);
}

namespace {

bool is_vidcls_checkpoint(const std::string &path) {
  try {
    read_checkpoint_info(path);
    return true;
  } catch (const std::exception &) {
    return false;
  }
}

ImportReport import_checkpoint(VideoClassifierImpl &model, const std::string &path) {
  const auto loaded = load_checkpoint(path);
  ImportReport report;
  report.source_format = "vidcls checkpoint (" + loaded.info.architecture +
                         (loaded.info.preset.empty() ? "" : ", preset " + loaded.info.preset) + ")";
  const auto tensors = state_of(*loaded.model);
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string &name, torch::Tensor &t) {
    auto it = by_name.find(name);
    if (it == by_name.end() || !it->second.sizes().equals(t.sizes())) {
      report.kept.push_back(name);
      return;
    }
    t.copy_(it->second);
    report.loaded.push_back(name);
    by_name.erase(it);
  };
  for (auto &p : model.named_parameters()) copy(p.key(), p.value());
  for (auto &b : model.named_buffers()) copy(b.key(), b.value());
  for (const auto &[name, t] : by_name) report.skipped.push_back(name);
  return report;
}

}  // namespace

ImportReport import_pretrained(VideoClassifierImpl &model, const std::string &path,
                               TubeletInit init) {
  if (is_vidcls_checkpoint(path)) return import_checkpoint(model, path);
  const auto src = to_canonical(read_pretrained(path), path);
  const std::string kind = src.family->kind == Kind::kViT ? "ViT" : "ResNet";
  if (auto *vivit = dynamic_cast<ViViTImpl *>(&model)) {
    if (src.family->kind != Kind::kViT) {
      throw MismatchError(path + ": holds a " + kind + " (" + src.family->name +
                          " naming) but the model '" + model.architecture() +
                          "' takes ViT weights");
    }
    return import_vit_canonical(*vivit, src, init);
  }
  if (auto *rtv = dynamic_cast<ResNetTViTImpl *>(&model)) {
    if (src.family->kind != Kind::kResNet) {
      throw MismatchError(path + ": holds a " + kind + " (" + src.family->name +
                          " naming) but the model '" + model.architecture() +
                          "' takes ResNet weights for its backbone");
    }
    auto report = import_resnet_canonical(*rtv->backbone, src);
    for (auto &name : report.loaded) name = "backbone." + name;
    return report;
  }
  throw MismatchError(path + ": the architecture '" + model.architecture() +
                      "' takes no pretrained image weights");
}

}  // namespace vidcls
