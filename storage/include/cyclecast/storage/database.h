// cyclecast's durable store: one SQLite file (WAL, foreign keys on, busy timeout, cached
// prepared statements) holding rigs, cells, per-cycle telemetry, rejected records, forecasts,
// models and training runs. The schema is versioned and migrated forward at open.
//
// Thread-safety: a Database is used by one thread at a time. Open one per thread that needs
// it; SQLite's WAL lets readers and one writer proceed concurrently across connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::storage {

// The schema version this build writes. Opening a file whose version is higher is refused.
inline constexpr int kSchemaVersion = 5;

// Rejected payloads longer than this are truncated when written, so that one hostile or broken
// message cannot bloat the database.
inline constexpr std::size_t kMaxRejectedPayloadBytes = 64 * 1024;

struct OpenOptions {
  bool create_if_missing = true;
  bool read_only = false;
  int busy_timeout_ms = 5000;
  // FULL makes every committed batch survive power loss (needed before acknowledging records
  // to a rig); NORMAL is consistent after a crash but may lose the last commits on power loss.
  bool synchronous_full = true;
  // The file never grows past this many bytes (PRAGMA max_page_count); 0: no limit. A write
  // that would need more fails with kFull, as on a full disk.
  std::int64_t max_size_bytes = 0;
  // The SQLite VFS to open the file with (registered by the caller); empty: the default. Tests
  // use it to inject I/O errors.
  std::string vfs;
};

struct RigInfo {
  std::string rig_id;
  std::string description;
};

struct CellInfo {
  std::string cell_id;  // stable external name, e.g. "b2c7"
  std::string rig_id;   // created on demand if unknown
  std::string chemistry;
  double rated_capacity_ah = 0.0;
  std::string charge_policy;
  std::string metadata_json = "{}";  // free-form JSON object
};

// One charge/discharge cycle of one cell, as a rig reports it. Optional fields are those a rig
// may not measure. Timestamps are Unix epoch milliseconds.
struct CycleRecord {
  std::string cell_id;
  std::int64_t cycle = 0;  // 1-based cycle number
  double discharge_capacity_ah = 0.0;
  std::optional<double> charge_capacity_ah;
  std::optional<double> internal_resistance_ohm;
  std::optional<double> temperature_min_c;
  std::optional<double> temperature_avg_c;
  std::optional<double> temperature_max_c;
  std::optional<double> charge_time_min;
  std::optional<std::int64_t> measured_at_ms;
  std::int64_t received_at_ms = 0;  // 0: set to the time of the write
  std::string source;               // where it came from: "import:FILE", "mqtt:TOPIC", ...

  // Same measurement (all measured fields equal; timestamps and source ignored).
  bool same_measurement(const CycleRecord& other) const;
};

struct RejectedRecord {
  std::string source;               // where it came from (file:line, topic, ...)
  std::string payload;              // the raw bytes as received, truncated by the writer if huge
  std::string reason;               // why it was refused
  std::int64_t rejected_at_ms = 0;  // 0: time of the write
};

// A forecast of a cell's SOH made at `at_cycle` (the last input cycle), by the model
// `model_version`. soh[j] is the forecast SOH at at_cycle + j + 1; NaN where the forecaster did
// not say (an edge node reports only +10 and +H). origin: "host", or "edge:<node>" for a
// forecast an edge node computed (docs/storage.md).
struct ForecastRecord {
  std::string cell_id;
  std::int64_t at_cycle = 0;
  std::string model_version;
  std::string origin;
  std::vector<float> soh;
  std::int64_t created_at_ms = 0;  // 0: time of the write
  // Actual SOH minus the forecast at at_cycle + 10 and at_cycle + H, set by score_forecasts once
  // those cycles are stored; NaN until then (ignored by write_forecasts).
  double error_10 = std::numeric_limits<double>::quiet_NaN();
  double error_h = std::numeric_limits<double>::quiet_NaN();
  // The prediction interval of each step (docs/pipeline.md, "Prediction intervals"): both empty
  // (no interval: a model without an interval table, or a forecast stored before intervals), or
  // both with soh.size() values, lower[j] <= soh[j] <= upper[j] where soh[j] is not NaN.
  std::vector<float> lower{}, upper{};
};

