// cyclecast MQTT protocol v1 (docs/protocol.md): topic layout, the JSON payloads a rig publishes
// (cycle records, retained cell metadata), and the application-level acknowledgements the daemon
// publishes after each commit. Parsing validates everything that comes from outside and turns it
// into storage records, or says precisely why not; serialisation is what the rig side sends.
//
// Daemon-only code (nlohmann_json); no I/O, no logging: every function is pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/ids.h"
#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::protocol {

inline constexpr std::string_view kTopicRoot = "cyclecast/v1";
// Rig and cell ids are topic segments: cyclecast::check_id (cyclecast/ids.h), the definition
// the API and CSV import share.
using cyclecast::kMaxIdLength;
inline constexpr std::size_t kDefaultMaxPayloadBytes = 256 * 1024;
inline constexpr std::size_t kMaxRecordsPerMessage = 10000;

// Plausibility bounds. Capacities are relative to the cell's rated capacity: real rigs report
// up to ~1.4x rated after a test interruption (docs/protocol.md), so 1.5x is the ceiling.
inline constexpr double kMaxCapacityRatio = 1.5;
inline constexpr std::int64_t kMaxCycle = 1000000;
inline constexpr double kMaxInternalResistanceOhm = 1.0;
inline constexpr double kMinTemperatureC = -40.0;
inline constexpr double kMaxTemperatureC = 150.0;
inline constexpr double kMaxChargeTimeMin = 10000.0;
inline constexpr double kMaxRatedCapacityAh = 1000.0;
// measured_at_ms between 2000-01-01 and 2100-01-01 (Unix epoch milliseconds).
inline constexpr std::int64_t kMinMeasuredAtMs = 946684800000;
inline constexpr std::int64_t kMaxMeasuredAtMs = 4102444800000;
inline constexpr std::size_t kMaxTextFieldLength = 256;

// ---- topics ---------------------------------------------------------------------------------

enum class TopicKind {
  kCycles,    // cyclecast/v1/rigs/{rig}/cells/{cell}/cycles   rig -> daemon, QoS 1
  kCellMeta,  // cyclecast/v1/rigs/{rig}/cells/{cell}/meta     rig -> daemon, QoS 1, retained
  kAcks,      // cyclecast/v1/rigs/{rig}/acks                  daemon -> rig, QoS 1
};

struct Topic {
  TopicKind kind = TopicKind::kCycles;
  std::string rig_id;
  std::string cell_id;  // empty for kAcks
};

// Empty string when `id` is a valid rig/cell id, else why not.
using cyclecast::check_id;
// Parses a topic of the layout above; kInvalidArgument with the reason otherwise.
Result<Topic> parse_topic(std::string_view topic);

std::string cycles_topic(std::string_view rig_id, std::string_view cell_id);
std::string meta_topic(std::string_view rig_id, std::string_view cell_id);
std::string acks_topic(std::string_view rig_id);
// Retained "online <start id>" / "offline" (the daemon's last will) of the daemon with this
// client id.
std::string status_topic(std::string_view client_id);

// A status payload (docs/protocol.md, "Daemon status"): "online <start id>" when a daemon or a
// gateway connects, "offline" when it stops or its connection drops. The start id (1..64
// characters of the id alphabet) names one run of the process, so that a reader tells a restart
// from a reconnect or a replay; older daemons send a bare "online".
struct Status {
  std::string state;     // the first word: "online", "offline", or whatever else was sent
  std::string start_id;  // empty: none given, or not a valid id
};
Status parse_status(std::string_view payload);

// Subscriptions the daemon makes (single-level wildcards for rig and cell).
std::string cycles_subscription();
std::string meta_subscription();

// ---- cycle records --------------------------------------------------------------------------

struct Limits {
  std::size_t max_payload_bytes = kDefaultMaxPayloadBytes;
  std::size_t max_records_per_message = kMaxRecordsPerMessage;
};

// One record of a message refused on its own (the other records of the message stand).
struct RecordRejection {
  std::optional<std::int64_t> cycle;  // when the record had a valid cycle number
  std::string record_json;            // the record as received (re-serialised)
  std::string reason;
};

struct ParsedCycles {
  std::vector<storage::CycleRecord> records;  // valid, in message order
  std::vector<RecordRejection> rejected;
};

// Validates the payload of a kCycles topic: one record object or a non-empty array of them.
// `cell` is the cell's registered metadata (nullptr: unknown cell, which refuses the message).
// Whole-message problems (size, JSON syntax, shape, unknown cell) are a kInvalidArgument error
// whose message is the reason; problems of single records are listed in `rejected`.
// Records get cell_id from the topic and source "mqtt:<topic>".
// Well-formed messages whose records are all valid take a fast path that builds no JSON DOM;
// everything else is decided by the reference below, so reasons are the reference's.
Result<ParsedCycles> parse_cycles_payload(std::string_view payload, const Topic& topic,
                                          const storage::CellInfo* cell, const Limits& limits = {});
