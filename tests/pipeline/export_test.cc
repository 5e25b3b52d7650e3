// Export of an int8 student for the node: the node-model blob round trip and its refusals, the
// generated C sources, export_run on a run directory and the SHA-256.
#include "cyclecast/pipeline/export.h"
#include <algorithm>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>

#include "../firmware/node_fixture.h"
#include "cyclecast/models/model_file.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

struct Fixture {
  FeatureSpec spec;
  models::QuantizedStudent student;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    const auto cells = testing::generated_cells(4, 80, 7);
    FeatureOptions options;
    options.input_len = 12;
    options.horizon = 15;
    Fixture out;
    out.spec = *fit_feature_spec(cells, options);
    const Windows windows = make_windows(cells, out.spec, 3);
    out.student = testing::random_student(out.spec, windows, 6, 11);
    return out;
  }();
  return f;
}

TEST(Sha256, MatchesTheStandardTestVectors) {
  const std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ExportModel, BlobReadsBackToTheSameStudentAndNormalization) {
  const Fixture& f = fixture();
  ASSERT_EQ(f.spec.features.size(), 3u) << "the generated cells report every feature";
  auto exported = export_model(f.student, f.spec, "w6-test.1");
  ASSERT_TRUE(exported) << exported.error().message;
  EXPECT_EQ(exported->version, "w6-test.1");
  EXPECT_EQ(exported->sha256_hex, sha256_hex(exported->blob));
  auto read = read_node_model(exported->blob);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->version, "w6-test.1");
  EXPECT_EQ(read->sha256_hex, exported->sha256_hex);
  EXPECT_EQ(models::serialize_quantized_student(read->student),
            models::serialize_quantized_student(f.student));
  // The embedded CCQ8 carries the paired encoder layout, flagged in its version field's high byte.
  const auto ccq8 = std::search(exported->blob.begin(), exported->blob.end(), "CCQ8", "CCQ8" + 4);
  ASSERT_NE(ccq8, exported->blob.end());
  EXPECT_EQ(ccq8[4], 1);
  EXPECT_EQ(ccq8[5], 1);
  const NodeNormalization& n = read->normalization;
  EXPECT_EQ(n.input_len, 12);
  EXPECT_EQ(n.horizon, 15);
  EXPECT_EQ(n.feature_ids, (std::vector<uint8_t>{0, 1, 2}));
  EXPECT_EQ(n.level_offset, static_cast<float>(f.spec.level_offset));
  EXPECT_EQ(n.level_scale, static_cast<float>(f.spec.level_scale));
  EXPECT_EQ(n.log_amp_mean, static_cast<float>(f.spec.log_amp_mean));
  EXPECT_EQ(n.log_amp_std, static_cast<float>(f.spec.log_amp_std));
  EXPECT_EQ(n.amp_floor, static_cast<float>(f.spec.amp_floor));
  EXPECT_EQ(n.feature_std[2], static_cast<float>(f.spec.features[2].std));
}

