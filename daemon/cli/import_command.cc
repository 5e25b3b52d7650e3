// `cyclecast import`: loads per-cycle CSV files (cyclecast's own format or BatteryArchive.org
// cycle summaries) into the database. The work is pipeline::prepare_import(), refuse_bad_rows()
// and write_import(); this file maps flags to options, opens the database only for an import
// that will write (removing it again if it created it and the write fails), draws progress on a
// terminal and prints the summary.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "cyclecast/pipeline/csv_import.h"
#include "cyclecast/storage/database.h"
#include "status_line.h"

namespace cyclecast::cli {

namespace {

struct ImportFlags {
  std::vector<std::string> files;
  std::string format = "auto";
  std::string cell;
  std::string cells_file;
  std::string rig = "default";
  std::string chemistry;
  std::optional<double> rated_capacity_ah;
  std::string policy;
  bool skip_bad = false;
  bool json = false;
  std::size_t batch_rows = 50000;
};

// Import progress as a status line (only used when stderr is a TTY).
class ProgressLine {
 public:
  void update(const pipeline::ImportProgress& progress) {
    const auto now = std::chrono::steady_clock::now();
    if (progress.phase != phase_ || progress.file != file_) {
      phase_ = progress.phase;
      file_ = progress.file;
      phase_start_ = now;
    }
    if (!line_.due(progress.done >= progress.total)) return;
    const double elapsed_s = std::chrono::duration<double>(now - phase_start_).count();
    const double rate = elapsed_s > 0 ? static_cast<double>(progress.done) / elapsed_s : 0.0;
    const double eta_s =
        rate > 0 ? static_cast<double>(progress.total - progress.done) / rate : 0.0;
    char text[512];
    if (progress.phase == pipeline::ImportPhase::kParsing) {
      std::snprintf(text, sizeof text, "reading %s: %.0f%%, %.1f MB/s, ETA %.1f s", file_.c_str(),
                    percent(progress), rate / 1e6, eta_s);
    } else {
      std::snprintf(text, sizeof text, "writing: %zu / %zu rows (%.0f%%), %.0f rows/s, ETA %.1f s",
                    progress.done, progress.total, percent(progress), rate, eta_s);
    }
    line_.draw(text);
  }

  void clear() { line_.clear(); }

 private:
  static double percent(const pipeline::ImportProgress& progress) {
    return progress.total == 0
               ? 100.0
               : 100.0 * static_cast<double>(progress.done) / static_cast<double>(progress.total);
  }

