// Runs the built `cyclecast` as an operator would, through the shell, with its stdout and stderr
// captured in files under a test's directory.
#pragma once

#include <filesystem>
#include <string>

#include "temp_dir.h"

namespace cyclecast::testing {

struct CliRun {
  int exit_code = -1;  // -1 when it did not exit normally
  std::string out;
  std::string err;
};

// `env_prefix` goes before the binary (e.g. "env -u CYCLECAST_API USER=tester ").
CliRun run_cyclecast(const std::filesystem::path& dir, const std::string& args,
                     const std::string& env_prefix = "");
inline CliRun run_cyclecast(const TempDir& dir, const std::string& args) {
  return run_cyclecast(dir.path(), args);
}

}  // namespace cyclecast::testing
