/* A classified clip as the serving engine hands it out: the clip's record, the k best labels of
 * its scores and the time it took. The inference elements turn it into the bus message, the
 * result meta and the result event (gst-plugins/inference/gstvidclsresult.h); nothing here
 * knows GStreamer.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_record.h"

namespace vidcls {
namespace engine {

struct Classification
{
  ClipRecord clip;
  std::string model;                    /* the model that classified it */
  std::vector<std::string> labels;      /* best first, those at or above the threshold */
  std::vector<float> scores;            /* softmax probabilities, same order */
  std::vector<int32_t> class_ids;       /* rows of the model's head, same order */
  std::string top_label;                /* the best label, whatever the threshold */
  float top_score = 0.f;
  double latency_ms = 0.0;              /* inference time per clip */
  double delay_ms = 0.0;                /* from the clip's arrival (its last frame) to its result:
                                         * queueing, batching and inference */
};

/* One Classification per row of `probs` [B, classes] (softmax, on the CPU) by `model`: the k best
 * labels, cut at `threshold`. */
std::vector<Classification> top_k (const torch::Tensor &probs,
    const std::vector<ClipRecord> &clips, const std::string &model,
    const std::vector<std::string> &labels, unsigned k, double threshold, double latency_ms);

}  // namespace engine
}  // namespace vidcls
