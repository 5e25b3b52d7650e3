// What a training run leaves in its output directory, described in one place: the names of its
// files, the run it was, and the student it chose with that student's test metrics and estimated
// cost. run_training (train.h) writes the directory and returns this description in memory; the
// retraining worker hands it on to the lifecycle that way (lifecycle/training_worker.h), and only
// a directory found on disk (`cyclecast bundle build RUN`) is described again from its
// report.json, by read_run_output below. docs/pipeline.md lists the files.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "cyclecast/pipeline/metrics.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// The files of a run directory, by name.
struct RunFiles {
  // The chosen student in float (models/model_file.h); its metadata carries the FeatureSpec and
  // the run id and candidate name ("pipeline.run_id", "pipeline.candidate").
  static constexpr const char* kStudent = "student.ccm";
  static constexpr const char* kStudentInt8 = "student.int8";  // the same student as a CCQ8 blob
  static constexpr const char* kTeacher = "teacher.ccm";
  static constexpr const char* kReportJson = "report.json";  // report.h
  static constexpr const char* kReportHtml = "report.html";
  // Every file run_training writes.
  static constexpr std::array<const char*, 5> kAll = {kStudent, kStudentInt8, kTeacher, kReportJson,
                                                      kReportHtml};
  // The ones a registered model keeps beside its export (docs/lifecycle.md, "Files under
  // STATE"): the teacher is only the run's.
  static constexpr std::array<const char*, 4> kKeptWithModel = {kStudentInt8, kStudent, kReportJson,
                                                                kReportHtml};
};

// A finished run directory and its chosen student.
struct RunOutput {
  std::string out_dir;
  std::string run_id;  // UTC start, e.g. "20261130T170000Z"
  std::string protocol;
  std::string data_source;
  std::string chosen;  // candidate name, e.g. "w16-p0.50"
  std::string choice_reason;
  ForecastMetrics chosen_int8;  // on the protocol's test windows
  ForecastMetrics chosen_float;
  int64_t chosen_params = 0;
  // The chosen student's cost on the Cortex-M4 as the pipeline's cost model estimates it
  // (models/cost.h): the Candidate of the Pareto selection (pareto.h).
  int64_t chosen_flash_bytes = 0;
  int64_t chosen_ram_bytes = 0;
  int64_t chosen_cycles = 0;

  std::filesystem::path file(const char* name) const {
    return std::filesystem::path(out_dir) / name;
  }
};

// The description of the run directory `dir` from its report.json (format "cyclecast-report",
// version 1). Errors name the file: kNotFound (missing), kParse (not JSON), kUnsupported
// (another format or version), kInvalidArgument (the run chose no student), kCorrupt (the report
// lacks the chosen student's candidate or int8 test metrics).
Result<RunOutput> read_run_output(const std::filesystem::path& dir);

}  // namespace cyclecast::pipeline
