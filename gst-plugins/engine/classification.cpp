#include "engine/classification.h"

#include <algorithm>

namespace vidcls {
namespace engine {

std::vector<Classification>
top_k (const torch::Tensor &probs, const std::vector<ClipRecord> &clips,
    const std::string &model, const std::vector<std::string> &labels, unsigned k,
    double threshold, double latency_ms)
{
  const int64_t n = std::min<int64_t> (std::max (k, 1u), probs.size (1));
  auto top = probs.topk (n, -1);
  const auto values = std::get<0> (top).contiguous ();
  const auto indices = std::get<1> (top).contiguous ();
  const float *v = values.data_ptr<float> ();
  const int64_t *ids = indices.data_ptr<int64_t> ();
  std::vector<Classification> out;
  for (size_t b = 0; b < clips.size (); ++b) {
    Classification c;
    c.clip = clips[b];
    c.model = model;
    c.latency_ms = latency_ms;
    for (int64_t i = 0; i < n; ++i) {
      const float score = v[b * n + i];
      const int64_t id = ids[b * n + i];
      if (i == 0) {
        c.top_label = labels.at (id);
        c.top_score = score;
      }
      if (score < threshold)
        break;
      c.labels.push_back (labels.at (id));
      c.scores.push_back (score);
      c.class_ids.push_back (static_cast<int32_t> (id));
    }
    out.push_back (std::move (c));
  }
  return out;
}

}  // namespace engine
}  // namespace vidcls
