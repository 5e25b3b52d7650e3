// The PostgreSQL backend's connection, errors and ingest path (pg_backend.h). Every statement
// is a parameterised PQexecParams in text format: doubles go out in their shortest round-trip
// form and PostgreSQL 15 prints them back the same way, so a stored value reads back equal.
#include "pg_backend.h"

#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <functional>
#include <set>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "ingest_checks.h"

namespace cyclecast::storage::detail {
namespace {

// SQLSTATE classes (PostgreSQL's appendix A) that mean the values were refused, not the server.
ErrorCode code_of(const char* sqlstate) {
  if (sqlstate == nullptr) return ErrorCode::kIo;  // no answer: the connection is gone
  const std::string_view state(sqlstate);
  if (state.starts_with("22") || state.starts_with("23")) return ErrorCode::kInvalidArgument;
  if (state == "53100") return ErrorCode::kFull;  // disk_full
  if (state.starts_with("XX")) return ErrorCode::kCorrupt;
  return ErrorCode::kIo;
}

std::string text_of(double value) {
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  return std::string(buffer, end);
}

PgParam text(std::string value) {
  return PgParam{std::move(value), false};
}
PgParam number(std::int64_t value) {
  return PgParam{std::to_string(value), false};
}
PgParam number(double value) {
  return PgParam{text_of(value), false};
}
template <typename T>
PgParam optional_number(const std::optional<T>& value) {
  if (!value) return PgParam{};
  return number(*value);
}

// A PostgreSQL array in its text form ("{1,NULL,2.5}"), sent as one parameter: a batch of rows
// goes to the server as one array a column, unnested there into one multi-row statement.
class ArrayLiteral {
 public:
  ArrayLiteral() : text_("{") {}
  void add(std::int64_t value) { element(std::to_string(value)); }
  void add(double value) { element(text_of(value)); }
  template <typename T>
  void add(const std::optional<T>& value) {
    if (value) {
      add(*value);
    } else {
      element("NULL");
    }
  }
  // Text is quoted, with its quotes and backslashes escaped: any bytes but NUL survive.
  void add_text(std::string_view value) {
    std::string quoted = "\"";
    for (const char c : value) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    quoted.push_back('"');
    element(quoted);
  }
  bool empty() const { return count_ == 0; }
  PgParam param() const { return PgParam{text_ + "}", false}; }

 private:
  void element(std::string_view value) {
    if (count_++ > 0) text_.push_back(',');
    text_.append(value);
  }
  std::string text_;
  std::size_t count_ = 0;
};

// The measured fields of cycles as arrays, a column each, in CycleRecord order.
struct MeasurementArrays {
  ArrayLiteral columns[7];
  void add(const CycleRecord& record) {
    columns[0].add(record.discharge_capacity_ah);
    columns[1].add(record.charge_capacity_ah);
    columns[2].add(record.internal_resistance_ohm);
    columns[3].add(record.temperature_min_c);
    columns[4].add(record.temperature_avg_c);
    columns[5].add(record.temperature_max_c);
    columns[6].add(record.charge_time_min);
  }
  void append_to(std::vector<PgParam>& params) const {
    for (const ArrayLiteral& column : columns)
      params.push_back(column.param());
  }
};

// (cell, cycle): the key of a stored cycle.
struct CycleKey {
  std::int64_t cell = 0;
  std::int64_t cycle = 0;
  bool operator==(const CycleKey&) const = default;
};
struct CycleKeyHash {
  std::size_t operator()(const CycleKey& key) const {
    return std::hash<std::int64_t>()(key.cell) * 1000003u ^ std::hash<std::int64_t>()(key.cycle);
  }
};

std::int64_t to_int(const std::optional<std::string>& value) {
  std::int64_t out = 0;
  if (value) std::from_chars(value->data(), value->data() + value->size(), out);
  return out;
}
double to_double(const std::optional<std::string>& value) {
  double out = 0.0;
  if (value) std::from_chars(value->data(), value->data() + value->size(), out);
  return out;
}
std::optional<double> to_optional_double(const std::optional<std::string>& value) {
  if (!value) return std::nullopt;
  return to_double(value);
}
std::optional<std::int64_t> to_optional_int(const std::optional<std::string>& value) {
  if (!value) return std::nullopt;
  return to_int(value);
}
std::string to_string(const std::optional<std::string>& value) {
  return value.value_or(std::string{});
}

std::string from_hex(std::string_view hex) {
  // bytea's hex output: "\x" then two digits a byte.
  if (hex.starts_with("\\x")) hex.remove_prefix(2);
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    unsigned value = 0;
    std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    bytes.push_back(static_cast<char>(value));
  }
  return bytes;
}

// The URL as messages may show it: a password ("user:secret@", "password=") is masked.
std::string without_password(const std::string& url) {
  std::string shown = url;
  const std::size_t scheme = shown.find("://");
  const std::size_t at = shown.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
    const std::size_t colon = shown.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) shown.replace(colon + 1, at - colon - 1, "***");
  }
  const std::size_t password = shown.find("password=");
  if (password != std::string::npos) {
    const std::size_t end = shown.find('&', password);
    shown.replace(password + 9, end == std::string::npos ? std::string::npos : end - password - 9,
                  "***");
  }
  return shown;
}