// Live error of one forecaster (model version and origin) over its scored forecasts.
struct LiveError {
  std::string model_version;
  std::string origin;
  std::int64_t scored_10 = 0;  // forecasts scored at +10
  double mae_10 = 0.0;         // mean |error_10| over them (NaN when none)
  std::int64_t scored_h = 0;   // forecasts scored at +H
  double mae_h = 0.0;          // mean |error_h| over them (NaN when none)
};

// A forecast's +H error as score_forecasts set it.
struct ScoredForecast {
  std::string cell_id;
  std::int64_t at_cycle = 0;
  std::int64_t target_cycle = 0;  // at_cycle + H: the cycle whose arrival scored it
  std::string model_version;
  std::string origin;
  double error_h = 0.0;  // actual SOH minus the forecast at at_cycle + H
  // The SOH of at_cycle, the forecast's last input (the drift monitor's SOH band); NaN when that
  // cycle is not stored.
  double origin_soh = std::numeric_limits<double>::quiet_NaN();
};

// One edge node as its stored forecasts show it (origin "edge:<node>").
struct EdgeNodeSummary {
  std::string node;
  std::string model_version;      // of its newest forecast
  std::int64_t last_seen_ms = 0;  // created_at_ms of its newest forecast
  std::int64_t forecasts = 0;     // stored
  std::int64_t cells = 0;         // distinct cells it forecast
};

struct ForecastWriteResult {
  std::size_t stored = 0;
  std::size_t duplicates = 0;     // same cell, at_cycle, model_version and origin already stored
  std::size_t unknown_cells = 0;  // not written
};

// What happened to each record of a batch, in input order.
enum class CycleOutcome {
  kInserted,     // new (cell, cycle): stored
  kDuplicate,    // identical to the stored record: nothing changed
  kConflict,     // differs from the stored record: first one kept, this one rejected
                 // with reason "conflicting duplicate"
  kUnknownCell,  // the cell is not registered: rejected with reason "unknown cell"
};

struct BatchResult {
  std::vector<CycleOutcome> outcomes;
  std::size_t inserted = 0;
  std::size_t duplicates = 0;
  std::size_t conflicts = 0;
  std::size_t unknown_cells = 0;
};

// One batch of the daemon's writer: everything that arrived since its last commit.
struct IngestBatch {
  std::span<const CellInfo> cells;
  std::span<const RejectedRecord> rejected;
  std::span<const CycleRecord> cycles;
  std::span<const ForecastRecord> forecasts;
};

// A cell of an ingest batch that was not written, and why (write_batch).
struct RefusedCell {
  std::size_t index = 0;  // in IngestBatch::cells
  std::string cell_id;
  std::string reason;
  bool owned_elsewhere = false;  // the cell is registered to another rig
};

struct IngestResult {
  // The batch's cells that were not written; every other cell of the batch is stored.
  std::vector<RefusedCell> refused_cells;
  BatchResult cycles;
  ForecastWriteResult forecasts;
  // Why the batch's forecasts were not stored; the rest of the batch was (see write_batch).
  std::optional<Error> forecast_error;
};

struct TableCounts {
  std::int64_t rigs = 0, cells = 0, cycles = 0, rejected = 0, forecasts = 0, models = 0,
               training_runs = 0;
};

struct CheckReport {
  bool integrity_ok = false;
  // "ok", or SQLite's list of problems (also dangling foreign keys and read errors on
  // damaged pages).
  std::vector<std::string> integrity_messages;
  int schema_version = 0;
  TableCounts counts;
  bool counts_valid = false;  // false when damage kept the counts from being read
};

struct CellSummary {
  CellInfo info;
  std::int64_t cycles = 0;
  std::int64_t first_cycle = 0;
  std::int64_t last_cycle = 0;
};

// Every connection caps the WAL file at this size whenever the WAL restarts (PRAGMA
// journal_size_limit): a WAL grown behind a long reader shrinks back once the reader is gone
// (docs/storage.md, "The WAL and its bound").
inline constexpr std::int64_t kWalSizeLimitBytes = 4 * 1024 * 1024;

enum class CheckpointMode { kPassive, kTruncate };

struct CheckpointStats {
  std::int64_t wal_frames = 0;  // frames in the WAL after the checkpoint
  std::int64_t backfilled = 0;  // of those, copied into the database
  bool truncated = false;       // the WAL file was emptied
  // Frames some reader still needs were left in the WAL: the checkpoint could not finish.
  bool blocked() const { return backfilled < wal_frames; }
};

