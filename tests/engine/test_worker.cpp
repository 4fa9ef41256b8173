// The batching worker on its own (no model, no pipeline): a classify function that records the
// batches it gets stands in for the model instance, so each test sees exactly which clips of
// which streams went into which forward pass.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/worker.h"

namespace {

using vidcls::ClipRecord;
using vidcls::engine::Batching;
using vidcls::engine::Classification;
using vidcls::engine::InferenceWorker;
using vidcls::engine::Job;
using vidcls::engine::Outcome;
using namespace std::chrono_literals;

Job job(const std::string &stream, uint64_t index) {
  Job j;
  j.clip = torch::zeros({1});
  j.record.stream = stream;
  j.record.index = index;
  return j;
}

Batching batching(size_t size, std::chrono::milliseconds timeout) {
  Batching b;
  b.batch_size = size;
  b.timeout = timeout;
  return b;
}

// Records every batch as "stream:index" names; can hold the first batch until released, so the
// queues fill while the worker is busy. A stream named "bad" fails.
class Recorder {
 public:
  std::vector<Outcome> classify(std::vector<Job> &jobs) {
    std::vector<std::string> names;
    for (const auto &j : jobs)
      names.push_back(j.record.stream + ":" + std::to_string(j.record.index));
    {
      std::unique_lock<std::mutex> l(lock_);
      batches_.push_back(names);
      entered_.notify_all();
      released_.wait(l, [this] { return !hold_; });
    }
    std::vector<Outcome> out(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].record.stream == "bad") {
        out[i].kind = Outcome::Kind::kFailed;
        out[i].error = "bad clip";
        continue;
      }
      out[i].kind = Outcome::Kind::kDone;
      out[i].result.clip = jobs[i].record;
    }
    return out;
  }
  void hold() {
    std::lock_guard<std::mutex> l(lock_);
    hold_ = true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> l(lock_);
      hold_ = false;
    }
    released_.notify_all();
  }
  // Waits until `n` batches have started.
  void wait_batches(size_t n) {
    std::unique_lock<std::mutex> l(lock_);
    ASSERT_TRUE(entered_.wait_for(l, 10s, [&] { return batches_.size() >= n; }))
        << "only " << batches_.size() << " batches started";
  }
  std::vector<std::vector<std::string>> batches() {
    std::lock_guard<std::mutex> l(lock_);
    return batches_;
  }

 private:
  std::mutex lock_;
  std::condition_variable entered_, released_;
  bool hold_ = false;
  std::vector<std::vector<std::string>> batches_;
};

// What one stream's callbacks received.
struct Received {
  std::mutex lock;
  std::vector<uint64_t> published;
  uint64_t dropped = 0;
  std::vector<std::string> failures;
  InferenceWorker::Client client(Batching b) {
    InferenceWorker::Client c;
    c.publish = [this](const std::vector<Classification> &r, uint64_t d) {
      std::lock_guard<std::mutex> l(lock);
      for (const auto &x : r) published.push_back(x.clip.index);
      dropped += d;
    };
    c.fail = [this](const Outcome &o) {
      std::lock_guard<std::mutex> l(lock);
      failures.push_back(o.error);
    };
    c.batching = b;
    return c;
  }
};

