#include "vidcls/scenic.h"

#include <map>

#include <torch/types.h>

#include "vidcls/errors.h"

namespace vidcls {

namespace {

const char *const kEncoders[] = {"SpatialTransformer", "TemporalTransformer"};

const EncoderConfig &encoder(const ViViTConfig &cfg, int which) {
  return which == 0 ? cfg.spatial : cfg.temporal;
}

int64_t tokens(const ViViTConfig &cfg, int which) {
  return 1 + (which == 0 ? cfg.grid_h() * cfg.grid_w() : cfg.grid_t());
}

void add_layer(std::vector<ScenicTensor> &out, const std::string &block, const EncoderConfig &e) {
  const int64_t D = e.dim, H = e.heads, hd = e.dim / e.heads;
  for (const char *ln : {"LayerNorm_0", "LayerNorm_1"}) {
    out.push_back({block + "/" + ln + "/scale", {D}});
    out.push_back({block + "/" + ln + "/bias", {D}});
  }
  const std::string attn = block + "/MultiHeadDotProductAttention_0/";
  for (const char *p : {"query", "key", "value"}) {
    out.push_back({attn + p + "/kernel", {D, H, hd}});
    out.push_back({attn + p + "/bias", {H, hd}});
  }
  out.push_back({attn + "out/kernel", {H, hd, D}});
  out.push_back({attn + "out/bias", {D}});
  const std::string mlp = block + "/MlpBlock_0/";
  out.push_back({mlp + "Dense_0/kernel", {D, e.mlp_dim}});
  out.push_back({mlp + "Dense_0/bias", {e.mlp_dim}});
  out.push_back({mlp + "Dense_1/kernel", {e.mlp_dim, D}});
  out.push_back({mlp + "Dense_1/bias", {D}});
}

}  // namespace

std::vector<ScenicTensor> scenic_vivit_layout(const ViViTConfig &cfg) {
  const int64_t D = cfg.spatial.dim;
  std::vector<ScenicTensor> out = {
      {"embedding/kernel", {cfg.tubelet_t, cfg.tubelet_h, cfg.tubelet_w, cfg.channels, D}},
      {"embedding/bias", {D}},
  };
  for (int which = 0; which < 2; ++which) {
    const std::string enc = kEncoders[which];
    const auto &e = encoder(cfg, which);
    out.push_back({"cls_" + enc, {1, 1, D}});
    out.push_back({enc + "/posembed_input/pos_embedding", {1, tokens(cfg, which), D}});
    for (int64_t i = 0; i < e.depth; ++i) {
      add_layer(out, enc + "/encoderblock_" + std::to_string(i), e);
    }
    out.push_back({enc + "/encoder_norm/scale", {D}});
    out.push_back({enc + "/encoder_norm/bias", {D}});
  }
  out.push_back({"output_projection/kernel", {D, cfg.num_classes}});
  out.push_back({"output_projection/bias", {cfg.num_classes}});
  return out;
}

NamedTensors scenic_parameters(const NamedTensors &file) {
  for (const std::string prefix : {"optimizer/target/", "params/"}) {
    NamedTensors out;
    for (const auto &[name, t] : file) {
      if (name.compare(0, prefix.size(), prefix) == 0)
        out.emplace_back(name.substr(prefix.size()), t);
    }
    if (!out.empty()) return out;
  }
  return file;
}

NamedTensors vivit_from_scenic(const NamedTensors &params, const ViViTConfig &cfg) {
  std::map<std::string, torch::Tensor> in(params.begin(), params.end());
  auto take = [&in](const std::string &name) {
    auto it = in.find(name);
    if (it == in.end()) throw FormatError("scenic checkpoint: no tensor " + name);
    return it->second.to(torch::kFloat).contiguous();
  };
  // A Dense kernel [in..., out...] as a Linear weight [out, in].
  auto dense = [&take](const std::string &name, int64_t in_features) {
    auto k = take(name);
    return k.reshape({in_features, -1}).t().contiguous();
  };
  NamedTensors out;
  out.emplace_back("tubelet.weight",
                   take("embedding/kernel").permute({4, 3, 0, 1, 2}).contiguous());
  out.emplace_back("tubelet.bias", take("embedding/bias"));
  const char *ours[] = {"spatial", "temporal"};
  for (int which = 0; which < 2; ++which) {
    const std::string enc = kEncoders[which], to = ours[which];
    const auto &e = encoder(cfg, which);
    TORCH_CHECK(e.share == 1 && !e.attn_mix && !e.mlp_dwconv && e.qkv_bias,
                "scenic's ViViT has one set of weights per layer, with qkv biases");
    out.emplace_back(to + ".cls", take("cls_" + enc));
    out.emplace_back(to + ".pos_embed", take(enc + "/posembed_input/pos_embedding"));
    for (int64_t i = 0; i < e.depth; ++i) {
      const std::string block = enc + "/encoderblock_" + std::to_string(i) + "/";
      const std::string b = to + ".blocks." + std::to_string(i) + ".";
      const std::string w = to + ".weights." + std::to_string(i) + ".";
      out.emplace_back(b + "norm1.weight", take(block + "LayerNorm_0/scale"));
      out.emplace_back(b + "norm1.bias", take(block + "LayerNorm_0/bias"));
      out.emplace_back(b + "norm2.weight", take(block + "LayerNorm_1/scale"));
      out.emplace_back(b + "norm2.bias", take(block + "LayerNorm_1/bias"));
      const std::string attn = block + "MultiHeadDotProductAttention_0/";
      std::vector<torch::Tensor> qkv_w, qkv_b;
      for (const char *p : {"query", "key", "value"}) {
        qkv_w.push_back(dense(attn + p + "/kernel", e.dim));
        qkv_b.push_back(take(attn + p + "/bias").reshape({-1}));
      }
      out.emplace_back(w + "qkv.weight", torch::cat(qkv_w));
      out.emplace_back(w + "qkv.bias", torch::cat(qkv_b));
      out.emplace_back(w + "proj.weight", dense(attn + "out/kernel", e.dim));
      out.emplace_back(w + "proj.bias", take(attn + "out/bias"));
      out.emplace_back(w + "fc1.weight", dense(block + "MlpBlock_0/Dense_0/kernel", e.dim));
      out.emplace_back(w + "fc1.bias", take(block + "MlpBlock_0/Dense_0/bias"));
      out.emplace_back(w + "fc2.weight", dense(block + "MlpBlock_0/Dense_1/kernel", e.mlp_dim));
      out.emplace_back(w + "fc2.bias", take(block + "MlpBlock_0/Dense_1/bias"));
    }
    out.emplace_back(to + ".norm.weight", take(enc + "/encoder_norm/scale"));
    out.emplace_back(to + ".norm.bias", take(enc + "/encoder_norm/bias"));
  }
  out.emplace_back("head.weight", dense("output_projection/kernel", cfg.spatial.dim));
  out.emplace_back("head.bias", take("output_projection/bias"));
  return out;
}

}  // namespace vidcls
