#include "vidcls/train/frame_map.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

namespace vidcls::train {

double box_iou(const Box &a, const Box &b) {
  const double ix = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  const double iy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  if (ix <= 0 || iy <= 0) return 0;
  const double inter = ix * iy;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

namespace {

using FrameKey = std::pair<std::string, double>;

// The AP of one class: detections by descending score (ties in input order).
double class_ap(const std::vector<FrameDetection> &dets, const std::vector<FrameTruth> &truth,
                int c, double min_iou) {
  std::map<FrameKey, std::vector<size_t>> truth_at;  // the class's boxes per keyframe
  size_t positives = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i].label != c) continue;
    truth_at[{truth[i].video, truth[i].t}].push_back(i);
    ++positives;
  }
  if (positives == 0) return -1;
  std::vector<size_t> order(dets.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return dets[a].scores[c] > dets[b].scores[c]; });
  std::vector<bool> taken(truth.size(), false);
  std::vector<double> precision, recall;
  size_t tp = 0, seen = 0;
  for (size_t d : order) {
    ++seen;
    const auto it = truth_at.find({dets[d].video, dets[d].t});
    size_t best = truth.size();
    double best_iou = min_iou;
    if (it != truth_at.end()) {
      for (size_t g : it->second) {
        const double iou = box_iou(dets[d].box, truth[g].box);
        if (!taken[g] && iou >= best_iou) best = g, best_iou = iou;
      }
    }
    if (best < truth.size()) {
      taken[best] = true;
      ++tp;
    }
    precision.push_back(static_cast<double>(tp) / static_cast<double>(seen));
    recall.push_back(static_cast<double>(tp) / static_cast<double>(positives));
  }
  // precision made non-increasing from the right, then summed over the recall steps
  for (size_t i = precision.size(); i-- > 1;)
    precision[i - 1] = std::max(precision[i - 1], precision[i]);
  double ap = 0, last_recall = 0;
  for (size_t i = 0; i < precision.size(); ++i) {
    ap += (recall[i] - last_recall) * precision[i];
    last_recall = recall[i];
  }
  return ap;
}

}  // namespace

FrameMap frame_map(const std::vector<FrameDetection> &detections,
                   const std::vector<FrameTruth> &truth, int classes, double min_iou) {
  FrameMap out;
  double sum = 0;
  int counted = 0;
  for (int c = 0; c < classes; ++c) {
    out.ap.push_back(class_ap(detections, truth, c, min_iou));
    if (out.ap.back() >= 0) sum += out.ap.back(), ++counted;
  }
  out.map = counted > 0 ? sum / counted : 0;
  out.truths = truth.size();
  out.detections = detections.size();
  return out;
}

}  // namespace vidcls::train
