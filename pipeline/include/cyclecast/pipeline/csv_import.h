// CSV import of per-cycle battery telemetry: cyclecast's own CSV format and BatteryArchive.org
// cycle-summary files, validated row by row and written to the database in batches.
// The formats and every validation rule are documented in docs/csv-format.md.
//
// Two layers: parse_cycles_csv() turns the bytes of one file into validated compact rows and
// needs no database (tests, fuzzing); import_csv_files() reads files, parses them all
// (prepare_import), decides whether their bad rows refuse the import (refuse_bad_rows), and only
// then writes cells and cycles (write_import), so that by default a file with any bad row imports
// nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::pipeline {

enum class CsvFormat {
  kAuto,            // decided from the header row
  kCyclecast,       // cyclecast's own per-cycle CSV (cell_id, cycle, qd_ah, ...)
  kBatteryArchive,  // BatteryArchive.org cycle summary (Cycle_Index, Discharge_Capacity (Ah), ...)
};

// "auto", "cyclecast" or "batteryarchive"; nullopt for anything else.
std::optional<CsvFormat> csv_format_from_name(std::string_view name);
std::string_view csv_format_name(CsvFormat format);

// Values for cells that the cells file does not give (or when there is none).
struct CellDefaults {
  std::string rig_id = "default";
  std::string chemistry;
  std::optional<double> rated_capacity_ah;
  std::string policy;
};

// Cell metadata: the rows of a companion cells CSV (column cell_id required; rig_id, chemistry,
// rated_capacity_ah, policy optional; any other column goes into the metadata JSON) over
// defaults. Empty fields in the file fall back to the defaults.
class CellCatalog {
 public:
  explicit CellCatalog(CellDefaults defaults = {});

  // Parses a cells CSV; `source_name` names it in error messages.
  static Result<CellCatalog> parse(std::string_view text, const std::string& source_name,
                                   CellDefaults defaults = {});
  static Result<CellCatalog> load(const std::filesystem::path& path, CellDefaults defaults = {});

  // The cell as it will be registered; kInvalidArgument naming the cell when no rated capacity
  // is known for it from anywhere. A non-empty `batch` (from the cycles file) is added to the
  // metadata as "batch" unless the cells file gives the cell's batch itself.
  Result<storage::CellInfo> resolve(std::string_view cell_id, std::string_view batch = {}) const;

  std::size_t size() const { return cells_.size(); }

 private:
  struct Entry {
    storage::CellInfo info;  // empty fields: not given, the defaults apply
    std::optional<double> rated_capacity_ah;
    bool has_batch = false;  // metadata_json holds a "batch" member
  };
  CellDefaults defaults_;
  std::map<std::string, Entry, std::less<>> cells_;
};

// One validated row, compact so that a million of them fit comfortably in memory. Missing
// optional values are NaN (measured_at: has_measured_at false).
struct CycleRow {
  std::uint32_t cell = 0;  // index into ParsedCycles::cell_ids
  std::uint32_t line = 0;  // 1-based line of the row in its file
  std::int64_t cycle = 0;
  double qd_ah = 0.0;
  double qc_ah = 0.0;
  double ir_ohm = 0.0;
  double tmin_c = 0.0;
  double tavg_c = 0.0;
  double tmax_c = 0.0;
  double chargetime_min = 0.0;
  std::int64_t measured_at_ms = 0;
  bool has_measured_at = false;
};

// A row refused by validation (or a conflicting repeat of an earlier row of the same file).
struct RowRejection {
  std::uint32_t line = 0;  // 1-based
  std::string raw;         // the row's text without its line ending
  std::string reason;      // "column 'qd_ah': ..." — what was found and what was expected
};

struct ParsedCycles {
  CsvFormat format = CsvFormat::kAuto;
  std::vector<std::string> cell_ids;      // distinct cells, in order of first appearance
  std::vector<std::string> cell_batches;  // parallel to cell_ids: the batch column, or empty
  std::vector<CycleRow> rows;             // valid rows to write, in file order, no repeats
  std::vector<RowRejection> rejected;     // invalid rows, in file order
  std::size_t data_rows = 0;              // rows read (not counting header and blank lines)
  std::size_t duplicate_rows = 0;         // identical repeats of an earlier row: not written
  std::size_t conflicting_rows = 0;       // repeats with other values: in `rejected` too
};

struct ParseProgress {
  std::size_t bytes_done = 0;
  std::size_t bytes_total = 0;
  std::size_t rows_done = 0;
};

struct ParseOptions {
  CsvFormat format = CsvFormat::kAuto;
  // Cell of a BatteryArchive file (one file is one cell); ignored for the cyclecast format.
  std::string cell_id;
  // Rated capacities for the plausibility rules, looked up once per distinct cell.
  const CellCatalog* catalog = nullptr;
  // Called every few tens of thousands of rows. Must not throw.
  std::function<void(const ParseProgress&)> progress;
};

