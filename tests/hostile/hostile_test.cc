// The hostile-input corpus (docs/reliability.md, "Hostile-input corpus"): oversized, truncated,
// mistyped, non-finite, deeply nested, invalid UTF-8, path-traversing and topic-injecting inputs
// on every channel the service reads from outside, each with its documented response:
//   MQTT   payloads and topics published to a real mosquitto, read by the built cyclecastd: the
//          reason label of cyclecast_rejected_total goes up by one and the `rejected` table says
//          why (docs/protocol.md);
//   HTTP   raw requests over TCP to that daemon's API: the documented status (docs/api.md);
//   serial lines into the built `cyclecast-node` on pipes: the ER answer or the discard counter
//          of its ST answer (docs/node-protocol.md); node answers into the gateway's parser;
//   CLI    the built `cyclecast` with bad arguments and files: exit code and message.
// After every case the process must still answer (a health request, a node ST, a parse).
// One daemon and one broker serve all MQTT and HTTP cases.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli_run.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/node_frames.h"
#include "ingest_harness.h"
#include "node_fixture.h"
#include "temp_dir.h"

extern char** environ;

namespace cyclecast::testing {
namespace {

using namespace std::chrono_literals;

enum class Channel { kMqtt, kHttp, kSerial, kNodeAnswer, kCli };

// One hostile input and its documented response. `target`: the MQTT topic, or the CLI's
// arguments ({dir} and {api} are replaced); `input`: the payload, raw request, line or file;
// `expected`: the rejection reason label (MQTT), status (HTTP), answer
// prefix or "discard:<counter>" (serial), "error" (node answers) or exit code (CLI); `says`: a
// part of the reason, body, answer or stderr.
struct Case {
  std::string name;
  Channel channel;
  std::string target;
  std::string input;
  std::string expected;
  std::string says;
};

constexpr const char* kToken = "hostile-test-token";
constexpr const char* kRig = "rig-h";
constexpr const char* kCell = "h1";
const std::string kCsvHeader =
    "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";

std::string cycles_topic(const std::string& cell) {
  return std::string("cyclecast/v1/rigs/") + kRig + "/cells/" + cell + "/cycles";
}
std::string meta_topic(const std::string& cell) {
  return std::string("cyclecast/v1/rigs/") + kRig + "/cells/" + cell + "/meta";
}

std::string get(const std::string& target, const std::string& headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
}
std::string post(const std::string& target, const std::string& headers, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         headers + "\r\n" + body;
}
std::string bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

std::string repeat(const std::string& piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i)
    out += piece;
  return out;
}

// An edge forecast of node n1 for the test's cell, as a gateway would publish it.
std::string edge_forecast(std::int64_t cycle, const std::string& model_version,
                          double soh_at_h = 0.9) {
  wire::EdgeForecast f;
  f.node = "n1";
  f.cell = kCell;
  f.cycle = cycle;
  f.model_version = model_version;
  f.model_sha256 = std::string(64, 'a');
  f.horizon = 20;
  f.soh_at_h = soh_at_h;
  f.received_at_ms = 1700000000000;
  return wire::serialize_edge_forecast(f);
}

std::vector<Case> mqtt_cases() {
  const std::string c = cycles_topic(kCell);
  const std::string deep = std::string(90000, '[') + std::string(90000, ']');
  return {
      {"mqtt.oversized_payload", Channel::kMqtt, c,
       "[" + std::string(300 * 1024, ' ') + "{\"cycle\": 1, \"qd_ah\": 1.0}]", "payload",
       "exceeds the limit"},
      {"mqtt.truncated_json", Channel::kMqtt, c, "[{\"cycle\": 5, \"qd_ah\": 1.0", "payload",
       "invalid JSON"},
      {"mqtt.top_level_string", Channel::kMqtt, c, "\"hello\"", "payload", "array"},
      {"mqtt.empty_array", Channel::kMqtt, c, "[]", "payload", "empty"},
      {"mqtt.wrong_field_type", Channel::kMqtt, c, "{\"cycle\": \"six\", \"qd_ah\": 1.0}", "record",
       "cycle"},
      {"mqtt.nan", Channel::kMqtt, c, "{\"cycle\": 7, \"qd_ah\": NaN}", "payload", "invalid JSON"},
      {"mqtt.infinity", Channel::kMqtt, c, "{\"cycle\": 8, \"qd_ah\": Infinity}", "payload",
       "invalid JSON"},
      {"mqtt.1e999", Channel::kMqtt, c, "{\"cycle\": 9, \"qd_ah\": 1e999}", "payload",
       "invalid JSON"},
      {"mqtt.deep_nesting", Channel::kMqtt, c, std::string(100000, '['), "payload", "JSON"},
      // Valid JSON 90,000 deep (about 180 kB): nlohmann's serialiser recursed once per level.
      {"mqtt.deep_metadata", Channel::kMqtt, meta_topic("h4"),
       "{\"rated_capacity_ah\": 1.1, \"metadata\": {\"x\": " + deep + "}}", "cell_meta",
       "nested deeper than 64 levels"},
      {"mqtt.deep_unknown_field", Channel::kMqtt, c,
       "{\"cycle\": 12, \"qd_ah\": 1.0, \"x\": " + deep + "}", "payload",
       "nested deeper than 64 levels"},
      {"mqtt.deep_array_element", Channel::kMqtt, c,
       "[{\"cycle\": 13, \"qd_ah\": 1.0}, " + deep + "]", "payload",
       "nested deeper than 64 levels"},
      {"mqtt.metadata_sqlite_deep", Channel::kMqtt, meta_topic("h5"),
       "{\"rated_capacity_ah\": 1.1, \"metadata\": " + repeat("{\"a\": ", 2000) + "1" +
           std::string(2000, '}') + "}",
       "cell_meta", "nested deeper than 64 levels"},
      {"mqtt.duplicate_key", Channel::kMqtt, c, "{\"cycle\": 14, \"qd_ah\": 1.0, \"qd_ah\": 1.1}",
       "payload", "duplicate key 'qd_ah'"},
      {"mqtt.nul_in_chemistry", Channel::kMqtt, meta_topic("h6"),
       "{\"rated_capacity_ah\": 1.1, \"chemistry\": \"LFP\\u0000x\"}", "cell_meta",
       "NUL character"},
      {"mqtt.edge_forecast_oversized", Channel::kMqtt, "cyclecast/v1/nodes/n1/forecasts",
       edge_forecast(20, std::string(5 * 1024 * 1024, 'v')), "edge_forecast",
       "exceeds the limit of 4096 bytes"},
      {"mqtt.edge_forecast_cycle_overflow", Channel::kMqtt, "cyclecast/v1/nodes/n1/forecasts",
       edge_forecast(9223372036854775807, "m1"), "edge_forecast", "'cycle' must be in"},
      {"mqtt.invalid_utf8_field", Channel::kMqtt, c,
       "{\"cycle\": 10, \"qd_ah\": 1.0, \"n\xff\xfe\": 1}", "payload", "invalid JSON"},
      {"mqtt.out_of_range", Channel::kMqtt, c, "{\"cycle\": 11, \"qd_ah\": 1070}", "record",
       "out of range"},
      {"mqtt.unknown_cell", Channel::kMqtt, cycles_topic("h-never-seen"),
       "{\"cycle\": 1, \"qd_ah\": 1.0}", "payload", "unknown cell"},
      {"mqtt.meta_wrong_type", Channel::kMqtt, meta_topic("h2"), "{\"rated_capacity_ah\": \"big\"}",
       "cell_meta", "rated_capacity_ah"},
      {"mqtt.meta_1e999", Channel::kMqtt, meta_topic("h3"), "{\"rated_capacity_ah\": 1e999}",
       "cell_meta", "JSON"},
      {"mqtt.topic_dotdot_cell", Channel::kMqtt, cycles_topic(".."), "{\"cycle\": 1, \"qd_ah\": 1}",
       "topic", "cell"},
      {"mqtt.topic_percent_traversal", Channel::kMqtt, cycles_topic("%2e%2e%2f"),
       "{\"cycle\": 1, \"qd_ah\": 1}", "topic", "cell"},
      {"mqtt.topic_long_cell", Channel::kMqtt, cycles_topic(std::string(300, 'x')),
       "{\"cycle\": 1, \"qd_ah\": 1}", "topic", "cell"},
      {"mqtt.topic_space_cell", Channel::kMqtt, cycles_topic("a b"), "{\"cycle\": 1, \"qd_ah\": 1}",
       "topic", "cell"},
      {"mqtt.topic_non_ascii_cell", Channel::kMqtt, cycles_topic("z\xc3\xa9ro"),
       "{\"cycle\": 1, \"qd_ah\": 1}", "topic", "cell"},
      {"mqtt.edge_forecast_garbage", Channel::kMqtt, "cyclecast/v1/nodes/n1/forecasts",
       "{\"node\": [[[[", "edge_forecast", ""},
      // Well-formed (the parser allows |SOH| <= 10) but no cell holds 1.7 times its rating.
      {"mqtt.edge_forecast_implausible", Channel::kMqtt, "cyclecast/v1/nodes/n1/forecasts",
       edge_forecast(30, "m1", 1.7), "edge_forecast",
       "implausible edge forecast of cell '" + std::string(kCell) +
           "' at cycle 30: SOH 1.7 at +H outside [0, 1.2]"},
      // Wildcards and NUL cannot be published at all (MQTT forbids them in a topic name): the
      // client refuses, the daemon never sees them and counts nothing.
      {"mqtt.topic_plus_cell", Channel::kMqtt, cycles_topic("a+b"), "{}", "unsent", ""},
      {"mqtt.topic_hash_cell", Channel::kMqtt, cycles_topic("#"), "{}", "unsent", ""},
  };
}

std::vector<Case> http_cases() {
  const std::string ok_auth = bearer(kToken);
  return {
      {"http.traversal_cell", Channel::kHttp, "", get("/api/v1/cells/..%2f..%2fetc%2fpasswd"),
       "400", "invalid cell id"},
      {"http.traversal_bundle_percent", Channel::kHttp, "",
       get("/api/v1/models/%2e%2e%2f%2e%2e%2fetc/bundle"), "400", "invalid model version"},
      {"http.traversal_bundle_dotdot", Channel::kHttp, "", get("/api/v1/models/../bundle"), "400",
       "invalid model version"},
      {"http.traversal_report", Channel::kHttp, "", get("/api/v1/runs/..%2f1/report"), "400",
       "invalid run id"},
      {"http.report_negative_run", Channel::kHttp, "", get("/api/v1/runs/-1/report"), "400",
       "invalid run id"},
      {"http.absolute_path_target", Channel::kHttp, "", get("//etc/passwd"), "404", "no such path"},
      {"http.absolute_form_target", Channel::kHttp, "", get("http://evil.example/api/v1/cells"),
       "400", "absolute path"},
      {"http.invalid_utf8_cell", Channel::kHttp, "", get("/api/v1/cells/%ff%fe"), "400",
       "invalid cell id"},
      {"http.nul_in_cell", Channel::kHttp, "", get("/api/v1/cells/a%00b"), "400",
       "invalid cell id"},
      {"http.bad_percent_escape", Channel::kHttp, "", get("/api/v1/cells/%zz"), "400",
       "percent escape"},
      {"http.topic_chars_in_cell", Channel::kHttp, "", get("/api/v1/cells/a%2B%23"), "400",
       "invalid cell id"},
      {"http.long_target", Channel::kHttp, "", get("/api/v1/cells/" + std::string(3000, 'a')),
       "414", "request target"},
      {"http.oversized_header", Channel::kHttp, "",
       get("/healthz", "X-Filler: " + std::string(20 * 1024, 'h') + "\r\n"), "431", "header"},
      {"http.oversized_body", Channel::kHttp, "",
       post("/api/v1/retrain", ok_auth, std::string(70 * 1024, '{')), "413", "body"},
      {"http.content_length_negative", Channel::kHttp, "",
       "POST /api/v1/retrain HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400",
       "malformed"},
      {"http.content_length_text", Channel::kHttp, "",
       "POST /api/v1/retrain HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400",
       "malformed"},
      {"http.content_length_huge", Channel::kHttp, "",
       "POST /api/v1/retrain HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
       "400", "malformed"},
      {"http.content_length_twice", Channel::kHttp, "",
       "POST /api/v1/retrain HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: "
       "3\r\n\r\n{}",
       "400", "malformed"},
      {"http.truncated_body", Channel::kHttp, "",
       "POST /api/v1/retrain HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"who\"", "400",
       "partial message"},
      {"http.truncated_header", Channel::kHttp, "", "GET /healthz HTTP/1.1\r\nHost: 127.0", "400",
       "partial message"},
      {"http.garbage_request_line", Channel::kHttp, "",
       std::string("\x01\x02\x03 nonsense\r\n\r\n"), "400", "malformed"},
      {"http.wrong_method_delete", Channel::kHttp, "",
       "DELETE /api/v1/cells HTTP/1.1\r\nHost: x\r\n\r\n", "405", "use GET"},
      {"http.wrong_method_post_health", Channel::kHttp, "", post("/healthz", "", ""), "405",
       "use GET"},
      {"http.head_not_served", Channel::kHttp, "", "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
       "405", ""},
      {"http.missing_token", Channel::kHttp, "", post("/api/v1/retrain", "", ""), "401",
       "authentication required"},
      {"http.wrong_token", Channel::kHttp, "", post("/api/v1/retrain", bearer("guess"), ""), "403",
       "invalid API token"},
      {"http.basic_auth", Channel::kHttp, "",
       post("/api/v1/retrain", "Authorization: Basic YWRtaW46YWRtaW4=\r\n", ""), "401",
       "authentication required"},
      {"http.deep_json_body", Channel::kHttp, "",
       post("/api/v1/rollback", ok_auth, std::string(60000, '[')), "400", ""},
      {"http.invalid_utf8_body", Channel::kHttp, "",
       post("/api/v1/rollback", ok_auth, "{\"who\": \"\xff\xfe\"}"), "400", ""},
      {"http.wrong_type_body", Channel::kHttp, "",
       post("/api/v1/rollback", ok_auth, "{\"who\": 1}"), "400", "who"},
      {"http.unknown_body_field", Channel::kHttp, "",
       post("/api/v1/rollback", ok_auth, "{\"whyy\": \"typo\"}"), "400", "unknown field"},
      {"http.traversal_promote", Channel::kHttp, "",
       post("/api/v1/models/..%2f..%2fetc/promote", ok_auth, ""), "400", "invalid model version"},
  };
}

// A request line for the node, '\n' included.
std::string node_frame(const std::string& body) {
  return wire::frame(body);
}
// An answer line from the node as the gateway's reader hands it over: without its '\n'.
std::string answer_line(const std::string& body) {
  std::string line = wire::frame(body);
  line.pop_back();
  return line;
}

std::vector<Case> serial_cases() {
  const std::string long_cell(65, 'c');
  return {
      {"serial.long_line", Channel::kSerial, "", std::string(300, 'x') + "\n", "discard:long", ""},
      {"serial.no_newline_100k", Channel::kSerial, "", std::string(100000, 'y') + "\n",
       "discard:long", ""},
      {"serial.binary_bytes", Channel::kSerial, "",
       std::string("cc1 ID 1") + '\0' + "\xff*00000000\n", "discard:bad", ""},
      {"serial.invalid_utf8", Channel::kSerial, "", "cc1 ID \xc3\xa9*00000000\n", "discard:bad",
       ""},
      {"serial.no_crc", Channel::kSerial, "", "cc1 ID 1\n", "discard:bad", ""},
      {"serial.wrong_crc", Channel::kSerial, "", "cc1 ID 1*00000000\n", "discard:crc", ""},
      {"serial.truncated_cycle", Channel::kSerial, "", node_frame("cc1 CY 5 b1c0 1"),
       "cc1 ER 5 field", ""},
      {"serial.wrong_type_cycle", Channel::kSerial, "", node_frame("cc1 CY 6 b1c0 one 1.0 - - -"),
       "cc1 ER 6 field", ""},
      {"serial.nan_soh", Channel::kSerial, "", node_frame("cc1 CY 7 b1c0 1 nan - - -"),
       "cc1 ER 7 field", ""},
      {"serial.inf_soh", Channel::kSerial, "", node_frame("cc1 CY 8 b1c0 1 inf - - -"),
       "cc1 ER 8 field", ""},
      {"serial.1e999_soh", Channel::kSerial, "", node_frame("cc1 CY 9 b1c0 1 1e999 - - -"),
       "cc1 ER 9 field", ""},
      {"serial.out_of_range_soh", Channel::kSerial, "", node_frame("cc1 CY 10 b1c0 1 3 - - -"),
       "cc1 ER 10 field", ""},
      {"serial.cell_with_slash", Channel::kSerial, "", node_frame("cc1 CY 11 a/b 1 1.0 - - -"),
       "cc1 ER 11 field", ""},
      {"serial.cell_with_wildcards", Channel::kSerial, "", node_frame("cc1 CY 12 +# 1 1.0 - - -"),
       "cc1 ER 12 field", ""},
      {"serial.cell_too_long", Channel::kSerial, "",
       node_frame("cc1 CY 13 " + long_cell + " 1 1.0 - - -"), "cc1 ER 13 field", ""},
      {"serial.extra_field", Channel::kSerial, "", node_frame("cc1 ID 14 extra"), "cc1 ER 14 field",
       ""},
      {"serial.answer_type_as_request", Channel::kSerial, "", node_frame("cc1 HI 15"),
       "cc1 ER 15 type", ""},
      {"serial.other_version", Channel::kSerial, "", node_frame("cc3 ID 16"), "cc1 ER 16 version",
       ""},
  };
}

std::vector<Case> node_answer_cases() {
  return {
      {"node.answer_bad_crc", Channel::kNodeAnswer, "", "cc1 OK 1 b1c0 1 1*00000000", "error", ""},
      {"node.answer_oversized", Channel::kNodeAnswer, "", answer_line(std::string(400, 'a')),
       "error", ""},
      {"node.answer_nan_forecast", Channel::kNodeAnswer, "",
       answer_line("cc1 FC 1 b1c0 5 v1 nan nan - 3"), "error", ""},
      {"node.answer_truncated", Channel::kNodeAnswer, "", answer_line("cc1 FC 1 b1c0"), "error",
       ""},
      {"node.answer_cell_injection", Channel::kNodeAnswer, "", answer_line("cc1 OK 1 a/+/# 1 1"),
       "error", ""},
      {"node.answer_v2_nan_bound", Channel::kNodeAnswer, "",
       answer_line("cc2 FC 1 b1c0 5 v1 0.99 0.95 - nan 0.995 0.94 0.96 - - 3"), "error", ""},
      {"node.answer_v2_bound_inside_out", Channel::kNodeAnswer, "",
       answer_line("cc2 FC 1 b1c0 5 v1 0.99 0.95 - 0.995 0.985 0.94 0.96 - - 3"), "error", ""},
  };
}

std::vector<Case> cli_cases() {
  const std::string import = "--db {dir}/cli.db import --rated-capacity-ah 1.1 {dir}/in.csv";
  const std::string row_tail = ",1.0,0.01,30,29,28,10\n";
  return {
      {"cli.nan_value", Channel::kCli, import, kCsvHeader + "c1,b,1,NaN" + row_tail, "3",
       "NaN is not a measurement"},
      {"cli.1e999_value", Channel::kCli, import, kCsvHeader + "c1,b,1,1e999" + row_tail, "3",
       "finite number"},
      {"cli.oversized_field", Channel::kCli, import,
       kCsvHeader + "c1,b,1," + std::string(1000000, '9') + row_tail, "3", "finite number"},
      {"cli.truncated_row", Channel::kCli, import, kCsvHeader + "c1,b,2,1.0", "3", "fields"},
      {"cli.wrong_type", Channel::kCli, import, kCsvHeader + "c1,b,one,1.0" + row_tail, "3",
       "cycle number"},
      {"cli.control_char_cell", Channel::kCli, import, kCsvHeader + "c\x01,b,1,1.0" + row_tail, "3",
       "cell_id"},
      {"cli.missing_file", Channel::kCli, "--db {dir}/cli.db import {dir}/absent.csv", "", "1",
       "cannot open"},
      {"cli.no_subcommand", Channel::kCli, "", "", "2", "cyclecast: a command is needed; one of: "},
      {"cli.unknown_subcommand", Channel::kCli, "frobnicate", "", "2",
       "cyclecast: unknown command 'frobnicate'; one of: "},
      {"cli.option_out_of_range", Channel::kCli,
       "--db {dir}/cli.db import --batch-rows 0 {dir}/in.csv", "", "2", "--batch-rows"},
      {"cli.bundle_not_an_archive", Channel::kCli, "bundle inspect {dir}/in.csv",
       "not a tar archive\n", "3", ""},
      {"cli.api_traversal_cell", Channel::kCli, "forecast ../../etc --api {api}", "", "1", "400"},
  };
}

// ---- HTTP over a raw socket ----

struct RawAnswer {
  int status = 0;  // 0: the connection closed without an answer (never expected)
  std::string text;
};

RawAnswer http_raw(int port, const std::string& request) {
  RawAnswer answer;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{10, 0};  // a guard against a hang, not a timing check
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return answer;
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server answered early and stopped reading: read its answer
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);  // no keep-alive: the server closes after its answer
  char buffer[4096];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    answer.text.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  if (answer.text.rfind("HTTP/1.1 ", 0) == 0) answer.status = std::atoi(answer.text.c_str() + 9);
  return answer;
}

