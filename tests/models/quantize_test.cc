// int8 quantization of the student: accuracy against the float model (through the firmware's
// cc_student_forecast), GPTQ error compensation against round-to-nearest, and the blob format.
#include "cyclecast/models/quantize.h"

#include <gtest/gtest.h>

#include <Eigen/Cholesky>
#include <cmath>
#include <vector>

#include "cyclecast/models/student.h"
#include "cyclecast/models/tensor.h"

namespace cyclecast::models {
namespace {

Eigen::MatrixXf uniform_matrix(Rng& rng, int64_t rows, int64_t cols, double limit) {
  Eigen::MatrixXf m(rows, cols);
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < rows; ++r)
      m(r, c) = static_cast<float>(rng.uniform(-limit, limit));
  }
  return m;
}

// Smooth random curves like SOH windows: a random cubic in time plus a little noise, so that
// neighbouring inputs are strongly correlated and X X^T is badly conditioned.
Eigen::MatrixXf smooth_curves(Rng& rng, int64_t length, int64_t count, double noise) {
  Eigen::MatrixXf x(length, count);
  for (int64_t c = 0; c < count; ++c) {
    const double c1 = rng.uniform(-1, 1), c2 = rng.uniform(-1, 1), c3 = rng.uniform(-1, 1);
    for (int64_t t = 0; t < length; ++t) {
      const double u = static_cast<double>(t) / static_cast<double>(length - 1) - 0.5;
      x(t, c) =
          static_cast<float>(c1 * u + c2 * u * u + c3 * u * u * u + noise * rng.uniform(-1, 1));
    }
  }
  return x;
}

StudentWeights random_student(Rng& rng, int64_t input, int64_t features, int64_t width,
                              int64_t horizon, int steps) {
  StudentWeights w;
  auto scaled = [&](int64_t rows, int64_t cols) {
    return uniform_matrix(rng, rows, cols, 1.0 / std::sqrt(static_cast<double>(cols)));
  };
  w.E = scaled(features, input);
  w.A = scaled(width, features);
  w.Wr = scaled(width, width);
  w.D = scaled(horizon, features);
  w.G = scaled(horizon, width);
  w.a = uniform_matrix(rng, width, 1, 0.2);
  w.b = uniform_matrix(rng, width, 1, 0.2);
  w.c = uniform_matrix(rng, horizon, 1, 0.1);
  w.alpha = uniform_matrix(rng, width, 1, 0.5).array() + 0.6f;  // in [0.1, 1.1]
  w.beta = uniform_matrix(rng, width, 1, 0.5).array() + 0.6f;
  w.steps = steps;
  return w;
}

double mean_abs(const Eigen::MatrixXf& m) {
  return m.cwiseAbs().mean();
}

TEST(QuantizeStudent, Int8OutputStaysWithinOnePercentOfRangeOfFloat) {
  Rng rng(1);
  const StudentWeights w = random_student(rng, 40, 6, 12, 20, 3);
  const Eigen::MatrixXf calibration = uniform_matrix(rng, 40, 400, 1.0);
  const Eigen::MatrixXf test = uniform_matrix(rng, 40, 200, 1.0);
  auto q = quantize_student(w, calibration);
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto int8 = run_quantized(*q, test);
  ASSERT_TRUE(int8.ok()) << int8.error().message;
  const Eigen::MatrixXf reference = student_forward_float(w, test);
  const double range = reference.cwiseAbs().maxCoeff();
  RecordProperty("max_error_over_range",
                 std::to_string((*int8 - reference).cwiseAbs().maxCoeff() / range));
  RecordProperty("mean_error_over_range", std::to_string(mean_abs(*int8 - reference) / range));
  // int8 weights carry ~1/254 relative error per weight; summed over 40 independent inputs it
  // averages down, so the worst output error is well below 1 % of the output range.
  EXPECT_LT((*int8 - reference).cwiseAbs().maxCoeff(), 0.01 * range);
  EXPECT_LT(mean_abs(*int8 - reference), 0.002 * range);
}