// Columns of a cell as CellInfo wants them, then its cycle count and first and last cycle.
constexpr const char* kCellSummarySql =
    "SELECT c.cell_id, coalesce(r.rig_id, ''), c.chemistry, c.rated_capacity_ah, "
    "c.charge_policy, c.metadata_json, "
    "(SELECT count(*) FROM cycles y WHERE y.cell = c.id), "
    "coalesce((SELECT min(cycle) FROM cycles y WHERE y.cell = c.id), 0), "
    "coalesce((SELECT max(cycle) FROM cycles y WHERE y.cell = c.id), 0) "
    "FROM cells c LEFT JOIN rigs r ON r.id = c.rig";

CellInfo read_cell(const std::vector<std::optional<std::string>>& row) {
  CellInfo cell;
  cell.cell_id = to_string(row[0]);
  cell.rig_id = to_string(row[1]);
  cell.chemistry = to_string(row[2]);
  cell.rated_capacity_ah = to_double(row[3]);
  cell.charge_policy = to_string(row[4]);
  cell.metadata_json = to_string(row[5]);
  return cell;
}

CellSummary read_cell_summary(const std::vector<std::optional<std::string>>& row) {
  CellSummary summary;
  summary.info = read_cell(row);
  summary.cycles = to_int(row[6]);
  summary.first_cycle = to_int(row[7]);
  summary.last_cycle = to_int(row[8]);
  return summary;
}

void read_measurements(const std::vector<std::optional<std::string>>& row, std::size_t first,
                       CycleRecord& record) {
  record.discharge_capacity_ah = to_double(row[first]);
  record.charge_capacity_ah = to_optional_double(row[first + 1]);
  record.internal_resistance_ohm = to_optional_double(row[first + 2]);
  record.temperature_min_c = to_optional_double(row[first + 3]);
  record.temperature_avg_c = to_optional_double(row[first + 4]);
  record.temperature_max_c = to_optional_double(row[first + 5]);
  record.charge_time_min = to_optional_double(row[first + 6]);
}

constexpr const char* kCycleColumns =
    "y.cycle, y.discharge_capacity_ah, y.charge_capacity_ah, y.internal_resistance_ohm, "
    "y.temperature_min_c, y.temperature_avg_c, y.temperature_max_c, y.charge_time_min, "
    "y.measured_at_ms, y.received_at_ms, s.name";

}  // namespace

Error pg_unsupported(std::string_view what) {
  return Error{ErrorCode::kUnsupported,
               std::string(what) +
                   " is not available on the PostgreSQL storage backend yet (docs/storage.md, "
                   "\"Backends\"); use an SQLite database"};
}

Result<std::unique_ptr<PgBackend>> PgBackend::open(const std::string& url,
                                                   const OpenOptions& options) {
  PGconn* conn = PQconnectdb(url.c_str());
  std::unique_ptr<PgBackend> backend(new PgBackend(conn));
  backend->display_url_ = without_password(url);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    std::string message = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    return make_error(
        options.create_if_missing ? ErrorCode::kIo : ErrorCode::kNotFound,
        "connecting to PostgreSQL database " + backend->display_url_ + ": " + message);
  }
  // Notices and warnings (a server announcing its shutdown) are not printed on stderr: errors
  // reach the caller as Results.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  backend->read_only_ = options.read_only;
  if (auto set = backend->set_up_session(); !set) return set.error();
  Result<int> version = pg_migrate(*backend, backend->display_url_, options.read_only);
  if (!version) return version.error();
  backend->schema_version_ = *version;
  return backend;
}