// The value of `cyclecast_rejected_total{reason="REASON"}` in /metrics; -1 when absent.
long rejected_count(int port, const std::string& reason) {
  const std::string text = http_raw(port, get("/metrics")).text;
  const std::string key = "cyclecast_rejected_total{reason=\"" + reason + "\"} ";
  const auto at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::atol(text.c_str() + at + key.size());
}

// The value of `cyclecast_http_responses_total{code="CODE"}` in /metrics; 0 when absent (codes
// not sent yet are not listed).
long http_response_count(int port, const std::string& code) {
  const std::string text = http_raw(port, get("/metrics")).text;
  const std::string key = "cyclecast_http_responses_total{code=\"" + code + "\"} ";
  const auto at = text.find(key);
  return at == std::string::npos ? 0 : std::atol(text.c_str() + at + key.size());
}

bool answers_health(int port) {
  const int status = http_raw(port, get("/healthz")).status;
  return status == 200 || status == 503;  // 503: degraded (no champion yet), still serving
}

// Rows of the `rejected` table whose reason contains `says`.
long rejected_rows_saying(const std::filesystem::path& db, const std::string& says) {
  long n = 0;
  for (const auto& reason : rejected_reasons(db))
    if (reason.find(says) != std::string::npos) ++n;
  return n;
}

