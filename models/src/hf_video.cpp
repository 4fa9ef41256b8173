#include "vidcls/hf_video.h"

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/nn/functional/linear.h>
#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "json_fields.h"
#include "vidcls/init.h"
#include "vidcls/layers.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

void get_tubelet(const nlohmann::json &j, int64_t &t, int64_t &h, int64_t &w) {
  auto it = j.find("tubelet");
  if (it == j.end()) return;
  auto v = it->get<std::vector<int64_t>>();
  if (v.size() != 3) throw std::invalid_argument("tubelet must be [t, h, w]");
  t = v[0];
  h = v[1];
  w = v[2];
}

void require(bool ok, const std::string &message) {
  if (!ok) throw std::invalid_argument(message);
}

bool is_tanh_gelu(const std::string &act) {
  return act == "gelu_fast" || act == "gelu_new" || act == "gelu_pytorch_tanh";
}

// The checks both configs share; `what` names the architecture in the messages.
template <typename Config>
void validate_common(const Config &c, const std::string &what) {
  const auto field = [&](const char *name) { return what + " " + name; };
  require(c.tubelet_t > 0 && c.tubelet_h > 0 && c.tubelet_w > 0,
          field("tubelet") + " sizes must be > 0");
  require(c.frames > 0 && c.frames % c.tubelet_t == 0,
          field("frames") + " (" + std::to_string(c.frames) +
              ") must be a positive multiple of tubelet_t (" + std::to_string(c.tubelet_t) + ")");
  require(c.image_size > 0 && c.image_size % c.tubelet_h == 0 && c.image_size % c.tubelet_w == 0,
          field("image_size") + " (" + std::to_string(c.image_size) +
              ") must be a positive multiple of the tubelet's h and w");
  require(c.channels > 0, field("channels") + " must be > 0");
  require(c.num_classes > 0, field("num_classes") + " must be > 0");
  require(c.depth > 0, field("depth") + " must be > 0");
  require(c.mlp_dim > 0, field("mlp_dim") + " must be > 0");
  require(c.heads > 0 && c.dim > 0 && c.dim % c.heads == 0,
          field("dim") + " (" + std::to_string(c.dim) + ") must be a positive multiple of heads (" +
              std::to_string(c.heads) + ")");
  require(c.ln_eps > 0, field("ln_eps") + " must be > 0");
  require(c.hidden_act == "gelu" || is_tanh_gelu(c.hidden_act),
          field("hidden_act") + " must be 'gelu', 'gelu_fast', 'gelu_new' or " +
              "'gelu_pytorch_tanh', got '" + c.hidden_act + "'");
}

template <typename Config>
HfLayerOptions layer_options(const Config &c) {
  HfLayerOptions o;
  o.dim = c.dim;
  o.heads = c.heads;
  o.mlp_dim = c.mlp_dim;
  o.ln_eps = c.ln_eps;
  o.gelu_tanh = is_tanh_gelu(c.hidden_act);
  o.qkv_bias = c.qkv_bias;
  return o;
}

// An empty module that only puts `name` into the parameter names below it, where the published
// checkpoints nest a layer one level deeper than the computation needs (attention.output.dense).
std::shared_ptr<torch::nn::Module> scope(torch::nn::Module &parent, const std::string &name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}

torch::nn::Conv3d tubelet_projection(int64_t channels, int64_t dim, int64_t t, int64_t h,
                                     int64_t w) {
  return make_conv(torch::nn::Conv3dOptions(channels, dim, {t, h, w}).stride({t, h, w}));
}

torch::nn::ModuleList encoder_layers(torch::nn::Module &encoder, const HfLayerOptions &options,
                                     int64_t depth) {
  torch::nn::ModuleList layers;
  for (int64_t i = 0; i < depth; ++i) layers->push_back(HfEncoderLayer(options));
  return encoder.register_module("layer", layers);
}

