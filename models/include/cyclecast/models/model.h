// The interface every trainable model offers to the trainer, the model files and the tools.
#pragma once

#include <cstdint>
#include <utility>

#include "cyclecast/models/losses.h"
#include "cyclecast/models/tensor.h"

namespace cyclecast::models {

// A model maps a batch of inputs (input_size x batch) to predictions (output_size x batch) with
// parameters held outside it, in a flat vector laid out by layout(). Implementations keep no
// per-call state, so one const model serves any number of threads at once.
template <typename S>
class Model {
 public:
  virtual ~Model() = default;

  virtual const ParameterLayout& layout() const = 0;
  virtual int64_t input_size() const = 0;
  virtual int64_t output_size() const = 0;

  // Writes the seeded initial parameters into params (layout().size() values).
  virtual void init(S* params, uint64_t seed) const = 0;

  // Inference: dropout off.
  virtual void predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const = 0;

  // Forward in training mode (dropout masks drawn from dropout_seed), the loss against target
  // divided by batch_total (see losses.h), and backward: dL/dparams is *added* to grads.
  // Returns the loss of these columns.
  virtual S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                              const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                              S* grads) const = 0;
};

// What every model class shares besides the interface: its configuration, its parameter layout
// (which the derived constructor fills) and a forecast of config.horizon steps. The derived class
// declares the computations (init, predict, loss_and_gradient) and input_size.
template <typename S, typename Config>
class ConfiguredModel : public Model<S> {
 public:
  const Config& config() const { return config_; }
  const ParameterLayout& layout() const override { return layout_; }
  int64_t output_size() const override { return config_.horizon; }

 protected:
  explicit ConfiguredModel(Config config) : config_(std::move(config)) {}

  Config config_;
  ParameterLayout layout_;
};

}  // namespace cyclecast::models
