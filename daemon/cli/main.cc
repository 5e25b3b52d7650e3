// Entry point of `cyclecast`, the operator CLI. Exceptions stop here, at the process edge.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

namespace {

std::string default_db_path() {
  if (const char* env = std::getenv("CYCLECAST_DB"); env != nullptr && *env != '\0') return env;
  return "/var/lib/cyclecast/cyclecast.db";
}

// --db is also accepted after the commands that read the database (`cyclecast db cells --db F`),
// where operators put it as often as before them.
void accept_db_after(CLI::App& app, cyclecast::cli::GlobalOptions& global) {
  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    if (command->get_name() != "db" && command->get_name() != "import") continue;
    std::vector<CLI::App*> targets = command->get_subcommands([](CLI::App*) { return true; });
    if (targets.empty()) targets.push_back(command);
    for (CLI::App* target : targets)
      target->add_option("--db", global.db_path, "SQLite database file (env CYCLECAST_DB)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cyclecast::cli;
  CLI::App app{
      "cyclecast: operator CLI of the cyclecast battery-health service.\n"
      "Exit codes: 0 ok, 1 operation failed, 2 bad command line, 3 input data refused (the API "
      "commands status, cells, forecast, models, runs, retrain, cell: 3 when cyclecastd cannot be "
      "reached)."};
  app.require_subcommand(1);
  GlobalOptions global;
  global.db_path = default_db_path();
  app.add_option("--db", global.db_path, "SQLite database file (env CYCLECAST_DB)")
      ->capture_default_str();
  add_db_commands(app, global);
  add_import_command(app, global);
  add_simulate_command(app, global);
  add_rig_command(app, global);
  add_export_command(app, global);
  add_train_commands(app, global);
  add_bundle_commands(app, global);
  add_api_commands(app, global);
  accept_db_after(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (const std::string message = explain_parse_error(app, e); !message.empty()) {
      std::cerr << message << '\n';
      return kExitUsage;
    }
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "cyclecast: " << e.what() << '\n';
    return kExitFailure;
  }
  return global.exit_code;
}
