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
#include <algorithm>
#include <optional>
#include <utility>

#include "cyclecast/rig/rig.h"
#include "cyclecast/storage/sqlite.h"

namespace cyclecast::rig {
namespace {

using storage::Query;
using storage::SqliteFile;

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

// One answer of the daemon, as the sweep below needs it.
struct Answer {
  std::int64_t id = 0;
  std::string cell_id;
  std::int64_t first_cycle = 0, last_cycle = 0, generation = 0;
  std::string outcome;
};

Result<std::vector<Answer>> load_answers(SqliteFile& file) {
  auto q = file.prepare(
      "SELECT id, cell_id, first_cycle, last_cycle, generation, outcome "
      "FROM answers ORDER BY cell_id, first_cycle");
  if (!q) return q.error();
  std::vector<Answer> answers;
  for (;;) {
    auto row = q->step("outbox: reading answers");
    if (!row) return row.error();
    if (!*row) break;
    answers.push_back({q->column_int(0), q->column_text(1), q->column_int(2), q->column_int(3),
                       q->column_int(4), q->column_text(5)});
  }
  return answers;
}

// Walks the outbox in (cell, cycle) order, calling visit(row, answer) with the record's answer
// (nullptr while pending); row columns: cell_id, cycle, added, rig_id, payload. One merge of
// two sorted lists: the answers that may cover the current cycle are the "open" ones, usually
// one or two. SQLite's BINARY order of cell ids is std::string's order.
template <typename Visit>
Result<void> sweep(SqliteFile& file, Visit&& visit) {
  auto answers = load_answers(file);
  if (!answers) return answers.error();
  auto q = file.prepare(
      "SELECT cell_id, cycle, added, rig_id, payload FROM outbox ORDER BY cell_id, cycle");
  if (!q) return q.error();
  std::size_t next = 0;
  std::vector<const Answer*> open;
  std::string cell;
  for (;;) {
    auto row = q->step("outbox: reading records");
    if (!row) return row.error();
    if (!*row) break;
    const std::string_view row_cell = q->column_view(0);
    const std::int64_t cycle = q->column_int(1);
    const std::int64_t added = q->column_int(2);
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
    visit(*q, answer);
  }
  return {};
}

Result<std::int64_t> read_generation(SqliteFile& file) {
  return file.query_int("SELECT value FROM generation", "outbox: reading the generation");
}

}  // namespace

struct Outbox::Impl {
  SqliteFile file;
};

Outbox::Outbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Outbox::Outbox(Outbox&&) noexcept = default;
Outbox& Outbox::operator=(Outbox&&) noexcept = default;
Outbox::~Outbox() = default;

Result<Outbox> Outbox::open(const std::filesystem::path& path) {
  auto opened = SqliteFile::open(path);
  if (!opened) return opened.error();
  SqliteFile& file = *opened;
  // NORMAL (WAL) for answers: a crash never corrupts the file; power loss may forget the last
  // answers recorded, and then the rig re-sends those records and the daemon answers
  // "duplicate". FULL would buy nothing but an fsync per settle on the sender's path. Adding
  // records switches to FULL (see add()): the outbox may be a record's only copy.
  if (auto ok = file.exec("PRAGMA synchronous = NORMAL", "outbox: setting synchronous"); !ok) {
    return ok.error();
  }
  auto found = file.query_int("PRAGMA user_version", "outbox: reading the schema version");
  if (!found) return found.error();
  if (*found > kOutboxSchemaVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "outbox '" + path.string() + "' has schema version " +
                          std::to_string(*found) + ", newer than this build's " +
                          std::to_string(kOutboxSchemaVersion));
  }
  if (*found == 1) {
    auto migrated = file.transaction(
        [&] { return file.exec(kMigrateFrom1, "outbox: migrating from version 1"); });
    if (!migrated) return migrated.error();
  }
  if (auto ok = file.exec(kSchema, "outbox: creating the schema"); !ok) return ok.error();
  return Outbox(std::make_unique<Impl>(Impl{std::move(file)}));
}

