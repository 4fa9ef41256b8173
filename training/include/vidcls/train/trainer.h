// vidcls-train's engine: a recipe per preset, the training run (data, model, optimiser, epochs;
// the loop itself is in loop.h), checkpoints that resume exactly, best chosen on validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "vidcls/registry.h"

namespace vidcls::train {

// How a preset is trained when the user says nothing else.
struct Recipe {
  int epochs = 30;
  int batch_size = 16;
  double lr = 1e-3;            // peak, after warmup; cosine decay to 0 per step
  double weight_decay = 0.05;
  double warmup_epochs = 2;
  double label_smoothing = 0.1;
  double clip_grad = 1.0;      // max gradient norm; 0 = off
  std::string optimizer = "adamw";  // "adamw" or "sgd" (momentum 0.9, nesterov)
  // Random clips per training video per epoch; 0: as many as make an epoch at least
  // min_epoch_clips clips, and at least 4, so a small dataset gets as many optimiser steps
  // as a larger one (MSR DailyActivity3D's ~160 training videos x 4 would give 640).
  int repeats = 0;
  int min_epoch_clips = 720;
  double min_scale = 1.0, max_scale = 1.15;  // short-side scale jitter
};

// The recipe of a preset (by name), tuned on vidcls-synth motion data for the CPU presets.
Recipe default_recipe(const std::string &preset);

// "vivit" -> "vivit-xs", "mini-vivit" -> "mini-vivit-xs", "resnet-vit" (or "resnet-tvit") ->
// "resnet18-tvit-xs". Throws std::invalid_argument for another name.
std::string default_preset(const std::string &model);

struct TrainOptions {
  std::string model = "vivit";  // vivit | mini-vivit | resnet-vit
  std::string preset;           // "" = default_preset(model)
  std::string data;             // dataset folder or clip cache
  std::string out;
  std::string split;            // "" = the layout's default (or the cache's)
  // Where the clip cache of a dataset folder lives: "" = default_cache_dir (found again by every
  // run on the same dataset).
  std::string cache_dir;
  // Share of the training side held out to choose best.safetensors on (carve_validation); < 0
  // = the default, or the cache's when `data` is a cache.
  double val_fraction = -1;
  std::string pretrained;       // vidcls checkpoint, or ViT / ResNet image weights
  // A vidcls checkpoint to fine-tune (an imported Kinetics-400 classifier, or one trained here):
  // its preset, configuration and clip spec instead of `model` / `preset`'s, every tensor but
  // the classifier head, which starts new for the data set's classes (kept as it is when the
  // classes are the checkpoint's own).
  std::string init;
  std::string device = "cpu";
  // Mixed precision of the training forward passes (autocast; the weights, the optimiser and
  // the evaluation stay float32): "fp32" (off), "bf16" (CUDA or CPU), "fp16" (CUDA, with
  // dynamic loss scaling).
  std::string precision = "fp32";
  bool resume = false;
  bool flip = false;
  // Mirrors that turn a direction class into its opposite, each "a:b,c:d" (parse_label_swaps;
  // "" = off): left-right flips (with flip or alone), top-bottom flips, clips played backwards.
  std::string flip_swap, vflip_swap, reverse_swap;
  // resnet-vit: true trains the temporal transformer alone on cached per-frame features, false
  // trains the backbone too, on clips (no feature cache); unset: the preset's config.
  // Any other architecture: true trains the classifier head alone (head_tensors), the rest kept
  // as initialised, its BatchNorm statistics included.
  std::optional<bool> freeze_backbone;
  // vivit / mini-vivit: the model's input transform instead of the preset's ("" = the preset's);
  // stored in the checkpoint's config, so the elements compute the same input.
  std::string input_transform;
  // resnet-vit: what the backbone sees, "rgb", "motion", "motion-stabilised" or "two-stream"
  // (empty: the preset's; see ResNetTViTConfig::input). Written into the checkpoint's config.
  std::string backbone_input;
  // resnet-vit: how the backbone pools its last map, "avg" or "max" (empty: the preset's; see
  // ResNetConfig::pool). Written into the checkpoint's config.
  std::string backbone_pool;
  // Stochastic depth of every transformer encoder of the model, rising linearly over its layers
  // to this rate (< 0: the preset's). Training only; written into the config with the rest.
  double drop_path = -1;
  uint64_t seed = 0;
  // Temporal sampling of the clips, overriding the preset's clip spec (and written into the
  // checkpoint's, so the elements sample the same way): every k-th frame, or frames per second on
  // timestamps. 0 = the preset's.
  int frame_stride = 0;
  double sample_rate = 0;
  // For measuring what the caches save (benchmarks), not for training: decode every training
  // clip from its video file at every step, as the study's notebooks did; run the frozen ResNet
  // backbone on every training clip instead of training on its cached per-frame features.
  bool decode_every_step = false;
  bool no_feature_cache = false;
  int stop_after = 0;  // stop after this epoch as a kill would (0 = run the whole schedule)
  int prefetch = 4;    // batches prepared ahead
  // Data-parallel runs (torchrun, or RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT): how long any
  // rank waits for the others (rendezvous, each collective) before it gives up with an error.
  double dist_timeout = 300;
  // Weight distillation (MiniViT, Zhang et al. 2022) from a ViViT / Mini-ViViT teacher
  // checkpoint with the same labels and clip size: loss = (1 - alpha) CE(labels)
  // + alpha T^2 KL(teacher || student at temperature T) + beta (MSE of the head-averaged
  // attention maps + KL of the hidden-state relations, of the last spatial layer).
  std::string teacher;
  double distill_temperature = 1.0;
  double distill_alpha = 1.0;  // MiniViT trains on the teacher's soft labels alone
  double distill_beta = 1.0;
  Recipe recipe;
  std::string command_line;  // recorded in the provenance
};

// What a finished run reports. best.safetensors is the epoch with the best validation top-1;
// the test side is evaluated every epoch for the record and never used to choose.
struct TrainResult {
  int best_epoch = 0;
  double best_val_top1 = 0;
  double best_test_top1 = 0;  // of the chosen epoch: the number to report
  double last_test_top1 = 0;
};

// Runs a training; prints progress to stdout. Throws on errors (std::runtime_error with a
// message a user can act on, e.g. for a non-finite loss).
TrainResult train(const TrainOptions &options);

}  // namespace vidcls::train
