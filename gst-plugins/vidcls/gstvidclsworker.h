/* The asynchronous side of the inference elements (mode=async): a thread that classifies the
 * clips of a bounded queue in batches while frames keep flowing. A full queue drops a clip by
 * policy; results wait for the next buffer to carry them. Apart from GStreamer objects: the
 * element gives it two functions, one that classifies a batch and one that announces results.
 * Private to the plugin (C++).
 */
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "gstvidclsmodel.h"
#include "gstvidclsresult.h"

namespace vidcls {
namespace gst {

class InferenceWorker
{
public:
  /* Classifies a batch; false when it failed (an error was posted). */
  using Classify = std::function<bool (std::vector<Job> &, std::vector<Classification> &)>;
  /* Announces the results of a batch (bus messages, counters), on the worker thread. */
  using Publish = std::function<void (const std::vector<Classification> &)>;

  InferenceWorker (Classify classify, Publish publish);
  ~InferenceWorker ();
  InferenceWorker (const InferenceWorker &) = delete;
  InferenceWorker & operator= (const InferenceWorker &) = delete;

  /* Queues a clip, starting the thread on first use. With `max_pending` clips waiting already,
   * one is dropped: the oldest waiting or this one. Returns the dropped clip's record through
   * `dropped`; false when nothing was dropped. Batches take up to `batch_size` clips. */
  bool push (Job &&job, size_t max_pending, bool drop_oldest, size_t batch_size,
      ClipRecord *dropped);
  /* Results that are ready, to attach to the next buffer. */
  std::deque<Classification> take_ready ();

  /* A flush: waiting clips and unattached results are thrown away until flush_stop(). */
  void flush_start ();
  void flush_stop ();
  /* Waits until every queued clip is classified (EOS), or a flush or stop interrupts. */
  void drain ();
  /* Ends the thread; waiting clips are thrown away. The worker can be pushed to again. */
  void stop ();

private:
  void loop ();

  Classify classify_;
  Publish publish_;
  std::thread thread_;
  std::mutex lock_;
  std::condition_variable wake_, idle_;
  std::deque<Job> queue_;
  std::deque<Classification> ready_;
  size_t batch_size_ = 1;
  bool stopping_ = false, flushing_ = false, busy_ = false;
};

}  // namespace gst
}  // namespace vidcls
