// Acknowledgements of protocol v1 (docs/protocol.md, "Acknowledgements"): the outcomes, their
// compression into ranges, and the message that carries them.
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "cyclecast/wire/protocol.h"
#include "protocol_internal.h"

namespace cyclecast::protocol {

using detail::invalid;
using detail::parse_json;
using detail::read_integer;
using nlohmann::json;

namespace {

std::optional<AckOutcome> ack_outcome_from_name(std::string_view name) {
  for (AckOutcome o : {AckOutcome::kStored, AckOutcome::kDuplicate, AckOutcome::kConflict,
                       AckOutcome::kRejected, AckOutcome::kRetry}) {
    if (ack_outcome_name(o) == name) return o;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ack_outcome_name(AckOutcome outcome) {
  switch (outcome) {
    case AckOutcome::kStored:
      return "stored";
    case AckOutcome::kDuplicate:
      return "duplicate";
    case AckOutcome::kConflict:
      return "conflict";
    case AckOutcome::kRejected:
      return "rejected";
    case AckOutcome::kRetry:
      return "retry";
  }
  return "rejected";
}

std::vector<AckRange> compress_acks(std::vector<AckEntry> entries) {
  const auto by_cell_and_cycle = [](const AckEntry& a, const AckEntry& b) {
    return std::tie(a.cell_id, a.cycle) < std::tie(b.cell_id, b.cycle);
  };
  // A batch usually arrives in order already: checking is cheaper than a merge sort's buffer.
  if (!std::is_sorted(entries.begin(), entries.end(), by_cell_and_cycle)) {
    std::stable_sort(entries.begin(), entries.end(), by_cell_and_cycle);
  }
  std::vector<AckRange> ranges;
  for (auto& e : entries) {
    if (!ranges.empty()) {
      AckRange& last = ranges.back();
      if (last.cell_id == e.cell_id && last.last_cycle + 1 == e.cycle &&
          last.outcome == e.outcome && last.reason == e.reason) {
        last.last_cycle = e.cycle;
        continue;
      }
    }
    ranges.push_back(
        AckRange{std::move(e.cell_id), e.cycle, e.cycle, e.outcome, std::move(e.reason)});
  }
  return ranges;
}

std::string serialize_ack(const Ack& ack) {
  json out = json::object();
  out["v"] = 1;
  out["seq"] = ack.seq;
  out["committed_at_ms"] = ack.committed_at_ms;
  json ranges = json::array();
  for (const auto& r : ack.ranges) {
    json item = {{"cell", r.cell_id},
                 {"from", r.first_cycle},
                 {"to", r.last_cycle},
                 {"outcome", ack_outcome_name(r.outcome)}};
    if (!r.reason.empty()) item["reason"] = r.reason;
    ranges.push_back(std::move(item));
  }
  out["ranges"] = std::move(ranges);
  if (!ack.rejected_messages.empty()) {
    json messages = json::array();
    for (const auto& m : ack.rejected_messages) {
      messages.push_back({{"cell", m.cell_id}, {"reason", m.reason}});
    }
    out["rejected_messages"] = std::move(messages);
  }
  // Reasons quote outside bytes (a JSON parser's "last read: ..."), which may be invalid UTF-8:
  // replaced by U+FFFD instead of throwing, which would take the daemon down.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Ack> parse_ack(std::string_view payload) {
  Limits limits;
  limits.max_payload_bytes = 64 * 1024 * 1024;  // acks come from our daemon, not from outside
  auto parsed = parse_json(payload, limits);
  if (!parsed) return parsed.error();
  const json& root = *parsed;
  // Integers go through read_integer: nlohmann converts a float such as 1e300 to an integer
  // with a plain cast, which is undefined behaviour when it does not fit.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  auto integer = [](const json& object, const char* key, std::int64_t min, std::int64_t max,
                    std::int64_t& out) {
    const std::string problem = read_integer(object.at(key), key, min, max, out);
    if (!problem.empty()) throw std::invalid_argument(problem);
  };
  Ack ack;
  try {
    if (!root.is_object()) return invalid("not a v1 ack object");
    std::int64_t version = 0;
    integer(root, "v", 1, 1, version);
    std::int64_t seq = 0;
    integer(root, "seq", 0, kMax, seq);
    ack.seq = static_cast<std::uint64_t>(seq);
    integer(root, "committed_at_ms", 0, kMax, ack.committed_at_ms);
    for (const json& item : root.at("ranges")) {
      AckRange range;
      range.cell_id = item.at("cell").get<std::string>();
      integer(item, "from", 1, kMaxCycle, range.first_cycle);
      integer(item, "to", 1, kMaxCycle, range.last_cycle);
      const auto outcome = ack_outcome_from_name(item.at("outcome").get<std::string>());
      if (!outcome || range.last_cycle < range.first_cycle) return invalid("bad ack range");
      range.outcome = *outcome;
      range.reason = item.value("reason", std::string());
      ack.ranges.push_back(std::move(range));
    }
    if (const auto it = root.find("rejected_messages"); it != root.end()) {
      for (const json& item : *it) {
        ack.rejected_messages.push_back(
            {item.at("cell").get<std::string>(), item.at("reason").get<std::string>()});
      }
    }
  } catch (const json::exception& e) {
    return invalid(std::string("malformed ack: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return invalid(std::string("malformed ack: ") + e.what());
  }
  return ack;
}
}  // namespace cyclecast::protocol
