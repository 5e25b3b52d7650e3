#include "cyclecast/models/training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <numeric>
#include <string>

#include "worker_pool.h"

namespace cyclecast::models {

template <typename S>
AdamW<S>::AdamW(int64_t size, AdamWConfig config)
    : config_(config), m_(Vector<S>::Zero(size)), v_(Vector<S>::Zero(size)) {}

template <typename S>
void AdamW<S>::step(S* params, const S* grads, double lr) {
  ++steps_;
  const double t = static_cast<double>(steps_);
  const S b1 = S(config_.beta1);
  const S b2 = S(config_.beta2);
  const S step_size = S(lr / (1.0 - std::pow(config_.beta1, t)));
  const S inv_sqrt_bias2 = S(1.0 / std::sqrt(1.0 - std::pow(config_.beta2, t)));
  const S decay = S(1.0 - lr * config_.weight_decay);
  const S eps = S(config_.eps);
  VectorMap<S> p(params, m_.size());
  ConstVectorMap<S> g(grads, m_.size());
  m_ = b1 * m_ + (S(1) - b1) * g;
  v_ = b2 * v_ + (S(1) - b2) * g.cwiseAbs2();
  // p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps), the order torch.optim.AdamW uses.
  p.array() =
      p.array() * decay - step_size * m_.array() / (v_.array().sqrt() * inv_sqrt_bias2 + eps);
}

double distillation_lambda(const TrainConfig::Distillation& d, int64_t epoch, int64_t epochs) {
  if (epochs <= 1) return d.lambda_start;
  const double progress = static_cast<double>(epoch - 1) / static_cast<double>(epochs - 1);
  return d.lambda_start + (d.lambda_end - d.lambda_start) * std::clamp(progress, 0.0, 1.0);
}

double cosine_learning_rate(double base_lr, double min_lr, int64_t step, int64_t total_steps) {
  if (total_steps <= 0 || step >= total_steps) return min_lr;
  const double progress = static_cast<double>(step) / static_cast<double>(total_steps);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

template <typename S>
double clip_gradient_norm(S* grads, int64_t size, double max_norm) {
  VectorMap<S> g(grads, size);
  const double norm = static_cast<double>(g.norm());
  if (max_norm > 0.0 && norm > max_norm) g *= S(max_norm / (norm + 1e-6));
  return norm;
}

namespace {

template <typename S>
Matrix<S> gather_columns(const Matrix<S>& m, const std::vector<int64_t>& order, int64_t begin,
                         int64_t end) {
  Matrix<S> out(m.rows(), end - begin);
  for (int64_t j = begin; j < end; ++j)
    out.col(j - begin) = m.col(order[static_cast<size_t>(j)]);
  return out;
}

Result<void> check_config(const TrainConfig& c) {
  if (c.epochs <= 0 || c.batch_size <= 0 || c.shard_size <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Training needs epochs, batch_size and shard_size greater than zero.");
  }
  if (!(c.learning_rate > 0.0) || c.min_learning_rate < 0.0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "The learning rate must be positive and the minimum learning rate >= 0.");
  }
  const auto& d = c.distillation;
  if (d.enabled && !(d.lambda_start >= 0.0 && d.lambda_start <= 1.0 && d.lambda_end >= 0.0 &&
                     d.lambda_end <= 1.0)) {
    return make_error(ErrorCode::kInvalidArgument, "Distillation lambdas must lie in [0, 1]; got " +
                                                       std::to_string(d.lambda_start) + " to " +
                                                       std::to_string(d.lambda_end) + ".");
  }
  return {};
}

template <typename S>
Result<void> check_teacher(const Model<S>& model, const Dataset<S>& data) {
  if (data.teacher.rows() != model.output_size() || data.teacher.cols() != data.inputs.cols()) {
    return make_error(ErrorCode::kInvalidArgument, "Distillation needs teacher outputs of " +
                                                       std::to_string(model.output_size()) + " x " +
                                                       std::to_string(data.inputs.cols()) +
                                                       " on the training set; got " +
                                                       std::to_string(data.teacher.rows()) + " x " +
                                                       std::to_string(data.teacher.cols()) + ".");
  }
  return {};
}

}  // namespace

// The two terms of one step's loss: the truth loss scaled by lambda and the KD loss by
// 1 - lambda. A term of weight zero is skipped, so lambda = 1 is plain training bit for bit.
// Not in the anonymous namespace: train()'s shard lambda captures a StepLoss, and a closure with
// a member of an internal-linkage type trips GCC's -Wsubobject-linkage once this file is compiled
// inside a unity batch (cmake/build_cost.cmake), where it is no longer the main file.
namespace training_detail {
struct StepLoss {
  LossSpec truth;
  LossSpec kd;
  bool use_truth = true;
  bool use_kd = false;
};
}  // namespace training_detail
using training_detail::StepLoss;

namespace {

StepLoss step_loss(const TrainConfig& c, double lambda) {
  StepLoss out;
  out.truth = c.loss;
  if (!c.distillation.enabled) return out;
  out.truth.mse_weight *= lambda;
  out.truth.mae_weight *= lambda;
  out.truth.cosine_weight *= lambda;
  out.use_truth = lambda != 0.0;
  out.use_kd = lambda != 1.0;
  const double kd_weight = 1.0 - lambda;
  const bool cosine = c.distillation.kd == TrainConfig::Distillation::Kd::kCosine;
  out.kd = LossSpec{cosine ? 0.0 : kd_weight, 0.0, cosine ? kd_weight : 0.0};
  return out;
}

template <typename S>
Result<void> check_data(const Model<S>& model, const Dataset<S>& data, const char* what) {
  if (data.inputs.rows() != model.input_size() || data.targets.rows() != model.output_size() ||
      data.targets.cols() != data.inputs.cols()) {
    return make_error(
        ErrorCode::kInvalidArgument,
        std::string("The ") + what + " set has inputs of " + std::to_string(data.inputs.rows()) +
            " x " + std::to_string(data.inputs.cols()) + " and targets of " +
            std::to_string(data.targets.rows()) + " x " + std::to_string(data.targets.cols()) +
            "; the model expects " + std::to_string(model.input_size()) + " inputs and " +
            std::to_string(model.output_size()) + " outputs per sample.");
  }
  return {};
}

constexpr int64_t kEvaluationShard = 256;

template <typename S>
double evaluate_with_pool(const Model<S>& model, const S* params, const Dataset<S>& data,
                          const LossSpec& loss, WorkerPool& pool) {
  const int64_t n = data.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t shards = (n + kEvaluationShard - 1) / kEvaluationShard;
  std::vector<double> losses(static_cast<size_t>(shards), 0.0);
  pool.run(shards, [&](int64_t s) {
    const int64_t begin = s * kEvaluationShard;
    const int64_t count = std::min(kEvaluationShard, n - begin);
    Matrix<S> y;
    model.predict(params, data.inputs.middleCols(begin, count), y);
    losses[static_cast<size_t>(s)] = static_cast<double>(
        combined_loss<S>(loss, y, data.targets.middleCols(begin, count), n, nullptr));
  });
  return std::accumulate(losses.begin(), losses.end(), 0.0);
}

}  // namespace

template <typename S>
double evaluate_loss(const Model<S>& model, const S* params, const Dataset<S>& data,
                     const LossSpec& loss, int64_t threads) {
  const FlushDenormals flush;
  WorkerPool pool(threads);
  return evaluate_with_pool(model, params, data, loss, pool);
}

template <typename S>
Matrix<S> predict_all(const Model<S>& model, const S* params, const Matrix<S>& inputs,
                      int64_t threads) {
  const FlushDenormals flush;
  WorkerPool pool(threads);
  const int64_t n = inputs.cols();
  Matrix<S> out(model.output_size(), n);
  const int64_t shards = (n + kEvaluationShard - 1) / kEvaluationShard;
  pool.run(shards, [&](int64_t s) {
    const int64_t begin = s * kEvaluationShard;
    const int64_t count = std::min(kEvaluationShard, n - begin);
    Matrix<S> y;
    model.predict(params, inputs.middleCols(begin, count), y);
    out.middleCols(begin, count) = y;
  });
  return out;
}

// Long on purpose: one epoch loop whose state (shuffled order, shard buffers, optimizer, best
// parameters for early stopping) every step shares; split, it would pass all of it around.
template <typename S>
Result<TrainSummary> train(const Model<S>& model, Vector<S>& params, const Dataset<S>& train_set,
                           const std::type_identity_t<Dataset<S>>* validation_set,
                           const TrainConfig& config, const ProgressCallback& progress) {
  if (auto ok = check_config(config); !ok) return ok.error();
  if (auto ok = check_data(model, train_set, "training"); !ok) return ok.error();
  if (validation_set != nullptr) {
    if (auto ok = check_data(model, *validation_set, "validation"); !ok) return ok.error();
    if (validation_set->size() == 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "The validation set is empty; pass none to train without one.");
    }
  }
  if (params.size() != model.layout().size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "The parameter vector has " + std::to_string(params.size()) +
                          " values; the model has " + std::to_string(model.layout().size()) + ".");
  }
  const int64_t n = train_set.size();
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "The training set is empty.");
  if (config.distillation.enabled) {
    if (auto ok = check_teacher(model, train_set); !ok) return ok.error();
  }

  const FlushDenormals flush;  // for this thread, which takes shards too
  WorkerPool pool(config.threads);
  const int64_t batches = (n + config.batch_size - 1) / config.batch_size;
  const int64_t max_shards = (config.batch_size + config.shard_size - 1) / config.shard_size;
  const int64_t total_steps = batches * config.epochs;
  std::vector<Vector<S>> shard_grads(static_cast<size_t>(max_shards),
                                     Vector<S>::Zero(params.size()));
  std::vector<double> shard_losses(static_cast<size_t>(max_shards), 0.0);
  Vector<S> grads(params.size());
  AdamW<S> optimizer(params.size(), config.adamw);
  Rng shuffle_rng(config.seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});

  TrainSummary summary;
  Vector<S> best_params = params;
  double best_loss = std::numeric_limits<double>::infinity();
  int64_t epochs_since_best = 0;
  double seconds_so_far = 0.0;
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    // Fisher-Yates with our own generator: the same permutation on every platform.
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(shuffle_rng.below(static_cast<uint64_t>(i + 1)));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
    double epoch_loss = 0.0;
    double lr = config.learning_rate;
    const double lambda = config.distillation.enabled
                              ? distillation_lambda(config.distillation, epoch, config.epochs)
                              : 1.0;
    const StepLoss losses = step_loss(config, lambda);
    for (int64_t b = 0; b < batches; ++b, ++step) {
      if (config.should_stop && config.should_stop()) {
        return make_error(ErrorCode::kCancelled, "Training was cancelled in epoch " +
                                                     std::to_string(epoch) + " of " +
                                                     std::to_string(config.epochs) + ".");
      }
      const int64_t begin = b * config.batch_size;
      const int64_t count = std::min(config.batch_size, n - begin);
      const int64_t shards = (count + config.shard_size - 1) / config.shard_size;
      pool.run(shards, [&](int64_t s) {
        const int64_t sb = begin + s * config.shard_size;
        const int64_t se = std::min(sb + config.shard_size, begin + count);
        Vector<S>& g = shard_grads[static_cast<size_t>(s)];
        g.setZero();
        const Matrix<S> x = gather_columns(train_set.inputs, order, sb, se);
        const uint64_t seed = derive_seed(
            config.seed, static_cast<uint64_t>(step) * 4096u + static_cast<uint64_t>(s));
        // Gradients add up in g, and both passes draw the same dropout mask from `seed`, so the
        // sum is the gradient of the weighted loss.
        double shard_loss = 0.0;
        if (losses.use_truth) {
          const Matrix<S> y = gather_columns(train_set.targets, order, sb, se);
          shard_loss += static_cast<double>(
              model.loss_and_gradient(params.data(), x, y, losses.truth, count, seed, g.data()));
        }
        if (losses.use_kd) {
          const Matrix<S> t = gather_columns(train_set.teacher, order, sb, se);
          shard_loss += static_cast<double>(
              model.loss_and_gradient(params.data(), x, t, losses.kd, count, seed, g.data()));
        }
        shard_losses[static_cast<size_t>(s)] = shard_loss;
      });
      grads = shard_grads[0];
      double batch_loss = shard_losses[0];
      for (int64_t s = 1; s < shards; ++s) {
        grads += shard_grads[static_cast<size_t>(s)];
        batch_loss += shard_losses[static_cast<size_t>(s)];
      }
      epoch_loss += batch_loss;
      clip_gradient_norm(grads.data(), grads.size(), config.clip_norm);
      lr = cosine_learning_rate(config.learning_rate, config.min_learning_rate, step, total_steps);
      optimizer.step(params.data(), grads.data(), lr);
    }
    EpochProgress report;
    report.epoch = epoch;
    report.epochs = config.epochs;
    report.train_loss = epoch_loss / static_cast<double>(batches);
    report.learning_rate = lr;
    report.lambda = lambda;
    if (validation_set != nullptr) {
      report.validation_loss =
          evaluate_with_pool(model, params.data(), *validation_set, config.loss, pool);
    }
    report.epoch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds_so_far += report.epoch_seconds;
    report.eta_seconds =
        seconds_so_far / static_cast<double>(epoch) * static_cast<double>(config.epochs - epoch);
    summary.epochs_run = epoch;
    summary.train_losses.push_back(report.train_loss);
    summary.validation_losses.push_back(report.validation_loss);
    summary.epoch_seconds.push_back(report.epoch_seconds);

    bool stop = false;
    if (validation_set != nullptr) {
      if (report.validation_loss < best_loss) {
        best_loss = report.validation_loss;
        best_params = params;
        summary.best_epoch = epoch;
        epochs_since_best = 0;
      } else if (config.patience > 0 && ++epochs_since_best >= config.patience) {
        stop = epoch < config.epochs;
      }
    } else {
      summary.best_epoch = epoch;
    }
    if (progress) progress(report);
    if (stop) {
      summary.stopped_early = true;
      break;
    }
  }
  if (validation_set != nullptr && summary.best_epoch > 0) {
    params = best_params;
    summary.best_validation_loss = best_loss;
  }
  return summary;
}

#define CYCLECAST_INSTANTIATE_TRAINING(S)                                                         \
  template class AdamW<S>;                                                                        \
  template double clip_gradient_norm<S>(S*, int64_t, double);                                     \
  template double evaluate_loss<S>(const Model<S>&, const S*, const Dataset<S>&, const LossSpec&, \
                                   int64_t);                                                      \
  template Matrix<S> predict_all<S>(const Model<S>&, const S*, const Matrix<S>&, int64_t);        \
  template Result<TrainSummary> train<S>(const Model<S>&, Vector<S>&, const Dataset<S>&,          \
                                         const Dataset<S>*, const TrainConfig&,                   \
                                         const ProgressCallback&);

CYCLECAST_INSTANTIATE_TRAINING(float)
CYCLECAST_INSTANTIATE_TRAINING(double)

}  // namespace cyclecast::models
