#include "gstvidclsworker.h"

#include <algorithm>

namespace vidcls {
namespace gst {

InferenceWorker::InferenceWorker (Classify classify, Publish publish)
    : classify_ (std::move (classify)), publish_ (std::move (publish))
{
}

InferenceWorker::~InferenceWorker ()
{
  stop ();
}

bool
InferenceWorker::push (Job &&job, size_t max_pending, bool drop_oldest, size_t batch_size,
    ClipRecord *dropped)
{
  bool dropped_one = false;
  {
    std::lock_guard<std::mutex> l (lock_);
    batch_size_ = std::max<size_t> (batch_size, 1);
    if (!thread_.joinable ())
      thread_ = std::thread (&InferenceWorker::loop, this);
    if (queue_.size () >= std::max<size_t> (max_pending, 1)) {
      dropped_one = true;
      if (drop_oldest) {
        *dropped = queue_.front ().record;
        queue_.pop_front ();
        queue_.push_back (std::move (job));
      } else {
        *dropped = job.record;
      }
    } else {
      queue_.push_back (std::move (job));
    }
  }
  wake_.notify_one ();
  return dropped_one;
}

std::deque<Classification>
InferenceWorker::take_ready ()
{
  std::deque<Classification> out;
  std::lock_guard<std::mutex> l (lock_);
  out.swap (ready_);
  return out;
}

void
InferenceWorker::flush_start ()
{
  std::lock_guard<std::mutex> l (lock_);
  flushing_ = true;
  queue_.clear ();
  idle_.notify_all ();
}

void
InferenceWorker::flush_stop ()
{
  std::lock_guard<std::mutex> l (lock_);
  flushing_ = false;
  ready_.clear ();
}

void
InferenceWorker::drain ()
{
  std::unique_lock<std::mutex> l (lock_);
  idle_.wait (l, [this] { return flushing_ || stopping_ || !thread_.joinable ()
        || (queue_.empty () && !busy_); });
}

void
InferenceWorker::stop ()
{
  {
    std::lock_guard<std::mutex> l (lock_);
    stopping_ = true;
  }
  wake_.notify_all ();
  idle_.notify_all ();
  if (thread_.joinable ())
    thread_.join ();
  std::lock_guard<std::mutex> l (lock_);
  queue_.clear ();
  ready_.clear ();
  stopping_ = false;
  busy_ = false;
}

void
InferenceWorker::loop ()
{
  for (;;) {
    std::vector<Job> jobs;
    {
      std::unique_lock<std::mutex> l (lock_);
      wake_.wait (l, [this] { return stopping_ || !queue_.empty (); });
      if (stopping_)
        return;
      while (!queue_.empty () && jobs.size () < batch_size_) {
        jobs.push_back (std::move (queue_.front ()));
        queue_.pop_front ();
      }
      busy_ = true;
    }
    std::vector<Classification> results;
    const bool ok = classify_ (jobs, results);
    {
      std::lock_guard<std::mutex> l (lock_);
      busy_ = false;
      if (!ok)
        queue_.clear ();
      else if (!flushing_)
        ready_.insert (ready_.end (), results.begin (), results.end ());
    }
    idle_.notify_all ();
    if (ok)
      publish_ (results);
  }
}

}  // namespace gst
}  // namespace vidcls
