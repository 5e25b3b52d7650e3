// publish_outbox(): libmosquitto's own thread (mosquitto_loop_start) does the network and the
// reconnects; its callbacks only queue acks and flip flags under a mutex. The calling thread
// decides what to send: new records within the window and rate, records whose answer is late,
// and, after every (re)connect or a daemon's restart, the cell metadata then everything not yet
// answered.
#include <mosquitto.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

#include "cyclecast/rig/rig.h"

namespace cyclecast::rig {
namespace {

using Clock = std::chrono::steady_clock;

// An ack stamped when it arrived, so that latency does not include time the sender spends on
// other work (outbox writes) before it looks at the ack.
struct ReceivedAck {
  protocol::Ack ack;
  Clock::time_point arrived_at;
};

// State shared with libmosquitto's thread.
struct Shared {
  explicit Shared(std::chrono::milliseconds min_resend_interval) : starts(min_resend_interval) {}

  std::mutex mutex;
  std::condition_variable wake;
  std::vector<ReceivedAck> acks;
  bool connected = false;
  bool fresh_connection = false;  // set on connect, consumed by the sender
  DaemonStarts starts;  // fed the daemons' statuses, asked by the sender whether to re-send
  int subscriptions_pending = 0;
  std::size_t reconnects = 0;
  std::size_t bad_acks = 0;
  int refused = 0;  // CONNACK code of a refused connection (bad credentials...), 0 if none
  // The rigs' ack topics and the daemons' status, fixed before connecting.
  std::vector<std::string> topics;
};

const std::string kDaemonStatusTopics = protocol::status_topic("+");

// A clean session loses its subscriptions with the connection: subscribe on every connect, and
// send nothing until the broker confirmed them, so that no ack is published before we listen.
void on_connect(mosquitto* mosq, void* user, int rc) {
  auto* shared = static_cast<Shared*>(user);
  std::lock_guard lock(shared->mutex);
  if (rc != 0) {
    shared->refused = rc;
    shared->wake.notify_all();
    return;
  }
  shared->connected = true;
  shared->fresh_connection = true;
  shared->subscriptions_pending = static_cast<int>(shared->topics.size());
  for (const auto& topic : shared->topics)
    mosquitto_subscribe(mosq, nullptr, topic.c_str(), 1);
  shared->wake.notify_all();
}

void on_disconnect(mosquitto* /*mosq*/, void* user, int /*rc*/) {
  auto* shared = static_cast<Shared*>(user);
  std::lock_guard lock(shared->mutex);
  if (shared->connected) ++shared->reconnects;
  shared->connected = false;
}

void on_subscribe(mosquitto* /*mosq*/, void* user, int /*mid*/, int /*count*/,
                  const int* /*granted*/) {
  auto* shared = static_cast<Shared*>(user);
  std::lock_guard lock(shared->mutex);
  if (shared->subscriptions_pending > 0) --shared->subscriptions_pending;
  shared->wake.notify_all();
}

// A daemon that restarted lost whatever it had received and not committed, and the rig's
// re-send wait may have grown to a minute while it was down: its live (not retained) `online`
// status with a new start id says to re-send what is in flight now. A gateway's restart says the
// same; the cost is one window of duplicates. DaemonStarts keeps anyone else who can publish a
// status from making the rig re-send more than once per start and per ack timeout.
void on_message(mosquitto* /*mosq*/, void* user, const mosquitto_message* message) {
  auto* shared = static_cast<Shared*>(user);
  const std::string_view payload(static_cast<const char*>(message->payload),
                                 static_cast<std::size_t>(std::max(message->payloadlen, 0)));
  bool is_status = false;
  mosquitto_topic_matches_sub(kDaemonStatusTopics.c_str(), message->topic, &is_status);
  if (is_status) {
    std::lock_guard lock(shared->mutex);
    shared->starts.seen(message->topic, payload, message->retain);
    return;
  }
  auto ack = protocol::parse_ack(payload);
  std::lock_guard lock(shared->mutex);
  if (!ack) {
    ++shared->bad_acks;
    return;
  }
  shared->acks.push_back({std::move(*ack), Clock::now()});
  shared->wake.notify_all();
}

struct Item {
  const OutboxRecord* record = nullptr;
  Clock::time_point sent_at{};
  int attempts = 0;
  bool in_flight = false;
  bool settled = false;
};

// When to give up waiting for an answer and re-send, as TCP does (RFC 6298): a smoothed
// publish-to-answer time plus four deviations, never under the configured timeout, doubled on
// every expiry up to kMaxResendAfter and back to the estimate only when a record sent once is
// answered (an answer to a re-send cannot say which send it answers: Karn's rule). Without the
// backoff, a daemon that answers nothing (a full database) or slower than the timeout gets the
// whole window again every timeout, and the re-sends bury the answers it can still give.
class ResendTimer {
 public:
  static constexpr std::chrono::milliseconds kMaxResendAfter{60000};