// The plain reference implementation of parse_cycles_payload (nlohmann's DOM, every rule written
// out once): the same results, several times slower. Tests compare the two on the same inputs.
Result<ParsedCycles> parse_cycles_payload_reference(std::string_view payload, const Topic& topic,
                                                    const storage::CellInfo* cell,
                                                    const Limits& limits = {});

// Rig side: one record as a JSON object / many as an array (cell_id is in the topic). Numbers
// are written with the shortest digits that read back to the same double.
std::string serialize_cycle(const storage::CycleRecord& record);
std::string serialize_cycles(std::span<const storage::CycleRecord> records);

// ---- cell metadata --------------------------------------------------------------------------

// Validates the payload of a kCellMeta topic into the cell to register (rig and cell from the
// topic). kInvalidArgument with the reason otherwise.
Result<storage::CellInfo> parse_cell_meta(std::string_view payload, const Topic& topic,
                                          const Limits& limits = {});
std::string serialize_cell_meta(const storage::CellInfo& cell);

// ---- acknowledgements -----------------------------------------------------------------------

// What became of a (cell, cycle) once its batch committed. Every outcome but kRetry is final:
// the rig drops the record from its outbox. kStored and kDuplicate mean the record is durable.
enum class AckOutcome {
  kStored,     // inserted by this commit
  kDuplicate,  // an identical record was already stored
  kConflict,   // a different record with this (cell, cycle) was already stored: refused
  kRejected,   // refused by validation (reason given); stored in the rejected table
  kRetry,      // not stored, for a reason that may pass (reason given): the rig sends it again
};
std::string_view ack_outcome_name(AckOutcome outcome);

struct AckEntry {
  std::string cell_id;
  std::int64_t cycle = 0;
  AckOutcome outcome = AckOutcome::kStored;
  std::string reason;  // empty for kStored / kDuplicate
};

// A run of consecutive cycles of one cell with the same outcome and reason.
struct AckRange {
  std::string cell_id;
  std::int64_t first_cycle = 0;
  std::int64_t last_cycle = 0;  // inclusive
  AckOutcome outcome = AckOutcome::kStored;
  std::string reason;
};

// A message refused before any (cell, cycle) could be read from it (bad JSON, unknown cell...).
struct AckMessageRejection {
  std::string cell_id;  // from the topic
  std::string reason;
};

// One acknowledgement message on a rig's ack topic, published after the commit that made its
// records durable.
struct Ack {
  std::uint64_t seq = 0;  // per daemon run, increasing; for logs and ordering
  std::int64_t committed_at_ms = 0;
  std::vector<AckRange> ranges;
  std::vector<AckMessageRejection> rejected_messages;
};

// Sorts entries by (cell, cycle) (stable) and merges runs of consecutive cycles with the same
// outcome and reason. A (cell, cycle) received twice in one batch appears twice (e.g. stored,
// then duplicate); the rig treats any final outcome as the answer.
std::vector<AckRange> compress_acks(std::vector<AckEntry> entries);
std::string serialize_ack(const Ack& ack);
Result<Ack> parse_ack(std::string_view payload);

// ---- what the daemon publishes for consumers (docs/protocol.md, "Forecasts, models, alerts") ---

// cyclecast/v1/cells/{cell}/forecasts, retained: the cell's newest host forecast. None when the
// cell id is not a valid topic segment (check_id): import checks ids the same way now, but a
// database filled by an older import may hold an id such as "a/b" or "#", which must not publish
// elsewhere.
std::optional<std::string> forecast_topic(std::string_view cell_id);
// {"cell", "at_cycle", "model_version", "origin", "horizon", "soh_at_10" (null when H < 10),
//  "soh_at_h", "eol_cycle" (first cycle forecast below 80 % SOH, null when none), "soh": [H]},
// and when the forecast has a prediction interval "lower": [H], "upper": [H] and
// "eol_interval": {"earliest", "latest"} (forecast_eol_interval; null: not within the horizon).
// Without an interval the payload is what it was before intervals (no such keys).
std::string serialize_forecast(const storage::ForecastRecord& forecast);
// The first cycle whose forecast SOH is below `eol_soh`, if any within the horizon.
std::optional<std::int64_t> forecast_eol_cycle(const storage::ForecastRecord& forecast,
                                               double eol_soh = 0.8);
// The end-of-life cycle with its interval (pipeline::eol_interval's rule): the first cycle at
// which the lower bound, the forecast and the upper bound fall below `eol_soh`; nullopt where one
// does not within the horizon (an open interval: the cell may live longer than forecast). The
// lower bound crosses first, so earliest <= expected <= latest where they are known. Without an
// interval earliest and latest are nullopt.
struct ForecastEol {
  std::optional<std::int64_t> earliest, expected, latest;
};
ForecastEol forecast_eol_interval(const storage::ForecastRecord& forecast, double eol_soh = 0.8);
// cyclecast/v1/models/champion, retained: the promoted model's announcement (JSON from the daemon).
std::string champion_topic();
// cyclecast/v1/alerts: alerts the daemon raises (JSON: kind, message, at_ms and details).
std::string alerts_topic();

}  // namespace cyclecast::protocol