// Parses and validates one file's bytes. Structural problems (empty file, missing or malformed
// header, unknown column, wrong delimiter, unterminated quote, a cell without rated capacity)
// are errors (kParse / kInvalidArgument, message starting "<source_name>:<line>:"); bad rows
// are collected in `rejected` and the caller decides whether they sink the file.
Result<ParsedCycles> parse_cycles_csv(std::string_view text, const std::string& source_name,
                                      const ParseOptions& options);

// Converts a row back to the storage record (source "import:<source_name>").
void cycle_row_to_record(const ParsedCycles& parsed, const CycleRow& row, const std::string& source,
                         storage::CycleRecord& out);

// Cell id of a BatteryArchive file named like "SNL_18650_LFP_25C_0-100_0.5-1C_a_cycle_data.csv":
// the file's stem without a trailing "_cycle_data".
std::string cell_id_from_file_name(const std::filesystem::path& path);

enum class ImportPhase { kParsing, kWriting };

struct ImportProgress {
  ImportPhase phase = ImportPhase::kParsing;
  std::string file;       // the file being parsed (empty while writing)
  std::size_t done = 0;   // bytes parsed of `file`, or rows written of all files
  std::size_t total = 0;  // bytes of `file`, or rows to write
};

struct ImportOptions {
  CsvFormat format = CsvFormat::kAuto;
  std::string cell_id;  // BatteryArchive only, one file only: overrides the file-name-derived id
  CellDefaults defaults;
  std::optional<std::filesystem::path> cells_file;
  // false: any bad row in any file fails the import before anything is written.
  // true: good rows are imported, each bad row is stored as a rejected record.
  bool skip_bad = false;
  std::size_t batch_rows = 50000;                       // rows per write_cycles() transaction
  std::function<void(const ImportProgress&)> progress;  // must not throw
};

// rows == inserted + duplicates + conflicts + rejected.
struct ImportSummary {
  std::size_t files = 0;
  std::size_t rows = 0;        // data rows read
  std::size_t inserted = 0;    // new (cell, cycle) stored
  std::size_t duplicates = 0;  // identical to a stored row or an earlier row of the same file
  std::size_t conflicts = 0;   // differing from a stored row or an earlier row of the same file
  std::size_t rejected = 0;    // refused by validation (with --skip-bad, stored as rejected)
  std::size_t cells = 0;       // cells registered or updated
  double seconds = 0.0;        // wall time of the whole import
  double parse_seconds = 0.0;  // of which reading and validating the files
  double write_seconds = 0.0;  // of which writing cells, cycles and rejected rows
};

// One file of an import, read and validated, not yet written.
struct ParsedFile {
  std::string name;  // the path as given: messages and rejected records name the file by it
  ParsedCycles parsed;
};

// An import read and validated before anything is written, so that a caller opens (or creates)
// the database only for an import that will write to it.
struct PreparedImport {
  CellCatalog catalog;
  std::vector<ParsedFile> files;
  double parse_seconds = 0.0;
};

// Reads the cells file and reads and validates every file. Fails only on what stops an import in
// both modes (a missing file, a header of no known layout, an unterminated quote, a cell without
// rated capacity, a bad cells file); bad rows are left in each file's parsed.rejected.
Result<PreparedImport> prepare_import(std::span<const std::filesystem::path> paths,
                                      const ImportOptions& options);

// Whether bad rows sink a prepared import (kParse, nothing written). Without skip_bad any bad
// row does ("FILE:LINE: column 'C': ...; nothing was imported"). With skip_bad a file none of
// whose rows is good does: every row bad means a wrong file, layout or rated capacity, not the
// odd glitch that skipping is for.
Result<void> refuse_bad_rows(const PreparedImport& prepared, bool skip_bad);

// Writes a prepared import: upserts its cells, then writes the cycles in batches of
// options.batch_rows (one transaction each) and each file's bad rows as rejected records. A
// failure part-way leaves the batches before it stored ("writing rows failed after N rows...").
Result<ImportSummary> write_import(storage::Database& db, const PreparedImport& prepared,
                                   const ImportOptions& options);

// prepare_import(), refuse_bad_rows(options.skip_bad), write_import(): without skip_bad, the
// first bad row of any file fails the whole import (kParse, "FILE:LINE: column 'C': ...") and
// nothing is written.
Result<ImportSummary> import_csv_files(storage::Database& db,
                                       std::span<const std::filesystem::path> paths,
                                       const ImportOptions& options);
Result<ImportSummary> import_csv_file(storage::Database& db, const std::filesystem::path& path,
                                      const ImportOptions& options);

}  // namespace cyclecast::pipeline