// ---- the virtual node on pipes ----

class NodeProcess {
 public:
  explicit NodeProcess(const std::filesystem::path& model) {
    int in[2], out[2];
    EXPECT_EQ(pipe(in), 0);
    EXPECT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const std::string binary = std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-node";
    const std::string model_text = model.string();
    std::vector<char*> argv = {const_cast<char*>(binary.c_str()), const_cast<char*>("--model"),
                               const_cast<char*>(model_text.c_str()), nullptr};
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~NodeProcess() {
    close(in_);
    close(out_);
    int status = 0;
    waitpid(pid_, &status, 0);  // end of input ends the node
  }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  bool send(const std::string& bytes) {
    return write(in_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // One answer line without its "*CRC"; empty after 10 s (a guard against a hang).
  std::string read_body() {
    std::string line;
    char c = 0;
    while (true) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 10000) <= 0 || read(out_, &c, 1) != 1) return "";
      if (c == '\n') break;
      line += c;
    }
    return line.substr(0, line.rfind('*'));
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
};

// The counter `name` of an ST answer body ("... crc=0 bad=1 ..."); -1 when absent.
long st_counter(const std::string& st, const std::string& name) {
  const auto at = st.find(" " + name + "=");
  if (at == std::string::npos) return -1;
  return std::atol(st.c_str() + at + name.size() + 2);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// ---- one daemon and broker for all MQTT and HTTP cases ----

class HostileDaemon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto token_file = dir_->path() / "token";
    std::ofstream(token_file) << kToken << "\n";
    chmod(token_file.c_str(), 0600);
    std::ofstream(dir_->path() / "cyclecastd.toml")
        << "[http]\ntoken_file = \"" << token_file.string() << "\"\n";
    broker_ = new Broker(dir_->path(), free_port());
    broker_->start();
    daemon_ = new DaemonProcess(dir_->path() / "state", broker_->port(),
                                dir_->path() / "cyclecastd.toml");
    daemon_->start();
    ASSERT_TRUE(eventually([] { return daemon_->api_port() > 0; }, 30s));
    // The cell the cycle cases are sent to, registered with one good record.
    ASSERT_TRUE(publish_raw(broker_->port(), meta_topic(kCell), "{\"rated_capacity_ah\": 1.1}"));
    ASSERT_TRUE(
        publish_raw(broker_->port(), cycles_topic(kCell), "{\"cycle\": 1, \"qd_ah\": 1.05}"));
    ASSERT_TRUE(eventually([] { return stored_cycle_count(daemon_->database()) == 1; }, 30s));
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete broker_;
    delete dir_;
  }

