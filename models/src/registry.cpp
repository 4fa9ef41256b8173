#include "vidcls/registry.h"

#include <set>
#include <stdexcept>

#include "vidcls/checkpoint.h"
#include "vidcls/init.h"

#include "vidcls/hf_video.h"
#include "vidcls/mvit.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/swin3d.h"
#include "vidcls/video_cnn.h"
#include "vidcls/vivit.h"

namespace vidcls {

namespace {

EncoderConfig encoder(int64_t dim, int64_t depth, int64_t heads, int64_t mlp_dim) {
  EncoderConfig e;
  e.dim = dim;
  e.depth = depth;
  e.heads = heads;
  e.mlp_dim = mlp_dim;
  return e;
}

// MiniViT multiplexing: R consecutive layers share weights; per-layer attention-map mixing
// across heads and a depthwise convolution in the MLP.
EncoderConfig multiplexed(EncoderConfig e, int64_t share) {
  e.share = share;
  e.attn_mix = true;
  e.mlp_dwconv = true;
  return e;
}

ClipSpec clip(int frames, int stride, int size, int short_side, std::array<float, 3> mean,
              std::array<float, 3> std) {
  ClipSpec c;
  c.frames = frames;
  c.frame_stride = stride;
  c.hop = frames;
  c.width = size;
  c.height = size;
  c.short_side = short_side;
  c.mean = mean;
  c.std = std;
  return c;
}

constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};
// Google's ViT and scenic's ViViT take inputs scaled to [-1, 1].
constexpr std::array<float, 3> kHalf = {0.5f, 0.5f, 0.5f};

// The full-size presets: scenic's ViViT-B and the study's three models.
void add_full_size_presets(std::vector<Preset> &out) {
  {  // scenic's ViViT-B/16x2 factorised encoder (Kinetics-400 config): 32 frames at stride 2.
    ViViTConfig c;
    c.frames = 32;
    c.spatial = encoder(768, 12, 12, 3072);
    c.temporal = encoder(768, 4, 12, 3072);
    out.push_back({"vivit-b16x2-fe",
                   "vivit",
                   "ViViT-B/16x2 factorised encoder as in scenic: 768-d, 12 spatial + 4 temporal "
                   "layers, tubelet 2x16x16, 32 frames at 224 px",
                   c,
                   clip(32, 2, 224, 256, kHalf, kHalf),
                   {}});
  }
  {  // The study's ViViT: 12 + 12 layers, random position embeddings, no temporal position
     // embedding, tubelet bias not copied from the image model, heavy regularisation.
    ViViTConfig c;
    c.frames = 32;
    c.spatial = encoder(768, 12, 12, 3072);
    c.temporal = encoder(768, 12, 12, 3072);
    for (auto *e : {&c.spatial, &c.temporal}) {
      e->dropout = 0.5;
      e->drop_path = 0.5;
    }
    c.head_dropout = 0.5;
    c.temporal_pos_embed = false;
    c.tubelet_bias_from_image = false;
    c.pos_embed_from_image = false;
    out.push_back({"vivit-seed",
                   "vivit",
                   "the study's ViViT: 768-d, 12 spatial + 12 temporal layers, no temporal "
                   "position embedding, dropout and drop-path 0.5",
                   c,
                   clip(32, 2, 224, 256, kHalf, kHalf),
                   {}});
  }
  {  // Mini-ViViT-Ti: DeiT-Tiny width with MiniViT multiplexing (sharing factor 2).
    ViViTConfig c;
    c.architecture = "mini-vivit";
    c.frames = 16;
    c.spatial = multiplexed(encoder(192, 12, 3, 768), 2);
    c.temporal = multiplexed(encoder(192, 4, 3, 768), 2);
    for (auto *e : {&c.spatial, &c.temporal}) e->drop_path = 0.1;
    out.push_back({"mini-vivit-ti",
                   "mini-vivit",
                   "Mini-ViViT-Ti: 192-d, 3 heads, 12 spatial + 4 temporal layers sharing weights "
                   "in pairs, with MiniViT attention mixing and MLP depthwise convolution",
                   c,
                   clip(16, 4, 224, 256, kImageNetMean, kImageNetStd),
                   {}});
  }
  {  // The study's Mini-ViViT: a plain DeiT-Tiny-sized factorised encoder, 4 + 4 blocks.
    ViViTConfig c;
    c.architecture = "mini-vivit";
    c.frames = 16;
    c.spatial = encoder(192, 4, 3, 768);
    c.temporal = encoder(192, 4, 3, 768);
    out.push_back({"mini-vivit-seed",
                   "mini-vivit",
                   "the study's Mini-ViViT: DeiT-Tiny width (192-d, 3 heads), 4 + 4 blocks, "
                   "no weight sharing",
                   c,
                   clip(16, 4, 224, 256, kImageNetMean, kImageNetStd),
                   {}});
  }
  {  // The study's ResNet-50 + Temporal ViT: frozen ResNet-50, 2048 -> 768, temporal encoder.
    ResNetTViTConfig c;
    c.backbone.depth = 50;
    c.frames = 16;
    c.temporal = encoder(768, 4, 12, 3072);
    out.push_back({"resnet50-tvit",
                   "resnet-tvit",
                   "the study's ResNet-50 + Temporal ViT: frozen ResNet-50 features, 2048 -> 768, "
                   "4-layer temporal transformer over 16 frames",
                   c,
                   clip(16, 4, 224, 256, kImageNetMean, kImageNetStd),
                   {}});
  }
}

// CPU-sized presets for tests and the demo: 8 frames at 64 px.
void add_cpu_presets(std::vector<Preset> &out) {
  {
    ViViTConfig c;
    c.frames = 8;
    c.image_size = 64;
    c.tubelet_h = c.tubelet_w = 8;
    c.spatial = encoder(96, 4, 4, 192);
    c.temporal = encoder(96, 2, 4, 192);
    c.num_classes = 8;
    c.input_transform = "normal-flow";  // trained from scratch on motion: see vivit.h
    out.push_back({"vivit-xs",
                   "vivit",
                   "CPU-sized ViViT: 96-d, 4 heads, 4 spatial + 2 temporal layers, tubelet 2x8x8, "
                   "8 frames at 64 px, normal-flow input",
                   c,
                   clip(8, 2, 64, 0, kHalf, kHalf),
                   {}});
  }
  {
    ViViTConfig c;
    c.architecture = "mini-vivit";
    c.frames = 8;
    c.image_size = 64;
    c.tubelet_h = c.tubelet_w = 8;
    c.spatial = multiplexed(encoder(96, 4, 4, 192), 2);
    c.temporal = multiplexed(encoder(96, 2, 4, 192), 2);
    c.num_classes = 8;
    c.input_transform = "normal-flow";
    out.push_back({"mini-vivit-xs",
                   "mini-vivit",
                   "CPU-sized Mini-ViViT: vivit-xs with layers sharing weights in pairs",
                   c,
                   clip(8, 2, 64, 0, kHalf, kHalf),
                   {}});
  }
  {
    // Trained from scratch on motion: the frozen RGB backbone stays at chance, the frozen motion
    // backbone did best of the frozen inputs on validation, ahead of two-stream, and training
    // the backbone too led freezing it in both regimes (the accuracy log that README.md kept
    // until docs/ replaced it; git history); 9 frames give the 8 pairs of 8 tokens.
    ResNetTViTConfig c;
    c.freeze_backbone = false;
    c.backbone.depth = 18;
    c.frames = 9;
    c.image_size = 64;
    c.temporal = encoder(128, 2, 4, 256);
    c.num_classes = 8;
    c.input = "motion";
    out.push_back({"resnet18-tvit-xs",
                   "resnet-tvit",
                   "CPU-sized ResNet-18 + Temporal ViT: ResNet-18 (trained with the rest) on the "
                   "motion of each frame pair, 512 -> 128, 2 layers over the 8 pairs of 9 "
                   "frames at 64 px",
                   c,
                   clip(9, 2, 64, 0, kImageNetMean, kImageNetStd),
                   {}});
  }
}

// torchvision's video presets (torchvision.transforms._presets.VideoClassification): resize
// without antialiasing, centre crop, Kinetics mean and std unless the weights say otherwise.
constexpr std::array<float, 3> kKineticsMean = {0.43216f, 0.394666f, 0.37645f};
constexpr std::array<float, 3> kKineticsStd = {0.22803f, 0.22145f, 0.216989f};

ClipSpec torchvision_clip(int frames, double fps, int crop, int short_side) {
  ClipSpec c = clip(frames, 1, crop, short_side, kKineticsMean, kKineticsStd);
  c.sample_rate = fps;
  c.antialias = false;
  return c;
}

PublishedWeights torchvision_weights(const std::string &enum_name, const std::string &file,
                                     double top1, double top5, double gflops,
                                     const std::string &evaluation) {
  PublishedWeights w;
  w.publisher = "torchvision";
  w.source = "torchvision.models.video." + enum_name + ".KINETICS400_V1 (meta, transforms)";
  w.file = file;
  w.url = "https://download.pytorch.org/models/" + file;
  w.labels = "kinetics-400";
  w.top1 = top1;
  w.top5 = top5;
  w.gflops = gflops;
  w.evaluation = "Kinetics-400 validation, video level: " + evaluation;
  return w;
}

// The Kinetics-400 classifiers torchvision publishes; vidcls-import reads their .pth files.
// Accuracy and GFLOPs are torchvision's metadata (GFLOPs as of torchvision 0.15).
void add_torchvision_presets(std::vector<Preset> &out) {
  const std::string resnet_eval = "5 clips of 16 frames at 15 fps per video";
  struct R {
    const char *preset, *variant, *enum_name, *file, *what;
    double top1, top5, gflops;
  };
  const R resnets[] = {
      {"r3d-18-k400", "r3d", "R3D_18_Weights", "r3d_18-b3b3357e.pth",
       "R3D-18: ResNet-18 of 3x3x3 convolutions", 63.200, 83.479, 40.697},
      {"mc3-18-k400", "mc3", "MC3_18_Weights", "mc3_18-a90a0ba3.pth",
       "MC3-18: ResNet-18, 3D convolutions in the first stage, 2D after", 63.960, 84.130, 43.343},
      {"r2plus1d-18-k400", "r2plus1d", "R2Plus1D_18_Weights", "r2plus1d_18-91a641e6.pth",
       "R(2+1)D-18: ResNet-18 of spatial 1x3x3 then temporal 3x1x1 convolutions", 67.463, 86.175,
       40.519},
  };
  for (const auto &r : resnets) {
    VideoResNetConfig c;
    c.variant = r.variant;
    ClipSpec spec = torchvision_clip(16, 15, 112, 0);
    spec.resize_width = 171;
    spec.resize_height = 128;
    out.push_back(
        {r.preset, "video-resnet",
         std::string(r.what) + ", Kinetics-400 (torchvision): 16 frames at 15 fps, "
                               "171 x 128 then 112 px",
         c, spec, torchvision_weights(r.enum_name, r.file, r.top1, r.top5, r.gflops, resnet_eval)});
  }
  {
    S3DConfig c;
    ClipSpec spec = torchvision_clip(128, 15, 224, 0);
    spec.resize_width = spec.resize_height = 256;
    out.push_back({"s3d-k400", "s3d",
                   "S3D: separable 3D Inception network, Kinetics-400 (torchvision): 128 frames "
                   "at 15 fps, 256 x 256 then 224 px",
                   c, spec,
                   torchvision_weights("S3D_Weights", "s3d-d76dad2f.pth", 68.368, 88.050, 17.979,
                                       "1 clip of 128 frames at 15 fps per video")});
  }
  // MViT: 16 frames at 7.5 fps, short side 256, centre 224, mean 0.45 and std 0.225.
  const std::string mvit_eval = "5 clips of 16 frames at 7.5 fps per video";
  auto mvit_clip = [] {
    ClipSpec spec = torchvision_clip(16, 7.5, 224, 256);
    spec.mean = {0.45f, 0.45f, 0.45f};
    spec.std = {0.225f, 0.225f, 0.225f};
    return spec;
  };
  out.push_back({"mvit-v2-s-k400", "mvit",
                 "MViTv2-S: multiscale vision transformer with pooling attention, Kinetics-400 "
                 "(torchvision): 16 frames at 7.5 fps, 224 px",
                 MViTConfig::v2_s(), mvit_clip(),
                 torchvision_weights("MViT_V2_S_Weights", "mvit_v2_s-ae3be167.pth", 80.757, 94.665,
                                     64.224, mvit_eval)});
  out.push_back({"mvit-v1-b-k400", "mvit",
                 "MViTv1-B: multiscale vision transformer, Kinetics-400 (torchvision): 16 frames "
                 "at 7.5 fps, 224 px",
                 MViTConfig::v1_b(), mvit_clip(),
                 torchvision_weights("MViT_V1_B_Weights", "mvit_v1_b-dbeb1030.pth", 78.477, 93.582,
                                     70.599, mvit_eval)});
  // Video Swin: 32 frames at 15 fps, short side 256, centre 224, ImageNet mean and std.
  const std::string swin_eval = "12 clips of 32 frames at 15 fps per video";
  struct S {
    const char *preset, *file, *what;
    Swin3DConfig config;
    double top1, top5, gflops;
  };
  const S swins[] = {
      {"swin3d-t-k400", "swin3d_t-7615ae03.pth", "Swin3D-T", Swin3DConfig::t(), 77.715, 93.519,
       43.882},
      {"swin3d-s-k400", "swin3d_s-da41c237.pth", "Swin3D-S", Swin3DConfig::s(), 79.521, 94.158,
       82.841},
      {"swin3d-b-k400", "swin3d_b_1k-24f7c7c6.pth", "Swin3D-B (ImageNet-1k pretraining)",
       Swin3DConfig::b(), 79.427, 94.386, 140.667},
      {"swin3d-b22k-k400", "swin3d_b_22k-7c6ae6fa.pth", "Swin3D-B (ImageNet-22k pretraining)",
       Swin3DConfig::b(), 81.643, 95.574, 140.667},
  };
  for (const auto &w : swins) {
    ClipSpec spec = torchvision_clip(32, 15, 224, 256);
    spec.mean = kImageNetMean;
    spec.std = kImageNetStd;
    auto weights =
        torchvision_weights("Swin3D_T_Weights", w.file, w.top1, w.top5, w.gflops, swin_eval);
    const std::string name = w.preset;
    const char *enum_name = name.rfind("swin3d-s", 0) == 0   ? "Swin3D_S_Weights"
                            : name.rfind("swin3d-b", 0) == 0 ? "Swin3D_B_Weights"
                                                             : "Swin3D_T_Weights";
    weights.source =
        std::string("torchvision.models.video.") + enum_name +
        (name == "swin3d-b22k-k400" ? ".KINETICS400_IMAGENET22K_V1" : ".KINETICS400_V1") +
        " (meta, transforms; torchvision >= 0.15)";
    out.push_back({w.preset, "swin3d",
                   std::string(w.what) + ": video Swin transformer, Kinetics-400 (torchvision): "
                                         "32 frames at 15 fps, 224 px",
                   w.config, spec, weights});
  }
}

PublishedWeights hugging_face_weights(const std::string &repo, const std::string &file, double top1,
                                      double top5, const std::string &source,
                                      const std::string &evaluation) {
  PublishedWeights w;
  w.publisher = "Hugging Face: " + repo;
  w.source = source;
  w.file = file;
  w.url = "https://huggingface.co/" + repo + "/tree/main";
  w.labels = "kinetics-400";
  w.top1 = top1;
  w.top5 = top5;
  w.evaluation = "Kinetics-400 validation, video level: " + evaluation;
  return w;
}

// The Kinetics-400 transformers published on the Hugging Face hub, in transformers' layout.
// Their clip specs are the authors' evaluation settings (Scenic's ViViT config, VideoMAE's
// fine-tuning script), which the hub's preprocessor files do not all reproduce (docs/kinetics.md).
void add_hugging_face_presets(std::vector<Preset> &out) {
  {
    ClipSpec spec = clip(32, 2, 224, 256, kHalf, kHalf);
    spec.antialias = false;
    out.push_back(
        {"vivit-b16x2-k400", "vivit-joint",
         "ViViT-B/16x2, unfactorised (joint space-time attention), Kinetics-400 "
         "(google/vivit-b-16x2-kinetics400): 32 frames at stride 2, 224 px",
         VivitJointConfig(), spec,
         hugging_face_weights("google/vivit-b-16x2-kinetics400", "pytorch_model.bin", 79.9, 0,
                              "Scenic's ViViT model zoo (scenic/projects/vivit/README.md)",
                              "4 clips x 3 crops of 32 frames at stride 2")});
  }
  {
    ClipSpec spec = clip(16, 4, 224, 224, kImageNetMean, kImageNetStd);
    spec.antialias = false;
    out.push_back(
        {"videomae-b-k400", "videomae",
         "VideoMAE ViT-B/16 (1600 epochs pre-training), fine-tuned on Kinetics-400 "
         "(MCG-NJU/videomae-base-finetuned-kinetics): 16 frames at stride 4, 224 px",
         VideoMAEConfig(), spec,
         hugging_face_weights("MCG-NJU/videomae-base-finetuned-kinetics", "model.safetensors", 80.9,
                              94.7, "MCG-NJU/VideoMAE MODEL_ZOO.md (ViT-B, 1600 epochs)",
                              "5 clips x 3 crops of 16 frames at stride 4")});
  }
}

// Scenic's ViViT-B/16x2 factorised encoder for Kinetics-400, as its Flax checkpoint holds it
// (scenic/projects/vivit/README.md): vivit-b16x2-fe's model with the tanh GELU it was trained
// with; clips as its config (configs/kinetics400/vivit_base_factorised_encoder.py) makes them:
// 32 frames at stride 2, short side 256 (DMVR's bilinear resize, no antialiasing), centre 224,
// pixels scaled to [-1, 1].
void add_scenic_presets(std::vector<Preset> &out) {
  ViViTConfig c;
  c.frames = 32;
  c.spatial = encoder(768, 12, 12, 3072);
  c.temporal = encoder(768, 4, 12, 3072);
  c.spatial.gelu = c.temporal.gelu = "tanh";
  ClipSpec spec = clip(32, 2, 224, 256, kHalf, kHalf);
  spec.antialias = false;
  PublishedWeights w;
  w.publisher = "scenic (Google Research)";
  w.source = "scenic/projects/vivit/README.md (model zoo)";
  w.file = "checkpoint";
  w.url =
      "https://storage.googleapis.com/scenic-bucket/vivit/kinetics_400/vivit_base_16x2_fe/"
      "checkpoint";
  w.labels = "kinetics-400";
  w.top1 = 78.4;
  w.evaluation = "Kinetics-400, 4 clips x 3 crops of 32 frames at stride 2";
  w.layout = "scenic";
  out.push_back({"vivit-b16x2-fe-k400", "vivit",
                 "ViViT-B/16x2 factorised encoder, Kinetics-400 (scenic's checkpoint): 32 frames "
                 "at stride 2, 224 px",
                 c, spec, w});
}

std::vector<Preset> build_presets() {
  std::vector<Preset> out;
  add_full_size_presets(out);
  add_cpu_presets(out);
  add_torchvision_presets(out);
  add_hugging_face_presets(out);
  add_scenic_presets(out);
  return out;
}

}  // namespace