  StatusLine line_;
  pipeline::ImportPhase phase_ = pipeline::ImportPhase::kParsing;
  std::string file_;
  std::chrono::steady_clock::time_point phase_start_ = std::chrono::steady_clock::now();
};

int exit_code_for(const Error& error) {
  switch (error.code) {
    case ErrorCode::kParse:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kConflict:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

void print_summary(const pipeline::ImportSummary& summary, bool json) {
  const double rows_per_s =
      summary.seconds > 0 ? static_cast<double>(summary.rows) / summary.seconds : 0.0;
  if (json) {
    const nlohmann::json out = {
        {"files", summary.files},
        {"rows", summary.rows},
        {"inserted", summary.inserted},
        {"duplicates", summary.duplicates},
        {"conflicts", summary.conflicts},
        {"rejected", summary.rejected},
        {"cells", summary.cells},
        {"seconds", summary.seconds},
        {"rows_per_s", rows_per_s},
        {"parse_seconds", summary.parse_seconds},
        {"write_seconds", summary.write_seconds},
    };
    std::cout << out.dump() << '\n';
    return;
  }
  std::printf(
      "imported %zu file(s): %zu rows, %zu inserted, %zu duplicates, %zu conflicts, "
      "%zu rejected, %zu cells in %.2f s (%.0f rows/s)\n",
      summary.files, summary.rows, summary.inserted, summary.duplicates, summary.conflicts,
      summary.rejected, summary.cells, summary.seconds, rows_per_s);
}

// True when this call created `path`, as an empty file (SQLite takes one for a new database).
// O_EXCL makes that certain: a file that another process made meanwhile is not ours to remove.
// ":memory:" and "file:" URIs name no file.
bool create_database_file(const std::string& path) {
  if (path == ":memory:" || path.rfind("file:", 0) == 0) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

void remove_database_files(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

// Opens the database and writes the prepared import. When the import created the database file
// and then fails, the file (and its -wal, -shm and -journal) is removed again: a failed first
// import leaves no empty or partial database behind. An existing database is never removed; the
// batches written before a failure stay in it, and a re-run counts them as duplicates.
Result<pipeline::ImportSummary> write_to_database(const std::string& path,
                                                  const pipeline::PreparedImport& prepared,
                                                  const pipeline::ImportOptions& options) {
  const bool created = create_database_file(path);
  // An import's source is a file that stays on disk, so a commit lost to power failure costs a
  // re-run (identical rows count as duplicates), not data: NORMAL skips the per-commit fsync.
  // Closing the database checkpoints and syncs it, so a finished import is durable.
  storage::OpenOptions open_options;
  open_options.synchronous_full = false;
  Result<pipeline::ImportSummary> summary = [&]() -> Result<pipeline::ImportSummary> {
    auto db = storage::Database::open(path, open_options);
    if (!db) return db.error();
    return pipeline::write_import(*db, prepared, options);
  }();  // the database is closed here, before its files may be removed
  if (!summary && created) remove_database_files(path);
  return summary;
}

int run_import(const ImportFlags& flags, const GlobalOptions& global) {
  pipeline::ImportOptions options;
  options.format =
      pipeline::csv_format_from_name(flags.format).value_or(pipeline::CsvFormat::kAuto);
  options.cell_id = flags.cell;
  if (!flags.cells_file.empty()) options.cells_file = flags.cells_file;
  options.defaults.rig_id = flags.rig;
  options.defaults.chemistry = flags.chemistry;
  options.defaults.rated_capacity_ah = flags.rated_capacity_ah;
  options.defaults.policy = flags.policy;
  options.skip_bad = flags.skip_bad;
  options.batch_rows = flags.batch_rows;
  auto progress = std::make_shared<ProgressLine>();
  if (isatty(STDERR_FILENO) == 1) {
    options.progress = [progress](const pipeline::ImportProgress& p) { progress->update(p); };
  }
  const auto fail = [&](const Error& error) {
    progress->clear();
    std::cerr << "cyclecast import: " << error.message << '\n';
    return exit_code_for(error);
  };

  // Every file is read and validated before the database is opened: a file that cannot be
  // imported does not create (or migrate) a database.
  const std::vector<std::filesystem::path> paths(flags.files.begin(), flags.files.end());
  auto prepared = pipeline::prepare_import(paths, options);
  if (!prepared) return fail(prepared.error());  // structural: --skip-bad would not help
  if (auto refused = pipeline::refuse_bad_rows(*prepared, flags.skip_bad); !refused) {
    const int code = fail(refused.error());
    if (!flags.skip_bad) {
      std::cerr << "cyclecast import: fix the file, or pass --skip-bad to import the good rows "
                   "and record the bad ones as rejected\n";
    }
    return code;
  }
  auto summary = write_to_database(global.db_path, *prepared, options);
  if (!summary) return fail(summary.error());
  progress->clear();
  print_summary(*summary, flags.json);
  return kExitOk;
}

}  // namespace

void add_import_command(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<ImportFlags>();
  CLI::App* sub = app.add_subcommand(
      "import",
      "Import per-cycle CSV files (cyclecast format or BatteryArchive cycle summaries; see "
      "docs/csv-format.md). Every file is read and validated before anything is written: by "
      "default a file with any bad row imports nothing; a line over 1 MiB (the maximum line "
      "length) refuses the file. A database that a failed import created is removed again.");
  sub->add_option("files", flags->files, "CSV files to import")->required();
  sub->add_option("--format", flags->format, "File format")
      ->check(CLI::IsMember({"auto", "cyclecast", "batteryarchive"}))
      ->capture_default_str();
  sub->add_option("--cell", flags->cell,
                  "Cell id of a BatteryArchive file (default: the file name without "
                  "'_cycle_data.csv'). Cell and rig ids are 1 to 64 of A-Z a-z 0-9 . _ -, not "
                  "starting with '.', as the API and MQTT topics need");
  sub->add_option("--cells", flags->cells_file,
                  "Cells CSV: cell_id, optional rig_id, chemistry, rated_capacity_ah (or "
                  "capacity_ah, as in batteryarchive.org's metadata.csv, whose '/' in cell ids "
                  "reads as '-'), policy; other columns go to the cell's metadata");
  sub->add_option("--rig", flags->rig, "Default rig id of the cells")->capture_default_str();
  sub->add_option("--chemistry", flags->chemistry, "Default chemistry of the cells");
  sub->add_option("--rated-capacity-ah", flags->rated_capacity_ah,
                  "Default rated capacity of the cells in Ah")
      ->check(CLI::PositiveNumber);
  sub->add_option("--policy", flags->policy, "Default charge policy of the cells");
  sub->add_flag("--skip-bad", flags->skip_bad,
                "Import the good rows; record each bad row as rejected (source FILE:LINE). A "
                "file without any good row still fails, and so do header errors");
  sub->add_flag("--json", flags->json, "Print the summary as one JSON object");
  sub->add_option("--batch-rows", flags->batch_rows, "Rows per database transaction")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  sub->callback([flags, &global] { global.exit_code = run_import(*flags, global); });
}

}  // namespace cyclecast::cli