std::string pg_bytes_from_hex(std::string_view hex) {
  return from_hex(hex);
}

PgBackend::~PgBackend() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<void> PgBackend::set_up_session() {
  // Messages from the server in English whatever its locale; no NOTICE chatter on stderr.
  if (auto set = run("SET client_min_messages = warning", {}, "setting up the session"); !set) {
    return set.error();
  }
  if (read_only_) {
    if (auto set = run("SET default_transaction_read_only = on", {}, "setting read-only"); !set) {
      return set.error();
    }
  }
  return {};
}

bool PgBackend::connected() const {
  return !lost_ && PQstatus(conn_) == CONNECTION_OK;
}

Result<void> PgBackend::reconnect() {
  // The same connection string (URL options such as search_path included); the session's
  // settings again, since a new connection has the server's defaults.
  PQreset(conn_);
  lost_ = false;
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    return make_error(ErrorCode::kIo,
                      "reconnecting to PostgreSQL database " + display_url_ + ": " + message);
  }
  forget_uncommitted();
  return set_up_session();
}

namespace {

// Statements that change nothing when they run twice, so that one whose connection was lost
// (a server restart) is run again on a new one: BEGIN (the transaction has not started), and the
// SELECTs this backend runs outside a transaction, which only read. Anything else may have been
// done before the connection was lost (an autocommit INSERT), and fails to the caller instead.
bool repeatable_alone(std::string_view sql) {
  return sql == "BEGIN" || sql.starts_with("SELECT ");
}

}  // namespace

Result<PgRows> PgBackend::query(std::string_view sql, std::span<const PgParam> params,
                                std::string_view what) {
  // Outside a transaction a connection lost earlier (a server restart) is made again: nothing of
  // the session is lost but its settings, which reconnect() restores. Inside one, the
  // transaction is gone with the connection: the statement fails, the caller's transaction rolls
  // back, and the next one starts on a new connection.
  if (transaction_depth_ == 0 && !connected()) {
    if (auto back = reconnect(); !back) return back.error();
  }
  auto rows = run(sql, params, what);
  if (!rows && transaction_depth_ == 0 && !connected() && repeatable_alone(sql)) {
    if (auto back = reconnect(); !back) return rows.error();
    rows = run(sql, params, what);
  }
  return rows;
}

Result<PgRows> PgBackend::run(std::string_view sql, std::span<const PgParam> params,
                              std::string_view what) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const PgParam& param : params) {
    values.push_back(param.text ? param.text->data() : nullptr);
    lengths.push_back(param.text ? static_cast<int>(param.text->size()) : 0);
    formats.push_back(param.binary ? 1 : 0);
  }
  const std::string statement(sql);
  // Without parameters the simple protocol, which also runs several statements (migrations).
  PGresult* result = params.empty()
                         ? PQexec(conn_, statement.c_str())
                         : PQexecParams(conn_, statement.c_str(), static_cast<int>(params.size()),
                                        nullptr, values.data(), lengths.data(), formats.data(), 0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const ErrorCode code = code_of(state);
    // libpq may keep CONNECTION_OK after the server went away ("server closed the connection
    // unexpectedly" has no SQLSTATE); a shutdown or crash of the server is class 57P, a broken
    // connection class 08. Each means the session is gone.
    const std::string_view sqlstate = state != nullptr ? state : "";
    if (PQstatus(conn_) != CONNECTION_OK || sqlstate.empty() || sqlstate.starts_with("08") ||
        sqlstate.starts_with("57P")) {
      lost_ = true;
    }
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    PQclear(result);
    return make_error(code, std::string(what) + " in " + display_url_ + ": " + message);
  }
  PgRows rows;
  const int tuples = PQntuples(result);
  const int fields = PQnfields(result);
  rows.rows.reserve(static_cast<std::size_t>(tuples));
  for (int r = 0; r < tuples; ++r) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<std::size_t>(fields));
    for (int f = 0; f < fields; ++f) {
      if (PQgetisnull(result, r, f)) {
        row.emplace_back();
      } else {
        row.emplace_back(std::string(PQgetvalue(result, r, f),
                                     static_cast<std::size_t>(PQgetlength(result, r, f))));
      }
    }
    rows.rows.push_back(std::move(row));
  }
  const char* affected = PQcmdTuples(result);
  if (affected != nullptr && *affected != '\0') rows.affected = std::atoll(affected);
  PQclear(result);
  return rows;
}

