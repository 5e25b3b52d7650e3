#include "cyclecast/models/pruning.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::random_matrix;

StudentConfig config_of(int64_t features, int64_t width, int64_t steps = 2) {
  StudentConfig c;
  c.input_size = 12;
  c.features = features;
  c.width = width;
  c.euler_steps = steps;
  c.horizon = 6;
  return c;
}

// Seeded parameters with a non-zero head (init leaves it at zero).
Vector<float> trained_like(const StudentConfig& c, uint64_t seed) {
  const StudentModel<float> model(c);
  Vector<float> p(model.layout().size());
  model.init(p.data(), seed);
  Rng rng(seed + 1);
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] += static_cast<float>(rng.uniform(-0.3, 0.3));
  return p;
}

// Silences hidden unit u: nothing of it reaches the output (G and Wr columns zero) and its own
// weights are zero too, so it ranks below every live unit. alpha and beta are left non-zero: they
// only shape the unit's own state, which feeds nothing.
void kill_unit(const StudentModel<float>& model, Vector<float>& p, int64_t u) {
  const StudentConfig& c = model.config();
  const StudentTensors& t = model.tensors();
  MatrixMap<float>(p.data() + t.lift, c.width, c.features).row(u).setZero();
  MatrixMap<float>(p.data() + t.recurrent, c.width, c.width).row(u).setZero();
  MatrixMap<float>(p.data() + t.recurrent, c.width, c.width).col(u).setZero();
  MatrixMap<float>(p.data() + t.head, c.horizon, c.width).col(u).setZero();
  p[t.lift_bias + u] = 0.0f;
  p[t.liquid_bias + u] = 0.0f;
  p[t.alpha + u] = 0.5f;
  p[t.beta + u] = 0.5f;
}

// Feature f carries nothing: its row of E is zero (so z_f = 0), and its A and D columns too.
void kill_feature(const StudentModel<float>& model, Vector<float>& p, int64_t f) {
  const StudentConfig& c = model.config();
  const StudentTensors& t = model.tensors();
  MatrixMap<float>(p.data() + t.encoder, c.features, c.input_size).row(f).setZero();
  MatrixMap<float>(p.data() + t.lift, c.width, c.features).col(f).setZero();
  MatrixMap<float>(p.data() + t.bypass, c.horizon, c.features).col(f).setZero();
}

TEST(Pruning, SizesShrinkAsAsked) {
  const StudentConfig c = config_of(8, 16);
  const Vector<float> p = trained_like(c, 1);
  auto pruned = prune_student(c, p.data(), 0.5, 0.25);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(pruned->config.width, 8);
  EXPECT_EQ(pruned->config.features, 6);
  EXPECT_EQ(pruned->config.input_size, c.input_size);
  EXPECT_EQ(pruned->config.horizon, c.horizon);
  EXPECT_EQ(pruned->config.euler_steps, c.euler_steps);
  EXPECT_EQ(pruned->params.size(), student_parameter_count(pruned->config));
  EXPECT_EQ(pruned->kept_units.size(), 8u);
  EXPECT_EQ(pruned->kept_features.size(), 6u);

  // floor(0.3 * 16) = 4 units and floor(0.3 * 8) = 2 features go.
  auto floor_cut = prune_student(c, p.data(), 0.3, 0.3);
  ASSERT_TRUE(floor_cut.ok());
  EXPECT_EQ(floor_cut->config.width, 12);
  EXPECT_EQ(floor_cut->config.features, 6);
}

TEST(Pruning, KeepsAtLeastOneUnitAndFeature) {
  const StudentConfig c = config_of(3, 5);
  const Vector<float> p = trained_like(c, 2);
  auto pruned = prune_student(c, p.data(), 1.0, 1.0);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->config.width, 1);
  EXPECT_EQ(pruned->config.features, 1);
  EXPECT_EQ(pruned->params.size(), student_parameter_count(pruned->config));
}

