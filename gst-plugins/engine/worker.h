/* The thread of a model instance: it takes the clips of every element (stream) that shares the
 * instance and classifies them in batches of up to `batch-size` clips, waiting at most
 * `batch-timeout` for a batch to fill, taking the streams in turn so none starves. Each element
 * has its own bounded queue and drop policy (async: frames never wait) or waits for its own
 * clip (sync: back-pressure, files). Results go back to the element whose clip it was.
 * No GStreamer here: the instance gives it the function that classifies a batch, each element
 * the functions that announce its results and its failures.
 */
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/model.h"
#include "engine/classification.h"

namespace vidcls {
namespace engine {

/* What became of one clip of a batch. */
struct Outcome
{
  enum class Kind { kDone, kDropped, kFailed };
  Kind kind = Kind::kFailed;
  Classification result;           /* kDone */
  bool format = false;             /* kFailed: the clip does not fit the model */
  std::string error, detail;       /* kFailed: for the element's error message */
};

/* What one element asks of the batching. */
struct Batching
{
  size_t batch_size = 1;
  std::chrono::milliseconds timeout{0};
};

/* Counters of the whole instance. */
struct WorkerStats
{
  uint64_t clips = 0, batches = 0, streams = 0, dropped = 0;
  double delay_sum_ms = 0.0;
  double mean_batch () const { return batches ? double (clips) / batches : 0.0; }
  double mean_delay () const { return clips ? delay_sum_ms / clips : 0.0; }
};

class InferenceWorker
{
public:
  /* Classifies a batch of clips of any elements: one outcome per job, in order. */
  using Classify = std::function<std::vector<Outcome> (std::vector<Job> &)>;
  using ClientId = uint64_t;

  /* One element's side. Called on the worker thread, outside the worker's lock. */
  struct Client
  {
    /* async results of this element, with the clips dropped since the last call */
    std::function<void (const std::vector<Classification> &, uint64_t dropped)> publish;
    /* a clip of this element could not be classified: the element posts the error */
    std::function<void (const Outcome &)> fail;
    /* what it asks of the batching until its first clip says again */
    Batching batching;
  };

  explicit InferenceWorker (Classify classify);
  ~InferenceWorker ();
  InferenceWorker (const InferenceWorker &) = delete;
  InferenceWorker & operator= (const InferenceWorker &) = delete;

  ClientId attach (Client client);
  /* Throws the element's waiting clips away and waits until no batch holds one of its clips;
   * its callbacks are not called after this returns. */
  void detach (ClientId id);

  /* Async: queues a clip, with `max_pending` already waiting one is dropped, the oldest or this
   * one; its record is returned through `dropped`. False when nothing was dropped. */
  bool push (ClientId id, Job &&job, size_t max_pending, bool drop_oldest, Batching batching,
      ClipRecord *dropped);
  /* Sync: classifies a clip and waits for its outcome. False, with `out` untouched, when a
   * flush or detach interrupted it. */
  bool classify_now (ClientId id, Job &&job, Batching batching, Outcome *out);
  /* Sync, several clips at once (the clips of every tracked object a frame completes): they
   * queue together, so a batch can take them all, and the call waits for every outcome, in
   * the jobs' order. */
  bool classify_now (ClientId id, std::vector<Job> &&jobs, Batching batching,
      std::vector<Outcome> *out);
  /* Async results that are ready, to attach to the element's next buffer. */
  std::deque<Classification> take_ready (ClientId id);

  /* A flush of one element: its waiting clips and unattached results are thrown away, a sync
   * wait returns, until flush_stop(). */
  void flush_start (ClientId id);
  void flush_stop (ClientId id);
  /* EOS of one element: waits until its queued clips are classified (or a flush interrupts);
   * until its next clip the others do not wait for it to fill a batch. */
  void drain (ClientId id);

  WorkerStats stats ();

private:
  struct Pending
  {
    Job job;
    std::chrono::steady_clock::time_point arrival;
    bool sync = false;
    uint64_t ticket = 0;           /* sync: which wait of its stream it answers */
    size_t sync_index = 0;         /* sync: its place among that wait's clips */
  };
  struct Slot
  {
    Client client;
    std::deque<Pending> queue;
    std::deque<Classification> ready;
    std::vector<Classification> to_publish;
    Batching batching;
    uint64_t dropped = 0, in_batch = 0;
    bool flushing = false, idle = false, waiting_sync = false;
    /* The sync wait in progress: an outcome answers it only when its clip is that wait's (a
     * clip from before a flush may still be in a batch when the next wait begins). */
    uint64_t sync_ticket = 0;
    std::vector<Outcome> sync_outcomes;
    size_t sync_left = 0;          /* outcomes the wait still needs; 0: answered */
    std::condition_variable cond;
  };
  struct Taken
  {
    ClientId id;
    Pending pending;
  };

  void loop ();
  bool batch_ready (std::unique_lock<std::mutex> &l);
  std::vector<Taken> take_batch ();
  void deliver (std::vector<Taken> &taken, std::vector<Outcome> &outcomes);
  size_t batch_size () const;
  std::chrono::milliseconds batch_timeout () const;
  void start_locked ();

  Classify classify_;
  std::thread thread_;
  std::mutex lock_;
  std::condition_variable wake_;
  std::map<ClientId, std::unique_ptr<Slot>> slots_;
  ClientId next_id_ = 1, turn_ = 0;
  size_t pending_ = 0;
  WorkerStats stats_;
  bool stopping_ = false;
};

}  // namespace engine
}  // namespace vidcls
