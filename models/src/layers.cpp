#include "vidcls/layers.h"

#include <atomic>
#include <cmath>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>
#include <torch/version.h>

#include "vidcls/init.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

void init_linear(torch::nn::Linear &linear) {
  if (init_skipped()) return;
  torch::NoGradGuard no_grad;
  trunc_normal_(linear->weight, 0.02);
  if (linear->bias.defined()) linear->bias.zero_();
}

// A heads x heads map that starts as the identity, so a MiniViT layer starts out computing
// exactly what the shared layer computes and learns its own deviation.
torch::nn::Linear identity_mix(int64_t heads) {
  auto mix = make_linear(torch::nn::LinearOptions(heads, heads));
  if (init_skipped()) return mix;
  torch::NoGradGuard no_grad;
  mix->weight.copy_(torch::eye(heads));
  mix->bias.zero_();
  return mix;
}

std::atomic<AttentionPath> g_attention_path{AttentionPath::kAuto};

// y = x W^T + b through at::linear, which runs a contiguous [B, N, D] input as one addmm (bias
// fused into the GEMM); the C++ frontend's Linear::forward takes matmul + add_ for every input
// of more than two dimensions, which costs a pass over the output and, in backward, one more
// reduction (train_step_vs_pytorch.py: most of the 12 % the LibTorch step took over PyTorch's).
torch::Tensor linear(const torch::nn::Linear &l, const torch::Tensor &x) {
  return at::linear(x, l->weight, l->bias);
}

}  // namespace

void set_attention_path(AttentionPath path) { g_attention_path.store(path); }

AttentionPath attention_path() { return g_attention_path.load(); }

bool fused_attention_available() { return TORCH_VERSION_MAJOR >= 2; }

torch::Tensor trunc_normal_(torch::Tensor t, double std) {
  if (init_skipped()) return t;
  // Inverse-CDF sampling: uniform over the CDF range of [-2, 2] standard deviations.
  torch::NoGradGuard no_grad;
  const double bound = std::erf(2.0 / std::sqrt(2.0));
  t.uniform_(-bound, bound).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
  return t;
}

torch::Tensor drop_path(const torch::Tensor &x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  auto mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask / keep;
}

BlockWeightsImpl::BlockWeightsImpl(const EncoderConfig &cfg) {
  TORCH_CHECK(cfg.dim % cfg.heads == 0, "encoder dim ", cfg.dim, " is not divisible by heads ",
              cfg.heads);
  qkv = register_module("qkv",
                        make_linear(torch::nn::LinearOptions(cfg.dim, 3 * cfg.dim)
                                        .bias(cfg.qkv_bias)));
  proj = register_module("proj", make_linear(torch::nn::LinearOptions(cfg.dim, cfg.dim)));
  fc1 = register_module("fc1", make_linear(torch::nn::LinearOptions(cfg.dim, cfg.mlp_dim)));
  fc2 = register_module("fc2", make_linear(torch::nn::LinearOptions(cfg.mlp_dim, cfg.dim)));
  for (auto *l : {&qkv, &proj, &fc1, &fc2}) init_linear(*l);
}

