// Private to wire/: what protocol v1's sources share. The reference parser of cycle payloads
// (protocol.cc, on nlohmann's DOM) and the fast path (cycles_fast.cc) apply the very same
// plausibility rules; the acknowledgements (acks.cc) read their messages with the same bounded
// parser and field readers as every other message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "cyclecast/wire/protocol.h"

namespace cyclecast::protocol::detail {

// kInvalidArgument with `reason`: how every refusal of a message is returned.
Error invalid(std::string reason);

// Parses a message's payload after the size checks every message gets, with the nesting, key and
// string limits of every document from outside (cyclecast/bounded_json.h, docs/protocol.md).
Result<nlohmann::json> parse_json(std::string_view payload, const Limits& limits);

// Reads an integer field in [min, max] into `out`; empty, or the reason it is refused.
std::string read_integer(const nlohmann::json& value, std::string_view name, std::int64_t min,
                         std::int64_t max, std::int64_t& out);

// Empty when the record's values are plausible for a cell rated `rated_ah`, else the reason.
// Builds no string for a plausible record: it runs once per received record.
std::string check_plausible(const storage::CycleRecord& record, double rated_ah);

// The fast path: parses a payload that is a plain, valid cycles message (one record object or
// an array of them, every record accepted) straight into records, without a DOM. Returns
// nullopt for anything else — a syntax error, an escape sequence, a duplicate key, a refused
// record, a limit passed — and then the caller asks the reference parser, which gives the
// exact reason. So the fast path never decides a rejection and needs to be exact only on what
// it accepts: tests/wire/protocol_test.cc compares both on the same inputs.
std::optional<ParsedCycles> parse_cycles_fast(std::string_view payload, const Topic& topic,
                                              const storage::CellInfo& cell, const Limits& limits,
                                              const std::string& source);

}  // namespace cyclecast::protocol::detail