// An encoder fitted by nearly unregularised least squares on smooth curves has large weights
// that cancel (as the ridge-initialised bypass of a real student does); rounding each weight
// alone destroys the cancellation, GPTQ keeps it. D = I (exact in int8) and G = 0 make the
// output E x + c, so the measured error is the encoder's alone.
StudentWeights ill_conditioned_student(Rng& rng, const Eigen::MatrixXf& x) {
  const int64_t input = x.rows(), features = 4, width = 8;
  StudentWeights w = random_student(rng, input, features, width, features, 1);
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::MatrixXd targets =
      uniform_matrix(rng, features, input, 1.0).cast<double>() * xd +
      0.05 * uniform_matrix(rng, features, x.cols(), 1.0).cast<double>();
  Eigen::MatrixXd gram = xd * xd.transpose();
  gram.diagonal().array() += 1e-6 * gram.diagonal().mean();
  w.E = gram.ldlt().solve(xd * targets.transpose()).transpose().cast<float>();
  w.D = Eigen::MatrixXf::Identity(features, features);
  w.G = Eigen::MatrixXf::Zero(features, width);
  return w;
}

TEST(QuantizeStudent, ErrorCompensationBeatsRoundToNearestOnCorrelatedInputs) {
  Rng rng(2);
  const Eigen::MatrixXf calibration = smooth_curves(rng, 60, 600, 0.01);
  const Eigen::MatrixXf test = smooth_curves(rng, 60, 300, 0.01);
  const StudentWeights w = ill_conditioned_student(rng, calibration);
  const Eigen::MatrixXf reference = student_forward_float(w, test);
  QuantizeOptions naive;
  naive.error_compensation = false;
  auto gptq = quantize_student(w, calibration);
  auto rtn = quantize_student(w, calibration, naive);
  ASSERT_TRUE(gptq.ok()) << gptq.error().message;
  ASSERT_TRUE(rtn.ok()) << rtn.error().message;
  const double gptq_error = mean_abs(*run_quantized(*gptq, test) - reference);
  const double rtn_error = mean_abs(*run_quantized(*rtn, test) - reference);
  RecordProperty("gptq_mae", std::to_string(gptq_error));
  RecordProperty("rtn_mae", std::to_string(rtn_error));
  // Measured: about 6-10x depending on the damping chosen; 5x leaves room for other seeds.
  EXPECT_GT(rtn_error, 5.0 * gptq_error) << "gptq " << gptq_error << " rtn " << rtn_error;
}