// clips [B, T, C, H, W] -> tubelet tokens [B, nt*nh*nw, D], tubelets in (t, h, w) order.
torch::Tensor tubelet_tokens(torch::nn::Conv3d &projection, const torch::Tensor &clips,
                             const InputShape &shape, const char *what) {
  TORCH_CHECK(clips.dim() == 5 && clips.size(1) == shape.frames &&
                  clips.size(2) == shape.channels && clips.size(3) == shape.height &&
                  clips.size(4) == shape.width,
              what, " expects clips [B, ", shape.frames, ", ", shape.channels, ", ", shape.height,
              ", ", shape.width, "], got ", clips.sizes());
  return projection(clips.permute({0, 2, 1, 3, 4})).flatten(2).transpose(1, 2);
}

torch::Tensor run_layers(torch::nn::ModuleList &layers, torch::Tensor x) {
  for (const auto &layer : *layers) x = layer->as<HfEncoderLayerImpl>()->forward(x);
  return x;
}

// Weights as transformers initialises a model it builds from a config (normal, std 0.02; biases
// zero; LayerNorms one and zero), for training from scratch; a checkpoint overwrites them all.
void init_like_hf(torch::nn::Module &model) {
  torch::NoGradGuard no_grad;
  for (auto &m : model.modules(/*include_self=*/false)) {
    if (auto *linear = m->as<torch::nn::LinearImpl>()) {
      linear->weight.normal_(0.0, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto *conv = m->as<torch::nn::Conv3dImpl>()) {
      conv->weight.normal_(0.0, 0.02);
      if (conv->bias.defined()) conv->bias.zero_();
    }
  }
}

}  // namespace

void VivitJointConfig::validate() const { validate_common(*this, "vivit-joint"); }

void VideoMAEConfig::validate() const {
  validate_common(*this, "videomae");
  require(fc_norm_eps > 0, "videomae fc_norm_eps must be > 0");
}

void to_json(nlohmann::json &j, const VivitJointConfig &c) {
  j = {{"frames", c.frames},
       {"image_size", c.image_size},
       {"channels", c.channels},
       {"tubelet", {c.tubelet_t, c.tubelet_h, c.tubelet_w}},
       {"num_classes", c.num_classes},
       {"dim", c.dim},
       {"depth", c.depth},
       {"heads", c.heads},
       {"mlp_dim", c.mlp_dim},
       {"ln_eps", c.ln_eps},
       {"hidden_act", c.hidden_act},
       {"qkv_bias", c.qkv_bias}};
}

void from_json(const nlohmann::json &j, VivitJointConfig &c) {
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "channels", c.channels);
  get_tubelet(j, c.tubelet_t, c.tubelet_h, c.tubelet_w);
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "dim", c.dim);
  get_opt(j, "depth", c.depth);
  get_opt(j, "heads", c.heads);
  get_opt(j, "mlp_dim", c.mlp_dim);
  get_opt(j, "ln_eps", c.ln_eps);
  get_opt(j, "hidden_act", c.hidden_act);
  get_opt(j, "qkv_bias", c.qkv_bias);
}

void to_json(nlohmann::json &j, const VideoMAEConfig &c) {
  j = {{"frames", c.frames},
       {"image_size", c.image_size},
       {"channels", c.channels},
       {"tubelet", {c.tubelet_t, c.tubelet_h, c.tubelet_w}},
       {"num_classes", c.num_classes},
       {"dim", c.dim},
       {"depth", c.depth},
       {"heads", c.heads},
       {"mlp_dim", c.mlp_dim},
       {"ln_eps", c.ln_eps},
       {"fc_norm_eps", c.fc_norm_eps},
       {"hidden_act", c.hidden_act},
       {"qkv_bias", c.qkv_bias},
       {"use_mean_pooling", c.use_mean_pooling}};
}

void from_json(const nlohmann::json &j, VideoMAEConfig &c) {
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "channels", c.channels);
  get_tubelet(j, c.tubelet_t, c.tubelet_h, c.tubelet_w);
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "dim", c.dim);
  get_opt(j, "depth", c.depth);
  get_opt(j, "heads", c.heads);
  get_opt(j, "mlp_dim", c.mlp_dim);
  get_opt(j, "ln_eps", c.ln_eps);
  get_opt(j, "fc_norm_eps", c.fc_norm_eps);
  get_opt(j, "hidden_act", c.hidden_act);
  get_opt(j, "qkv_bias", c.qkv_bias);
  get_opt(j, "use_mean_pooling", c.use_mean_pooling);
}

