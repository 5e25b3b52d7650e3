#include "cli_run.h"

#include <sys/wait.h>

#include <cstdlib>

namespace cyclecast::testing {

CliRun run_cyclecast(const std::filesystem::path& dir, const std::string& args,
                     const std::string& env_prefix) {
  const auto out = dir / "cli-stdout.txt";
  const auto err = dir / "cli-stderr.txt";
  const std::string command = env_prefix + "'" + CYCLECAST_BINARY_DIR + "/bin/cyclecast' " + args +
                              " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

}  // namespace cyclecast::testing
