// `cyclecast db ...`: operator commands on the database file: check, backup, cells.
// Each opens an existing database only (never creates one: a typo in --db must not leave an
// empty database behind) and reports failures on stderr with exit code kExitFailure.
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "cyclecast/storage/database.h"
#include "table.h"

namespace cyclecast::cli {
namespace {

using nlohmann::json;

struct DbFlags {
  bool json_output = false;
  std::string backup_destination;
};

Result<storage::Database> open_existing(const GlobalOptions& global) {
  storage::OpenOptions options;
  options.create_if_missing = false;
  return storage::Database::open(global.db_path, options);
}

int fail(const std::string& command, const Error& error) {
  std::cerr << "cyclecast db " << command << ": " << error.message << '\n';
  return kExitFailure;
}

json counts_json(const storage::TableCounts& counts) {
  return json{{"rigs", counts.rigs},
              {"cells", counts.cells},
              {"cycles", counts.cycles},
              {"rejected", counts.rejected},
              {"forecasts", counts.forecasts},
              {"models", counts.models},
              {"training_runs", counts.training_runs}};
}

void print_check(const std::string& path, const storage::CheckReport& report) {
  std::cout << "database:       " << path << '\n'
            << "integrity:      " << (report.integrity_ok ? "ok" : "FAILED") << '\n';
  if (!report.integrity_ok) {
    for (const std::string& message : report.integrity_messages) {
      std::cout << "  " << message << '\n';
    }
  }
  std::cout << "schema version: " << report.schema_version << '\n';
  if (!report.counts_valid) {
    std::cout << "row counts:     unreadable\n";
    return;
  }
  const storage::TableCounts& c = report.counts;
  const std::pair<const char*, std::int64_t> rows[] = {{"rigs", c.rigs},
                                                       {"cells", c.cells},
                                                       {"cycles", c.cycles},
                                                       {"rejected", c.rejected},
                                                       {"forecasts", c.forecasts},
                                                       {"models", c.models},
                                                       {"training_runs", c.training_runs}};
  for (const auto& [table, count] : rows) {
    std::cout << "  " << std::left << std::setw(14) << table << std::right << std::setw(12) << count
              << '\n';
  }
}

int run_check(const DbFlags& flags, const GlobalOptions& global) {
  Result<storage::Database> db = open_existing(global);
  if (!db) return fail("check", db.error());
  Result<storage::CheckReport> report = db->check();
  if (!report) return fail("check", report.error());
  if (flags.json_output) {
    json out{{"database", global.db_path},
             {"integrity_ok", report->integrity_ok},
             {"integrity_messages", report->integrity_messages},
             {"schema_version", report->schema_version},
             {"counts", report->counts_valid ? counts_json(report->counts) : json(nullptr)}};
    std::cout << out.dump(2) << '\n';
  } else {
    print_check(global.db_path, *report);
  }
  if (!report->integrity_ok) {
    std::cerr << "cyclecast db check: integrity check of '" << global.db_path
              << "' failed; restore from a backup\n";
    return kExitFailure;
  }
  return kExitOk;
}

int run_backup(const DbFlags& flags, const GlobalOptions& global) {
  Result<storage::Database> db = open_existing(global);
  if (!db) return fail("backup", db.error());
  if (auto copied = db->backup_to(flags.backup_destination); !copied) {
    return fail("backup", copied.error());
  }
  std::cout << "backed up '" << global.db_path << "' to '" << flags.backup_destination << "'\n";
  return kExitOk;
}

int run_cells(const DbFlags& flags, const GlobalOptions& global) {
  Result<storage::Database> db = open_existing(global);
  if (!db) return fail("cells", db.error());
  Result<std::vector<storage::CellSummary>> cells = db->cells();
  if (!cells) return fail("cells", cells.error());
  if (flags.json_output) {
    json out = json::array();
    for (const storage::CellSummary& cell : *cells) {
      out.push_back({{"cell_id", cell.info.cell_id},
                     {"rig_id", cell.info.rig_id},
                     {"chemistry", cell.info.chemistry},
                     {"rated_capacity_ah", cell.info.rated_capacity_ah},
                     {"charge_policy", cell.info.charge_policy},
                     {"cycles", cell.cycles},
                     {"first_cycle", cell.first_cycle},
                     {"last_cycle", cell.last_cycle}});
    }
    std::cout << out.dump(2) << '\n';
    return kExitOk;
  }
  TableRows rows{{"CELL", "RIG", "CYCLES", "FIRST", "LAST"}};
  for (const storage::CellSummary& cell : *cells) {
    rows.push_back({cell.info.cell_id, cell.info.rig_id.empty() ? "-" : cell.info.rig_id,
                    std::to_string(cell.cycles), std::to_string(cell.first_cycle),
                    std::to_string(cell.last_cycle)});
  }
  print_table(rows);
  return kExitOk;
}

}  // namespace

void add_db_commands(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<DbFlags>();
  CLI::App* db = app.add_subcommand("db", "Inspect and maintain the database (--db PATH)");
  db->require_subcommand(1);

  CLI::App* check =
      db->add_subcommand("check",
                         "Run SQLite's integrity check; print schema version and row counts. "
                         "Exit 1 if the check fails or the database cannot be opened.");
  check->add_flag("--json", flags->json_output, "Machine-readable output");
  check->callback([flags, &global] { global.exit_code = run_check(*flags, global); });

  CLI::App* backup = db->add_subcommand(
      "backup",
      "Copy the database consistently (SQLite online backup), safe while the daemon "
      "writes. Refuses to overwrite FILE.");
  backup->add_option("FILE", flags->backup_destination, "Destination file")->required();
  backup->callback([flags, &global] { global.exit_code = run_backup(*flags, global); });

  CLI::App* cells = db->add_subcommand("cells", "List cells with their cycle counts");
  cells->add_flag("--json", flags->json_output, "Machine-readable output");
  cells->callback([flags, &global] { global.exit_code = run_cells(*flags, global); });
}

}  // namespace cyclecast::cli
