#include "vidcls/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/nn/functional/loss.h>

namespace vidcls::train {

ClassificationMetrics::ClassificationMetrics(std::vector<std::string> classes)
    : classes_(std::move(classes)),
      confusion_(classes_.size(), std::vector<int64_t>(classes_.size(), 0)) {}

void ClassificationMetrics::add(const torch::Tensor &scores, const torch::Tensor &labels,
                                bool logits) {
  const int64_t C = static_cast<int64_t>(classes_.size());
  TORCH_CHECK(scores.dim() == 2 && scores.size(1) == C, "expected scores [B, ", C, "], got ",
              scores.sizes());
  const auto s = scores.detach().to(torch::kCPU, torch::kFloat32);
  const auto y = labels.to(torch::kCPU, torch::kInt64);
  const auto pred = s.argmax(1);
  const auto topk = std::get<1>(s.topk(std::min<int64_t>(5, C), 1));
  for (int64_t i = 0; i < s.size(0); ++i) {
    const int64_t t = y[i].item<int64_t>(), p = pred[i].item<int64_t>();
    TORCH_CHECK(t >= 0 && t < C, "label ", t, " out of range");
    ++confusion_[t][p];
    if ((topk[i] == t).any().item<bool>()) ++top5_hits_;
  }
  count_ += s.size(0);
  if (logits) {
    loss_sum_ += torch::nn::functional::cross_entropy(
                     s, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                     .item<double>();
    loss_count_ += s.size(0);
  }
}

double ClassificationMetrics::top1() const {
  int64_t hits = 0;
  for (size_t i = 0; i < confusion_.size(); ++i) hits += confusion_[i][i];
  return count_ > 0 ? static_cast<double>(hits) / count_ : 0.0;
}

double ClassificationMetrics::top5() const {
  return count_ > 0 ? static_cast<double>(top5_hits_) / count_ : 0.0;
}

double ClassificationMetrics::loss() const {
  return loss_count_ > 0 ? loss_sum_ / loss_count_ : 0.0;
}

std::vector<double> ClassificationMetrics::per_class() const {
  std::vector<double> out;
  for (size_t i = 0; i < confusion_.size(); ++i) {
    int64_t n = 0;
    for (auto c : confusion_[i]) n += c;
    out.push_back(n > 0 ? static_cast<double>(confusion_[i][i]) / n : 0.0);
  }
  return out;
}

nlohmann::json ClassificationMetrics::to_json() const {
  nlohmann::json j;
  j["top1"] = top1();
  j["top5"] = top5();
  j["top5_k"] = std::min<size_t>(5, classes_.size());
  j["loss"] = loss();
  j["count"] = count_;
  j["classes"] = classes_;
  const auto acc = per_class();
  nlohmann::json pc = nlohmann::json::object();
  for (size_t i = 0; i < classes_.size(); ++i) {
    int64_t n = 0;
    for (auto c : confusion_[i]) n += c;
    pc[classes_[i]] = {{"accuracy", acc[i]}, {"count", n}};
  }
  j["per_class"] = pc;
  j["confusion"] = confusion_;
  return j;
}

void write_confusion_png(const std::string &path, const ClassificationMetrics &metrics) {
  const auto &names = metrics.classes();
  const auto &m = metrics.confusion();
  const int n = static_cast<int>(names.size());
  const int cell = 48, margin_left = 150, margin_top = 60, pad = 20;
  const int size_w = std::max(margin_left + n * cell + pad, 440), size_h = margin_top + n * cell + pad + 30;
  cv::Mat img(size_h, size_w, CV_8UC3, cv::Scalar(255, 255, 255));
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  for (int i = 0; i < n; ++i) {
    int64_t row = 0;
    for (auto c : m[i]) row += c;
    for (int j = 0; j < n; ++j) {
      const double share = row > 0 ? static_cast<double>(m[i][j]) / row : 0.0;
      const int shade = static_cast<int>(255 - 200 * share);
      const cv::Rect r(margin_left + j * cell, margin_top + i * cell, cell, cell);
      cv::rectangle(img, r, cv::Scalar(255, shade, shade), cv::FILLED);  // BGR: blue scale
      cv::rectangle(img, r, cv::Scalar(160, 160, 160), 1);
      const std::string text = std::to_string(m[i][j]);
      int base = 0;
      const auto ts = cv::getTextSize(text, font, 0.45, 1, &base);
      cv::putText(img, text,
                  cv::Point(r.x + (cell - ts.width) / 2, r.y + (cell + ts.height) / 2), font, 0.45,
                  share > 0.6 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    }
    cv::putText(img, std::to_string(i) + " " + names[i], cv::Point(5, margin_top + i * cell + cell / 2 + 5), font, 0.4,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  // Columns are numbered; the row labels say which class each number is.
  for (int j = 0; j < n; ++j) {
    const std::string text = std::to_string(j);
    int base = 0;
    const auto ts = cv::getTextSize(text, font, 0.45, 1, &base);
    cv::putText(img, text, cv::Point(margin_left + j * cell + (cell - ts.width) / 2, margin_top - 8),
                font, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  cv::putText(img, "predicted", cv::Point(margin_left, margin_top - 35), font, 0.5,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(img, "true", cv::Point(5, margin_top - 8), font, 0.5, cv::Scalar(0, 0, 0), 1,
              cv::LINE_AA);
  char caption[160];
  std::snprintf(caption, sizeof caption, "rows: true, columns: predicted; top-1 %.1f%% of %lld",
                100.0 * metrics.top1(), static_cast<long long>(metrics.count()));
  cv::putText(img, caption, cv::Point(5, size_h - 10), font, 0.45, cv::Scalar(0, 0, 0), 1,
              cv::LINE_AA);
  if (!cv::imwrite(path, img)) throw std::runtime_error("cannot write " + path);
}

}  // namespace vidcls::train
