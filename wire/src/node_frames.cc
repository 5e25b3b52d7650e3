#include "cyclecast/wire/node_frames.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

namespace cyclecast::wire {
namespace {

Error bad_answer(const std::string& why) {
  return make_error(ErrorCode::kParse, "node answer: " + why);
}

std::vector<std::string_view> split(std::string_view body) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= body.size()) {
    const size_t end = std::min(body.find(' ', start), body.size());
    out.push_back(body.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

template <typename T>
bool integer(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool number(std::string_view text, double& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(out);
}

bool is_id(std::string_view text, size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string marker(int version) {
  return version == kNodeProtocolV2 ? "cc2" : "cc1";
}

bool is_sha(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "-" or a decimal with at most 9 significant digits (docs/node-protocol.md, "Numbers").
std::string node_number(std::optional<double> value, double limit) {
  if (!value || !std::isfinite(*value) || std::fabs(*value) >= limit) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", *value);
  return text;
}

// Checks the frame (printable, '*' + 8 lower-case hex digits, CRC) and returns its body.
Result<std::string_view> frame_body(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxNodeLine) return bad_answer("longer than 255 bytes");
  for (char c : line) {
    if (c < 0x20 || c > 0x7e) return bad_answer("non-printable byte");
  }
  if (line.size() < 10 || line[line.size() - 9] != '*')
    return bad_answer("no '*' and CRC at the end");
  const std::string_view body = line.substr(0, line.size() - 9);
  const std::string_view crc_text = line.substr(line.size() - 8);
  uint32_t crc = 0;
  if (crc_text.find_first_not_of("0123456789abcdef") != std::string_view::npos ||
      std::from_chars(crc_text.data(), crc_text.data() + 8, crc, 16).ec != std::errc()) {
    return bad_answer("CRC is not 8 lower-case hex digits");
  }
  if (node_crc32(body) != crc) return bad_answer("CRC mismatch");
  if (body.find('*') != std::string_view::npos) return bad_answer("'*' inside the body");
  return body;
}

Result<Answer> hello(const std::vector<std::string_view>& t) {
  if (t.size() != 6 || t[2] != "0" || t[3] != "1" || !is_id(t[4], 32) || !is_sha(t[5]))
    return bad_answer("malformed HI");
  return Answer{HelloAnswer{std::string(t[4]), std::string(t[5])}};
}

// v1: "cc1 ID SEQ 1 VERSION SHA W H FEATURES CELLS"; v2 adds the interval table's rows (0..3)
// and, from a node with the update module, the active slot and the last update's outcome.
Result<Answer> identify(const std::vector<std::string_view>& t, uint32_t seq, int version) {
  IdentifyAnswer a;
  a.seq = seq;
  a.version = version;
  const bool v2 = version == kNodeProtocolV2;
  const bool update_fields = v2 && t.size() == 13u;
  if (update_fields) {
    if (!(t[11] == "A" || t[11] == "B" || t[11] == "-") || !is_id(t[12], 16))
      return bad_answer("malformed ID");
    a.active_slot = t[11];
    a.last_update = t[12];
  }
  if (t.size() != (update_fields ? 13u
                   : v2          ? 11u
                                 : 10u) ||
      t[3] != (v2 ? "2" : "1") || !is_id(t[4], 32) || !is_sha(t[5]) || !integer(t[6], a.window) ||
      !integer(t[7], a.horizon) || t[8].empty() || !integer(t[9], a.cells) || a.window < 1 ||
      a.horizon < 1)
    return bad_answer("malformed ID");
  if (v2 && (!integer(t[10], a.interval_bands) || a.interval_bands < 0 || a.interval_bands > 3))
    return bad_answer("malformed ID");
  a.model_version = t[4];
  a.model_sha256 = t[5];
  a.features = t[8];
  return Answer{a};
}

Result<Answer> stored(const std::vector<std::string_view>& t, uint32_t seq, int version) {
  StoredAnswer a;
  a.seq = seq;
  a.version = version;
  if (t.size() != 6 || !is_id(t[3], 64) || !integer(t[4], a.cycle) || !integer(t[5], a.have))
    return bad_answer("malformed OK");
  a.cell = t[3];
  return Answer{a};
}

// "-" or a finite number.
bool optional_number(std::string_view text, std::optional<double>& out) {
  if (text == "-") return true;
  double value = 0.0;
  if (!number(text, value)) return false;
  out = value;
  return true;
}

// "-" or a cycle after `cycle`.
bool optional_cycle(std::string_view text, int64_t cycle, std::optional<int64_t>& out) {
  if (text == "-") return true;
  int64_t value = 0;
  if (!integer(text, value) || value <= cycle) return false;
  out = value;
  return true;
}

// The interval fields of a v2 FC, t[9..14]: LO10 HI10 LOH HIH EOLLO EOLHI, all "-" for a model
// without a table. Where there is an interval it must be one: bounds exactly where the forecast
// has values and on their sides of it, the end-of-life interval around the end of life.
std::optional<ForecastInterval> forecast_interval(const std::vector<std::string_view>& t,
                                                  const ForecastAnswer& a, bool& ok) {
  ok = true;
  if (std::all_of(t.begin() + 9, t.begin() + 15, [](std::string_view f) { return f == "-"; }))
    return std::nullopt;
  ForecastInterval in;
  std::optional<double> lower_h, upper_h;
  ok = optional_number(t[9], in.lower_at_10) && optional_number(t[10], in.upper_at_10) &&
       optional_number(t[11], lower_h) && optional_number(t[12], upper_h) &&
       optional_cycle(t[13], a.cycle, in.eol_earliest) &&
       optional_cycle(t[14], a.cycle, in.eol_latest) && lower_h && upper_h;
  if (!ok) return std::nullopt;
  in.lower_at_h = *lower_h;
  in.upper_at_h = *upper_h;
  ok = interval_consistent(in, a.soh_at_10, a.soh_at_h, a.eol_cycle);
  return in;
}

// v1: "cc1 FC SEQ CELL CYCLE VERSION SOH10 SOHH EOL US"; v2: the interval's six fields before US.
Result<Answer> forecast(const std::vector<std::string_view>& t, uint32_t seq, int version) {
  ForecastAnswer a;
  a.seq = seq;
  a.version = version;
  const size_t fields = version == kNodeProtocolV2 ? 16 : 10;
  double soh10 = 0.0;
  int64_t eol = 0;
  if (t.size() != fields || !is_id(t[3], 64) || !integer(t[4], a.cycle) || !is_id(t[5], 32) ||
      !(t[6] == "-" || number(t[6], soh10)) || !number(t[7], a.soh_at_h) ||
      !(t[8] == "-" || integer(t[8], eol)) || !integer(t[fields - 1], a.forecast_us))
    return bad_answer("malformed FC");
  a.cell = t[3];
  a.model_version = t[5];
  if (t[6] != "-") a.soh_at_10 = soh10;
  if (t[8] != "-") a.eol_cycle = eol;
  if (version == kNodeProtocolV2) {
    bool ok = false;
    a.interval = forecast_interval(t, a, ok);
    if (!ok) return bad_answer("malformed FC interval");
  }
  return Answer{a};
}

Result<Answer> update_state(const std::vector<std::string_view>& t, uint32_t seq) {
  UpdateAnswer a;
  a.seq = seq;
  if (t.size() != 6 || !(t[3] == "idle" || t[3] == "receiving") || !integer(t[4], a.next) ||
      a.next < 0 || !is_id(t[5], 16))
    return bad_answer("malformed UP");
  a.receiving = t[3] == "receiving";
  a.word = t[5];
  return Answer{a};
}

Result<Answer> slots(const std::vector<std::string_view>& t, uint32_t seq) {
  SlotsAnswer a;
  a.seq = seq;
  if (t.size() != 10 || !(t[3] == "A" || t[3] == "B" || t[3] == "-") || t[4] != "A" || t[7] != "B")
    return bad_answer("malformed SL");
  a.active = t[3];
  for (int s = 0; s < 2; ++s) {
    const auto version = t[5 + 3 * s], sha = t[6 + 3 * s];
    const bool empty = version == "-" && sha == "-";
    if (!empty && !(version != "-" && is_id(version, 32) && is_sha(sha)))
      return bad_answer("malformed SL slot");
    a.version[s] = version;
    a.sha256[s] = sha;
  }
  return Answer{a};
}

}  // namespace

uint32_t node_crc32(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : bytes) {
    crc ^= static_cast<uint8_t>(ch);
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string frame(std::string_view body) {
  char crc[16];
  std::snprintf(crc, sizeof crc, "*%08x\n", static_cast<unsigned>(node_crc32(body)));
  return std::string(body) + crc;
}

std::string identify_request(uint32_t seq, int version) {
  return frame(marker(version) + " ID " + std::to_string(seq));
}

std::string cycle_request(uint32_t seq, const NodeCycle& c, int version) {
  return frame(marker(version) + " CY " + std::to_string(seq) + " " + c.cell + " " +
               std::to_string(c.cycle) + " " + node_number(c.soh, 1e6) + " " +
               node_number(c.ir_ohm, 1e6) + " " + node_number(c.temperature_c, 1e6) + " " +
               node_number(c.charge_time_min, 1e6));
}

std::string update_begin_request(uint32_t seq, size_t size, const std::string& sha256_hex,
                                 const std::string& version) {
  return frame("cc2 UB " + std::to_string(seq) + " " + std::to_string(size) + " " + sha256_hex +
               " " + version);
}

std::string update_chunk_request(uint32_t seq, size_t offset, std::string_view data) {
  static const char kHex[] = "0123456789abcdef";
  std::string body = "cc2 UC " + std::to_string(seq) + " " + std::to_string(offset) + " ";
  for (const char c : data.substr(0, kUpdateChunkBytes)) {
    body += kHex[static_cast<uint8_t>(c) >> 4];
    body += kHex[static_cast<uint8_t>(c) & 0xF];
  }
  char crc[16];
  std::snprintf(crc, sizeof crc, " %08x",
                static_cast<unsigned>(node_crc32(data.substr(0, kUpdateChunkBytes))));
  return frame(body + crc);
}

std::string update_commit_request(uint32_t seq) {
  return frame("cc2 UE " + std::to_string(seq));
}

std::string slots_request(uint32_t seq) {
  return frame("cc2 SL " + std::to_string(seq));
}

Result<Answer> parse_answer(std::string_view line) {
  auto body = frame_body(line);
  if (!body) return body.error();
  const std::vector<std::string_view> t = split(*body);
  const int version = t[0] == "cc1" ? kNodeProtocolV1 : t[0] == "cc2" ? kNodeProtocolV2 : 0;
  if (t.size() < 3 || version == 0) return bad_answer("not a protocol v1 or v2 frame");
  uint32_t seq = 0;
  if (!integer(t[2], seq)) return bad_answer("sequence number is not a decimal");
  if (t[1] == "HI" && version == kNodeProtocolV1) return hello(t);
  // The model update's answers exist only in v2 (docs/node-protocol.md, "Model update").
  if (t[1] == "UP" && version == kNodeProtocolV2) return update_state(t, seq);
  if (t[1] == "SL" && version == kNodeProtocolV2) return slots(t, seq);
  if (t[1] == "ID") return identify(t, seq, version);
  if (t[1] == "OK") return stored(t, seq, version);
  if (t[1] == "FC") return forecast(t, seq, version);
  if (t[1] == "ST") {
    std::string counters(body->substr(std::min(body->size(), 8 + t[2].size())));
    return Answer{StatsAnswer{seq, version, counters}};
  }
  if (t[1] == "ER" && t.size() == 4) return Answer{ErrorAnswer{seq, version, std::string(t[3])}};
  return bad_answer("unknown answer type '" + std::string(t[1]) + "'");
}

uint32_t answer_seq(const Answer& answer) {
  return std::visit(
      [](const auto& a) -> uint32_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, HelloAnswer>) {
          return 0;
        } else {
          return a.seq;
        }
      },
      answer);
}

}  // namespace cyclecast::wire
