#include "cyclecast/models/layers.h"

#include <gtest/gtest.h>

#include <functional>

#include "cyclecast/models/losses.h"
#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::kGradientTolerance;
using testing::numeric_gradient;
using testing::random_matrix;
using testing::relative_error;
using Md = Matrix<double>;

Eigen::VectorXd flat(const Md& m) {
  return Eigen::Map<const Eigen::VectorXd>(m.data(), m.size());
}
Md unflat(const Eigen::VectorXd& v, int64_t rows, int64_t cols) {
  return Eigen::Map<const Md>(v.data(), rows, cols);
}

// A block under test: y = forward(params, x); backward gives (dparams, dx) for a given dy.
struct Block {
  int64_t param_count = 0;
  std::function<Md(const Eigen::VectorXd& p, const Md& x)> forward;
  std::function<void(const Eigen::VectorXd& p, const Md& x, const Md& dy, Eigen::VectorXd& dp,
                     Md& dx)>
      backward;
};

// Checks parameter and input gradients of L = sum(R .* y) for a random projection R.
void expect_gradients_match(const Block& block, int64_t in_rows, int64_t batch, uint64_t seed) {
  Rng rng(seed);
  Eigen::VectorXd p(block.param_count);
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] = rng.uniform(-1.0, 1.0);
  const Md x = random_matrix(in_rows, batch, rng, -2.0, 2.0);
  const Md y = block.forward(p, x);
  const Md r = random_matrix(y.rows(), y.cols(), rng);

  Eigen::VectorXd dp = Eigen::VectorXd::Zero(p.size());
  Md dx;
  block.backward(p, x, r, dp, dx);

  if (block.param_count > 0) {
    auto loss_of_params = [&](const Eigen::VectorXd& q) {
      return (block.forward(q, x).array() * r.array()).sum();
    };
    EXPECT_LE(relative_error(dp, numeric_gradient(loss_of_params, p)), kGradientTolerance);
  }
  auto loss_of_input = [&](const Eigen::VectorXd& xv) {
    return (block.forward(p, unflat(xv, in_rows, batch)).array() * r.array()).sum();
  };
  EXPECT_LE(relative_error(flat(dx), numeric_gradient(loss_of_input, flat(x))), kGradientTolerance);
}

TEST(Layers, DenseGradientsMatchFiniteDifferences) {
  ParameterLayout layout;
  const Dense dense = Dense::create(layout, "d", 5, 4);
  Block b;
  b.param_count = layout.size();
  b.forward = [&](const Eigen::VectorXd& p, const Md& x) {
    Md y;
    dense.forward(p.data(), x, y);
    return y;
  };
  b.backward = [&](const Eigen::VectorXd& p, const Md& x, const Md& dy, Eigen::VectorXd& dp,
                   Md& dx) { dense.backward(p.data(), dp.data(), x, dy, &dx); };
  expect_gradients_match(b, 5, 3, 1);
}

TEST(Layers, DenseComputesAffineMap) {
  ParameterLayout layout;
  const Dense dense = Dense::create(layout, "d", 2, 1);
  const std::vector<double> p = {3.0, -1.0, 0.5};  // W = [3 -1], b = 0.5
  Md x(2, 2);
  x << 1.0, 2.0, 4.0, 0.0;
  Md y;
  dense.forward(p.data(), x, y);
  EXPECT_DOUBLE_EQ(y(0, 0), 3.0 - 4.0 + 0.5);
  EXPECT_DOUBLE_EQ(y(0, 1), 6.0 + 0.5);
}

TEST(Layers, LayerNormGradientsMatchFiniteDifferences) {
  ParameterLayout layout;
  const LayerNorm norm = LayerNorm::create(layout, "n", 6);
  Block b;
  b.param_count = layout.size();
  b.forward = [&](const Eigen::VectorXd& p, const Md& x) {
    Md y;
    LayerNorm::Cache<double> cache;
    norm.forward(p.data(), x, y, cache);
    return y;
  };
  b.backward = [&](const Eigen::VectorXd& p, const Md& x, const Md& dy, Eigen::VectorXd& dp,
                   Md& dx) {
    Md y;
    LayerNorm::Cache<double> cache;
    norm.forward(p.data(), x, y, cache);
    norm.backward(p.data(), dp.data(), cache, dy, dx);
  };
  expect_gradients_match(b, 6, 4, 2);
}

