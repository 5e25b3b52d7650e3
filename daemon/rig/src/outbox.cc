// The rig's outbox file. Schema (version 2, in user_version):
//   cells(cell_id PK, rig_id, meta)                        meta: protocol v1 metadata JSON
//   outbox(cell_id, cycle, rig_id, payload, added)         PK (cell_id, cycle)
//   answers(id PK, cell_id, first_cycle, last_cycle, outcome, reason, generation)
//   generation(value)                                      one row: add() calls so far
// A record is answered by the first answer (lowest id) whose range covers its cycle and that
// was recorded after the record was added (answers.generation >= outbox.added): exactly what
// an UPDATE of the records present at settle time did in version 1, but one row per range
// of an ack instead of a rewritten row per record, which kept the rig's CPU on its outbox.
// Version 1 kept the answer in outbox.state; open() migrates such a file in one transaction.
#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "cyclecast/rig/rig.h"

namespace cyclecast::rig {
namespace {

constexpr int kOutboxSchemaVersion = 2;

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
  added   INTEGER NOT NULL,
  PRIMARY KEY (cell_id, cycle)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS answers(
  id          INTEGER PRIMARY KEY,
  cell_id     TEXT NOT NULL,
  first_cycle INTEGER NOT NULL,
  last_cycle  INTEGER NOT NULL,
  outcome     TEXT NOT NULL
              CHECK (outcome IN ('stored', 'duplicate', 'conflict', 'rejected')),
  reason      TEXT,
  generation  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS generation(value INTEGER NOT NULL);
INSERT INTO generation(value) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM generation);
PRAGMA user_version = 2;
)sql";

// Version 1 -> 2: answers move out of the outbox rows into one answer per answered record.
constexpr const char* kMigrateFrom1 = R"sql(
CREATE TABLE outbox_v2(
  cell_id TEXT NOT NULL,
  cycle   INTEGER NOT NULL,
  rig_id  TEXT NOT NULL,
  payload TEXT NOT NULL,
  added   INTEGER NOT NULL,
  PRIMARY KEY (cell_id, cycle)
) WITHOUT ROWID;
INSERT INTO outbox_v2(cell_id, cycle, rig_id, payload, added)
  SELECT cell_id, cycle, rig_id, payload, 1 FROM outbox;
CREATE TABLE answers(
  id          INTEGER PRIMARY KEY,
  cell_id     TEXT NOT NULL,
  first_cycle INTEGER NOT NULL,
  last_cycle  INTEGER NOT NULL,
  outcome     TEXT NOT NULL
              CHECK (outcome IN ('stored', 'duplicate', 'conflict', 'rejected')),
  reason      TEXT,
  generation  INTEGER NOT NULL
);
INSERT INTO answers(cell_id, first_cycle, last_cycle, outcome, reason, generation)
  SELECT cell_id, cycle, cycle, state, reason, 1 FROM outbox WHERE state <> 'pending'
  ORDER BY cell_id, cycle;
DROP INDEX IF EXISTS outbox_pending;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE TABLE generation(value INTEGER NOT NULL);
INSERT INTO generation(value) VALUES(1);
PRAGMA user_version = 2;
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

// One answer of the daemon, as the sweep below needs it.
struct Answer {
  std::int64_t id = 0;
  std::string cell_id;
  std::int64_t first_cycle = 0, last_cycle = 0, generation = 0;
  std::string outcome;
};

Result<std::vector<Answer>> load_answers(sqlite3* db) {
  Stmt stmt;
  if (auto ok = prepare(db,
                        "SELECT id, cell_id, first_cycle, last_cycle, generation, outcome "
                        "FROM answers ORDER BY cell_id, first_cycle",
                        stmt);
      !ok) {
    return ok.error();
  }
  std::vector<Answer> answers;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt.s)) == SQLITE_ROW) {
    answers.push_back({sqlite3_column_int64(stmt.s, 0), column_text(stmt.s, 1),
                       sqlite3_column_int64(stmt.s, 2), sqlite3_column_int64(stmt.s, 3),
                       sqlite3_column_int64(stmt.s, 4), column_text(stmt.s, 5)});
  }
  if (rc != SQLITE_DONE) return db_error(db, "read answers");
  return answers;
}

// Walks the outbox in (cell, cycle) order, calling visit(row, answer) with the record's answer
// (nullptr while pending); row columns: cell_id, cycle, added, rig_id, payload. One merge of
// two sorted lists: the answers that may cover the current cycle are the "open" ones, usually
// one or two. SQLite's BINARY order of cell ids is std::string's order.
template <typename Visit>
Result<void> sweep(sqlite3* db, Visit&& visit) {
  auto answers = load_answers(db);
  if (!answers) return answers.error();
  Stmt stmt;
  if (auto ok = prepare(db,
                        "SELECT cell_id, cycle, added, rig_id, payload FROM outbox "
                        "ORDER BY cell_id, cycle",
                        stmt);
      !ok) {
    return ok;
  }
  std::size_t next = 0;
  std::vector<const Answer*> open;
  std::string cell;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt.s)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.s, 0));
    const std::string_view row_cell(text != nullptr ? text : "",
                                    static_cast<std::size_t>(sqlite3_column_bytes(stmt.s, 0)));
    const std::int64_t cycle = sqlite3_column_int64(stmt.s, 1);
    const std::int64_t added = sqlite3_column_int64(stmt.s, 2);
    if (row_cell != cell) {
      cell = row_cell;
      open.clear();
      while (next < answers->size() && (*answers)[next].cell_id < cell)
        ++next;
    }
    while (next < answers->size() && (*answers)[next].cell_id == cell &&
           (*answers)[next].first_cycle <= cycle) {
      open.push_back(&(*answers)[next++]);
    }
    std::erase_if(open, [&](const Answer* a) { return a->last_cycle < cycle; });
    const Answer* answer = nullptr;
    for (const Answer* a : open) {
      if (a->generation >= added && (answer == nullptr || a->id < answer->id)) answer = a;
    }
    visit(stmt.s, answer);
  }
  if (rc != SQLITE_DONE) return db_error(db, "read outbox");
  return {};
}

