// `cyclecast simulate`: writes simulated rig telemetry as the project's per-cycle CSV plus the
// companion cells CSV. Cells are simulated and written one at a time, so memory stays flat
// however many rows are asked for.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "commands.h"
#include "cyclecast/pipeline/simulate.h"

namespace cyclecast::cli {
namespace {

namespace fs = std::filesystem;
using pipeline::SimulatedCell;
using pipeline::SimulationOptions;

struct SimulateArgs {
  SimulationOptions options;
  std::string out_path;        // empty or "-": stdout
  std::string cells_out_path;  // empty: derived from out_path, none for stdout
  bool no_glitches = false;
};

bool is_stdout(const std::string& path) {
  return path.empty() || path == "-";
}

// "run.csv" -> "run.cells.csv"; a name without ".csv" gets ".cells.csv" appended.
std::string default_cells_path(const std::string& out_path) {
  const std::string suffix = ".csv";
  if (out_path.size() > suffix.size() &&
      out_path.compare(out_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return out_path.substr(0, out_path.size() - suffix.size()) + ".cells.csv";
  }
  return out_path + ".cells.csv";
}

// A file written under a temporary name and renamed into place only when complete, so an
// interrupted or failed run never leaves a truncated CSV that looks finished.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {
    stream_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    stream_.open(partial_, std::ios::binary | std::ios::trunc);
  }
  ~AtomicFile() {
    if (!committed_) {
      stream_.close();
      std::error_code ignored;
      fs::remove(partial_, ignored);
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  bool is_open() const { return stream_.is_open(); }
  std::ostream& stream() { return stream_; }
  const std::string& path() const { return path_; }

  // Flushes, closes and renames; false (with `error` set) when any step failed.
  bool commit(std::string& error) {
    stream_.close();
    if (!stream_) {
      error = "writing " + partial_ + " failed";
      return false;
    }
    std::error_code ec;
    fs::rename(partial_, path_, ec);
    if (ec) {
      error = "renaming " + partial_ + " to " + path_ + " failed: " + ec.message();
      return false;
    }
    committed_ = true;
    return true;
  }

 private:
  std::string path_;
  std::string partial_;
  std::vector<char> buffer_ = std::vector<char>(1 << 20);
  std::ofstream stream_;
  bool committed_ = false;
};

int fail(int exit_code, const std::string& message) {
  std::cerr << "cyclecast simulate: " << message << '\n';
  return exit_code;
}

// Simulates every cell into `cycles_out`; keeps the cells (without their records) for the
// cells CSV. Returns the number of rows written, or -1 when writing failed.
std::int64_t write_all_cycles(const SimulationOptions& options, std::ostream& cycles_out,
                              std::vector<SimulatedCell>& cells, std::string& error) {
  const std::string batch = pipeline::simulation_batch_name(options);
  if (auto header = pipeline::write_cycles_csv_header(cycles_out); !header) {
    error = header.error().message;
    return -1;
  }
  std::int64_t rows = 0;
  for (std::int64_t i = 0; i < options.cells; ++i) {
    auto cell = pipeline::simulate_cell(options, i);
    if (!cell) {
      error = cell.error().message;
      return -1;
    }
    if (auto written = pipeline::write_cycles_csv_rows(cycles_out, *cell, batch); !written) {
      error = written.error().message;
      return -1;
    }
    rows += static_cast<std::int64_t>(cell->cycles.size());
    cell->cycles = {};
    cell->truth = {};
    cells.push_back(std::move(*cell));
  }
  return rows;
}

int run_simulate(SimulateArgs& args) {
  if (args.no_glitches) args.options.glitches = pipeline::GlitchRates{0.0, 0.0, 0.0, 0.0, 0.0};
  if (auto valid = pipeline::validate_simulation_options(args.options); !valid) {
    return fail(kExitUsage, valid.error().message);
  }
  const bool to_stdout = is_stdout(args.out_path);
  std::string cells_path = args.cells_out_path;
  if (cells_path.empty() && !to_stdout) cells_path = default_cells_path(args.out_path);

  std::unique_ptr<AtomicFile> cycles_file;
  if (!to_stdout) {
    cycles_file = std::make_unique<AtomicFile>(args.out_path);
    if (!cycles_file->is_open()) return fail(kExitFailure, "cannot create " + args.out_path);
  }
  std::ostream& cycles_out = to_stdout ? std::cout : cycles_file->stream();
  std::vector<SimulatedCell> cells;
  cells.reserve(static_cast<std::size_t>(args.options.cells));
  std::string error;
  const std::int64_t rows = write_all_cycles(args.options, cycles_out, cells, error);
  if (rows < 0) return fail(kExitFailure, error);
  if (cycles_file && !cycles_file->commit(error)) return fail(kExitFailure, error);
  if (to_stdout && !std::cout.flush()) return fail(kExitFailure, "writing to stdout failed");

  if (!cells_path.empty()) {
    AtomicFile cells_file(cells_path);
    if (!cells_file.is_open()) return fail(kExitFailure, "cannot create " + cells_path);
    if (auto written = pipeline::write_cells_csv(cells_file.stream(), cells); !written) {
      return fail(kExitFailure, written.error().message);
    }
    if (!cells_file.commit(error)) return fail(kExitFailure, error);
  }
  std::cerr << "cyclecast simulate: " << rows << " cycles of " << cells.size() << " cells"
            << (to_stdout ? std::string(" to stdout") : " to " + args.out_path)
            << (cells_path.empty() ? std::string() : ", cells to " + cells_path) << '\n';
  return kExitOk;
}

}  // namespace

void add_simulate_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Write simulated per-cycle telemetry of LFP cells (1.1 Ah, fast-charge policies) aged "
      "past end of life, as CSV. Same seed, same bytes. Model: docs/simulator.md.");
  cmd->add_option("--cells", args->options.cells, "number of cells to simulate")->required();
  cmd->add_option("--seed", args->options.seed, "seed of the run (unsigned 64-bit)")->required();
  cmd->add_option("--out", args->out_path, "per-cycle CSV file; '-' or absent: stdout");
  cmd->add_option("--cells-out", args->cells_out_path,
                  "cells CSV file; default: --out with .csv replaced by .cells.csv "
                  "(none when writing to stdout)");
  cmd->add_option("--max-cycles", args->options.max_cycles, "cap on cycles per cell")
      ->capture_default_str();
  cmd->add_option("--cycles-after-eol", args->options.cycles_after_eol,
                  "cycles simulated past each cell's end of life (capacity < 0.88 Ah)")
      ->capture_default_str();
  cmd->add_option("--rigs", args->options.rigs, "rigs the cells are spread over")
      ->capture_default_str();
  cmd->add_option("--policy", args->options.policies,
                  "charge policy like 5.4C(40%)-3.6C; repeat to mix (round-robin over cells); "
                  "default: a built-in list from ~160 to ~2000 cycles of life");
  cmd->add_option("--batch", args->options.batch, "batch column; default sim-<seed>");
  cmd->add_flag("--no-glitches", args->no_glitches,
                "simulate no glitches (interruptions, fill values, zero resistance)");
  cmd->add_option("--regime-change-cycle", args->options.regime_change_cycle,
                  "a regime change: past this cycle the changed cells fade "
                  "--regime-fade-factor times as fast (0: none)")
      ->capture_default_str();
  cmd->add_option("--regime-fade-factor", args->options.regime_fade_factor,
                  "fade rate multiplier after the regime change, 0.1..100")
      ->capture_default_str();
  cmd->add_option("--regime-every", args->options.regime_every,
                  "only cells whose index is a multiple of this change regime (1: all)")
      ->capture_default_str();
  cmd->callback([args, &global] { global.exit_code = run_simulate(*args); });
}

}  // namespace cyclecast::cli