  explicit ResendTimer(std::chrono::milliseconds floor) : floor_(floor) {}

  std::chrono::milliseconds after() const {
    const std::chrono::milliseconds estimate(static_cast<std::int64_t>(srtt_ms_ + 4 * var_ms_));
    return std::min(std::max(estimate, floor_) * backoff_, ceiling());
  }
  void expired() {
    if (after() < ceiling()) backoff_ *= 2;
  }
  // The publish-to-answer time of a record that was sent once.
  void answered(double ms) {
    if (srtt_ms_ == 0) {
      srtt_ms_ = ms;
      var_ms_ = ms / 2;
    } else {
      var_ms_ = 0.75 * var_ms_ + 0.25 * std::abs(srtt_ms_ - ms);
      srtt_ms_ = 0.875 * srtt_ms_ + 0.125 * ms;
    }
    reset_backoff();
  }
  // Someone says the daemon is there again: what held the answers back is gone.
  void reset_backoff() { backoff_ = 1; }

 private:
  std::chrono::milliseconds ceiling() const { return std::max(kMaxResendAfter, floor_); }

  std::chrono::milliseconds floor_;
  double srtt_ms_ = 0, var_ms_ = 0;
  std::int64_t backoff_ = 1;
};

double percentile(std::vector<float>& values, double p) {
  if (values.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

class Sender {
 public:
  Sender(mosquitto* mosq, Shared& shared, const PublishOptions& options,
         std::vector<OutboxRecord>& records, std::vector<storage::CellInfo>& cells)
      : mosq_(mosq),
        shared_(shared),
        options_(options),
        cells_(cells),
        resend_(std::chrono::milliseconds(options.ack_timeout_ms)) {
    items_.reserve(records.size());
    for (auto& r : records) {
      index_[r.cell_id][r.cycle] = items_.size();
      items_.push_back(Item{&r});
      to_send_.push_back(items_.size() - 1);
    }
    progress_.total = items_.size();
    unsettled_ = items_.size();
  }

  Result<PublishSummary> run(Outbox& outbox,
                             const std::function<void(const PublishProgress&)>& progress);

 private:
  void take_acks(const std::vector<ReceivedAck>& acks);
  void on_fresh_connection();
  void on_daemon_online();
  void requeue_in_flight();
  void expire_late(Clock::time_point now);
  void send_some(Clock::time_point now);
  bool publish_message(std::vector<std::size_t>& batch, Clock::time_point now);

  mosquitto* mosq_;
  Shared& shared_;
  const PublishOptions& options_;
  std::vector<storage::CellInfo>& cells_;
  std::vector<Item> items_;
  std::unordered_map<std::string, std::unordered_map<std::int64_t, std::size_t>> index_;
  std::deque<std::size_t> to_send_;
  std::deque<std::pair<std::size_t, Clock::time_point>> in_flight_fifo_;
  std::size_t in_flight_ = 0;
  std::size_t unsettled_ = 0;
  double tokens_ = 0;
  Clock::time_point last_refill_ = Clock::now();
  std::vector<Settlement> settlements_;
  std::vector<float> latencies_ms_;
  ResendTimer resend_;
  PublishProgress progress_;
};

void Sender::take_acks(const std::vector<ReceivedAck>& acks) {
  for (const auto& [ack, now] : acks) {
    double sent_once_ms = -1;  // the slowest answer in this ack to a record sent once
    for (const auto& range : ack.ranges) {
      // Not stored for now (docs/protocol.md): the records stay in flight and are sent again
      // when their wait expires, like records the daemon has not answered.
      if (range.outcome == protocol::AckOutcome::kRetry) continue;
      const auto cell = index_.find(range.cell_id);
      if (cell == index_.end()) continue;
      for (std::int64_t cycle = range.first_cycle; cycle <= range.last_cycle; ++cycle) {
        const auto found = cell->second.find(cycle);
        if (found == cell->second.end()) continue;
        Item& item = items_[found->second];
        if (item.settled) continue;
        item.settled = true;
        --unsettled_;
        if (item.in_flight) {
          item.in_flight = false;
          --in_flight_;
        }
        if (item.attempts > 0) {
          const float ms = std::chrono::duration<float, std::milli>(now - item.sent_at).count();
          latencies_ms_.push_back(ms);
          if (item.attempts == 1) sent_once_ms = std::max(sent_once_ms, double{ms});
        }
        const bool durable = range.outcome == protocol::AckOutcome::kStored ||
                             range.outcome == protocol::AckOutcome::kDuplicate;
        ++(durable ? progress_.confirmed : progress_.rejected);
      }
      // Whole ranges: one UPDATE per range, not per record, keeps the outbox off the hot path.
      settlements_.push_back(
          {range.cell_id, range.first_cycle, range.last_cycle, range.outcome, range.reason});
    }
    if (sent_once_ms >= 0) resend_.answered(sent_once_ms);
  }
}

void Sender::on_fresh_connection() {
  // Metadata first: the daemon refuses records of cells it does not know.
  for (const auto& cell : cells_) {
    const std::string payload = protocol::serialize_cell_meta(cell);
    mosquitto_publish(mosq_, nullptr, protocol::meta_topic(cell.rig_id, cell.cell_id).c_str(),
                      static_cast<int>(payload.size()), payload.data(), 1, true);
  }
  // Whatever was in flight may have been lost with the connection: send it again now.
  requeue_in_flight();
}

void Sender::on_daemon_online() {
  ++progress_.daemon_restarts;
  resend_.reset_backoff();
  requeue_in_flight();
}

void Sender::requeue_in_flight() {
  for (auto& [index, sent_at] : in_flight_fifo_) {
    Item& item = items_[index];
    if (item.in_flight && !item.settled && item.sent_at == sent_at) {
      item.in_flight = false;
      to_send_.push_front(index);
    }
  }
  in_flight_fifo_.clear();
  in_flight_ = 0;
}

void Sender::expire_late(Clock::time_point now) {
  const auto timeout = resend_.after();
  bool expired = false;
  while (!in_flight_fifo_.empty()) {
    const auto [index, sent_at] = in_flight_fifo_.front();
    Item& item = items_[index];
    if (!item.in_flight || item.settled || item.sent_at != sent_at) {
      in_flight_fifo_.pop_front();
      continue;
    }
    if (now - sent_at < timeout) break;
    item.in_flight = false;
    --in_flight_;
    to_send_.push_back(index);
    in_flight_fifo_.pop_front();
    expired = true;
  }
  if (expired) resend_.expired();
}

bool Sender::publish_message(std::vector<std::size_t>& batch, Clock::time_point now) {
  const OutboxRecord& first = *items_[batch.front()].record;
  std::string payload = "[";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) payload += ',';
    payload += items_[batch[i]].record->payload;
  }
  payload += ']';
  const std::string topic = protocol::cycles_topic(first.rig_id, first.cell_id);
  const int rc = mosquitto_publish(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), 1, false);
  if (rc != MOSQ_ERR_SUCCESS) return false;
  for (std::size_t index : batch) {
    Item& item = items_[index];
    if (item.attempts > 0) ++progress_.resent;
    ++item.attempts;
    item.in_flight = true;
    item.sent_at = now;
    in_flight_fifo_.emplace_back(index, now);
  }
  in_flight_ += batch.size();
  progress_.sent += batch.size();
  return true;
}

void Sender::send_some(Clock::time_point now) {
  if (options_.rate_records_per_s > 0) {
    const double elapsed_s = std::chrono::duration<double>(now - last_refill_).count();
    const double burst = std::max(static_cast<double>(options_.records_per_message),
                                  options_.rate_records_per_s * 0.01);
    tokens_ = std::min(burst, tokens_ + elapsed_s * options_.rate_records_per_s);
  }
  last_refill_ = now;
  std::vector<std::size_t> batch;
  while (!to_send_.empty() && in_flight_ < options_.window_records) {
    std::size_t room = std::min(options_.records_per_message, options_.window_records - in_flight_);
    if (options_.rate_records_per_s > 0) {
      if (tokens_ < 1) break;
      room = std::min(room, static_cast<std::size_t>(tokens_));
    }
    batch.clear();
    const std::string* cell = nullptr;
    while (!to_send_.empty() && batch.size() < room) {
      const std::size_t index = to_send_.front();
      const Item& item = items_[index];
      if (item.settled || item.in_flight) {
        to_send_.pop_front();
        continue;
      }
      if (cell != nullptr && item.record->cell_id != *cell) break;
      cell = &item.record->cell_id;
      batch.push_back(index);
      to_send_.pop_front();
    }
    if (batch.empty()) continue;
    if (!publish_message(batch, now)) {
      // Not connected any more: put them back, the reconnect re-sends.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it)
        to_send_.push_front(*it);
      break;
    }
    if (options_.rate_records_per_s > 0) tokens_ -= static_cast<double>(batch.size());
  }
}

Result<PublishSummary> Sender::run(Outbox& outbox,
                                   const std::function<void(const PublishProgress&)>& progress) {
  const auto started = Clock::now();
  const auto deadline = options_.deadline_s > 0
                            ? started + std::chrono::seconds(options_.deadline_s)
                            : Clock::time_point::max();
  auto last_progress = started;
  auto last_flush = started;
  std::vector<ReceivedAck> acks;
  while (unsettled_ > 0) {
    bool fresh = false;
    bool daemon_online = false;
    bool ready = false;
    {
      std::unique_lock lock(shared_.mutex);
      shared_.wake.wait_for(lock, std::chrono::milliseconds(2),
                            [&] { return !shared_.acks.empty(); });
      acks.swap(shared_.acks);
      fresh = std::exchange(shared_.fresh_connection, false);
      daemon_online = shared_.starts.resend_due(Clock::now());
      progress_.ignored_statuses = shared_.starts.ignored();
      ready = shared_.connected && shared_.subscriptions_pending == 0;
      progress_.reconnects = shared_.reconnects;
    }
    take_acks(acks);
    acks.clear();
    const auto now = Clock::now();
    if (settlements_.size() >= 5000 || now - last_flush > std::chrono::milliseconds(200)) {
      if (auto saved = outbox.settle(settlements_); !saved) return saved.error();
      settlements_.clear();
      last_flush = now;
    }
    if (now >= deadline) break;
    if (fresh) on_fresh_connection();
    if (daemon_online && !fresh) on_daemon_online();
    if (ready) {
      expire_late(now);
      send_some(now);
    }
    if (progress && now - last_progress >= std::chrono::seconds(1)) {
      progress_.resend_after_s = std::chrono::duration<double>(resend_.after()).count();
      progress_.seconds = std::chrono::duration<double>(now - started).count();
      progress(progress_);
      last_progress = now;
    }
  }
  if (auto saved = outbox.settle(settlements_); !saved) return saved.error();
  PublishSummary summary;
  progress_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  summary.progress = progress_;
  summary.unanswered = unsettled_;
  summary.latency_p50_ms = percentile(latencies_ms_, 0.50);
  summary.latency_p99_ms = percentile(latencies_ms_, 0.99);
  summary.latency_max_ms = percentile(latencies_ms_, 1.0);
  return summary;
}

}  // namespace

