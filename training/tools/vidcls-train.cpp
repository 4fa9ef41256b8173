// vidcls-train: trains a video classifier from a dataset folder or a clip cache.
//
//   vidcls-train --model vivit --data DATASET --out runs/vivit
//
// writes OUT/best.safetensors (the epoch best on the validation side), OUT/last.safetensors
// (with the optimiser state, for --resume), OUT/metrics.csv and OUT/curves.png; a dataset folder
// is decoded once into its clip cache, which every later run on it finds again.
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/train/trainer.h"

namespace {

namespace train = vidcls::train;

// The recipe values the user gave; the rest come from the preset's recipe.
struct RecipeOverrides {
  std::optional<int> epochs, batch_size, repeats;
  std::optional<double> lr, weight_decay, warmup, smoothing, clip;
  std::optional<std::string> optimizer;
};

struct SamplingOptions {
  CLI::Option *stride = nullptr, *rate = nullptr;
};

void add_data_options(CLI::App &app, train::TrainOptions &o) {
  auto *model = app.add_option("--model", o.model, "vivit, mini-vivit or resnet-vit")
                    ->check(CLI::IsMember({"vivit", "mini-vivit", "resnet-vit", "resnet-tvit"}));
  auto *init = app.add_option(
      "--init", o.init,
      "fine-tune this vidcls checkpoint (an imported Kinetics-400 classifier, vidcls-import, or "
      "one trained here): its model, configuration and clip spec, every tensor but the "
      "classifier head, which starts new for the data set's classes; with --freeze-backbone "
      "only the head trains");
  init->check(CLI::ExistingFile)->excludes(model);
  app.callback([model, init] {
    if (model->count() == 0 && init->count() == 0) throw CLI::RequiredError("--model or --init");
  });
  app.add_option("--preset", o.preset,
                 "model preset (default: vivit-xs, mini-vivit-xs, resnet18-tvit-xs)")
      ->excludes(init);
  app.add_option("--data", o.data, "dataset folder (decoded once into its clip cache) or clip cache")
      ->required();
  app.add_option("--cache", o.cache_dir,
                 "where the clip cache of a dataset folder lives (default: one per dataset under "
                 "$VIDCLS_CACHE_DIR or ~/.cache/vidcls/clip-caches)");
  app.add_option("--val-fraction", o.val_fraction,
                 "share of the training side held out to choose best.safetensors on (MSR "
                 "cross-subject: whole subjects; else per class); default 0.1, 0 = none")
      ->check(CLI::Range(0.0, 0.9));
  app.add_option("--out", o.out, "output folder")->required();
  app.add_option("--split", o.split,
                 "dataset split (msr: cross-subject, random80; kinetics400: val, test; folder: "
                 "random80, folders); default: the layout's first");
}

void add_recipe_options(CLI::App &app, RecipeOverrides &r) {
  app.add_option("--epochs", r.epochs, "epochs (default: the preset's recipe, 30 for xs)");
  app.add_option("--batch-size", r.batch_size, "clips per step (default 16)");
  app.add_option("--lr", r.lr,
                 "peak learning rate after warmup (default: 2e-4 for vivit-xs and "
                 "mini-vivit-xs, 1e-3 for resnet18-tvit-xs)");
  app.add_option("--weight-decay", r.weight_decay, "decoupled weight decay (default 0.05)");
  app.add_option("--warmup-epochs", r.warmup, "linear warmup, then cosine decay per step (default 2)");
  app.add_option("--label-smoothing", r.smoothing, "(default 0.1)");
  app.add_option("--clip-grad", r.clip, "max gradient norm, 0 = off (default 1.0)");
  app.add_option("--optimizer", r.optimizer, "adamw (default) or sgd (momentum 0.9, nesterov)")
      ->check(CLI::IsMember({"adamw", "sgd"}));
  app.add_option("--repeats", r.repeats,
                 "random clips per training video per epoch (default: enough for 720 clips per "
                 "epoch, at least 4)");
}

void add_model_options(CLI::App &app, train::TrainOptions &o, SamplingOptions &sampling) {
  app.add_option("--pretrained", o.pretrained,
                 "initial weights: a vidcls checkpoint (tensors of the same name and shape), or "
                 "ViT/DeiT (vivit) or ResNet (resnet-vit) image weights");
  app.add_flag("--resume", o.resume, "continue from OUT/last.safetensors after its epoch");
  sampling.stride = app.add_option(
      "--frame-stride", o.frame_stride,
      "clips take every k-th frame (default: the preset's clip spec, 2 for xs); written into the "
      "checkpoint, so the elements sample the same way");
  sampling.rate = app.add_option("--sample-rate", o.sample_rate,
                 "clips take frames at this rate (fps) on timestamps instead of every k-th frame")
      ->excludes(sampling.stride);
  app.add_option("--seed", o.seed, "seed of the initialisation and of the sampling")
      ->capture_default_str();
  app.add_option("--device", o.device, "cpu or cuda")->capture_default_str();
  app.add_option("--precision", o.precision,
                 "mixed precision of the training forward passes: fp32 (off), bf16 (cuda or "
                 "cpu), fp16 (cuda, with dynamic loss scaling); weights and evaluation stay "
                 "float32")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))
      ->capture_default_str();
  app.add_flag("--flip", o.flip,
               "random horizontal flips, labels kept (a flip turns slide_left into slide_right: "
               "see --flip-swap)");
  app.add_option("--flip-swap", o.flip_swap,
                 "random horizontal flips that swap these classes' labels: comma-separated "
                 "pairs of class names, e.g. slide_left:slide_right,rotate_cw:rotate_ccw (a "
                 "class not named keeps its label)");
  app.add_option("--vflip-swap", o.vflip_swap,
                 "random vertical flips (p = 1/2) that swap these classes' labels, as "
                 "--flip-swap (e.g. slide_up:slide_down,rotate_cw:rotate_ccw)");
  app.add_option("--reverse-swap", o.reverse_swap,
                 "clips played backwards (p = 1/2), swapping these classes' labels, as "
                 "--flip-swap (e.g. slide_left:slide_right,grow:shrink)");
  app.add_option("--input-transform", o.input_transform,
                 "vivit / mini-vivit: what the tubelet embedding sees instead of the preset's "
                 "(none, temporal-residual, normal-flow, normal-flow-stabilised, "
                 "tubelet-normal-flow: normal-flow within each tubelet, which lets overlapping "
                 "clips share tubelets in the elements; stored in the checkpoint)")
      ->check(CLI::IsMember({"none", "temporal-residual", "normal-flow", "normal-flow-stabilised",
                             "tubelet-normal-flow"}));
  auto *fine_tune = app.add_flag_callback(
      "--fine-tune-backbone", [&o] { o.freeze_backbone = false; },
      "resnet-vit: train the ResNet with the rest, on clips (the resnet18-tvit-xs default)");
  app.add_flag_callback("--freeze-backbone", [&o] { o.freeze_backbone = true; },
                        "resnet-vit: keep the ResNet as initialised (or as --pretrained loaded "
                        "it) and train the temporal transformer alone, on cached per-frame "
                        "features: about 4x faster, less accurate (the resnet50-tvit default, "
                        "as in the study); any other model (--init): train the classifier head "
                        "alone")
      ->excludes(fine_tune);
  app.add_option("--backbone-input", o.backbone_input,
                 "resnet-vit: what the per-frame backbone sees: rgb (the frame), motion (normal "
                 "flow and grey difference of the frame against the one sampled before it), "
                 "motion-stabilised (the same after the pair's global translation, a moving "
                 "camera, was taken out) or two-stream (an RGB and a motion backbone, features "
                 "concatenated); default: the preset's (resnet18-tvit-xs: motion, "
                 "resnet50-tvit: rgb)")
      ->check(CLI::IsMember({"rgb", "motion", "motion-stabilised", "two-stream"}));
  app.add_option("--backbone-pool", o.backbone_pool,
                 "resnet-vit: how the backbone pools its last feature map into a frame's "
                 "feature: avg (torchvision's) or max (the strongest response, not diluted by "
                 "the rest of the frame); default: the preset's (avg)")
      ->check(CLI::IsMember({"avg", "max"}));
  app.add_option("--drop-path", o.drop_path,
                 "stochastic depth of the transformer encoders, rising over their layers to this "
                 "rate (default: the preset's, 0 for the xs presets)")
      ->check(CLI::Range(0.0, 0.9));
  app.add_option("--teacher", o.teacher,
                 "mini-vivit / vivit: distil from this ViViT checkpoint (same labels and clip "
                 "size): soft labels, last-layer attention maps and hidden-state relations, as "
                 "MiniViT")
      ->check(CLI::ExistingFile);
  app.add_option("--distill-temperature", o.distill_temperature, "softmax temperature T")
      ->capture_default_str();
  app.add_option("--distill-alpha", o.distill_alpha,
                 "weight of the teacher's soft labels; 1 - alpha goes to the true labels")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--distill-beta", o.distill_beta,
                 "weight of the attention and hidden-state terms (0 = soft labels only)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void add_benchmark_options(CLI::App &app, train::TrainOptions &o) {
  app.add_option("--prefetch", o.prefetch, "batches prepared ahead by the loader thread")
      ->capture_default_str();
  app.add_flag("--decode-every-step", o.decode_every_step,
               "benchmark: decode every training clip from its file, as the study did (slow)");
  app.add_flag("--no-feature-cache", o.no_feature_cache,
               "benchmark, resnet-vit: run the frozen backbone on every training clip instead of "
               "training on cached per-frame features");
  app.add_option("--dist-timeout", o.dist_timeout,
                 "data-parallel runs: seconds a rank waits for the others (to join, in every "
                 "all-reduce) before it stops with an error")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--stop-after", o.stop_after,
                 "stop after this epoch, as a kill would (for testing --resume)");
}

