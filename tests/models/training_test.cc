#include "cyclecast/models/training.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/euler_student.h"
#include "cyclecast/models/ltc.h"

namespace cyclecast::models {
namespace {

TEST(AdamW, FirstStepMovesEachParameterByTheLearningRate) {
  // After one step m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps) ~ lr sign(g),
  // plus the decoupled decay lr * wd * p.
  AdamWConfig config;
  config.weight_decay = 0.1;
  AdamW<double> opt(2, config);
  double p[2] = {1.0, -2.0};
  const double g[2] = {0.5, -3.0};
  opt.step(p, g, 0.01);
  EXPECT_NEAR(p[0], 1.0 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-8), 1e-12);
  EXPECT_NEAR(p[1], -2.0 * (1 - 0.001) + 0.01 * 3.0 / (3.0 + 1e-8), 1e-12);
  EXPECT_EQ(opt.steps(), 1);
}

TEST(AdamW, SecondStepUsesBiasCorrectedMoments) {
  AdamWConfig config;
  config.weight_decay = 0.0;
  AdamW<double> opt(1, config);
  double p[1] = {0.0};
  const double g1[1] = {1.0};
  const double g2[1] = {3.0};
  opt.step(p, g1, 0.1);
  const double after_first = p[0];
  opt.step(p, g2, 0.1);
  const double m = (0.1 * 0.9 * 1.0 + 0.1 * 3.0) / (1 - 0.81);
  const double v = (0.001 * 0.999 * 1.0 + 0.001 * 9.0) / (1 - 0.999 * 0.999);
  EXPECT_NEAR(p[0], after_first - 0.1 * m / (std::sqrt(v) + 1e-8), 1e-12);
}

TEST(CosineSchedule, StartsAtBaseEndsAtMinimumAndHalvesInTheMiddle) {
  EXPECT_DOUBLE_EQ(cosine_learning_rate(1e-3, 1e-5, 0, 100), 1e-3);
  EXPECT_NEAR(cosine_learning_rate(1e-3, 1e-5, 50, 100), (1e-3 + 1e-5) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(cosine_learning_rate(1e-3, 1e-5, 100, 100), 1e-5);
  EXPECT_DOUBLE_EQ(cosine_learning_rate(1e-3, 1e-5, 250, 100), 1e-5);
  EXPECT_GT(cosine_learning_rate(1e-3, 1e-5, 30, 100), cosine_learning_rate(1e-3, 1e-5, 31, 100));
}

TEST(GradientClipping, ScalesLargeGradientsToTheMaximumNorm) {
  double g[2] = {3.0, 4.0};
  EXPECT_DOUBLE_EQ(clip_gradient_norm(g, 2, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-6);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-12);
  double small[2] = {0.3, 0.4};
  clip_gradient_norm(small, 2, 1.0);
  EXPECT_DOUBLE_EQ(small[0], 0.3);
}

DlnetConfig tiny_config() {
  DlnetConfig c;
  c.input_len = 8;
  c.horizon = 4;
  c.encoder_widths = {12};
  c.hidden = 6;
  c.euler_steps = 3;
  c.decoder_widths = {10};
  c.dropout = 0.1;
  return c;
}

// Windows of a noisy decaying line: input 8 values, target the next 4.
Dataset<float> line_windows(int64_t count, uint64_t seed) {
  Rng rng(seed);
  Dataset<float> d;
  d.inputs.resize(8, count);
  d.targets.resize(4, count);
  for (int64_t j = 0; j < count; ++j) {
    const double level = rng.uniform(-1.0, 1.0);
    const double slope = rng.uniform(-0.1, 0.0);
    for (int64_t i = 0; i < 8; ++i)
      d.inputs(i, j) = static_cast<float>(level + slope * double(i));
    for (int64_t i = 0; i < 4; ++i) {
      d.targets(i, j) = static_cast<float>(level + slope * double(8 + i));
    }
  }
  return d;
}

TEST(Training, SameSeedGivesBitIdenticalWeightsWhateverTheThreadCount) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(53, 3);  // last batch is partial on purpose
  TrainConfig config;
  config.epochs = 3;
  config.batch_size = 16;
  config.shard_size = 4;
  config.seed = 77;
  Vector<float> reference;
  for (int64_t threads : {1, 2, 3}) {
    config.threads = threads;
    Vector<float> params(model.layout().size());
    model.init(params.data(), 5);
    ASSERT_TRUE(train(model, params, data, nullptr, config).ok());
    if (threads == 1) {
      reference = params;
    } else {
      EXPECT_EQ(params, reference) << "threads = " << threads;
    }
  }
  Vector<float> initial(model.layout().size());
  model.init(initial.data(), 5);
  EXPECT_NE(reference, initial);
}

// The liquid cells keep per-thread tapes (ltc.cc); the result must still not depend on which
// thread ran which shard.
TEST(Training, LiquidCellsTrainBitIdenticallyWithOneOrTwoThreads) {
  LtcConfig ltc;
  ltc.input_len = 8;
  ltc.units = 5;
  ltc.unfolds = 3;
  ltc.horizon = 4;
  EulerStudentConfig student;
  student.input_len = 8;
  student.width = 6;
  student.recurrent_rank = 2;
  student.horizon = 4;
  const LtcModel<float> ltc_model(ltc);
  const EulerStudentModel<float> student_model(student);
  const Dataset<float> data = line_windows(40, 9);
  TrainConfig config;
  config.epochs = 2;
  config.batch_size = 16;
  config.shard_size = 4;
  for (const Model<float>* model : {static_cast<const Model<float>*>(&ltc_model),
                                    static_cast<const Model<float>*>(&student_model)}) {
    Vector<float> one(model->layout().size());
    model->init(one.data(), 11);
    Vector<float> two = one;
    const Vector<float> initial = one;
    config.threads = 1;
    ASSERT_TRUE(train(*model, one, data, nullptr, config).ok());
    config.threads = 2;
    ASSERT_TRUE(train(*model, two, data, nullptr, config).ok());
    EXPECT_EQ(one, two);
    EXPECT_NE(one, initial);
  }
}

TEST(Training, ReducesTheLossOnALearnableProblem) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(256, 4);
  Vector<float> params(model.layout().size());
  model.init(params.data(), 6);
  const double before = evaluate_loss(model, params.data(), data, LossSpec{}, 1);
  TrainConfig config;
  config.epochs = 30;
  config.batch_size = 32;
  config.learning_rate = 3e-3;
  config.threads = 2;
  ASSERT_TRUE(train(model, params, data, nullptr, config).ok());
  const double after = evaluate_loss(model, params.data(), data, LossSpec{}, 1);
  EXPECT_LT(after, 0.1 * before);
}