TEST(ExportModel, SourcesHoldTheArraysDescriptorVersionAndHash) {
  const Fixture& f = fixture();
  auto exported = export_model(f.student, f.spec, "v7");
  ASSERT_TRUE(exported);
  const std::string& h = exported->model_data_h;
  const std::string& c = exported->model_data_c;
  EXPECT_NE(h.find("#define CC_MODEL_VERSION \"v7\""), std::string::npos);
  EXPECT_NE(h.find("#define CC_MODEL_SHA256 \"" + exported->sha256_hex + "\""), std::string::npos);
  EXPECT_NE(h.find("#define CC_MODEL_INPUT_LEN 12"), std::string::npos);
  EXPECT_NE(h.find("#define CC_MODEL_HORIZON 15"), std::string::npos);
  EXPECT_NE(h.find("extern const cc_node_model cc_model;"), std::string::npos);
  EXPECT_NE(c.find("const cc_student_model cc_model_student = {"), std::string::npos);
  // Every array is const (flash) and the encoder's values are the student's, each row's columns
  // in pair order (the DSP kernels' layout), which the descriptor says.
  EXPECT_EQ(c.find("\nstatic int"), std::string::npos);
  EXPECT_NE(c.find(", CC_STUDENT_LAYOUT_ENCODER_PAIRED, "), std::string::npos);
  const std::regex encoder(R"(static const int8_t encoder_weight\[(\d+)\] = \{([^}]*)\})");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(c, m, encoder));
  EXPECT_EQ(std::stoul(m[1]), f.student.encoder_weight.size());
  std::vector<int8_t> values;
  const std::string list = m[2];
  const std::regex number(R"(-?\d+)");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), number);
       it != std::sregex_iterator(); ++it)
    values.push_back(static_cast<int8_t>(std::stoi(it->str())));
  EXPECT_EQ(values, models::encoder_weight_in_layout(f.student, CC_STUDENT_LAYOUT_ENCODER_PAIRED));
  const size_t in = f.student.input_size;
  ASSERT_GE(in, 4u);
  EXPECT_EQ(values[1], f.student.encoder_weight[2]);
  EXPECT_EQ(values[2], f.student.encoder_weight[1]);
  EXPECT_EQ(values[in + 1], f.student.encoder_weight[in + 2]);
  // Floats are written with nine significant digits: they read back as the same float.
  const std::regex floats(R"((-?\d\.\d{8}e[+-]\d\d)f, /\* delta_scale)");
  ASSERT_TRUE(std::regex_search(c, m, floats));
  EXPECT_EQ(std::stof(m[1]), static_cast<float>(f.spec.delta_scale));
}

