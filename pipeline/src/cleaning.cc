#include "cyclecast/pipeline/cleaning.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <vector>

namespace cyclecast::pipeline {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double median_of(const std::deque<double>& values) {
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

// Non-finite and (where `positive`) non-positive values become NaN, counted. NaN itself is "not
// reported" and counted only when `nan_counts`.
double screen(double value, bool positive, bool nan_counts, CleaningReport& report) {
  if (std::isnan(value)) {
    if (nan_counts) ++report.non_finite;
    return kNaN;
  }
  if (!std::isfinite(value)) {
    ++report.non_finite;
    return kNaN;
  }
  if (positive && value <= 0.0) {
    ++report.non_positive;
    return kNaN;
  }
  return value;
}

// The per-cell state of the rules: what earlier cycles left behind.
class Cleaner {
 public:
  Cleaner(const CleaningOptions& options, CleaningReport& report)
      : options_(options), report_(report) {}

  void add(SeriesRow row, std::vector<SeriesRow>& out) {
    if (has_previous_ && row.cycle <= options_.restart_max_cycle &&
        previous_cycle_ - (row.cycle + offset_) >= options_.restart_min_drop) {
      // Numbered from the start again: continue after the last cycle seen.
      offset_ = previous_cycle_ + 1 - row.cycle;
      ++report_.cycle_restarts;
    }
    row.cycle += offset_;
    if (has_previous_ && row.cycle == previous_cycle_) {
      ++report_.duplicate_cycles;
      return;
    }
    if (has_previous_ && row.cycle < previous_cycle_) {
      ++report_.out_of_order_cycles;
      return;
    }
    if (!out.empty() && row.cycle - out.back().cycle > options_.max_gap_cycles) {
      ++report_.cycle_jumps_dropped;
      return;
    }
    has_previous_ = true;
    previous_cycle_ = row.cycle;
    screen_values(row);
    if (std::isnan(row.soh) && std::isnan(last_.soh)) {
      ++report_.leading_rows_dropped;
      return;
    }
    fill_gap(row.cycle, out);
    hold_missing(row);
    out.push_back(row);
  }

  std::vector<FilledGap> take_gaps() { return std::move(gaps_); }

 private:
  void screen_values(SeriesRow& row) {
    row.soh = screen(row.soh, true, true, report_);
    row.ir_ohm = screen(row.ir_ohm, true, false, report_);
    // Temperatures in degrees Celsius may be zero or negative.
    row.temperature_c = screen(row.temperature_c, false, false, report_);
    row.charge_time_min = screen(row.charge_time_min, true, false, report_);
    if (row.charge_time_min == options_.charge_time_fill_min) {
      ++report_.fill_values;
      row.charge_time_min = kNaN;
    } else if (row.charge_time_min > options_.charge_time_max_min) {
      ++report_.charge_time_outliers;
      row.charge_time_min = kNaN;
    }
    if (!std::isnan(row.soh)) row.soh = screen_spike(row.soh);
  }

  // Judged against the median of the previous recorded values, outliers included, so that a
  // lasting level change wins the median after about half the window and is then accepted.
  double screen_spike(double soh) {
    const std::size_t needed =
        static_cast<std::size_t>(std::clamp<int64_t>(options_.spike_median_cycles, 1, 3));
    double result = soh;
    if (recent_soh_.size() >= needed &&
        std::abs(soh - median_of(recent_soh_)) > options_.spike_threshold_soh) {
      ++report_.soh_spikes;
      result = kNaN;
    }
    recent_soh_.push_back(soh);
    while (static_cast<int64_t>(recent_soh_.size()) >
           std::max<int64_t>(1, options_.spike_median_cycles)) {
      recent_soh_.pop_front();
    }
    return result;
  }

  void fill_gap(int64_t cycle, std::vector<SeriesRow>& out) {
    if (out.empty()) return;
    const SeriesRow held = out.back();
    if (cycle - held.cycle <= 1) return;
    const FilledGap gap{static_cast<int64_t>(out.size()), cycle - held.cycle - 1};
    for (int64_t missing = held.cycle + 1; missing < cycle; ++missing) {
      SeriesRow filler = held;
      filler.cycle = missing;
      out.push_back(filler);
      ++report_.gap_cycles_filled;
    }
    if (gap.rows > options_.max_window_gap_cycles) ++report_.long_gaps;
    gaps_.push_back(gap);
  }

  void hold_missing(SeriesRow& row) {
    if (std::isnan(row.soh)) {
      row.soh = last_.soh;
      ++report_.soh_held;
    }
    hold(row.soh, last_.soh);
    hold(row.ir_ohm, last_.ir_ohm);
    hold(row.temperature_c, last_.temperature_c);
    hold(row.charge_time_min, last_.charge_time_min);
  }

  static void hold(double& value, double& last_good) {
    if (std::isnan(value)) {
      value = last_good;
    } else {
      last_good = value;
    }
  }

  const CleaningOptions& options_;
  CleaningReport& report_;
  bool has_previous_ = false;
  int64_t previous_cycle_ = 0;  // renumbered (offset_ included)
  int64_t offset_ = 0;          // added to recorded cycle numbers after restarts
  std::vector<FilledGap> gaps_;
  SeriesRow last_{0, kNaN, kNaN, kNaN, kNaN};  // last good value of each quantity
  std::deque<double> recent_soh_;
};

}  // namespace

CleaningReport& CleaningReport::operator+=(const CleaningReport& other) {
  cells += other.cells;
  rows_in += other.rows_in;
  rows_out += other.rows_out;
  non_finite += other.non_finite;
  non_positive += other.non_positive;
  fill_values += other.fill_values;
  charge_time_outliers += other.charge_time_outliers;
  soh_spikes += other.soh_spikes;
  duplicate_cycles += other.duplicate_cycles;
  out_of_order_cycles += other.out_of_order_cycles;
  gap_cycles_filled += other.gap_cycles_filled;
  cycle_jumps_dropped += other.cycle_jumps_dropped;
  leading_rows_dropped += other.leading_rows_dropped;
  soh_held += other.soh_held;
  cycle_restarts += other.cycle_restarts;
  long_gaps += other.long_gaps;
  continuations_joined += other.continuations_joined;
  return *this;
}

CleaningReport clean_series(CellSeries& cell, const CleaningOptions& options) {
  CleaningReport report;
  report.cells = 1;
  report.rows_in = static_cast<int64_t>(cell.rows.size());
  std::vector<SeriesRow> out;
  out.reserve(cell.rows.size());
  Cleaner cleaner(options, report);
  for (const SeriesRow& row : cell.rows)
    cleaner.add(row, out);
  cell.rows = std::move(out);
  cell.filled_gaps = cleaner.take_gaps();
  report.rows_out = static_cast<int64_t>(cell.rows.size());
  return report;
}

CleaningReport clean_all(std::vector<CellSeries>& cells, const CleaningOptions& options) {
  CleaningReport total;
  for (CellSeries& cell : cells)
    total += clean_series(cell, options);
  std::erase_if(cells, [](const CellSeries& cell) { return cell.rows.empty(); });
  return total;
}

}  // namespace cyclecast::pipeline