void PgBackend::forget_uncommitted() {
  // A cell or source inserted by the transaction that rolled back is gone again.
  cell_ids_.clear();
  source_ids_.clear();
}

Result<void> PgBackend::upsert_rig(const RigInfo& rig) {
  const PgParam params[] = {text(rig.rig_id), text(rig.description)};
  auto done = query(
      "INSERT INTO rigs(rig_id, description) VALUES ($1, $2) "
      "ON CONFLICT (rig_id) DO UPDATE SET description = excluded.description",
      params, "upserting rig '" + rig.rig_id + "'");
  if (!done) return done.error();
  return {};
}

Result<void> PgBackend::upsert_cells(std::span<const CellInfo> cells) {
  return in_transaction([&]() -> Result<void> {
    for (const CellInfo& cell : cells) {
      const std::string what = "upserting cell '" + cell.cell_id + "'";
      if (!cell.rig_id.empty()) {
        const PgParam rig[] = {text(cell.rig_id)};
        auto made = query("INSERT INTO rigs(rig_id) VALUES ($1) ON CONFLICT (rig_id) DO NOTHING",
                          rig, what);
        if (!made) return made.error();
      }
      const PgParam params[] = {text(cell.cell_id),       text(cell.rig_id),
                                text(cell.chemistry),     number(cell.rated_capacity_ah),
                                text(cell.charge_policy), text(cell.metadata_json)};
      auto done = query(
          "INSERT INTO cells(cell_id, rig, chemistry, rated_capacity_ah, charge_policy, "
          "metadata_json) VALUES ($1, (SELECT id FROM rigs WHERE rig_id = $2), $3, $4, $5, $6) "
          "ON CONFLICT (cell_id) DO UPDATE SET rig = excluded.rig, chemistry = "
          "excluded.chemistry, rated_capacity_ah = excluded.rated_capacity_ah, "
          "charge_policy = excluded.charge_policy, metadata_json = excluded.metadata_json",
          params, what);
      if (!done) return done.error();
    }
    return {};
  });
}

Result<std::optional<CellInfo>> PgBackend::find_cell(const std::string& cell_id) {
  const PgParam params[] = {text(cell_id)};
  auto rows = query(
      "SELECT c.cell_id, coalesce(r.rig_id, ''), c.chemistry, c.rated_capacity_ah, "
      "c.charge_policy, c.metadata_json FROM cells c LEFT JOIN rigs r ON r.id = c.rig "
      "WHERE c.cell_id = $1",
      params, "looking up cell '" + cell_id + "'");
  if (!rows) return rows.error();
  if (rows->rows.empty()) return std::optional<CellInfo>{};
  return std::optional<CellInfo>{read_cell(rows->rows.front())};
}

Result<CellInfo> PgBackend::move_cell(const std::string& cell_id, const std::string& rig_id) {
  return in_transaction([&]() -> Result<CellInfo> {
    auto found = find_cell(cell_id);
    if (!found) return found.error();
    if (!*found) return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
    CellInfo cell = std::move(**found);
    cell.rig_id = rig_id;
    if (auto done = upsert_cells({&cell, 1}); !done) return done.error();
    return cell;
  });
}

Result<std::int64_t> PgBackend::source_id(const std::string& source) {
  if (auto cached = source_ids_.find(source); cached != source_ids_.end()) return cached->second;
  const PgParam params[] = {text(source)};
  // Another connection may insert the same name concurrently: DO NOTHING, then read it.
  auto rows = query(
      "WITH made AS (INSERT INTO sources(name) VALUES ($1) ON CONFLICT (name) DO NOTHING "
      "RETURNING id) SELECT id FROM made UNION ALL SELECT id FROM sources WHERE name = $1 "
      "LIMIT 1",
      params, "recording the source '" + source + "'");
  if (!rows) return rows.error();
  if (rows->rows.empty()) {
    // Another transaction inserted it while this statement waited: its snapshot predates that
    // commit, a new statement's (READ COMMITTED) does not.
    rows = query("SELECT id FROM sources WHERE name = $1", params,
                 "reading the source '" + source + "'");
    if (!rows) return rows.error();
  }
  if (rows->rows.empty()) {
    return make_error(ErrorCode::kIo, "the source '" + source + "' was not stored");
  }
  const std::int64_t id = to_int(rows->rows.front()[0]);
  source_ids_.emplace(source, id);
  return id;
}