HfEncoderLayerImpl::HfEncoderLayerImpl(const HfLayerOptions &options) : options_(options) {
  TORCH_CHECK(options.heads > 0 && options.dim % options.heads == 0, "dim (", options.dim,
              ") must be a multiple of heads (", options.heads, ")");
  const int64_t D = options.dim;
  const bool own_bias = options.qkv_bias && !options.separate_qv_bias;
  auto attention = scope(*this, "attention");
  auto self_attn = scope(*attention, "attention");
  const auto projection = [&] {
    return make_linear(torch::nn::LinearOptions(D, D).bias(own_bias));
  };
  query = self_attn->register_module("query", projection());
  key = self_attn->register_module("key", projection());
  value = self_attn->register_module("value", projection());
  if (options.qkv_bias && options.separate_qv_bias) {
    q_bias = self_attn->register_parameter("q_bias", torch::zeros({D}));
    v_bias = self_attn->register_parameter("v_bias", torch::zeros({D}));
  }
  attention_dense = scope(*attention, "output")->register_module("dense", make_linear({D, D}));
  intermediate =
      scope(*this, "intermediate")->register_module("dense", make_linear({D, options.mlp_dim}));
  output = scope(*this, "output")->register_module("dense", make_linear({options.mlp_dim, D}));
  layernorm_before = register_module("layernorm_before", layer_norm(D, options.ln_eps));
  layernorm_after = register_module("layernorm_after", layer_norm(D, options.ln_eps));
}

torch::Tensor HfEncoderLayerImpl::self_attention(const torch::Tensor &x) {
  const int64_t B = x.size(0), N = x.size(1), H = options_.heads, d = options_.dim / H;
  const auto heads = [&](const torch::Tensor &t) { return t.view({B, N, H, d}).transpose(1, 2); };
  const auto q_b = q_bias.defined() ? q_bias : query->bias;
  const auto v_b = v_bias.defined() ? v_bias : value->bias;
  const auto q = heads(F::linear(x, query->weight, q_b));
  const auto k = heads(F::linear(x, key->weight, key->bias));
  const auto v = heads(F::linear(x, value->weight, v_b));
  torch::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  if (attention_path() == AttentionPath::kAuto) out = at::scaled_dot_product_attention(q, k, v);
#endif
  if (!out.defined()) {
    // All queries at once. Blocks of queries small enough to stay under glibc's mmap threshold
    // (111 of ViViT-B's 3137 for 16 MiB of scores, as vivit.cpp splits frames) measured 2 to 3
    // times slower on Debian's LibTorch 1.13, whose small products go through OpenBLAS one by one.
    // The scale goes on q ([N, d]) rather than on the scores ([N, N]).
    const auto scores = (q * (1.0 / std::sqrt(static_cast<double>(d)))).matmul(k.transpose(-2, -1));
    out = scores.softmax(-1).matmul(v);
  }
  return out.transpose(1, 2).reshape({B, N, options_.dim});
}

torch::Tensor HfEncoderLayerImpl::forward(const torch::Tensor &x) {
  auto h = x + attention_dense(self_attention(layernorm_before(x)));
  auto mlp = intermediate(layernorm_after(h));
  mlp = options_.gelu_tanh ? torch::gelu(mlp, "tanh") : torch::gelu(mlp);
  return h + output(mlp);
}

