// cyclecastd's side of the operators' HTTP API (docs/api.md): answers the server's calls from the
// database (a short-lived connection per call, so concurrent calls never share one), the daemon's
// counters, the forecaster's and the model keeper's state. Thread-safe, as http::ApiBackend
// requires.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "checkpointer.h"
#include "cyclecast/http/backend.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"
#include "forecaster.h"
#include "metrics.h"
#include "model_keeper.h"
#include "node_statuses.h"

namespace cyclecast::daemon {

struct ApiSources {
  std::filesystem::path database;
  const DaemonMetrics* metrics = nullptr;
  ModelKeeper* keeper = nullptr;
  std::function<ForecasterStats()> forecaster_stats;
  std::int64_t started_at_ms = 0;
  std::function<WalStatus()> wal_status;
  // Called after a cell move committed, so that the daemon's cell cache follows (thread-safe).
  std::function<void(storage::CellInfo)> cell_moved;
  // The gateways' retained node statuses (null: none known).
  const NodeStatuses* node_statuses = nullptr;
  // The gateways' liveness, by the node each serves (null: none known).
  const GatewayStatuses* gateway_statuses = nullptr;
};

class DaemonApi : public http::ApiBackend {
 public:
  explicit DaemonApi(ApiSources sources) : sources_(std::move(sources)) {}

  nlohmann::json health() override;
  std::string metrics() override;
  Result<nlohmann::json> cells() override;
  Result<nlohmann::json> cell(const std::string& cell_id) override;
  Result<nlohmann::json> models() override;
  Result<nlohmann::json> model(const std::string& version) override;
  Result<std::filesystem::path> bundle_file(const std::string& version) override;
  Result<nlohmann::json> runs() override;
  Result<nlohmann::json> run(std::int64_t id) override;
  Result<std::filesystem::path> run_report(std::int64_t id) override;
  Result<nlohmann::json> nodes() override;
  Result<nlohmann::json> retrain(const http::Caller& caller) override;
  Result<nlohmann::json> promote(const std::string& version, const http::Caller& caller) override;
  Result<nlohmann::json> rollback(const http::Caller& caller) override;
  Result<nlohmann::json> move_cell(const std::string& cell_id, const std::string& rig_id,
                                   const http::Caller& caller) override;

 private:
  Result<storage::Database> open() const;
  static nlohmann::json model_json(const storage::ModelRecord& model,
                                   const std::vector<storage::LiveError>& live);
  nlohmann::json run_json(const storage::TrainingRunRecord& run) const;
  void render_model_metrics(std::string& out) const;

  ApiSources sources_;
};

}  // namespace cyclecast::daemon
