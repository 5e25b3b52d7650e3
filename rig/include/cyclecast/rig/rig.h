// The rig side of ingestion (docs/protocol.md): an outbox that keeps every record until the
// daemon has said what became of it, and a publisher that sends the outbox's unconfirmed records
// over MQTT (protocol v1), re-sending what is not acknowledged within a timeout or across a
// reconnect. A rig that crashes and restarts on the same outbox file re-sends exactly what was
// not yet confirmed; the daemon stores each (cell, cycle) once, so nothing is lost or doubled.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::rig {

// One record waiting in the outbox, with its payload as it goes on the wire.
struct OutboxRecord {
  std::string rig_id;
  std::string cell_id;
  std::int64_t cycle = 0;
  std::string payload;  // protocol::serialize_cycle() of the record
};

// A final answer of the daemon for cycles first_cycle..last_cycle (inclusive) of one cell.
struct Settlement {
  std::string cell_id;
  std::int64_t first_cycle = 0;
  std::int64_t last_cycle = 0;
  protocol::AckOutcome outcome = protocol::AckOutcome::kStored;
  std::string reason;
};

struct OutboxCounts {
  std::int64_t pending = 0, stored = 0, duplicate = 0, conflict = 0, rejected = 0;
};

// The rig's SQLite file (its own schema, not cyclecast's database). One thread at a time.
class Outbox {
 public:
  static Result<Outbox> open(const std::filesystem::path& path);
  Outbox(Outbox&&) noexcept;
  Outbox& operator=(Outbox&&) noexcept;
  ~Outbox();

  // Registers cells (their metadata is re-published on every connect) and records; a
  // (cell, cycle) already in the outbox keeps its state, so re-adding the same input after a
  // restart re-sends only what was not confirmed. Returns how many records were new.
  Result<std::size_t> add(std::span<const storage::CellInfo> cells,
                          std::span<const storage::CycleRecord> records);
  Result<std::vector<storage::CellInfo>> cells();
  // Records not yet answered, by cell then cycle.
  Result<std::vector<OutboxRecord>> pending();
  // Records the daemon's answers in one transaction; records already answered keep their first
  // answer.
  Result<void> settle(std::span<const Settlement> settlements);
  Result<OutboxCounts> counts();

 private:
  struct Impl;
  explicit Outbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct PublishOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string client_id;  // empty: "cyclecast-rig-<pid>"
  std::string username, password;
  std::string tls_ca_file;                  // non-empty: TLS, verifying the broker with it
  std::string tls_cert_file, tls_key_file;  // a client certificate, for brokers that ask one
  double rate_records_per_s = 0;          // 0: as fast as the window of unconfirmed records allows
  std::size_t window_records = 20000;     // most records sent and not yet answered
  std::size_t records_per_message = 100;  // array payloads of up to this many records of one cell
  // Re-send a record not answered within this, or within the measured answer time when that is
  // longer; each expiry doubles the wait up to 60 s, a prompt answer brings it back (TCP's rule).
  int ack_timeout_ms = 5000;
  int deadline_s = 0;  // 0: until every record is answered
  int connect_timeout_s = 10;
};

struct PublishProgress {
  std::size_t total = 0;      // records to answer in this run
  std::size_t sent = 0;       // records published (re-sends included)
  std::size_t resent = 0;     // of which re-sends
  std::size_t confirmed = 0;  // stored or duplicate: durable in the daemon's database
  std::size_t rejected = 0;   // conflict or rejected: final, not stored
  std::size_t reconnects = 0;
  std::size_t daemon_restarts = 0;   // daemon starts acted on: in-flight records re-sent
  std::size_t ignored_statuses = 0;  // live `online` statuses that re-sent nothing (DaemonStarts)
  double resend_after_s = 0;         // the current wait before a re-send
  double seconds = 0;
};

// When a daemon's (or a gateway's) live `online` status calls for re-sending what is in flight
// (docs/protocol.md, "Daemon status"): once per distinct start id on each status topic, and never
// more often than `min_interval` whatever the statuses say, so that no client of the broker can
// multiply a rig's traffic by publishing statuses. A start that comes within the interval of the
// last re-send is not dropped: its re-send waits for the interval's end. A status without a start
// id (an older daemon) cannot be told from a replay and counts as a new start each time, within
// the interval. Retained statuses describe a start that happened before the rig listened: they
// are remembered, never acted on. Not thread-safe.
class DaemonStarts {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DaemonStarts(std::chrono::milliseconds min_interval) : min_interval_(min_interval) {}

  // A message on a status topic.
  void seen(std::string_view topic, std::string_view payload, bool retained);
  // True when a re-send is due at `now`; the caller re-sends, and the next one waits.
  bool resend_due(Clock::time_point now);
  std::size_t resends() const { return resends_; }
  // Live `online` statuses that have made no re-send (a known start, or one coalesced with
  // another's re-send, or still waiting for the interval's end).
  std::size_t ignored() const { return online_ - std::min(online_, resends_); }

 private:
  // (topic, start id) pairs already acted on or retained; bounded so a flood of ids cannot grow it.
  static constexpr std::size_t kMaxKnown = 4096;
  std::chrono::milliseconds min_interval_;
  std::set<std::string> known_;
  bool pending_ = false;  // a re-send is due once the interval allows
  std::size_t online_ = 0;
  std::size_t resends_ = 0;
  std::optional<Clock::time_point> last_resend_;
};

struct PublishSummary {
  PublishProgress progress;
  std::size_t unanswered = 0;  // still pending at the deadline
  // Publish-to-acknowledgement latency of answered records (from their last send).
  double latency_p50_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;
};

// Publishes the outbox's pending records until all are answered (or the deadline passes),
// storing answers in the outbox as they come. `progress` is called about once a second.
// Fails (kIo) only when the broker cannot be reached within connect_timeout_s at the start.
Result<PublishSummary> publish_outbox(Outbox& outbox, const PublishOptions& options,
                                      const std::function<void(const PublishProgress&)>& progress);

}  // namespace cyclecast::rig