TEST(ExportModel, RefusesBadVersionsAndMismatchedSizes) {
  const Fixture& f = fixture();
  for (const std::string& bad :
       std::vector<std::string>{"", "has space", "slash/", std::string(33, 'a'), "\xc3\xbc"}) {
    auto exported = export_model(f.student, f.spec, bad);
    ASSERT_FALSE(exported) << bad;
    EXPECT_EQ(exported.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(export_model(f.student, f.spec, std::string(32, 'a')));
  FeatureSpec other = f.spec;
  other.horizon = 14;
  auto mismatched = export_model(f.student, other, "v1");
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message.find("forecasts 15 cycles"), std::string::npos);
  other = f.spec;
  other.features.pop_back();
  EXPECT_FALSE(export_model(f.student, other, "v1"));
}

TEST(ReadNodeModel, RefusesWrongMagicVersionAndEveryTruncation) {
  const Fixture& f = fixture();
  const std::vector<uint8_t> blob = export_model(f.student, f.spec, "v1")->blob;
  std::vector<uint8_t> bad = blob;
  bad[0] = 'X';
  EXPECT_EQ(read_node_model(bad).error().code, ErrorCode::kParse);
  bad = blob;
  bad[4] = 3;
  EXPECT_EQ(read_node_model(bad).error().code, ErrorCode::kUnsupported);
  for (size_t n = 0; n < blob.size(); ++n) {
    auto cut = read_node_model(std::span(blob).first(n));
    ASSERT_FALSE(cut) << "cut at " << n;
    EXPECT_TRUE(cut.error().code == ErrorCode::kCorrupt || cut.error().code == ErrorCode::kParse)
        << n;
  }
  bad = blob;
  bad.push_back(0);
  EXPECT_EQ(read_node_model(bad).error().code, ErrorCode::kCorrupt);
}

TEST(ReadNodeModel, RefusesEverySingleBitFlip) {
  const Fixture& f = fixture();
  const std::vector<uint8_t> blob = export_model(f.student, f.spec, "v1")->blob;
  for (size_t i = 0; i < blob.size(); i += 3) {
    std::vector<uint8_t> bad = blob;
    bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
    EXPECT_FALSE(read_node_model(bad)) << "flip in byte " << i;
  }
}

// ---- the interval section (version 2) ---------------------------------------------------------

models::QuantizedStudent with_table(models::QuantizedStudent student) {
  student.interval_half_width.resize(student.horizon);
  for (size_t j = 0; j < student.interval_half_width.size(); ++j)
    student.interval_half_width[j] = static_cast<int32_t>(j * 1000 + 7);
  student.interval_half_width.back() = 1 << 30;
  return student;
}

// Replaces the blob's CRC after an edit, so that a test reaches the check behind it.
std::vector<uint8_t> recrc(std::vector<uint8_t> blob) {
  const uint32_t crc = models::crc32(std::span(blob).first(blob.size() - 4));
  for (int i = 0; i < 4; ++i)
    blob[blob.size() - 4 + static_cast<size_t>(i)] = static_cast<uint8_t>(crc >> (8 * i));
  return blob;
}

// The self-test section's bytes (tag, length, I, inputs, H, outputs) of a student's blob.
size_t selftest_section_bytes(const models::QuantizedStudent& s) {
  return 1 + 4 + 2 + 2 * size_t{s.input_size} + 2 + 4 * size_t{s.horizon};
}

TEST(ExportModel, IntervalTableTravelsOnceInTheTag2SectionOfAFormat2Blob) {
  const Fixture& f = fixture();
  const models::QuantizedStudent student = with_table(f.student);
  auto exported = export_model(student, f.spec, "iv");
  ASSERT_TRUE(exported) << exported.error().message;
  EXPECT_EQ(exported->blob[4], 2) << "format 2: the table is a section, not a format";
  auto read = read_node_model(exported->blob);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->interval.bands, 1);
  EXPECT_EQ(read->interval.band_soh[0], 0.95f);
  EXPECT_EQ(read->interval.band_soh[1], 0.90f);
  EXPECT_EQ(read->interval.half_width, student.interval_half_width);
  EXPECT_TRUE(read->student.interval_half_width.empty()) << "not a second copy in the student";
  EXPECT_EQ(models::serialize_quantized_student(read->student),
            models::serialize_quantized_student(f.student));
  // 1 band byte, 2 limits, H half-widths more than the blob of the same student without a table.
  auto bare = export_model(f.student, f.spec, "iv");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->blob[4], 2) << "no table: the same format, without the tag 2 section";
  // tag, length, bands, two limits, H half-widths.
  EXPECT_EQ(exported->blob.size(), bare->blob.size() + 1 + 4 + 1 + 8 + 4 * student.horizon);
  EXPECT_EQ(exported->blob[exported->blob.size() - 4 - 4 * student.horizon - 8 - 1 - 4 - 1],
            kNodeModelSectionInterval);
  EXPECT_EQ(read_node_model(bare->blob)->interval.bands, 0);
  // The C sources carry the same table for the node.
  const std::string& c = exported->model_data_c;
  EXPECT_NE(c.find("static const int32_t interval_half_width[15] = {\n    7, 1007,"),
            std::string::npos);
  EXPECT_NE(c.find("1073741824,\n};"), std::string::npos);
  EXPECT_NE(c.find("&interval, /* interval table */"), std::string::npos);
  EXPECT_NE(bare->model_data_c.find("NULL, /* interval table */"), std::string::npos);
}

// A format 1 blob exported before the interval section existed, whose embedded CCQ8 student
// carries the table, still loads, with that table as one row.
TEST(ReadNodeModel, Format1BlobWithATableInItsStudentGivesAOneRowInterval) {
  const Fixture& f = fixture();
  const models::QuantizedStudent student = with_table(f.student);
  const std::vector<uint8_t> bare = export_model(f.student, f.spec, "old")->blob;
  const size_t bare_student = models::serialize_quantized_student(f.student).size();
  const std::vector<uint8_t> ccq8 = models::serialize_quantized_student(student);
  // Format 1: no sections (their count, the self-test) after the student.
  const size_t sections = 1 + selftest_section_bytes(f.student);
  std::vector<uint8_t> old(bare.begin(),
                           bare.end() - 4 - static_cast<long>(sections + bare_student + 4));
  old.at(4) = 1;
  for (int i = 0; i < 4; ++i)
    old.push_back(static_cast<uint8_t>(ccq8.size() >> (8 * i)));
  old.insert(old.end(), ccq8.begin(), ccq8.end());
  old.resize(old.size() + 4);
  old = recrc(old);
  auto read = read_node_model(old);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->interval.bands, 1);
  EXPECT_EQ(read->interval.half_width, student.interval_half_width);
  EXPECT_TRUE(read->student.interval_half_width.empty());
}