TEST(Training, StopsEarlyAndKeepsTheBestValidationWeights) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(128, 5);
  // Validation targets are the negated training targets: fitting the training set makes the
  // validation loss worse, so the best epoch is the first and training stops after `patience`.
  Dataset<float> validation = data;
  validation.targets = -data.targets;
  Vector<float> params(model.layout().size());
  model.init(params.data(), 7);
  TrainConfig config;
  config.epochs = 50;
  config.batch_size = 16;
  config.learning_rate = 1e-2;
  config.patience = 3;
  auto summary = train(model, params, data, &validation, config);
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->stopped_early);
  EXPECT_LT(summary->epochs_run, 50);
  EXPECT_EQ(summary->epochs_run, summary->best_epoch + 3);
  const double kept = evaluate_loss(model, params.data(), validation, LossSpec{}, 1);
  EXPECT_DOUBLE_EQ(kept, summary->best_validation_loss);
  EXPECT_LT(summary->best_validation_loss, summary->validation_losses.back());
}

TEST(Training, ReportsProgressOncePerEpochWithEta) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(40, 6);
  Vector<float> params(model.layout().size());
  model.init(params.data(), 8);
  TrainConfig config;
  config.epochs = 4;
  config.batch_size = 8;
  std::vector<EpochProgress> reports;
  auto summary = train(model, params, data, &data, config,
                       [&](const EpochProgress& p) { reports.push_back(p); });
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(reports.size(), 4u);
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].epoch, static_cast<int64_t>(i + 1));
    EXPECT_EQ(reports[i].epochs, 4);
    EXPECT_TRUE(std::isfinite(reports[i].train_loss));
    EXPECT_TRUE(std::isfinite(reports[i].validation_loss));
    EXPECT_GE(reports[i].eta_seconds, 0.0);
  }
  EXPECT_EQ(reports.back().eta_seconds, 0.0);
  EXPECT_EQ(summary->train_losses.size(), 4u);
}

TEST(Training, RejectsDataOfTheWrongShape) {
  const DlnetModel<float> model(tiny_config());
  Dataset<float> data = line_windows(10, 7);
  data.targets.conservativeResize(3, 10);
  Vector<float> params(model.layout().size());
  model.init(params.data(), 9);
  auto result = train(model, params, data, nullptr, TrainConfig{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message.find("expects 8 inputs and 4 outputs"), std::string::npos);
}

TEST(Training, RejectsAnEmptyValidationSet) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(10, 7);
  Dataset<float> empty;
  empty.inputs.resize(8, 0);
  empty.targets.resize(4, 0);
  Vector<float> params(model.layout().size());
  model.init(params.data(), 9);
  auto result = train(model, params, data, &empty, TrainConfig{});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("validation set is empty"), std::string::npos);
}

TEST(Training, PredictAllMatchesPerBatchPrediction) {
  const DlnetModel<float> model(tiny_config());
  const Dataset<float> data = line_windows(300, 8);
  Vector<float> params(model.layout().size());
  model.init(params.data(), 10);
  const Matrix<float> all = predict_all(model, params.data(), data.inputs, 2);
  Matrix<float> last;
  model.predict(params.data(), data.inputs.rightCols(1), last);
  EXPECT_EQ(all.cols(), 300);
  // Not bit-equal: Eigen blocks a 300-column product differently from a 1-column one, which
  // reorders float sums; 1e-5 is far above that rounding and far below any real mismatch.
  EXPECT_LT((all.col(299) - last.col(0)).cwiseAbs().maxCoeff(), 1e-5f);
}

}  // namespace
}  // namespace cyclecast::models
