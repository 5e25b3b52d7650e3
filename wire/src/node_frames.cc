#include "cyclecast/wire/node_frames.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

namespace cyclecast::wire {
namespace {

Error bad(const std::string& why) {
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
  if (line.size() > kMaxNodeLine) return bad("longer than 255 bytes");
  for (char c : line) {
    if (c < 0x20 || c > 0x7e) return bad("non-printable byte");
  }
  if (line.size() < 10 || line[line.size() - 9] != '*') return bad("no '*' and CRC at the end");
  const std::string_view body = line.substr(0, line.size() - 9);
  const std::string_view crc_text = line.substr(line.size() - 8);
  uint32_t crc = 0;
  if (crc_text.find_first_not_of("0123456789abcdef") != std::string_view::npos ||
      std::from_chars(crc_text.data(), crc_text.data() + 8, crc, 16).ec != std::errc()) {
    return bad("CRC is not 8 lower-case hex digits");
  }
  if (node_crc32(body) != crc) return bad("CRC mismatch");
  if (body.find('*') != std::string_view::npos) return bad("'*' inside the body");
  return body;
}

Result<Answer> hello(const std::vector<std::string_view>& t) {
  if (t.size() != 6 || t[2] != "0" || t[3] != "1" || !is_id(t[4], 32) || !is_sha(t[5]))
    return bad("malformed HI");
  return Answer{HelloAnswer{std::string(t[4]), std::string(t[5])}};
}

Result<Answer> identify(const std::vector<std::string_view>& t, uint32_t seq) {
  IdentifyAnswer a;
  a.seq = seq;
  if (t.size() != 10 || t[3] != "1" || !is_id(t[4], 32) || !is_sha(t[5]) ||
      !integer(t[6], a.window) || !integer(t[7], a.horizon) || t[8].empty() ||
      !integer(t[9], a.cells) || a.window < 1 || a.horizon < 1)
    return bad("malformed ID");
  a.model_version = t[4];
  a.model_sha256 = t[5];
  a.features = t[8];
  return Answer{a};
}

Result<Answer> stored(const std::vector<std::string_view>& t, uint32_t seq) {
  StoredAnswer a;
  a.seq = seq;
  if (t.size() != 6 || !is_id(t[3], 64) || !integer(t[4], a.cycle) || !integer(t[5], a.have))
    return bad("malformed OK");
  a.cell = t[3];
  return Answer{a};
}

Result<Answer> forecast(const std::vector<std::string_view>& t, uint32_t seq) {
  ForecastAnswer a;
  a.seq = seq;
  double soh10 = 0.0;
  int64_t eol = 0;
  if (t.size() != 10 || !is_id(t[3], 64) || !integer(t[4], a.cycle) || !is_id(t[5], 32) ||
      !(t[6] == "-" || number(t[6], soh10)) || !number(t[7], a.soh_at_h) ||
      !(t[8] == "-" || integer(t[8], eol)) || !integer(t[9], a.forecast_us))
    return bad("malformed FC");
  a.cell = t[3];
  a.model_version = t[5];
  if (t[6] != "-") a.soh_at_10 = soh10;
  if (t[8] != "-") a.eol_cycle = eol;
  return Answer{a};
}

Result<Answer> update_state(const std::vector<std::string_view>& t, uint32_t seq) {
  UpdateAnswer a;
  a.seq = seq;
  if (t.size() != 6 || !(t[3] == "idle" || t[3] == "receiving") || !integer(t[4], a.next) ||
      a.next < 0 || !is_id(t[5], 16))
    return bad("malformed UP");
  a.receiving = t[3] == "receiving";
  a.word = t[5];
  return Answer{a};
}

Result<Answer> slots(const std::vector<std::string_view>& t, uint32_t seq) {
  SlotsAnswer a;
  a.seq = seq;
  if (t.size() != 10 || !(t[3] == "A" || t[3] == "B" || t[3] == "-") || t[4] != "A" || t[7] != "B")
    return bad("malformed SL");
  a.active = t[3];
  for (int s = 0; s < 2; ++s) {
    const auto version = t[5 + 3 * s], sha = t[6 + 3 * s];
    const bool empty = version == "-" && sha == "-";
    if (!empty && !(version != "-" && is_id(version, 32) && is_sha(sha)))
      return bad("malformed SL slot");
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

std::string identify_request(uint32_t seq) {
  return frame("cc1 ID " + std::to_string(seq));
}

std::string cycle_request(uint32_t seq, const NodeCycle& c) {
  return frame("cc1 CY " + std::to_string(seq) + " " + c.cell + " " + std::to_string(c.cycle) +
               " " + node_number(c.soh, 1e6) + " " + node_number(c.ir_ohm, 1e6) + " " +
               node_number(c.temperature_c, 1e6) + " " + node_number(c.charge_time_min, 1e6));
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
  // Protocol 2 answers only what the gateway asks in protocol 2: the update requests, and an
  // error to one of them.
  if (t.size() >= 3 && t[0] == "cc2") {
    uint32_t seq2 = 0;
    if (!integer(t[2], seq2)) return bad("sequence number is not a decimal");
    if (t[1] == "UP") return update_state(t, seq2);
    if (t[1] == "SL") return slots(t, seq2);
    if (t[1] == "ER" && t.size() == 4) return Answer{ErrorAnswer{seq2, std::string(t[3])}};
    // Cycles and identify go in v1, so a v2 answer of another type was never asked for.
    return bad("not a protocol v1 frame, nor a protocol 2 answer the gateway asks for ('" +
               std::string(t[1]) + "')");
  }
  if (t.size() < 3 || t[0] != "cc1") return bad("not a protocol v1 frame");
  uint32_t seq = 0;
  if (!integer(t[2], seq)) return bad("sequence number is not a decimal");
  if (t[1] == "HI") return hello(t);
  if (t[1] == "ID") return identify(t, seq);
  if (t[1] == "OK") return stored(t, seq);
  if (t[1] == "FC") return forecast(t, seq);
  if (t[1] == "ST") {
    std::string counters(body->substr(std::min(body->size(), 8 + t[2].size())));
    return Answer{StatsAnswer{seq, counters}};
  }
  if (t[1] == "ER" && t.size() == 4) return Answer{ErrorAnswer{seq, std::string(t[3])}};
  return bad("unknown answer type '" + std::string(t[1]) + "'");
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