TEST(ReadNodeModel, RefusesABadIntervalSection) {
  const Fixture& f = fixture();
  const models::QuantizedStudent student = with_table(f.student);
  const std::vector<uint8_t> blob = export_model(student, f.spec, "iv")->blob;
  const size_t section = blob.size() - 4 - 4 * student.horizon - 8 - 1;
  ASSERT_EQ(blob[section], 1);
  const auto refused = [&](const std::function<void(std::vector<uint8_t>&)>& edit) {
    std::vector<uint8_t> bad = blob;
    edit(bad);
    auto read = read_node_model(recrc(bad));
    return !read && read.error().code == ErrorCode::kCorrupt;
  };
  const auto put_f32 = [](std::vector<uint8_t>& b, size_t at, float v) {
    std::memcpy(b.data() + at, &v, 4);
  };
  EXPECT_FALSE(refused([](std::vector<uint8_t>&) {}));
  EXPECT_TRUE(refused([&](auto& b) { b[section] = 0; }));
  EXPECT_TRUE(refused([&](auto& b) { b[section] = 4; }));
  EXPECT_TRUE(refused([&](auto& b) { b[section] = 2; })) << "2 rows need 2 H half-widths";
  EXPECT_TRUE(refused([&](auto& b) { put_f32(b, section + 1, 0.85f); }));  // high <= medium
  EXPECT_TRUE(refused([&](auto& b) { put_f32(b, section + 5, 0.0f); }));
  EXPECT_TRUE(refused([&](auto& b) { put_f32(b, section + 1, std::nanf("")); }));
  EXPECT_TRUE(refused([&](auto& b) { put_f32(b, section + 1, 2.5f); }));
  EXPECT_TRUE(refused([&](auto& b) { b[section + 9 + 3] = 0x80; }));  // a negative half-width
  EXPECT_TRUE(refused([&](auto& b) { b[section + 9 + 3] = 0x40; }));  // above 2^30
  // The same table in the section and in the embedded student: refused, not guessed.
  const std::vector<uint8_t> ccq8 = models::serialize_quantized_student(student);
  const size_t bare_student = models::serialize_quantized_student(f.student).size();
  // Before the interval section: its tag and length, the self-test, the section count, the
  // embedded student and its length.
  const size_t student_at = section - 5 - selftest_section_bytes(f.student) - 1 - bare_student;
  std::vector<uint8_t> twice(blob.begin(), blob.begin() + static_cast<long>(student_at - 4));
  for (int i = 0; i < 4; ++i)
    twice.push_back(static_cast<uint8_t>(ccq8.size() >> (8 * i)));
  twice.insert(twice.end(), ccq8.begin(), ccq8.end());
  twice.insert(twice.end(), blob.begin() + static_cast<long>(student_at + bare_student),
               blob.end());
  auto read = read_node_model(recrc(twice));
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("two interval tables"), std::string::npos);
  for (size_t n = 0; n < blob.size(); ++n)
    ASSERT_FALSE(read_node_model(std::span(blob).first(n))) << "cut at " << n;
  for (size_t i = 0; i < blob.size(); i += 3) {
    std::vector<uint8_t> bad = blob;
    bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
    EXPECT_FALSE(read_node_model(bad)) << "flip in byte " << i;
  }
}