  static int api() { return daemon_->api_port(); }

  static TempDir* dir_;
  static Broker* broker_;
  static DaemonProcess* daemon_;
};
TempDir* HostileDaemon::dir_ = nullptr;
Broker* HostileDaemon::broker_ = nullptr;
DaemonProcess* HostileDaemon::daemon_ = nullptr;

TEST_F(HostileDaemon, MqttPayloadsAndTopicsAreRejectedAndCounted) {
  for (const Case& c : mqtt_cases()) {
    SCOPED_TRACE(c.name);
    if (c.expected == "unsent") {
      const long before = rejected_count(api(), "topic");
      EXPECT_FALSE(publish_raw(broker_->port(), c.target, c.input));
      EXPECT_EQ(rejected_count(api(), "topic"), before);
      EXPECT_TRUE(answers_health(api()));
      continue;
    }
    const long before = rejected_count(api(), c.expected);
    ASSERT_GE(before, 0) << "no counter for reason " << c.expected;
    const long rows_before = rejected_rows_saying(daemon_->database(), c.says);
    ASSERT_TRUE(publish_raw(broker_->port(), c.target, c.input));
    EXPECT_TRUE(eventually([&] { return rejected_count(api(), c.expected) == before + 1; }, 20s))
        << "counter " << c.expected << " is " << rejected_count(api(), c.expected);
    EXPECT_TRUE(eventually(
        [&] { return rejected_rows_saying(daemon_->database(), c.says) == rows_before + 1; }, 20s));
    EXPECT_TRUE(daemon_->running());
    EXPECT_TRUE(answers_health(api()));
  }
  EXPECT_EQ(stored_cycle_count(daemon_->database()), 1) << "no hostile record was stored";
}