Result<void> PgBackend::cache_cell_ids(std::span<const CycleRecord> records) {
  ArrayLiteral unknown;
  std::unordered_set<std::string_view> asked;
  for (const CycleRecord& record : records) {
    if (cell_ids_.contains(record.cell_id) || !asked.insert(record.cell_id).second) continue;
    unknown.add_text(record.cell_id);
  }
  if (unknown.empty()) return {};
  const PgParam params[] = {unknown.param()};
  auto rows = query("SELECT cell_id, id FROM cells WHERE cell_id = ANY($1::text[])", params,
                    "looking up the cells of a batch");
  if (!rows) return rows.error();
  // Cells not found are not remembered: another connection may register them any time.
  for (const auto& row : rows->rows)
    cell_ids_.emplace(to_string(row[0]), to_int(row[1]));
  return {};
}

Result<void> PgBackend::reject_cycles(std::span<const CycleRecord> records,
                                      std::span<const std::pair<std::size_t, const char*>> which) {
  // Each record kept as JSON so that an operator can read and re-submit it (as on SQLite), in
  // the batch's order (ids ascending, as SQLite's one insert after another gives them).
  ArrayLiteral sources, cell_ids, cycles, measured_at, reasons;
  MeasurementArrays measurements;
  for (const auto& [index, reason] : which) {
    const CycleRecord& record = records[index];
    sources.add_text(record.source);
    cell_ids.add_text(record.cell_id);
    cycles.add(record.cycle);
    measurements.add(record);
    measured_at.add(record.measured_at_ms);
    reasons.add_text(reason);
  }
  std::vector<PgParam> params{sources.param(), cell_ids.param(), cycles.param()};
  measurements.append_to(params);
  params.push_back(measured_at.param());
  params.push_back(reasons.param());
  params.push_back(number(now_ms()));
  auto done = query(
      "INSERT INTO rejected(source, payload, reason, rejected_at_ms) SELECT r.source, "
      "convert_to(json_build_object('cell_id', r.cell_id, 'cycle', r.cycle, "
      "'discharge_capacity_ah', r.d, 'charge_capacity_ah', r.c, 'internal_resistance_ohm', r.ir, "
      "'temperature_min_c', r.tmin, 'temperature_avg_c', r.tavg, 'temperature_max_c', r.tmax, "
      "'charge_time_min', r.ct, 'measured_at_ms', r.m)::text, 'UTF8'), r.reason, $13 "
      "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[], "
      "$6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], "
      "$12::text[]) WITH ORDINALITY AS r(source, cell_id, cycle, d, c, ir, tmin, tavg, tmax, ct, "
      "m, reason, n) ORDER BY r.n",
      params, "recording rejected cycles");
  if (!done) return done.error();
  return {};
}

