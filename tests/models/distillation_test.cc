// Knowledge distillation and cancellation in the trainer (training.h).
#include <gtest/gtest.h>

#include <cmath>

#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/student.h"
#include "cyclecast/models/training.h"

namespace cyclecast::models {
namespace {

using Kd = TrainConfig::Distillation::Kd;

StudentConfig tiny_student() {
  StudentConfig c;
  c.input_size = 8;
  c.features = 3;
  c.width = 5;
  c.euler_steps = 2;
  c.horizon = 4;
  return c;
}

// Windows of a noisy decaying line (8 inputs, the next 4 values as targets), and as "teacher" a
// smoothed, slightly biased version of the targets, as a real teacher's outputs would be.
Dataset<float> windows_with_teacher(int64_t count, uint64_t seed) {
  Rng rng(seed);
  Dataset<float> d;
  d.inputs.resize(8, count);
  d.targets.resize(4, count);
  d.teacher.resize(4, count);
  for (int64_t j = 0; j < count; ++j) {
    const double level = rng.uniform(-1.0, 1.0);
    const double slope = rng.uniform(-0.1, 0.0);
    for (int64_t t = 0; t < 8; ++t)
      d.inputs(t, j) = static_cast<float>(level + slope * double(t) + rng.uniform(-0.01, 0.01));
    for (int64_t t = 0; t < 4; ++t) {
      const double clean = level + slope * double(8 + t);
      d.targets(t, j) = static_cast<float>(clean + rng.uniform(-0.05, 0.05));
      d.teacher(t, j) = static_cast<float>(clean + 0.02);
    }
  }
  return d;
}

TrainConfig base_config() {
  TrainConfig c;
  c.epochs = 4;
  c.batch_size = 32;
  c.shard_size = 8;
  c.learning_rate = 1e-2;
  c.threads = 2;
  c.seed = 21;
  return c;
}

Vector<float> initial(const Model<float>& model, uint64_t seed) {
  Vector<float> p(model.layout().size());
  model.init(p.data(), seed);
  return p;
}

Vector<float> trained(const Model<float>& model, const Dataset<float>& data,
                      const TrainConfig& config, TrainSummary* summary = nullptr) {
  Vector<float> p = initial(model, 5);
  auto result = train(model, p, data, nullptr, config);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (summary != nullptr && result.ok()) *summary = *result;
  return p;
}

TEST(Distillation, LambdaRisesLinearlyFromStartToEnd) {
  TrainConfig::Distillation d;
  d.lambda_start = 0.1;
  d.lambda_end = 0.9;
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 1, 5), 0.1);
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 2, 5), 0.3);
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 3, 5), 0.5);
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 5, 5), 0.9);
  // One epoch: the start value.
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 1, 1), 0.1);
  // A falling schedule is allowed too.
  d.lambda_start = 1.0;
  d.lambda_end = 0.0;
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 3, 3), 0.0);
  EXPECT_DOUBLE_EQ(distillation_lambda(d, 2, 3), 0.5);
}

TEST(Distillation, ProgressReportsTheEpochsLambda) {
  const StudentModel<float> model(tiny_student());
  TrainConfig c = base_config();
  c.epochs = 3;
  c.distillation.enabled = true;
  c.distillation.lambda_start = 0.2;
  c.distillation.lambda_end = 0.8;
  std::vector<double> lambdas;
  Vector<float> p = initial(model, 5);
  auto result = train(model, p, windows_with_teacher(64, 1), nullptr, c,
                      [&](const EpochProgress& e) { lambdas.push_back(e.lambda); });
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(lambdas.size(), 3u);
  EXPECT_DOUBLE_EQ(lambdas[0], 0.2);
  EXPECT_DOUBLE_EQ(lambdas[1], 0.5);
  EXPECT_DOUBLE_EQ(lambdas[2], 0.8);
}

