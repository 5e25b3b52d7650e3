#include "cyclecast/models/student.h"

#include <gtest/gtest.h>

#include <cmath>

#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::kGradientTolerance;
using testing::numeric_gradient;
using testing::perturbed_init;
using testing::random_matrix;
using testing::relative_error;
using Md = Matrix<double>;

StudentConfig small_student(int64_t features, int64_t width, int64_t steps) {
  StudentConfig c;
  c.input_size = 5;
  c.features = features;
  c.width = width;
  c.euler_steps = steps;
  c.horizon = 3;
  return c;
}

void expect_gradient_matches(const StudentConfig& config, int64_t batch, uint64_t seed,
                             const LossSpec& loss = LossSpec{}) {
  const StudentModel<double> model(config);
  const Eigen::VectorXd p = perturbed_init(model, seed);
  Rng rng(seed + 100);
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

// One sample through the equations of student.h written out with plain loops: the reference the
// batched Eigen forward is checked against.
Eigen::VectorXd reference_forward(const StudentModel<double>& model, const double* p,
                                  const Eigen::VectorXd& x, Eigen::VectorXd* hidden_out) {
  const StudentConfig& c = model.config();
  const StudentTensors& t = model.tensors();
  const auto at = [&](int64_t offset, int64_t rows, int64_t r, int64_t col) {
    return p[offset + col * rows + r];
  };
  Eigen::VectorXd z = Eigen::VectorXd::Zero(c.features);
  for (int64_t f = 0; f < c.features; ++f)
    for (int64_t i = 0; i < c.input_size; ++i)
      z[f] += at(t.encoder, c.features, f, i) * x[i];
  Eigen::VectorXd h(c.width);
  for (int64_t u = 0; u < c.width; ++u) {
    double pre = p[t.lift_bias + u];
    for (int64_t f = 0; f < c.features; ++f)
      pre += at(t.lift, c.width, u, f) * z[f];
    h[u] = std::tanh(pre);
  }
  const double dt = 1.0 / static_cast<double>(c.euler_steps);
  for (int64_t s = 0; s < c.euler_steps; ++s) {
    Eigen::VectorXd next(c.width);
    for (int64_t u = 0; u < c.width; ++u) {
      double pre = p[t.liquid_bias + u];
      for (int64_t v = 0; v < c.width; ++v)
        pre += at(t.recurrent, c.width, u, v) * h[v];
      next[u] = h[u] + dt * (-p[t.alpha + u] * h[u] + p[t.beta + u] * std::tanh(pre));
    }
    h = next;
  }
  Eigen::VectorXd y(c.horizon);
  for (int64_t j = 0; j < c.horizon; ++j) {
    y[j] = p[t.head_bias + j];
    for (int64_t f = 0; f < c.features; ++f)
      y[j] += at(t.bypass, c.horizon, j, f) * z[f];
    for (int64_t u = 0; u < c.width; ++u)
      y[j] += at(t.head, c.horizon, j, u) * h[u];
  }
  if (hidden_out != nullptr) *hidden_out = h;
  return y;
}

TEST(Student, GradientMatchesFiniteDifferencesWithOneStep) {
  expect_gradient_matches(small_student(3, 4, 1), 3, 1);
}

TEST(Student, GradientMatchesFiniteDifferencesThroughSeveralSteps) {
  expect_gradient_matches(small_student(3, 4, 3), 3, 2);
  expect_gradient_matches(small_student(2, 5, 3), 2, 3, LossSpec{0.5, 0.2, 1.0});
}

TEST(Student, GradientMatchesFiniteDifferencesAtMinimalSizes) {
  expect_gradient_matches(small_student(1, 4, 2), 3, 4);
  expect_gradient_matches(small_student(3, 1, 2), 3, 5);
  expect_gradient_matches(small_student(1, 1, 1), 1, 6);
}

TEST(Student, BatchedForwardMatchesThePlainReference) {
  for (const StudentConfig& c : {small_student(3, 4, 1), small_student(2, 6, 4)}) {
    const StudentModel<double> model(c);
    const Eigen::VectorXd p = perturbed_init(model, 7);
    Rng rng(8);
    const Md x = random_matrix(c.input_size, 4, rng);
    Md y;
    model.predict(p.data(), x, y);
    const Md hidden = model.hidden(p.data(), x);
    ASSERT_EQ(hidden.rows(), c.width);
    ASSERT_EQ(hidden.cols(), 4);
    for (int64_t b = 0; b < 4; ++b) {
      Eigen::VectorXd h;
      const Eigen::VectorXd expected = reference_forward(model, p.data(), x.col(b), &h);
      // Same operations in a different order: a few ulps of double apart.
      EXPECT_LE((y.col(b) - expected).norm(), 1e-12);
      EXPECT_LE((hidden.col(b) - h).norm(), 1e-12);
    }
  }
}

StudentConfig gained(StudentConfig c) {
  c.output_gain = true;
  return c;
}

TEST(Student, OutputGainScalesEachSampleByItsLastInputRow) {
  const StudentModel<double> model(gained(small_student(3, 4, 2)));
  ASSERT_EQ(model.input_size(), 6);  // input_size 5 plus the gain row
  const Eigen::VectorXd p = perturbed_init(model, 9);
  Rng rng(10);
  Md x = random_matrix(6, 3, rng);
  x.row(5) << 0.5, 2.0, -1.5;
  Md y;
  model.predict(p.data(), x, y);
  for (int64_t b = 0; b < 3; ++b) {
    const Eigen::VectorXd inner = reference_forward(model, p.data(), x.col(b).head(5), nullptr);
    EXPECT_LE((y.col(b) - x(5, b) * inner).norm(), 1e-12);
  }
}

TEST(Student, GradientMatchesFiniteDifferencesWithOutputGain) {
  expect_gradient_matches(gained(small_student(3, 4, 1)), 3, 11);
  expect_gradient_matches(gained(small_student(2, 3, 2)), 2, 12, LossSpec{0.5, 0.2, 1.0});
}

TEST(Student, UntrainedStudentIsExactlyItsBypass) {
  const StudentModel<float> model(StudentConfig{});
  Vector<float> p(model.layout().size());
  model.init(p.data(), 9);
  Rng rng(10);
  const Matrix<float> x = random_matrix(model.input_size(), 5, rng).cast<float>();
  Matrix<float> y;
  model.predict(p.data(), x, y);
  ConstMatrixMap<float> e(p.data() + model.tensors().encoder, 8, 101);
  ConstMatrixMap<float> d(p.data() + model.tensors().bypass, 100, 8);
  const Matrix<float> z = e * x;
  const Matrix<float> bypass = d * z;
  EXPECT_EQ(y, bypass);
  ConstVectorMap<float> alpha(p.data() + model.tensors().alpha, 16);
  ConstVectorMap<float> beta(p.data() + model.tensors().beta, 16);
  EXPECT_TRUE((alpha.array() == 1.0f).all());
  EXPECT_TRUE((beta.array() == 1.0f).all());
}

TEST(Student, SetBypassWritesEncoderAndBypassAndRefusesWrongShapes) {
  const StudentModel<float> model(small_student(2, 3, 1));
  Vector<float> p(model.layout().size());
  model.init(p.data(), 11);
  Eigen::MatrixXd e(2, 5);
  e.setConstant(0.5);
  Eigen::MatrixXd d(3, 2);
  d << 1, 2, 3, 4, 5, 6;
  ASSERT_TRUE(model.set_bypass(p.data(), e, d).ok());
  EXPECT_EQ(Matrix<float>(ConstMatrixMap<float>(p.data() + model.tensors().encoder, 2, 5)),
            e.cast<float>());
  EXPECT_EQ(Matrix<float>(ConstMatrixMap<float>(p.data() + model.tensors().bypass, 3, 2)),
            d.cast<float>());

  const Vector<float> before = p;
  auto wrong = model.set_bypass(p.data(), Eigen::MatrixXd(2, 4), d);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().message.find("2 x 4"), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(model.set_bypass(p.data(), e, Eigen::MatrixXd(2, 3)).ok());
  EXPECT_EQ(p, before);
}

TEST(Student, ParameterCountFollowsTheArchitecture) {
  // E F I; A, a: W F + W; alpha, beta: 2 W; Wr, b: W^2 + W; D: H F; G, c: H W + H.
  const StudentModel<float> deployed(StudentConfig{});
  EXPECT_EQ(deployed.layout().size(),
            8 * 101 + (16 * 8 + 16) + 2 * 16 + (16 * 16 + 16) + 100 * 8 + (100 * 16 + 100));
  EXPECT_EQ(deployed.layout().size(), student_parameter_count(StudentConfig{}));
  EXPECT_EQ(student_parameter_count(StudentConfig{}), 3756);  // the figure in docs/models.md
  const StudentConfig teacher{101, 16, 256, 6, 100};
  EXPECT_EQ(StudentModel<float>(teacher).layout().size(), student_parameter_count(teacher));
  EXPECT_EQ(student_parameter_count(teacher), 16 * 101 + (256 * 16 + 256) + 2 * 256 +
                                                  (256 * 256 + 256) + 100 * 16 + (100 * 256 + 100));
}

TEST(Student, TensorNamesAreTheModelFileContract) {
  const StudentModel<float> model(StudentConfig{});
  std::vector<std::string> names;
  for (const TensorSpec& t : model.layout().tensors())
    names.push_back(t.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"encoder.weight", "lift.weight", "lift.bias", "liquid.alpha",
                                      "liquid.beta", "liquid.weight", "liquid.bias",
                                      "bypass.weight", "head.weight", "head.bias"}));
}

TEST(Student, ConfigCheckRefusesEmptyDimensions) {
  EXPECT_TRUE(check_student_config(StudentConfig{}).ok());
  StudentConfig c;
  c.width = 0;
  EXPECT_EQ(check_student_config(c).error().code, ErrorCode::kInvalidArgument);
  c = StudentConfig{};
  c.euler_steps = 0;
  EXPECT_FALSE(check_student_config(c).ok());
  c = StudentConfig{};
  c.features = -1;
  EXPECT_FALSE(check_student_config(c).ok());
}

TEST(Student, InitIsDeterministicPerSeed) {
  const StudentModel<float> model(StudentConfig{});
  Vector<float> a(model.layout().size());
  Vector<float> b(model.layout().size());
  Vector<float> c(model.layout().size());
  model.init(a.data(), 12);
  model.init(b.data(), 12);
  model.init(c.data(), 13);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace cyclecast::models
