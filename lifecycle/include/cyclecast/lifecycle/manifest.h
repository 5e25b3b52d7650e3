// manifest.json of a bundle: what the bundle holds and where the model came from. The JSON
// layout, field by field, is in docs/bundles.md ("Manifest"); this is its one reader and writer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::bundle {

inline constexpr const char* kManifestFormat = "cyclecast-bundle";
// Bump on any change a version-1 reader would misread; readers refuse versions they do not know.
inline constexpr int64_t kBundleFormatVersion = 1;
inline constexpr size_t kMaxManifestBytes = size_t{1} << 20;

struct FileEntry {
  std::string path;    // member name in the archive (check_member_name)
  std::string sha256;  // 64 lower-case hex digits
  uint64_t size = 0;   // bytes
};

struct TrainingRun {
  std::string run_id;     // report.json "run_id"
  std::string protocol;   // "heldout", "paper", "split"
  std::string candidate;  // the chosen student's name
};

struct DataSnapshot {
  std::string source;                 // report.json "data_source"
  std::optional<std::string> digest;  // "sha256:<hex>" of the data the run trained on, if known
  std::string digest_of;              // what was hashed (e.g. the path), or why there is none
};

// The chosen student's int8 figures on the protocol's test (held-out) windows; absent figures
// (e.g. no window reached end of life) are nullopt.
struct HeldoutMetrics {
  std::optional<double> mae, mae_10, mae_100, rmse, eol_error_cycles;
  int64_t windows = 0;
  int64_t eol_windows = 0;
};

struct Footprint {
  std::string kind;    // "measured" (linker map, QEMU) or "estimate" (the pipeline's cost model)
  std::string method;  // how the figures were obtained, in a phrase
  std::optional<int64_t> flash_bytes, ram_bytes, stack_bytes, instructions, cycles;
};

struct Manifest {
  int64_t format_version = kBundleFormatVersion;
  std::string model_version;
  std::string created_at;      // ISO 8601 UTC, "2026-11-30T17:00:00Z"
  std::string signing_key_id;  // key_id() of the key that signed manifest.sig
  TrainingRun training_run;
  DataSnapshot data_snapshot;
  int64_t window = 0;   // W: input cycles
  int64_t horizon = 0;  // H: forecast cycles
  // The model's feature schema and normalization: FeatureSpec::to_metadata() of student.ccm,
  // verbatim ("pipeline.*" keys, doubles written to read back exactly).
  std::map<std::string, std::string> feature_spec;
  HeldoutMetrics heldout;
  Footprint footprint;
  int64_t runtime_abi_version = 0;
  std::vector<FileEntry> files;  // every member but manifest.json and manifest.sig
};

// A model version: 1 to 32 characters of [A-Za-z0-9._-], not starting with '.' (what the node
// protocol carries, pipeline/export.h; a version can name topics and files). kInvalidArgument
// otherwise.
Result<void> check_model_version(std::string_view version);

// The manifest as JSON text, fields in a fixed order, two-space indented, ending in a newline.
std::string manifest_json(const Manifest& manifest);

// Strict parse: kParse for text that is not JSON or not a manifest (unknown, missing or mistyped
// fields, bad digests or names, duplicate files), kUnsupported for a format version other than
// kBundleFormatVersion. Messages name the field at fault.
Result<Manifest> parse_manifest(std::string_view text);

// Reads only "signing_key_id" from text that may not be a valid manifest (to say which key
// signed a bundle whose signature fails); nullopt when absent.
std::optional<std::string> peek_signing_key_id(std::string_view text);

}  // namespace cyclecast::bundle
