// Export of a trained int8 student to the edge node: C sources for the firmware (model_data.h/.c,
// every array const so it stays in flash) and the node-model blob `model.bin` (the CCQ8 student
// plus the input normalization), which the virtual node loads and the signed bundle ships.
// docs/firmware.md ("Node-model blob") documents the blob; docs/node-protocol.md the node.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "cyclecast/models/cost.h"
#include "cyclecast/models/quantize.h"
#include "cyclecast/pipeline/windows.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// Format 2 is format 1 plus tagged sections before the CRC: tag 1 the self-test, tag 2 the
// prediction-interval table (docs/firmware.md); format 1 is still read.
inline constexpr uint16_t kNodeModelVersion = 2;
inline constexpr uint8_t kNodeModelSectionSelfTest = 1;
inline constexpr uint8_t kNodeModelSectionInterval = 2;
inline constexpr char kNodeModelMagic[4] = {'C', 'C', 'N', 'M'};
// Model versions: 1 to 32 characters from [A-Za-z0-9_.-] (they travel in node protocol frames).
inline constexpr size_t kMaxModelVersionLength = 32;

struct ExportedModel {
  std::string model_data_h;   // C header: sizes, version, hash, extern descriptors
  std::string model_data_c;   // C source: const arrays, cc_student_model and cc_node_model
  std::vector<uint8_t> blob;  // node-model blob (model.bin)
  std::string version;
  std::string sha256_hex;  // SHA-256 of blob, 64 lowercase hex digits
};

// The normalization as the node computes it: in float (single precision, the M4F's FPU), with
// the feature ids of cc_node.h (0 ir_ohm, 1 temperature_c, 2 charge_time_min).
struct NodeNormalization {
  uint16_t input_len = 0;
  uint16_t horizon = 0;
  std::vector<uint8_t> feature_ids;
  float delta_scale = 0, level_offset = 0, level_scale = 0, amp_floor = 0;
  float log_amp_mean = 0, log_amp_std = 0;
  std::vector<float> feature_mean, feature_std;
};

// The node's prediction-interval table (cc_node_interval, docs/firmware.md "The CCNM node-model
// blob"): `bands` rows of `horizon` half-widths in integers of the student's output scale, one
// per SOH band of the window's origin (row 0 when soh_last >= band_soh[0], row 1 when >=
// band_soh[1], row 2 below; fewer rows: the last one serves the bands beyond it).
struct NodeInterval {
  uint16_t bands = 0;  // 0: the model has no table
  // The SOH band limits of the pipeline's report (protocols.h soh_band), in float.
  std::array<float, 2> band_soh = {0.95f, 0.90f};
  std::vector<int32_t> half_width;  // bands x horizon, row-major, each in [0, 2^30]
};

// A parsed node-model blob.
struct NodeModel {
  std::string version;
  std::string sha256_hex;  // of the whole blob it was read from
  NodeNormalization normalization;
  // The student without its interval table: the node's copy of the table is `interval`.
  models::QuantizedStudent student;
  // The self-test the node runs before it switches to this model (format 2; empty in format 1):
  // an input and cc_student_forecast's exact output for it (docs/firmware.md).
  std::vector<int16_t> selftest_input;
  std::vector<int32_t> selftest_output;
  NodeInterval interval;
};

// The node's interval of a student: its table as one row (every SOH band), or none.
NodeInterval node_interval(const models::QuantizedStudent& student);

// The normalization of `spec` in the node's float form. kInvalidArgument when W or H exceed
// 65535 or a feature name is unknown.
Result<NodeNormalization> node_normalization(const FeatureSpec& spec);

// Exports a quantized student and the FeatureSpec it was trained with. kInvalidArgument when the
// version is not 1 to 32 characters of [A-Za-z0-9_.-], or the student's input size is not the
// spec's encoded_size(), or its horizon is not the spec's.
Result<ExportedModel> export_model(const models::QuantizedStudent& student, const FeatureSpec& spec,
                                   const std::string& version);

// Exports the chosen student of a training run directory (student.int8, with the FeatureSpec
// from student.ccm's metadata). kNotFound when a file is missing; the readers' errors otherwise.
Result<ExportedModel> export_run(const std::filesystem::path& run_dir, const std::string& version);

// Writes model_data.h, model_data.c and model.bin into `dir` (created if missing). kIo on failure.
Result<void> write_exported_model(const ExportedModel& model, const std::filesystem::path& dir);

// Reads a node-model blob (version 1, or 2 with the interval section): kParse for a wrong magic,
// kUnsupported for another format version, kCorrupt for truncation, trailing bytes, a CRC
// mismatch, bad normalization values, an embedded CCQ8 student that does not read or does not
// match the normalization's sizes, or a bad interval section (bands outside 1..3, band limits
// not ordered within (0, 2], a half-width outside [0, 2^30], a second table in the student). A
// version 1 blob whose student carries a table (exported before the section existed) gives that
// table as a one-row interval.
Result<NodeModel> read_node_model(std::span<const uint8_t> blob);

// Cost-model constants measured on the target (docs/firmware.md, "Calibrating the cost model"),
// for TrainingOptions::cost: a JSON object {"format": 1, "source": "...", and any of
// "runtime_code_bytes", "tanh_table_bytes", "descriptor_bytes", "stack_bytes", "cycles_per_mac",
// "cycles_per_encoder_mac", "cycles_per_row", "cycles_per_tanh", "cycles_per_euler_unit",
// "cycles_fixed", "clock_hz"}; a key left out keeps its default, but "cycles_per_encoder_mac" left
// out is the file's "cycles_per_mac" (files from before it priced every MAC alike). kNotFound,
// kParse (not JSON, wrong type, unknown key) or kUnsupported (another format).
Result<models::CostConstants> read_cost_file(const std::filesystem::path& path);
// The file read_cost_file reads, with every constant; `source` says how they were measured.
std::string cost_file_json(const models::CostConstants& constants, const std::string& source);

// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> bytes);

}  // namespace cyclecast::pipeline
