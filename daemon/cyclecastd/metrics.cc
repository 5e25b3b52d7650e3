#include "metrics.h"

#include <charconv>
#include <cmath>

namespace cyclecast::daemon {
namespace {

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// HELP text escapes only backslash and line feed (the text format, version 0.0.4).
std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Prometheus floats: the shortest text that reads back as the same double (0.08, not
// 0.080000000000000002), and the text format's spellings of the special values.
std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  const auto written = std::to_chars(text, text + sizeof text, value);
  return std::string(text, written.ptr);
}

}  // namespace

const char* reject_reason_label(RejectReason reason) {
  switch (reason) {
    case RejectReason::kTopic:
      return "topic";
    case RejectReason::kPayload:
      return "payload";
    case RejectReason::kRecord:
      return "record";
    case RejectReason::kCellMeta:
      return "cell_meta";
    case RejectReason::kEdgeForecast:
      return "edge_forecast";
    case RejectReason::kConflict:
      return "conflict";
    case RejectReason::kUnknownCell:
      return "unknown_cell";
    case RejectReason::kForeignCell:
      return "foreign_cell";
  }
  return "other";
}

void LatencyHistogram::observe(std::chrono::microseconds latency) {
  const double seconds = static_cast<double>(latency.count()) / 1e6;
  std::size_t bucket = 0;
  while (bucket < kBoundsS.size() && seconds > kBoundsS[bucket])
    ++bucket;
  ++counts_[bucket];
  sum_us_ += static_cast<std::uint64_t>(latency.count());
}

void LatencyHistogram::render(std::string& out, std::string_view name,
                              std::string_view help) const {
  MetricFamily family(name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBoundsS.size(); ++i) {
    cumulative += counts_[i];
    family.add_with_suffix("_bucket", {{"le", number(kBoundsS[i])}},
                           static_cast<double>(cumulative));
  }
  cumulative += counts_.back();
  family.add_with_suffix("_bucket", {{"le", "+Inf"}}, static_cast<double>(cumulative));
  family.add_with_suffix("_sum", {}, static_cast<double>(sum_us_) / 1e6);
  family.add_with_suffix("_count", {}, static_cast<double>(cumulative));
  family.render(out);
}

MetricFamily::MetricFamily(std::string_view name, std::string_view type, std::string_view help)
    : name_(name) {
  render_help(head_, name, type, help);
}

void MetricFamily::add_with_suffix(std::string_view suffix, const Labels& labels, double value) {
  render_sample(body_, name_ + std::string(suffix), labels, value);
  ++samples_;
}

void MetricFamily::render(std::string& out) const {
  out += head_;
  out += body_;
}

std::uint64_t DaemonMetrics::rejected_total() const {
  std::uint64_t total = 0;
  for (const auto& n : rejected)
    total += n;
  return total;
}

void render_help(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void render_sample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out.append(name);
  if (!labels.empty()) {
    out += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out += ',';
      out.append(labels[i].first).append("=\"").append(escape_label(labels[i].second)) += '"';
    }
    out += '}';
  }
  out.append(" ").append(number(value)).append("\n");
}

void render_metric(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help, double value) {
  render_help(out, name, type, help);
  render_sample(out, name, {}, value);
}

std::string status_line(const DaemonMetrics& m) {
  return "messages " + std::to_string(m.messages) + ", stored " + std::to_string(m.stored) +
         ", duplicates " + std::to_string(m.duplicates) + ", rejected " +
         std::to_string(m.rejected_total()) + ", commits " + std::to_string(m.commits) + " (" +
         std::to_string(m.commit_failures) + " failed), forecasts published " +
         std::to_string(m.forecasts_published);
}

}  // namespace cyclecast::daemon
