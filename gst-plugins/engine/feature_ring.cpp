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
FeatureRing::follow (const ClipRecord &r, uint64_t generation)
{
  if (take_reset () || r.stream != stream_ || generation != generation_) {
    tracks_.clear ();
    stream_ = r.stream;
    generation_ = generation;
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

/* A token of a clip: the ring key of its window and the clip rows it is computed from. */
struct FeatureRunner::Token
{
  FeatureKey key;
  std::vector<int64_t> rows;
};

namespace {

FeatureRing *
ring_or_null (const Job &job)
{
  return dynamic_cast<FeatureRing *> (job.stream.get ());
}

bool
reuses (const Job &job)
{
  const FeatureRing *ring = ring_or_null (job);
  return ring != nullptr && ring->reuse;
}

}  // namespace

torch::Tensor
FeatureRunner::logits (const InferenceModel &m, const std::vector<Job> &jobs)
{
  TokenSequenceModel *net = m.model->token_sequence ();
  if (net == nullptr || !net->token_reuse_blocker ().empty ())
    return whole_logits (m, net, jobs);
  std::vector<Job> ring_jobs, whole_jobs;
  std::vector<int64_t> ring_rows, whole_rows;
  for (size_t i = 0; i < jobs.size (); ++i) {
    const bool reuse = reuses (jobs[i]);   /* once: the property may change meanwhile */
    (reuse ? ring_jobs : whole_jobs).push_back (jobs[i]);
    (reuse ? ring_rows : whole_rows).push_back (static_cast<int64_t> (i));
  }
  if (whole_jobs.empty ())
    return reused_logits (m, *net, jobs);
  if (ring_jobs.empty ())
    return whole_logits (m, net, jobs);
  /* elements with reuse on and off share the instance: two passes, rows back in batch order */
  const auto a = reused_logits (m, *net, ring_jobs);
  const auto b = whole_logits (m, net, whole_jobs);
  auto out = torch::empty ({static_cast<int64_t> (jobs.size ()), a.size (1)}, a.options ());
  out.index_copy_ (0, torch::tensor (ring_rows).to (a.device ()), a);
  out.index_copy_ (0, torch::tensor (whole_rows).to (a.device ()), b);
  return out;
}

/* Whole clips through the full model; every token of each counts as computed. */
torch::Tensor
FeatureRunner::whole_logits (const InferenceModel &m, const TokenSequenceModel *net,
    const std::vector<Job> &jobs)
{
  if (net != nullptr) {
    const int64_t T = m.model->input_shape ().frames;
    for (const auto &job : jobs) {
      if (FeatureRing *ring = ring_or_null (job))
        ring->counters->computed += static_cast<uint64_t> (net->tokens_per_clip (T));
    }
  }
  return whole_.logits (m, jobs);
}

torch::Tensor
FeatureRunner::reused_logits (const InferenceModel &m, TokenSequenceModel &net,
    const std::vector<Job> &jobs)
{
  const size_t split = epoch_change (jobs);
  if (split > 0) {
    /* a stream restarted within the batch: its two epochs' frames share indices */
    std::vector<Job> head (jobs.begin (), jobs.begin () + split);
    std::vector<Job> tail (jobs.begin () + split, jobs.end ());
    return torch::cat ({reused_logits (m, net, head), reused_logits (m, net, tail)});
  }
  const int64_t T = m.model->input_shape ().frames;
  run_new_tokens (m, net, jobs, T);
  std::vector<torch::Tensor> per_clip;
  for (const auto &job : jobs) {
    const auto &features = ring_of (job).features_of (job.record);
    std::vector<torch::Tensor> seq;
    for (const auto &token : tokens (job, net, T))
      seq.push_back (features.at (token.key));
    per_clip.push_back (torch::stack (seq));
  }
  for (const auto &job : jobs)
    ring_of (job).done (job.record);
  return net.classify_tokens (torch::stack (per_clip));
}

/* The tokens of a clip of T frames (padded as vidcls::clip_rows says). */
std::vector<FeatureRunner::Token>
FeatureRunner::tokens (const Job &job, const TokenSequenceModel &net, int64_t T)
{
  const auto rows = clip_rows (job.record.n_frames, T);
  const int64_t window = net.token_window (), stride = net.token_stride ();
  std::vector<Token> out;
  for (int64_t k = 0; k < net.tokens_per_clip (T); ++k) {
    const auto first = rows.begin () + k * stride;
    Token token;
    token.rows.assign (first, first + window);
    token.key = FeatureKey (job.record.first_sample + token.rows.front (),
        job.record.first_sample + token.rows.back ());
    out.push_back (std::move (token));
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

/* Runs the model once over the windows of the batch that no ring has yet. */
void
FeatureRunner::run_new_tokens (const InferenceModel &m, TokenSequenceModel &net,
    const std::vector<Job> &jobs, int64_t T)
{
  std::vector<torch::Tensor> windows;
  std::vector<std::pair<std::map<FeatureKey, torch::Tensor> *, FeatureKey>> owners;
  std::vector<FeatureRing *> rings;
  for (const auto &job : jobs) {
    FeatureRing &ring = ring_of (job);
    auto &features = ring.follow (job.record, m.generation);
    for (const auto &token : tokens (job, net, T)) {
      if (features.count (token.key) || std::find (owners.begin (), owners.end (),
              std::make_pair (&features, token.key)) != owners.end ()) {
        ring.counters->reused += 1;
        continue;
      }
      std::vector<torch::Tensor> frames;    /* the clip may be on the model's device */
      for (int64_t row : token.rows)
        frames.push_back (job.clip[row]);
      windows.push_back (torch::stack (frames));
      owners.emplace_back (&features, token.key);
      rings.push_back (&ring);
    }
  }
  if (windows.empty ())
    return;
  const auto f = net.window_tokens (torch::stack (windows).to (m.device, m.dtype));
  for (size_t i = 0; i < owners.size (); ++i) {
    (*owners[i].first)[owners[i].second] = f[i];
    rings[i]->counters->computed += 1;
  }
}

}  // namespace engine
}  // namespace vidcls
