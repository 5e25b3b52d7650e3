// The rig's outbox file. Schema (version 1, in user_version):
//   cells(cell_id PK, rig_id, meta)                       meta: protocol v1 metadata JSON
//   outbox(cell_id, cycle, rig_id, payload, state, reason) PK (cell_id, cycle)
// state is 'pending' until the daemon answers, then the answer's outcome name.
#include <sqlite3.h>

#include <utility>

#include "cyclecast/rig/rig.h"

namespace cyclecast::rig {
namespace {

constexpr int kOutboxSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cells(
  cell_id TEXT PRIMARY KEY,
  rig_id  TEXT NOT NULL,
  meta    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox(
  cell_id TEXT NOT NULL,
  cycle   INTEGER NOT NULL,
  rig_id  TEXT NOT NULL,
  payload TEXT NOT NULL,
  state   TEXT NOT NULL DEFAULT 'pending'
          CHECK (state IN ('pending', 'stored', 'duplicate', 'conflict', 'rejected')),
  reason  TEXT,
  PRIMARY KEY (cell_id, cycle)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state) WHERE state = 'pending';
PRAGMA user_version = 1;
)sql";

Error db_error(sqlite3* db, std::string_view what) {
  return make_error(ErrorCode::kIo, "outbox: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

// Finalizes on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

Result<void> exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return make_error(ErrorCode::kIo, "outbox: " + text);
  }
  return {};
}

Result<void> prepare(sqlite3* db, const char* sql, Stmt& stmt) {
  if (sqlite3_prepare_v2(db, sql, -1, &stmt.s, nullptr) != SQLITE_OK) return db_error(db, sql);
  return {};
}

void bind_text(sqlite3_stmt* s, int index, const std::string& text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* s, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, index));
  return text != nullptr ? std::string(text) : std::string();
}

// Runs `body` inside BEGIN IMMEDIATE / COMMIT, rolling back when it fails.
template <typename Body>
Result<void> in_transaction(sqlite3* db, Body&& body) {
  if (auto begun = exec(db, "BEGIN IMMEDIATE"); !begun) return begun;
  Result<void> done = body();
  if (!done) {
    (void)exec(db, "ROLLBACK");
    return done;
  }
  return exec(db, "COMMIT");
}

}  // namespace

struct Outbox::Impl {
  sqlite3* db = nullptr;
  ~Impl() { sqlite3_close_v2(db); }
};

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Outbox::Outbox(Outbox&&) noexcept = default;
Outbox& Outbox::operator=(Outbox&&) noexcept = default;
Outbox::~Outbox() = default;

Result<Outbox> Outbox::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return make_error(ErrorCode::kIo, "outbox '" + path.string() + "': " +
                                          (impl->db ? sqlite3_errmsg(impl->db) : "cannot open"));
  }
  sqlite3_busy_timeout(impl->db, 5000);
  // NORMAL (WAL) for answers: a crash never corrupts the file; power loss may forget the last
  // answers recorded, and then the rig re-sends those records and the daemon answers
  // "duplicate". FULL would buy nothing but an fsync per settle on the sender's path. Adding
  // records switches to FULL (see add()): the outbox may be a record's only copy.
  if (auto ok = exec(impl->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !ok) {
    return ok.error();
  }
  Stmt version;
  if (auto ok = prepare(impl->db, "PRAGMA user_version", version); !ok) return ok.error();
  const int found = sqlite3_step(version.s) == SQLITE_ROW ? sqlite3_column_int(version.s, 0) : 0;
  if (found > kOutboxSchemaVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "outbox '" + path.string() + "' has schema version " + std::to_string(found) +
                          ", newer than this build's " + std::to_string(kOutboxSchemaVersion));
  }
  if (auto ok = exec(impl->db, kSchema); !ok) return ok.error();
  return Outbox(std::move(impl));
}

