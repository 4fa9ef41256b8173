#include "engine/feature_ring.h"

#include <algorithm>

#include "vidcls/clip_sampling.h"

namespace vidcls {
namespace engine {

namespace {

FeatureRing &
ring_of (const Job &job)
{
  return static_cast<FeatureRing &> (*job.stream);
}

}  // namespace

std::map<FeatureKey, torch::Tensor> &
FeatureRing::follow (const ClipRecord &r)
{
  if (take_reset () || r.stream != stream_) {
    tracks_.clear ();
    stream_ = r.stream;
  }
  auto it = tracks_.find (r.object_id);
  if (it == tracks_.end ()) {
    if (tracks_.size () >= kMaxTracks) {
      auto oldest = std::min_element (tracks_.begin (), tracks_.end (),
          [] (const auto &a, const auto &b) { return a.second.used < b.second.used; });
      tracks_.erase (oldest);
    }
    it = tracks_.emplace (r.object_id, Track {r.epoch, 0, {}}).first;
  } else if (it->second.epoch != r.epoch) {
    it->second.features.clear ();
    it->second.epoch = r.epoch;
  }
  it->second.used = ++uses_;
  return it->second.features;
}

std::map<FeatureKey, torch::Tensor> &
FeatureRing::features_of (const ClipRecord &r)
{
  return tracks_.at (r.object_id).features;
}

void
FeatureRing::done (const ClipRecord &r)
{
  auto it = tracks_.find (r.object_id);
  if (it == tracks_.end ())
    return;
  if (r.partial && r.object_id != kWholeFrame) {
    tracks_.erase (it);         /* a track's leftover clip: it ended */
    return;
  }
  auto &f = it->second.features;
  f.erase (f.begin (), f.lower_bound (FeatureKey (r.first_sample, 0)));
}

/* A temporal token of a clip: the ring key of its feature and the clip rows of its frame and of
 * the earlier frame of its pair. */
struct FeatureRunner::Token
{
  FeatureKey key;
  int64_t row, earlier_row;
};

torch::Tensor
FeatureRunner::logits (const InferenceModel &m, const std::vector<Job> &jobs)
{
  PerFrameBackbone *net = m.model->per_frame_backbone ();
  if (net == nullptr)
    return whole_.logits (m, jobs);
  const size_t split = epoch_change (jobs);
  if (split > 0) {
    /* a stream restarted within the batch: its two epochs' frames share indices */
    std::vector<Job> head (jobs.begin (), jobs.begin () + split);
    std::vector<Job> tail (jobs.begin () + split, jobs.end ());
    return torch::cat ({logits (m, head), logits (m, tail)});
  }
  const int64_t T = m.model->input_shape ().frames;
  run_new_frames (m, *net, jobs, T);
  std::vector<torch::Tensor> per_clip;
  for (const auto &job : jobs) {
    const auto &features = ring_of (job).features_of (job.record);
    std::vector<torch::Tensor> seq;
    for (const auto &token : tokens (job, T, net->frame_context ()))
      seq.push_back (features.at (token.key));
    per_clip.push_back (torch::stack (seq));
  }
  for (const auto &job : jobs)
    ring_of (job).done (job.record);
  return net->classify_features (torch::stack (per_clip));
}

/* The tokens of a clip of T frames (padded as vidcls::clip_rows says), the first `context`
 * frames serving only as the earlier frame of a pair. */
std::vector<FeatureRunner::Token>
FeatureRunner::tokens (const Job &job, int64_t T, int64_t context)
{
  const auto rows = clip_rows (job.record.n_frames, T);
  std::vector<Token> out;
  for (int64_t k = context; k < T; ++k) {
    const int64_t earlier = rows[k - context];
    out.push_back ({FeatureKey (job.record.first_sample + earlier,
                job.record.first_sample + rows[k]), rows[k], earlier});
  }
  return out;
}

/* The first job whose stream and object had a clip of another epoch earlier in the batch (its
 * two epochs' frames share indices); 0: none. */
size_t
FeatureRunner::epoch_change (const std::vector<Job> &jobs)
{
  std::map<std::pair<const StreamState *, int64_t>, std::pair<std::string, uint64_t>> seen;
  for (size_t i = 0; i < jobs.size (); ++i) {
    const auto key = std::make_pair (jobs[i].record.stream, jobs[i].record.epoch);
    auto it = seen.emplace (std::make_pair (jobs[i].stream.get (), jobs[i].record.object_id),
        key).first;
    if (it->second != key)
      return i;
  }
  return 0;
}

/* Runs the backbone once over the frames of the batch that no ring has yet. */
void
FeatureRunner::run_new_frames (const InferenceModel &m, PerFrameBackbone &net,
    const std::vector<Job> &jobs, int64_t T)
{
  std::vector<torch::Tensor> frames, earlier;
  std::vector<std::pair<std::map<FeatureKey, torch::Tensor> *, FeatureKey>> owners;
  std::vector<FeatureRing *> rings;
  const int64_t context = net.frame_context ();
  for (const auto &job : jobs) {
    FeatureRing &ring = ring_of (job);
    auto &features = ring.follow (job.record);
    for (const auto &token : tokens (job, T, context)) {
      if (features.count (token.key) || std::find (owners.begin (), owners.end (),
              std::make_pair (&features, token.key)) != owners.end ())
        continue;
      frames.push_back (job.clip[token.row]);
      earlier.push_back (job.clip[token.earlier_row]);
      owners.emplace_back (&features, token.key);
      rings.push_back (&ring);
    }
  }
  if (frames.empty ())
    return;
  auto f = context > 0
      ? net.frame_features (torch::stack (frames).to (m.device, m.dtype),
          torch::stack (earlier).to (m.device, m.dtype))
      : net.frame_features (torch::stack (frames).to (m.device, m.dtype));
  for (size_t i = 0; i < owners.size (); ++i) {
    (*owners[i].first)[owners[i].second] = f[i];
    *rings[i]->computed += 1;
  }
}

}  // namespace engine
}  // namespace vidcls
