// The gateway's side of the node serial protocol, versions 1 and 2 (docs/node-protocol.md):
// requests it sends and the answers it reads. Pure functions; the node's side is
// firmware/node/cc_node.c, which answers each request in the request's version.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "cyclecast/result.h"
#include "cyclecast/wire/edge.h"

namespace cyclecast::wire {

inline constexpr size_t kMaxNodeLine = 255;  // bytes before '\n' (CC_NODE_MAX_LINE)

// CRC-32 (IEEE 802.3, zlib's crc32) of `bytes`.
uint32_t node_crc32(std::string_view bytes);

// "BODY*crc8hex\n".
std::string frame(std::string_view body);

// One cycle of a cell in the node's units: SOH = discharge / rated capacity; optional features
// (internal resistance in ohm, average temperature in °C, charge time in minutes) when measured.
struct NodeCycle {
  std::string cell;
  int64_t cycle = 0;
  double soh = 0.0;
  std::optional<double> ir_ohm, temperature_c, charge_time_min;
};

// The protocol versions this gateway speaks; the node answers each request in its version.
inline constexpr int kNodeProtocolV1 = 1;
inline constexpr int kNodeProtocolV2 = 2;

// "ccV ID SEQ" and "ccV CY SEQ CELL CYCLE SOH IR TEMP CHARGE" framed, V = `version` (1 or 2).
// Numbers are written with 9 significant digits at most, as the node requires; non-finite or
// out-of-range optional values are sent as '-' (not measured).
std::string identify_request(uint32_t seq, int version = kNodeProtocolV1);
std::string cycle_request(uint32_t seq, const NodeCycle& cycle, int version = kNodeProtocolV1);

// `version` of each answer: the protocol version of its frame (1 or 2).
struct HelloAnswer {  // "cc1 HI 0 1 VERSION SHA256" in every version: the node (re)started
  std::string model_version, model_sha256;
};
struct IdentifyAnswer {
  uint32_t seq = 0;
  int version = kNodeProtocolV1;
  std::string model_version, model_sha256;
  int64_t window = 0, horizon = 0;
  std::string features;  // comma-separated names or "-"
  int64_t cells = 0;
  int64_t interval_bands = 0;  // v2: rows of the model's interval table, 0 (none) to 3
  // v2 from a node with the update module: the active slot ("A", "B", "-" for the built-in
  // model) and the last update's outcome ("none", "switched", ...); empty without the module.
  std::string active_slot, last_update;
};
struct StoredAnswer {  // "OK": stored, fewer than W cycles held
  uint32_t seq = 0;
  int version = kNodeProtocolV1;
  std::string cell;
  int64_t cycle = 0, have = 0;
};
struct ForecastAnswer {  // "FC"
  uint32_t seq = 0;
  int version = kNodeProtocolV1;
  std::string cell;
  int64_t cycle = 0;
  std::string model_version;
  std::optional<double> soh_at_10;  // none when H < 10
  double soh_at_h = 0.0;
  std::optional<int64_t> eol_cycle;  // none when SOH stays >= 0.8 within the horizon
  int64_t forecast_us = 0;
  // v2 with a model that has an interval table; lower <= SOH <= upper where both are given, and
  // eol_earliest <= eol_cycle <= eol_latest where known.
  std::optional<ForecastInterval> interval;
};
struct StatsAnswer {
  uint32_t seq = 0;
  int version = kNodeProtocolV1;
  std::string counters;  // "rx=N crc=N ..." as sent
};
struct ErrorAnswer {
  uint32_t seq = 0;
  int version = kNodeProtocolV1;  // "version" always comes in v1, which every gateway reads
  std::string code;               // "version", "type", "field", "order", "model"
};

// ---- model update (protocol 2, docs/node-protocol.md "Model update") ---------------------------
inline constexpr size_t kUpdateChunkBytes = 96;  // CC_UPDATE_CHUNK_MAX

// "cc2 UB SEQ SIZE SHA256 VERSION", "cc2 UC SEQ OFFSET HEX CRC" (at most kUpdateChunkBytes of
// data), "cc2 UE SEQ", "cc2 SL SEQ", framed.
std::string update_begin_request(uint32_t seq, size_t size, const std::string& sha256_hex,
                                 const std::string& version);
std::string update_chunk_request(uint32_t seq, size_t offset, std::string_view data);
std::string update_commit_request(uint32_t seq);
std::string slots_request(uint32_t seq);

struct UpdateAnswer {  // "cc2 UP SEQ STATE NEXT WORD"
  uint32_t seq = 0;
  bool receiving = false;  // STATE "receiving" (else "idle")
  int64_t next = 0;        // the next offset the node expects
  std::string word;        // "ok", "switched", "none", or why not: "hash", "selftest", ...
};
struct SlotsAnswer {  // "cc2 SL SEQ ACTIVE A VERSION SHA B VERSION SHA"
  uint32_t seq = 0;
  std::string active;                 // "A", "B" or "-" (the built-in model)
  std::string version[2], sha256[2];  // "-" for an empty slot
};

using Answer = std::variant<HelloAnswer, IdentifyAnswer, StoredAnswer, ForecastAnswer, StatsAnswer,
                            ErrorAnswer, UpdateAnswer, SlotsAnswer>;

// One line from the node without its '\n' (a trailing '\r' is dropped). kParse naming what is
// wrong for anything that is not a valid answer frame: bad CRC, non-printable bytes, unknown type,
// wrong field count or format. The gateway counts those as garbage and goes on.
Result<Answer> parse_answer(std::string_view line);

// The sequence number an answer echoes (HI: 0).
uint32_t answer_seq(const Answer& answer);

}  // namespace cyclecast::wire