Result<std::size_t> Outbox::add(std::span<const storage::CellInfo> cells,
                                std::span<const storage::CycleRecord> records) {
  sqlite3* db = impl_->db;
  std::size_t added = 0;
  if (auto full = exec(db, "PRAGMA synchronous=FULL"); !full) return full.error();
  auto done = in_transaction(db, [&]() -> Result<void> {
    Stmt cell;
    if (auto ok =
            prepare(db, "INSERT OR REPLACE INTO cells(cell_id, rig_id, meta) VALUES(?,?,?)", cell);
        !ok) {
      return ok;
    }
    for (const auto& c : cells) {
      bind_text(cell.s, 1, c.cell_id);
      bind_text(cell.s, 2, c.rig_id);
      bind_text(cell.s, 3, protocol::serialize_cell_meta(c));
      if (sqlite3_step(cell.s) != SQLITE_DONE) return db_error(db, "add cell");
      sqlite3_reset(cell.s);
    }
    Stmt lookup, insert;
    if (auto ok = prepare(db, "SELECT rig_id FROM cells WHERE cell_id = ?", lookup); !ok) return ok;
    if (auto ok = prepare(db,
                          "INSERT OR IGNORE INTO outbox(cell_id, cycle, rig_id, payload) "
                          "VALUES(?,?,?,?)",
                          insert);
        !ok) {
      return ok;
    }
    std::string last_cell, last_rig;
    for (const auto& r : records) {
      if (r.cell_id != last_cell) {
        bind_text(lookup.s, 1, r.cell_id);
        if (sqlite3_step(lookup.s) != SQLITE_ROW) {
          sqlite3_reset(lookup.s);
          return make_error(ErrorCode::kInvalidArgument,
                            "outbox: cell '" + r.cell_id + "' has no metadata");
        }
        last_rig = column_text(lookup.s, 0);
        last_cell = r.cell_id;
        sqlite3_reset(lookup.s);
      }
      bind_text(insert.s, 1, r.cell_id);
      sqlite3_bind_int64(insert.s, 2, r.cycle);
      bind_text(insert.s, 3, last_rig);
      bind_text(insert.s, 4, protocol::serialize_cycle(r));
      if (sqlite3_step(insert.s) != SQLITE_DONE) return db_error(db, "add record");
      added += static_cast<std::size_t>(sqlite3_changes(db));
      sqlite3_reset(insert.s);
    }
    return {};
  });
  if (auto normal = exec(db, "PRAGMA synchronous=NORMAL"); !normal) return normal.error();
  if (!done) return done.error();
  return added;
}

Result<std::vector<storage::CellInfo>> Outbox::cells() {
  Stmt stmt;
  if (auto ok =
          prepare(impl_->db, "SELECT cell_id, rig_id, meta FROM cells ORDER BY cell_id", stmt);
      !ok) {
    return ok.error();
  }
  std::vector<storage::CellInfo> out;
  while (sqlite3_step(stmt.s) == SQLITE_ROW) {
    const std::string cell_id = column_text(stmt.s, 0);
    const std::string rig_id = column_text(stmt.s, 1);
    auto info = protocol::parse_cell_meta(
        column_text(stmt.s, 2), protocol::Topic{protocol::TopicKind::kCellMeta, rig_id, cell_id});
    if (!info)
      return make_error(ErrorCode::kCorrupt,
                        "outbox: cell " + cell_id + ": " + info.error().message);
    out.push_back(std::move(*info));
  }
  return out;
}

Result<std::vector<OutboxRecord>> Outbox::pending() {
  Stmt stmt;
  if (auto ok = prepare(impl_->db,
                        "SELECT rig_id, cell_id, cycle, payload FROM outbox "
                        "WHERE state = 'pending' ORDER BY cell_id, cycle",
                        stmt);
      !ok) {
    return ok.error();
  }
  std::vector<OutboxRecord> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt.s)) == SQLITE_ROW) {
    out.push_back({column_text(stmt.s, 0), column_text(stmt.s, 1), sqlite3_column_int64(stmt.s, 2),
                   column_text(stmt.s, 3)});
  }
  if (rc != SQLITE_DONE) return db_error(impl_->db, "read pending");
  return out;
}

Result<void> Outbox::settle(std::span<const Settlement> settlements) {
  if (settlements.empty()) return {};
  sqlite3* db = impl_->db;
  return in_transaction(db, [&]() -> Result<void> {
    Stmt stmt;
    if (auto ok = prepare(db,
                          "UPDATE outbox SET state = ?, reason = ? "
                          "WHERE cell_id = ? AND cycle BETWEEN ? AND ? AND state = 'pending'",
                          stmt);
        !ok) {
      return ok;
    }
    for (const auto& s : settlements) {
      const std::string state(protocol::ack_outcome_name(s.outcome));
      bind_text(stmt.s, 1, state);
      if (s.reason.empty()) {
        sqlite3_bind_null(stmt.s, 2);
      } else {
        bind_text(stmt.s, 2, s.reason);
      }
      bind_text(stmt.s, 3, s.cell_id);
      sqlite3_bind_int64(stmt.s, 4, s.first_cycle);
      sqlite3_bind_int64(stmt.s, 5, s.last_cycle);
      if (sqlite3_step(stmt.s) != SQLITE_DONE) return db_error(db, "settle");
      sqlite3_reset(stmt.s);
    }
    return {};
  });
}

Result<OutboxCounts> Outbox::counts() {
  Stmt stmt;
  if (auto ok = prepare(impl_->db, "SELECT state, count(*) FROM outbox GROUP BY state", stmt);
      !ok) {
    return ok.error();
  }
  OutboxCounts counts;
  while (sqlite3_step(stmt.s) == SQLITE_ROW) {
    const std::string state = column_text(stmt.s, 0);
    const std::int64_t n = sqlite3_column_int64(stmt.s, 1);
    if (state == "pending") counts.pending = n;
    if (state == "stored") counts.stored = n;
    if (state == "duplicate") counts.duplicate = n;
    if (state == "conflict") counts.conflict = n;
    if (state == "rejected") counts.rejected = n;
  }
  return counts;
}

}  // namespace cyclecast::rig
