#include "worker_pool.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace cyclecast::models {

#if defined(__SSE__)
// MXCSR bit 15: flush-to-zero; bit 6: denormals-are-zero.
constexpr unsigned int kFlushDenormalBits = 0x8040u;
FlushDenormals::FlushDenormals() : saved_(_mm_getcsr()) {
  _mm_setcsr(saved_ | kFlushDenormalBits);
}
FlushDenormals::~FlushDenormals() {
  _mm_setcsr(saved_);
}
#else
FlushDenormals::FlushDenormals() = default;
FlushDenormals::~FlushDenormals() = default;
#endif

WorkerPool::WorkerPool(int64_t threads) {
  int64_t n = threads;
  if (n <= 0) n = static_cast<int64_t>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  for (int64_t i = 1; i < n; ++i)
    workers_.emplace_back([this] { work_loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_)
    t.join();
}

void WorkerPool::run(int64_t count, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    next_ = 0;
    finished_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return finished_ == count_; });
  task_ = nullptr;
}

void WorkerPool::drain() {
  for (;;) {
    const std::function<void(int64_t)>* task = nullptr;
    int64_t index = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (task_ == nullptr || next_ >= count_) return;
      task = task_;
      index = next_++;
    }
    (*task)(index);
    std::lock_guard<std::mutex> lock(mutex_);
    if (++finished_ == count_) done_.notify_all();
  }
}

void WorkerPool::work_loop() {
  const FlushDenormals flush;
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    drain();
  }
}

}  // namespace cyclecast::models
