#include "cyclecast/models/dlnet.h"

#include <gtest/gtest.h>

#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::kGradientTolerance;
using testing::numeric_gradient;
using testing::random_matrix;
using testing::relative_error;
using Md = Matrix<double>;

// Random parameters (not the init) so that every term of the gradient is exercised.
Eigen::VectorXd random_params(const Model<double>& model, uint64_t seed) {
  Rng rng(seed);
  Eigen::VectorXd p(model.layout().size());
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] = rng.uniform(-0.8, 0.8);
  return p;
}

// Checks dL/dparams (all of them, or `indices`) of loss_and_gradient against finite differences.
void expect_model_gradient_matches(const Model<double>& model, const LossSpec& loss, int64_t batch,
                                   uint64_t seed, const std::vector<Eigen::Index>& indices = {}) {
  Rng rng(seed);
  const Eigen::VectorXd p = random_params(model, seed);
  const Md x = random_matrix(model.input_size(), batch, rng);
  const Md target = random_matrix(model.output_size(), batch, rng);
  const uint64_t dropout_seed = seed + 1;
  Eigen::VectorXd grads = Eigen::VectorXd::Zero(p.size());
  model.loss_and_gradient(p.data(), x, target, loss, batch, dropout_seed, grads.data());
  auto f = [&](const Eigen::VectorXd& q) {
    Eigen::VectorXd unused = Eigen::VectorXd::Zero(q.size());
    return model.loss_and_gradient(q.data(), x, target, loss, batch, dropout_seed, unused.data());
  };
  const double error =
      relative_error(testing::pick(grads, indices), numeric_gradient(f, p, indices));
  EXPECT_LE(error, kGradientTolerance);
}

DlnetConfig small_config() {
  DlnetConfig c;
  c.input_len = 9;
  c.horizon = 7;
  c.encoder_widths = {8};
  c.hidden = 6;
  c.euler_steps = 9;
  c.decoder_widths = {8, 5};
  c.dropout = 0.1;
  return c;
}

TEST(Dlnet, PaperTeacherHasExactly155749Parameters) {
  const DlnetModel<float> teacher(DlnetConfig::teacher());
  EXPECT_EQ(teacher.layout().size(), 155749);
}

TEST(Dlnet, ParameterCountFollowsTheArchitecture) {
  // encoder 9*8+8 + 2*8 + 8*6+6 + 2*6; liquid 6 + 6 + 36 + 1; decoder 6*8+8 + 16 + 8*5+5 + 10
  // + 5*7+7.
  const DlnetModel<double> model(small_config());
  EXPECT_EQ(model.layout().size(), (80 + 16 + 54 + 12) + 49 + (56 + 16 + 45 + 10 + 42));
  const DlnetModel<double> student(DlnetConfig::student(16, 2));
  // encoder 100*16+16 + 32; liquid 16 + 16 + (16 + 2*16*2) + 1; head 16*100+100.
  EXPECT_EQ(student.layout().size(), 1648 + 33 + 64 + 16 + 1700);
}

TEST(Dlnet, GradientMatchesFiniteDifferencesWithDropout) {
  expect_model_gradient_matches(DlnetModel<double>(small_config()), LossSpec{}, 3, 31);
}

TEST(Dlnet, GradientMatchesFiniteDifferencesWithWeightedLosses) {
  expect_model_gradient_matches(DlnetModel<double>(small_config()), LossSpec{0.5, 0.3, 0.7}, 3, 32);
}

TEST(Dlnet, LowRankRecurrenceGradientMatchesFiniteDifferences) {
  DlnetConfig c = small_config();
  c.recurrent_rank = 2;
  expect_model_gradient_matches(DlnetModel<double>(c), LossSpec{}, 3, 33);
}

TEST(Dlnet, SingleStepStudentGradientMatchesFiniteDifferences) {
  DlnetConfig c = DlnetConfig::student(5, 0);
  c.input_len = 12;
  c.horizon = 6;
  expect_model_gradient_matches(DlnetModel<double>(c), LossSpec{}, 4, 34);
  c.recurrent_rank = 2;
  expect_model_gradient_matches(DlnetModel<double>(c), LossSpec{}, 4, 35);
}

TEST(Dlnet, PaperTeacherGradientMatchesOnSampledParameters) {
  const DlnetModel<double> teacher(DlnetConfig::teacher());
  // Coordinates from every tensor: its first, middle and last entry.
  std::vector<Eigen::Index> indices;
  for (const TensorSpec& t : teacher.layout().tensors()) {
    indices.push_back(t.offset);
    indices.push_back(t.offset + t.size() / 2);
    indices.push_back(t.offset + t.size() - 1);
  }
  expect_model_gradient_matches(teacher, LossSpec{}, 2, 36, indices);
}

TEST(Dlnet, PredictIsDeterministicAndIgnoresDropout) {
  const DlnetModel<double> model(small_config());
  Eigen::VectorXd p(model.layout().size());
  model.init(p.data(), 5);
  Rng rng(6);
  const Md x = random_matrix(model.input_size(), 4, rng);
  Md y1;
  Md y2;
  model.predict(p.data(), x, y1);
  model.predict(p.data(), x, y2);
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(y1.rows(), 7);
  EXPECT_EQ(y1.cols(), 4);
  // Column b of a batch equals the prediction of sample b alone (no cross-sample coupling).
  Md single;
  model.predict(p.data(), x.col(2), single);
  EXPECT_LT((single - y1.col(2)).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Dlnet, SameSeedGivesSameInitialization) {
  const DlnetModel<float> model(DlnetConfig::teacher());
  Vector<float> a(model.layout().size());
  Vector<float> b(model.layout().size());
  Vector<float> c(model.layout().size());
  model.init(a.data(), 1);
  model.init(b.data(), 1);
  model.init(c.data(), 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace cyclecast::models
