#include "http_fixture.h"

#include <sodium.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

namespace cyclecast::http::testing {

namespace fs = std::filesystem;
using cyclecast::testing::write_file;

namespace {

// The newest forecast (cycle 150) has a prediction interval whose upper bound stays above the
// end-of-life SOH within the horizon; the older ones have none (a model without a table).
json forecast_json(int at_cycle) {
  const bool with_interval = at_cycle == 150;
  const json interval = with_interval ? json{{"lower_10", 0.9012},
                                             {"upper_10", 0.9093},
                                             {"lower_100", 0.8401},
                                             {"upper_100", 0.8796}}
                                      : json(nullptr);
  const json eol = {{"eol_soh", 0.8},
                    {"earliest", with_interval ? json(598) : json(nullptr)},
                    {"expected", 612},
                    {"latest", nullptr}};
  return {{"at_cycle", at_cycle},
          {"model_version", "m-1"},
          {"origin", "host"},
          {"created_at", "2026-11-30T10:00:00Z"},
          {"soh_10", 0.9051},
          {"soh_100", 0.8623},
          {"eol_cycle", 612},
          {"error_10", nullptr},
          {"error_100", nullptr},
          {"interval", interval},
          {"eol", eol}};
}

json model_json(const std::string& version, const std::string& status, const std::string& sha256,
                std::size_t bytes) {
  return {
      {"version", version},
      {"status", status},
      {"created_at", "2026-11-29T08:00:00Z"},
      {"run", 1},
      {"metrics", {{"mae", 0.0123}, {"mae_10", 0.004}, {"mae_100", 0.021}}},
      {"footprint",
       {{"kind", "estimate"},
        {"flash_bytes", 20480},
        {"ram_bytes", 4096},
        {"cycles_per_forecast", 90000}}},
      {"bundle",
       {{"sha256", sha256}, {"bytes", bytes}, {"url", "/api/v1/models/" + version + "/bundle"}}},
      {"live_error", nullptr}};
}

// Every byte value, several times over: a download that mangles any byte shows.
std::string binary_bytes() {
  std::string bytes;
  for (int i = 0; i < 100000; ++i)
    bytes.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  return bytes;
}

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  std::string text;
  for (const unsigned char byte : digest) {
    static constexpr char kDigits[] = "0123456789abcdef";
    text += {kDigits[byte >> 4], kDigits[byte & 15]};
  }
  return text;
}

TestBackend::TestBackend(const fs::path& dir) {
  bundle_bytes = binary_bytes();
  report_html = "<!doctype html><html><body><h1>run 1</h1>\n<p>\xce\xbc = 0.01</p></body></html>\n";
  bundle_path = dir / "m-1.ccb";
  report_path = dir / "report.html";
  write_file(bundle_path, bundle_bytes);
  write_file(report_path, report_html);
  cells_json = json::array({{{"cell_id", "c1"},
                             {"rig_id", "rig-7"},
                             {"cycles", 150},
                             {"last_cycle", 150},
                             {"soh", 0.91234},
                             {"forecast", forecast_json(150)}},
                            {{"cell_id", "c2"},
                             {"rig_id", "rig-7"},
                             {"cycles", 12},
                             {"last_cycle", 12},
                             {"soh", 0.99},
                             {"forecast", nullptr}}});
  const std::string sha256 = sha256_hex(bundle_bytes);
  models_json = json::array({model_json("m-2", "candidate", sha256, bundle_bytes.size()),
                             model_json("m-1", "champion", sha256, bundle_bytes.size()),
                             model_json("m-bad", "candidate", std::string(64, '0'), 1)});
  runs_json = json::array({{{"id", 2},
                            {"trigger", "cycles"},
                            {"status", "running"},
                            {"stage", "distill"},
                            {"progress", 0.4},
                            {"started_at", "2026-11-30T09:00:00Z"},
                            {"finished_at", nullptr},
                            {"error", nullptr},
                            {"report_url", nullptr}},
                           {{"id", 1},
                            {"trigger", "manual"},
                            {"status", "succeeded"},
                            {"stage", "done"},
                            {"progress", 1.0},
                            {"started_at", "2026-11-29T07:00:00Z"},
                            {"finished_at", "2026-11-29T08:00:00Z"},
                            {"error", nullptr},
                            {"report_url", "/api/v1/runs/1/report"}}});
}

void TestBackend::record(std::string call) {
  std::lock_guard lock(mutex_);
  calls_.push_back(std::move(call));
}

std::vector<std::string> TestBackend::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

json TestBackend::health() {
  record("health");
  return {{"status", health_status}, {"problems", json::array()}, {"version", "test"}};
}

std::string TestBackend::metrics() {
  record("metrics");
  return "# TYPE cyclecast_cycles_stored_total counter\ncyclecast_cycles_stored_total 162\n";
}

Result<json> TestBackend::cells() {
  std::unique_lock lock(mutex_);
  calls_.push_back("cells");
  blocked_ = holding_;
  changed_.notify_all();
  changed_.wait(lock, [this] { return !holding_; });
  blocked_ = false;
  return cells_json;
}

Result<json> TestBackend::cell(const std::string& cell_id) {
  record("cell:" + cell_id);
  json forecasts = json::array();
  for (int i = 0; i < cell_forecasts; ++i)
    forecasts.push_back(forecast_json(150 - i));  // newest first, as the API gives them
  for (const auto& cell : cells_json) {
    if (cell["cell_id"] == cell_id) {
      return json{{"cell", cell},
                  {"cycles", json::array({{{"cycle", 149}, {"soh", 0.913}},
                                          {{"cycle", 150}, {"soh", 0.91234}}})},
                  {"forecasts", forecasts}};
    }
  }
  return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
}

Result<json> TestBackend::models() {
  record("models");
  return models_json;
}

Result<json> TestBackend::model(const std::string& version) {
  record("model:" + version);
  for (json model : models_json) {
    if (model["version"] != version) continue;
    model["events"] = json::array();
    if (version == "m-1") {  // registered, then promoted by hand a day later
      model["events"] = json::array({{{"at", "2026-11-29T08:00:00Z"},
                                      {"action", "registered"},
                                      {"actor", "scheduler"},
                                      {"reason", "run 1"}},
                                     {{"at", "2026-11-30T12:00:00Z"},
                                      {"action", "promoted"},
                                      {"actor", "ana@lab-3"},
                                      {"reason", "beats m-0 on the new cells"}}});
    }
    return model;
  }
  return make_error(ErrorCode::kNotFound, "no model '" + version + "'");
}

Result<fs::path> TestBackend::bundle_file(const std::string& version) {
  record("bundle:" + version);
  if (version == "m-1" || version == "m-2" || version == "m-bad") return bundle_path;
  return make_error(ErrorCode::kNotFound, "no bundle for model '" + version + "'");
}

Result<json> TestBackend::runs() {
  record("runs");
  return runs_json;
}

json TestBackend::started_run() {
  std::lock_guard lock(mutex_);
  const int look = ++started_run_looks_;
  json run = {{"id", 3},
              {"trigger", "manual"},
              {"requested_by", "tester"},
              {"status", "running"},
              {"started_at", "2026-11-30T09:00:00Z"},
              {"finished_at", nullptr},
              {"error", nullptr},
              {"report_url", nullptr},
              {"model_version", nullptr}};
  if (look == 1) {
    run.update({{"stage", "train"}, {"progress", 0.25}, {"detail", "epoch 3/12"}, {"eta_s", 90}});
  } else if (look == 2) {
    run.update({{"stage", "gate"}, {"progress", 0.9}, {"detail", "scoring"}, {"eta_s", 5}});
  } else if (started_run_fails) {
    run.update({{"status", "failed"},
                {"stage", "distill"},
                {"progress", nullptr},
                {"finished_at", "2026-11-30T09:05:00Z"},
                {"error", "out of memory"}});
  } else {
    run.update({{"status", "succeeded"},
                {"stage", "done"},
                {"progress", 1.0},
                {"finished_at", "2026-11-30T09:05:00Z"},
                {"report_url", "/api/v1/runs/3/report"},
                {"model_version", "m-2"}});
  }
  return run;
}

Result<json> TestBackend::run(std::int64_t id) {
  record("run:" + std::to_string(id));
  if (id == 3) return started_run();
  for (const auto& run : runs_json) {
    if (run["id"] == id) return run;
  }
  return make_error(ErrorCode::kNotFound, "no run " + std::to_string(id));
}

Result<fs::path> TestBackend::run_report(std::int64_t id) {
  record("report:" + std::to_string(id));
  if (id == 1) return report_path;
  return make_error(ErrorCode::kNotFound, "run " + std::to_string(id) + " has no report");
}

Result<json> TestBackend::nodes() {
  record("nodes");
  return nodes_json;
}

Result<json> TestBackend::retrain(const Caller& caller) {
  record("retrain:" + caller.who + ":" + caller.why);
  if (run_in_progress) return make_error(ErrorCode::kConflict, "run 2 is in progress");
  return json{{"id", 3}, {"trigger", "manual"}, {"status", "running"}, {"stage", "snapshot"}};
}

Result<json> TestBackend::promote(const std::string& version, const Caller& caller) {
  record("promote:" + version + ":" + caller.who + ":" + caller.why);
  if (version != "m-2") return make_error(ErrorCode::kNotFound, "no model '" + version + "'");
  return json{{"champion", "m-2"}, {"previous", "m-1"}};
}

Result<json> TestBackend::rollback(const Caller& caller) {
  record("rollback:" + caller.who + ":" + caller.why);
  return json{{"champion", "m-1"}, {"previous", "m-2"}};
}

Result<json> TestBackend::move_cell(const std::string& cell_id, const std::string& rig_id,
                                    const Caller& caller) {
  record("move:" + cell_id + ":" + rig_id + ":" + caller.who + ":" + caller.why);
  if (cell_id != "b2c7") return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
  return json{{"cell_id", cell_id}, {"rig_id", rig_id}, {"previous_rig_id", "rig-a"}};
}

void TestBackend::hold_cells() {
  std::lock_guard lock(mutex_);
  holding_ = true;
}

void TestBackend::wait_until_blocked() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return blocked_; });
}

