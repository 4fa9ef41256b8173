#include "vidcls/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <stdexcept>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "distill.h"
#include "distributed.h"
#include "loop.h"
#include "precision.h"
#include "run_state.h"
#include "vidcls/checkpoint.h"
#include "vidcls/device.h"
#include "vidcls/errors.h"
#include "vidcls/pretrained.h"
#include "vidcls/registry.h"
#include "vidcls/runtime.h"
#include "vidcls/safetensors.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/dataset.h"
#include "vidcls/train/evaluation.h"
#include "vidcls/train/feature_cache.h"
#include "vidcls/train/prefetch.h"
#include "vidcls/train/transforms.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidcls::train {

Recipe default_recipe(const std::string &preset) {
  Recipe r;
  // The CPU presets, trained from scratch: tuned on 6-class vidcls-synth MSR data (180
  // training videos). At a peak of 1e-3 (batch 16) vivit-xs collapses to uniform predictions
  // within three epochs and never leaves them (loss stuck at ln 6); 2e-4 learns.
  if (preset == "vivit-xs" || preset == "mini-vivit-xs") {
    r.epochs = 30;
    r.lr = 2e-4;
  } else if (preset == "resnet18-tvit-xs") {
    // The whole model, backbone included (its preset config): trained for 15 epochs, it led
    // the frozen backbone's 40 on validation in both synthetic regimes (the accuracy log that
    // README.md kept until docs/ replaced it; git history).
    r.epochs = 15;
    r.lr = 1e-3;
  } else {
    // The full-size presets, fine-tuned from image weights.
    r.epochs = 30;
    r.lr = 1e-4;
    r.batch_size = 8;
    r.repeats = 1;
  }
  return r;
}

