#include <gtest/gtest.h>

#include "cyclecast/models/euler_student.h"
#include "cyclecast/models/ltc.h"
#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::kGradientTolerance;
using testing::numeric_gradient;
using testing::random_matrix;
using testing::relative_error;
using Md = Matrix<double>;

// Gradient of loss_and_gradient around the model's own (seeded) initialization, perturbed so
// that no parameter sits at a symmetric special value.
void expect_model_gradient_matches(const Model<double>& model, int64_t batch, uint64_t seed,
                                   const LossSpec& loss = LossSpec{}) {
  Rng rng(seed);
  Eigen::VectorXd p(model.layout().size());
  model.init(p.data(), seed);
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] += rng.uniform(-0.1, 0.1);
  const Md x = random_matrix(model.input_size(), batch, rng);
  const Md target = random_matrix(model.output_size(), batch, rng);
  Eigen::VectorXd grads = Eigen::VectorXd::Zero(p.size());
  model.loss_and_gradient(p.data(), x, target, loss, batch, 0, grads.data());
  auto f = [&](const Eigen::VectorXd& q) {
    Eigen::VectorXd unused = Eigen::VectorXd::Zero(q.size());
    return model.loss_and_gradient(q.data(), x, target, loss, batch, 0, unused.data());
  };
  EXPECT_LE(relative_error(grads, numeric_gradient(f, p)), kGradientTolerance);
}

LtcConfig small_ltc(int64_t unfolds) {
  LtcConfig c;
  c.input_len = 3;
  c.input_features = 2;
  c.units = 4;
  c.unfolds = unfolds;
  c.horizon = 3;
  return c;
}

TEST(Ltc, GradientMatchesFiniteDifferencesWithOneUnfold) {
  expect_model_gradient_matches(LtcModel<double>(small_ltc(1)), 3, 41);
}

TEST(Ltc, GradientMatchesFiniteDifferencesThroughSeveralUnfolds) {
  expect_model_gradient_matches(LtcModel<double>(small_ltc(6)), 3, 42);
  expect_model_gradient_matches(LtcModel<double>(small_ltc(3)), 2, 43, LossSpec{0.5, 0.2, 1.0});
}

TEST(Ltc, GradientIsTheSameWhetherGatesAreKeptOrRecomputed) {
  LtcConfig recompute = small_ltc(3);
  recompute.gate_cache_bytes = 0;
  expect_model_gradient_matches(LtcModel<double>(recompute), 3, 44);
  // And bit for bit the same as with kept gates.
  const LtcModel<double> keep(small_ltc(3));
  const LtcModel<double> again(recompute);
  Eigen::VectorXd p(keep.layout().size());
  keep.init(p.data(), 45);
  Rng rng(46);
  const Md x = random_matrix(keep.input_size(), 2, rng);
  const Md target = random_matrix(keep.output_size(), 2, rng);
  Eigen::VectorXd g1 = Eigen::VectorXd::Zero(p.size());
  Eigen::VectorXd g2 = Eigen::VectorXd::Zero(p.size());
  keep.loss_and_gradient(p.data(), x, target, LossSpec{}, 2, 0, g1.data());
  again.loss_and_gradient(p.data(), x, target, LossSpec{}, 2, 0, g2.data());
  EXPECT_EQ(g1, g2);
}

TEST(Ltc, ParameterCountFollowsTheArchitecture) {
  // input affine 2 F; sensory 4 F N; synapses 4 N^2; gleak, vleak, cm 3 N; head N H + H.
  const LtcModel<float> teacher(LtcConfig{});
  EXPECT_EQ(teacher.layout().size(), 2 + 4 * 64 + 4 * 64 * 64 + 3 * 64 + 64 * 100 + 100);
}

TEST(Ltc, PotentialsStayBetweenReversalAndLeakExtremes) {
  // The fused step is a convex combination of v, vl and erev (all in [-1, 1] at init) with
  // positive weights, so the state can never leave [-1, 1], however large the input.
  LtcConfig c = small_ltc(6);
  c.horizon = 4;
  const LtcModel<double> model(c);
  Eigen::VectorXd p(model.layout().size());
  model.init(p.data(), 3);
  // Make the head the identity so the output is the final state.
  const auto& tensors = model.layout().tensors();
  const TensorSpec& head_w = tensors[tensors.size() - 2];
  const TensorSpec& head_b = tensors.back();
  Eigen::Map<Md>(p.data() + head_w.offset, 4, 4).setIdentity();
  Eigen::Map<Eigen::VectorXd>(p.data() + head_b.offset, 4).setZero();
  Md x = Md::Constant(model.input_size(), 2, 1000.0);
  x.col(1).setConstant(-1000.0);
  Md y;
  model.predict(p.data(), x, y);
  EXPECT_LE(y.cwiseAbs().maxCoeff(), 1.0);
}

EulerStudentConfig small_student(int64_t width, int64_t rank) {
  EulerStudentConfig c;
  c.input_len = 6;
  c.input_features = 2;
  c.width = width;
  c.recurrent_rank = rank;
  c.horizon = 4;
  c.step_size = 0.7;
  return c;
}

TEST(EulerStudent, GradientMatchesFiniteDifferencesWithDenseRecurrence) {
  expect_model_gradient_matches(EulerStudentModel<double>(small_student(5, 0)), 3, 51);
}

TEST(EulerStudent, GradientMatchesFiniteDifferencesWithLowRankRecurrence) {
  expect_model_gradient_matches(EulerStudentModel<double>(small_student(6, 2)), 3, 52);
}

TEST(EulerStudent, LowRankRecurrenceEqualsItsDenseExpansion) {
  // diag(d) + U V^T applied through RecurrentMatrix equals the explicit dense matrix.
  ParameterLayout layout;
  const RecurrentMatrix m = RecurrentMatrix::create(layout, "w", 5, 2);
  Eigen::VectorXd p(layout.size());
  Rng rng(3);
  m.init(p.data(), rng);
  const Md dense = Eigen::VectorXd(Eigen::Map<Eigen::VectorXd>(p.data() + m.d_offset, 5))
                       .asDiagonal()
                       .toDenseMatrix() +
                   Eigen::Map<Md>(p.data() + m.u_offset, 5, 2) *
                       Eigen::Map<Md>(p.data() + m.v_offset, 5, 2).transpose();
  const Md h = random_matrix(5, 3, rng);
  Md z;
  m.apply(p.data(), h, z);
  EXPECT_LT((z - dense * h).cwiseAbs().maxCoeff(), 1e-14);
  EXPECT_EQ(layout.size(), 5 + 2 * 5 * 2);
}

TEST(EulerStudent, ParameterCountFollowsTheArchitecture) {
  // input 2 W (F = 1); alpha, beta 2 W; W^2 or W + 2 W r; head W H + H.
  EXPECT_EQ(EulerStudentModel<float>(EulerStudentConfig{}).layout().size(),
            32 + 32 + 256 + 1600 + 100);
  EulerStudentConfig low_rank;
  low_rank.recurrent_rank = 2;
  EXPECT_EQ(EulerStudentModel<float>(low_rank).layout().size(), 32 + 32 + 16 + 64 + 1700);
}

}  // namespace
}  // namespace cyclecast::models