BlockImpl::BlockImpl(const EncoderConfig &cfg, double drop_path_rate)
    : heads_(cfg.heads),
      gelu_tanh_(cfg.gelu == "tanh"),
      attn_dropout_(cfg.attn_dropout),
      dropout_(cfg.dropout),
      drop_path_(drop_path_rate) {
  TORCH_CHECK(cfg.gelu == "exact" || cfg.gelu == "tanh", "gelu must be 'exact' or 'tanh', got '",
              cfg.gelu, "'");
  auto ln = torch::nn::LayerNormOptions({cfg.dim}).eps(cfg.ln_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  if (cfg.attn_mix) {
    mix_pre = register_module("mix_pre", identity_mix(cfg.heads));
    mix_post = register_module("mix_post", identity_mix(cfg.heads));
  }
  if (cfg.mlp_dwconv) {
    TORCH_CHECK(cfg.dwconv_kernel % 2 == 1, "dwconv_kernel must be odd, got ", cfg.dwconv_kernel);
    dwconv = register_module(
        "dwconv", make_conv(torch::nn::Conv2dOptions(cfg.mlp_dim, cfg.mlp_dim, cfg.dwconv_kernel)
                                .padding(cfg.dwconv_kernel / 2)
                                .groups(cfg.mlp_dim)));
    // Starts as a small perturbation around the shared MLP (residual branch, small weights).
    if (!init_skipped()) {
      torch::NoGradGuard no_grad;
      trunc_normal_(dwconv->weight, 0.02);
      dwconv->bias.zero_();
    }
  }
}

torch::Tensor BlockImpl::attention(const torch::Tensor &x, BlockWeights &w,
                                   torch::Tensor *attn_out) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  const int64_t hd = D / heads_;
  // One copy into [3, B, heads, N, hd], then views: q, k and v are contiguous, so the products
  // below fold into bmm without copying them again, and unbind's backward is one stack where
  // three selects would each zero-fill and add a gradient the size of all three.
  const auto qkv = linear(w->qkv, x).reshape({B, N, 3, heads_, hd}).permute({2, 0, 3, 1, 4})
                       .contiguous()
                       .unbind(0);
  const auto &q = qkv[0], &k = qkv[1], &v = qkv[2];  // [B, heads, N, hd]
  const double p = is_training() ? attn_dropout_ : 0.0;
  torch::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  if (!mix_pre && attn_out == nullptr && attention_path() == AttentionPath::kAuto) {
    out = at::scaled_dot_product_attention(q, k, v, {}, p);
  }
#endif
  if (!out.defined()) {
    // Scale q before the product, as torch.nn.MultiheadAttention does.
    auto logits = (q * (1.0 / std::sqrt(static_cast<double>(hd)))).matmul(k.transpose(-2, -1));
    if (mix_pre) logits = linear(mix_pre, logits.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
    auto attn = logits.softmax(-1);
    if (mix_post) attn = linear(mix_post, attn.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
    if (attn_out != nullptr) *attn_out = attn;
    attn = F::dropout(attn, F::DropoutFuncOptions().p(p).training(is_training()));
    out = attn.matmul(v);
  }
  out = out.transpose(1, 2).reshape({B, N, D});
  return F::dropout(linear(w->proj, out), F::DropoutFuncOptions().p(dropout_).training(is_training()));
}

torch::Tensor BlockImpl::mlp(const torch::Tensor &x, BlockWeights &w, int64_t prefix,
                             int64_t gh, int64_t gw) {
  auto h = linear(w->fc1, x);
  h = gelu_tanh_ ? torch::gelu(h, "tanh") : F::gelu(h);
  if (dwconv) {
    const int64_t B = h.size(0), C = h.size(2);
    TORCH_CHECK(h.size(1) == prefix + gh * gw, "token grid ", gh, "x", gw, " + ", prefix,
                " does not match ", h.size(1), " tokens");
    auto grid = h.narrow(1, prefix, gh * gw).transpose(1, 2).reshape({B, C, gh, gw});
    auto mixed = dwconv(grid).reshape({B, C, gh * gw}).transpose(1, 2);
    h = torch::cat({h.narrow(1, 0, prefix), h.narrow(1, prefix, gh * gw) + mixed}, 1);
  }
  h = F::dropout(h, F::DropoutFuncOptions().p(dropout_).training(is_training()));
  return F::dropout(linear(w->fc2, h), F::DropoutFuncOptions().p(dropout_).training(is_training()));
}

torch::Tensor BlockImpl::forward(const torch::Tensor &x, BlockWeights &w, int64_t prefix,
                                 int64_t gh, int64_t gw, torch::Tensor *attn_out) {
  auto y = x + drop_path(attention(norm1(x), w, attn_out), drop_path_, is_training());
  return y + drop_path(mlp(norm2(y), w, prefix, gh, gw), drop_path_, is_training());
}

TokenEncoderImpl::TokenEncoderImpl(const EncoderConfig &cfg, int64_t num_tokens, bool with_cls,
                                   bool with_pos_embed)
    : cfg_(cfg), num_tokens_(num_tokens) {
  TORCH_CHECK(cfg.depth >= 1, "encoder depth must be >= 1, got ", cfg.depth);
  TORCH_CHECK(cfg.share >= 1, "weight sharing factor must be >= 1, got ", cfg.share);
  TORCH_CHECK(cfg.heads >= 1 && cfg.dim % cfg.heads == 0, "encoder dim ", cfg.dim,
              " is not divisible by heads ", cfg.heads);
  if (with_cls) {
    cls = register_parameter("cls", torch::zeros({1, 1, cfg.dim}));
  }
  if (with_pos_embed) {
    const int64_t n = num_tokens + (with_cls ? 1 : 0);
    torch::NoGradGuard no_grad;
    pos_embed = register_parameter(
        "pos_embed", trunc_normal_(torch::empty({1, n, cfg.dim}), 0.02));
  }
  blocks = register_module("blocks", torch::nn::ModuleList());
  weights = register_module("weights", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.depth; ++i) {
    const double rate = cfg.depth > 1 ? cfg.drop_path * i / (cfg.depth - 1) : cfg.drop_path;
    blocks->push_back(Block(cfg, rate));
    if (i % cfg.share == 0) weights->push_back(BlockWeights(cfg));
  }
  norm = register_module("norm",
                         torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.dim}).eps(cfg.ln_eps)));
}

torch::Tensor TokenEncoderImpl::forward(torch::Tensor x, int64_t gh, int64_t gw,
                                        EncoderTrace *trace) {
  TORCH_CHECK(x.dim() == 3 && x.size(1) == num_tokens_ && x.size(2) == cfg_.dim,
              "encoder expects tokens [B, ", num_tokens_, ", ", cfg_.dim, "], got ", x.sizes());
  int64_t prefix = 0;
  if (cls.defined()) {
    x = torch::cat({cls.expand({x.size(0), 1, cfg_.dim}), x}, 1);
    prefix = 1;
  }
  if (pos_embed.defined()) x = x + pos_embed;
  x = F::dropout(x, F::DropoutFuncOptions().p(cfg_.dropout).training(is_training()));
  for (int64_t i = 0; i < cfg_.depth; ++i) {
    auto block = blocks[i]->as<BlockImpl>();
    auto w = BlockWeights(std::dynamic_pointer_cast<BlockWeightsImpl>(weights->ptr(i / cfg_.share)));
    torch::Tensor attn;
    x = block->forward(x, w, prefix, gh, gw, trace != nullptr ? &attn : nullptr);
    if (trace != nullptr) {
      trace->hidden.push_back(x);
      trace->attention.push_back(attn);
    }
  }
  return norm(x);
}

}  // namespace vidcls