TEST(Layers, LayerNormNormalizesEachSample) {
  ParameterLayout layout;
  const LayerNorm norm = LayerNorm::create(layout, "n", 4);
  std::vector<double> p(static_cast<size_t>(layout.size()));
  norm.init(p.data());
  Md x(4, 1);
  x << 1.0, 2.0, 3.0, 6.0;
  Md y;
  LayerNorm::Cache<double> cache;
  norm.forward(p.data(), x, y, cache);
  EXPECT_NEAR(y.mean(), 0.0, 1e-12);
  EXPECT_NEAR(y.array().square().mean(), 1.0, 1e-4);  // eps = 1e-5 shrinks it slightly
}

Block activation_block(void (*fwd)(const Md&, Md&), bool backward_from_input,
                       void (*bwd)(const Md&, const Md&, Md&)) {
  Block b;
  b.forward = [fwd](const Eigen::VectorXd&, const Md& x) {
    Md y;
    fwd(x, y);
    return y;
  };
  b.backward = [fwd, bwd, backward_from_input](const Eigen::VectorXd&, const Md& x, const Md& dy,
                                               Eigen::VectorXd&, Md& dx) {
    Md y;
    fwd(x, y);
    bwd(backward_from_input ? x : y, dy, dx);
  };
  return b;
}

TEST(Layers, ReluGradientsMatchFiniteDifferences) {
  expect_gradients_match(activation_block(relu_forward<double>, false, relu_backward<double>), 5, 4,
                         3);
}

TEST(Layers, TanhGradientsMatchFiniteDifferences) {
  expect_gradients_match(activation_block(tanh_forward<double>, false, tanh_backward<double>), 5, 4,
                         4);
}

TEST(Layers, SigmoidGradientsMatchFiniteDifferences) {
  expect_gradients_match(activation_block(sigmoid_forward<double>, false, sigmoid_backward<double>),
                         5, 4, 5);
}

TEST(Layers, SoftplusGradientsMatchFiniteDifferences) {
  expect_gradients_match(
      activation_block(softplus_forward<double>, true, softplus_backward<double>), 5, 4, 6);
}

TEST(Layers, SoftplusIsStableForLargeInputs) {
  EXPECT_DOUBLE_EQ(softplus(800.0), 800.0);
  EXPECT_GT(softplus(-800.0), -1.0);
  EXPECT_NEAR(softplus(-30.0), std::exp(-30.0), 1e-20);
  EXPECT_NEAR(softplus(0.0), std::log(2.0), 1e-15);
}

TEST(Layers, DropoutGradientsMatchFiniteDifferencesWithFixedMask) {
  Block b;
  b.forward = [](const Eigen::VectorXd&, const Md& x) {
    Rng rng(42);
    Dropout<double> d;
    d.draw(x.rows(), x.cols(), 0.3, rng);
    Md y = x;
    d.forward(y);
    return y;
  };
  b.backward = [](const Eigen::VectorXd&, const Md& x, const Md& dy, Eigen::VectorXd&, Md& dx) {
    Rng rng(42);
    Dropout<double> d;
    d.draw(x.rows(), x.cols(), 0.3, rng);
    dx = dy;
    d.backward(dx);
  };
  expect_gradients_match(b, 6, 5, 7);
}

TEST(Layers, DropoutKeepsExpectationAndSameSeedGivesSameMask) {
  Rng a(9);
  Rng b(9);
  Dropout<double> da;
  Dropout<double> db;
  da.draw(200, 50, 0.1, a);
  db.draw(200, 50, 0.1, b);
  EXPECT_EQ(da.mask, db.mask);
  const double zero_fraction = (da.mask.array() == 0.0).cast<double>().mean();
  EXPECT_NEAR(zero_fraction, 0.1, 0.02);
  EXPECT_NEAR(da.mask.mean(), 1.0, 0.03);
  EXPECT_DOUBLE_EQ(da.mask.maxCoeff(), 1.0 / 0.9);
}

