// What the API commands (api_command.cc, runs_command.cc) share: their options, the connection
// to cyclecastd's API with its exit codes (docs/api.md, "CLI"), and how JSON answers are printed.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "cyclecast/http/client.h"
#include "table.h"

namespace cyclecast::cli {

// Exit codes of the API commands: 0 ok, 1 the API answered with an error (or a run waited for
// failed), 2 bad command line, 3 the API could not be reached.
inline constexpr int kExitApiError = 1;
inline constexpr int kExitUnreachable = 3;

struct ApiFlags {
  std::string api;
  std::string token_file;
  bool json_output = false;
  std::string cell;
  std::string version;
  std::string out;
  std::string why;
  std::string rig;
  std::int64_t run_id = 0;
  std::int64_t last = 10;  // forecast --last: the newest N; 0 for all
  bool wait = false;       // retrain --wait
  bool open = false;       // runs report --open
  double poll_s = 1.0;     // retrain --wait: seconds between looks at the run
};

std::string env_or(const char* name, const char* fallback);
// Percent-encodes all but RFC 3986 unreserved characters, so any argument is one path segment.
std::string path_segment(const std::string& text);
std::string who_am_i();

// --- printing ----------------------------------------------------------------------------------
const nlohmann::json& field(const nlohmann::json& object, const char* key);
std::string text_of(const nlohmann::json& value);  // "-" for null
std::string fixed(const nlohmann::json& value, int decimals);
std::string soh_of(const nlohmann::json& value);   // three decimals
std::string time_of(const nlohmann::json& value);  // ISO-8601 UTC
// "key: value" lines, nested objects as dotted keys, arrays as JSON.
void print_fields(const nlohmann::json& object, const std::string& prefix = "");
void print_json(const nlohmann::json& value);

// One command's connection to the API and how its failures become exit codes.
class Api {
 public:
  explicit Api(const ApiFlags& flags) : flags_(flags) {}

  // False (with the exit code set) when the client cannot be made.
  bool open(bool with_token);
  // The JSON of a 2xx answer (any status when `any_status`); nothing, with the exit code set
  // and the reason printed, otherwise.
  std::optional<nlohmann::json> get(const std::string& path, bool any_status = false);
  std::optional<nlohmann::json> post(const std::string& path, const nlohmann::json& body);

  const http::ApiClient& client() const { return *client_; }
  int exit_code() const { return exit_code_; }
  int fail(const Error& error);
  int fail(const http::Response& response);

 private:
  std::optional<nlohmann::json> answer(Result<http::Response> response, bool any_status);

  const ApiFlags& flags_;
  std::optional<http::ApiClient> client_;
  bool token_missing_ = false;
  int exit_code_ = kExitOk;
};

// {"who": "$USER@host", "why": --why} of a change.
nlohmann::json caller_body(const ApiFlags& flags);

// Registers `name` under `parent` with the common options (--api, --token-file, --json) and a
// callback running `run`.
CLI::App* add_api_command(CLI::App& parent, const std::string& name, const std::string& help,
                          const std::shared_ptr<ApiFlags>& flags, GlobalOptions& global,
                          int (*run)(const ApiFlags&));

// `cyclecast runs list|show|report` and `cyclecast retrain [--wait]` (runs_command.cc).
void add_run_commands(CLI::App& app, const std::shared_ptr<ApiFlags>& flags, GlobalOptions& global);

}  // namespace cyclecast::cli
