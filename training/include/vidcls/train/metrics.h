// Classification metrics over a test set (top-1, top-5, per-class accuracy, confusion matrix)
// and the pictures of them (confusion matrix with OpenCV, training curves with PLplot).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

namespace vidcls::train {

class ClassificationMetrics {
 public:
  explicit ClassificationMetrics(std::vector<std::string> classes);

  // scores [B, C] (logits or probabilities: only their order matters), labels int64 [B].
  // Loss is the mean cross-entropy of the logits, counted when `logits` is true.
  void add(const torch::Tensor &scores, const torch::Tensor &labels, bool logits = true);

  int64_t count() const { return count_; }
  double top1() const;
  double top5() const;  // top-k with k = min(5, classes)
  double loss() const;  // mean cross-entropy (0 when add() never saw logits)
  // Accuracy per class (NaN-free: a class without samples has accuracy 0 and count 0).
  std::vector<double> per_class() const;
  // confusion[true][predicted]
  const std::vector<std::vector<int64_t>> &confusion() const { return confusion_; }
  const std::vector<std::string> &classes() const { return classes_; }

  // {"top1", "top5", "loss", "count", "classes", "per_class": {name: {"accuracy", "count"}},
  //  "confusion": [[...]]}
  nlohmann::json to_json() const;

 private:
  std::vector<std::string> classes_;
  std::vector<std::vector<int64_t>> confusion_;
  int64_t count_ = 0, top5_hits_ = 0;
  double loss_sum_ = 0;
  int64_t loss_count_ = 0;
};

// A PNG of the confusion matrix: one cell per (true, predicted) pair with its count, shaded by
// the share of the true class's row. Throws std::runtime_error when it cannot be written.
void write_confusion_png(const std::string &path, const ClassificationMetrics &metrics);

// Training curves, one point per epoch: a loss panel and a top-1 panel, each with train,
// validation and test as separate series (a side that was never evaluated -- its loss is 0 in
// every row -- is left out), and the learning rate. Drawn with PLplot into a PNG of
// kCurvesWidth x kCurvesHeight pixels; throws std::runtime_error when it cannot be written or
// PLplot's Cairo driver (Debian: plplot-driver-cairo) is missing.
struct CurvePoint {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_acc = 0;
  double val_loss = 0, val_top1 = 0, test_loss = 0, test_top1 = 0;
};
constexpr int kCurvesWidth = 1500, kCurvesHeight = 480;
void write_curves_png(const std::string &path, const std::vector<CurvePoint> &points);

}  // namespace vidcls::train
