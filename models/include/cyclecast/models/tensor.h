// Tensors of the learning core: Eigen matrices with the batch as columns, one flat parameter
// vector per model described by a ParameterLayout, and a seeded random generator whose output is
// the same on every platform (so a seed names one set of weights everywhere).
//
// Every layer and model is a template on the scalar S: gradient checks run in double, training in
// float. Parameters never live inside layers; a layer only knows the offsets of its tensors in the
// flat vector, so that optimizers, gradient clipping, model files and the deterministic parallel
// reduction all work on one contiguous array.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

namespace cyclecast::models {

// features x batch (column b is sample b). Column-major, so one sample is contiguous.
template <typename S>
using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <typename S>
using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <typename S>
using RowVector = Eigen::Matrix<S, 1, Eigen::Dynamic>;
template <typename S>
using MatrixMap = Eigen::Map<Matrix<S>>;
template <typename S>
using ConstMatrixMap = Eigen::Map<const Matrix<S>>;
template <typename S>
using VectorMap = Eigen::Map<Vector<S>>;
template <typename S>
using ConstVectorMap = Eigen::Map<const Vector<S>>;

// One named tensor inside a flat parameter vector (column-major rows x cols at `offset`).
struct TensorSpec {
  std::string name;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t offset = 0;
  int64_t size() const { return rows * cols; }
};

// The ordered list of a model's tensors. Order is part of the model: it fixes the flat layout, the
// order of tensors in model files and the order in which gradients are summed.
class ParameterLayout {
 public:
  // Appends a rows x cols tensor and returns its offset in the flat vector.
  int64_t add(std::string name, int64_t rows, int64_t cols) {
    TensorSpec spec{std::move(name), rows, cols, size_};
    size_ += spec.size();
    tensors_.push_back(std::move(spec));
    return tensors_.back().offset;
  }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  int64_t size() const { return size_; }

 private:
  std::vector<TensorSpec> tensors_;
  int64_t size_ = 0;
};

// SplitMix64: tiny, fast, and fully specified, unlike the std:: distributions whose output differs
// between standard libraries. Used for initialization, shuffling and dropout masks.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0 (modulo bias is below 2^-40 for the sizes used here).
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Derives an independent stream from a seed and a tag (epoch, step, shard...), so that parallel
// work can draw random numbers without sharing a generator.
inline uint64_t derive_seed(uint64_t seed, uint64_t tag) {
  Rng rng(seed ^ (tag * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull));
  return rng.next();
}

}  // namespace cyclecast::models