TEST(Worker, SyncClipsOfStreamsThatAllWaitRunInOneBatchAndGoBackToTheirStreams) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received ra, rb;
  const auto b = batching(2, 10000ms);  // only a full batch (or all streams waiting) runs it
  const auto a = w.attach(ra.client(b)), bb = w.attach(rb.client(b));
  Outcome oa, ob;
  auto fa = std::async(std::launch::async, [&] { return w.classify_now(a, job("A", 7), b, &oa); });
  auto fb = std::async(std::launch::async, [&] { return w.classify_now(bb, job("B", 9), b, &ob); });
  ASSERT_EQ(fa.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(fb.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(fa.get());
  EXPECT_TRUE(fb.get());
  ASSERT_EQ(rec.batches().size(), 1u) << "two waiting streams share one forward pass";
  EXPECT_EQ(rec.batches()[0].size(), 2u);
  EXPECT_EQ(oa.kind, Outcome::Kind::kDone);
  EXPECT_EQ(oa.result.clip.stream, "A");
  EXPECT_EQ(oa.result.clip.index, 7u);
  EXPECT_EQ(ob.result.clip.stream, "B");
  EXPECT_EQ(ob.result.clip.index, 9u);
  EXPECT_GE(oa.result.delay_ms, 0.0);
  const auto st = w.stats();
  EXPECT_EQ(st.clips, 2u);
  EXPECT_EQ(st.batches, 1u);
  EXPECT_EQ(st.streams, 2u);
  EXPECT_DOUBLE_EQ(st.mean_batch(), 2.0);
  w.detach(a);
  w.detach(bb);
  EXPECT_EQ(w.stats().streams, 0u);
}

// The clips of every tracked object a frame completes, classified synchronously in one call: one
// forward pass when the batch size allows, else batches of that size, the outcomes in the
// order of the clips.
TEST(Worker, SyncClipsOfOneCallRunTogetherAndComeBackInOrder) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received r;
  const auto b = batching(4, 10000ms);
  const auto id = w.attach(r.client(b));
  std::vector<Job> jobs;
  for (uint64_t k = 0; k < 4; ++k) jobs.push_back(job("A", k));
  std::vector<Outcome> out;
  ASSERT_TRUE(w.classify_now(id, std::move(jobs), b, &out));
  ASSERT_EQ(rec.batches().size(), 1u) << "four objects' clips, one forward pass";
  EXPECT_EQ(rec.batches()[0], (std::vector<std::string>{"A:0", "A:1", "A:2", "A:3"}));
  ASSERT_EQ(out.size(), 4u);
  for (uint64_t k = 0; k < 4; ++k) EXPECT_EQ(out[k].result.clip.index, k);
  // six clips with batch size 4: a full batch, then the two left (the stream waits on them)
  jobs.clear();
  for (uint64_t k = 10; k < 16; ++k) jobs.push_back(job("A", k));
  ASSERT_TRUE(w.classify_now(id, std::move(jobs), b, &out));
  ASSERT_EQ(rec.batches().size(), 3u);
  EXPECT_EQ(rec.batches()[1].size(), 4u);
  EXPECT_EQ(rec.batches()[2].size(), 2u);
  ASSERT_EQ(out.size(), 6u);
  for (uint64_t k = 0; k < 6; ++k) EXPECT_EQ(out[k].result.clip.index, 10 + k);
  w.detach(id);
}

TEST(Worker, AFullQueueDropsTheOldestOrTheNewestClip) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received r;
  const auto b = batching(1, 0ms);
  const auto id = w.attach(r.client(b));
  ClipRecord dropped;
  rec.hold();
  EXPECT_FALSE(w.push(id, job("A", 0), 2, true, b, &dropped));
  rec.wait_batches(1);  // clip 0 is in the model; the queue is empty
  EXPECT_FALSE(w.push(id, job("A", 1), 2, true, b, &dropped));
  EXPECT_FALSE(w.push(id, job("A", 2), 2, true, b, &dropped));
  EXPECT_TRUE(w.push(id, job("A", 3), 2, true, b, &dropped)) << "a third clip overflows 2";
  EXPECT_EQ(dropped.index, 1u) << "drop=oldest";
  EXPECT_TRUE(w.push(id, job("A", 4), 2, false, b, &dropped));
  EXPECT_EQ(dropped.index, 4u) << "drop=newest drops the clip that arrived";
  rec.release();
  w.drain(id);
  {
    std::lock_guard<std::mutex> l(r.lock);
    EXPECT_EQ(r.published, (std::vector<uint64_t>{0, 2, 3})) << "in order, the dropped ones out";
  }
  std::vector<uint64_t> ready;
  for (const auto &c : w.take_ready(id)) ready.push_back(c.clip.index);
  EXPECT_EQ(ready, (std::vector<uint64_t>{0, 2, 3})) << "the element's next buffers carry them";
  EXPECT_EQ(w.stats().dropped, 2u);
  w.detach(id);
}