// True for a location that names a PostgreSQL database ("postgresql://…" or "postgres://…",
// libpq's URL syntax); anything else is an SQLite file path.
bool is_postgresql_url(std::string_view location);

class Database {
 public:
  // Which engine a handle works on (docs/storage.md, "Backends").
  enum class Backend { kSqlite, kPostgresql };

  // Opens (creating if allowed) and migrates the file to kSchemaVersion. Refuses a file
  // written by a newer schema (kUnsupported) or one that is not a cyclecast database.
  static Result<Database> open(const std::filesystem::path& path, const OpenOptions& options = {});

  // Opens `location`: a postgresql:// URL on the PostgreSQL backend (its schema migrated to
  // detail::kPgSchemaVersion, the same refusals of a newer schema and of a foreign database),
  // anything else as open(path) does. On PostgreSQL only the ingest path (rigs, cells, cycles,
  // rejected records, write_batch without forecasts) and its readers work so far; every other
  // method answers kUnsupported saying so. OpenOptions' SQLite-only settings (max_size_bytes,
  // vfs) are refused there; synchronous_full and busy_timeout_ms are the server's business.
  static Result<Database> open_url(const std::string& location, const OpenOptions& options = {});

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

  Backend backend() const;
  // The schema version: SQLite's (kSchemaVersion) or PostgreSQL's own sequence.
  int schema_version() const;
  // The SQLite file, or the PostgreSQL URL with its password masked.
  const std::filesystem::path& path() const;

  Result<void> upsert_rig(const RigInfo& rig);
  // Inserts or updates a cell's metadata (creating its rig if needed).
  Result<void> upsert_cell(const CellInfo& cell);
  // The same for many cells in one transaction: all are stored or none.
  Result<void> upsert_cells(std::span<const CellInfo> cells);
  Result<std::optional<CellInfo>> find_cell(const std::string& cell_id);
  // Registers the cell to `rig_id` (created if needed), keeping its metadata and cycles: how an
  // operator moves a cell to another rig. The cell as it now is; kNotFound for an unknown cell,
  // kInvalidArgument for an empty rig id.
  Result<CellInfo> move_cell(const std::string& cell_id, const std::string& rig_id);

  // Writes a batch of cycles in one transaction: either the whole batch (with its conflicts
  // and unknown cells recorded as rejected) is durable, or nothing is (the error is returned).
  // Structural preconditions are checked before anything is written: every record needs
  // cycle >= 1 and finite values (SQLite would store NaN as NULL); a batch breaking them is
  // refused whole with kInvalidArgument naming the record. Plausibility checks (capacity
  // ranges, fill values) are the caller's, which records its refusals with write_rejected.
  Result<BatchResult> write_cycles(std::span<const CycleRecord> records);
  // Writes rejected records in one transaction. Payloads over kMaxRejectedPayloadBytes are
  // truncated.
  Result<void> write_rejected(std::span<const RejectedRecord> records);

  // Writes a whole ingest batch in one transaction, so one commit (one fsync) makes all of it
  // durable: cells, then rejected records, then cycles (a cycle of a cell announced in the same
  // batch is stored), each as the calls above would. Either all of these are durable or none
  // is, and the error says which part failed. Two exceptions cost only their cell, which is
  // listed in refused_cells: a cell registered to another rig keeps its rig and metadata (a cell
  // belongs to the rig that registered it; move_cell changes that), and a cell SQLite refuses
  // (kInvalidArgument: e.g. metadata its json_valid rejects) is left out under a savepoint.
  // Cycles of a refused cell that is not registered are kUnknownCell. Forecasts are written
  // last under a savepoint:
  // forecasts refused (invalid, or a write failing) cost only themselves (forecast_error),
  // not the records, which a rig is waiting to hear about.
  Result<IngestResult> write_batch(const IngestBatch& batch);