TEST(QuantizeStudent, RefusesMismatchedShapesAndCalibration) {
  Rng rng(3);
  StudentWeights w = random_student(rng, 10, 3, 4, 5, 1);
  EXPECT_FALSE(quantize_student(w, Eigen::MatrixXf::Ones(9, 20)).ok());
  EXPECT_FALSE(quantize_student(w, Eigen::MatrixXf::Ones(10, 0)).ok());
  Eigen::MatrixXf with_nan = Eigen::MatrixXf::Ones(10, 20);
  with_nan(3, 4) = std::nanf("");
  EXPECT_FALSE(quantize_student(w, with_nan).ok());
  w.G = Eigen::MatrixXf::Zero(5, 3);
  const auto bad = quantize_student(w, Eigen::MatrixXf::Ones(10, 20));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(QuantizeStudent, HandlesAllZeroRowsAndConstantInputs) {
  Rng rng(4);
  StudentWeights w = random_student(rng, 10, 3, 4, 5, 2);
  w.E.row(1).setZero();
  w.G.setZero();
  const Eigen::MatrixXf calibration = Eigen::MatrixXf::Constant(10, 8, 0.5f);
  auto q = quantize_student(w, calibration);
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto out = run_quantized(*q, calibration);
  ASSERT_TRUE(out.ok());
  const Eigen::MatrixXf reference = student_forward_float(w, calibration);
  EXPECT_LT((*out - reference).cwiseAbs().maxCoeff(), 0.01 * reference.cwiseAbs().maxCoeff());
}

class QuantizedBlob : public ::testing::Test {
 protected:
  void SetUp() override {
    Rng rng(5);
    const StudentWeights w = random_student(rng, 12, 3, 5, 7, 2);
    calibration_ = uniform_matrix(rng, 12, 50, 1.0);
    auto q = quantize_student(w, calibration_);
    ASSERT_TRUE(q.ok()) << q.error().message;
    student_ = std::move(*q);
    blob_ = serialize_quantized_student(student_);
  }
  Eigen::MatrixXf calibration_;
  QuantizedStudent student_;
  std::vector<uint8_t> blob_;
};

TEST_F(QuantizedBlob, RoundTripsToTheSameForecasts) {
  auto back = deserialize_quantized_student(blob_);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(serialize_quantized_student(*back), blob_);
  const Eigen::MatrixXf a = *run_quantized(student_, calibration_);
  const Eigen::MatrixXf b = *run_quantized(*back, calibration_);
  EXPECT_EQ(a, b);
}

TEST_F(QuantizedBlob, RejectsEveryTruncation) {
  for (size_t n = 0; n < blob_.size(); ++n) {
    auto r = deserialize_quantized_student(std::span(blob_).first(n));
    ASSERT_FALSE(r.ok()) << "accepted " << n << " of " << blob_.size() << " bytes";
  }
  std::vector<uint8_t> longer = blob_;
  longer.push_back(0);
  EXPECT_EQ(deserialize_quantized_student(longer).error().code, ErrorCode::kCorrupt);
}

TEST_F(QuantizedBlob, RejectsAnyFlippedPayloadBit) {
  for (size_t i = 6; i < blob_.size(); i += 7) {
    std::vector<uint8_t> bad = blob_;
    bad[i] ^= 0x10;
    auto r = deserialize_quantized_student(bad);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt) << "byte " << i;
  }
}

TEST_F(QuantizedBlob, NamesWrongMagicAndUnknownVersion) {
  std::vector<uint8_t> bad = blob_;
  bad[0] = 'X';
  EXPECT_EQ(deserialize_quantized_student(bad).error().code, ErrorCode::kParse);
  bad = blob_;
  bad[4] = 3;
  EXPECT_EQ(deserialize_quantized_student(bad).error().code, ErrorCode::kUnsupported);
}

TEST_F(QuantizedBlob, AStudentWithoutIntervalsIsStillVersionOneAndLoadsWithoutATable) {
  EXPECT_EQ(blob_[4], 1);  // what builds before prediction intervals wrote and read
  EXPECT_EQ(blob_[5], 0);
  auto back = deserialize_quantized_student(blob_);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->interval_half_width.empty());
}

TEST_F(QuantizedBlob, TheIntervalTableMakesVersionTwoAndRoundTrips) {
  QuantizedStudent with = student_;
  with.interval_half_width = {0, 1, 2, 3, 1000, 65536, 1 << 30};  // horizon 7
  const std::vector<uint8_t> blob = serialize_quantized_student(with);
  EXPECT_EQ(blob[4], 2);
  EXPECT_EQ(blob.size(), blob_.size() + 4 * 7);
  auto back = deserialize_quantized_student(blob);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->interval_half_width, with.interval_half_width);
  EXPECT_EQ(serialize_quantized_student(*back), blob);
  for (size_t n = 0; n < blob.size(); ++n)
    ASSERT_FALSE(deserialize_quantized_student(std::span(blob).first(n)).ok()) << n;
}