TEST(Worker, StreamsTakeTurnsInABatchUnderOverload) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received ra, rb, rc;
  const auto b = batching(2, 0ms);
  const auto a = w.attach(ra.client(b)), bb = w.attach(rb.client(b)), c = w.attach(rc.client(b));
  ClipRecord dropped;
  rec.hold();
  w.push(a, job("A", 0), 10, true, b, &dropped);
  rec.wait_batches(1);
  // A has the most clips waiting; B and C must not wait behind them.
  for (uint64_t i = 1; i <= 4; ++i) w.push(a, job("A", i), 10, true, b, &dropped);
  w.push(bb, job("B", 0), 10, true, b, &dropped);
  w.push(c, job("C", 0), 10, true, b, &dropped);
  rec.release();
  w.drain(a);
  w.drain(bb);
  w.drain(c);
  const auto batches = rec.batches();
  ASSERT_GE(batches.size(), 3u);
  EXPECT_EQ(batches[1], (std::vector<std::string>{"B:0", "C:0"}))
      << "after A was served first, B and C go before A's backlog";
  std::vector<std::string> rest;
  for (size_t i = 2; i < batches.size(); ++i)
    rest.insert(rest.end(), batches[i].begin(), batches[i].end());
  EXPECT_EQ(rest, (std::vector<std::string>{"A:1", "A:2", "A:3", "A:4"})) << "A's clips in order";
  w.detach(a);
  w.detach(bb);
  w.detach(c);
}

TEST(Worker, AFlushEndsASyncWaitAndItsClipNeverAnswersTheNextWait) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received r;
  const auto b = batching(1, 0ms);
  const auto id = w.attach(r.client(b));
  rec.hold();
  Outcome o;
  auto waiting =
      std::async(std::launch::async, [&] { return w.classify_now(id, job("A", 0), b, &o); });
  rec.wait_batches(1);
  w.flush_start(id);
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready) << "the flush ends the wait";
  EXPECT_FALSE(waiting.get());
  w.flush_stop(id);
  // The stream goes on (a seek) while clip 0 of before the flush is still in the model: the
  // next wait gets its own clip's outcome, not clip 0's.
  Outcome next;
  auto after =
      std::async(std::launch::async, [&] { return w.classify_now(id, job("A", 1), b, &next); });
  EXPECT_EQ(after.wait_for(200ms), std::future_status::timeout);
  rec.release();
  ASSERT_EQ(after.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(after.get());
  EXPECT_EQ(next.result.clip.index, 1u);
  EXPECT_EQ(rec.batches().size(), 2u);
  w.detach(id);
}

TEST(Worker, DetachWaitsForTheRunningBatchAndDropsWhatWaits) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received r;
  const auto b = batching(1, 0ms);
  const auto id = w.attach(r.client(b));
  ClipRecord dropped;
  rec.hold();
  w.push(id, job("A", 0), 10, true, b, &dropped);
  rec.wait_batches(1);
  w.push(id, job("A", 1), 10, true, b, &dropped);
  auto detached = std::async(std::launch::async, [&] { w.detach(id); });
  EXPECT_EQ(detached.wait_for(200ms), std::future_status::timeout)
      << "detach returns only once no batch holds the stream's clip";
  rec.release();
  ASSERT_EQ(detached.wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec.batches().size(), 1u) << "the waiting clip never reached the model";
  std::lock_guard<std::mutex> l(r.lock);
  EXPECT_TRUE(r.published.empty()) << "an element that left hears nothing more, not even of "
                                      "the clip that was in the model";
}

TEST(Worker, AFailingClipStopsItsStreamOnly) {
  Recorder rec;
  InferenceWorker w([&](std::vector<Job> &j) { return rec.classify(j); });
  Received good, bad;
  const auto b = batching(2, 0ms);
  const auto g = w.attach(good.client(b)), x = w.attach(bad.client(b));
  ClipRecord dropped;
  rec.hold();
  w.push(g, job("good", 0), 10, true, b, &dropped);
  rec.wait_batches(1);
  w.push(x, job("bad", 0), 10, true, b, &dropped);
  w.push(x, job("bad", 1), 10, true, b, &dropped);
  w.push(g, job("good", 1), 10, true, b, &dropped);
  rec.release();
  w.drain(g);
  w.drain(x);
  {
    std::lock_guard<std::mutex> l(bad.lock);
    EXPECT_EQ(bad.failures, (std::vector<std::string>{"bad clip"}));
    EXPECT_TRUE(bad.published.empty());
  }
  std::lock_guard<std::mutex> l(good.lock);
  EXPECT_EQ(good.published, (std::vector<uint64_t>{0, 1}));
  for (const auto &batch : rec.batches())
    for (const auto &name : batch)
      EXPECT_NE(name, "bad:1") << "the failed stream's queue is cleared";
}

}  // namespace