  // Writes forecasts in one transaction; a forecast already stored (same cell, at_cycle,
  // model_version and origin) is skipped, so a re-delivered message stores nothing twice.
  // kInvalidArgument for an empty model version or origin, or at_cycle < 1.
  Result<ForecastWriteResult> write_forecasts(std::span<const ForecastRecord> forecasts);
  // The cell's forecasts by at_cycle, then origin; empty for an unknown cell.
  Result<std::vector<ForecastRecord>> forecasts_of(const std::string& cell_id);
  // The cell's latest `limit` forecasts, newest (highest at_cycle) first; empty for an unknown
  // cell.
  Result<std::vector<ForecastRecord>> recent_forecasts(const std::string& cell_id,
                                                       std::int64_t limit);
  // Scores the forecasts of these cells whose target cycles (at_cycle + 10, at_cycle + H) are now
  // stored: error = discharge capacity / rated capacity - forecast, all in one transaction. A
  // target cycle that never arrives (a gap, the cell's end) leaves that error unset. Returns how
  // many errors were set. With `scored_h`, the forecasts whose +H error this call set are
  // appended to it (after the commit), each cell's in at_cycle order: the stream a drift monitor
  // watches.
  Result<std::size_t> score_forecasts(std::span<const std::string> cell_ids,
                                      std::vector<ScoredForecast>* scored_h = nullptr);
  // Live error per model version and origin, ordered by both.
  Result<std::vector<LiveError>> live_errors();
  // Every node that has an edge forecast stored, by node id (one pass over the forecasts, as
  // live_errors()).
  Result<std::vector<EdgeNodeSummary>> edge_nodes();
  // The highest at_cycle of the cell's forecasts from `origin`; 0 when there are none.
  Result<std::int64_t> last_forecast_cycle(const std::string& cell_id, const std::string& origin);
  // The oldest stored cycle after the cell's first forecast from `origin` that has no forecast
  // from it (a cycle stored late, or before a crash); 0 when there is none.
  Result<std::int64_t> oldest_unforecast_cycle(const std::string& cell_id,
                                               const std::string& origin);

  // The cell's cycles in increasing cycle order; empty for an unknown cell.
  Result<std::vector<CycleRecord>> cycles_of(const std::string& cell_id);
  // The cell's last `limit` cycles numbered at most `up_to_cycle`, in increasing cycle order.
  Result<std::vector<CycleRecord>> recent_cycles(const std::string& cell_id,
                                                 std::int64_t up_to_cycle, std::int64_t limit);
  // Every registered cell with its cycle count, ordered by cell_id.
  Result<std::vector<CellSummary>> cells();
  // One cell with its cycle count; nullopt for an unknown cell.
  Result<std::optional<CellSummary>> cell_summary(const std::string& cell_id);
  // The latest `limit` rejected records, newest first.
  Result<std::vector<RejectedRecord>> rejected(std::int64_t limit = 100);
  Result<TableCounts> counts();

  // PRAGMA integrity_check and foreign_key_check, plus schema version and row counts. Damage
  // found is reported in the CheckReport (integrity_ok false), not as an error; an error means
  // the check itself could not run.
  Result<CheckReport> check();
  // PRAGMA quick_check: the cheaper check (no index contents) for every start of a process
  // that writes. The problems found; empty when the file is sound.
  Result<std::vector<std::string>> quick_check();
  // Changes the size limit of OpenOptions::max_size_bytes for this connection (0: none). A
  // limit below the file's current size keeps it at its current size.
  Result<void> set_max_size(std::int64_t bytes);
  // Consistent copy of the whole database to `destination` with SQLite's online backup API,
  // safe while other connections write. Refuses to overwrite an existing file.
  Result<void> backup_to(const std::filesystem::path& destination);
  // Copies what it can of the WAL into the database without waiting for writers or readers
  // (a PASSIVE checkpoint); busy is not an error. Lets a process checkpoint from a connection of
  // its own instead of inside some writer's commit. With kTruncate, and only once a passive
  // pass has copied the whole WAL (no reader still needs it), it then also empties the WAL file
  // (a TRUNCATE checkpoint, not waiting: a reader or writer in the way makes it a no-op).
  Result<CheckpointStats> checkpoint(CheckpointMode mode = CheckpointMode::kPassive);
  // The WAL file's size in bytes (0 when there is none).
  std::int64_t wal_bytes() const;

  // Opaque state, defined privately in storage/src (public only so that the module's own
  // helpers can name it). impl() is for the module's other repositories (the registry), which
  // work on this connection; outside storage/ Impl is incomplete and impl() of no use.
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Milliseconds since the Unix epoch, from the system clock.
std::int64_t now_ms();

}  // namespace cyclecast::storage