void TestBackend::release_cells() {
  std::lock_guard lock(mutex_);
  holding_ = false;
  changed_.notify_all();
}

void HttpTest::start(ServerOptions options, const std::optional<std::string>& token,
                     int loop_threads) {
  options.address = "127.0.0.1";
  options.port = 0;
  if (token) {
    options.token_file = dir_ / "api-token";
    write_file(options.token_file, *token + "\n");
    fs::permissions(options.token_file, fs::perms::owner_read | fs::perms::owner_write);
  }
  server_ = std::make_unique<HttpServer>(io_, backend_, std::move(options));
  auto started = server_->start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_NE(server_->port(), 0);
  work_.emplace(io_.get_executor());
  for (int i = 0; i < loop_threads; ++i)
    threads_.emplace_back([this] { io_.run(); });
}

void HttpTest::TearDown() {
  backend_.release_cells();
  if (server_) server_->stop();
  work_.reset();
  io_.stop();
  for (auto& thread : threads_)
    thread.join();
  server_.reset();
}

std::string HttpTest::base_url() const {
  return "http://127.0.0.1:" + std::to_string(server_->port());
}

std::string RawResponse::header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (strcasecmp(key.c_str(), name.c_str()) == 0) return value;
  }
  return {};
}

RawConnection::RawConnection(std::uint16_t port) : socket_(io_) {
  socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  // A safety net against a hung test, not a timing assertion.
  timeval timeout{60, 0};
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
}

