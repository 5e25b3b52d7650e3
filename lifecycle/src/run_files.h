// What a retraining run writes under STATE (docs/lifecycle.md, "Files under STATE"): the model
// folder and bundle of a registered model, written so that a crash leaves all or nothing, and
// the clean-up of what a failed or interrupted run left. Private to lifecycle/ (retrainer.cc).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/pipeline/export.h"
#include "cyclecast/pipeline/run_output.h"
#include "cyclecast/result.h"

namespace cyclecast::lifecycle {

// Writes `bytes` to path + ".partial", fsyncs it and renames it into place, then fsyncs the
// directory, so a crash leaves either no file or a complete one. kIo on failure.
Result<void> write_durably(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);

// The files a registered model keeps: the exported model (model.bin, model_data.h/.c) and the
// run's files of RunFiles::kKeptWithModel (its student and report), from the run's directory
// into model_dir (via model_dir.partial). Returns the exported model, which the run's bundle
// ships too.
Result<pipeline::ExportedModel> store_model_files(const pipeline::RunOutput& run,
                                                  const std::string& version,
                                                  const std::filesystem::path& model_dir);

// Removes what a run wrote under STATE; the registry never pointed at it.
void remove_run_files(const std::filesystem::path& run_dir, const std::filesystem::path& model_dir,
                      const std::filesystem::path& bundle_path);

// Removes every *.partial entry of `dir` (what a crash mid-write left).
void remove_partials(const std::filesystem::path& dir);

}  // namespace cyclecast::lifecycle