// A batch in at most four statements whatever its size (the cells it names, its inserts, the
// stored rows its repeats are compared with, its rejections), where one INSERT a record cost a
// round trip each (docs/benchmarks.md, "Storage backends"). The outcome of each record is the
// one SQLite's record-by-record path gives: the first record of a (cell, cycle) is inserted or
// compared with the stored row; a later one in the same batch is compared with what the first
// left stored (itself when it was inserted).
Result<std::vector<CycleOutcome>> PgBackend::write_cycle_rows(
    std::span<const CycleRecord> records) {
  if (auto cached = cache_cell_ids(records); !cached) return cached.error();
  const std::size_t count = records.size();
  std::vector<CycleOutcome> outcomes(count, CycleOutcome::kInserted);
  std::vector<CycleKey> keys(count);
  std::vector<std::size_t> first(count);  // the batch's first record of each one's key
  std::unordered_map<CycleKey, std::size_t, CycleKeyHash> first_of;
  ArrayLiteral cells, cycles, measured_at, received_at, sources;
  MeasurementArrays measurements;
  std::vector<std::size_t> sent;
  const std::int64_t now = now_ms();
  // New sources are inserted in name order, for the same reason as the cycles below.
  std::set<std::string_view> new_sources;
  for (const CycleRecord& record : records) {
    if (!source_ids_.contains(record.source)) new_sources.insert(record.source);
  }
  for (const std::string_view source : new_sources) {
    if (auto id = source_id(std::string(source)); !id) return id.error();
  }
  for (std::size_t i = 0; i < count; ++i) {
    const CycleRecord& record = records[i];
    const auto cell = cell_ids_.find(record.cell_id);
    if (cell == cell_ids_.end()) {
      outcomes[i] = CycleOutcome::kUnknownCell;
      continue;
    }
    keys[i] = CycleKey{cell->second, record.cycle};
    const auto [entry, is_first] = first_of.try_emplace(keys[i], i);
    first[i] = entry->second;
    if (!is_first) continue;
    auto source = source_id(record.source);
    if (!source) return source.error();
    cells.add(cell->second);
    cycles.add(record.cycle);
    measurements.add(record);
    measured_at.add(record.measured_at_ms);
    received_at.add(record.received_at_ms != 0 ? record.received_at_ms : now);
    sources.add(*source);
    sent.push_back(i);
  }

  // The key (cell, cycle) decides: a second insert changes nothing, whichever connection
  // (replica) made the first; RETURNING names the rows this statement stored. Rows go in key
  // order: an insert waits for another transaction's uncommitted row of the same key, and
  // replicas writing overlapping batches in different orders would otherwise wait for each
  // other (a deadlock, which PostgreSQL breaks by failing one of the batches).
  std::unordered_set<CycleKey, CycleKeyHash> inserted;
  if (!sent.empty()) {
    std::vector<PgParam> params{cells.param(), cycles.param()};
    measurements.append_to(params);
    params.push_back(measured_at.param());
    params.push_back(received_at.param());
    params.push_back(sources.param());
    auto rows = query(
        "INSERT INTO cycles(cell, cycle, discharge_capacity_ah, charge_capacity_ah, "
        "internal_resistance_ohm, temperature_min_c, temperature_avg_c, temperature_max_c, "
        "charge_time_min, measured_at_ms, received_at_ms, source) "
        "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], "
        "$5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bigint[], "
        "$11::bigint[], $12::bigint[]) ORDER BY 1, 2 "
        "ON CONFLICT (cell, cycle) DO NOTHING RETURNING cell, cycle",
        params, "inserting cycles");
    if (!rows) return rows.error();
    for (const auto& row : rows->rows)
      inserted.insert(CycleKey{to_int(row[0]), to_int(row[1])});
  }

  // The rows that were there before: what their records are compared with.
  std::unordered_map<CycleKey, CycleRecord, CycleKeyHash> stored;
  ArrayLiteral wanted_cells, wanted_cycles;
  for (const std::size_t i : sent) {
    if (inserted.contains(keys[i])) continue;
    wanted_cells.add(keys[i].cell);
    wanted_cycles.add(keys[i].cycle);
  }
  if (!wanted_cells.empty()) {
    const PgParam params[] = {wanted_cells.param(), wanted_cycles.param()};
    auto rows = query(
        "SELECT y.cell, y.cycle, y.discharge_capacity_ah, y.charge_capacity_ah, "
        "y.internal_resistance_ohm, y.temperature_min_c, y.temperature_avg_c, "
        "y.temperature_max_c, y.charge_time_min FROM cycles y "
        "JOIN unnest($1::bigint[], $2::bigint[]) AS k(cell, cycle) "
        "ON y.cell = k.cell AND y.cycle = k.cycle",
        params, "reading back stored cycles");
    if (!rows) return rows.error();
    for (const auto& row : rows->rows) {
      CycleRecord existing;
      read_measurements(row, 2, existing);
      stored.emplace(CycleKey{to_int(row[0]), to_int(row[1])}, std::move(existing));
    }
  }

  std::vector<std::pair<std::size_t, const char*>> rejections;
  for (std::size_t i = 0; i < count; ++i) {
    if (outcomes[i] == CycleOutcome::kUnknownCell) {
      rejections.emplace_back(i, kReasonUnknownCell);
      continue;
    }
    const bool stored_here = inserted.contains(keys[i]);
    if (stored_here && first[i] == i) continue;  // kInserted
    const CycleRecord* against = nullptr;
    if (stored_here) {
      against = &records[first[i]];
    } else if (const auto found = stored.find(keys[i]); found != stored.end()) {
      // The key is the same by the look-up; same_measurement compares it too.
      found->second.cell_id = records[i].cell_id;
      found->second.cycle = records[i].cycle;
      against = &found->second;
    } else {
      return make_error(ErrorCode::kIo, "a stored cycle vanished");
    }
    if (against->same_measurement(records[i])) {
      outcomes[i] = CycleOutcome::kDuplicate;
    } else {
      outcomes[i] = CycleOutcome::kConflict;
      rejections.emplace_back(i, kReasonConflict);
    }
  }
  if (!rejections.empty()) {
    if (auto rejected = reject_cycles(records, rejections); !rejected) return rejected.error();
  }
  return outcomes;
}