const std::vector<Preset> &presets() {
  static const std::vector<Preset> all = build_presets();
  return all;
}

const Preset &find_preset(const std::string &name) {
  std::string known;
  for (const auto &p : presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw std::invalid_argument("unknown preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> architectures() {
  return {"vivit", "mini-vivit", "resnet-tvit", "video-resnet", "s3d",
          "mvit",  "swin3d",     "vivit-joint", "videomae"};
}

ClassifierPtr make_model(const std::string &architecture, const nlohmann::json &config) {
  if (architecture == "vivit" || architecture == "mini-vivit") {
    auto c = config.get<ViViTConfig>();
    c.architecture = architecture;
    return std::make_shared<ViViTImpl>(c);
  }
  if (architecture == "resnet-tvit") {
    return std::make_shared<ResNetTViTImpl>(config.get<ResNetTViTConfig>());
  }
  if (architecture == "video-resnet") {
    return std::make_shared<VideoResNetImpl>(config.get<VideoResNetConfig>());
  }
  if (architecture == "s3d") return std::make_shared<S3DImpl>(config.get<S3DConfig>());
  if (architecture == "mvit") return std::make_shared<MViTImpl>(config.get<MViTConfig>());
  if (architecture == "swin3d") return std::make_shared<Swin3DImpl>(config.get<Swin3DConfig>());
  if (architecture == "vivit-joint") {
    return std::make_shared<VivitJointImpl>(config.get<VivitJointConfig>());
  }
  if (architecture == "videomae") {
    return std::make_shared<VideoMAEImpl>(config.get<VideoMAEConfig>());
  }
  std::string known;
  for (const auto &a : architectures()) known += (known.empty() ? "" : ", ") + a;
  throw std::invalid_argument("unknown architecture '" + architecture + "' (known: " + known + ")");
}

nlohmann::json preset_config(const std::string &preset, int64_t num_classes) {
  auto config = find_preset(preset).config;
  if (num_classes > 0) config["num_classes"] = num_classes;
  return config;
}

ClassifierPtr make_preset_model(const std::string &preset, int64_t num_classes) {
  return make_model(find_preset(preset).architecture, preset_config(preset, num_classes));
}

std::vector<std::string> head_tensors(const VideoClassifierImpl &model) {
  auto config = model.config();
  config["num_classes"] = model.num_classes() + 1;
  ClassifierPtr other;
  {
    SkipInit skip;
    other = make_model(model.architecture(), config);
  }
  const auto theirs = state_of(*other);
  std::vector<std::string> head;
  for (const auto &[name, t] : state_of(model)) {
    for (const auto &[other_name, u] : theirs) {
      if (other_name == name && u.sizes() != t.sizes()) head.push_back(name);
    }
  }
  return head;
}

int64_t freeze_all_but_head(VideoClassifierImpl &model) {
  const auto head = head_tensors(model);
  const std::set<std::string> trainable(head.begin(), head.end());
  int64_t count = 0;
  for (auto &p : model.named_parameters()) {
    const bool train = trainable.count(p.key()) > 0;
    p.value().set_requires_grad(train);
    if (train) count += p.value().numel();
  }
  return count;
}

namespace {

// Whether `m` has parameters and none of them trains.
bool all_frozen(const torch::nn::Module &m) {
  const auto params = m.parameters(/*recurse=*/true);
  if (params.empty()) return false;
  for (const auto &p : params) {
    if (p.requires_grad()) return false;
  }
  return true;
}

void eval_frozen(torch::nn::Module &m) {
  for (auto &child : m.children()) {
    if (all_frozen(*child)) {
      child->eval();
    } else {
      eval_frozen(*child);
    }
  }
}

}  // namespace

void keep_frozen_in_eval(torch::nn::Module &model) { eval_frozen(model); }

}  // namespace vidcls