TEST_F(HostileDaemon, HttpRequestsGetTheirDocumentedStatus) {
  for (const Case& c : http_cases()) {
    SCOPED_TRACE(c.name);
    const long before = http_response_count(api(), c.expected);
    const RawAnswer answer = http_raw(api(), c.input);
    EXPECT_EQ(std::to_string(answer.status), c.expected) << answer.text.substr(0, 300);
    // Counted once; 200s also count the /metrics reads themselves, and the count is taken
    // after the response went out, so it may lag the answer a little.
    const bool counted_once = c.expected != "200" && c.expected != "503";
    EXPECT_TRUE(eventually(
        [&] {
          const long after = http_response_count(api(), c.expected);
          return counted_once ? after == before + 1 : after > before;
        },
        5s))
        << "cyclecast_http_responses_total{code=\"" << c.expected << "\"} was " << before << ", is "
        << http_response_count(api(), c.expected);
    EXPECT_NE(answer.text.find(c.says), std::string::npos) << answer.text.substr(0, 300);
    EXPECT_TRUE(daemon_->running());
    EXPECT_TRUE(answers_health(api()));
  }
}

TEST_F(HostileDaemon, CliRefusesBadArgumentsAndFiles) {
  const TempDir dir;
  const std::string api_base = "http://127.0.0.1:" + std::to_string(api());
  for (const Case& c : cli_cases()) {
    SCOPED_TRACE(c.name);
    std::ofstream(dir.path() / "in.csv", std::ios::binary | std::ios::trunc) << c.input;
    std::string args = replace_all(c.target, "{dir}", dir.path().string());
    args = replace_all(args, "{api}", api_base);
    const CliRun run = run_cyclecast(dir, args);
    EXPECT_EQ(std::to_string(run.exit_code), c.expected) << run.err;
    EXPECT_NE(run.err.find(c.says), std::string::npos) << run.err;
  }
  EXPECT_TRUE(answers_health(api()));
}