Result<std::int64_t> read_generation(sqlite3* db) {
  Stmt stmt;
  if (auto ok = prepare(db, "SELECT value FROM generation", stmt); !ok) return ok.error();
  if (sqlite3_step(stmt.s) != SQLITE_ROW) return db_error(db, "read generation");
  return sqlite3_column_int64(stmt.s, 0);
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
  int found = 0;
  {
    Stmt version;
    if (auto ok = prepare(impl->db, "PRAGMA user_version", version); !ok) return ok.error();
    found = sqlite3_step(version.s) == SQLITE_ROW ? sqlite3_column_int(version.s, 0) : 0;
  }
  if (found > kOutboxSchemaVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "outbox '" + path.string() + "' has schema version " + std::to_string(found) +
                          ", newer than this build's " + std::to_string(kOutboxSchemaVersion));
  }
  if (found == 1) {
    auto migrated = in_transaction(impl->db, [&] { return exec(impl->db, kMigrateFrom1); });
    if (!migrated) return migrated.error();
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
    // Records of this call belong to a new generation: answers recorded before it do not
    // cover them, even where their range does.
    if (auto ok = exec(db, "UPDATE generation SET value = value + 1"); !ok) return ok;
    const auto generation = read_generation(db);
    if (!generation) return generation.error();
    Stmt lookup, insert;
    if (auto ok = prepare(db, "SELECT rig_id FROM cells WHERE cell_id = ?", lookup); !ok) return ok;
    if (auto ok = prepare(db,
                          "INSERT OR IGNORE INTO outbox(cell_id, cycle, rig_id, payload, added) "
                          "VALUES(?,?,?,?,?)",
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
      const std::string payload = protocol::serialize_cycle(r);
      bind_text(insert.s, 1, r.cell_id);
      sqlite3_bind_int64(insert.s, 2, r.cycle);
      bind_text(insert.s, 3, last_rig);
      sqlite3_bind_text(insert.s, 4, payload.data(), static_cast<int>(payload.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(insert.s, 5, *generation);
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
  std::vector<OutboxRecord> out;
  auto done = sweep(impl_->db, [&](sqlite3_stmt* row, const Answer* answer) {
    if (answer != nullptr) return;
    out.push_back({column_text(row, 3), column_text(row, 0), sqlite3_column_int64(row, 1),
                   column_text(row, 4)});
  });
  if (!done) return done.error();
  return out;
}

Result<void> Outbox::settle(std::span<const Settlement> settlements) {
  if (settlements.empty()) return {};
  sqlite3* db = impl_->db;
  return in_transaction(db, [&]() -> Result<void> {
    const auto generation = read_generation(db);
    if (!generation) return generation.error();
    Stmt stmt;
    if (auto ok = prepare(db,
                          "INSERT INTO answers(cell_id, first_cycle, last_cycle, outcome, reason, "
                          "generation) VALUES(?,?,?,?,?,?)",
                          stmt);
        !ok) {
      return ok;
    }
    for (const auto& s : settlements) {
      const std::string_view outcome = protocol::ack_outcome_name(s.outcome);
      bind_text(stmt.s, 1, s.cell_id);
      sqlite3_bind_int64(stmt.s, 2, s.first_cycle);
      sqlite3_bind_int64(stmt.s, 3, s.last_cycle);
      sqlite3_bind_text(stmt.s, 4, outcome.data(), static_cast<int>(outcome.size()), SQLITE_STATIC);
      if (s.reason.empty()) {
        sqlite3_bind_null(stmt.s, 5);
      } else {
        bind_text(stmt.s, 5, s.reason);
      }
      sqlite3_bind_int64(stmt.s, 6, *generation);
      if (sqlite3_step(stmt.s) != SQLITE_DONE) return db_error(db, "settle");
      sqlite3_reset(stmt.s);
    }
    return {};
  });
}

Result<OutboxCounts> Outbox::counts() {
  OutboxCounts counts;
  auto done = sweep(impl_->db, [&](sqlite3_stmt* /*row*/, const Answer* answer) {
    if (answer == nullptr) {
      ++counts.pending;
    } else if (answer->outcome == "stored") {
      ++counts.stored;
    } else if (answer->outcome == "duplicate") {
      ++counts.duplicate;
    } else if (answer->outcome == "conflict") {
      ++counts.conflict;
    } else {
      ++counts.rejected;
    }
  });
  if (!done) return done.error();
  return counts;
}

}  // namespace cyclecast::rig