std::string default_preset(const std::string &model) {
  if (model == "vivit") return "vivit-xs";
  if (model == "mini-vivit") return "mini-vivit-xs";
  if (model == "resnet-vit" || model == "resnet-tvit") return "resnet18-tvit-xs";
  throw std::invalid_argument("unknown model '" + model +
                              "' (known: vivit, mini-vivit, resnet-vit)");
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// SplitMix64 over a few words: independent seeds for each epoch and batch.
uint64_t mix(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t x = a;
  for (uint64_t v : {b, c}) {
    x ^= v + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
  }
  return x;
}

std::string git_revision() {
  FILE *p = ::popen("git rev-parse HEAD 2>/dev/null", "r");
  if (p == nullptr) return "";
  char buf[128] = {0};
  std::string out;
  if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string format_duration(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

void print_cache_report(const CacheReport &r) {
  std::printf(
      "cache %s: %zu videos (%zu decoded, %zu reused, %zu removed), %lld frames, "
      "%.1f MB, %.1f s%s\n",
      r.cache_dir.c_str(), r.videos, r.decoded, r.reused, r.removed,
      static_cast<long long>(r.frames), r.bytes / 1e6, r.seconds, r.written ? "" : " (up to date)");
  for (const auto &s : r.skipped)
    std::printf("  skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
  for (const auto &m : r.missing) std::printf("  missing %s\n", m.c_str());
  std::fflush(stdout);
}

// How a clip spec samples frames, for messages: "frame stride 2" or "7.5 fps".
std::string sampling(const ClipSpec &c) {
  char buf[64];
  if (c.sample_rate > 0)
    std::snprintf(buf, sizeof buf, "%.3g fps", c.sample_rate);
  else
    std::snprintf(buf, sizeof buf, "frame stride %d", c.frame_stride);
  return buf;
}

// The preset's clip spec with the run's temporal sampling.
std::string comma_list(const std::vector<std::string> &names) {
  std::string out;
  for (const auto &n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

ClipSpec training_spec(const TrainOptions &o, const ClipSpec &start) {
  ClipSpec spec = start;
  if (o.sample_rate > 0) {
    spec.sample_rate = o.sample_rate;
  } else if (o.frame_stride > 0) {
    spec.frame_stride = o.frame_stride;
    spec.sample_rate = 0;
  }
  spec.validate();
  return spec;
}

// The clip cache of the run's data: `data` itself, or the cache of the dataset folder (built or
// brought up to date first).
ClipCache open_cache(const TrainOptions &o, const ClipSpec &spec) {
  if (is_clip_cache(o.data)) {
    ClipCache cache = ClipCache::open(o.data);
    if (!o.split.empty() && o.split != cache.split())
      throw std::invalid_argument("the cache " + o.data + " holds split '" + cache.split() +
                                  "', not '" + o.split + "': give the dataset folder instead");
    if (o.val_fraction >= 0 && o.val_fraction != cache.val_fraction())
      throw std::invalid_argument("the cache " + o.data + " holds validation fraction " +
                                  std::to_string(cache.val_fraction()) +
                                  ": give the dataset folder to change it");
    for (const auto &s : cache.skipped())
      std::printf("  skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
    return cache;
  }
  CacheOptions co = cache_options_for(spec);
  co.split = o.split;
  co.val_fraction = o.val_fraction >= 0 ? o.val_fraction : kDefaultValFraction;
  const std::string dir = o.cache_dir.empty() ? default_cache_dir(o.data, co) : o.cache_dir;
  std::printf("clip cache of %s: %s (short side %d, validation and test %d)\n", o.data.c_str(),
              dir.c_str(), co.short_side, co.eval_short_side);
  std::fflush(stdout);
  print_cache_report(build_cache(o.data, dir, co));
  return ClipCache::open(dir);
}

struct Sample {
  size_t video = 0;  // cache index
  int64_t label = 0;
  std::vector<int64_t> sampled;  // frame indices FrameSampler takes
};

std::vector<Sample> make_samples(const ClipCache &cache, const std::vector<size_t> &videos,
                                 const ClipSpec &spec) {
  std::vector<Sample> out;
  for (size_t v : videos) {
    Sample s;
    s.video = v;
    s.label = cache.item(v).label;
    s.sampled = sampled_frame_indices(cache.timestamps_ns(v), spec, cache.item(v).fps);
    if (!s.sampled.empty()) out.push_back(std::move(s));
  }
  return out;
}

// The backbone's features of the sampled frames of `sides`' videos (sampled_frame_features).
void frame_features(PerFrameBackbone &net, const ClipCache &cache,
                    const std::vector<const std::vector<Sample> *> &sides, const ClipSpec &spec,
                    const torch::Device &device, std::vector<torch::Tensor> &out) {
  out.assign(cache.size(), torch::Tensor());
  for (const auto *side : sides) {
    for (const auto &s : *side)
      out[s.video] = sampled_frame_features(net, cache.frames(s.video), s.sampled, spec, device);
  }
}

// Everything a run reads: the cache, each side's samples, the clean evaluation inputs (the
// clipper's first window of every validation and test video, centre crop, or its backbone
// features when training on cached features).
struct RunData {
  ClipCache cache;
  std::vector<Sample> train, val, test;
  std::vector<torch::Tensor> features;  // per cache item, when training on cached features
  int64_t feature_context = 0;          // PerFrameBackbone::frame_context of those features
  EvalInputs val_inputs, test_inputs;
};

EvalInputs eval_inputs(const RunData &d, const std::vector<Sample> &side, const ClipSpec &spec) {
  EvalInputs in;
  if (side.empty()) return in;
  std::vector<torch::Tensor> xs;
  std::vector<int64_t> ys;
  for (const auto &s : side) {
    if (d.features.empty()) {
      // What vidcls-eval --views 1x1 looks at: the clipper's first window, the centre crop.
      xs.push_back(
          video_views({d.cache.frames(s.video), s.sampled, false, {}}, spec, {1, 1}).clips[0]);
    } else {
      const auto n = static_cast<int64_t>(s.sampled.size());
      const auto w = eval_windows(n, spec, 1).at(0);
      xs.push_back(
          d.features[s.video].index_select(0, feature_rows(w, n, spec.frames, d.feature_context)));
    }
    ys.push_back(s.label);
  }
  in.x = torch::stack(xs);
  in.y = torch::tensor(ys, torch::kInt64);
  return in;
}

// One vidcls-train run, from its options to its checkpoints.
class TrainingRun {
 public:
  explicit TrainingRun(const TrainOptions &o) : o_(o), out_(o.out) {}
  TrainResult run();

 private:
  void setup();
  void open_data();
  void build_model();
  void init_from_checkpoint();
  void resume();
  void build_optimiser();
  void print_setup() const;
  Batch make_batch(int epoch, size_t b, const std::vector<size_t> &order) const;
  EpochRow run_epoch(int epoch);
  void save_checkpoints(const EpochRow &row);
  nlohmann::json provenance(const EpochRow &row) const;
  void print_epoch(const EpochRow &row, const EpochResult &tr, bool improved) const;
  TrainResult report() const;
  void join();
  std::map<std::string, std::string> configuration() const;
  void resume_everywhere();
  void share_evaluation();
  ClassificationMetrics evaluate_all(const EvalInputs &shard, const EvalInputs &all);
  void reduce_epoch(EpochResult &tr) const;
  void dump_weights() const;
  bool writes() const { return dist_->rank() == 0; }

  const TrainOptions &o_;
  const fs::path out_;
  std::string preset_name_;
  const Preset *preset_ = nullptr;
  CheckpointInfo init_;  // --init's checkpoint
  ClipSpec spec_;
  Recipe recipe_;
  Augmentation aug_;
  LabelSwaps swaps_;  // what the mirrors of aug_ do to the labels
  RunData data_;
  ClassifierPtr model_;
  PerFrameBackbone *backbone_ = nullptr;
  bool use_features_ = false;
  std::unique_ptr<Distiller> distiller_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  NamedParams named_;
  Trainee trainee_;
  Schedule schedule_;
  int64_t batches_ = 0, per_epoch_ = 0;
  RunPosition pos_;
  std::vector<EpochRow> rows_;
  std::map<std::string, torch::Tensor> resume_extra_;
  std::string revision_;
  Clock::time_point start_;
  int first_epoch_ = 1;
  std::unique_ptr<Distributed> dist_;
  int64_t rank_clips_ = 0;             // training clips of this rank per epoch
  EvalInputs val_shard_, test_shard_;  // this rank's part of the evaluation inputs
};

void TrainingRun::setup() {
  if (!o_.init.empty()) {
    // Fine-tuning: the checkpoint decides the model and its preprocessing.
    init_ = read_checkpoint_info(o_.init);
    preset_name_ = init_.preset;
    preset_ = &find_preset(preset_name_);
    spec_ = training_spec(o_, init_.clip);
  } else {
    preset_name_ = o_.preset.empty() ? default_preset(o_.model) : o_.preset;
    preset_ = &find_preset(preset_name_);
    const std::string want_arch = o_.model == "resnet-vit" ? "resnet-tvit" : o_.model;
    if (preset_->architecture != want_arch) {
      throw std::invalid_argument("preset " + preset_name_ + " is a " + preset_->architecture +
                                  " model, not " + o_.model);
    }
    spec_ = training_spec(o_, preset_->clip);
  }
  recipe_ = o_.recipe;
  aug_.min_scale = recipe_.min_scale;
  aug_.max_scale = recipe_.max_scale;
  aug_.flip = o_.flip || !o_.flip_swap.empty();
  aug_.vflip = !o_.vflip_swap.empty();
  aug_.reverse = !o_.reverse_swap.empty();
  trainee_.device = parse_device(o_.device, false);
  trainee_.precision = precision_dtype(o_.precision, trainee_.device);
  trainee_.scaler.on = trainee_.precision == torch::kHalf;
  fs::create_directories(out_);
  revision_ = git_revision();
}

void TrainingRun::open_data() {
  // Ranks that share a file system share the clip cache of a dataset folder: built by the first,
  // found up to date by the others.
  dist_->one_at_a_time("the clip cache", [&] { data_.cache = open_cache(o_, spec_); });
  const ClipCache &cache = data_.cache;
  const auto train = cache.indices("train"), val = cache.indices("val"),
             test = cache.indices("test");
  if (train.empty()) throw std::runtime_error("the split has no training videos");
  std::printf(
      "data: %s layout, split %s, %zu classes, %zu train / %zu validation / %zu test "
      "videos (best.safetensors is chosen on validation)\n",
      cache.layout().c_str(), cache.split().c_str(), cache.classes().size(), train.size(),
      val.size(), test.size());
  if (val.empty())
    std::printf(
        "no validation videos (validation fraction %g): best.safetensors follows the "
        "last epoch\n",
        cache.val_fraction());
  const int eval_side = cache_options_for(spec_).eval_short_side;
  if (cache.eval_short_side() != eval_side)
    std::printf(
        "note: the cache stores validation and test frames at short side %d, not the "
        "clip spec's %d: their clips differ from the live pipeline's by more than "
        "rounding (give the dataset folder to store them as the spec needs)\n",
        cache.eval_short_side(), eval_side);
  if (!o_.flip_swap.empty())
    swaps_.h = parse_label_swaps(o_.flip_swap, cache.classes(), "--flip-swap");
  if (!o_.vflip_swap.empty())
    swaps_.v = parse_label_swaps(o_.vflip_swap, cache.classes(), "--vflip-swap");
  if (!o_.reverse_swap.empty())
    swaps_.t = parse_label_swaps(o_.reverse_swap, cache.classes(), "--reverse-swap");
  data_.train = make_samples(cache, train, spec_);
  data_.val = make_samples(cache, val, spec_);
  data_.test = make_samples(cache, test, spec_);
}

void TrainingRun::build_model() {
  torch::manual_seed(o_.seed);
  const auto classes = static_cast<int64_t>(data_.cache.classes().size());
  auto config = preset_config(preset_name_, classes);
  if (!o_.init.empty()) {
    config = init_.config;
    config["num_classes"] = classes;
  }
  if (!o_.input_transform.empty()) {
    if (preset_->architecture != "vivit" && preset_->architecture != "mini-vivit")
      throw std::invalid_argument("--input-transform is a ViViT option; preset " + preset_name_ +
                                  " is a " + preset_->architecture + " model");
    config["input_transform"] = o_.input_transform;
  }
  if (!o_.backbone_input.empty()) {
    if (preset_->architecture != "resnet-tvit")
      throw std::invalid_argument("--backbone-input is a resnet-vit option; preset " +
                                  preset_name_ + " is a " + preset_->architecture + " model");
    config["input"] = o_.backbone_input;
  }
  if (!o_.backbone_pool.empty()) {
    if (preset_->architecture != "resnet-tvit")
      throw std::invalid_argument("--backbone-pool is a resnet-vit option; preset " + preset_name_ +
                                  " is a " + preset_->architecture + " model");
    config["backbone"]["pool"] = o_.backbone_pool;
  }
  if (o_.drop_path >= 0) {
    for (const char *encoder : {"spatial", "temporal"})
      if (config.contains(encoder)) config[encoder]["drop_path"] = o_.drop_path;
  }
  model_ = make_model(preset_->architecture, config);
  if (!o_.init.empty()) init_from_checkpoint();
  backbone_ = model_->per_frame_backbone();
  if (o_.freeze_backbone && backbone_ != nullptr) {
    backbone_->set_backbone_frozen(*o_.freeze_backbone);
  } else if (o_.freeze_backbone && *o_.freeze_backbone) {
    // Any other architecture: the head trains, the rest stays as initialised (the training loop
    // keeps the frozen part in eval mode).
    const int64_t trainable = freeze_all_but_head(*model_);
    std::printf("--freeze-backbone: only the classifier head trains (%lld parameters: %s)\n",
                static_cast<long long>(trainable), comma_list(head_tensors(*model_)).c_str());
  }
  if (o_.no_feature_cache && (backbone_ == nullptr || !backbone_->backbone_frozen()))
    throw std::invalid_argument(
        "--no-feature-cache measures what the feature cache of a frozen "
        "backbone saves, and this run has none: add --freeze-backbone "
        "(resnet-vit)");
  use_features_ = backbone_ != nullptr && backbone_->backbone_frozen() && !o_.no_feature_cache;
  if (use_features_ && (aug_.flip || aug_.vflip || aug_.reverse))
    throw std::invalid_argument(
        "--flip, --flip-swap, --vflip-swap and --reverse-swap mirror the "
        "clips, and a frozen backbone trains on per-frame features "
        "cached from the unmirrored frames: add --no-feature-cache to "
        "mirror them (slower), or train the backbone");
  if (!o_.pretrained.empty()) {
    const auto r = import_pretrained(*model_, o_.pretrained);
    std::printf("pretrained: %s (%s): %zu tensors loaded, %zu left as initialised",
                o_.pretrained.c_str(), r.source_format.c_str(), r.loaded.size(), r.kept.size());
    for (size_t i = 0; i < std::min<size_t>(r.kept.size(), 4); ++i)
      std::printf("%s %s", i == 0 ? ":" : ",", r.kept[i].c_str());
    std::printf("\n");
  }
}

// Every tensor of the --init checkpoint but the classifier head's, unless the data set's
// classes are the checkpoint's own (then the head is kept too).
void TrainingRun::init_from_checkpoint() {
  const auto loaded = load_checkpoint(o_.init);
  const bool same_classes = init_.labels == data_.cache.classes();
  const auto head = head_tensors(*model_);
  const auto theirs = state_of(*loaded.model);
  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  for (auto &[name, t] : state_of(*model_)) {
    const bool is_head = std::find(head.begin(), head.end(), name) != head.end();
    if (is_head && !same_classes) continue;
    for (const auto &[their_name, u] : theirs) {
      if (their_name != name) continue;
      if (u.sizes() != t.sizes()) {
        throw MismatchError(o_.init + ": tensor '" + name + "' has shape " + c10::str(u.sizes()) +
                            ", the model " + c10::str(t.sizes()));
      }
      t.copy_(u);
      ++copied;
    }
  }
  std::printf("init: %s (%s, %s): %lld tensors; classifier head (%s) %s\n", o_.init.c_str(),
              init_.preset.c_str(), init_.architecture.c_str(), static_cast<long long>(copied),
              comma_list(head).c_str(),
              same_classes
                  ? "kept: the same classes"
                  : ("new for " + std::to_string(data_.cache.classes().size()) +
                     " classes (the checkpoint has " + std::to_string(init_.labels.size()) + ")")
                        .c_str());
}

void TrainingRun::resume() {
  const fs::path last_path = out_ / "last.safetensors";
  if (!o_.resume) return;
  if (!fs::exists(last_path)) {
    std::printf("--resume: no %s yet, starting from scratch\n", last_path.c_str());
    return;
  }
  auto loaded = load_checkpoint(last_path.string());
  if (loaded.info.preset != preset_name_ || loaded.info.labels != data_.cache.classes()) {
    throw MismatchError(last_path.string() + " was trained with preset " + loaded.info.preset +
                        " on other classes; --resume needs the same preset, options and data");
  }
  // The model's options (--input-transform, --backbone-input, --drop-path, --freeze-backbone)
  // are in its config: resuming under others would mix two trainings.
  const json was = loaded.model->config(), now = model_->config();
  if (was != now) {
    std::string differ;
    for (const auto &d : json::diff(was, now)) {
      const json::json_pointer at(d.at("path").get<std::string>());
      std::string name = at.to_string().substr(1);
      std::replace(name.begin(), name.end(), '/', '.');
      differ += (differ.empty() ? "" : ", ") + name + " " +
                (was.contains(at) ? was.at(at).dump() : "unset") + " -> " +
                (now.contains(at) ? now.at(at).dump() : "unset");
    }
    throw MismatchError(last_path.string() +
                        " was trained with another model configuration: " + differ +
                        "; --resume needs the same --input-transform, --backbone-input, "
                        "--drop-path and --fine-tune-backbone / --freeze-backbone");
  }
  if (loaded.info.clip.frame_stride != spec_.frame_stride ||
      loaded.info.clip.sample_rate != spec_.sample_rate) {
    throw MismatchError(last_path.string() + " sampled its clips at " + sampling(loaded.info.clip) +
                        ", not " + sampling(spec_) +
                        "; --resume needs the same --frame-stride / --sample-rate");
  }
  load_state(*model_, state_of(*loaded.model), last_path.string());
  for (auto &[k, v] : loaded.extra) resume_extra_[k] = v;
  pos_ = read_run_position(resume_extra_, last_path.string());
  rows_ = read_metrics(out_ / "metrics.csv", pos_.epoch);
  std::printf("resuming after epoch %d (step %lld, best validation top-1 %.1f%% at epoch %d)\n",
              pos_.epoch, static_cast<long long>(pos_.step), 100.0 * pos_.best.val_top1,
              pos_.best.epoch);
}

void TrainingRun::build_optimiser() {
  std::vector<torch::Tensor> params;
  for (auto &p : model_->named_parameters()) {
    if (p.value().requires_grad()) {
      named_.emplace_back(p.key(), p.value());
      params.push_back(p.value());
    }
  }
  optimizer_ = make_optimizer(recipe_, params);
  if (!resume_extra_.empty())
    restore_optimizer_state(*optimizer_, named_, recipe_.optimizer, resume_extra_,
                            (out_ / "last.safetensors").string());
  trainee_.model = model_.get();
  trainee_.optimizer = optimizer_.get();
  trainee_.params = params;
  trainee_.distiller = distiller_.get();
  trainee_.forward = [this](const torch::Tensor &x) {
    return use_features_ ? backbone_->classify_features(x) : model_->forward(x);
  };
  if (recipe_.repeats <= 0) {
    const auto n = static_cast<int64_t>(data_.train.size());
    recipe_.repeats = static_cast<int>(
        std::max<int64_t>(4, (recipe_.min_epoch_clips + n - 1) / std::max<int64_t>(1, n)));
  }
  // The DistributedSampler contract: an epoch's order padded to a multiple of the world size,
  // rank r taking positions r, r + W, ...; --batch-size is per rank.
  per_epoch_ = static_cast<int64_t>(data_.train.size()) * recipe_.repeats;
  const int64_t world = dist_->world_size();
  rank_clips_ = (per_epoch_ + world - 1) / world;
  batches_ = (rank_clips_ + recipe_.batch_size - 1) / recipe_.batch_size;
  std::vector<std::string> names;
  for (const auto &[name, p] : named_) names.push_back(name);
  dist_->attach(names, params);
  if (dist_->enabled()) trainee_.sync = dist_.get();
  schedule_.peak = recipe_.lr;
  schedule_.total_steps = batches_ * recipe_.epochs;
  schedule_.warmup_steps = static_cast<int64_t>(std::llround(recipe_.warmup_epochs * batches_));
}

void TrainingRun::print_setup() const {
  int64_t n_params = 0;
  for (const auto &p : trainee_.params) n_params += p.numel();
  std::printf(
      "model %s (%s), %lld trainable parameters%s; recipe: %s lr %.3g, wd %.3g, warmup "
      "%.3g epochs, cosine, label smoothing %.2f, clip %.2f, batch %d, %d epochs x %lld "
      "steps (%d clips per video), seed %llu, %s\n",
      preset_name_.c_str(), preset_->architecture.c_str(), static_cast<long long>(n_params),
      use_features_ ? " (on cached backbone features)" : "", recipe_.optimizer.c_str(), recipe_.lr,
      recipe_.weight_decay, recipe_.warmup_epochs, recipe_.label_smoothing, recipe_.clip_grad,
      recipe_.batch_size, recipe_.epochs, static_cast<long long>(batches_), recipe_.repeats,
      static_cast<unsigned long long>(o_.seed), o_.device.c_str());
  if (o_.drop_path >= 0) std::printf("stochastic depth: up to %.2f per encoder\n", o_.drop_path);
  if (aug_.flip || aug_.vflip || aug_.reverse) {
    auto said = [](bool on, const std::string &swap) {
      return !on ? std::string("off") : swap.empty() ? std::string("on") : "swapping " + swap;
    };
    std::printf("mirrors (each p = 1/2): left-right %s; top-bottom %s; in time %s\n",
                said(aug_.flip, o_.flip_swap).c_str(), said(aug_.vflip, o_.vflip_swap).c_str(),
                said(aug_.reverse, o_.reverse_swap).c_str());
  }
  if (trainee_.precision != torch::kFloat32) {
    std::printf("mixed precision: forward passes autocast to %s%s\n", o_.precision.c_str(),
                trainee_.scaler.on ? ", dynamic loss scaling" : "");
  }
  std::printf("clips: %d frames, %s, %dx%d\n", spec_.frames, sampling(spec_).c_str(), spec_.width,
              spec_.height);
  if (dist_->enabled()) {
    std::printf(
        "data-parallel: %d processes, backend %s, batch %d per rank = %lld global, %lld clips "
        "per rank per epoch, timeout %.0f s\n",
        dist_->world_size(), dist_->backend(), recipe_.batch_size,
        static_cast<long long>(recipe_.batch_size) * dist_->world_size(),
        static_cast<long long>(rank_clips_), dist_->timeout_seconds());
  }
  std::fflush(stdout);
}

// Batch b of this rank. A clip's randomness comes from its position in the epoch's global order,
// so a run of W ranks with batch B draws the same clips, augmented the same way, as one process
// with batch W x B.
Batch TrainingRun::make_batch(int epoch, size_t b, const std::vector<size_t> &order) const {
  const size_t begin = b * recipe_.batch_size;
  const size_t end = std::min<size_t>(begin + recipe_.batch_size, rank_clips_);
  std::vector<torch::Tensor> xs;
  std::vector<int64_t> ys;
  for (size_t i = begin; i < end; ++i) {
    const size_t position = i * dist_->world_size() + dist_->rank();
    std::mt19937_64 rng(mix(o_.seed, epoch, 1000 + position));
    const Sample &s = data_.train[order[position]];
    Mirrors mirrored;
    if (use_features_) {
      const auto n = static_cast<int64_t>(s.sampled.size());
      const auto w = random_window_record(n, spec_.frames, rng);
      xs.push_back(data_.features[s.video].index_select(
          0, feature_rows(w, n, spec_.frames, data_.feature_context)));
    } else if (o_.decode_every_step && data_.cache.item(s.video).object_id < 0) {
      // (a person's crops exist only in the cache: they are read from it)
      // The notebook way: the whole file decoded and scaled for one clip.
      const auto &item = data_.cache.item(s.video);
      auto frames = resize_short_side(decode_video(item.path).frames,
                                      static_cast<int>(std::min(item.height, item.width)));
      xs.push_back(train_clip(frames, s.sampled, spec_, aug_, rng, &mirrored));
    } else {
      xs.push_back(train_clip(data_.cache.frames(s.video), s.sampled, spec_, aug_, rng, &mirrored));
    }
    ys.push_back(swaps_(s.label, mirrored));
  }
  return Batch{torch::stack(xs), torch::tensor(ys, torch::kInt64)};
}

EpochRow TrainingRun::run_epoch(int epoch) {
  const auto t0 = Clock::now();
  // Everything random in an epoch comes from (seed, epoch): a resumed run repeats it.
  torch::manual_seed(mix(o_.seed, static_cast<uint64_t>(epoch), 1));
  std::vector<size_t> order(per_epoch_);
  for (int64_t i = 0; i < per_epoch_; ++i) order[i] = i % data_.train.size();
  std::shuffle(order.begin(), order.end(), std::mt19937_64(mix(o_.seed, epoch, 2)));
  for (size_t i = 0; order.size() < static_cast<size_t>(rank_clips_ * dist_->world_size()); ++i)
    order.push_back(order[i]);  // padded as DistributedSampler pads
  PrefetchLoader loader(
      static_cast<size_t>(batches_), [&](size_t b) { return make_batch(epoch, b, order); },
      static_cast<size_t>(std::max(1, o_.prefetch)));
  const int64_t skipped_before = trainee_.scaler.skipped;
  EpochResult tr;
  try {
    tr = train_one_epoch(trainee_, loader, recipe_, schedule_, pos_.step, epoch);
  } catch (const std::exception &e) {
    // The gradient all-reduce runs inside backward(): Gloo's failures come out of it.
    const bool comm = dynamic_cast<const c10::Error *>(&e) != nullptr ||
                      std::string(e.what()).find("gloo") != std::string::npos;
    if (!dist_->enabled() || !comm) throw;
    dist_->failed("training epoch " + std::to_string(epoch) + " (gradient all-reduce)", e);
  }
  reduce_epoch(tr);
  if (trainee_.scaler.skipped > skipped_before) {
    std::printf("  fp16: %lld steps skipped for non-finite gradients, loss scale now %g\n",
                static_cast<long long>(trainee_.scaler.skipped - skipped_before),
                trainee_.scaler.scale);
  }
  EpochRow row;
  row.epoch = epoch;
  row.step = pos_.step;
  row.lr = tr.lr;
  row.train_loss = tr.loss;
  row.train_acc = tr.acc;
  if (!data_.val_inputs.empty()) {
    const auto m = evaluate_all(val_shard_, data_.val_inputs);
    row.val_loss = m.loss();
    row.val_top1 = m.top1();
    row.val_top5 = m.top5();
  }
  if (!data_.test_inputs.empty()) {
    const auto m = evaluate_all(test_shard_, data_.test_inputs);
    row.test_loss = m.loss();
    row.test_top1 = m.top1();
    row.test_top5 = m.top5();
  }
  row.data_wait_share = tr.seconds > 0 ? tr.wait / tr.seconds : 0;
  const bool improved = pos_.best.improved_by(row, !data_.val_inputs.empty());
  if (improved) pos_.best = {epoch, row.val_top1, row.val_loss};
  pos_.epoch = epoch;
  if (writes()) save_checkpoints(row);
  row.epoch_seconds = seconds_since(t0);
  rows_.push_back(row);
  if (writes()) {
    write_metrics(out_ / "metrics.csv", rows_);
    write_curves(out_ / "curves.png", rows_);
  }
  print_epoch(row, tr, improved);
  if (dist_->enabled()) {
    const auto c = dist_->take_comm_stats();
    const double steps = std::max<int64_t>(1, c.steps), step_s = tr.seconds / steps;
    std::printf(
        "  rank 0 all-reduce: %.1f buckets/step, %.2f ms/step in flight (overlapping backward), "
        "%.2f ms/step waited after backward = %.1f%% of the %.1f ms step\n",
        c.buckets / steps, 1e3 * c.allreduce_seconds / steps, 1e3 * c.wait_seconds / steps,
        step_s > 0 ? 100 * c.wait_seconds / steps / step_s : 0.0, 1e3 * step_s);
  }
  if (distiller_ != nullptr)
    std::printf("  distillation: soft-label KL %.4f  attention MSE %.3g  hidden KL %.4f\n", tr.kd,
                tr.attention, tr.hidden);
  std::fflush(stdout);
  return row;
}

nlohmann::json TrainingRun::provenance(const EpochRow &row) const {
  const ClipCache &cache = data_.cache;
  json p;
  p["dataset"] = cache.dataset_dir();
  p["layout"] = cache.layout();
  p["split"] = cache.split();
  p["val_fraction"] = cache.val_fraction();
  p["cache"] = cache.cache_dir();
  p["epochs"] = row.epoch;
  p["schedule_epochs"] = recipe_.epochs;
  p["seed"] = o_.seed;
  p["recipe"] = {{"optimizer", recipe_.optimizer},
                 {"lr", recipe_.lr},
                 {"weight_decay", recipe_.weight_decay},
                 {"warmup_epochs", recipe_.warmup_epochs},
                 {"label_smoothing", recipe_.label_smoothing},
                 {"clip_grad", recipe_.clip_grad},
                 {"batch_size", recipe_.batch_size},
                 {"repeats", recipe_.repeats},
                 {"flip", aug_.flip},
                 {"flip_swap", o_.flip_swap},
                 {"vflip_swap", o_.vflip_swap},
                 {"reverse_swap", o_.reverse_swap},
                 {"scale", {recipe_.min_scale, recipe_.max_scale}},
                 {"precision", o_.precision}};
  p["metrics"] = {{"train_loss", row.train_loss}, {"train_acc", row.train_acc},
                  {"val_loss", row.val_loss},     {"val_top1", row.val_top1},
                  {"val_top5", row.val_top5},     {"test_loss", row.test_loss},
                  {"test_top1", row.test_top1},   {"test_top5", row.test_top5}};
  p["selected_on"] = "validation";
  if (distiller_ != nullptr)
    p["distillation"] = {{"teacher", distiller_->teacher_path()},
                         {"temperature", o_.distill_temperature},
                         {"alpha", o_.distill_alpha},
                         {"beta", o_.distill_beta},
                         {"layer_terms", distiller_->layer_terms()}};
  if (!revision_.empty()) p["git_revision"] = revision_;
  if (!o_.command_line.empty()) p["command"] = o_.command_line;
  return p;
}

// last.safetensors every epoch, with what --resume needs; best.safetensors when the epoch is the
// best on validation so far.
void TrainingRun::save_checkpoints(const EpochRow &row) {
  CheckpointInfo info;
  info.preset = preset_name_;
  info.labels = data_.cache.classes();
  info.clip = spec_;
  info.provenance = provenance(row);
  model_->to(torch::kCPU);
  auto extra = optimizer_state(*optimizer_, named_, recipe_.optimizer);
  add_run_position(extra, pos_);
  if (pos_.best.epoch == row.epoch)
    save_checkpoint((out_ / "best.safetensors").string(), *model_, info);
  save_checkpoint((out_ / "last.safetensors").string(), *model_, info, extra);
  model_->to(trainee_.device);
}

void TrainingRun::print_epoch(const EpochRow &row, const EpochResult &tr, bool improved) const {
  const double elapsed = seconds_since(start_);
  const int done = row.epoch - first_epoch_ + 1;
  const double eta = elapsed / done * (recipe_.epochs - row.epoch);
  std::printf(
      "epoch %3d/%d  loss %.4f  train %5.1f%%  val top-1 %5.1f%%%s  test top-1 %5.1f%% "
      "top-5 %5.1f%%  lr %.2e  %.0f clips/s  data wait %.1f%%  %.1f s  ETA %s\n",
      row.epoch, recipe_.epochs, row.train_loss, 100 * row.train_acc, 100 * row.val_top1,
      improved ? " *" : "  ", 100 * row.test_top1, 100 * row.test_top5, row.lr,
      tr.seconds > 0 ? tr.samples / tr.seconds : 0.0, 100 * row.data_wait_share, row.epoch_seconds,
      format_duration(eta).c_str());
}

TrainResult TrainingRun::run() {
  configure_runtime();
  join();
  setup();
  open_data();
  build_model();
  dist_->check_same_configuration(configuration());
  resume_everywhere();
  model_->to(trainee_.device);
  // Every rank starts from rank 0's weights (its initialisation, or what it resumed from).
  {
    std::vector<torch::Tensor> state;
    for (const auto &p : model_->parameters()) state.push_back(p);
    for (const auto &b : model_->buffers()) state.push_back(b);
    dist_->broadcast(state);
  }
  if (!o_.teacher.empty())
    distiller_ = make_distiller(o_, *model_, data_.cache.classes(), spec_, trainee_.device);
  if (use_features_) {
    const auto t0 = Clock::now();
    frame_features(*backbone_, data_.cache, {&data_.train, &data_.val, &data_.test}, spec_,
                   trainee_.device, data_.features);
    data_.feature_context = backbone_->frame_context();
    std::printf(
        "backbone features of %zu videos cached in %.1f s (frozen backbone: the temporal "
        "model trains on features of the clean frames, temporal jitter only)\n",
        data_.train.size() + data_.val.size() + data_.test.size(), seconds_since(t0));
  }
  data_.val_inputs = eval_inputs(data_, data_.val, spec_);
  data_.test_inputs = eval_inputs(data_, data_.test, spec_);
  share_evaluation();
  build_optimiser();
  print_setup();

  start_ = Clock::now();
  first_epoch_ = pos_.epoch + 1;
  for (int epoch = first_epoch_; epoch <= recipe_.epochs; ++epoch) {
    run_epoch(epoch);
    if (o_.stop_after > 0 && epoch >= o_.stop_after) {
      std::printf("stopping after epoch %d (--stop-after)\n", epoch);
      break;
    }
  }
  dump_weights();
  return report();
}

// Joins a data-parallel job when the environment describes one (torchrun or the same variables);
// ranks other than 0 print nothing but their errors.
void TrainingRun::join() {
  const Launch launch = launch_from_environment();
  if (launch.distributed() && launch.local_world_size > 1 &&
      std::getenv("OMP_NUM_THREADS") == nullptr && std::getenv("VIDCLS_NUM_THREADS") == nullptr) {
    // The processes of one machine share its cores.
    torch::set_num_threads(std::max(1, torch::get_num_threads() / launch.local_world_size));
  }
  dist_ = std::make_unique<Distributed>(launch, o_.dist_timeout);
  if (dist_->rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
    throw std::runtime_error("cannot silence the standard output of rank " +
                             std::to_string(dist_->rank()));
}

// The options and data that change what is computed: every rank must have rank 0's.
std::map<std::string, std::string> TrainingRun::configuration() const {
  const ClipCache &c = data_.cache;
  std::string classes;
  for (const auto &l : c.classes()) classes += l + ",";
  auto str = [](double v) { return nlohmann::json(v).dump(); };
  return {{"--model / --preset", preset_name_},
          {"data (layout, split, classes)", c.layout() + " " + c.split() + " " + classes},
          {"data (train/val/test videos)", std::to_string(data_.train.size()) + "/" +
                                               std::to_string(data_.val.size()) + "/" +
                                               std::to_string(data_.test.size())},
          {"--val-fraction", str(c.val_fraction())},
          {"--frame-stride / --sample-rate", sampling(spec_)},
          {"--batch-size", std::to_string(recipe_.batch_size)},
          {"--epochs", std::to_string(recipe_.epochs)},
          {"--repeats", std::to_string(recipe_.repeats)},
          {"--lr", str(recipe_.lr)},
          {"--weight-decay", str(recipe_.weight_decay)},
          {"--warmup-epochs", str(recipe_.warmup_epochs)},
          {"--label-smoothing", str(recipe_.label_smoothing)},
          {"--clip-grad", str(recipe_.clip_grad)},
          {"--optimizer", recipe_.optimizer},
          {"--seed", std::to_string(o_.seed)},
          {"--precision", o_.precision},
          {"--flip", std::to_string(o_.flip)},
          {"--flip-swap", o_.flip_swap},
          {"--vflip-swap", o_.vflip_swap},
          {"--reverse-swap", o_.reverse_swap},
          {"--fine-tune-backbone / --freeze-backbone", backbone_ == nullptr           ? ""
                                                       : backbone_->backbone_frozen() ? "frozen"
                                                                                      : "trained"},
          {"--input-transform", o_.input_transform},
          {"--backbone-input", o_.backbone_input},
          {"--backbone-pool", o_.backbone_pool},
          {"--drop-path", str(o_.drop_path)},
          {"--no-feature-cache", std::to_string(o_.no_feature_cache)},
          {"--teacher (given)", std::to_string(!o_.teacher.empty())},
          {"--distill-*",
           str(o_.distill_temperature) + " " + str(o_.distill_alpha) + " " + str(o_.distill_beta)},
          {"--resume", std::to_string(o_.resume)},
          {"--stop-after", std::to_string(o_.stop_after)},
          {"WORLD_SIZE", std::to_string(dist_->world_size())}};
}

// --resume: rank 0 reads OUT/last.safetensors and sends the optimiser state and the run position
// to the others (the weights follow with the initial broadcast), so no rank but 0 needs the file.
void TrainingRun::resume_everywhere() {
  if (dist_->rank() == 0) resume();
  if (!o_.resume || !dist_->enabled()) return;
  dist_->broadcast_named(resume_extra_);
  if (dist_->rank() != 0 && !resume_extra_.empty())
    pos_ = read_run_position(resume_extra_, "rank 0's last.safetensors");
}

// Rank r evaluates validation and test videos r, r + W, ...
void TrainingRun::share_evaluation() {
  auto shard = [&](const EvalInputs &all) {
    if (all.empty() || !dist_->enabled()) return all;
    const auto idx = torch::arange(dist_->rank(), all.x.size(0), dist_->world_size());
    return EvalInputs{all.x.index_select(0, idx), all.y.index_select(0, idx)};
  };
  val_shard_ = shard(data_.val_inputs);
  test_shard_ = shard(data_.test_inputs);
}

// Metrics over every video of a side: each rank's logits gathered, so every rank computes the same
// numbers (and chooses the same best epoch).
ClassificationMetrics TrainingRun::evaluate_all(const EvalInputs &shard, const EvalInputs &all) {
  const auto &classes = data_.cache.classes();
  const auto logits = eval_logits(trainee_, shard, static_cast<int64_t>(classes.size()));
  ClassificationMetrics m(classes);
  m.add(dist_->all_gather_strided(logits, all.x.size(0)), all.y);
  return m;
}

// The epoch's training loss and accuracy over every rank's clips.
void TrainingRun::reduce_epoch(EpochResult &tr) const {
  if (!dist_->enabled()) return;
  const double n = static_cast<double>(tr.samples);
  auto sums = torch::tensor(
      {tr.loss * n, tr.acc * n, n, tr.kd * n, tr.attention * n, tr.hidden * n}, torch::kFloat64);
  dist_->all_reduce_sum(sums);
  const auto v = sums.accessor<double, 1>();
  const double total = std::max(1.0, v[2]);
  tr.loss = v[0] / total;
  tr.acc = v[1] / total;
  tr.samples = static_cast<int64_t>(v[2]);
  tr.kd = v[3] / total;
  tr.attention = v[4] / total;
  tr.hidden = v[5] / total;
}

// VIDCLS_TRAIN_DUMP_WEIGHTS=DIR: every rank writes its final weights to DIR/rank<R>.safetensors
// (the tests compare the ranks' copies).
void TrainingRun::dump_weights() const {
  const char *dir = std::getenv("VIDCLS_TRAIN_DUMP_WEIGHTS");
  if (dir == nullptr || *dir == '\0') return;
  fs::create_directories(dir);
  model_->to(torch::kCPU);
  write_safetensors(
      (fs::path(dir) / ("rank" + std::to_string(dist_->rank()) + ".safetensors")).string(),
      state_of(*model_), {});
  model_->to(trainee_.device);
}

TrainResult TrainingRun::report() const {
  TrainResult r;
  r.best_epoch = pos_.best.epoch;
  r.best_val_top1 = pos_.best.val_top1;
  for (const auto &row : rows_) {
    if (row.epoch == pos_.best.epoch) r.best_test_top1 = row.test_top1;
  }
  if (!rows_.empty()) r.last_test_top1 = rows_.back().test_top1;
  std::printf(
      "best.safetensors: epoch %d, chosen on validation top-1 %.1f%%, its test top-1 "
      "%.1f%% (the test side chose nothing); last.safetensors: epoch %d, test top-1 "
      "%.1f%%\n",
      r.best_epoch, 100 * std::max(0.0, r.best_val_top1), 100 * r.best_test_top1,
      rows_.empty() ? 0 : rows_.back().epoch, 100 * r.last_test_top1);
  return r;
}

}  // namespace

TrainResult train(const TrainOptions &o) {
  const Launch launch = launch_from_environment();
  try {
    return TrainingRun(o).run();
  } catch (const std::exception &e) {
    if (!launch.distributed()) throw;
    // Which process of the job said it.
    throw std::runtime_error("rank " + std::to_string(launch.rank) + ": " + error_message(e));
  }
}

}  // namespace vidcls::train
