/* The model side of the inference elements, apart from GStreamer: a checkpoint loaded for
 * inference (device, arithmetic, warm-up) and the runners that turn a batch of clips into
 * logits. vividinfer runs whole clips; resnetvitinfer brings its own runner, the per-frame
 * feature ring (gstresnetvitinfer.cpp). Private to the plugin (C++).
 */
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/checkpoint.h"
#include "vidcls/clip_record.h"

namespace vidcls {
namespace gst {

enum class Precision { kFp32, kFp16, kBf16 };

/* A checkpoint ready to classify clips. */
struct InferenceModel
{
  ClassifierPtr model;             /* in eval mode, on `device`, in `dtype` */
  CheckpointInfo info;
  std::string name;                /* file name, and the preset in brackets */
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  double warmup_ms = 0.0;          /* one clip, run at load time */
};

/* Loads `path` onto `device` ("auto", "cpu", "cuda", "cuda:N") in `precision` and runs one
 * warm-up clip. Throws vidcls::FormatError / MismatchError (the file), vidcls::DeviceError (the
 * device), std::invalid_argument (fp16 off CUDA), c10::Error (LibTorch). */
InferenceModel load_inference_model (const std::string &path, const std::string &device,
    Precision precision);

/* A clip waiting for, or going through, the model. */
struct Job
{
  torch::Tensor clip;              /* [n, C, H, W]: n = T, or fewer for the end-of-stream clip */
  ClipRecord record;
};

/* Turns a batch of clips into logits [B, classes] (on the model's device). Runs under the
 * element's model lock, one batch at a time. */
class ClipRunner
{
public:
  virtual ~ClipRunner () = default;
  virtual torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) = 0;
  /* A flush: forget what was kept between clips. */
  virtual void reset () {}
};

/* Every clip made whole (the contract's rule for the end-of-stream clip) and run through the
 * full model, in one forward pass. */
class WholeClipRunner : public ClipRunner
{
public:
  torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) override;
};

}  // namespace gst
}  // namespace vidcls