TEST(ExportRun, ReadsStudentInt8AndTheSpecOfStudentCcmAndWritesThreeFiles) {
  const Fixture& f = fixture();
  const cyclecast::testing::TempDir dir;
  const std::filesystem::path run = dir.path() / "run";
  std::filesystem::create_directories(run);
  const std::vector<uint8_t> int8 = models::serialize_quantized_student(f.student);
  std::ofstream(run / "student.int8", std::ios::binary)
      .write(reinterpret_cast<const char*>(int8.data()), static_cast<std::streamsize>(int8.size()));
  models::SavedModel saved;
  const models::StudentConfig config{f.spec.encoded_size(), 8, 6, 1, f.spec.horizon, true};
  saved.config = config;
  saved.params = models::Vector<float>::Zero(models::StudentModel<float>(config).layout().size());
  saved.metadata = f.spec.to_metadata();
  ASSERT_TRUE(models::save_model((run / "student.ccm").string(), saved));

  auto exported = export_run(run, "run-1");
  ASSERT_TRUE(exported) << exported.error().message;
  EXPECT_EQ(exported->blob, export_model(f.student, f.spec, "run-1")->blob);
  ASSERT_TRUE(write_exported_model(*exported, dir.path() / "out"));
  for (const char* name : {"model_data.h", "model_data.c", "model.bin"})
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / name)) << name;
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "out" / "model.bin"), exported->blob.size());

  auto missing = export_run(dir.path() / "nothing", "v1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(CostFile, RoundTripsEveryConstantAndRefusesBadFiles) {
  const cyclecast::testing::TempDir dir;
  models::CostConstants c;
  c.runtime_code_bytes = 1234;
  c.stack_bytes = 84;
  c.cycles_per_mac = 4.25;
  c.cycles_per_encoder_mac = 1.5;
  c.cycles_fixed = 321;
  cyclecast::testing::write_file(dir.path() / "cost.json", cost_file_json(c, "test"));
  auto read = read_cost_file(dir.path() / "cost.json");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->runtime_code_bytes, 1234);
  EXPECT_EQ(read->stack_bytes, 84);
  EXPECT_EQ(read->cycles_per_mac, 4.25);
  EXPECT_EQ(read->cycles_per_encoder_mac, 1.5);
  EXPECT_EQ(read->cycles_fixed, 321);
  EXPECT_EQ(read->tanh_table_bytes, models::CostConstants{}.tanh_table_bytes);
  // Keys left out keep their defaults.
  cyclecast::testing::write_file(dir.path() / "partial.json",
                                 R"({"format": 1, "stack_bytes": 90})");
  auto partial = read_cost_file(dir.path() / "partial.json");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->stack_bytes, 90);
  EXPECT_EQ(partial->cycles_per_mac, models::CostConstants{}.cycles_per_mac);
  // A file from before the encoder's own figure prices its MACs as every other.
  cyclecast::testing::write_file(dir.path() / "older.json",
                                 R"({"format": 1, "cycles_per_mac": 4.44})");
  auto older = read_cost_file(dir.path() / "older.json");
  ASSERT_TRUE(older);
  EXPECT_EQ(older->cycles_per_encoder_mac, 4.44);
  const std::pair<const char*, ErrorCode> bad[] = {
      {"[1]", ErrorCode::kParse},
      {"{", ErrorCode::kParse},
      {R"({"stack_bytes": 90})", ErrorCode::kParse},
      {R"({"format": 2})", ErrorCode::kUnsupported},
      {R"({"format": 1, "cycles_per_mac": -1})", ErrorCode::kParse},
      {R"({"format": 1, "stack_bytes": 1.5})", ErrorCode::kParse},
      {R"({"format": 1, "stak_bytes": 1})", ErrorCode::kParse}};
  for (const auto& [text, code] : bad) {
    cyclecast::testing::write_file(dir.path() / "bad.json", text);
    auto refused = read_cost_file(dir.path() / "bad.json");
    ASSERT_FALSE(refused) << text;
    EXPECT_EQ(refused.error().code, code) << text;
  }
  EXPECT_EQ(read_cost_file(dir.path() / "none.json").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cyclecast::pipeline
