/* Per-frame feature reuse for models with a per-frame backbone (ResNet + Temporal ViT): each
 * stream keeps the backbone features of its recent sampled frames in a ring, keyed by their
 * index in the clipper's epoch, so a frame goes through the backbone once however much
 * consecutive clips overlap; only the temporal model runs per clip. With a motion or two-stream
 * backbone a frame's feature is that of the pair it makes with the frame sampled before it, which
 * the clip holds too, and is kept the same way. The logits equal those of the whole clips
 * (WholeClipRunner) up to float rounding; the engine's unit tests check it.
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

/* The sampled frames (indices in the clipper's epoch) a feature is computed from: the earlier
 * frame of a motion pair and the frame itself (the same index twice for a frame alone, or for the
 * still pair that a padded clip's repeated last frame makes). */
using FeatureKey = std::pair<uint64_t, uint64_t>;

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

  /* `computed` counts the frames that went through the backbone (the element's statistics);
   * it must outlive the ring. */
  explicit FeatureRing (std::atomic<uint64_t> *computed) : computed (computed) {}

  /* The features of the clip's track, started over on a new epoch of it, a new stream, a flush
   * or a model swap. */
  std::map<FeatureKey, torch::Tensor> &follow (const ClipRecord &r);
  /* The features of the clip's track as they are (after follow). */
  std::map<FeatureKey, torch::Tensor> &features_of (const ClipRecord &r);
  /* After the clip was classified: frames before it are let go, a finished track's ring too. */
  void done (const ClipRecord &r);
  size_t tracks () const { return tracks_.size (); }

  std::atomic<uint64_t> *computed;

private:
  struct Track
  {
    uint64_t epoch = 0;
    uint64_t used = 0;
    std::map<FeatureKey, torch::Tensor> features;
  };
  std::map<int64_t, Track> tracks_;     /* by object id (kWholeFrame: whole frames) */
  std::string stream_;
  uint64_t uses_ = 0;
};

/* A clip takes the features its stream's ring has, the frames it brings new go through the
 * backbone (those of every clip of the batch, whatever its stream, in one pass), and only the
 * temporal model runs per clip. Every job's stream must be a FeatureRing. A model without a
 * per-frame backbone runs whole clips. */
class FeatureRunner : public ClipRunner
{
public:
  torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) override;

private:
  struct Token;
  static std::vector<Token> tokens (const Job &job, int64_t T, int64_t context);
  static size_t epoch_change (const std::vector<Job> &jobs);
  void run_new_frames (const InferenceModel &m, PerFrameBackbone &net,
      const std::vector<Job> &jobs, int64_t T);

  WholeClipRunner whole_;
};

}  // namespace engine
}  // namespace vidcls
