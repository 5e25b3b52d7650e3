// The student as the pipeline's later stages train it: jittered inputs (drawn from the step's
// seed, sparing the last row) and optionally a frozen encoder, around StudentModel's own
// forward and backward passes.
#include "cyclecast/models/tuning_student.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "gradient_check.h"

namespace cyclecast::models {
namespace {

using testing::kGradientTolerance;
using testing::numeric_gradient;
using testing::perturbed_init;
using testing::pick;
using testing::random_matrix;
using testing::relative_error;
using Md = Matrix<double>;

StudentConfig small_student(bool output_gain) {
  return {.input_size = 5,
          .features = 3,
          .width = 4,
          .euler_steps = 2,
          .horizon = 3,
          .output_gain = output_gain};
}

// Flat indices of E, the encoder, in the student's layout.
std::vector<Eigen::Index> encoder_indices(const StudentModel<double>& model) {
  std::vector<Eigen::Index> out;
  const int64_t size = model.config().features * model.config().input_size;
  for (int64_t i = 0; i < size; ++i)
    out.push_back(model.tensors().encoder + i);
  return out;
}

std::vector<Eigen::Index> all_but(const std::vector<Eigen::Index>& excluded, Eigen::Index size) {
  std::vector<Eigen::Index> out;
  for (Eigen::Index i = 0; i < size; ++i) {
    if (std::find(excluded.begin(), excluded.end(), i) == excluded.end()) out.push_back(i);
  }
  return out;
}

constexpr double kJitter = 0.1;
constexpr uint64_t kStepSeed = 77;

// One training step of `model` on seeded random data. The step's seed fixes the jitter, so its
// loss is a function of the parameters alone, which finite differences can differentiate.
struct Step {
  Step(const TuningStudent<double>& m, int64_t columns, uint64_t data_seed, LossSpec l)
      : model(m), batch(columns), loss(l) {
    Rng rng(data_seed);
    x = random_matrix(model.input_size(), batch, rng);
    target = random_matrix(model.output_size(), batch, rng);
  }
  // `start` plus what loss_and_gradient adds to it.
  Eigen::VectorXd gradients(const Eigen::VectorXd& p, const Eigen::VectorXd& start) const {
    Eigen::VectorXd grads = start;
    model.loss_and_gradient(p.data(), x, target, loss, batch, seed, grads.data());
    return grads;
  }
  double value(const Eigen::VectorXd& p) const {
    Eigen::VectorXd unused = Eigen::VectorXd::Zero(p.size());
    return model.loss_and_gradient(p.data(), x, target, loss, batch, seed, unused.data());
  }

  const TuningStudent<double>& model;
  int64_t batch;
  LossSpec loss;
  Md x, target;
  uint64_t seed = kStepSeed;  // of the jitter
};

TEST(TuningStudent, GradientMatchesFiniteDifferencesAtJitteredInputs) {
  for (const bool gain : {false, true}) {
    const TuningStudent<double> model(small_student(gain), kJitter, false);
    const Eigen::VectorXd p = perturbed_init(model, 1);
    const Step step(model, 3, 2, LossSpec{0.5, 0.2, 1.0});
    const Eigen::VectorXd grads = step.gradients(p, Eigen::VectorXd::Zero(p.size()));
    const auto f = [&](const Eigen::VectorXd& q) { return step.value(q); };
    EXPECT_LE(relative_error(grads, numeric_gradient(f, p)), kGradientTolerance) << gain;
  }
}

TEST(TuningStudent, FrozenEncoderKeepsItsGradientSliceAndTheRestMatchesFiniteDifferences) {
  const TuningStudent<double> model(small_student(true), kJitter, true);
  const Eigen::VectorXd p = perturbed_init(model, 3);
  const Step step(model, 2, 4, LossSpec{});
  // Gradients are added: the frozen slice must come back as it went in, not as zero.
  const double before = 0.25;
  const Eigen::VectorXd added =
      step.gradients(p, Eigen::VectorXd::Constant(p.size(), before)).array() - before;
  const auto f = [&](const Eigen::VectorXd& q) { return step.value(q); };
  const std::vector<Eigen::Index> encoder = encoder_indices(model);
  const std::vector<Eigen::Index> rest = all_but(encoder, p.size());
  EXPECT_EQ(pick(added, encoder), Eigen::VectorXd::Zero(static_cast<Eigen::Index>(encoder.size())));
  // ... although the loss does depend on E, so the freeze is what left the slice alone.
  EXPECT_GT(numeric_gradient(f, p, encoder).norm(), 1e-3);
  EXPECT_LE(relative_error(pick(added, rest), numeric_gradient(f, p, rest)), kGradientTolerance);
}

TEST(TuningStudent, JitterComesFromTheSeedAndSparesTheLastRow) {
  const StudentConfig config = small_student(true);
  const TuningStudent<double> model(config, kJitter, false);
  const StudentModel<double> plain(config);
  const Eigen::VectorXd p = perturbed_init(plain, 5);
  Step step(model, 3, 6, LossSpec{});
  // The noise as documented: uniform in [-jitter, jitter], column by column, all rows but the last.
  Md jittered = step.x;
  Rng noise(step.seed);
  for (Eigen::Index c = 0; c < jittered.cols(); ++c) {
    for (Eigen::Index r = 0; r + 1 < jittered.rows(); ++r)
      jittered(r, c) += noise.uniform(-kJitter, kJitter);
  }
  Eigen::VectorXd expected_grads = Eigen::VectorXd::Zero(p.size());
  const double expected = plain.loss_and_gradient(p.data(), jittered, step.target, step.loss,
                                                  step.batch, 0, expected_grads.data());
  EXPECT_EQ(step.value(p), expected);
  EXPECT_EQ(step.gradients(p, Eigen::VectorXd::Zero(p.size())), expected_grads);
  // Another seed, other noise.
  step.seed += 1;
  EXPECT_NE(step.value(p), expected);
}

TEST(TuningStudent, PredictsAsThePlainStudentWithoutJitter) {
  const StudentConfig config = small_student(true);
  const TuningStudent<double> model(config, kJitter, true);
  const StudentModel<double> plain(config);
  const Eigen::VectorXd p = perturbed_init(plain, 7);
  Rng rng(8);
  const Md x = random_matrix(model.input_size(), 4, rng);
  Md y, expected;
  model.predict(p.data(), x, y);
  plain.predict(p.data(), x, expected);
  EXPECT_EQ(y, expected);
  EXPECT_EQ(model.layout().size(), plain.layout().size());
}

}  // namespace
}  // namespace cyclecast::models
