#include "api_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cyclecast/bounded_json.h"

namespace cyclecast::cli {

using nlohmann::json;

namespace {

// The token for mutating calls; empty when the file cannot be read (the API then answers 401,
// which is the message the operator needs).
std::string read_token(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  const auto last = token.find_last_not_of(" \t\r\n");
  token.erase(last == std::string::npos ? 0 : last + 1);
  return token;
}

void add_common_options(CLI::App& command, ApiFlags& flags) {
  command.add_option("--api", flags.api, "API base URL (env CYCLECAST_API)")->capture_default_str();
  command
      .add_option("--token-file", flags.token_file,
                  "bearer token for changes (env CYCLECAST_API_TOKEN_FILE)")
      ->capture_default_str();
  command.add_flag("--json", flags.json_output, "print the API's JSON (for scripts)");
}

}  // namespace

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

std::string path_segment(const std::string& text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += {'%', kDigits[byte >> 4], kDigits[byte & 15]};
    }
  }
  return out;
}

std::string who_am_i() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return env_or("USER", "unknown") + "@" + (host[0] != '\0' ? host : "localhost");
}

std::string text_of(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    std::ostringstream out;
    out << value.get<double>();
    return out.str();
  }
  return value.dump();
}

std::string fixed(const json& value, int decimals) {
  if (!value.is_number()) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value.get<double>());
  return buffer;
}

std::string soh_of(const json& value) {
  return fixed(value, 3);
}

// Times are ISO-8601 UTC strings in the API; a number is taken as Unix seconds.
std::string time_of(const json& value) {
  if (!value.is_number()) return text_of(value);
  const auto seconds = static_cast<std::time_t>(value.get<double>());
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

void print_fields(const json& object, const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    if (value.is_object() && !value.empty()) {
      print_fields(value, prefix + key + ".");
    } else {
      const bool is_time = key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0;
      std::cout << prefix << key << ": " << (is_time ? time_of(value) : text_of(value)) << '\n';
    }
  }
}

void print_json(const json& value) {
  std::cout << value.dump(2) << '\n';
}

bool Api::open(bool with_token) {
  http::ClientOptions options;
  options.base_url = flags_.api;
  if (with_token) options.token = read_token(flags_.token_file);
  token_missing_ = with_token && options.token.empty();
  auto client = http::ApiClient::create(std::move(options));
  if (!client) {
    std::cerr << "cyclecast: " << client.error().message << '\n';
    exit_code_ = kExitUsage;
    return false;
  }
  client_.emplace(std::move(*client));
  return true;
}

std::optional<json> Api::get(const std::string& path, bool any_status) {
  return answer(client_->get(path), any_status);
}

std::optional<json> Api::post(const std::string& path, const json& body) {
  return answer(client_->post(path, body), false);
}

int Api::fail(const Error& error) {
  std::cerr << "cyclecast: " << error.message << '\n';
  exit_code_ = error.code == ErrorCode::kIo ? kExitUnreachable : kExitApiError;
  return exit_code_;
}

int Api::fail(const http::Response& response) {
  std::cerr << "cyclecast: " << response.error_message() << " (HTTP " << response.status << ")\n";
  if (response.status == 401 && token_missing_) {
    std::cerr << "cyclecast: no token was read from " << flags_.token_file
              << " (--token-file or $CYCLECAST_API_TOKEN_FILE)\n";
  }
  exit_code_ = kExitApiError;
  return exit_code_;
}

std::optional<json> Api::answer(Result<http::Response> response, bool any_status) {
  if (!response) {
    fail(response.error());
    return std::nullopt;
  }
  if (!any_status && !response->ok()) {
    fail(*response);
    return std::nullopt;
  }
  // The client bounded the body's size (ClientOptions::max_response_bytes).
  auto parsed = parse_bounded_json(response->body, response->body.size());
  if (!parsed) {
    std::cerr << "cyclecast: the API answered something that is not JSON (HTTP " << response->status
              << "): " << parsed.error().message << "\n";
    exit_code_ = kExitApiError;
    return std::nullopt;
  }
  return std::move(*parsed);
}

json caller_body(const ApiFlags& flags) {
  json body{{"who", who_am_i()}};
  if (!flags.why.empty()) body["why"] = flags.why;
  return body;
}

// Registers `name` under `parent` with the common options and a callback running `run`.
CLI::App* add_api_command(CLI::App& parent, const std::string& name, const std::string& help,
                          const std::shared_ptr<ApiFlags>& flags, GlobalOptions& global,
                          int (*run)(const ApiFlags&)) {
  CLI::App* command = parent.add_subcommand(name, help);
  add_common_options(*command, *flags);
  command->callback([flags, &global, run] { global.exit_code = run(*flags); });
  return command;
}

}  // namespace cyclecast::cli