Result<std::size_t> Outbox::add(std::span<const storage::CellInfo> cells,
                                std::span<const storage::CycleRecord> records) {
  SqliteFile& file = impl_->file;
  std::size_t added = 0;
  if (auto full = file.exec("PRAGMA synchronous = FULL", "outbox: setting synchronous"); !full) {
    return full.error();
  }
  auto done = file.transaction([&]() -> Result<void> {
    auto cell = file.prepare("INSERT OR REPLACE INTO cells(cell_id, rig_id, meta) VALUES(?,?,?)");
    if (!cell) return cell.error();
    for (const auto& c : cells) {
      cell->text(1, c.cell_id).text(2, c.rig_id).text(3, protocol::serialize_cell_meta(c));
      if (auto ok = cell->run("outbox: adding a cell"); !ok) return ok;
    }
    // Records of this call belong to a new generation: answers recorded before it do not
    // cover them, even where their range does.
    if (auto ok = file.exec("UPDATE generation SET value = value + 1", "outbox: new generation");
        !ok)
      return ok;
    const auto generation = read_generation(file);
    if (!generation) return generation.error();
    auto lookup = file.prepare("SELECT rig_id FROM cells WHERE cell_id = ?");
    if (!lookup) return lookup.error();
    auto insert = file.prepare(
        "INSERT OR IGNORE INTO outbox(cell_id, cycle, rig_id, payload, added) VALUES(?,?,?,?,?)");
    if (!insert) return insert.error();
    std::string last_cell, last_rig;
    for (const auto& r : records) {
      if (r.cell_id != last_cell) {
        lookup->text(1, r.cell_id);
        auto found = lookup->step("outbox: looking up a cell");
        if (!found) return found.error();
        if (!*found) {
          lookup->reset();
          return make_error(ErrorCode::kInvalidArgument,
                            "outbox: cell '" + r.cell_id + "' has no metadata");
        }
        last_rig = lookup->column_text(0);
        last_cell = r.cell_id;
        lookup->reset();
      }
      insert->text(1, r.cell_id)
          .integer(2, r.cycle)
          .text(3, last_rig)
          .text(4, protocol::serialize_cycle(r))
          .integer(5, *generation);
      if (auto ok = insert->run("outbox: adding a record"); !ok) return ok;
      added += static_cast<std::size_t>(file.changes());
    }
    return {};
  });
  if (auto normal = file.exec("PRAGMA synchronous = NORMAL", "outbox: setting synchronous");
      !normal)
    return normal.error();
  if (!done) return done.error();
  return added;
}

Result<std::vector<storage::CellInfo>> Outbox::cells() {
  auto q = impl_->file.prepare("SELECT cell_id, rig_id, meta FROM cells ORDER BY cell_id");
  if (!q) return q.error();
  std::vector<storage::CellInfo> out;
  for (;;) {
    auto row = q->step("outbox: reading cells");
    if (!row) return row.error();
    if (!*row) break;
    const std::string cell_id = q->column_text(0);
    const std::string rig_id = q->column_text(1);
    auto info = protocol::parse_cell_meta(
        q->column_text(2), protocol::Topic{protocol::TopicKind::kCellMeta, rig_id, cell_id});
    if (!info)
      return make_error(ErrorCode::kCorrupt,
                        "outbox: cell " + cell_id + ": " + info.error().message);
    out.push_back(std::move(*info));
  }
  return out;
}

Result<std::vector<OutboxRecord>> Outbox::pending() {
  std::vector<OutboxRecord> out;
  auto done = sweep(impl_->file, [&](const Query& row, const Answer* answer) {
    if (answer != nullptr) return;
    out.push_back({row.column_text(3), row.column_text(0), row.column_int(1), row.column_text(4)});
  });
  if (!done) return done.error();
  return out;
}

Result<void> Outbox::settle(std::span<const Settlement> settlements) {
  if (settlements.empty()) return {};
  SqliteFile& file = impl_->file;
  return file.transaction([&]() -> Result<void> {
    const auto generation = read_generation(file);
    if (!generation) return generation.error();
    auto q = file.prepare(
        "INSERT INTO answers(cell_id, first_cycle, last_cycle, outcome, reason, generation) "
        "VALUES(?,?,?,?,?,?)");
    if (!q) return q.error();
    for (const auto& s : settlements) {
      q->text(1, s.cell_id)
          .integer(2, s.first_cycle)
          .integer(3, s.last_cycle)
          .text(4, protocol::ack_outcome_name(s.outcome))
          .integer(6, *generation);
      if (s.reason.empty()) {
        q->null(5);
      } else {
        q->text(5, s.reason);
      }
      if (auto ok = q->run("outbox: recording an answer"); !ok) return ok;
    }
    return {};
  });
}

Result<OutboxCounts> Outbox::counts() {
  OutboxCounts counts;
  auto done = sweep(impl_->file, [&](const Query& /*row*/, const Answer* answer) {
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
