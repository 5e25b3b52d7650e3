// cyclecastd's own counters: written by the event loop, read by the HTTP API's threads for
// /metrics and /healthz, hence atomics. Rendering follows the Prometheus text exposition format
// (version 0.0.4); names and labels are listed in docs/daemon.md.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cyclecast::daemon {

// Why a message or record was refused, as the label `reason` of cyclecast_rejected_total. Parse
// errors carry details in their message; the label is their kind, so it stays a small set.
enum class RejectReason {
  kTopic,         // a topic that is not protocol v1
  kPayload,       // a cycles message that does not parse as a whole
  kRecord,        // one record of a cycles message
  kCellMeta,      // a cell's retained metadata
  kEdgeForecast,  // an edge node's forecast
  kConflict,      // a cycle stored before with other values
  kUnknownCell,   // a cycle of a cell whose metadata is not stored (answered `retry`)
  kForeignCell,   // metadata or cycles of a cell published under a rig it does not belong to
};
inline constexpr std::size_t kRejectReasons = 8;
const char* reject_reason_label(RejectReason reason);

// Commit latency of the writer's batches, cumulative buckets in seconds.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBoundsS = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                      0.05,   0.1,   0.2,   0.5,   1.0,  2.0};
  void observe(std::chrono::microseconds latency);
  // "# HELP", "# TYPE" and the _bucket, _sum and _count lines.
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBoundsS.size() + 1> counts_{};  // last: above all
  std::atomic<std::uint64_t> sum_us_{0};
};

struct DaemonMetrics {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> records_received{0};
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::array<std::atomic<std::uint64_t>, kRejectReasons> rejected{};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_failures{0};
  std::atomic<std::uint64_t> acks_published{0};
  std::atomic<std::uint64_t> edge_forecasts{0};  // stored
  // Edge forecasts refused for a SOH outside [0, 1.2] (also counted under kEdgeForecast).
  std::atomic<std::uint64_t> edge_forecasts_implausible{0};
  std::atomic<std::uint64_t> forecasts_published{0};
  std::atomic<bool> mqtt_connected{false};
  std::atomic<bool> last_commit_failed{false};
  std::atomic<bool> storage_full{false};  // the last commit failed for want of room
  LatencyHistogram commit_latency;
  // HTTP responses sent, by status code (100..599; anything else counts under 0).
  std::array<std::atomic<std::uint64_t>, 600> http_responses{};

  void count_rejection(RejectReason reason, std::uint64_t n = 1) {
    rejected[static_cast<std::size_t>(reason)] += n;
  }
  void count_http_response(unsigned status) {
    ++http_responses[status >= 100 && status < http_responses.size() ? status : 0];
  }
  std::uint64_t rejected_total() const;
};

// One line of the counters, for the log: "messages N, stored N, ...".
std::string status_line(const DaemonMetrics& m);

// Prometheus text lines. Label values are escaped (\\, \", \n), HELP text too (\\, \n).
using Labels = std::vector<std::pair<std::string, std::string>>;

// One metric family: its HELP and TYPE lines, then all its samples together. Parsers read the
// samples after a family's TYPE as that family's and start a new one at any other name, so a
// family whose samples interleave with another's is split in two (Prometheus' own parsers refuse
// it): whatever produces the samples of several families in one pass adds them to one
// MetricFamily each and renders them after. Not thread-safe; made per scrape.
class MetricFamily {
 public:
  MetricFamily(std::string_view name, std::string_view type, std::string_view help);
  // name{labels} value
  void add(const Labels& labels, double value) { add_with_suffix("", labels, value); }
  // name<suffix>{labels} value, for a histogram's _bucket, _sum and _count.
  void add_with_suffix(std::string_view suffix, const Labels& labels, double value);
  void render(std::string& out) const;
  std::size_t size() const { return samples_; }

 private:
  std::string name_;
  std::string head_;  // HELP and TYPE
  std::string body_;  // the samples
  std::size_t samples_ = 0;
};

void render_help(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help);
void render_sample(std::string& out, std::string_view name, const Labels& labels, double value);
// A metric with one unlabelled sample: HELP, TYPE and the value.
void render_metric(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help, double value);

}  // namespace cyclecast::daemon
