/* A model instance: one loaded checkpoint, its runner and its worker thread, serving every
 * inference element of the process that names it by `model-instance-id` (an element with no id
 * has an instance of its own). Elements join it in start() and leave it in stop(); the last to
 * leave frees it. A swap loads another checkpoint on a background thread and puts it in place
 * between two batches. No GStreamer here: each element gives it callbacks.
 */
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "engine/model.h"
#include "engine/worker.h"

namespace vidcls {
namespace engine {

/* What an element asks for in start(). */
struct InstanceRequest
{
  std::string id;                  /* "" : an instance of its own */
  std::string path;                /* the checkpoint */
  std::string device;              /* as the property says: auto, cpu, cuda:N */
  Precision precision = Precision::kFp32;
  std::string element;             /* its name, for messages */
  std::function<std::unique_ptr<ClipRunner> ()> make_runner;
};

/* An element asked for a shared instance with another checkpoint, device or precision. */
class InstanceRefused : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

/* One element of an instance. The callbacks run on the instance's threads. */
struct Member
{
  std::string name;
  InferenceWorker::Client client;
  std::shared_ptr<StreamState> stream;               /* or null */
  /* "" when the element runs this checkpoint (path, its header), else why not */
  std::function<std::string (const std::string &, const CheckpointInfo &)> check;
  /* a swap is done: the checkpoint, the model now running, whether its clip spec changed */
  std::function<void (const std::string &, const InferenceModel &, bool)> model_changed;
  /* a swap this element asked for failed; the old model runs on */
  std::function<void (const std::string &)> swap_failed;
};

class ModelInstance
{
public:
  /* Loads the checkpoint (throws what load_inference_model throws). */
  explicit ModelInstance (const InstanceRequest &request);
  ~ModelInstance ();
  ModelInstance (const ModelInstance &) = delete;
  ModelInstance & operator= (const ModelInstance &) = delete;

  InferenceWorker::ClientId join (Member member);
  void leave (InferenceWorker::ClientId id);

  /* The model running now (it stays valid for its holder across a swap). */
  std::shared_ptr<const InferenceModel> model ();
  InferenceWorker &worker () { return worker_; }
  const std::string &id () const { return id_; }

  /* Loads `path` on a background thread for the member `by`: if every member's check takes it,
   * it replaces the running model between two batches and every member hears model_changed;
   * otherwise `by` hears swap_failed and nothing changes. */
  void swap (const std::string &path, InferenceWorker::ClientId by);

  /* The request's key against this instance's: "" when they match, else a refusal message. */
  std::string mismatch (const InstanceRequest &request);

private:
  std::vector<Outcome> classify (std::vector<Job> &jobs);
  Outcome classify_one (const InferenceModel &m, const Job &job);
  void run_swap (const std::string &path, InferenceWorker::ClientId by);
  void tell (InferenceWorker::ClientId by, const std::string &problem);

  const std::string id_;
  const Precision precision_;
  std::string device_;             /* the resolved device: a swap loads there */
  std::string path_;               /* canonical path of the running checkpoint */

  std::mutex model_lock_;          /* held while a batch runs and while the model is swapped */
  std::shared_ptr<const InferenceModel> model_;
  std::vector<int64_t> previous_shape_;   /* input shape before the last swap, if it changed */
  std::unique_ptr<ClipRunner> runner_;

  std::mutex members_lock_;
  std::map<InferenceWorker::ClientId, Member> members_;

  std::mutex swap_lock_;
  std::thread loader_;

  InferenceWorker worker_;         /* last member: its thread ends before the rest goes */
};

/* The instance `request.id` names, loading it for its first element, or a new one for an element
 * without an id. Throws InstanceRefused when the id is held with another checkpoint, device or
 * precision, or what loading throws. */
std::shared_ptr<ModelInstance> acquire_model_instance (const InstanceRequest &request);

const char *precision_name (Precision precision);

}  // namespace engine
}  // namespace vidcls
