// `cyclecast rig`: plays a lab rig (or many) publishing cycle telemetry to cyclecastd over MQTT
// (protocol v1, docs/protocol.md). Records come from a project-format CSV or the simulator, go
// into a local SQLite outbox first, and stay there until the daemon acknowledges them; run it
// again on the same outbox after a crash and it re-sends exactly what was not yet answered.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "cyclecast/pipeline/csv_import.h"
#include "cyclecast/pipeline/simulate.h"
#include "cyclecast/rig/rig.h"

namespace cyclecast::cli {
namespace {

struct RigFlags {
  std::string csv;
  std::string cells_file;
  std::int64_t simulate_cells = 0;
  std::uint64_t seed = 1;
  std::int64_t max_cycles = 5000;
  std::int64_t regime_change_cycle = 0;  // the simulator's regime change (docs/simulator.md)
  double regime_fade_factor = 1.0;
  std::int64_t regime_every = 1;
  std::string rig = "rig-1";
  std::int64_t rigs = 0;  // 0: keep the rig of each cell (cells file, simulator, or --rig)
  std::string chemistry;
  std::optional<double> rated_capacity_ah;
  std::string outbox = "cyclecast-rig.outbox";
  std::string broker = "127.0.0.1:1883";
  std::string client_id;
  std::string username, password, tls_ca_file, tls_cert_file, tls_key_file;
  double rate = 0;
  std::size_t window = 20000;
  std::size_t per_message = 100;
  int ack_timeout_ms = 5000;
  int deadline_s = 0;
  bool quiet = false;
};

struct Input {
  std::vector<storage::CellInfo> cells;
  std::vector<storage::CycleRecord> records;
};

Result<Input> read_csv(const RigFlags& flags) {
  pipeline::CellDefaults defaults;
  defaults.rig_id = flags.rig;
  defaults.chemistry = flags.chemistry;
  defaults.rated_capacity_ah = flags.rated_capacity_ah;
  pipeline::CellCatalog catalog(defaults);
  if (!flags.cells_file.empty()) {
    auto loaded = pipeline::CellCatalog::load(flags.cells_file, defaults);
    if (!loaded) return loaded.error();
    catalog = std::move(*loaded);
  }
  std::ifstream in(flags.csv, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, flags.csv + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  pipeline::ParseOptions options;
  options.format = pipeline::CsvFormat::kCyclecast;
  options.catalog = &catalog;
  auto parsed = pipeline::parse_cycles_csv(text.str(), flags.csv, options);
  if (!parsed) return parsed.error();
  if (!parsed->rejected.empty()) {
    std::fprintf(stderr, "rig: %zu rows of %s refused by the CSV reader (first: line %u: %s)\n",
                 parsed->rejected.size(), flags.csv.c_str(), parsed->rejected[0].line,
                 parsed->rejected[0].reason.c_str());
  }
  Input input;
  for (const auto& id : parsed->cell_ids) {
    auto cell = catalog.resolve(id);
    if (!cell) return cell.error();
    input.cells.push_back(std::move(*cell));
  }
  input.records.resize(parsed->rows.size());
  for (std::size_t i = 0; i < parsed->rows.size(); ++i) {
    pipeline::cycle_row_to_record(*parsed, parsed->rows[i], "rig", input.records[i]);
  }
  return input;
}

Result<Input> simulate(const RigFlags& flags) {
  pipeline::SimulationOptions options;
  options.seed = flags.seed;
  options.cells = flags.simulate_cells;
  options.max_cycles = flags.max_cycles;
  options.regime_change_cycle = flags.regime_change_cycle;
  options.regime_fade_factor = flags.regime_fade_factor;
  options.regime_every = flags.regime_every;
  if (flags.rigs > 0) options.rigs = flags.rigs;
  if (auto valid = pipeline::validate_simulation_options(options); !valid) return valid.error();
  Input input;
  for (std::int64_t i = 0; i < options.cells; ++i) {
    auto cell = pipeline::simulate_cell(options, i);
    if (!cell) return cell.error();
    input.cells.push_back(cell->info);
    input.records.insert(input.records.end(), std::make_move_iterator(cell->cycles.begin()),
                         std::make_move_iterator(cell->cycles.end()));
  }
  return input;
}

// --rigs N spreads the cells over rig ids <rig>-0 .. <rig>-(N-1), round-robin.
void spread_over_rigs(const RigFlags& flags, Input& input) {
  if (flags.rigs <= 0 || flags.simulate_cells > 0) return;
  for (std::size_t i = 0; i < input.cells.size(); ++i) {
    input.cells[i].rig_id =
        flags.rig + "-" + std::to_string(static_cast<std::int64_t>(i) % flags.rigs);
  }
}

bool split_broker(const std::string& broker, rig::PublishOptions& options) {
  const auto colon = broker.rfind(':');
  if (colon == std::string::npos) {
    options.host = broker;
    return true;
  }
  options.host = broker.substr(0, colon);
  try {
    options.port = std::stoi(broker.substr(colon + 1));
  } catch (const std::exception&) {
    return false;
  }
  return options.port > 0 && options.port < 65536;
}

void print_progress(const rig::PublishProgress& p) {
  std::fprintf(stderr,
               "rig: %.0f s: sent %zu (resent %zu), confirmed %zu, rejected %zu of %zu; "
               "re-sending after %.1f s\n",
               p.seconds, p.sent, p.resent, p.confirmed, p.rejected, p.total, p.resend_after_s);
}

int run_rig(const RigFlags& flags) {
  rig::PublishOptions options;
  if (!split_broker(flags.broker, options)) {
    std::cerr << "rig: --broker must be HOST[:PORT], got " << flags.broker << '\n';
    return kExitUsage;
  }
  options.client_id = flags.client_id;
  options.username = flags.username;
  options.password = flags.password;
  options.tls_ca_file = flags.tls_ca_file;
  options.tls_cert_file = flags.tls_cert_file;
  options.tls_key_file = flags.tls_key_file;
  options.rate_records_per_s = flags.rate;
  options.window_records = flags.window;
  options.records_per_message = flags.per_message;
  options.ack_timeout_ms = flags.ack_timeout_ms;
  options.deadline_s = flags.deadline_s;

  auto outbox = rig::Outbox::open(flags.outbox);
  if (!outbox) {
    std::cerr << "rig: " << outbox.error().message << '\n';
    return kExitFailure;
  }
  if (!flags.csv.empty() || flags.simulate_cells > 0) {
    auto input = flags.csv.empty() ? simulate(flags) : read_csv(flags);
    if (!input) {
      std::cerr << "rig: " << input.error().message << '\n';
      return kExitBadInput;
    }
    spread_over_rigs(flags, *input);
    auto added = outbox->add(input->cells, input->records);
    if (!added) {
      std::cerr << "rig: " << added.error().message << '\n';
      return kExitFailure;
    }
    if (!flags.quiet) {
      std::fprintf(stderr, "rig: %zu cells, %zu records, %zu new in outbox %s\n",
                   input->cells.size(), input->records.size(), *added, flags.outbox.c_str());
    }
  }
  auto summary = rig::publish_outbox(
      *outbox, options,
      flags.quiet ? std::function<void(const rig::PublishProgress&)>() : print_progress);
  if (!summary) {
    std::cerr << "rig: " << summary.error().message << '\n';
    return kExitFailure;
  }
  const auto& p = summary->progress;
  const double rate = p.seconds > 0 ? static_cast<double>(p.confirmed + p.rejected) / p.seconds : 0;
  std::printf(
      "sent %zu (resent %zu), confirmed %zu, rejected %zu, unanswered %zu in %.2f s "
      "(%.0f records/s); publish-to-confirm p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      p.sent, p.resent, p.confirmed, p.rejected, summary->unanswered, p.seconds, rate,
      summary->latency_p50_ms, summary->latency_p99_ms, summary->latency_max_ms);
  if (p.daemon_restarts > 0) {
    std::printf(
        "a daemon came online %zu times during the run; its in-flight records were re-sent\n",
        p.daemon_restarts);
  }
  if (p.ignored_statuses > 0) {
    std::printf(
        "ignored %zu online statuses that named no new daemon start (at most one re-send "
        "per start, and per --ack-timeout-ms)\n",
        p.ignored_statuses);
  }
  return summary->unanswered == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void add_rig_command(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<RigFlags>();
  auto* cmd = app.add_subcommand(
      "rig",
      "Publish cycle records to cyclecastd over MQTT, as one or many lab rigs, keeping each in a "
      "local outbox until the daemon confirms it (exit 1 if some stay unanswered).");
  cmd->add_option("csv", flags->csv, "cycles CSV in the project's format");
  cmd->add_option("--cells", flags->cells_file, "companion cells CSV (cell_id, rig_id, ...)");
  cmd->add_option("--simulate", flags->simulate_cells, "publish N simulated cells instead")
      ->check(CLI::Range(std::int64_t{1}, pipeline::kSimMaxCells));
  cmd->add_option("--seed", flags->seed, "simulator seed")->capture_default_str();
  cmd->add_option("--max-cycles", flags->max_cycles, "simulator: cycles per cell at most")
      ->capture_default_str();
  cmd->add_option("--regime-change-cycle", flags->regime_change_cycle,
                  "simulator: past this cycle the changed cells fade --regime-fade-factor times "
                  "as fast (0: none)")
      ->capture_default_str();
  cmd->add_option("--regime-fade-factor", flags->regime_fade_factor,
                  "simulator: fade rate multiplier after the regime change, 0.1..100")
      ->capture_default_str();
  cmd->add_option("--regime-every", flags->regime_every,
                  "simulator: only cells whose index is a multiple of this change regime")
      ->capture_default_str();
  cmd->add_option("--rig", flags->rig, "rig id of cells that name none")->capture_default_str();
  cmd->add_option("--rigs", flags->rigs, "spread the cells over N rigs")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000}));
  cmd->add_option("--chemistry", flags->chemistry, "chemistry of cells that name none");
  cmd->add_option("--rated-capacity-ah", flags->rated_capacity_ah,
                  "rated capacity of cells that name none");
  cmd->add_option("--outbox", flags->outbox, "the rig's outbox file (SQLite)")
      ->capture_default_str();
  cmd->add_option("--broker", flags->broker, "MQTT broker HOST[:PORT]")->capture_default_str();
  cmd->add_option("--client-id", flags->client_id, "MQTT client id (default cyclecast-rig-PID)");
  cmd->add_option("--username", flags->username, "MQTT user name");
  cmd->add_option("--password", flags->password, "MQTT password (env CYCLECAST_MQTT_PASSWORD)")
      ->envname("CYCLECAST_MQTT_PASSWORD");
  auto* ca = cmd->add_option("--tls-ca-file", flags->tls_ca_file, "CA bundle: connect with TLS");
  auto* cert = cmd->add_option("--tls-cert-file", flags->tls_cert_file,
                               "client certificate (with --tls-key-file), for mutual TLS");
  auto* key =
      cmd->add_option("--tls-key-file", flags->tls_key_file, "client certificate's private key");
  cert->needs(ca)->needs(key);
  key->needs(cert);
  cmd->add_option("--rate", flags->rate, "records per second (0: as fast as acks allow)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--window", flags->window, "most unconfirmed records in flight")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--per-message", flags->per_message, "records per MQTT message")
      ->check(CLI::Range(std::size_t{1}, protocol::kMaxRecordsPerMessage))
      ->capture_default_str();
  cmd->add_option("--ack-timeout-ms", flags->ack_timeout_ms,
                  "re-send records unanswered this long (the wait grows with the measured "
                  "answer time and doubles on each expiry, up to 60 s)")
      ->check(CLI::Range(10, 3600000))
      ->capture_default_str();
  cmd->add_option("--deadline-s", flags->deadline_s, "give up after this long (0: never)")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", flags->quiet, "no progress on stderr");
  cmd->callback([flags, &global] { global.exit_code = run_rig(*flags); });
}

}  // namespace cyclecast::cli