VivitJointImpl::VivitJointImpl(const VivitJointConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  const int64_t D = cfg_.dim;
  auto vivit = scope(*this, "vivit");
  auto embeddings = scope(*vivit, "embeddings");
  cls_token = embeddings->register_parameter("cls_token", torch::zeros({1, 1, D}));
  position_embeddings = embeddings->register_parameter(
      "position_embeddings", torch::zeros({1, 1 + cfg_.num_tubelets(), D}));
  projection =
      scope(*embeddings, "patch_embeddings")
          ->register_module("projection", tubelet_projection(cfg_.channels, D, cfg_.tubelet_t,
                                                             cfg_.tubelet_h, cfg_.tubelet_w));
  layers = encoder_layers(*scope(*vivit, "encoder"), layer_options(cfg_), cfg_.depth);
  layernorm = vivit->register_module("layernorm", layer_norm(D, cfg_.ln_eps));
  classifier = register_module("classifier", make_linear({D, cfg_.num_classes}));
  if (init_skipped()) return;
  init_like_hf(*this);
  torch::NoGradGuard no_grad;
  trunc_normal_(cls_token, 0.02);
  trunc_normal_(position_embeddings, 0.02);
}

InputShape VivitJointImpl::input_shape() const {
  return {cfg_.frames, cfg_.channels, cfg_.image_size, cfg_.image_size};
}

torch::Tensor VivitJointImpl::encode(const torch::Tensor &clips) {
  auto x = tubelet_tokens(projection, clips, input_shape(), "vivit-joint");
  x = torch::cat({cls_token.expand({x.size(0), 1, cfg_.dim}), x}, 1) + position_embeddings;
  return layernorm(run_layers(layers, x));
}

torch::Tensor VivitJointImpl::forward(torch::Tensor clips) {
  return classifier(encode(clips).select(1, 0));
}

nlohmann::json VivitJointImpl::config() const { return cfg_; }

torch::Tensor videomae_sinusoid_table(int64_t tokens, int64_t dim) {
  auto table = torch::empty({tokens, dim}, torch::kFloat64);
  auto a = table.accessor<double, 2>();
  for (int64_t i = 0; i < dim; ++i) {
    const double rate = std::pow(10000.0, static_cast<double>(2 * (i / 2)) / dim);
    for (int64_t pos = 0; pos < tokens; ++pos) {
      const double angle = static_cast<double>(pos) / rate;
      a[pos][i] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  }
  return table.to(torch::kFloat32).unsqueeze(0);
}

VideoMAEImpl::VideoMAEImpl(const VideoMAEConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  const int64_t D = cfg_.dim;
  auto videomae = scope(*this, "videomae");
  projection =
      scope(*scope(*videomae, "embeddings"), "patch_embeddings")
          ->register_module("projection", tubelet_projection(cfg_.channels, D, cfg_.tubelet_t,
                                                             cfg_.tubelet_h, cfg_.tubelet_w));
  auto layer = layer_options(cfg_);
  layer.separate_qv_bias = true;
  layers = encoder_layers(*scope(*videomae, "encoder"), layer, cfg_.depth);
  if (cfg_.use_mean_pooling) {
    fc_norm = register_module("fc_norm", layer_norm(D, cfg_.fc_norm_eps));
  } else {
    layernorm = videomae->register_module("layernorm", layer_norm(D, cfg_.ln_eps));
  }
  classifier = register_module("classifier", make_linear({D, cfg_.num_classes}));
  position_table_ = videomae_sinusoid_table(cfg_.num_tubelets(), D);
  if (!init_skipped()) init_like_hf(*this);
}

InputShape VideoMAEImpl::input_shape() const {
  return {cfg_.frames, cfg_.channels, cfg_.image_size, cfg_.image_size};
}

torch::Tensor VideoMAEImpl::encode(const torch::Tensor &clips) {
  auto x = tubelet_tokens(projection, clips, input_shape(), "videomae");
  x = run_layers(layers, x + position_table_.to(x.options()));
  return layernorm ? layernorm(x) : x;
}

torch::Tensor VideoMAEImpl::forward(torch::Tensor clips) {
  auto tokens = encode(clips);
  return classifier(fc_norm ? fc_norm(tokens.mean(1)) : tokens.select(1, 0));
}

nlohmann::json VideoMAEImpl::config() const { return cfg_; }

}  // namespace vidcls
