// Model files: a versioned binary format holding everything needed to rebuild and run a model.
//
// Layout (all integers little-endian, floats IEEE-754 little-endian):
//   offset  size  field
//   0       8     magic "CCMODEL\x1a"
//   8       4     u32 format version (kModelFormatVersion)
//   12      4     u32 architecture (Architecture)
//   16      8     u64 body size in bytes (B)
//   24      B     body:
//                   u32 n, then n x (str name, f64 value)       hyper-parameters
//                   f64 offset, f64 scale                        input normalization
//                   u32 n, then n x (str key, str value)         training metadata
//                   u32 n, then n x (str name, u32 rows, u32 cols, rows*cols x f32)  tensors
//   24 + B  4     u32 CRC-32 (IEEE 802.3) of bytes [0, 24 + B)
//   str = u32 length + that many bytes (at most 4096).
// Tensors are stored in the model's layout order and must match its names and shapes exactly.
// Readers refuse, with an Error and never a crash: a wrong magic (kParse), a newer format
// version (kUnsupported), a truncated or over-long file, a checksum mismatch, or a body that
// does not describe a valid model (kCorrupt).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/euler_student.h"
#include "cyclecast/models/ltc.h"
#include "cyclecast/models/student.h"
#include "cyclecast/result.h"

namespace cyclecast::models {

inline constexpr uint32_t kModelFormatVersion = 1;
inline constexpr char kModelMagic[8] = {'C', 'C', 'M', 'O', 'D', 'E', 'L', '\x1a'};

// Numbers are part of the format: never reuse or renumber one.
enum class Architecture : uint32_t { kDlnet = 1, kLtc = 2, kEulerStudent = 3, kStudent = 4 };

using ModelConfig = std::variant<DlnetConfig, LtcConfig, EulerStudentConfig, StudentConfig>;

// How raw inputs were scaled before training: scaled = (raw - offset) / scale. Outputs are in
// the same scaled units.
struct Normalization {
  double offset = 0.0;
  double scale = 1.0;
};

struct SavedModel {
  ModelConfig config;
  Normalization normalization;
  std::map<std::string, std::string> metadata;  // e.g. "data_set", "epochs", "validation_loss"
  Vector<float> params;
};

Architecture architecture_of(const ModelConfig& config);
// The model a configuration describes, in float for training and inference.
std::unique_ptr<Model<float>> build_model(const ModelConfig& config);

// Errors: kInvalidArgument when params do not fit the configuration.
Result<std::vector<uint8_t>> encode_model(const SavedModel& model);
Result<SavedModel> decode_model(std::span<const uint8_t> bytes);

// save_model writes to `path` + ".tmp" and renames, so a crash never leaves half a file.
Result<void> save_model(const std::string& path, const SavedModel& model);
Result<SavedModel> load_model(const std::string& path);

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), exposed for tests.
uint32_t crc32(std::span<const uint8_t> bytes);

}  // namespace cyclecast::models
