// MiniViT weight distillation (Zhang et al., CVPR 2022) from a frozen ViViT / Mini-ViViT teacher:
// soft labels, plus the last spatial layer's attention maps and hidden-state relations where
// both models have the same number of tokens per frame.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/classifier.h"
#include "vidcls/clip_spec.h"

namespace vidcls::train {

struct TrainOptions;

class Distiller {
 public:
  // The loss of one batch and its terms (per-sample means, for the log).
  struct Terms {
    torch::Tensor loss, logits;
    double kd = 0, attention = 0, hidden = 0;  // soft-label KL, attention MSE, hidden KL
  };

  // loss = (1 - alpha) CE(labels) + alpha T^2 KL(teacher || student at temperature T)
  //        + beta (attention MSE + hidden-relation KL) of the last spatial layer.
  Terms operator()(VideoClassifierImpl &student, const torch::Tensor &clips,
                   const torch::Tensor &labels, double label_smoothing) const;

  const std::string &teacher_path() const { return path_; }
  bool layer_terms() const { return layers_; }

 private:
  friend std::unique_ptr<Distiller> make_distiller(const TrainOptions &o,
                                                   VideoClassifierImpl &student,
                                                   const std::vector<std::string> &classes,
                                                   const ClipSpec &spec,
                                                   const torch::Device &device);
  ClassifierPtr teacher_;
  std::string path_;
  double temperature_ = 1.0, alpha_ = 1.0, beta_ = 1.0;
  bool layers_ = true;
};

// Loads o.teacher and checks it against the student: both with per-frame attention layers
// (ViViT, Mini-ViViT), the same labels in the same order, the same clips. Throws
// std::invalid_argument (the student) or vidcls::MismatchError (the teacher) saying why not.
std::unique_ptr<Distiller> make_distiller(const TrainOptions &o, VideoClassifierImpl &student,
                                          const std::vector<std::string> &classes,
                                          const ClipSpec &spec, const torch::Device &device);

}  // namespace vidcls::train