TEST(Layers, DropoutWithRateZeroIsIdentity) {
  Rng rng(1);
  Dropout<double> d;
  d.draw(3, 3, 0.0, rng);
  Md x = Md::Constant(3, 3, 2.0);
  d.forward(x);
  EXPECT_FALSE(d.active());
  EXPECT_EQ(x, Md::Constant(3, 3, 2.0));
}

// Loss blocks: L = loss(pred, target) with a fixed target; the gradient is w.r.t. pred.
using LossFn = double (*)(const Md&, const Md&, double, int64_t, Md*);

void expect_loss_gradient_matches(LossFn fn, double weight, uint64_t seed) {
  Rng rng(seed);
  const Md pred = random_matrix(7, 3, rng);
  const Md target = random_matrix(7, 3, rng);
  const int64_t batch_total = 5;  // a shard of a larger batch
  Md dpred = Md::Zero(7, 3);
  fn(pred, target, weight, batch_total, &dpred);
  auto loss = [&](const Eigen::VectorXd& p) {
    return fn(unflat(p, 7, 3), target, weight, batch_total, nullptr);
  };
  EXPECT_LE(relative_error(flat(dpred), numeric_gradient(loss, flat(pred))), kGradientTolerance);
}

TEST(Losses, MseGradientMatchesFiniteDifferences) {
  expect_loss_gradient_matches(mse_loss<double>, 0.7, 11);
}
TEST(Losses, MaeGradientMatchesFiniteDifferences) {
  expect_loss_gradient_matches(mae_loss<double>, 1.3, 12);
}
TEST(Losses, CosineGradientMatchesFiniteDifferences) {
  expect_loss_gradient_matches(cosine_loss<double>, 2.0, 13);
}

TEST(Losses, ValuesMatchHandComputedExamples) {
  Md pred(2, 2);
  Md target(2, 2);
  pred << 1.0, 0.0, 0.0, 2.0;
  target << 0.0, 0.0, 1.0, 2.0;
  // Column 0: diff (1, -1); column 1: diff (0, 0).
  EXPECT_DOUBLE_EQ(mse_loss<double>(pred, target, 1.0, 2, nullptr), (1.0 + 0.0) / 2.0);
  EXPECT_DOUBLE_EQ(mae_loss<double>(pred, target, 3.0, 2, nullptr), 3.0 * (1.0 + 0.0) / 2.0);
  // Column 0: orthogonal (1 - 0); column 1: parallel (1 - 1).
  EXPECT_NEAR(cosine_loss<double>(pred, target, 1.0, 2, nullptr), 0.5, 1e-15);
}

TEST(Losses, ShardLossesSumToBatchLoss) {
  Rng rng(21);
  const Md pred = random_matrix(4, 6, rng);
  const Md target = random_matrix(4, 6, rng);
  const LossSpec spec{0.5, 0.25, 0.125};
  const double whole = combined_loss(spec, pred, target, 6, static_cast<Md*>(nullptr));
  const double parts =
      combined_loss<double>(spec, pred.leftCols(2), target.leftCols(2), 6, nullptr) +
      combined_loss<double>(spec, pred.rightCols(4), target.rightCols(4), 6, nullptr);
  EXPECT_NEAR(whole, parts, 1e-14);
}

TEST(Losses, CombinedGradientMatchesFiniteDifferences) {
  Rng rng(22);
  const Md pred = random_matrix(5, 4, rng);
  const Md target = random_matrix(5, 4, rng);
  const LossSpec spec{0.5, 0.25, 2.0};
  Md dpred;
  combined_loss(spec, pred, target, 4, &dpred);
  auto loss = [&](const Eigen::VectorXd& p) {
    return combined_loss<double>(spec, unflat(p, 5, 4), target, 4, nullptr);
  };
  EXPECT_LE(relative_error(flat(dpred), numeric_gradient(loss, flat(pred))), kGradientTolerance);
}

}  // namespace
}  // namespace cyclecast::models
