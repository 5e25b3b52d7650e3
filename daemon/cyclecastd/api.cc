#include "api.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <spdlog/spdlog.h>

#include "cyclecast/bounded_json.h"
#include "cyclecast/pipeline/simulate.h"
#include "cyclecast/storage/registry.h"
#include "cyclecast/wire/protocol.h"
#include "plausibility.h"
#include "process_metrics.h"

namespace cyclecast::daemon {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::int64_t kCellCycles = 1000;    // a cell's history: the latest cycles
constexpr std::int64_t kCellForecasts = 100;  // and forecasts
constexpr std::int64_t kRuns = 100;
// A node whose newest forecast is younger than this is "active" in /api/v1/nodes.
constexpr std::int64_t kNodeActiveMs = 10 * 60 * 1000;

Json time_or_null(std::int64_t ms) {
  return ms > 0 ? Json(pipeline::format_utc_iso8601(ms)) : Json(nullptr);
}

Json number_or_null(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

Json text_or_null(const std::string& text) {
  return text.empty() ? Json(nullptr) : Json(text);
}

Json object_of(const std::string& json_text) {
  // Stored text, but metadata older than the nesting limit may fail it: then it is left out.
  auto parsed = parse_bounded_json(json_text, json_text.size());
  return parsed && parsed->is_object() ? std::move(*parsed) : Json::object();
}

// "host", or "edge" for "edge:<node>" (the node then goes in "node").
std::pair<std::string, std::string> origin_and_node(const std::string& origin) {
  constexpr std::string_view kEdge = "edge:";
  if (origin.rfind(kEdge, 0) == 0) return {"edge", origin.substr(kEdge.size())};
  return {origin, ""};
}

Json cycle_or_null(std::optional<std::int64_t> cycle) {
  return cycle ? Json(*cycle) : Json(nullptr);
}

// The prediction interval at +10 and +H; null when the forecast has none (a model without an
// interval table, an edge forecast).
Json interval_json(const storage::ForecastRecord& f) {
  if (f.lower.empty() || f.lower.size() != f.soh.size() || f.upper.size() != f.soh.size())
    return nullptr;
  const auto at = [](const std::vector<float>& v, std::size_t step) {
    return v.size() >= step ? number_or_null(v[step - 1]) : Json(nullptr);
  };
  return {{"lower_10", at(f.lower, 10)},
          {"upper_10", at(f.upper, 10)},
          {"lower_100", number_or_null(f.lower.back())},
          {"upper_100", number_or_null(f.upper.back())}};
}

// The end-of-life cycle at the cell's threshold with its interval
// (protocol::forecast_eol_interval): null where a curve does not cross within the horizon, earliest
// and latest null without an interval.
Json eol_json(const storage::ForecastRecord& f, double eol_soh) {
  const protocol::ForecastEol eol = protocol::forecast_eol_interval(f, eol_soh);
  return {{"eol_soh", eol_soh},
          {"earliest", cycle_or_null(eol.earliest)},
          {"expected", cycle_or_null(eol.expected)},
          {"latest", cycle_or_null(eol.latest)}};
}

Json forecast_json(const storage::ForecastRecord& f, bool with_errors, double eol_soh) {
  const auto [origin, node] = origin_and_node(f.origin);
  const auto eol = protocol::forecast_eol_cycle(f);
  Json j = {{"at_cycle", f.at_cycle},
            {"model_version", f.model_version},
            {"origin", origin},
            {"created_at", time_or_null(f.created_at_ms)},
            {"soh_10", f.soh.size() >= 10 ? number_or_null(f.soh[9]) : Json(nullptr)},
            {"soh_100", f.soh.empty() ? Json(nullptr) : number_or_null(f.soh.back())},
            {"eol_cycle", eol ? Json(*eol) : Json(nullptr)},
            {"interval", interval_json(f)},
            {"eol", eol_json(f, eol_soh)}};
  if (!node.empty()) j["node"] = node;
  if (with_errors) {
    j["error_10"] = number_or_null(std::abs(f.error_10));
    j["error_100"] = number_or_null(std::abs(f.error_h));
  }
  return j;
}

double soh_of(const storage::CycleRecord& cycle, double rated_capacity_ah) {
  return rated_capacity_ah > 0 ? cycle.discharge_capacity_ah / rated_capacity_ah : std::nan("");
}

// Past end of life (plausibility.h): the forecaster no longer forecasts such a cell.
Json end_of_life_json(const EndOfLife& eol) {
  return {
      {"past", eol.past}, {"median_soh", number_or_null(eol.median_soh)}, {"eol_soh", eol.eol_soh}};
}

Result<Json> cell_summary(storage::Database& db, const storage::CellSummary& cell) {
  Json j = {{"cell_id", cell.info.cell_id},
            {"rig_id", text_or_null(cell.info.rig_id)},
            {"cycles", cell.cycles},
            {"last_cycle", cell.cycles > 0 ? Json(cell.last_cycle) : Json(nullptr)},
            {"soh", nullptr},
            {"forecast", nullptr}};
  std::vector<double> recent_soh;
  if (cell.cycles > 0) {
    auto last = db.recent_cycles(cell.info.cell_id, cell.last_cycle,
                                 static_cast<std::int64_t>(kEolMedianCycles));
    if (!last) return last.error();
    if (!last->empty())
      j["soh"] = number_or_null(soh_of(last->back(), cell.info.rated_capacity_ah));
    for (const auto& c : *last)
      recent_soh.push_back(soh_of(c, cell.info.rated_capacity_ah));
  }
  j["end_of_life"] = end_of_life_json(end_of_life(recent_soh, eol_soh_of(cell.info)));
  auto forecast = db.recent_forecasts(cell.info.cell_id, 1);
  if (!forecast) return forecast.error();
  if (!forecast->empty())
    j["forecast"] = forecast_json(forecast->front(), false, eol_soh_of(cell.info));
  return j;
}

// live_error of one model version: overall and by origin ("host", "edge"), null when nothing of
// it was scored.
Json live_error_json(const std::string& version, const std::vector<storage::LiveError>& all) {
  struct Sum {
    std::int64_t n10 = 0, nh = 0;
    double s10 = 0, sh = 0;
    void add(const storage::LiveError& e) {
      if (e.scored_10 > 0) n10 += e.scored_10, s10 += e.mae_10 * static_cast<double>(e.scored_10);
      if (e.scored_h > 0) nh += e.scored_h, sh += e.mae_h * static_cast<double>(e.scored_h);
    }
    Json json() const {
      return {{"mae_10", n10 > 0 ? Json(s10 / static_cast<double>(n10)) : Json(nullptr)},
              {"mae_100", nh > 0 ? Json(sh / static_cast<double>(nh)) : Json(nullptr)},
              {"scored", std::max(n10, nh)}};
    }
  };
  Sum total;
  std::map<std::string, Sum> by_origin;
  for (const auto& e : all) {
    if (e.model_version != version) continue;
    total.add(e);
    by_origin[origin_and_node(e.origin).first].add(e);
  }
  if (total.n10 == 0 && total.nh == 0) return nullptr;
  Json j = total.json();
  j["by_origin"] = Json::object();
  for (const auto& [origin, sum] : by_origin) {
    if (sum.n10 > 0 || sum.nh > 0) j["by_origin"][origin] = sum.json();
  }
  return j;
}

Json drift_json(const DriftState& d) {
  return {{"model_version", d.model_version},
          {"heldout_mae_100", d.heldout_mae},
          {"threshold", d.threshold},
          {"samples", d.samples},
          {"mean_error_ratio", d.mean_ratio},
          {"statistic", d.statistic},
          {"peak_statistic", d.peak_statistic},
          {"detected", d.detected},
          {"detected_at", time_or_null(d.detected_at_ms)},
          {"detected_cell", text_or_null(d.detected_cell)},
          {"detected_cycle", d.detected ? Json(d.detected_cycle) : Json(nullptr)},
          {"detected_band", text_or_null(d.detected_band)},
          {"retrain_run", d.retrain_run > 0 ? Json(d.retrain_run) : Json(nullptr)},
          {"retrain_pending", d.retrain_pending}};
}

}  // namespace

Result<storage::Database> DaemonApi::open() const {
  storage::OpenOptions options;
  options.create_if_missing = false;
  return storage::Database::open(sources_.database, options);
}

Json DaemonApi::health() {
  Json problems = Json::array();
  const DaemonMetrics& m = *sources_.metrics;
  if (!m.mqtt_connected) problems.push_back("broker disconnected: nothing is being ingested");
  if (m.storage_full) {
    problems.push_back(
        "database full (disk full or storage.max_size_mb reached): records are not confirmed");
  } else if (m.last_commit_failed) {
    problems.push_back("commits are failing: records are not confirmed (see the log)");
  }
  if (const WalStatus wal = sources_.wal_status(); wal.blocked_too_long) {
    problems.push_back("a reader has kept WAL checkpoints from finishing for " +
                       std::to_string(wal.blocked_ms / 1000) + " s; the WAL is " +
                       std::to_string(wal.wal_bytes / (1024 * 1024)) +
                       " MiB and grows until that read transaction ends");
  }
  const ForecasterStats forecaster = sources_.forecaster_stats();
  if (!forecaster.last_error.empty()) problems.push_back("forecaster: " + forecaster.last_error);
  const KeeperStatus keeper = sources_.keeper->status();
  if (!keeper.champion_error.empty()) problems.push_back(keeper.champion_error);
  if (keeper.live_error && keeper.live_error->alert) {
    const LiveErrorState& e = *keeper.live_error;
    problems.push_back("champion " + e.model_version + ": live error at +100 " +
                       std::to_string(e.live_mae) + " over its threshold " +
                       std::to_string(e.threshold));
  }
  if (keeper.drift && keeper.drift->detected) {
    const DriftState& d = *keeper.drift;
    problems.push_back(
        "champion " + d.model_version + ": its live errors drifted up (Page-Hinkley statistic " +
        std::to_string(d.statistic) + " over " + std::to_string(d.threshold) + " after " +
        std::to_string(d.detected_samples) + " forecasts, in SOH band " + d.detected_band +
        ", first on cell " + d.detected_cell + " at cycle " + std::to_string(d.detected_cycle) +
        ")" +
        (d.retrain_run > 0   ? "; retraining run " + std::to_string(d.retrain_run) + " started"
         : d.retrain_pending ? "; a retraining run starts once enough new cycles are stored "
                               "(alerts.drift_retrain_after_cycles)"
                             : "; no retraining run started (alerts.drift_retrain, or a run's "
                               "gap)"));
  }
  const std::uint64_t implausible = forecaster.implausible + m.edge_forecasts_implausible;
  return {{"status", problems.empty() ? "ok" : "degraded"},
          {"problems", problems},
          {"uptime_s", (storage::now_ms() - sources_.started_at_ms) / 1000},
          {"champion", text_or_null(keeper.champion)},
          {"retraining", sources_.keeper->retrainer().running()},
          {"drift", keeper.drift ? drift_json(*keeper.drift) : Json(nullptr)},
          {"forecasts_refused",
           {{"implausible",
             {{"host", forecaster.implausible}, {"edge", m.edge_forecasts_implausible.load()}}},
            {"past_end_of_life", forecaster.past_end_of_life},
            {"last_implausible",
             implausible > 0 ? text_or_null(forecaster.last_implausible) : Json(nullptr)}}}};
}

Result<Json> DaemonApi::cells() {
  auto db = open();
  if (!db) return db.error();
  auto all = db->cells();
  if (!all) return all.error();
  Json out = Json::array();
  for (const auto& cell : *all) {
    auto summary = cell_summary(*db, cell);
    if (!summary) return summary.error();
    out.push_back(std::move(*summary));
  }
  return out;
}

Result<Json> DaemonApi::cell(const std::string& cell_id) {
  auto db = open();
  if (!db) return db.error();
  auto one = db->cell_summary(cell_id);
  if (!one) return one.error();
  if (!*one) return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
  const storage::CellSummary* found = &**one;
  auto summary = cell_summary(*db, *found);
  if (!summary) return summary.error();
  auto cycles = db->recent_cycles(cell_id, found->last_cycle, kCellCycles);
  auto forecasts = db->recent_forecasts(cell_id, kCellForecasts);
  if (!cycles) return cycles.error();
  if (!forecasts) return forecasts.error();
  Json cycle_list = Json::array();
  for (const auto& c : *cycles) {
    Json j = {{"cycle", c.cycle},
              {"soh", number_or_null(soh_of(c, found->info.rated_capacity_ah))}};
    if (c.internal_resistance_ohm) j["internal_resistance_ohm"] = *c.internal_resistance_ohm;
    if (c.temperature_max_c) j["temperature_max_c"] = *c.temperature_max_c;
    if (c.charge_time_min) j["charge_time_s"] = *c.charge_time_min * 60.0;
    cycle_list.push_back(std::move(j));
  }
  Json forecast_list = Json::array();
  for (const auto& f : *forecasts)
    forecast_list.push_back(forecast_json(f, true, eol_soh_of(found->info)));
  Json note = nullptr;
  if (const Json& eol = (*summary)["end_of_life"]; eol["past"] == true) {
    note = "past end of life (median SOH of the last " + std::to_string(kEolMedianCycles) +
           " cycles under " + eol["eol_soh"].dump() +
           "): its cycles are no longer forecast, a forecast would only extrapolate the fade "
           "toward zero";
  } else if (forecasts->empty()) {
    const std::string champion = sources_.keeper->status().champion;
    note = champion.empty() ? "no champion model yet: nothing is forecast until a run promotes one"
                            : "not forecast yet: a cell is forecast from the cycles that arrive "
                              "after the champion was loaded, once it has enough history";
  }
  return Json{{"cell", std::move(*summary)},
              {"cycles", std::move(cycle_list)},
              {"forecasts", std::move(forecast_list)},
              {"note", note}};
}

Json DaemonApi::model_json(const storage::ModelRecord& model,
                           const std::vector<storage::LiveError>& live) {
  Json bundle = nullptr;
  if (!model.bundle_path.empty()) {
    bundle = {{"sha256", model.bundle_sha256},
              {"bytes", model.bundle_bytes},
              {"url", "/api/v1/models/" + model.version + "/bundle"}};
  }
  return Json{{"version", model.version},
              {"status", storage::model_status_name(model.status)},
              {"status_reason", text_or_null(model.status_reason)},
              {"created_at", time_or_null(model.created_at_ms)},
              {"run", model.run_id > 0 ? Json(model.run_id) : Json(nullptr)},
              {"metrics", object_of(model.metrics_json)},
              {"footprint", object_of(model.footprint_json)},
              {"bundle", bundle},
              {"live_error", live_error_json(model.version, live)}};
}

Result<Json> DaemonApi::models() {
  auto db = open();
  if (!db) return db.error();
  auto all = storage::list_models(*db);
  auto live = db->live_errors();
  if (!all) return all.error();
  if (!live) return live.error();
  Json out = Json::array();
  for (const auto& m : *all) {
    out.push_back(model_json(m, *live));
  }
  return out;
}

Result<Json> DaemonApi::model(const std::string& version) {
  auto db = open();
  if (!db) return db.error();
  auto found = storage::get_model(*db, version);
  if (!found) return found.error();
  auto live = db->live_errors();
  auto events = storage::events_of(*db, version);
  if (!live) return live.error();
  if (!events) return events.error();
  Json j = model_json(*found, *live);
  j["lineage"] = object_of(found->lineage_json);
  Json event_list = Json::array();
  for (const auto& e : *events) {
    Json event = {{"at", time_or_null(e.at_ms)},
                  {"action", e.action},
                  {"actor", e.actor},
                  {"reason", e.reason}};
    // The figures of a drift_detected event (statistic, samples, ...); other events have none.
    if (Json detail = object_of(e.detail_json); !detail.empty()) event["detail"] = detail;
    event_list.push_back(std::move(event));
  }
  j["events"] = std::move(event_list);
  return j;
}

Result<fs::path> DaemonApi::bundle_file(const std::string& version) {
  auto db = open();
  if (!db) return db.error();
  auto found = storage::get_model(*db, version);
  if (!found) return found.error();
  std::error_code ec;
  if (found->bundle_path.empty() || !fs::is_regular_file(found->bundle_path, ec)) {
    return make_error(ErrorCode::kNotFound, "model '" + version + "' has no bundle file");
  }
  return fs::path(found->bundle_path);
}

namespace {

// The run's report.html: in its training directory, else with the model it registered.
fs::path report_of(const storage::TrainingRunRecord& run, const fs::path& state_dir) {
  std::error_code ec;
  if (!run.out_dir.empty() && fs::is_regular_file(fs::path(run.out_dir) / "report.html", ec)) {
    return fs::path(run.out_dir) / "report.html";
  }
  const Json summary = object_of(run.summary_json);
  if (summary.contains("model_version") && summary["model_version"].is_string()) {
    const fs::path kept =
        state_dir / "models" / summary["model_version"].get<std::string>() / "report.html";
    if (fs::is_regular_file(kept, ec)) return kept;
  }
  return {};
}

}  // namespace

Json DaemonApi::run_json(const storage::TrainingRunRecord& r) const {
  const auto progress = sources_.keeper->retrainer().progress();
  const bool live = progress && progress->run_id == r.id;
  Json fraction = nullptr;
  if (live) fraction = progress->overall_fraction;
  if (r.status == storage::RunStatus::kSucceeded) fraction = 1.0;
  const Json summary = object_of(r.summary_json);
  Json model_version = nullptr;
  if (summary.contains("model_version") && summary["model_version"].is_string() &&
      !summary["model_version"].get<std::string>().empty()) {
    model_version = summary["model_version"];
  }
  const bool has_report = !report_of(r, sources_.keeper->retrainer().config().state_dir).empty();
  Json j = {{"id", r.id},
            {"trigger", r.trigger},
            {"requested_by", r.requested_by},
            {"status", storage::run_status_name(r.status)},
            {"stage", live ? progress->stage : r.stage},
            {"progress", fraction},
            {"started_at", time_or_null(r.started_at_ms)},
            {"finished_at", time_or_null(r.finished_at_ms)},
            {"error", text_or_null(r.error)},
            {"report_url",
             has_report ? Json("/api/v1/runs/" + std::to_string(r.id) + "/report") : Json(nullptr)},
            {"model_version", model_version}};
  if (live) {
    j["detail"] = progress->detail;
    j["eta_s"] = number_or_null(progress->eta_s);
    j["worker"] = text_or_null(progress->worker);
  }
  return j;
}

Result<Json> DaemonApi::runs() {
  auto db = open();
  if (!db) return db.error();
  auto all = storage::list_runs(*db, kRuns);
  if (!all) return all.error();
  Json out = Json::array();
  for (const auto& r : *all) {
    out.push_back(run_json(r));
  }
  return out;
}

Result<Json> DaemonApi::run(std::int64_t id) {
  auto db = open();
  if (!db) return db.error();
  auto found = storage::get_run(*db, id);
  if (!found) return found.error();
  Json j = run_json(*found);
  Json snapshot = nullptr;
  if (!found->snapshot.sha256.empty()) {
    snapshot = {{"sha256", found->snapshot.sha256},
                {"cells", found->snapshot.cells},
                {"cycles", found->snapshot.cycles}};
  }
  j["snapshot"] = snapshot;
  j["config"] = object_of(found->config_json);
  j["summary"] = object_of(found->summary_json);
  return j;
}

Result<fs::path> DaemonApi::run_report(std::int64_t id) {
  auto db = open();
  if (!db) return db.error();
  auto found = storage::get_run(*db, id);
  if (!found) return found.error();
  fs::path report = report_of(*found, sources_.keeper->retrainer().config().state_dir);
  if (report.empty()) {
    return make_error(ErrorCode::kNotFound, "run " + std::to_string(id) + " has no report");
  }
  return report;
}

namespace {
// A gateway's liveness as /api/v1/nodes shows it (docs/api.md, "Nodes").
Json liveness_json(const GatewayLiveness& g) {
  return {{"client_id", g.status.client_id},
          {"state", g.status.state},
          {"start_id", text_or_null(g.status.start_id)},
          {"since", time_or_null(g.since_ms)},
          {"last_seen", time_or_null(g.last_seen_ms)}};
}
}  // namespace

// A node as its forecasts show it, then as its gateway's retained status says (which wins for
// state and model); docs/api.md, "Nodes".
Result<Json> DaemonApi::nodes() {
  auto db = open();
  if (!db) return db.error();
  auto stored = db->edge_nodes();
  if (!stored) return stored.error();
  struct Node {
    Json json;
    std::int64_t last_seen_ms = 0;
  };
  std::map<std::string, Node> by_node;
  const std::int64_t now = storage::now_ms();
  for (const auto& n : *stored) {
    by_node[n.node] = {{{"node", n.node},
                        {"state", now - n.last_seen_ms <= kNodeActiveMs ? "active" : "silent"},
                        {"model_version", text_or_null(n.model_version)},
                        {"forecasts", n.forecasts},
                        {"cells", n.cells},
                        {"gateway", nullptr}},
                       n.last_seen_ms};
  }
  const auto statuses =
      sources_.node_statuses ? sources_.node_statuses->all() : std::vector<wire::NodeStatus>{};
  for (const auto& s : statuses) {
    Node& node = by_node[s.node];
    if (node.json.is_null()) {
      node.json = {{"node", s.node}, {"model_version", nullptr}, {"forecasts", 0}, {"cells", 0}};
    }
    node.json["state"] = s.state;
    if (!s.model_version.empty()) node.json["model_version"] = s.model_version;
    node.last_seen_ms = std::max(node.last_seen_ms, s.last_seen_ms);
    node.json["gateway"] = {{"forecasts", s.forecasts},
                            {"queued", s.queued},
                            {"resets", s.resets},
                            {"timeouts", s.timeouts},
                            {"reopens", s.reopens},
                            {"garbage_lines", s.garbage_lines},
                            {"dropped_records", s.dropped_records}};
  }
  const auto gateways =
      sources_.gateway_statuses ? sources_.gateway_statuses->all() : std::vector<GatewayLiveness>{};
  for (const auto& g : gateways) {
    Node& node = by_node[g.status.node];
    if (node.json.is_null()) {
      node.json = {{"node", g.status.node},
                   {"state", g.status.state},
                   {"model_version", nullptr},
                   {"forecasts", 0},
                   {"cells", 0},
                   {"gateway", nullptr}};
    }
    // A killed gateway leaves its node's last status ("online") retained; its last will says
    // better.
    if (g.status.state == "offline") node.json["state"] = "offline";
    node.json["liveness"] = liveness_json(g);
  }
  Json out = Json::array();
  for (auto& [id, node] : by_node) {
    if (!node.json.contains("liveness")) node.json["liveness"] = nullptr;
    node.json["last_seen"] = time_or_null(node.last_seen_ms);
    out.push_back(std::move(node.json));
  }
  return out;
}

Result<Json> DaemonApi::retrain(const http::Caller& caller) {
  auto id = sources_.keeper->retrain("manual", caller.who);
  if (!id) {
    if (id.error().code == ErrorCode::kConflict) {
      return make_error(ErrorCode::kConflict, "a retraining run is already in progress");
    }
    return id.error();
  }
  auto db = open();
  if (!db) return db.error();
  auto started = storage::get_run(*db, *id);
  if (!started) return started.error();
  return run_json(*started);
}

Result<Json> DaemonApi::promote(const std::string& version, const http::Caller& caller) {
  auto db = open();
  if (!db) return db.error();
  auto before = storage::champion(*db);
  if (!before) return before.error();
  const std::string why = caller.why.empty() ? "promoted by hand" : caller.why;
  if (auto done = storage::promote(*db, version, caller.who, why); !done) {
    return done.error();
  }
  sources_.keeper->champion_changed();
  return Json{{"champion", version},
              {"previous", *before ? Json((*before)->version) : Json(nullptr)}};
}

Result<Json> DaemonApi::rollback(const http::Caller& caller) {
  auto db = open();
  if (!db) return db.error();
  auto before = storage::champion(*db);
  if (!before) return before.error();
  const std::string why = caller.why.empty() ? "rolled back by hand" : caller.why;
  auto now = storage::rollback(*db, caller.who, why);
  if (!now) return now.error();
  sources_.keeper->champion_changed();
  return Json{{"champion", *now}, {"previous", *before ? Json((*before)->version) : Json(nullptr)}};
}

Result<Json> DaemonApi::move_cell(const std::string& cell_id, const std::string& rig_id,
                                  const http::Caller& caller) {
  auto db = open();
  if (!db) return db.error();
  auto before = db->find_cell(cell_id);
  if (!before) return before.error();
  if (!*before) return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
  auto moved = db->move_cell(cell_id, rig_id);
  if (!moved) return moved.error();
  spdlog::info("api: cell {} moved from rig {} to rig {} by {}{}{}", cell_id,
               (*before)->rig_id.empty() ? "(none)" : (*before)->rig_id, rig_id, caller.who,
               caller.why.empty() ? "" : ": ", caller.why);
  sources_.cell_moved(*moved);
  return Json{{"cell_id", cell_id},
              {"rig_id", rig_id},
              {"previous_rig_id", text_or_null((*before)->rig_id)}};
}

void DaemonApi::render_model_metrics(std::string& out) const {
  auto db = open();
  if (!db) return;
  auto live = db->live_errors();
  if (!live) return;
  // Both come from one pass over the live errors: each family is gathered apart, then written
  // whole (MetricFamily).
  MetricFamily mae("cyclecast_live_mae_ratio", "gauge",
                   "Mean absolute error of scored forecasts (SOH as a fraction of rated "
                   "capacity), by model, origin and horizon step.");
  MetricFamily scored("cyclecast_live_scored", "gauge",
                      "Forecasts scored, by model, origin and horizon step.");
  for (const auto& e : *live) {
    for (const auto& [step, n, error] :
         {std::tuple{"10", e.scored_10, e.mae_10}, std::tuple{"100", e.scored_h, e.mae_h}}) {
      const Labels labels = {{"model", e.model_version}, {"origin", e.origin}, {"step", step}};
      scored.add(labels, static_cast<double>(n));
      if (n > 0) mae.add(labels, error);
    }
  }
  mae.render(out);
  scored.render(out);
}

std::string DaemonApi::metrics() {
  std::string out;
  const DaemonMetrics& m = *sources_.metrics;
  const auto counter = [&out](std::string_view name, std::string_view help, std::uint64_t v) {
    render_metric(out, name, "counter", help, static_cast<double>(v));
  };
  counter("cyclecast_messages_total", "MQTT messages received.", m.messages);
  counter("cyclecast_records_received_total", "Cycle records received in valid messages.",
          m.records_received);
  counter("cyclecast_records_stored_total", "Cycle records stored.", m.stored);
  counter("cyclecast_records_duplicate_total", "Cycle records already stored identically.",
          m.duplicates);
  render_help(out, "cyclecast_rejected_total", "counter",
              "Messages and records refused, by reason.");
  for (std::size_t i = 0; i < kRejectReasons; ++i) {
    render_sample(out, "cyclecast_rejected_total",
                  {{"reason", reject_reason_label(static_cast<RejectReason>(i))}},
                  static_cast<double>(m.rejected[i]));
  }
  counter("cyclecast_commits_total", "Batches committed.", m.commits);
  counter("cyclecast_commit_failures_total", "Batches whose commit failed.", m.commit_failures);
  render_metric(out, "cyclecast_commit_failing", "gauge",
                "1 while commits fail (nothing is confirmed to rigs).",
                m.last_commit_failed ? 1.0 : 0.0);
  render_metric(out, "cyclecast_storage_full", "gauge",
                "1 while commits fail for want of room (disk or storage.max_size_mb).",
                m.storage_full ? 1.0 : 0.0);
  counter("cyclecast_acks_published_total", "Acknowledgements published to rigs.",
          m.acks_published);
  m.commit_latency.render(out, "cyclecast_commit_seconds", "Commit latency of a batch.");
  render_metric(out, "cyclecast_mqtt_connected", "gauge", "1 while connected to the broker.",
                m.mqtt_connected ? 1.0 : 0.0);
  render_help(out, "cyclecast_http_responses_total", "counter",
              "HTTP responses sent by the API, by status code (codes not sent yet are absent).");
  for (std::size_t code = 0; code < m.http_responses.size(); ++code) {
    if (const std::uint64_t n = m.http_responses[code]; n > 0) {
      render_sample(out, "cyclecast_http_responses_total", {{"code", std::to_string(code)}},
                    static_cast<double>(n));
    }
  }

  const WalStatus wal = sources_.wal_status();
  render_metric(out, "cyclecast_wal_bytes", "gauge",
                "Size of the database's WAL file after the last checkpoint.",
                static_cast<double>(wal.wal_bytes));
  render_metric(out, "cyclecast_wal_checkpoint_blocked_seconds", "gauge",
                "How long a reader has kept checkpoints from finishing (0: they finish).",
                static_cast<double>(wal.blocked_ms) / 1000.0);
  counter("cyclecast_wal_truncations_total", "WAL files emptied after growing past the size limit.",
          wal.truncations);

  const ForecasterStats f = sources_.forecaster_stats();
  counter("cyclecast_forecasts_total", "Host forecasts stored.", f.forecasts);
  counter("cyclecast_edge_forecasts_total", "Edge forecasts stored.", m.edge_forecasts);
  counter("cyclecast_forecasts_published_total", "Host forecasts published on MQTT.",
          m.forecasts_published);
  counter("cyclecast_forecast_lacking_history_total",
          "Cycles not forecast for want of W cycles of history.", f.lacking_history);
  counter("cyclecast_forecast_errors_scored_total", "Forecast errors set (+10 or +H).",
          f.errors_scored);
  counter("cyclecast_forecaster_failures_total", "Forecaster passes that failed.", f.failures);
  render_metric(out, "cyclecast_forecaster_cells_pending", "gauge",
                "Cells waiting for the forecaster's next pass.",
                static_cast<double>(f.cells_pending));
  MetricFamily implausible("cyclecast_forecasts_implausible_total", "counter",
                           "Forecasts refused, not stored: a SOH outside [0, 1.2], by origin.");
  implausible.add({{"origin", "host"}}, static_cast<double>(f.implausible));
  implausible.add({{"origin", "edge"}}, static_cast<double>(m.edge_forecasts_implausible));
  implausible.render(out);
  counter("cyclecast_forecasts_past_end_of_life_total",
          "Cycles not forecast because their cell is past end of life.", f.past_end_of_life);
  render_model_metrics(out);

  const KeeperStatus k = sources_.keeper->status();
  render_help(out, "cyclecast_champion_info", "gauge", "The champion model (value 1).");
  if (!k.champion.empty())
    render_sample(out, "cyclecast_champion_info", {{"model", k.champion}}, 1);
  render_metric(out, "cyclecast_live_error_alert", "gauge",
                "1 while the champion's live error is over its threshold.",
                k.live_error && k.live_error->alert ? 1.0 : 0.0);
  counter("cyclecast_live_error_alerts_total", "Live-error alerts raised.", k.alerts_raised);
  render_metric(out, "cyclecast_drift_detected", "gauge",
                "1 once the champion's live errors drifted up (until a new champion).",
                k.drift && k.drift->detected ? 1.0 : 0.0);
  counter("cyclecast_drift_detections_total", "Drift detections (one per champion at most).",
          k.drifts_detected);
  render_metric(out, "cyclecast_drift_statistic", "gauge",
                "Page-Hinkley statistic of the champion's live errors, in held-out MAEs.",
                k.drift ? k.drift->statistic : 0.0);
  render_metric(out, "cyclecast_drift_mean_error", "gauge",
                "Mean |live error at +H| of the champion's host forecasts, in held-out MAEs at +H.",
                k.drift ? k.drift->mean_ratio : 0.0);
  render_metric(out, "cyclecast_drift_samples", "gauge",
                "Champion forecasts the drift monitor has seen since the champion loaded.",
                k.drift ? static_cast<double>(k.drift->samples) : 0.0);
  counter("cyclecast_retrain_runs_started_total", "Retraining runs started.", k.runs_started);
  counter("cyclecast_retrain_runs_succeeded_total", "Retraining runs that succeeded.",
          k.runs_succeeded);
  counter("cyclecast_retrain_runs_failed_total", "Retraining runs that failed.", k.runs_failed);
  counter("cyclecast_promotions_total", "Automatic promotions by the gate.", k.promotions);
  const auto progress = sources_.keeper->retrainer().progress();
  render_metric(out, "cyclecast_retrain_running", "gauge", "1 while a retraining run is running.",
                progress ? 1.0 : 0.0);
  render_metric(out, "cyclecast_retrain_progress_ratio", "gauge",
                "Fraction done of the run in progress (0 when none).",
                progress ? progress->overall_fraction : 0.0);
  render_build_info(out);
  render_process_metrics(out);
  return out;
}

}  // namespace cyclecast::daemon