Result<BatchResult> PgBackend::write_cycles(std::span<const CycleRecord> records) {
  if (auto valid = check_cycle_batch(records); !valid) return valid.error();
  BatchResult result;
  auto written = in_transaction([&]() -> Result<void> {
    auto outcomes = write_cycle_rows(records);
    if (!outcomes) return outcomes.error();
    result.outcomes = std::move(*outcomes);
    return {};
  });
  if (!written) return written.error();
  tally(result);
  return result;
}

Result<void> PgBackend::write_rejected(std::span<const RejectedRecord> records) {
  const std::int64_t now = now_ms();
  return in_transaction([&]() -> Result<void> {
    for (const RejectedRecord& record : records) {
      // bytea, sent as binary: the raw bytes exactly, whether or not they are valid UTF-8.
      const PgParam params[] = {
          text(record.source), PgParam{record.payload.substr(0, kMaxRejectedPayloadBytes), true},
          text(record.reason), number(record.rejected_at_ms != 0 ? record.rejected_at_ms : now)};
      auto done = query(
          "INSERT INTO rejected(source, payload, reason, rejected_at_ms) VALUES ($1, $2, $3, $4)",
          params, "recording a rejected record");
      if (!done) return done.error();
    }
    return {};
  });
}

Result<std::optional<RefusedCell>> PgBackend::write_batch_cell(const CellInfo& cell) {
  auto stored = find_cell(cell.cell_id);
  if (!stored) return stored.error();
  if (*stored && !(*stored)->rig_id.empty() && (*stored)->rig_id != cell.rig_id) {
    return std::optional<RefusedCell>{RefusedCell{
        0, cell.cell_id, "cell '" + cell.cell_id + "' belongs to rig '" + (*stored)->rig_id + "'",
        true}};
  }
  if (auto valid = check_cell(cell); !valid) {
    return std::optional<RefusedCell>{RefusedCell{0, cell.cell_id, valid.error().message, false}};
  }
  if (auto saved = query("SAVEPOINT cell", "saving before a cell"); !saved) return saved.error();
  auto done = upsert_cells({&cell, 1});
  const bool refused = !done && done.error().code == ErrorCode::kInvalidArgument;
  // Any other failure is the batch's, which rolls back whole (the savepoint with it).
  if (!done && !refused) return done.error();
  if (refused) {
    // The savepoint undoes the cell's insert; a cached id of it would name nothing.
    cell_ids_.erase(cell.cell_id);
    if (auto back = query("ROLLBACK TO SAVEPOINT cell", "undoing a refused cell"); !back) {
      return back.error();
    }
  }
  if (auto released = query("RELEASE SAVEPOINT cell", "ending a cell's savepoint"); !released) {
    return released.error();
  }
  if (refused) {
    return std::optional<RefusedCell>{RefusedCell{0, cell.cell_id, done.error().message, false}};
  }
  return std::optional<RefusedCell>{};
}

Result<IngestResult> PgBackend::write_batch(const IngestBatch& batch) {
  if (auto valid = check_cycle_batch(batch.cycles); !valid) {
    return Error{valid.error().code, "cycles: " + valid.error().message};
  }
  // The store write_batch_parts expects: this backend, its savepoints through query().
  struct Store {
    PgBackend& pg;
    auto write_batch_cell(const CellInfo& cell) { return pg.write_batch_cell(cell); }
    auto write_rejected(std::span<const RejectedRecord> r) { return pg.write_rejected(r); }
    auto write_cycles(std::span<const CycleRecord> c) { return pg.write_cycles(c); }
    auto write_forecasts(std::span<const ForecastRecord> f) { return pg.write_forecasts(f); }
    Result<void> exec(const char* sql, const char* what) {
      if (auto done = pg.query(sql, what); !done) return done.error();
      return {};
    }
  } store{*this};
  IngestResult result;
  auto written = in_transaction([&] { return detail::write_batch_parts(store, batch, result); });
  if (!written) return written.error();
  return result;
}

