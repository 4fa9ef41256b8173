#include "vidcls/train/prefetch.h"

#include <chrono>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vidcls::train {

PrefetchLoader::PrefetchLoader(size_t n_batches, MakeBatch make, size_t capacity)
    : n_batches_(n_batches), capacity_(capacity > 0 ? capacity : 1), make_(std::move(make)) {
  worker_ = std::thread([this] { run(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void PrefetchLoader::run() {
#ifdef _OPENMP
  // OpenMP's thread count is per thread: this only narrows the worker's parallel regions.
  omp_set_num_threads(1);
#endif
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < n_batches_; ++i) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || queue_.size() < capacity_; });
      if (stop_) return;
    }
    Batch b;
    try {
      b = make_(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(b));
      ++produced_;
    }
    cv_.notify_all();
  }
}

std::optional<Batch> PrefetchLoader::next() {
  if (consumed_ >= n_batches_) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return !queue_.empty() || error_ != nullptr; });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace vidcls::train