// The node's blob (the export) stores the encoder's rows in pair order for the Cortex-M4 DSP
// kernels; the flag says so and the reader gives the natural student back.
TEST_F(QuantizedBlob, ThePairedEncoderLayoutIsFlaggedAndReadsBackNatural) {
  const std::vector<uint8_t> paired =
      serialize_quantized_student(student_, CC_STUDENT_LAYOUT_ENCODER_PAIRED);
  ASSERT_EQ(paired.size(), blob_.size());
  EXPECT_EQ(paired[4], 1);  // version 1 ...
  EXPECT_EQ(paired[5], 1);  // ... with the paired-encoder flag
  // Row 0 of 12 columns from byte 38: [w0, w2, w1, w3] per group of four.
  const size_t in = student_.input_size;
  ASSERT_EQ(in, 12u);
  const auto& w = student_.encoder_weight;
  for (size_t row = 0; row < 2; ++row) {
    for (size_t c = 0; c < in; ++c) {
      const size_t slot = (c & ~size_t{3}) | ((c & 1) << 1) | ((c >> 1) & 1);
      EXPECT_EQ(static_cast<int8_t>(paired[38 + row * in + slot]), w[row * in + c]) << row << c;
    }
  }
  EXPECT_EQ(encoder_weight_in_layout(student_, CC_STUDENT_LAYOUT_NATURAL), w);
  auto back = deserialize_quantized_student(paired);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(serialize_quantized_student(*back), blob_);
  // The flag goes with the interval table's version 2 as well.
  QuantizedStudent with = student_;
  with.interval_half_width.assign(7, 9);
  const std::vector<uint8_t> both =
      serialize_quantized_student(with, CC_STUDENT_LAYOUT_ENCODER_PAIRED);
  EXPECT_EQ(both[4], 2);
  EXPECT_EQ(both[5], 1);
  back = deserialize_quantized_student(both);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(serialize_quantized_student(*back), serialize_quantized_student(with));
  for (size_t n = 0; n < paired.size(); ++n)
    ASSERT_FALSE(deserialize_quantized_student(std::span(paired).first(n)).ok()) << n;
}

TEST_F(QuantizedBlob, RefusesAnUnknownLayoutFlag) {
  for (uint8_t flags : {0x02, 0x03, 0x80}) {
    std::vector<uint8_t> bad = blob_;
    bad[5] = flags;
    auto r = deserialize_quantized_student(bad);
    ASSERT_FALSE(r.ok()) << int(flags);
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported) << int(flags);
  }
}

TEST_F(QuantizedBlob, RefusesAnIntervalHalfWidthOutsideItsRange) {
  for (int32_t bad_width : {-1, (1 << 30) + 1}) {
    QuantizedStudent bad = student_;
    bad.interval_half_width.assign(7, 5);
    bad.interval_half_width[3] = bad_width;
    auto r = deserialize_quantized_student(serialize_quantized_student(bad));
    ASSERT_FALSE(r.ok()) << bad_width;
    EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  }
}

// The quantizer's float reference must be the StudentModel the pipeline trains, or int8 scores
// would measure the distance to a different model.
TEST(StudentWeights, FloatReferenceMatchesStudentModelPredict) {
  StudentConfig config;
  config.input_size = 20;
  config.features = 3;
  config.width = 6;
  config.euler_steps = 3;
  config.horizon = 9;
  const StudentModel<float> model(config);
  std::vector<float> params(static_cast<size_t>(model.layout().size()));
  model.init(params.data(), 17);
  Rng rng(6);
  for (int64_t i = 0; i < config.horizon * (config.width + 1); ++i)  // G and c start at zero
    params[static_cast<size_t>(model.tensors().head + i)] = static_cast<float>(rng.uniform(-1, 1));
  for (int64_t i = 0; i < config.width; ++i) {
    params[static_cast<size_t>(model.tensors().alpha + i)] = static_cast<float>(rng.uniform(0, 2));
    params[static_cast<size_t>(model.tensors().beta + i)] = static_cast<float>(rng.uniform(-1, 2));
  }
  const Eigen::MatrixXf x = uniform_matrix(rng, config.input_size, 15, 1.0);
  Matrix<float> expected;
  model.predict(params.data(), x, expected);
  const StudentWeights w = student_weights(model, params.data());
  EXPECT_LT((student_forward_float(w, x) - expected).cwiseAbs().maxCoeff(), 1e-5f);
}

}  // namespace
}  // namespace cyclecast::models
