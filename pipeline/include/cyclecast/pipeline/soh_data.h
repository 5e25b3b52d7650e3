// State-of-health series per cell, read from any of the three data sources the pipeline trains
// and evaluates on: a cyclecast SQLite database, a severson-soh folder (the DLNet paper's smoothed
// series and its evaluation segments) or a severson-raw folder (per-cycle rig telemetry). The
// formats and what each reader does with them are documented in docs/pipeline.md, "Data".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// One cycle of one cell. Optional measurements a source does not report are NaN. (Named
// SeriesRow, not CycleRow, because csv_import.h already has a CycleRow in this namespace.)
struct SeriesRow {
  int64_t cycle = 0;             // 1-based cycle number, increasing within a series
  double soh = 0.0;              // discharge capacity / rated capacity
  double ir_ohm = 0.0;           // internal resistance
  double temperature_c = 0.0;    // mean cell temperature of the cycle
  double charge_time_min = 0.0;  // duration of the charge step
};

// Rows [first_row, first_row + rows) of a cleaned series that cleaning inserted for cycles the
// data lacked (cleaning.h, "gap").
struct FilledGap {
  int64_t first_row = 0;
  int64_t rows = 0;
};

struct CellSeries {
  std::string cell_id;  // severson-soh: the series name (Bat001...), which segments refer to
  std::string split;    // the study's split where the source gives one: "train", "test1"; or ""
  double rated_capacity_ah = 0.0;
  std::vector<SeriesRow> rows;
  // The test batch the cell belongs to where the source says (severson-raw: cells.csv `batch`;
  // a joined continuation keeps its parent's), or "". The cross-batch protocol holds one out.
  std::string batch;
  // Set by cleaning: the gaps it filled, in row order (windows must not span a long one).
  std::vector<FilledGap> filled_gaps;
};

// One of the paper's fixed evaluation segments: rows are 0-based positions in the series' rows,
// ranges half-open. The input is [input_begin, target_begin), the target [target_begin,
// target_end).
struct Segment {
  std::string series;
  int64_t input_begin = 0;
  int64_t target_begin = 0;
  int64_t target_end = 0;
  std::string band;  // SOH band named by the paper: "high", "medium", "low"
};

struct SeriesSet {
  std::vector<CellSeries> cells;
  std::vector<Segment> segments;  // severson-soh only
  std::string source;             // "severson-soh", "severson-raw" or "database"
  // severson-raw: continuation cells appended to their loaded parent (their cycles renumbered).
  int64_t continuations_joined = 0;
};

// Reads soh.csv (series,cell_id,row,soh) and segments.json from `dir`. Rows of a series must be
// contiguous and numbered 0..n-1; cycle = row + 1. Rated capacity is 1.1 Ah (the A123 cells).
// Errors: kNotFound (missing file), kParse (file, line and what was expected), kInvalidArgument
// (a segment naming an unknown series or rows outside it).
Result<SeriesSet> read_severson_soh(const std::filesystem::path& dir);

struct RawReadOptions {
  // Also read cycles_qd_approx.csv (capacity only, approximate cycle numbers) for the cells
  // that cycles.csv lacks. Off by default: its cycle numbers are not exact.
  bool include_approx = false;
};

// Reads cycles.csv and cells.csv from `dir`: SOH = qd_ah / 1.1, temperature = tavg_c, split =
// the cell's paper_split, batch = the cell's batch. A cell that continues another (cells.csv column
// continuation_of) is appended to its parent's series with its cycles renumbered after the parent's
// last cycle; when the parent's cycles are not loaded, the continuation stays a series of its own
// and takes the parent's split. Values are as recorded: clean them (cleaning.h) before use.
Result<SeriesSet> read_severson_raw(const std::filesystem::path& dir,
                                    const RawReadOptions& options = {});

// Every cell of a cyclecast database with its cycles (cycle order), SOH = discharge capacity /
// the cell's rated capacity; split empty. Cells without a positive rated capacity or without
// cycles are skipped. Opens the file read-only.
Result<SeriesSet> read_database(const std::filesystem::path& path);

// Which reader `path` needs: a folder with soh.csv, a folder with cycles.csv, or an SQLite file.
// kNotFound when the path does not exist, kUnsupported for anything else.
Result<SeriesSet> read_series(const std::filesystem::path& path,
                              const RawReadOptions& raw_options = {});

// Index of the cell named `cell_id` in `set`, or -1.
int64_t find_cell(const SeriesSet& set, const std::string& cell_id);

}  // namespace cyclecast::pipeline