TEST(Distillation, LambdaOneIsPlainTrainingBitForBit) {
  const StudentModel<float> model(tiny_student());
  const Dataset<float> data = windows_with_teacher(100, 2);
  TrainConfig plain = base_config();
  plain.loss = LossSpec{1.0, 0.3, 0.0};
  TrainConfig distilled = plain;
  distilled.distillation.enabled = true;
  distilled.distillation.lambda_start = 1.0;
  distilled.distillation.lambda_end = 1.0;
  TrainSummary s1;
  TrainSummary s2;
  const Vector<float> a = trained(model, data, plain, &s1);
  const Vector<float> b = trained(model, data, distilled, &s2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(s1.train_losses, s2.train_losses);
}

TEST(Distillation, KdOnlyAgainstATeacherEqualToTheTruthIsPlainMseTraining) {
  const StudentModel<float> model(tiny_student());
  Dataset<float> data = windows_with_teacher(100, 3);
  data.teacher = data.targets;
  const TrainConfig plain = base_config();  // loss: MSE
  TrainConfig kd_only = plain;
  kd_only.distillation.enabled = true;
  kd_only.distillation.lambda_start = 0.0;
  kd_only.distillation.lambda_end = 0.0;
  kd_only.distillation.kd = Kd::kMse;
  EXPECT_EQ(trained(model, data, plain), trained(model, data, kd_only));
}

TEST(Distillation, TrainLossIsTheLambdaWeightedSumOfBothTerms) {
  // One epoch of one batch: the reported loss is the loss at the initial parameters.
  const StudentModel<float> model(tiny_student());
  const Dataset<float> data = windows_with_teacher(40, 4);
  Vector<float> p = initial(model, 5);
  // A non-zero head so the student is not just its (linear) bypass.
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] += 0.05f * std::sin(static_cast<float>(i));
  Matrix<float> y;
  model.predict(p.data(), data.inputs, y);
  const double mse_truth = mse_loss<float>(y, data.targets, 1.0, 40, nullptr);
  const double mse_teacher = mse_loss<float>(y, data.teacher, 1.0, 40, nullptr);
  const double cos_teacher = cosine_loss<float>(y, data.teacher, 1.0, 40, nullptr);
  for (Kd kd : {Kd::kMse, Kd::kCosine}) {
    TrainConfig c = base_config();
    c.epochs = 1;
    c.batch_size = 40;
    c.distillation.enabled = true;
    c.distillation.lambda_start = 0.3;
    c.distillation.kd = kd;
    Vector<float> q = p;
    auto result = train(model, q, data, nullptr, c);
    ASSERT_TRUE(result.ok());
    const double kd_term = kd == Kd::kMse ? mse_teacher : cos_teacher;
    EXPECT_NEAR(result->train_losses[0], 0.3 * mse_truth + 0.7 * kd_term,
                1e-5 * (mse_truth + kd_term));
  }
}

TEST(Distillation, KdPullsTheStudentTowardsTheTeacher) {
  // Teacher: the truth shifted by +0.5. Pure KD must land nearer the teacher than the truth, and
  // pure truth training the other way round.
  const StudentModel<float> model(tiny_student());
  Dataset<float> data = windows_with_teacher(200, 5);
  data.teacher = data.targets.array() + 0.5f;
  TrainConfig c = base_config();
  c.epochs = 30;
  c.distillation.enabled = true;
  c.distillation.lambda_start = 0.0;
  c.distillation.lambda_end = 0.0;
  const Vector<float> kd = trained(model, data, c);
  c.distillation.lambda_start = 1.0;
  c.distillation.lambda_end = 1.0;
  const Vector<float> truth = trained(model, data, c);
  Matrix<float> y_kd;
  Matrix<float> y_truth;
  model.predict(kd.data(), data.inputs, y_kd);
  model.predict(truth.data(), data.inputs, y_truth);
  EXPECT_LT(mse_loss<float>(y_kd, data.teacher, 1.0, 200, nullptr),
            mse_loss<float>(y_kd, data.targets, 1.0, 200, nullptr));
  EXPECT_LT(mse_loss<float>(y_truth, data.targets, 1.0, 200, nullptr),
            mse_loss<float>(y_truth, data.teacher, 1.0, 200, nullptr));
}

