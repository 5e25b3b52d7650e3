// What the operators' HTTP API asks of the daemon: cyclecastd implements ApiBackend, the server
// (server.h) maps requests to these calls and their results to HTTP. The JSON shapes each call
// returns are fixed in docs/api.md; the server passes them through unchanged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cyclecast/result.h"

namespace cyclecast::http {

// Who asked for a change and why, from the optional JSON body {"who": ..., "why": ...} of a
// mutating request; recorded by the backend with the change. `who` is "api" when not given,
// `why` is empty when not given. Both are validated by the server (printable, bounded length).
struct Caller {
  std::string who = "api";
  std::string why;
};

// Every method is called from the server's backend threads (several at once, and concurrently
// with the daemon's own threads): implementations must be thread-safe. Calls are synchronous and
// may take as long as they need; a slow call blocks only its own request.
//
// Errors map to HTTP statuses: kNotFound 404, kInvalidArgument and kParse 400, kConflict 409,
// anything else 500; the error's message becomes the body {"error": message}.
//
// Identifiers reaching the backend are already validated: cell ids and model versions match
// [A-Za-z0-9._-]{1,64} and do not start with '.', run ids are positive.
class ApiBackend {
 public:
  virtual ~ApiBackend() = default;

  // {"status": "ok" | "degraded", "problems": [string, ...], ...}; anything else the daemon
  // wants to add (version, uptime_s, ...) is passed through. "degraded" is served as 503.
  virtual nlohmann::json health() = 0;
  // Prometheus text exposition format (version 0.0.4), served as is.
  virtual std::string metrics() = 0;

  virtual Result<nlohmann::json> cells() = 0;                            // array
  virtual Result<nlohmann::json> cell(const std::string& cell_id) = 0;   // history + forecasts
  virtual Result<nlohmann::json> models() = 0;                           // array
  virtual Result<nlohmann::json> model(const std::string& version) = 0;  // object
  // The signed bundle file of a model; streamed as application/octet-stream.
  virtual Result<std::filesystem::path> bundle_file(const std::string& version) = 0;
  virtual Result<nlohmann::json> runs() = 0;                // array
  virtual Result<nlohmann::json> run(std::int64_t id) = 0;  // object
  // The run's report.html; served as text/html, as is.
  virtual Result<std::filesystem::path> run_report(std::int64_t id) = 0;
  virtual Result<nlohmann::json> nodes() = 0;  // array: the edge nodes that have forecast

  // Mutations (bearer token required). retrain: kConflict when a run is in progress.
  virtual Result<nlohmann::json> retrain(const Caller& caller) = 0;
  virtual Result<nlohmann::json> promote(const std::string& version, const Caller& caller) = 0;
  virtual Result<nlohmann::json> rollback(const Caller& caller) = 0;
  // Registers the cell to another rig (the body's "rig", validated like a cell id): a cell
  // belongs to the rig that registered it until an operator moves it. kNotFound: no such cell.
  virtual Result<nlohmann::json> move_cell(const std::string& cell_id, const std::string& rig_id,
                                           const Caller& caller) = 0;
};

}  // namespace cyclecast::http
