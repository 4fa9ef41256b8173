#include "engine/worker.h"

#include <algorithm>

namespace vidcls {
namespace engine {

using Clock = std::chrono::steady_clock;

InferenceWorker::InferenceWorker (Classify classify) : classify_ (std::move (classify))
{
}

InferenceWorker::~InferenceWorker ()
{
  {
    std::lock_guard<std::mutex> l (lock_);
    stopping_ = true;
    for (auto &kv : slots_)
      kv.second->cond.notify_all ();
  }
  wake_.notify_all ();
  if (thread_.joinable ())
    thread_.join ();
}

void
InferenceWorker::start_locked ()
{
  if (!thread_.joinable ())
    thread_ = std::thread (&InferenceWorker::loop, this);
}

InferenceWorker::ClientId
InferenceWorker::attach (Client client)
{
  std::lock_guard<std::mutex> l (lock_);
  auto slot = std::make_unique<Slot> ();
  slot->batching = client.batching;
  slot->client = std::move (client);
  const ClientId id = next_id_++;
  slots_.emplace (id, std::move (slot));
  stats_.streams = slots_.size ();
  return id;
}

void
InferenceWorker::detach (ClientId id)
{
  std::unique_lock<std::mutex> l (lock_);
  auto it = slots_.find (id);
  if (it == slots_.end ())
    return;
  Slot &slot = *it->second;
  pending_ -= slot.queue.size ();
  slot.queue.clear ();
  slot.flushing = true;
  slot.cond.notify_all ();
  slot.cond.wait (l, [&slot] { return slot.in_batch == 0; });
  slots_.erase (it);
  stats_.streams = slots_.size ();
  wake_.notify_all ();          /* the others may have been waiting for this one */
}

bool
InferenceWorker::push (ClientId id, Job &&job, size_t max_pending, bool drop_oldest,
    Batching batching, ClipRecord *dropped)
{
  bool dropped_one = false;
  {
    std::lock_guard<std::mutex> l (lock_);
    Slot &slot = *slots_.at (id);
    start_locked ();
    slot.batching = batching;
    slot.idle = false;
    Pending p {std::move (job), Clock::now (), false};
    if (slot.queue.size () >= std::max<size_t> (max_pending, 1)) {
      dropped_one = true;
      ++stats_.dropped;
      if (drop_oldest) {
        *dropped = slot.queue.front ().job.record;
        slot.queue.pop_front ();
        slot.queue.push_back (std::move (p));
      } else {
        *dropped = p.job.record;
      }
    } else {
      slot.queue.push_back (std::move (p));
      ++pending_;
    }
  }
  wake_.notify_one ();
  return dropped_one;
}

bool
InferenceWorker::classify_now (ClientId id, Job &&job, Batching batching, Outcome *out)
{
  std::vector<Job> jobs;
  jobs.push_back (std::move (job));
  std::vector<Outcome> outcomes;
  if (!classify_now (id, std::move (jobs), batching, &outcomes))
    return false;
  *out = std::move (outcomes.front ());
  return true;
}

bool
InferenceWorker::classify_now (ClientId id, std::vector<Job> &&jobs, Batching batching,
    std::vector<Outcome> *out)
{
  if (jobs.empty ())
    return true;
  std::unique_lock<std::mutex> l (lock_);
  Slot &slot = *slots_.at (id);
  start_locked ();
  slot.batching = batching;
  slot.idle = false;
  const uint64_t ticket = ++slot.sync_ticket;
  const auto now = Clock::now ();
  for (size_t i = 0; i < jobs.size (); ++i)
    slot.queue.push_back (Pending {std::move (jobs[i]), now, true, ticket, i});
  pending_ += jobs.size ();
  slot.sync_outcomes.assign (jobs.size (), Outcome {});
  slot.sync_left = jobs.size ();
  slot.waiting_sync = true;
  wake_.notify_one ();
  slot.cond.wait (l, [this, &slot] {
        return slot.sync_left == 0 || slot.flushing || stopping_; });
  slot.waiting_sync = false;
  if (slot.sync_left != 0)
    return false;
  *out = std::move (slot.sync_outcomes);
  slot.sync_outcomes.clear ();
  return true;
}

std::deque<Classification>
InferenceWorker::take_ready (ClientId id)
{
  std::deque<Classification> out;
  std::lock_guard<std::mutex> l (lock_);
  out.swap (slots_.at (id)->ready);
  return out;
}

void
InferenceWorker::flush_start (ClientId id)
{
  std::lock_guard<std::mutex> l (lock_);
  Slot &slot = *slots_.at (id);
  slot.flushing = true;
  pending_ -= slot.queue.size ();
  slot.queue.clear ();
  slot.ready.clear ();
  slot.cond.notify_all ();
  wake_.notify_all ();
}

void
InferenceWorker::flush_stop (ClientId id)
{
  std::lock_guard<std::mutex> l (lock_);
  Slot &slot = *slots_.at (id);
  slot.flushing = false;
  slot.ready.clear ();
}

void
InferenceWorker::drain (ClientId id)
{
  std::unique_lock<std::mutex> l (lock_);
  Slot &slot = *slots_.at (id);
  slot.cond.wait (l, [this, &slot] { return slot.flushing || stopping_
        || (slot.queue.empty () && slot.in_batch == 0); });
  slot.idle = true;
  wake_.notify_all ();
}

WorkerStats
InferenceWorker::stats ()
{
  std::lock_guard<std::mutex> l (lock_);
  return stats_;
}

size_t
InferenceWorker::batch_size () const
{
  size_t n = 1;
  for (const auto &kv : slots_)
    n = std::max (n, kv.second->batching.batch_size);
  return n;
}

std::chrono::milliseconds
InferenceWorker::batch_timeout () const
{
  auto t = std::chrono::milliseconds::max ();
  for (const auto &kv : slots_) {
    if (!kv.second->idle)
      t = std::min (t, kv.second->batching.timeout);
  }
  return t == std::chrono::milliseconds::max ()? std::chrono::milliseconds (0) : t;
}

/* True when a batch should run now: it is full, every stream still going waits on a clip of its
 * own (sync: no other clip can come), or its oldest clip has waited the batch timeout. Waits
 * until one of these or a new clip, whichever comes first. */
bool
InferenceWorker::batch_ready (std::unique_lock<std::mutex> &l)
{
  if (pending_ >= batch_size ())
    return true;
  bool all_waiting = true;
  auto oldest = Clock::time_point::max ();
  for (const auto &kv : slots_) {
    const Slot &s = *kv.second;
    if (!s.queue.empty ())
      oldest = std::min (oldest, s.queue.front ().arrival);
    if (!s.idle && !s.flushing && !s.waiting_sync)
      all_waiting = false;
  }
  if (all_waiting)
    return true;
  const auto deadline = oldest + batch_timeout ();
  if (Clock::now () >= deadline)
    return true;
  wake_.wait_until (l, deadline);
  return false;
}

/* Up to a batch of clips, one per stream in turn, starting after the stream served first last
 * time: under overload every stream gets its share. */
std::vector<InferenceWorker::Taken>
InferenceWorker::take_batch ()
{
  const size_t n = batch_size ();
  std::vector<Taken> taken;
  std::vector<ClientId> order;
  for (auto it = slots_.upper_bound (turn_); it != slots_.end (); ++it)
    order.push_back (it->first);
  for (auto it = slots_.begin (); it != slots_.end () && it->first <= turn_; ++it)
    order.push_back (it->first);
  bool any = true;
  while (taken.size () < n && any) {
    any = false;
    for (ClientId id : order) {
      Slot &slot = *slots_.at (id);
      if (slot.queue.empty () || slot.flushing || taken.size () >= n)
        continue;
      if (taken.empty ())
        turn_ = id;
      taken.push_back (Taken {id, std::move (slot.queue.front ())});
      slot.queue.pop_front ();
      ++slot.in_batch;
      --pending_;
      any = true;
    }
  }
  return taken;
}

/* Hands each outcome to its stream: the sync waiter, the ready queue or the failure callback;
 * callbacks run outside the lock, and a stream is released (in_batch) only after them. */
void
InferenceWorker::deliver (std::vector<Taken> &taken, std::vector<Outcome> &outcomes)
{
  std::vector<std::pair<Slot *, Outcome>> failures;
  std::vector<std::pair<Slot *, std::pair<std::vector<Classification>, uint64_t>>> publish;
  {
    std::lock_guard<std::mutex> l (lock_);
    const auto now = Clock::now ();
    for (size_t i = 0; i < taken.size (); ++i) {
      Slot &slot = *slots_.at (taken[i].id);
      Outcome &o = outcomes[i];
      if (o.kind == Outcome::Kind::kDone) {
        o.result.delay_ms = std::chrono::duration<double, std::milli> (now
            - taken[i].pending.arrival).count ();
        stats_.delay_sum_ms += o.result.delay_ms;
      } else if (o.kind == Outcome::Kind::kDropped) {
        ++stats_.dropped;
      }
      if (taken[i].pending.sync) {
        if (slot.waiting_sync && !slot.flushing && slot.sync_left > 0
            && taken[i].pending.ticket == slot.sync_ticket) {
          slot.sync_outcomes[taken[i].pending.sync_index] = std::move (o);
          if (--slot.sync_left == 0) {
            slot.waiting_sync = false;  /* not waiting from now, though not yet awake */
            slot.cond.notify_all ();
          }
        }
      } else if (o.kind == Outcome::Kind::kDone) {
        if (!slot.flushing) {
          slot.ready.push_back (o.result);
          slot.to_publish.push_back (std::move (o.result));
        }
      } else if (o.kind == Outcome::Kind::kDropped) {
        ++slot.dropped;
      } else {
        pending_ -= slot.queue.size ();
        slot.queue.clear ();
        failures.emplace_back (&slot, std::move (o));
      }
    }
    for (auto &kv : slots_) {
      Slot &slot = *kv.second;
      if (!slot.to_publish.empty () || slot.dropped > 0) {
        publish.push_back ({&slot, {std::move (slot.to_publish), slot.dropped}});
        slot.to_publish.clear ();
        slot.dropped = 0;
      }
    }
    ++stats_.batches;
    stats_.clips += taken.size ();
  }
  for (auto &p : publish)
    p.first->client.publish (p.second.first, p.second.second);
  for (auto &f : failures)
    f.first->client.fail (f.second);
  std::lock_guard<std::mutex> l (lock_);
  for (auto &t : taken) {
    Slot &slot = *slots_.at (t.id);
    --slot.in_batch;
    slot.cond.notify_all ();
  }
}

void
InferenceWorker::loop ()
{
  for (;;) {
    std::vector<Taken> taken;
    {
      std::unique_lock<std::mutex> l (lock_);
      for (;;) {
        wake_.wait (l, [this] { return stopping_ || pending_ > 0; });
        if (stopping_)
          return;
        if (batch_ready (l) && pending_ > 0)
          break;
      }
      taken = take_batch ();
    }
    std::vector<Job> jobs;
    for (auto &t : taken)
      jobs.push_back (t.pending.job);
    std::vector<Outcome> outcomes = classify_ (jobs);
    outcomes.resize (taken.size ());
    deliver (taken, outcomes);
  }
}

}  // namespace engine
}  // namespace vidcls
