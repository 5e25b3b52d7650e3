// report_html_text (report.h): one self-contained page, inline CSS and inline SVG plots.
#include "cyclecast/pipeline/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "printf_string.h"

namespace cyclecast::pipeline {
namespace {

// ---------------------------------------------------------------------------------------------
// Text helpers

// Every piece of text from the report goes through this, in content and in attributes alike.
std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string number(double value, const char* format) {
  return std::isfinite(value) ? printf_string(format, value) : std::string("–");
}
std::string mae_text(double value) {
  return number(value, "%.5f");
}
std::string kib_text(int64_t bytes) {
  return number(static_cast<double>(bytes) / 1024.0, "%.1f");
}

// A coordinate in the SVG, to a tenth of a pixel.
std::string px(double value) {
  return printf_string("%.1f", value);
}

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const char* palette(size_t i) {
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

// ---------------------------------------------------------------------------------------------
// SVG plots: a data range mapped onto a pixel frame, with ticks, labels and a legend.

struct Range {
  double lo = 0, hi = 1;
  bool log = false;
};

struct Tick {
  double value;
  std::string label;
};

// Widens [lo, hi] so that no series touches the frame, and gives an empty range some height.
Range padded(double lo, double hi, double fraction) {
  if (!(lo <= hi)) return Range{0, 1};
  if (hi > lo) return Range{lo - (hi - lo) * fraction, hi + (hi - lo) * fraction};
  const double pad = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
  return Range{lo - pad, hi + pad};
}

// Ticks at 1, 2 or 5 times a power of ten, about `target` of them.
std::vector<Tick> linear_ticks(const Range& range, int target) {
  const double raw = (range.hi - range.lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::vector<Tick> ticks;
  for (double t = std::ceil(range.lo / step) * step; t <= range.hi + step * 1e-9; t += step) {
    const double value = std::fabs(t) < step * 1e-9 ? 0.0 : t;
    ticks.push_back(Tick{value, printf_string("%.*f", decimals, value)});
  }
  return ticks;
}

// Ticks at powers of two of bytes, labelled in kB; every other power when there are too many.
std::vector<Tick> kib_log_ticks(const Range& range) {
  const int first = static_cast<int>(std::ceil(std::log2(range.lo)));
  const int last = static_cast<int>(std::floor(std::log2(range.hi)));
  const int stride = std::max(1, (last - first + 1 + 7) / 8);
  std::vector<Tick> ticks;
  for (int e = first; e <= last; e += stride) {
    const double bytes = std::ldexp(1.0, e);
    ticks.push_back(Tick{bytes, printf_string("%g", bytes / 1024.0)});
  }
  return ticks;
}

class SvgPlot {
 public:
  // `open_attributes` names the element for the page and its tests (id="pareto", ...).
  SvgPlot(const std::string& open_attributes, double width, double height, Range x, Range y)
      : width_(width), height_(height), x_(x), y_(y) {
    out_ = "<svg " + open_attributes + " xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) + " " +
           px(height) + "\" role=\"img\">\n";
    out_ += "<rect class=\"frame\" x=\"" + px(kLeft) + "\" y=\"" + px(kTop) + "\" width=\"" +
            px(frame_width()) + "\" height=\"" + px(frame_height()) + "\"/>\n";
  }

  double map_x(double v) const { return kLeft + fraction(x_, v) * frame_width(); }
  double map_y(double v) const { return kTop + (1.0 - fraction(y_, v)) * frame_height(); }

  void axes(const std::vector<Tick>& x_ticks, const std::vector<Tick>& y_ticks,
            const std::string& x_label, const std::string& y_label) {
    const double bottom = kTop + frame_height();
    for (const Tick& t : x_ticks) {
      const std::string x = px(map_x(t.value));
      out_ += "<line class=\"grid\" x1=\"" + x + "\" y1=\"" + px(kTop) + "\" x2=\"" + x +
              "\" y2=\"" + px(bottom) + "\"/><text class=\"tick\" x=\"" + x + "\" y=\"" +
              px(bottom + 16) + "\" text-anchor=\"middle\">" + escape(t.label) + "</text>\n";
    }
    for (const Tick& t : y_ticks) {
      const std::string y = px(map_y(t.value));
      out_ += "<line class=\"grid\" x1=\"" + px(kLeft) + "\" y1=\"" + y + "\" x2=\"" +
              px(kLeft + frame_width()) + "\" y2=\"" + y + "\"/><text class=\"tick\" x=\"" +
              px(kLeft - 6) + "\" y=\"" + px(map_y(t.value) + 4) + "\" text-anchor=\"end\">" +
              escape(t.label) + "</text>\n";
    }
    out_ += "<text class=\"label\" x=\"" + px(kLeft + frame_width() / 2) + "\" y=\"" +
            px(height_ - 8) + "\" text-anchor=\"middle\">" + escape(x_label) + "</text>\n";
    out_ += "<text class=\"label\" transform=\"translate(16 " + px(kTop + frame_height() / 2) +
            ") rotate(-90)\" text-anchor=\"middle\">" + escape(y_label) + "</text>\n";
  }

  // One series as a path; NaN values (and points off a log axis) leave gaps.
  void line(const std::vector<std::pair<double, double>>& points, const std::string& attributes) {
    std::string d;
    bool pen_down = false;
    for (const auto& [x, y] : points) {
      if (!drawable(x_, x) || !drawable(y_, y)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? " L" : " M") + px(map_x(x)) + " " + px(map_y(y));
      pen_down = true;
    }
    if (!d.empty()) out_ += "<path " + attributes + " fill=\"none\" d=\"" + d.substr(1) + "\"/>\n";
  }

  void raw(const std::string& element) { out_ += element; }

  // Legend entries stacked in the frame's top-right corner.
  void legend(const std::vector<std::pair<std::string, std::string>>& entries) {
    const double x = kLeft + frame_width() - 170;
    double y = kTop + 16;
    for (const auto& [style, name] : entries) {
      out_ += "<g class=\"legend\"><line " + style + " x1=\"" + px(x) + "\" y1=\"" + px(y - 4) +
              "\" x2=\"" + px(x + 22) + "\" y2=\"" + px(y - 4) + "\"/><text x=\"" + px(x + 28) +
              "\" y=\"" + px(y) + "\">" + escape(name) + "</text></g>\n";
      y += 16;
    }
  }

  std::string finish() { return out_ + "</svg>\n"; }

 private:
  static constexpr double kLeft = 72, kTop = 12, kRight = 16, kBottom = 48;

  double frame_width() const { return width_ - kLeft - kRight; }
  double frame_height() const { return height_ - kTop - kBottom; }

  static bool drawable(const Range& r, double v) { return std::isfinite(v) && (!r.log || v > 0); }
  static double fraction(const Range& r, double v) {
    if (r.log) return (std::log(v) - std::log(r.lo)) / (std::log(r.hi) - std::log(r.lo));
    return (v - r.lo) / (r.hi - r.lo);
  }

  double width_, height_;
  Range x_, y_;
  std::string out_;
};

// Smallest and largest finite value over several series.
struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// ---------------------------------------------------------------------------------------------
// Pareto plot

bool plottable(const Candidate& c) {
  return std::isfinite(c.int8_mae) && c.flash_bytes > 0;
}

std::string candidate_title(const Candidate& c) {
  return escape(c.name + " (" + c.stage + "): int8 MAE " + mae_text(c.int8_mae) + ", " +
                kib_text(c.flash_bytes) + " kB flash, " + kib_text(c.ram_bytes) + " kB RAM, " +
                number(c.ms_at_64mhz, "%.2f") + " ms");
}

std::vector<std::pair<double, double>> front_points(const RunReport& r) {
  std::vector<size_t> front;
  for (size_t i : r.front) {
    if (i < r.candidates.size() && plottable(r.candidates[i])) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return r.candidates[a].flash_bytes < r.candidates[b].flash_bytes;
  });
  std::vector<std::pair<double, double>> points;
  for (size_t i : front) {
    points.emplace_back(static_cast<double>(r.candidates[i].flash_bytes), r.candidates[i].int8_mae);
  }
  return points;
}

std::string pareto_svg(const RunReport& r) {
  Extent flash, mae;
  for (const Candidate& c : r.candidates) {
    if (!plottable(c)) continue;
    flash.add(static_cast<double>(c.flash_bytes));
    mae.add(c.int8_mae);
  }
  if (flash.empty()) return "<p>No candidate has a measured int8 MAE and flash size.</p>\n";
  flash.add(static_cast<double>(r.budget.max_flash_bytes));
  const Range x{flash.lo / 1.4, flash.hi * 1.4, true};
  const Range y = padded(mae.lo, mae.hi, 0.08);
  SvgPlot plot("id=\"pareto\" class=\"plot\"", 900, 440, x, y);
  plot.axes(kib_log_ticks(x), linear_ticks(y, 6), "int8 flash (kB, log scale)",
            "int8 validation MAE (SOH)");
  const std::string budget_x = px(plot.map_x(static_cast<double>(r.budget.max_flash_bytes)));
  plot.raw("<line class=\"budget\" x1=\"" + budget_x + "\" y1=\"" + px(plot.map_y(y.hi)) +
           "\" x2=\"" + budget_x + "\" y2=\"" + px(plot.map_y(y.lo)) + "\"/>\n");
  plot.line(front_points(r), "class=\"front\"");
  for (const Candidate& c : r.candidates) {
    if (!plottable(c)) continue;
    plot.raw("<circle class=\"candidate " + escape(c.stage) + "\" cx=\"" +
             px(plot.map_x(static_cast<double>(c.flash_bytes))) + "\" cy=\"" +
             px(plot.map_y(c.int8_mae)) + "\" r=\"4.5\"><title>" + candidate_title(c) +
             "</title></circle>\n");
  }
  for (size_t i : r.front) {  // names on the front only: the dominated cloud would be unreadable
    if (i >= r.candidates.size() || !plottable(r.candidates[i])) continue;
    const Candidate& c = r.candidates[i];
    plot.raw("<text class=\"point-label\" x=\"" +
             px(plot.map_x(static_cast<double>(c.flash_bytes)) + 7) + "\" y=\"" +
             px(plot.map_y(c.int8_mae) - 7) + "\">" + escape(c.name) + "</text>\n");
  }
  if (r.has_choice() && plottable(r.candidates[r.choice.index])) {
    const Candidate& c = r.candidates[r.choice.index];
    plot.raw("<circle class=\"choice\" cx=\"" + px(plot.map_x(static_cast<double>(c.flash_bytes))) +
             "\" cy=\"" + px(plot.map_y(c.int8_mae)) +
             "\" r=\"10\"><title>chosen: " + candidate_title(c) + "</title></circle>\n");
  }
  plot.legend({{"class=\"front\"", "Pareto front"},
               {"class=\"budget\"", "flash budget"},
               {"class=\"key-stage1\"", "stage 1 candidate"},
               {"class=\"key-stage2\"", "stage 2 candidate"},
               {"class=\"key-choice\"", "chosen student"}});
  return plot.finish();
}

// ---------------------------------------------------------------------------------------------
// Forecast and error plots

using Points = std::vector<std::pair<double, double>>;

Points series_points(const std::vector<double>& values, double first_x) {
  Points points;
  for (size_t i = 0; i < values.size(); ++i) {
    points.emplace_back(first_x + static_cast<double>(i), values[i]);
  }
  return points;
}

struct Series {
  const std::vector<double>* values;
  double first_x;
  const char* css_class;
  const char* name;
};

std::string forecast_svg(const SampleForecast& s) {
  const double first = static_cast<double>(s.first_cycle);
  const double target_first = first + static_cast<double>(s.input.size());
  const std::vector<Series> series = {
      {&s.input, first, "s-input", "input"},
      {&s.truth, target_first, "s-truth", "truth"},
      {&s.teacher, target_first, "s-teacher", "teacher"},
      {&s.student_int8, target_first, "s-int8", "student (int8)"},
      {&s.best_baseline, target_first, "s-baseline", "best baseline"}};
  Extent x, y;
  for (const Series& k : series) {
    if (k.values->empty()) continue;
    x.add(k.first_x);
    x.add(k.first_x + static_cast<double>(k.values->size() - 1));
    for (double v : *k.values)
      y.add(v);
  }
  if (x.empty() || y.empty()) return "<p>No values for this sample.</p>\n";
  const Range xr = padded(x.lo, x.hi, 0.0);
  const Range yr = padded(y.lo, y.hi, 0.06);
  SvgPlot plot("class=\"forecast plot\"", 560, 320, xr, yr);
  plot.axes(linear_ticks(xr, 6), linear_ticks(yr, 5), "cycle", "SOH");
  const std::string split_x = px(plot.map_x(target_first - 0.5));
  plot.raw("<line class=\"split\" x1=\"" + split_x + "\" y1=\"" + px(plot.map_y(yr.hi)) +
           "\" x2=\"" + split_x + "\" y2=\"" + px(plot.map_y(yr.lo)) + "\"/>\n");
  std::vector<std::pair<std::string, std::string>> legend;
  for (const Series& k : series) {
    if (k.values->empty()) continue;
    const std::string style = std::string("class=\"") + k.css_class + "\"";
    plot.line(series_points(*k.values, k.first_x), style);
    legend.emplace_back(style, k.name);
  }
  plot.legend(legend);
  return plot.finish();
}

std::string error_by_step_svg(const RunReport& r) {
  Extent steps, mae;
  for (const auto& [model, values] : r.error_by_step) {
    if (!values.empty()) steps.add(static_cast<double>(values.size()));
    for (double v : values)
      mae.add(v);
  }
  if (steps.empty() || mae.empty()) return "<p>No error-by-step figures in this run.</p>\n";
  const Range x{1, std::max(2.0, steps.hi)};
  const Range y{0, mae.hi * 1.08};
  SvgPlot plot("id=\"error-by-step\" class=\"plot\"", 900, 380, x, y);
  plot.axes(linear_ticks(x, 10), linear_ticks(y, 6), "forecast step (cycles ahead)", "MAE (SOH)");
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t i = 0; i < r.error_by_step.size(); ++i) {
    const std::string style = std::string("class=\"step-line\" stroke=\"") + palette(i) + "\"";
    plot.line(series_points(r.error_by_step[i].second, 1.0), style);
    legend.emplace_back(style, r.error_by_step[i].first);
  }
  plot.legend(legend);
  return plot.finish();
}

// ---------------------------------------------------------------------------------------------
// Tables and page

std::string cell(const std::string& text) {
  return "<td>" + escape(text) + "</td>";
}
std::string num_cell(const std::string& text) {
  return "<td class=\"num\">" + escape(text) + "</td>";
}

std::string header_row(const std::vector<std::string>& names) {
  std::string row = "<tr>";
  for (const std::string& n : names)
    row += "<th>" + escape(n) + "</th>";
  return row + "</tr>\n";
}

std::string stages_table(const RunReport& r) {
  std::string t = "<table class=\"stages\">\n" +
                  header_row({"stage", "model", "MAE", "MAE +10", "MAE +100", "RMSE",
                              "EOL error (cycles)", "EOL windows", "windows"});
  for (const StageRow& s : r.stages) {
    const ForecastMetrics& m = s.metrics;
    t += std::string("<tr") + (s.stage == "baseline" ? " class=\"baseline\"" : "") + ">" +
         cell(s.stage) + cell(s.model) + num_cell(mae_text(m.mae)) + num_cell(mae_text(m.mae_10)) +
         num_cell(mae_text(m.mae_100)) + num_cell(mae_text(m.rmse)) +
         num_cell(number(m.eol_error_cycles, "%.1f")) + num_cell(std::to_string(m.eol_windows)) +
         num_cell(std::to_string(m.windows)) + "</tr>\n";
  }
  return t + "</table>\n";
}

bool on_front(const RunReport& r, size_t i) {
  return std::find(r.front.begin(), r.front.end(), i) != r.front.end();
}

std::string candidates_table(const RunReport& r) {
  std::string t = "<table class=\"candidates\">\n" +
                  header_row({"candidate", "stage", "width", "features", "pruned", "params",
                              "float MAE", "int8 MAE", "flash kB", "RAM kB", "MACs", "M4 cycles",
                              "ms at 64 MHz", "front", "chosen"});
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const Candidate& c = r.candidates[i];
    const bool chosen = r.has_choice() && r.choice.index == i;
    t += std::string("<tr") + (chosen ? " class=\"chosen\"" : "") + ">" + cell(c.name) +
         cell(c.stage) + num_cell(std::to_string(c.width)) + num_cell(std::to_string(c.features)) +
         num_cell(number(c.prune_ratio, "%.2f")) + num_cell(std::to_string(c.params)) +
         num_cell(mae_text(c.float_mae)) + num_cell(mae_text(c.int8_mae)) +
         num_cell(kib_text(c.flash_bytes)) + num_cell(kib_text(c.ram_bytes)) +
         num_cell(std::to_string(c.macs)) + num_cell(number(c.cycles, "%.0f")) +
         num_cell(number(c.ms_at_64mhz, "%.3f")) + cell(on_front(r, i) ? "yes" : "") +
         cell(chosen ? "chosen" : "") + "</tr>\n";
  }
  return t + "</table>\n";
}

template <typename Pairs, typename Format>
std::string pairs_table(const std::string& css_class, const std::string& key,
                        const std::string& value, const Pairs& pairs, Format format) {
  std::string t = "<table class=\"" + css_class + "\">\n" + header_row({key, value});
  for (const auto& [k, v] : pairs)
    t += "<tr>" + cell(k) + num_cell(format(v)) + "</tr>\n";
  return t + "</table>\n";
}

std::string choice_section(const RunReport& r) {
  std::string s = "<section class=\"choice\">\n<h2>Chosen student</h2>\n";
  if (r.has_choice()) {
    s += "<p class=\"chosen-name\">" + escape(r.candidates[r.choice.index].name) + "</p>\n";
  } else {
    s += "<p class=\"chosen-name\">none: no candidate fits the budget</p>\n";
  }
  s += "<p>" + escape(r.choice.reason) + "</p>\n";
  if (r.gate_evidence.present()) {
    s += "<p class=\"gate-evidence\">Against the baselines the node could run: " +
         escape(r.gate_evidence.reason) + ".</p>\n";
  }
  s += "<p>Budget: " + escape(kib_text(r.budget.max_flash_bytes)) + " kB flash, " +
       escape(kib_text(r.budget.max_ram_bytes)) + " kB RAM, " +
       escape(number(r.budget.max_ms, "%.2f")) + " ms per forecast at 64 MHz.</p>\n";
  return s + "</section>\n";
}

std::string percent_text(double share) {
  return std::isfinite(share) ? number(100.0 * share, "%.1f") + " %" : "n/a";
}

// The chosen student's intervals: coverage and mean width on the test windows, overall and per
// SOH band, next to the baseline's residual quantiles calibrated the same way.
std::string intervals_section(const RunReport& r) {
  std::string s = "<section class=\"intervals\">\n<h2>Prediction intervals</h2>\n";
  if (!r.intervals) return s + "<p>No intervals: the run chose no student.</p>\n</section>\n";
  const IntervalReport& iv = *r.intervals;
  const ConformalQuantiles& q = iv.calibration;
  s += "<p>Nominal " + escape(percent_text(q.coverage)) + ", " + escape(iv.method) + ": " +
       std::to_string(q.cells) + " cells, " + std::to_string(q.windows) +
       " windows, quantile level " + escape(number(q.level, "%.3f")) + ".</p>\n";
  if (!iv.note.empty()) s += "<p class=\"note\">" + escape(iv.note) + ".</p>\n";
  const std::string base = iv.baseline.empty() ? "baseline" : iv.baseline;
  s += "<table class=\"interval-coverage\">\n" +
       header_row({"test windows", "windows", "coverage", "mean width (SOH)", base + " coverage",
                   base + " mean width (SOH)"});
  for (const IntervalCoverageRow& row : iv.rows) {
    s += "<tr>" + cell(row.group) + num_cell(std::to_string(row.model.windows)) +
         num_cell(percent_text(row.model.coverage)) + num_cell(mae_text(row.model.mean_width)) +
         num_cell(percent_text(row.baseline.coverage)) +
         num_cell(mae_text(row.baseline.mean_width)) + "</tr>\n";
  }
  return s + "</table>\n</section>\n";
}

std::string samples_section(const RunReport& r) {
  std::string s = "<section>\n<h2>Forecasts against truth</h2>\n<div class=\"samples\">\n";
  for (const SampleForecast& f : r.samples) {
    s += "<figure>\n" + forecast_svg(f) + "<figcaption>cell " + escape(f.cell) + ", SOH band " +
         escape(f.band) + ", input from cycle " + std::to_string(f.first_cycle) +
         "</figcaption>\n</figure>\n";
  }
  if (r.samples.empty()) s += "<p>No sample forecasts in this run.</p>\n";
  return s + "</div>\n</section>\n";
}

constexpr const char* kStyle = R"(<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; } th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.baseline td { color: #555; background: #fafafa; } tr.chosen td { background: #fff3c4; }
.chosen-name { font-size: 18px; font-weight: bold; }
.samples { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; }
svg.plot { background: #fff; } svg .frame { fill: none; stroke: #999; }
svg .grid { stroke: #eee; } svg text { font-size: 11px; fill: #333; } svg .label { font-size: 12px; }
svg .front { stroke: #444; stroke-width: 1.5; fill: none; }
svg .budget { stroke: #d62728; stroke-dasharray: 6 4; }
svg .candidate { fill: #1f77b4; fill-opacity: 0.8; } svg .candidate.stage2 { fill: #ff7f0e; } svg .candidate.linear { fill: #2ca02c; }
svg .choice { fill: none; stroke: #d62728; stroke-width: 2.5; }
svg .key-stage1 { stroke: #1f77b4; stroke-width: 6; } svg .key-stage2 { stroke: #ff7f0e; stroke-width: 6; }
svg .key-choice { stroke: #d62728; stroke-width: 2.5; }
svg .split { stroke: #bbb; stroke-dasharray: 3 3; }
svg .s-input { stroke: #888; stroke-width: 1.5; } svg .s-truth { stroke: #000; stroke-width: 2; }
svg .s-teacher { stroke: #2ca02c; stroke-width: 1.5; } svg .s-int8 { stroke: #d62728; stroke-width: 2; }
svg .s-baseline { stroke: #9467bd; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .step-line { stroke-width: 1.5; fill: none; }
svg .point-label { font-size: 10px; fill: #555; }
</style>
)";

}  // namespace

std::string report_html_text(const RunReport& r) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  escape("cyclecast run " + r.run_id) + "</title>\n" + kStyle + "</head>\n<body>\n";
  h += "<h1>" + escape("cyclecast retraining run " + r.run_id) + "</h1>\n<p class=\"meta\">" +
       escape(r.created_at + " · protocol " + r.protocol + " · data " + r.data_source) + "</p>\n";
  h += choice_section(r);
  h += "<section>\n<h2>Pareto front: int8 error against flash</h2>\n" + pareto_svg(r) +
       candidates_table(r) + "</section>\n";
  h += "<section>\n<h2>Every stage against the baselines</h2>\n" + stages_table(r) + "</section>\n";
  h += "<section>\n<h2>Error by horizon step</h2>\n" + error_by_step_svg(r) + "</section>\n";
  h += intervals_section(r);
  h += samples_section(r);
  h += "<section>\n<h2>Timings</h2>\n" +
       pairs_table("timings", "stage", "seconds", r.timings_s,
                   [](double v) { return number(v, "%.1f"); }) +
       "</section>\n";
  h += "<section>\n<h2>Data cleaning</h2>\n" +
       pairs_table("cleaning", "rule", "values changed", r.cleaning,
                   [](int64_t v) { return std::to_string(v); }) +
       "</section>\n";
  h += "<section>\n<h2>Settings</h2>\n" +
       pairs_table("settings", "setting", "value", r.settings,
                   [](const std::string& v) { return v; }) +
       "</section>\n";
  return h + "</body>\n</html>\n";
}

}  // namespace cyclecast::pipeline
