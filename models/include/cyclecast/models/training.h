// Training machinery: AdamW, cosine learning-rate schedule, gradient-norm clipping, early
// stopping, and a mini-batch trainer that spreads each batch over threads with a deterministic
// reduction.
//
// Determinism: a mini-batch is cut into shards of `shard_size` samples (a fixed partition that
// does not depend on the thread count). Each shard's gradient goes to its own buffer, with dropout
// masks drawn from a seed derived from (seed, step, shard), and the buffers are summed in shard
// order on one thread. Which thread computed a shard therefore cannot change a single bit of the
// result: the same seed gives identical weights with 1, 2 or 16 threads.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "cyclecast/models/model.h"
#include "cyclecast/result.h"

namespace cyclecast::models {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled, applied to every parameter (as torch.optim.AdamW)
};

// Adam with decoupled weight decay (Loshchilov & Hutter). The moments are kept in double-free
// scalar S, as PyTorch keeps them in the parameter dtype.
template <typename S>
class AdamW {
 public:
  AdamW(int64_t size, AdamWConfig config);
  // One update of params with gradient grads at learning rate lr.
  void step(S* params, const S* grads, double lr);
  int64_t steps() const { return steps_; }

 private:
  AdamWConfig config_;
  Vector<S> m_;
  Vector<S> v_;
  int64_t steps_ = 0;
};

// Cosine decay from base_lr at step 0 to min_lr at step total_steps (and after).
double cosine_learning_rate(double base_lr, double min_lr, int64_t step, int64_t total_steps);

// Scales grads so that their L2 norm is at most max_norm (no-op when max_norm <= 0 or the norm
// is already below). Returns the norm before clipping.
template <typename S>
double clip_gradient_norm(S* grads, int64_t size, double max_norm);

template <typename S>
struct Dataset {
  Matrix<S> inputs;   // input_size x samples
  Matrix<S> targets;  // output_size x samples
  // A teacher's predictions for distillation, output_size x samples; empty when there is none.
  // Only the training set's teacher is used; validation is always against `targets`.
  Matrix<S> teacher;
  int64_t size() const { return inputs.cols(); }
};

struct TrainConfig {
  int64_t epochs = 100;
  int64_t batch_size = 64;
  int64_t shard_size = 16;  // samples per reduction shard; part of the result, not a tuning knob
  double learning_rate = 1e-3;
  double min_learning_rate = 1e-5;
  AdamWConfig adamw;
  double clip_norm = 1.0;  // <= 0: no clipping
  int64_t patience = 0;    // epochs without validation improvement before stopping; 0: never
  int64_t threads = 0;     // 0: all hardware threads
  uint64_t seed = 1;       // shuffling and dropout (initialization is the model's own seed)
  LossSpec loss;

  // Knowledge distillation: the training loss becomes
  //   lambda * loss(student, targets) + (1 - lambda) * KD(student, teacher)
  // with lambda rising linearly from lambda_start (epoch 1) to lambda_end (last epoch), so the
  // student leans on the teacher's smoother targets early and on the truth late. KD kMse is the
  // mean squared error to the teacher's outputs, kCosine the cosine-embedding loss to them.
  // Needs Dataset::teacher on the training set. Each term is its own forward/backward pass with
  // the same dropout mask, so it works for every model and the sum is the exact gradient.
  struct Distillation {
    bool enabled = false;
    double lambda_start = 0.1;
    double lambda_end = 0.9;
    enum class Kd { kMse, kCosine } kd = Kd::kMse;
  } distillation;

  // Checked between mini-batches; returning true stops training with kCancelled (params then
  // hold the weights after the last completed step). Empty: never stop.
  std::function<bool()> should_stop;
};

// The truth weight lambda of distillation at a 1-based epoch of `epochs`.
double distillation_lambda(const TrainConfig::Distillation& distillation, int64_t epoch,
                           int64_t epochs);

struct EpochProgress {
  int64_t epoch = 0;  // 1-based
  int64_t epochs = 0;
  double train_loss = 0.0;  // mean over the epoch's batches, dropout on
  double validation_loss = std::numeric_limits<double>::quiet_NaN();  // NaN without validation
  double learning_rate = 0.0;
  double epoch_seconds = 0.0;
  double eta_seconds = 0.0;  // remaining epochs at the mean pace so far
  double lambda = 1.0;       // truth weight of the distillation loss (1 without distillation)
};
using ProgressCallback = std::function<void(const EpochProgress&)>;

struct TrainSummary {
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;  // epoch whose weights were kept (the last one without validation)
  double best_validation_loss = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;
  std::vector<double> train_losses;
  std::vector<double> validation_losses;
  std::vector<double> epoch_seconds;
};

// Trains params (already initialized) in place. With a validation set the weights of the best
// validation epoch are kept. The reported train loss is the distillation loss when distilling;
// the validation loss is always config.loss against the validation targets.
// Errors: kInvalidArgument for shape mismatches or bad settings (including distillation without a
// teacher), kCancelled when should_stop asked to stop.
template <typename S>
Result<TrainSummary> train(const Model<S>& model, Vector<S>& params, const Dataset<S>& train_set,
                           const std::type_identity_t<Dataset<S>>* validation_set,
                           const TrainConfig& config, const ProgressCallback& progress = {});

// Mean loss (dropout off) over a data set, computed in shards of 256 samples.
template <typename S>
double evaluate_loss(const Model<S>& model, const S* params, const Dataset<S>& data,
                     const LossSpec& loss, int64_t threads = 0);

// Predictions (dropout off) for all inputs, output_size x samples, in parallel.
template <typename S>
Matrix<S> predict_all(const Model<S>& model, const S* params, const Matrix<S>& inputs,
                      int64_t threads = 0);

}  // namespace cyclecast::models