Result<std::vector<CycleRecord>> PgBackend::read_cycles(const PgRows& rows,
                                                        const std::string& cell_id) {
  std::vector<CycleRecord> cycles;
  cycles.reserve(rows.rows.size());
  for (const auto& row : rows.rows) {
    CycleRecord record;
    record.cell_id = cell_id;
    record.cycle = to_int(row[0]);
    read_measurements(row, 1, record);
    record.measured_at_ms = to_optional_int(row[8]);
    record.received_at_ms = to_int(row[9]);
    record.source = to_string(row[10]);
    cycles.push_back(std::move(record));
  }
  return cycles;
}

Result<std::vector<CycleRecord>> PgBackend::cycles_of(const std::string& cell_id) {
  const PgParam params[] = {text(cell_id)};
  auto rows = query(std::string("SELECT ") + kCycleColumns +
                        " FROM cycles y JOIN sources s ON s.id = y.source "
                        "WHERE y.cell = (SELECT id FROM cells WHERE cell_id = $1) ORDER BY y.cycle",
                    params, "reading the cycles of cell '" + cell_id + "'");
  if (!rows) return rows.error();
  return read_cycles(*rows, cell_id);
}

Result<std::vector<CycleRecord>> PgBackend::recent_cycles(const std::string& cell_id,
                                                          std::int64_t up_to_cycle,
                                                          std::int64_t limit) {
  const PgParam params[] = {text(cell_id), number(up_to_cycle), number(limit)};
  auto rows = query(std::string("SELECT * FROM (SELECT ") + kCycleColumns +
                        " FROM cycles y JOIN sources s ON s.id = y.source "
                        "WHERE y.cell = (SELECT id FROM cells WHERE cell_id = $1) AND y.cycle <= "
                        "$2 ORDER BY y.cycle DESC LIMIT $3) recent ORDER BY cycle",
                    params, "reading the cycles of cell '" + cell_id + "'");
  if (!rows) return rows.error();
  return read_cycles(*rows, cell_id);
}

Result<std::vector<CellSummary>> PgBackend::cells() {
  auto rows = query(std::string(kCellSummarySql) + " ORDER BY c.cell_id", "listing cells");
  if (!rows) return rows.error();
  std::vector<CellSummary> cells;
  for (const auto& row : rows->rows)
    cells.push_back(read_cell_summary(row));
  return cells;
}

Result<std::optional<CellSummary>> PgBackend::cell_summary(const std::string& cell_id) {
  const PgParam params[] = {text(cell_id)};
  auto rows = query(std::string(kCellSummarySql) + " WHERE c.cell_id = $1", params,
                    "summarizing cell '" + cell_id + "'");
  if (!rows) return rows.error();
  if (rows->rows.empty()) return std::optional<CellSummary>{};
  return std::optional<CellSummary>{read_cell_summary(rows->rows.front())};
}

Result<std::vector<RejectedRecord>> PgBackend::rejected(std::int64_t limit) {
  const PgParam params[] = {number(limit)};
  auto rows = query(
      "SELECT source, encode(payload, 'hex'), reason, rejected_at_ms FROM rejected "
      "ORDER BY id DESC LIMIT $1",
      params, "reading rejected records");
  if (!rows) return rows.error();
  std::vector<RejectedRecord> records;
  for (const auto& row : rows->rows) {
    RejectedRecord record;
    record.source = to_string(row[0]);
    record.payload = from_hex(to_string(row[1]));
    record.reason = to_string(row[2]);
    record.rejected_at_ms = to_int(row[3]);
    records.push_back(std::move(record));
  }
  return records;
}

Result<TableCounts> PgBackend::counts() {
  auto rows = query(
      "SELECT (SELECT count(*) FROM rigs), (SELECT count(*) FROM cells), "
      "(SELECT count(*) FROM cycles), (SELECT count(*) FROM rejected), "
      "(SELECT count(*) FROM forecasts), (SELECT count(*) FROM models), "
      "(SELECT count(*) FROM training_runs)",
      "counting rows");
  if (!rows) return rows.error();
  if (rows->rows.empty()) return make_error(ErrorCode::kIo, "counting rows returned nothing");
  const auto& row = rows->rows.front();
  TableCounts counts;
  std::int64_t* fields[] = {&counts.rigs,         &counts.cells,     &counts.cycles,
                            &counts.rejected,     &counts.forecasts, &counts.models,
                            &counts.training_runs};
  std::size_t column = 0;
  for (std::int64_t* field : fields)
    *field = to_int(row[column++]);
  return counts;
}

}  // namespace cyclecast::storage::detail
