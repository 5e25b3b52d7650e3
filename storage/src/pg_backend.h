// The PostgreSQL backend of a Database (docs/storage.md, "Backends"): one libpq connection to a
// server named by a postgresql:// URL, a schema of its own with forward-only migrations, and the
// ingest path (rigs, cells, cycles, rejected records, the ingest batch) and forecasts
// (pg_forecasts.cc) with the same semantics as the SQLite backend. Database's methods forward here
// when the handle was opened on a URL; what is not on PostgreSQL yet answers kUnsupported
// (pg_unsupported).
//
// Private to the storage module: only this file and pg_*.cc include <libpq-fe.h>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

struct pg_conn;

namespace cyclecast::storage::detail {

// The PostgreSQL schema's version this build writes (its own sequence: the SQLite schema's
// kSchemaVersion moves independently). Opening a database whose version is higher is refused.
inline constexpr int kPgSchemaVersion = 2;

// The error for an operation the PostgreSQL backend does not have yet.
Error pg_unsupported(std::string_view what);

// bytea's text output ("\\x" then two hex digits a byte) as the bytes.
std::string pg_bytes_from_hex(std::string_view hex);

// A result set: rows of text values (nullopt: SQL NULL).
struct PgRows {
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::int64_t affected = 0;  // rows an INSERT/UPDATE/DELETE changed
};

// A query parameter in text form (nullopt: NULL); `binary` sends the bytes as they are (bytea).
struct PgParam {
  std::optional<std::string> text;
  bool binary = false;
};

class PgBackend {
 public:
  static Result<std::unique_ptr<PgBackend>> open(const std::string& url,
                                                 const OpenOptions& options);
  ~PgBackend();
  PgBackend(const PgBackend&) = delete;
  PgBackend& operator=(const PgBackend&) = delete;

  int schema_version() const { return schema_version_; }
  // The URL without its password, for messages and path().
  const std::string& display_url() const { return display_url_; }

  Result<void> upsert_rig(const RigInfo& rig);
  Result<void> upsert_cells(std::span<const CellInfo> cells);
  Result<std::optional<CellInfo>> find_cell(const std::string& cell_id);
  Result<CellInfo> move_cell(const std::string& cell_id, const std::string& rig_id);
  Result<BatchResult> write_cycles(std::span<const CycleRecord> records);
  Result<void> write_rejected(std::span<const RejectedRecord> records);
  Result<IngestResult> write_batch(const IngestBatch& batch);
  Result<std::vector<CycleRecord>> cycles_of(const std::string& cell_id);
  Result<std::vector<CycleRecord>> recent_cycles(const std::string& cell_id,
                                                 std::int64_t up_to_cycle, std::int64_t limit);
  Result<std::vector<CellSummary>> cells();
  Result<std::optional<CellSummary>> cell_summary(const std::string& cell_id);
  Result<std::vector<RejectedRecord>> rejected(std::int64_t limit);
  Result<TableCounts> counts();

  // Forecasts (pg_forecasts.cc), with the semantics of Database's methods of the same names.
  Result<ForecastWriteResult> write_forecasts(std::span<const ForecastRecord> forecasts);
  Result<std::vector<ForecastRecord>> forecasts_of(const std::string& cell_id);
  Result<std::vector<ForecastRecord>> recent_forecasts(const std::string& cell_id,
                                                       std::int64_t limit);
  Result<std::size_t> score_forecasts(std::span<const std::string> cell_ids,
                                      std::vector<ScoredForecast>* scored_h);
  Result<std::vector<LiveError>> live_errors();
  Result<std::vector<EdgeNodeSummary>> edge_nodes();
  Result<std::int64_t> last_forecast_cycle(const std::string& cell_id, const std::string& origin);
  Result<std::int64_t> oldest_unforecast_cycle(const std::string& cell_id,
                                               const std::string& origin);

  // Runs one statement with parameters ($1, $2, ...); `what` names it in errors. A connection
  // lost outside a transaction (a server restart) is made again first; a BEGIN or a read that
  // fails because its connection was lost is run once more on a new one (pg_backend.cc).
  Result<PgRows> query(std::string_view sql, std::span<const PgParam> params,
                       std::string_view what);
  Result<PgRows> query(std::string_view sql, std::string_view what) { return query(sql, {}, what); }

  // Runs `body` in a transaction, or in the caller's when one is open. Defined here because
  // pg_backend.cc, pg_forecasts.cc and pg_registry.cc use it.
  template <typename Body>
  auto in_transaction(Body&& body) -> decltype(body());

 private:
  explicit PgBackend(pg_conn* conn) : conn_(conn) {}

  void forget_uncommitted();
  bool connected() const;
  // One statement on the connection as it is.
  Result<PgRows> run(std::string_view sql, std::span<const PgParam> params, std::string_view what);
  Result<void> set_up_session();
  Result<void> reconnect();

  Result<std::int64_t> source_id(const std::string& source);
  Result<void> cache_cell_ids(std::span<const CycleRecord> records);
  Result<std::vector<CycleOutcome>> write_cycle_rows(std::span<const CycleRecord> records);
  Result<void> reject_cycles(std::span<const CycleRecord> records,
                             std::span<const std::pair<std::size_t, const char*>> which);
  Result<std::optional<RefusedCell>> write_batch_cell(const CellInfo& cell);
  Result<std::vector<CycleRecord>> read_cycles(const PgRows& rows, const std::string& cell_id);

  pg_conn* conn_ = nullptr;
  std::string display_url_;
  int schema_version_ = 0;
  int transaction_depth_ = 0;
  bool read_only_ = false;
  bool lost_ = false;  // the last statement lost its connection (run()); reconnect() clears it
  // Committed cells and sources never change id; entries made inside a transaction that rolls
  // back are forgotten (forget_uncommitted).
  std::unordered_map<std::string, std::int64_t> cell_ids_;
  std::unordered_map<std::string, std::int64_t> source_ids_;
};

template <typename Body>
auto PgBackend::in_transaction(Body&& body) -> decltype(body()) {
  if (transaction_depth_ > 0) return body();  // the caller's transaction commits or rolls back
  if (auto begun = query("BEGIN", "starting a transaction"); !begun) return begun.error();
  ++transaction_depth_;
  auto outcome = body();
  --transaction_depth_;
  // A lost connection took its transaction with it: nothing to roll back.
  if (!outcome) {
    if (connected()) (void)query("ROLLBACK", "rolling back");
    forget_uncommitted();
    return outcome;
  }
  if (auto committed = query("COMMIT", "committing a transaction"); !committed) {
    if (connected()) (void)query("ROLLBACK", "rolling back");
    forget_uncommitted();
    return committed.error();
  }
  return outcome;
}

// Applies the PostgreSQL migrations above the database's version (pg_schema.cc).
Result<int> pg_migrate(PgBackend& backend, const std::string& url, bool read_only);

}  // namespace cyclecast::storage::detail