Result<PublishSummary> publish_outbox(Outbox& outbox, const PublishOptions& options,
                                      const std::function<void(const PublishProgress&)>& progress) {
  auto pending = outbox.pending();
  if (!pending) return pending.error();
  auto cells = outbox.cells();
  if (!cells) return cells.error();
  if (pending->empty()) return PublishSummary{};

  mosquitto_lib_init();
  Shared shared{std::chrono::milliseconds(options.ack_timeout_ms)};
  const std::string client_id =
      options.client_id.empty() ? "cyclecast-rig-" + std::to_string(getpid()) : options.client_id;
  mosquitto* mosq = mosquitto_new(client_id.c_str(), true, &shared);
  if (mosq == nullptr) return make_error(ErrorCode::kIo, "mosquitto_new failed");
  struct Cleanup {
    mosquitto* mosq;
    ~Cleanup() {
      mosquitto_disconnect(mosq);
      mosquitto_loop_stop(mosq, false);
      mosquitto_destroy(mosq);
    }
  } cleanup{mosq};
  mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_max_inflight_messages_set(mosq, 1000);
  mosquitto_reconnect_delay_set(mosq, 1, 10, true);
  if (!options.username.empty()) {
    mosquitto_username_pw_set(mosq, options.username.c_str(),
                              options.password.empty() ? nullptr : options.password.c_str());
  }
  if (!options.tls_ca_file.empty() &&
      mosquitto_tls_set(mosq, options.tls_ca_file.c_str(), nullptr,
                        options.tls_cert_file.empty() ? nullptr : options.tls_cert_file.c_str(),
                        options.tls_key_file.empty() ? nullptr : options.tls_key_file.c_str(),
                        nullptr) != MOSQ_ERR_SUCCESS) {
    return make_error(ErrorCode::kInvalidArgument, "TLS files: CA " + options.tls_ca_file +
                                                       ", certificate " + options.tls_cert_file +
                                                       ", key " + options.tls_key_file);
  }
  mosquitto_connect_callback_set(mosq, on_connect);
  mosquitto_disconnect_callback_set(mosq, on_disconnect);
  mosquitto_subscribe_callback_set(mosq, on_subscribe);
  mosquitto_message_callback_set(mosq, on_message);

  std::set<std::string> rigs;
  for (const auto& r : *pending)
    rigs.insert(r.rig_id);
  for (const auto& rig : rigs)
    shared.topics.push_back(protocol::acks_topic(rig));
  shared.topics.push_back(kDaemonStatusTopics);
  mosquitto_connect_async(mosq, options.host.c_str(), options.port, 30);
  if (mosquitto_loop_start(mosq) != MOSQ_ERR_SUCCESS) {
    return make_error(ErrorCode::kIo, "cannot start the MQTT thread");
  }
  {
    std::unique_lock lock(shared.mutex);
    if (!shared.wake.wait_for(lock, std::chrono::seconds(options.connect_timeout_s),
                              [&] { return shared.connected || shared.refused != 0; })) {
      return make_error(ErrorCode::kIo, "cannot reach the broker at " + options.host + ":" +
                                            std::to_string(options.port));
    }
    if (!shared.connected) {
      return make_error(ErrorCode::kIo,
                        "the broker at " + options.host + ":" + std::to_string(options.port) +
                            " refused us: " + mosquitto_connack_string(shared.refused));
    }
  }
  Sender sender(mosq, shared, options, *pending, *cells);
  return sender.run(outbox, progress);
}

}  // namespace cyclecast::rig