// Writes an exported model of W 5, H 12, SOH only (the virtual node tests' model).
void write_node_model(const std::filesystem::path& dir) {
  const auto cells = generated_cells(2, 40, 4);
  pipeline::FeatureOptions options;
  options.input_len = 5;
  options.horizon = 12;
  options.use_optional_features = false;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  const auto student = random_student(spec, pipeline::make_windows(cells, spec, 2), 4, 8);
  ASSERT_TRUE(pipeline::write_exported_model(*pipeline::export_model(student, spec, "hx-1"), dir));
}

TEST(HostileSerial, NodeAnswersOrDiscardsAndCounts) {
  const TempDir dir;
  write_node_model(dir.path());
  NodeProcess node(dir.path() / "model.bin");
  ASSERT_EQ(node.read_body().substr(0, 10), "cc1 HI 0 1");
  std::uint32_t seq = 1000;
  const auto status = [&] {
    ++seq;
    EXPECT_TRUE(node.send(node_frame("cc1 ST " + std::to_string(seq))));
    return node.read_body();
  };
  std::string before = status();
  for (const Case& c : serial_cases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(node.send(c.input));
    if (c.expected.rfind("discard:", 0) == 0) {
      const std::string counter = c.expected.substr(8);
      const std::string after = status();  // no answer to the case: the next line is the ST
      ASSERT_EQ(after.substr(0, 6), "cc1 ST") << "the node answered a discarded line: " << after;
      EXPECT_EQ(st_counter(after, counter), st_counter(before, counter) + 1) << after;
      before = after;
      continue;
    }
    EXPECT_EQ(node.read_body(), c.expected);
    const std::string after = status();
    ASSERT_EQ(after.substr(0, 6), "cc1 ST") << "the node stopped answering";
    EXPECT_EQ(st_counter(after, "err"), st_counter(before, "err") + 1) << after;
    before = after;
  }
}

TEST(HostileSerial, GatewayRefusesHostileNodeAnswers) {
  for (const Case& c : node_answer_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(wire::parse_answer(c.input).ok());
  }
  // The parser still reads a good answer afterwards.
  EXPECT_TRUE(wire::parse_answer(answer_line("cc1 OK 1 b1c0 1 1")).ok());
}

TEST(HostileCorpus, HasAtLeastFortyCasesOnEveryChannel) {
  const std::size_t total = mqtt_cases().size() + http_cases().size() + serial_cases().size() +
                            node_answer_cases().size() + cli_cases().size();
  std::printf(
      "hostile-input corpus: %zu cases (mqtt %zu, http %zu, serial %zu, node answers "
      "%zu, cli %zu)\n",
      total, mqtt_cases().size(), http_cases().size(), serial_cases().size(),
      node_answer_cases().size(), cli_cases().size());
  EXPECT_GE(total, 40U);
}

}  // namespace
}  // namespace cyclecast::testing
