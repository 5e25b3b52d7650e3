#include "cyclecast/models/model_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "temp_dir.h"

namespace cyclecast::models {
namespace {

using cyclecast::testing::TempDir;

SavedModel make_saved(ModelConfig config, uint64_t seed) {
  SavedModel m;
  m.config = std::move(config);
  const auto model = build_model(m.config);
  m.params.resize(model->layout().size());
  model->init(m.params.data(), seed);
  m.normalization = Normalization{0.763187, 0.246998};
  m.metadata = {{"data_set", "severson-soh"}, {"epochs", "40"}, {"validation_loss", "0.00042"}};
  return m;
}

DlnetConfig small_dlnet() {
  DlnetConfig c;
  c.input_len = 10;
  c.horizon = 5;
  c.encoder_widths = {8};
  c.hidden = 6;
  c.decoder_widths = {7, 4};
  c.recurrent_rank = 2;
  return c;
}

std::vector<uint8_t> encode(const SavedModel& m) {
  auto bytes = encode_model(m);
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

// Rewrites the trailing checksum so that a deliberate edit reaches the parser behind it.
void fix_checksum(std::vector<uint8_t>& bytes) {
  const uint32_t crc = crc32(std::span<const uint8_t>(bytes).first(bytes.size() - 4));
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
}

TEST(ModelFile, RoundTripIsExactForEveryArchitecture) {
  LtcConfig ltc;
  ltc.units = 5;
  ltc.unfolds = 3;
  ltc.input_len = 7;
  ltc.elapsed_time = 0.5;
  EulerStudentConfig student;
  student.width = 4;
  student.recurrent_rank = 1;
  student.step_size = 0.25;
  const StudentConfig bypass_student{7, 3, 4, 2, 5};
  for (const ModelConfig& config :
       {ModelConfig{small_dlnet()}, ModelConfig{DlnetConfig::teacher()}, ModelConfig{ltc},
        ModelConfig{student}, ModelConfig{bypass_student}, ModelConfig{StudentConfig{}}}) {
    const SavedModel original = make_saved(config, 3);
    auto decoded = decode_model(encode(original));
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->params, original.params);
    EXPECT_EQ(decoded->metadata, original.metadata);
    EXPECT_EQ(decoded->normalization.offset, original.normalization.offset);
    EXPECT_EQ(decoded->normalization.scale, original.normalization.scale);
    EXPECT_EQ(architecture_of(decoded->config), architecture_of(original.config));
    // Same configuration: re-encoding gives the same bytes.
    EXPECT_EQ(encode(*decoded), encode(original));
  }
}

TEST(ModelFile, RoundTripKeepsEveryHyperParameter) {
  DlnetConfig c = small_dlnet();
  c.euler_steps = 4;
  c.dropout = 0.25;
  auto decoded = decode_model(encode(make_saved(c, 4)));
  ASSERT_TRUE(decoded.ok());
  const auto& d = std::get<DlnetConfig>(decoded->config);
  EXPECT_EQ(d.input_len, 10);
  EXPECT_EQ(d.horizon, 5);
  EXPECT_EQ(d.encoder_widths, std::vector<int64_t>({8}));
  EXPECT_EQ(d.decoder_widths, std::vector<int64_t>({7, 4}));
  EXPECT_EQ(d.hidden, 6);
  EXPECT_EQ(d.euler_steps, 4);
  EXPECT_EQ(d.dropout, 0.25);
  EXPECT_EQ(d.recurrent_rank, 2);
}

TEST(ModelFile, StudentIsArchitectureFourAndKeepsEveryHyperParameter) {
  const StudentConfig c{101, 6, 12, 3, 80};
  const SavedModel original = make_saved(c, 14);
  const std::vector<uint8_t> bytes = encode(original);
  uint32_t arch = 0;
  std::memcpy(&arch, bytes.data() + 12, 4);
  EXPECT_EQ(arch, 4u);
  auto decoded = decode_model(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_TRUE(std::holds_alternative<StudentConfig>(decoded->config));
  const auto& d = std::get<StudentConfig>(decoded->config);
  EXPECT_EQ(d.input_size, 101);
  EXPECT_EQ(d.features, 6);
  EXPECT_EQ(d.width, 12);
  EXPECT_EQ(d.euler_steps, 3);
  EXPECT_EQ(d.horizon, 80);
  Matrix<float> x = Matrix<float>::Random(101, 3);
  Matrix<float> y1;
  Matrix<float> y2;
  build_model(original.config)->predict(original.params.data(), x, y1);
  build_model(decoded->config)->predict(decoded->params.data(), x, y2);
  EXPECT_EQ(y1, y2);
}

TEST(ModelFile, StudentKeepsItsOutputGain) {
  StudentConfig c{9, 2, 3, 1, 4};
  c.output_gain = true;
  auto decoded = decode_model(encode(make_saved(c, 16)));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(std::get<StudentConfig>(decoded->config).output_gain);
  c.output_gain = false;
  decoded = decode_model(encode(make_saved(c, 17)));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_FALSE(std::get<StudentConfig>(decoded->config).output_gain);
}

TEST(ModelFile, RefusesAStudentWithZeroEulerSteps) {
  std::vector<uint8_t> bytes = encode(make_saved(StudentConfig{}, 15));
  // Hyper-parameters in order: input_size, features, width, euler_steps (each u32 length, name,
  // f64 value) after the 24-byte header and the u32 count.
  size_t at = 24 + 4;
  for (const char* name : {"input_size", "features", "width"})
    at += 4 + std::strlen(name) + 8;
  at += 4 + std::strlen("euler_steps");
  const double zero = 0.0;
  std::memcpy(bytes.data() + at, &zero, 8);
  fix_checksum(bytes);
  auto result = decode_model(bytes);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(result.error().message.find("'euler_steps'"), std::string::npos)
      << result.error().message;
}

TEST(ModelFile, SavedAndLoadedModelPredictsIdentically) {
  TempDir dir;
  const SavedModel original = make_saved(small_dlnet(), 5);
  const std::string path = (dir / "teacher.ccm").string();
  ASSERT_TRUE(save_model(path, original).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto loaded = load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Matrix<float> x = Matrix<float>::Random(10, 3);
  Matrix<float> y1;
  Matrix<float> y2;
  build_model(original.config)->predict(original.params.data(), x, y1);
  build_model(loaded->config)->predict(loaded->params.data(), x, y2);
  EXPECT_EQ(y1, y2);
}

TEST(ModelFile, RefusesEveryTruncation) {
  const std::vector<uint8_t> bytes = encode(make_saved(small_dlnet(), 6));
  for (size_t length = 0; length < bytes.size(); ++length) {
    auto result = decode_model(std::span<const uint8_t>(bytes).first(length));
    ASSERT_FALSE(result.ok()) << "length " << length;
    if (length >= 8) {
      EXPECT_EQ(result.error().code, ErrorCode::kCorrupt) << "length " << length;
      EXPECT_NE(result.error().message.find("truncated"), std::string::npos)
          << result.error().message;
    }
  }
}

TEST(ModelFile, RefusesAFlippedBitWithAChecksumError) {
  std::vector<uint8_t> bytes = encode(make_saved(small_dlnet(), 7));
  bytes[bytes.size() / 2] ^= 0x10;
  auto result = decode_model(bytes);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(result.error().message.find("checksum mismatch"), std::string::npos);
}

TEST(ModelFile, RefusesAFutureFormatVersion) {
  std::vector<uint8_t> bytes = encode(make_saved(small_dlnet(), 8));
  const uint32_t future = kModelFormatVersion + 1;
  std::memcpy(bytes.data() + 8, &future, 4);
  fix_checksum(bytes);
  auto result = decode_model(bytes);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(result.error().message.find("format version 2"), std::string::npos);
}

TEST(ModelFile, RefusesSomethingElse) {
  const std::string text = "series,cell_id,row,soh\n";
  auto result = decode_model(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kParse);
  EXPECT_NE(result.error().message.find("Not a cyclecast model file"), std::string::npos);
}

TEST(ModelFile, RefusesTrailingBytes) {
  std::vector<uint8_t> bytes = encode(make_saved(small_dlnet(), 9));
  bytes.push_back(0);
  auto result = decode_model(bytes);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("unexpected bytes follow the checksum"), std::string::npos);
}

TEST(ModelFile, RefusesAnUnknownArchitectureAndAbsurdHyperParameters) {
  std::vector<uint8_t> bytes = encode(make_saved(small_dlnet(), 10));
  std::vector<uint8_t> unknown = bytes;
  const uint32_t arch = 99;
  std::memcpy(unknown.data() + 12, &arch, 4);
  fix_checksum(unknown);
  auto result = decode_model(unknown);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("unknown architecture 99"), std::string::npos);

  // The first hyper-parameter is input_len (an f64 after its name): make it 1e12.
  std::vector<uint8_t> huge = bytes;
  const size_t value_at = 24 + 4 + 4 + std::strlen("input_len");
  const double absurd = 1e12;
  std::memcpy(huge.data() + value_at, &absurd, 8);
  fix_checksum(huge);
  result = decode_model(huge);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(result.error().message.find("'input_len'"), std::string::npos);
}

TEST(ModelFile, RefusesParametersThatDoNotFitTheArchitecture) {
  SavedModel m = make_saved(small_dlnet(), 11);
  m.params.conservativeResize(m.params.size() - 1);
  auto result = encode_model(m);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
}

TEST(ModelFile, LoadReportsAMissingFileAsIo) {
  TempDir dir;
  auto result = load_model((dir / "absent.ccm").string());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kIo);
}

// A corpus of broken files written to disk and loaded back: every truncation point, and single
// byte edits with the checksum repaired so that they reach the body parser. Each must be refused
// (or, for an edit to a float value, decode to a model of the same architecture); none may crash
// or read out of bounds (the sanitizer build runs this too).
TEST(ModelFile, BrokenFileCorpusIsRefusedWithoutCrashing) {
  TempDir dir;
  const SavedModel original = make_saved(small_dlnet(), 12);
  const std::vector<uint8_t> good = encode(original);
  Rng rng(13);
  int refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::vector<uint8_t> bad = good;
    if (i % 4 == 0) {
      bad.resize(rng.below(good.size()));
    } else {
      const size_t at = 8 + rng.below(good.size() - 12);
      bad[at] = static_cast<uint8_t>(rng.next());
      if (i % 4 != 3) fix_checksum(bad);
    }
    const auto path = dir / ("broken-" + std::to_string(i) + ".ccm");
    testing::write_file(path, std::string(bad.begin(), bad.end()));
    auto result = load_model(path.string());
    if (!result.ok()) {
      ++refused;
      EXPECT_FALSE(result.error().message.empty());
      EXPECT_NE(result.error().message.find(path.string()), std::string::npos);
    } else {
      // Only an edit inside float data (or one restoring the same byte) can be accepted.
      EXPECT_EQ(architecture_of(result->config), Architecture::kDlnet);
      EXPECT_EQ(result->params.size(), original.params.size());
      EXPECT_LE((result->params.array() != original.params.array()).count(), 1);
    }
  }
  EXPECT_GT(refused, 150);
}

TEST(ModelFile, Crc32MatchesTheStandardCheckValue) {
  const std::string check = "123456789";
  EXPECT_EQ(
      crc32(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(check.data()), check.size())),
      0xCBF43926u);
}

}  // namespace
}  // namespace cyclecast::models
