#include "engine/model.h"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include <torch/utils.h>

#include "vidcls/clip_spec.h"
#include "vidcls/device.h"

namespace vidcls {
namespace engine {

namespace {

std::string base_name (const std::string &path)
{
  std::string name = path.substr (path.find_last_of ('/') + 1);
  const auto dot = name.rfind (".safetensors");
  if (dot != std::string::npos && dot > 0)
    name.erase (dot);
  return name;
}

torch::ScalarType
dtype_of (Precision precision, const torch::Device &device)
{
  switch (precision) {
    case Precision::kFp16:
      if (!device.is_cuda ())
        throw std::invalid_argument ("precision fp16 needs a CUDA device; the model runs on "
            + device.str () + ": use precision=bf16 or fp32 there");
      return torch::kFloat16;
    case Precision::kBf16:
      return torch::kBFloat16;
    case Precision::kFp32:
      break;
  }
  return torch::kFloat32;
}

}  // namespace

InferenceModel
load_inference_model (const std::string &path, const std::string &device, Precision precision)
{
  static std::atomic<uint64_t> loads{0};
  InferenceModel m;
  m.generation = ++loads;
  m.device = parse_device (device);
  m.dtype = dtype_of (precision, m.device);
  const auto start = std::chrono::steady_clock::now ();
  auto ckpt = load_checkpoint (path);
  ckpt.model->to (m.device, m.dtype);
  m.load_ms = std::chrono::duration<double, std::milli> (std::chrono::steady_clock::now ()
      - start).count ();
  ckpt.model->eval ();
  m.model = ckpt.model;
  m.info = std::move (ckpt.info);
  m.name = m.info.preset.empty () ? base_name (path) : base_name (path) + " (" + m.info.preset
      + ")";
  /* The first real clip is not slowed by lazy initialisation, and the latency query has a
   * number before any clip is classified. */
  const auto shape = m.model->input_shape ();
  torch::NoGradGuard no_grad;
  auto zeros = torch::zeros ({1, shape.frames, shape.channels, shape.height, shape.width},
      torch::TensorOptions ().device (m.device).dtype (m.dtype));
  const auto t0 = std::chrono::steady_clock::now ();
  m.model->forward (zeros);
  m.warmup_ms = std::chrono::duration<double, std::milli> (std::chrono::steady_clock::now ()
      - t0).count ();
  return m;
}

torch::Tensor
WholeClipRunner::logits (const InferenceModel &m, const std::vector<Job> &jobs)
{
  const int64_t T = m.model->input_shape ().frames;
  std::vector<torch::Tensor> clips;
  for (const auto &job : jobs)
    clips.push_back (complete_clip (job.clip, T));
  return m.model->forward (torch::stack (clips).to (m.device, m.dtype));
}

}  // namespace engine
}  // namespace vidcls
