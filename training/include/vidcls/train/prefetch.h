// Batches made on a background thread and handed over through a bounded queue, so the training
// step rarely waits for data. A batch depends only on its index (the caller derives its random
// numbers from the index), so the order of work on the thread never changes what is trained on.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <torch/types.h>

namespace vidcls::train {

struct Batch {
  torch::Tensor inputs;  // [B, ...]
  torch::Tensor labels;  // int64 [B]
};

class PrefetchLoader {
 public:
  using MakeBatch = std::function<Batch(size_t index)>;

  // Makes batches 0 .. n_batches-1 in order, at most `capacity` ahead of the consumer. The
  // worker runs LibTorch with one intra-op thread, leaving the cores to the training step.
  PrefetchLoader(size_t n_batches, MakeBatch make, size_t capacity = 4);
  ~PrefetchLoader();  // stops the worker and waits for it
  PrefetchLoader(const PrefetchLoader &) = delete;
  PrefetchLoader &operator=(const PrefetchLoader &) = delete;

  // The next batch, std::nullopt after the last. Rethrows what the worker threw.
  std::optional<Batch> next();
  // Seconds next() spent blocked.
  double wait_seconds() const { return wait_seconds_; }

 private:
  void run();

  size_t n_batches_, capacity_;
  MakeBatch make_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  size_t produced_ = 0, consumed_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  double wait_seconds_ = 0;
  std::thread worker_;
};

}  // namespace vidcls::train