TEST(Distillation, SameSeedGivesIdenticalWeightsOnAnyThreadCount) {
  // A DLNet with dropout, so both loss terms must also draw the same masks on every thread.
  DlnetConfig dc;
  dc.input_len = 8;
  dc.horizon = 4;
  dc.encoder_widths = {12};
  dc.hidden = 6;
  dc.euler_steps = 2;
  dc.decoder_widths = {10};
  dc.dropout = 0.1;
  const DlnetModel<float> dlnet(dc);
  const StudentModel<float> student(tiny_student());
  const Dataset<float> data = windows_with_teacher(150, 6);
  for (const Model<float>* model :
       {static_cast<const Model<float>*>(&dlnet), static_cast<const Model<float>*>(&student)}) {
    for (Kd kd : {Kd::kMse, Kd::kCosine}) {
      TrainConfig c = base_config();
      c.epochs = 3;
      c.distillation.enabled = true;
      c.distillation.kd = kd;
      c.threads = 1;
      const Vector<float> one = trained(*model, data, c);
      c.threads = 2;
      const Vector<float> two = trained(*model, data, c);
      c.threads = 5;
      const Vector<float> five = trained(*model, data, c);
      EXPECT_EQ(one, two);
      EXPECT_EQ(one, five);
    }
  }
}

TEST(Distillation, RefusesAMissingOrMisshapenTeacherAndBadLambdas) {
  const StudentModel<float> model(tiny_student());
  Dataset<float> data = windows_with_teacher(50, 7);
  TrainConfig c = base_config();
  c.distillation.enabled = true;
  Vector<float> p = initial(model, 5);

  Dataset<float> no_teacher = data;
  no_teacher.teacher.resize(0, 0);
  auto missing = train(model, p, no_teacher, nullptr, c);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("teacher"), std::string::npos);

  Dataset<float> short_teacher = data;
  short_teacher.teacher = data.teacher.leftCols(49);
  EXPECT_FALSE(train(model, p, short_teacher, nullptr, c).ok());

  c.distillation.lambda_end = 1.5;
  auto bad = train(model, p, data, nullptr, c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("lambda"), std::string::npos);

  // Without distillation a missing teacher is fine.
  c.distillation.enabled = false;
  EXPECT_TRUE(train(model, p, no_teacher, nullptr, c).ok());
}

TEST(Cancellation, ShouldStopEndsTrainingBetweenBatchesWithCancelled) {
  const StudentModel<float> model(tiny_student());
  const Dataset<float> data = windows_with_teacher(100, 8);  // 4 batches per epoch
  TrainConfig c = base_config();
  int calls = 0;
  c.should_stop = [&] { return ++calls == 6; };
  int epochs_reported = 0;
  Vector<float> p = initial(model, 5);
  auto result = train(model, p, data, nullptr, c, [&](const EpochProgress&) { ++epochs_reported; });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
  EXPECT_NE(result.error().message.find("epoch 2 of 4"), std::string::npos)
      << result.error().message;
  EXPECT_EQ(calls, 6);  // asked before each batch, and nothing ran after the stop
  EXPECT_EQ(epochs_reported, 1);
}

TEST(Cancellation, ShouldStopThatNeverFiresChangesNothing) {
  const StudentModel<float> model(tiny_student());
  const Dataset<float> data = windows_with_teacher(100, 9);
  TrainConfig c = base_config();
  const Vector<float> plain = trained(model, data, c);
  int calls = 0;
  c.should_stop = [&] {
    ++calls;
    return false;
  };
  EXPECT_EQ(trained(model, data, c), plain);
  EXPECT_EQ(calls, 4 * 4);
}

}  // namespace
}  // namespace cyclecast::models
