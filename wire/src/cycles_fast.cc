// The fast path of parse_cycles_payload (see protocol_internal.h): a strict scanner for the subset
// of JSON a well-behaved rig sends — an object or an array of objects whose keys are known field
// names without escapes and whose values are numbers or null. It gives up (nullopt) on anything
// else, and the reference parser on nlohmann's DOM takes over, so every rejection keeps the
// reference's reason. Nothing here allocates per field; one record costs one CycleRecord.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>
#include <vector>

#include "protocol_internal.h"

namespace cyclecast::protocol::detail {
namespace {

enum Field : unsigned {
  kCycle,
  kQdAh,
  kQcAh,
  kIrOhm,
  kTminC,
  kTavgC,
  kTmaxC,
  kChargeTimeMin,
  kMeasuredAtMs,
  kFieldCount,
};

constexpr std::string_view kFieldNames[kFieldCount] = {
    "cycle",  "qd_ah",  "qc_ah",          "ir_ohm",         "tmin_c",
    "tavg_c", "tmax_c", "chargetime_min", "measured_at_ms",
};

// The optional measurements, in Field order from kQcAh to kChargeTimeMin.
constexpr std::optional<double> storage::CycleRecord::*kOptionalMembers[] = {
    &storage::CycleRecord::charge_capacity_ah, &storage::CycleRecord::internal_resistance_ohm,
    &storage::CycleRecord::temperature_min_c,  &storage::CycleRecord::temperature_avg_c,
    &storage::CycleRecord::temperature_max_c,  &storage::CycleRecord::charge_time_min,
};
static_assert(std::size(kOptionalMembers) == kChargeTimeMin - kQcAh + 1);

std::optional<Field> field_of(std::string_view key) {
  for (unsigned i = 0; i < kFieldCount; ++i) {
    if (kFieldNames[i] == key) return static_cast<Field>(i);
  }
  return std::nullopt;
}

// A JSON number token, already checked against the grammar.
struct Number {
  std::string_view text;
  bool integer = false;  // no fraction, no exponent: nlohmann keeps it as a 64-bit integer
};

// The value nlohmann gives a number read as double: an integer token that fits 64 bits is
// parsed exactly and converted by a cast (round to nearest); any other token is converted with
// correct rounding (strtod there, from_chars here: the same double).
bool number_value(const Number& number, double& out) {
  const char* first = number.text.data();
  const char* last = first + number.text.size();
  if (number.integer) {
    if (*first == '-') {
      std::int64_t value = 0;
      if (const auto r = std::from_chars(first, last, value);
          r.ec == std::errc{} && r.ptr == last) {
        out = static_cast<double>(value);
        return true;
      }
    } else {
      std::uint64_t value = 0;
      if (const auto r = std::from_chars(first, last, value);
          r.ec == std::errc{} && r.ptr == last) {
        out = static_cast<double>(value);
        return true;
      }
    }
  }
  const auto r = std::from_chars(first, last, out);
  return r.ec == std::errc{} && r.ptr == last && std::isfinite(out);
}

// An integer field (cycle, measured_at_ms) accepted by the reference: an integer token in range.
bool integer_value(const Number& number, std::int64_t min, std::int64_t max, std::int64_t& out) {
  if (!number.integer) return false;
  const char* first = number.text.data();
  const char* last = first + number.text.size();
  const auto r = std::from_chars(first, last, out);
  return r.ec == std::errc{} && r.ptr == last && out >= min && out <= max;
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : at_(text.data()), end_(text.data() + text.size()) {}

  // JSON whitespace only (RFC 8259), as nlohmann skips it.
  void skip_space() {
    while (at_ < end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t'))
      ++at_;
  }
  bool at_end() const { return at_ == end_; }
  // Skips whitespace, then consumes `c` if it comes next.
  bool eat(char c) {
    skip_space();
    if (at_ < end_ && *at_ == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool next_is(char c) {
    skip_space();
    return at_ < end_ && *at_ == c;
  }

  // A string of printable ASCII without escapes (all field names are); anything else is left to
  // the reference, which decodes escapes and checks UTF-8.
  bool plain_string(std::string_view& out) {
    if (!eat('"')) return false;
    const char* start = at_;
    while (at_ < end_ && *at_ != '"') {
      const auto c = static_cast<unsigned char>(*at_);
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++at_;
    }
    if (at_ == end_) return false;
    out = std::string_view(start, static_cast<std::size_t>(at_ - start));
    ++at_;
    return true;
  }

  bool null_literal() {
    skip_space();
    if (end_ - at_ < 4 || std::string_view(at_, 4) != "null") return false;
    at_ += 4;
    return true;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — what comes after is the caller's to check.
  bool number(Number& out) {
    skip_space();
    const char* start = at_;
    out.integer = true;
    if (at_ < end_ && *at_ == '-') ++at_;
    if (at_ < end_ && *at_ == '0') {
      ++at_;
    } else if (!digits()) {
      return false;
    }
    if (at_ < end_ && *at_ == '.') {
      ++at_;
      out.integer = false;
      if (!digits()) return false;
    }
    if (at_ < end_ && (*at_ == 'e' || *at_ == 'E')) {
      ++at_;
      out.integer = false;
      if (at_ < end_ && (*at_ == '+' || *at_ == '-')) ++at_;
      if (!digits()) return false;
    }
    out.text = std::string_view(start, static_cast<std::size_t>(at_ - start));
    return true;
  }

 private:
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  // One or more digits.
  bool digits() {
    const char* start = at_;
    while (at_ < end_ && digit(*at_))
      ++at_;
    return at_ > start;
  }

  const char* at_;
  const char* end_;
};

// One record object, the opening brace not yet read. False: not for the fast path.
bool scan_record(Scanner& in, const storage::CellInfo& cell, storage::CycleRecord& record) {
  if (!in.eat('{')) return false;
  unsigned seen = 0;  // bit per Field: a repeated key goes to the reference
  if (!in.next_is('}')) {
    do {
      std::string_view key;
      if (!in.plain_string(key)) return false;
      const auto field = field_of(key);
      if (!field || (seen & (1u << *field)) != 0) return false;
      seen |= 1u << *field;
      if (!in.eat(':')) return false;
      if (in.null_literal()) {
        // null means absent, except where a value is required.
        if (*field == kCycle || *field == kQdAh) return false;
        continue;
      }
      Number number;
      if (!in.number(number)) return false;
      if (*field == kCycle) {
        if (!integer_value(number, 1, kMaxCycle, record.cycle)) return false;
      } else if (*field == kMeasuredAtMs) {
        std::int64_t ms = 0;
        if (!integer_value(number, kMinMeasuredAtMs, kMaxMeasuredAtMs, ms)) return false;
        record.measured_at_ms = ms;
      } else {
        double value = 0;
        if (!number_value(number, value)) return false;
        if (*field == kQdAh) {
          record.discharge_capacity_ah = value;
        } else {
          record.*kOptionalMembers[*field - kQcAh] = value;
        }
      }
    } while (in.eat(','));
  }
  if (!in.eat('}')) return false;
  if ((seen & (1u << kCycle)) == 0 || (seen & (1u << kQdAh)) == 0) return false;
  return check_plausible(record, cell.rated_capacity_ah).empty();
}

bool has_repeated_cycle(const std::vector<storage::CycleRecord>& records) {
  // Rigs send cycles in ascending order: then no sort is needed to see there is no repeat.
  bool ascending = true;
  for (std::size_t i = 1; i < records.size() && ascending; ++i) {
    ascending = records[i - 1].cycle < records[i].cycle;
  }
  if (ascending) return false;
  std::vector<std::int64_t> cycles;
  cycles.reserve(records.size());
  for (const auto& r : records)
    cycles.push_back(r.cycle);
  std::sort(cycles.begin(), cycles.end());
  return std::adjacent_find(cycles.begin(), cycles.end()) != cycles.end();
}

}  // namespace

std::optional<ParsedCycles> parse_cycles_fast(std::string_view payload, const Topic& topic,
                                              const storage::CellInfo& cell, const Limits& limits,
                                              const std::string& source) {
  if (payload.empty() || payload.size() > limits.max_payload_bytes) return std::nullopt;
  Scanner in(payload);
  ParsedCycles out;
  auto take = [&]() {
    storage::CycleRecord& record = out.records.emplace_back();
    if (!scan_record(in, cell, record)) return false;
    record.cell_id = topic.cell_id;
    record.source = source;
    return true;
  };
  if (in.eat('[')) {
    if (in.next_is(']')) return std::nullopt;  // empty array: the reference says so
    do {
      if (out.records.size() == limits.max_records_per_message || !take()) return std::nullopt;
    } while (in.eat(','));
    if (!in.eat(']')) return std::nullopt;
  } else if (!take()) {
    return std::nullopt;
  }
  in.skip_space();
  if (!in.at_end() || has_repeated_cycle(out.records)) return std::nullopt;
  return out;
}

}  // namespace cyclecast::protocol::detail
