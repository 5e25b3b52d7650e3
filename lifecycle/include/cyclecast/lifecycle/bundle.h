// Signed firmware bundles (docs/bundles.md): one ustar archive (archive.h) holding manifest.json,
// manifest.sig (Ed25519 over the manifest's bytes) and the files the manifest lists with their
// SHA-256: the exported model, the runtime sources, the Arduino sketch and the training report.
// `cyclecast bundle build|verify|inspect` is a thin shell around this.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cyclecast/lifecycle/archive.h"
#include "cyclecast/lifecycle/manifest.h"
#include "cyclecast/lifecycle/measure.h"
#include "cyclecast/lifecycle/signing.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/pipeline/run_output.h"
#include "cyclecast/result.h"

namespace cyclecast::bundle {

inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kSignatureName = "manifest.sig";

// A file for the bundle: its member name and bytes.
using BundleFile = ArchiveMember;

// The firmware sources compiled into this binary at build time (firmware/include, firmware/src,
// firmware/node and the Arduino sketch firmware/arduino/cyclecast_node, whichever exist), under
// their repository paths, so an installed cyclecast needs no source tree.
std::vector<BundleFile> runtime_files();

// What `bundle build` takes from a training run directory (the output of `cyclecast train`).
struct RunBundleOptions {
  std::string run_dir;
  // The run as run_training described it, when the caller has that in memory (the retrainer,
  // through its training process); empty: read from run_dir's report.json
  // (pipeline::read_run_output).
  std::optional<pipeline::RunOutput> run;
  std::string model_version;
  // A file or directory holding the data the run trained on; when given, the manifest's data
  // snapshot carries its digest (docs/bundles.md, "Data snapshot").
  std::optional<std::string> data_path;
  // A JSON file of measured footprint figures (docs/bundles.md, "Footprint"); without it the
  // manifest carries the pipeline's estimate, labelled as one.
  std::optional<std::string> footprint_path;
  // Measure the footprint on the target with these tools instead (measure.h); excludes
  // footprint_path.
  std::optional<TargetTools> measure_with;
  std::string created_at;  // ISO 8601 UTC; empty: now
  // The run's student as exported for model_version, when the caller has exported it already
  // (the retrainer keeps it in the model folder too); empty: exported from run_dir here.
  std::optional<pipeline::ExportedModel> exported;
};

// The manifest (without files and key id) and the files of a run: model blob, report.json and
// report.html, plus runtime_files(). Errors name the file at fault: kNotFound (a file of the run
// is missing), kParse/kCorrupt (it does not parse), kInvalidArgument (bad model version, the run
// chose no student, the files disagree with each other).
struct BundleContents {
  Manifest manifest;
  std::vector<BundleFile> files;
};
Result<BundleContents> collect_run(const RunBundleOptions& options);

// Fills in the manifest's file list and signing key id, signs it and writes the archive:
// manifest.json, manifest.sig, then the files in the given order. mtime of every member: the
// manifest's creation time. kInvalidArgument for bad or duplicate file names.
Result<std::vector<uint8_t>> build_bundle(BundleContents contents, const SigningKey& key);

// A bundle that passed verify_bundle: its manifest (parsed and as signed) and its files.
struct VerifiedBundle {
  Manifest manifest;
  std::string manifest_text;
  std::vector<BundleFile> files;
};

// Checks, in this order, and refuses with the first failure (kCorrupt unless noted):
//   the archive reads (kParse: truncated, corrupt; kInvalidArgument: path traversal, duplicates;
//   kUnsupported: links and other member types); manifest.json and manifest.sig are present;
//   the signature verifies with `key` ("wrong key" when the manifest names another key id,
//   "bad signature" otherwise); the manifest parses (kUnsupported: "unknown bundle format
//   version"); every listed file is present ("missing file") with its size and SHA-256
//   ("changed file"); no member is unlisted ("extra file").
Result<VerifiedBundle> verify_bundle(std::span<const uint8_t> bytes, const PublicKey& key);

// The manifest of a bundle without checking its signature or files (for `bundle inspect`).
Result<VerifiedBundle> read_bundle_unverified(std::span<const uint8_t> bytes);

}  // namespace cyclecast::bundle
