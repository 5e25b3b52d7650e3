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

// Format 2 is format 1 plus tagged sections before the CRC (the self-test); 1 is still read.
inline constexpr uint16_t kNodeModelVersion = 2;
inline constexpr uint8_t kNodeModelSectionSelfTest = 1;
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

// A parsed node-model blob.
struct NodeModel {
  std::string version;
  std::string sha256_hex;  // of the whole blob it was read from
  NodeNormalization normalization;
  models::QuantizedStudent student;
  // The self-test the node runs before it switches to this model (format 2; empty in format 1):
  // an input and cc_student_forecast's exact output for it (docs/firmware.md).
  std::vector<int16_t> selftest_input;
  std::vector<int32_t> selftest_output;
};

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

// Reads a node-model blob: kParse for a wrong magic, kUnsupported for another format version,
// kCorrupt for truncation, trailing bytes, a CRC mismatch, bad normalization values or an
// embedded CCQ8 student that does not read or does not match the normalization's sizes.
Result<NodeModel> read_node_model(std::span<const uint8_t> blob);

// Cost-model constants measured on the target (docs/firmware.md, "Calibrating the cost model"),
// for TrainingOptions::cost: a JSON object {"format": 1, "source": "...", and any of
// "runtime_code_bytes", "tanh_table_bytes", "descriptor_bytes", "stack_bytes", "cycles_per_mac",
// "cycles_per_row", "cycles_per_tanh", "cycles_per_euler_unit", "cycles_fixed", "clock_hz"};
// a key left out keeps its default. kNotFound, kParse (not JSON, wrong type, unknown key) or
// kUnsupported (another format).
Result<models::CostConstants> read_cost_file(const std::filesystem::path& path);
// The file read_cost_file reads, with every constant; `source` says how they were measured.
std::string cost_file_json(const models::CostConstants& constants, const std::string& source);

// SHA-256 of `bytes` as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> bytes);

}  // namespace cyclecast::pipeline