void RawConnection::send(const std::string& bytes) {
  boost::system::error_code ec;
  boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
}

namespace {

// Parses a complete response (Content-Length bodies only) at the start of `buffer`; nothing
// when more bytes are needed.
std::optional<std::pair<RawResponse, std::size_t>> parse_response(const std::string& buffer) {
  const std::size_t end = buffer.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  RawResponse response;
  std::size_t line_end = buffer.find("\r\n");
  const std::string status_line = buffer.substr(0, line_end);
  response.status = static_cast<unsigned>(std::stoul(status_line.substr(9, 3)));
  std::size_t length = 0;
  while (line_end < end) {
    const std::size_t next = buffer.find("\r\n", line_end + 2);
    const std::string line = buffer.substr(line_end + 2, next - line_end - 2);
    const std::size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (strcasecmp(name.c_str(), "content-length") == 0) length = std::stoul(value);
    response.headers.emplace_back(std::move(name), std::move(value));
    line_end = next;
  }
  if (buffer.size() < end + 4 + length) return std::nullopt;
  response.body = buffer.substr(end + 4, length);
  return std::make_pair(std::move(response), end + 4 + length);
}

}  // namespace

RawResponse RawConnection::receive() {
  while (true) {
    if (auto parsed = parse_response(buffer_)) {
      // An interim 100 Continue is not the answer.
      buffer_.erase(0, parsed->second);
      if (parsed->first.status != 100) return parsed->first;
      continue;
    }
    char chunk[4096];
    boost::system::error_code ec;
    const std::size_t got = socket_.read_some(boost::asio::buffer(chunk), ec);
    if (ec) return RawResponse{};
    buffer_.append(chunk, got);
  }
}

std::string request_text(const std::string& method, const std::string& target,
                         const std::string& extra_headers, const std::string& body) {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty()) text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return text + "\r\n" + body;
}

}  // namespace cyclecast::http::testing