// The preset's recipe with the user's values; a usage error (exit status 2) when one is out of
// range, printed.
int apply_recipe(train::TrainOptions &o, const RecipeOverrides &r, const SamplingOptions &sampling) {
  const std::string preset = !o.init.empty()    ? vidcls::read_checkpoint_info(o.init).preset
                             : o.preset.empty() ? train::default_preset(o.model)
                                                : o.preset;
  o.recipe = train::default_recipe(preset);
  if (r.epochs) o.recipe.epochs = *r.epochs;
  if (r.batch_size) o.recipe.batch_size = *r.batch_size;
  if (r.repeats) o.recipe.repeats = *r.repeats;
  if (r.lr) o.recipe.lr = *r.lr;
  if (r.weight_decay) o.recipe.weight_decay = *r.weight_decay;
  if (r.warmup) o.recipe.warmup_epochs = *r.warmup;
  if (r.smoothing) o.recipe.label_smoothing = *r.smoothing;
  if (r.clip) o.recipe.clip_grad = *r.clip;
  if (r.optimizer) o.recipe.optimizer = *r.optimizer;
  if (!(o.distill_temperature > 0)) {
    std::fprintf(stderr, "vidcls-train: --distill-temperature must be positive\n");
    return 2;
  }
  if ((sampling.stride->count() > 0 && o.frame_stride < 1) ||
      (sampling.rate->count() > 0 && !(o.sample_rate > 0))) {
    std::fprintf(stderr, "vidcls-train: --frame-stride and --sample-rate must be positive\n");
    return 2;
  }
  if (o.recipe.epochs < 1 || o.recipe.batch_size < 1 || (r.repeats && *r.repeats < 1) ||
      !(o.recipe.lr > 0)) {
    std::fprintf(stderr, "vidcls-train: --epochs, --batch-size, --repeats and --lr must be "
                         "positive\n");
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  train::TrainOptions o;
  RecipeOverrides recipe;
  SamplingOptions sampling;
  CLI::App app{"Train a video classifier (ViViT, Mini-ViViT, ResNet + Temporal ViT) on a "
               "dataset folder (MSR DailyActivity3D, Kinetics-400 or a folder per class) or a "
               "clip cache. Each preset has a default recipe; the options override it."};
  add_data_options(app, o);
  add_recipe_options(app, recipe);
  add_model_options(app, o, sampling);
  add_benchmark_options(app, o);
  CLI11_PARSE(app, argc, argv);

  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
  return vidcls::run_tool("vidcls-train", [&] {
    if (const int usage = apply_recipe(o, recipe, sampling); usage != 0) return usage;
    train::train(o);
    return 0;
  });
}
