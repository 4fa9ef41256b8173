#include "engine/instance.h"

#include <chrono>
#include <filesystem>

#include <torch/utils.h>

#include "vidcls/clip_spec.h"
#include "vidcls/device.h"
#include "vidcls/errors.h"

namespace vidcls {
namespace engine {

namespace {

std::string
canonical (const std::string &path)
{
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical (path, ec);
  return ec ? path : p.string ();
}

std::vector<int64_t>
shape_of (const InferenceModel &m)
{
  const auto s = m.model->input_shape ();
  return {s.frames, s.channels, s.height, s.width};
}

/* "" when `job`'s clip fits `shape` (T, C, H, W), else what is wrong. */
std::string
fit_problem (const std::vector<int64_t> &shape, const Job &job)
{
  const auto &c = job.clip;
  const bool frames_ok = c.dim () == 4 && (c.size (0) == shape[0]
      || (job.record.partial && c.size (0) >= 1 && c.size (0) < shape[0]));
  if (frames_ok && c.size (1) == shape[1] && c.size (2) == shape[2] && c.size (3) == shape[3])
    return "";
  return "the clipper sends clips of " + c10::str (c.sizes ()) + " but the model takes "
      + c10::str (c10::IntArrayRef (shape)) + " (T, C, H, W): leave vidclsclipper's "
      "clip-length, width and height unset so it follows the model";
}

}  // namespace

const char *
precision_name (Precision precision)
{
  switch (precision) {
    case Precision::kFp16:
      return "fp16";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp32:
      break;
  }
  return "fp32";
}

ModelInstance::ModelInstance (const InstanceRequest &request)
    : id_ (request.id), precision_ (request.precision),
      worker_ ([this] (std::vector<Job> &jobs) { return classify (jobs); })
{
  auto m = std::make_shared<InferenceModel> (load_inference_model (request.path,
          request.device, request.precision));
  device_ = m->device.str ();
  path_ = canonical (request.path);
  model_ = std::move (m);
  runner_ = request.make_runner ? request.make_runner () : nullptr;
  if (!runner_)
    runner_ = std::make_unique<WholeClipRunner> ();
}

ModelInstance::~ModelInstance ()
{
  std::lock_guard<std::mutex> g (swap_lock_);
  if (loader_.joinable ())
    loader_.join ();
}

InferenceWorker::ClientId
ModelInstance::join (Member member)
{
  const auto id = worker_.attach (member.client);
  std::lock_guard<std::mutex> g (members_lock_);
  members_.emplace (id, std::move (member));
  return id;
}

void
ModelInstance::leave (InferenceWorker::ClientId id)
{
  worker_.detach (id);
  std::lock_guard<std::mutex> g (members_lock_);
  members_.erase (id);
}

std::shared_ptr<const InferenceModel>
ModelInstance::model ()
{
  std::lock_guard<std::mutex> g (model_lock_);
  return model_;
}

std::string
ModelInstance::mismatch (const InstanceRequest &request)
{
  const std::string path = canonical (request.path);
  std::string device = request.device;
  try {
    device = parse_device (request.device).str ();
  } catch (const std::exception &) {
    /* an unusable device is not this instance's: it cannot match */
  }
  std::string holder;
  {
    std::lock_guard<std::mutex> g (members_lock_);
    holder = members_.empty ()? "another element" : members_.begin ()->second.name;
  }
  std::lock_guard<std::mutex> g (model_lock_);
  if (path == path_ && device == device_ && request.precision == precision_)
    return "";
  return "model-instance-id '" + id_ + "' is held by " + holder + " with " + path_ + " on "
      + device_ + " in " + precision_name (precision_) + "; " + request.element + " asks for "
      + path + " on " + device + " in " + precision_name (request.precision)
      + ": give it the same model, device and precision, or another model-instance-id";
}

/* ------------------------------------------------------------------ classifying */

std::vector<Outcome>
ModelInstance::classify (std::vector<Job> &jobs)
{
  std::vector<Outcome> out (jobs.size ());
  std::lock_guard<std::mutex> g (model_lock_);
  const InferenceModel &m = *model_;
  const auto shape = shape_of (m);
  std::vector<Job> fit;
  std::vector<size_t> where;
  for (size_t i = 0; i < jobs.size (); ++i) {
    const std::string problem = fit_problem (shape, jobs[i]);
    if (problem.empty ()) {
      fit.push_back (jobs[i]);
      where.push_back (i);
    } else if (!previous_shape_.empty () && fit_problem (previous_shape_, jobs[i]).empty ()) {
      /* cut for the model before a swap, before the clipper heard of the new one */
      out[i].kind = Outcome::Kind::kDropped;
    } else {
      out[i].format = true;
      out[i].error = "The clips do not fit the model " + m.name;
      out[i].detail = problem;
    }
  }
  if (fit.empty ())
    return out;
  try {
    torch::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now ();
    auto logits = runner_->logits (m, fit);
    auto probs = logits.to (torch::kFloat32).softmax (-1).to (torch::kCPU);
    const double ms = std::chrono::duration<double, std::milli> (
        std::chrono::steady_clock::now () - t0).count () / fit.size ();
    for (size_t j = 0; j < fit.size (); ++j) {
      Outcome &o = out[where[j]];
      o.kind = Outcome::Kind::kDone;
      o.result = top_k (probs.narrow (0, j, 1), {fit[j].record}, m.name, m.info.labels,
          fit[j].top_k, fit[j].threshold, ms).at (0);
    }
  } catch (const std::exception &e) {
    for (size_t i : where) {
      out[i].kind = Outcome::Kind::kFailed;
      out[i].error = "Inference failed";
      out[i].detail = error_message (e);
    }
  }
  return out;
}

/* ------------------------------------------------------------------ swapping */

void
ModelInstance::swap (const std::string &path, InferenceWorker::ClientId by)
{
  std::lock_guard<std::mutex> g (swap_lock_);
  if (loader_.joinable ()) {
    if (loader_.get_id () == std::this_thread::get_id ())
      loader_.detach ();        /* asked from a callback of the load that is ending */
    else
      loader_.join ();          /* one load at a time, in the order asked */
  }
  loader_ = std::thread (&ModelInstance::run_swap, this, path, by);
}

void
ModelInstance::tell (InferenceWorker::ClientId by, const std::string &problem)
{
  std::lock_guard<std::mutex> g (members_lock_);
  auto it = members_.find (by);
  if (it != members_.end () && it->second.swap_failed)
    it->second.swap_failed (problem);
}

void
ModelInstance::run_swap (const std::string &path, InferenceWorker::ClientId by)
{
  std::shared_ptr<InferenceModel> next;
  try {
    const auto info = read_checkpoint_info (path);
    std::string problem;
    {
      std::lock_guard<std::mutex> g (members_lock_);
      for (auto &kv : members_) {
        if (problem.empty () && kv.second.check)
          problem = kv.second.check (path, info);
      }
    }
    if (!problem.empty ())
      return tell (by, problem);
    next = std::make_shared<InferenceModel> (load_inference_model (path, device_, precision_));
  } catch (const std::exception &e) {
    return tell (by, "could not load '" + path + "': " + error_message (e));
  }
  bool spec_changed;
  {
    std::lock_guard<std::mutex> g (model_lock_);
    const auto before = shape_of (*model_);
    spec_changed = !same_clip_spec (model_->info.clip, next->info.clip);
    previous_shape_ = before != shape_of (*next) ? before : std::vector<int64_t> ();
    model_ = next;
    path_ = canonical (path);
  }
  std::lock_guard<std::mutex> g (members_lock_);
  for (auto &kv : members_) {
    if (kv.second.stream)
      kv.second.stream->request_reset ();   /* features of the old backbone */
    if (kv.second.model_changed)
      kv.second.model_changed (path, *next, spec_changed);
  }
}

/* ------------------------------------------------------------------ the registry */

namespace {

struct Entry
{
  std::mutex lock;                 /* held while the instance loads */
  std::weak_ptr<ModelInstance> instance;
};

std::mutex registry_lock;
std::map<std::string, std::shared_ptr<Entry>> registry;

}  // namespace

std::shared_ptr<ModelInstance>
acquire_model_instance (const InstanceRequest &request)
{
  if (request.id.empty ())
    return std::make_shared<ModelInstance> (request);
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> g (registry_lock);
    auto &e = registry[request.id];
    if (!e)
      e = std::make_shared<Entry> ();
    entry = e;
  }
  std::lock_guard<std::mutex> g (entry->lock);
  if (auto held = entry->instance.lock ()) {
    const std::string problem = held->mismatch (request);
    if (!problem.empty ())
      throw InstanceRefused (problem);
    return held;
  }
  auto made = std::make_shared<ModelInstance> (request);
  entry->instance = made;
  return made;
}

}  // namespace engine
}  // namespace vidcls
