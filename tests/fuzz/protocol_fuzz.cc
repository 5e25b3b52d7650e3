// libFuzzer target for everything protocol v1 reads from outside: topics, cycle payloads, cell
// metadata and acks. The first input byte picks the parser; the rest is the topic and payload
// split at the first newline. Invariants checked beyond "does not crash": the fast path of cycle
// payloads gives what the reference gives, accepted records are finite and inside the documented
// ranges, and serialising them parses back.
//
// Built and run by the `fuzz` preset (tests/CMakeLists.txt, docs/architecture.md).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cyclecast/wire/protocol.h"

namespace protocol = cyclecast::protocol;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void fuzz_cycles(std::string_view payload) {
  cyclecast::storage::CellInfo cell;
  cell.cell_id = "c";
  cell.rig_id = "r";
  cell.rated_capacity_ah = 1.1;
  const protocol::Topic topic{protocol::TopicKind::kCycles, "r", "c"};
  auto parsed = protocol::parse_cycles_payload(payload, topic, &cell);
  // The fast path must agree with the plain reference on everything.
  auto reference = protocol::parse_cycles_payload_reference(payload, topic, &cell);
  check(parsed.ok() == reference.ok());
  if (!parsed) {
    check(parsed.error().message == reference.error().message);
    return;
  }
  check(parsed->records.size() == reference->records.size());
  check(parsed->rejected.size() == reference->rejected.size());
  for (std::size_t i = 0; i < parsed->records.size(); ++i) {
    const auto& a = parsed->records[i];
    const auto& b = reference->records[i];
    check(a.cycle == b.cycle && a.same_measurement(b) && a.measured_at_ms == b.measured_at_ms);
  }
  for (std::size_t i = 0; i < parsed->rejected.size(); ++i) {
    check(parsed->rejected[i].reason == reference->rejected[i].reason);
  }
  for (const auto& r : parsed->records) {
    check(r.cycle >= 1 && r.cycle <= protocol::kMaxCycle);
    check(std::isfinite(r.discharge_capacity_ah) && r.discharge_capacity_ah > 0);
    check(r.discharge_capacity_ah <= protocol::kMaxCapacityRatio * cell.rated_capacity_ah);
  }
  if (parsed->records.empty()) return;
  auto again =
      protocol::parse_cycles_payload(protocol::serialize_cycles(parsed->records), topic, &cell);
  check(again.ok() && again->records.size() == parsed->records.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)protocol::parse_topic(input);
      break;
    case 1:
      fuzz_cycles(input);
      break;
    case 2:
      (void)protocol::parse_cell_meta(input,
                                      protocol::Topic{protocol::TopicKind::kCellMeta, "r", "c"});
      break;
    default:
      (void)protocol::parse_ack(input);
      break;
  }
  return 0;
}
