/* The model side of serving: a checkpoint loaded for inference (device, arithmetic, warm-up), a
 * clip waiting for the model (Job), and the runners that turn a batch of clips into logits.
 * vividinfer runs whole clips (WholeClipRunner); resnetvitinfer runs the per-frame feature ring
 * (engine/feature_ring.h).
 */
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/checkpoint.h"
#include "vidcls/clip_record.h"

namespace vidcls {
namespace engine {

enum class Precision { kFp32, kFp16, kBf16 };

/* A checkpoint ready to classify clips. */
struct InferenceModel
{
  ClassifierPtr model;             /* in eval mode, on `device`, in `dtype` */
  CheckpointInfo info;
  std::string name;                /* file name, and the preset in brackets */
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  double load_ms = 0.0;            /* reading the checkpoint into the model on `device` */
  double warmup_ms = 0.0;          /* one clip, run at load time */
  uint64_t generation = 0;         /* a number of its own for every load of the process */
};

/* Loads `path` onto `device` ("auto", "cpu", "cuda", "cuda:N") in `precision` and runs one
 * warm-up clip. Throws vidcls::FormatError / MismatchError (the file), vidcls::DeviceError (the
 * device), std::invalid_argument (fp16 off CUDA), c10::Error (LibTorch). */
InferenceModel load_inference_model (const std::string &path, const std::string &device,
    Precision precision);

/* What one element keeps between its clips for the runner (resnetvitinfer's feature ring). Used
 * by the worker thread while a batch runs; a flush or a model swap asks for a reset, which the
 * worker applies before the state's next use. */
class StreamState
{
public:
  virtual ~StreamState () = default;
  void request_reset () { reset_requested_ = true; }
protected:
  /* true once after request_reset() */
  bool take_reset () { return reset_requested_.exchange (false); }
private:
  std::atomic<bool> reset_requested_{false};
};

/* A clip waiting for, or going through, the model. */
struct Job
{
  torch::Tensor clip;              /* [n, C, H, W]: n = T, or fewer for the end-of-stream clip */
  ClipRecord record;
  std::shared_ptr<StreamState> stream;   /* the element's, or null */
  unsigned top_k = 5;                /* what the element reports of it */
  double threshold = 0.0;
};

/* Turns a batch of clips, of any streams of a model instance, into logits [B, classes] (on the
 * model's device). One per model instance; runs under the instance's model lock, one batch at a
 * time. */
class ClipRunner
{
public:
  virtual ~ClipRunner () = default;
  virtual torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) = 0;
};

/* Every clip made whole (the contract's rule for the end-of-stream clip) and run through the
 * full model, in one forward pass. */
class WholeClipRunner : public ClipRunner
{
public:
  torch::Tensor logits (const InferenceModel &m, const std::vector<Job> &jobs) override;
};

}  // namespace engine
}  // namespace vidcls
