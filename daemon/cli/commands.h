// The `cyclecast` operator CLI: each command group lives in its own <name>_command.cc and
// registers its subcommands here. A command's callback stores the process exit code.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace cyclecast::cli {

// Exit codes, documented in `cyclecast --help`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // the operation failed (I/O, corrupt database, ...)
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitBadInput = 3;  // input data refused (e.g. an import with bad rows)

struct GlobalOptions {
  // Database file; default from $CYCLECAST_DB, else /var/lib/cyclecast/cyclecast.db.
  std::string db_path;
  int exit_code = kExitOk;
};

void add_db_commands(CLI::App& app, GlobalOptions& global);
void add_import_command(CLI::App& app, GlobalOptions& global);
void add_simulate_command(CLI::App& app, GlobalOptions& global);
void add_rig_command(CLI::App& app, GlobalOptions& global);
void add_export_command(CLI::App& app, GlobalOptions& global);
void add_train_commands(CLI::App& app, GlobalOptions& global);
void add_bundle_commands(CLI::App& app, GlobalOptions& global);
void add_api_commands(CLI::App& app, GlobalOptions& global);  // status, cells, models, ... (API)

// A message for a command line that `app` refused, naming the command and the fix (a missing or
// unknown command, an option in the wrong place); empty when CLI11's own says it well enough.
std::string explain_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace cyclecast::cli
