// Private to wire/: what the reference parser of cycle payloads (protocol.cc, on
// nlohmann's DOM) and the fast path (cycles_fast.cc) share, so that both apply the very same
// plausibility rules.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cyclecast/wire/protocol.h"

namespace cyclecast::protocol::detail {

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
