/* Token reuse across overlapping clips, for models that classify a sequence of tokens each
 * computed from a window of frames alone (vidcls::TokenSequenceModel): ViViT's factorised
 * encoder (a token per tubelet, its spatial encoding) and ResNet + Temporal ViT (a token per
 * frame, or per motion pair). Each element keeps the tokens of its recent clips in a ring, keyed
 * by the sampled frames (indices in the clipper's epoch) of their window, so a window goes
 * through the expensive part once however much consecutive clips overlap; only the sequence
 * model (the temporal transformer) runs per clip. The logits equal those of the whole clips
 * (WholeClipRunner) up to float rounding; the engine's unit tests check it. A model whose tokens
 * depend on more than their window (a ViViT input transform that looks at the whole clip) runs
 * whole clips, as does an element with reuse turned off.
 */
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/model.h"

namespace vidcls {
namespace engine {

/* The first and last sampled frame (indices in the clipper's epoch) of a token's window: a
 * tubelet's first and last frame, a motion pair's earlier frame and the frame itself, the same
 * index twice for a frame alone. A padded clip repeats its last frame, so the window of a padded
 * tubelet ends early, and a still pair names one frame twice: neither is mistaken for a window of
 * the frames that follow. */
using FeatureKey = std::pair<uint64_t, uint64_t>;

/* One element's counts of tokens (ViViT: spatial encodings of tubelets; ResNet + Temporal ViT:
 * backbone passes of frames) computed and taken from the ring, for its statistics. */
struct FeatureCounters
{
  std::atomic<uint64_t> computed{0};
  std::atomic<uint64_t> reused{0};
  void clear () { computed = 0; reused = 0; }
};

/* The features of one stream's clips: for whole-frame clips one ring, for clips of tracked
 * objects one ring per object (its clips' frame indices count in the track's own epoch). Clips of
 * a track come in order, so features of frames before a clip's first one are let go; the ring of
 * an object whose track ended (its last, partial clip) is freed, and at most kMaxTracks object
 * rings are kept (the one used longest ago goes first: its object's next clip recomputes). */
class FeatureRing : public StreamState
{
public:
  /* Above the largest batch (batch-size is at most 64): a batch's own rings are never evicted
   * while it runs. */
  static constexpr size_t kMaxTracks = 256;

  /* `counters` (the element's statistics) must outlive the ring. */
  explicit FeatureRing (FeatureCounters *counters) : counters (counters) {}

  /* The features of the clip's track, started over on a new epoch of it, a new stream, a flush
   * or another model (its `generation`: a swap may land between any two batches). */
  std::map<FeatureKey, torch::Tensor> &follow (const ClipRecord &r, uint64_t generation);
  /* The features of the clip's track as they are (after follow). */
  std::map<FeatureKey, torch::Tensor> &features_of (const ClipRecord &r);
  /* After the clip was classified: frames before it are let go, a finished track's ring too. */
  void done (const ClipRecord &r);
  size_t tracks () const { return tracks_.size (); }

  FeatureCounters *counters;
  /* false: this element's clips run whole (its `reuse` property), nothing kept */
  std::atomic<bool> reuse{true};

private:
  struct Track
  {
    uint64_t epoch = 0;
    uint64_t used = 0;
    std::map<FeatureKey, torch::Tensor> features;
  };
  std::map<int64_t, Track> tracks_;     /* by object id (kWholeFrame: whole frames) */
  std::string stream_;
  uint64_t generation_ = 0;
  uint64_t uses_ = 0;
};

/* A clip takes the tokens its element's ring has, the windows it brings new go through the model
 * (those of every clip of the batch, whatever its stream, in one pass), and only the sequence
 * model runs per clip. A job without a FeatureRing, of an element with reuse off, or of a model
 * whose tokens cannot be computed on their own runs whole. */
class FeatureRunner : public ClipRunner
{
public:
  torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) override;

private:
  struct Token;
  static std::vector<Token> tokens (const Job &job, const TokenSequenceModel &net, int64_t T);
  static size_t epoch_change (const std::vector<Job> &jobs);
  torch::Tensor reused_logits (const InferenceModel &m, TokenSequenceModel &net,
      const std::vector<Job> &jobs);
  torch::Tensor whole_logits (const InferenceModel &m, const TokenSequenceModel *net,
      const std::vector<Job> &jobs);
  void run_new_tokens (const InferenceModel &m, TokenSequenceModel &net,
      const std::vector<Job> &jobs, int64_t T);

  WholeClipRunner whole_;
};

}  // namespace engine
}  // namespace vidcls
