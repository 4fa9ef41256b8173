// JSON forms of the model configs, as stored in checkpoints. Reading starts from the defaults, so
// a field a newer version adds keeps its default in an older checkpoint.
#include <nlohmann/json.hpp>

#include "json_fields.h"

#include "vidcls/layers.h"
#include "vidcls/resnet.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/vivit.h"

namespace vidcls {

void to_json(nlohmann::json &j, const EncoderConfig &c) {
  j = {{"dim", c.dim},
       {"depth", c.depth},
       {"heads", c.heads},
       {"mlp_dim", c.mlp_dim},
       {"qkv_bias", c.qkv_bias},
       {"dropout", c.dropout},
       {"attn_dropout", c.attn_dropout},
       {"drop_path", c.drop_path},
       {"ln_eps", c.ln_eps},
       {"gelu", c.gelu},
       {"share", c.share},
       {"attn_mix", c.attn_mix},
       {"mlp_dwconv", c.mlp_dwconv},
       {"dwconv_kernel", c.dwconv_kernel}};
}

void from_json(const nlohmann::json &j, EncoderConfig &c) {
  get_opt(j, "dim", c.dim);
  get_opt(j, "depth", c.depth);
  get_opt(j, "heads", c.heads);
  get_opt(j, "mlp_dim", c.mlp_dim);
  get_opt(j, "qkv_bias", c.qkv_bias);
  get_opt(j, "dropout", c.dropout);
  get_opt(j, "attn_dropout", c.attn_dropout);
  get_opt(j, "drop_path", c.drop_path);
  get_opt(j, "ln_eps", c.ln_eps);
  get_opt(j, "gelu", c.gelu);
  get_opt(j, "share", c.share);
  get_opt(j, "attn_mix", c.attn_mix);
  get_opt(j, "mlp_dwconv", c.mlp_dwconv);
  get_opt(j, "dwconv_kernel", c.dwconv_kernel);
}

void to_json(nlohmann::json &j, const ViViTConfig &c) {
  j = {{"architecture", c.architecture},
       {"frames", c.frames},
       {"image_size", c.image_size},
       {"channels", c.channels},
       {"tubelet", {c.tubelet_t, c.tubelet_h, c.tubelet_w}},
       {"num_classes", c.num_classes},
       {"spatial", c.spatial},
       {"temporal", c.temporal},
       {"spatial_pos_embed", c.spatial_pos_embed},
       {"temporal_pos_embed", c.temporal_pos_embed},
       {"head_dropout", c.head_dropout},
       {"tubelet_bias_from_image", c.tubelet_bias_from_image},
       {"pos_embed_from_image", c.pos_embed_from_image},
       {"pos_embed_init", c.pos_embed_init},
       {"input_transform", c.input_transform}};
}

void from_json(const nlohmann::json &j, ViViTConfig &c) {
  get_opt(j, "architecture", c.architecture);
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "channels", c.channels);
  if (auto it = j.find("tubelet"); it != j.end()) {
    auto t = it->get<std::vector<int64_t>>();
    if (t.size() != 3) throw nlohmann::json::other_error::create(501, "tubelet must be [t, h, w]", &j);
    c.tubelet_t = t[0];
    c.tubelet_h = t[1];
    c.tubelet_w = t[2];
  }
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "spatial", c.spatial);
  get_opt(j, "temporal", c.temporal);
  get_opt(j, "spatial_pos_embed", c.spatial_pos_embed);
  get_opt(j, "temporal_pos_embed", c.temporal_pos_embed);
  get_opt(j, "head_dropout", c.head_dropout);
  get_opt(j, "tubelet_bias_from_image", c.tubelet_bias_from_image);
  get_opt(j, "pos_embed_from_image", c.pos_embed_from_image);
  get_opt(j, "pos_embed_init", c.pos_embed_init);
  get_opt(j, "input_transform", c.input_transform);
}

void to_json(nlohmann::json &j, const ResNetConfig &c) {
  j = {{"depth", c.depth}, {"num_classes", c.num_classes}, {"pool", c.pool}};
}

void from_json(const nlohmann::json &j, ResNetConfig &c) {
  get_opt(j, "depth", c.depth);
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "pool", c.pool);
}

void to_json(nlohmann::json &j, const ResNetTViTConfig &c) {
  j = {{"backbone", c.backbone},
       {"frames", c.frames},
       {"image_size", c.image_size},
       {"num_classes", c.num_classes},
       {"temporal", c.temporal},
       {"temporal_pos_embed", c.temporal_pos_embed},
       {"freeze_backbone", c.freeze_backbone},
       {"head_dropout", c.head_dropout},
       {"input", c.input}};
}

void from_json(const nlohmann::json &j, ResNetTViTConfig &c) {
  get_opt(j, "backbone", c.backbone);
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "num_classes", c.num_classes);
  get_opt(j, "temporal", c.temporal);
  get_opt(j, "temporal_pos_embed", c.temporal_pos_embed);
  get_opt(j, "freeze_backbone", c.freeze_backbone);
  get_opt(j, "head_dropout", c.head_dropout);
  get_opt(j, "input", c.input);
}

}  // namespace vidcls