TEST(Pruning, ZeroRatiosKeepTheModelBitForBit) {
  const StudentConfig c = config_of(4, 6);
  const Vector<float> p = trained_like(c, 3);
  auto pruned = prune_student(c, p.data(), 0.0, 0.0);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->params, p);
  EXPECT_EQ(pruned->kept_units, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(Pruning, RemovingDeadUnitsAndFeaturesLeavesOutputsUnchanged) {
  const StudentConfig c = config_of(6, 10, 3);
  const StudentModel<float> model(c);
  Vector<float> p = trained_like(c, 4);
  for (int64_t u : {1, 4, 7, 8})
    kill_unit(model, p, u);
  for (int64_t f : {0, 3})
    kill_feature(model, p, f);
  auto pruned = prune_student(c, p.data(), 0.4, 2.0 / 6.0);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  EXPECT_EQ(pruned->kept_units, (std::vector<int64_t>{0, 2, 3, 5, 6, 9}));
  EXPECT_EQ(pruned->kept_features, (std::vector<int64_t>{1, 2, 4, 5}));

  Rng rng(5);
  const Matrix<float> x = random_matrix(c.input_size, 7, rng).cast<float>();
  Matrix<float> before;
  Matrix<float> after;
  model.predict(p.data(), x, before);
  StudentModel<float>(pruned->config).predict(pruned->params.data(), x, after);
  // The removed terms are exact zeros; only the summation order of the products may differ.
  const float eps = std::numeric_limits<float>::epsilon();
  EXPECT_LE((before - after).cwiseAbs().maxCoeff(), 8 * eps * before.cwiseAbs().maxCoeff());
}

TEST(Pruning, PruningLiveUnitsChangesTheOutputs) {
  // The counterpart of the test above: the exactness comes from the units being dead.
  const StudentConfig c = config_of(4, 8);
  const StudentModel<float> model(c);
  const Vector<float> p = trained_like(c, 6);
  auto pruned = prune_student(c, p.data(), 0.5, 0.0);
  ASSERT_TRUE(pruned.ok());
  Rng rng(7);
  const Matrix<float> x = random_matrix(c.input_size, 3, rng).cast<float>();
  Matrix<float> before;
  Matrix<float> after;
  model.predict(p.data(), x, before);
  StudentModel<float>(pruned->config).predict(pruned->params.data(), x, after);
  EXPECT_GT((before - after).cwiseAbs().maxCoeff(), 1e-3f);
}

TEST(Pruning, RemovesTheSmallestNormUnitsAndFeatures) {
  const StudentConfig c = config_of(5, 6);
  const StudentModel<float> model(c);
  Vector<float> p = trained_like(c, 8);
  // Scale units 2 and 5 down, and feature 4, so they have the smallest groups.
  const StudentTensors& t = model.tensors();
  for (int64_t u : {2, 5}) {
    MatrixMap<float>(p.data() + t.lift, c.width, c.features).row(u) *= 0.01f;
    MatrixMap<float>(p.data() + t.recurrent, c.width, c.width).row(u) *= 0.01f;
    MatrixMap<float>(p.data() + t.recurrent, c.width, c.width).col(u) *= 0.01f;
    MatrixMap<float>(p.data() + t.head, c.horizon, c.width).col(u) *= 0.01f;
    p[t.lift_bias + u] = p[t.liquid_bias + u] = 0.0f;
    p[t.alpha + u] = p[t.beta + u] = 0.1f;
  }
  MatrixMap<float>(p.data() + t.encoder, c.features, c.input_size).row(4) *= 0.01f;
  MatrixMap<float>(p.data() + t.lift, c.width, c.features).col(4) *= 0.01f;
  MatrixMap<float>(p.data() + t.bypass, c.horizon, c.features).col(4) *= 0.01f;

  const std::vector<double> unit_norms = student_unit_norms(c, p.data());
  ASSERT_EQ(unit_norms.size(), 6u);
  for (int64_t u : {0, 1, 3, 4}) {
    EXPECT_GT(unit_norms[static_cast<size_t>(u)], unit_norms[2]);
    EXPECT_GT(unit_norms[static_cast<size_t>(u)], unit_norms[5]);
  }
  auto pruned = prune_student(c, p.data(), 2.0 / 6.0, 0.2);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->kept_units, (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(pruned->kept_features, (std::vector<int64_t>{0, 1, 2, 3}));

  // The kept weights are the original ones, in order: A's row for unit 3, column for feature 1.
  ConstMatrixMap<float> a_old(p.data() + t.lift, c.width, c.features);
  const StudentModel<float> small(pruned->config);
  ConstMatrixMap<float> a_new(pruned->params.data() + small.tensors().lift, 4, 4);
  EXPECT_EQ(a_new(2, 1), a_old(3, 1));
  ConstMatrixMap<float> wr_old(p.data() + t.recurrent, c.width, c.width);
  ConstMatrixMap<float> wr_new(pruned->params.data() + small.tensors().recurrent, 4, 4);
  EXPECT_EQ(wr_new(3, 2), wr_old(4, 3));
}

TEST(Pruning, UnitNormCountsEveryWeightOfTheGroupOnce) {
  const StudentConfig c = config_of(2, 3, 1);
  const StudentModel<float> model(c);
  Vector<float> p = Vector<float>::Zero(model.layout().size());
  const StudentTensors& t = model.tensors();
  // Unit 1: A row (3, 0), Wr(1, 1) = 2 (in its row and its column), G(0, 1) = 4, alpha = beta = 0.
  MatrixMap<float>(p.data() + t.lift, c.width, c.features)(1, 0) = 3.0f;
  MatrixMap<float>(p.data() + t.recurrent, c.width, c.width)(1, 1) = 2.0f;
  MatrixMap<float>(p.data() + t.head, c.horizon, c.width)(0, 1) = 4.0f;
  const std::vector<double> norms = student_unit_norms(c, p.data());
  EXPECT_DOUBLE_EQ(norms[1], std::sqrt(9.0 + 4.0 + 16.0));
  EXPECT_DOUBLE_EQ(norms[0], 0.0);
  // Feature 0: E row zero, A column (0, 3, 0), D column zero.
  EXPECT_DOUBLE_EQ(student_feature_norms(c, p.data())[0], 3.0);
}

TEST(Pruning, RefusesInvalidRatiosAndConfigurations) {
  const StudentConfig c = config_of(4, 4);
  const Vector<float> p = trained_like(c, 9);
  for (double bad : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    auto width = prune_student(c, p.data(), bad, 0.0);
    ASSERT_FALSE(width.ok()) << bad;
    EXPECT_EQ(width.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(width.error().message.find("width"), std::string::npos);
    auto features = prune_student(c, p.data(), 0.0, bad);
    ASSERT_FALSE(features.ok()) << bad;
    EXPECT_NE(features.error().message.find("feature"), std::string::npos);
  }
  StudentConfig empty = c;
  empty.width = 0;
  EXPECT_FALSE(prune_student(empty, p.data(), 0.5, 0.5).ok());
  EXPECT_FALSE(prune_student(c, nullptr, 0.5, 0.5).ok());
}

}  // namespace
}  // namespace cyclecast::models
