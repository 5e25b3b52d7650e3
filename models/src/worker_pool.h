// A fixed set of threads that run numbered tasks; the calling thread takes part. Private to
// models/: the trainer uses it for shards, whose results never depend on which thread ran them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cyclecast::models {

// Makes the calling thread flush denormal floats to zero (x86 FTZ and DAZ) until destroyed.
// Gradients pushed back through hundreds of LTC unfolds decay into denormals, and each
// arithmetic operation on one costs ~100 cycles of microcode: without this the LTC backward
// pass ran about 10x slower. Values this small (< 1e-38) carry no information for training.
class FlushDenormals {
 public:
  FlushDenormals();
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned int saved_ = 0;
};

// Worker threads flush denormals to zero (FlushDenormals) for their whole life.
class WorkerPool {
 public:
  // threads <= 0: one per hardware thread. The pool starts threads - 1 workers.
  explicit WorkerPool(int64_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int64_t threads() const { return static_cast<int64_t>(workers_.size()) + 1; }

  // Calls task(i) once for every i in [0, count) and returns when all have finished.
  void run(int64_t count, const std::function<void(int64_t)>& task);

 private:
  void work_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t count_ = 0;
  int64_t next_ = 0;
  int64_t finished_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace cyclecast::models
