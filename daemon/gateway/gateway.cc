#include "gateway.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/signing.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::gateway {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Gateway::Gateway(asio::io_context& io, GatewayOptions options)
    : io_(io),
      options_(std::move(options)),
      serial_(io),
      answer_timer_(io),
      reopen_timer_(io),
      status_timer_(io) {
  status_.node = options_.node_id;
  status_.state = "disconnected";
  for (const std::string& cell : options_.cells) {
    options_.mqtt.subscriptions.push_back("cyclecast/v1/rigs/+/cells/" + cell + "/meta");
    options_.mqtt.subscriptions.push_back("cyclecast/v1/rigs/+/cells/" + cell + "/cycles");
  }
  mqtt::Handlers handlers;
  handlers.on_message = [this](std::string topic, std::string payload) {
    asio::post(io_, [this, topic = std::move(topic), payload = std::move(payload)] {
      on_mqtt_message(topic, payload);
    });
  };
  handlers.on_connection = [this](bool connected, const std::string& detail) {
    asio::post(io_, [this, connected, detail] {
      spdlog::info("mqtt {}: {}", connected ? "connected" : "disconnected", detail);
      if (connected) publish_status();
    });
  };
  mqtt_ = std::make_unique<mqtt::Client>(options_.mqtt, std::move(handlers));
}

Gateway::~Gateway() = default;

Result<void> Gateway::start() {
  // The bundle is verified before anything is sent, to the broker or to the node.
  if (auto loaded = load_update(); !loaded) return loaded;
  if (auto started = mqtt_->start(); !started) return started;
  open_line();
  schedule_status();
  return {};
}

void Gateway::stop() {
  if (stopping_) return;
  stopping_ = true;
  close_line();
  reopen_timer_.cancel();
  status_timer_.cancel();
  set_state("offline");
  mqtt_->stop();
}

// ---- MQTT side --------------------------------------------------------------------------------

void Gateway::on_mqtt_message(const std::string& topic_text, const std::string& payload) {
  auto topic = protocol::parse_topic(topic_text);
  if (!topic || payload.empty()) return;
  if (topic->kind == protocol::TopicKind::kCellMeta) {
    auto cell = protocol::parse_cell_meta(payload, *topic);
    if (cell) {
      cells_[cell->cell_id] = *cell;
    } else {
      spdlog::warn("ignoring metadata on {}: {}", topic_text, cell.error().message);
    }
    return;
  }
  const auto cell = cells_.find(topic->cell_id);
  if (topic->kind != protocol::TopicKind::kCycles || cell == cells_.end()) {
    spdlog::warn("ignoring {}: no metadata of cell '{}' seen yet", topic_text, topic->cell_id);
    ++status_.dropped_records;
    return;
  }
  auto parsed = protocol::parse_cycles_payload(payload, *topic, &cell->second);
  if (!parsed) {
    spdlog::warn("ignoring {}: {}", topic_text, parsed.error().message);
    return;
  }
  std::sort(parsed->records.begin(), parsed->records.end(),
            [](const auto& a, const auto& b) { return a.cycle < b.cycle; });
  for (const storage::CycleRecord& record : parsed->records)
    enqueue(cell->second, record);
  send_next();
}

// Rigs re-send records until cyclecastd acknowledges them, so a cycle at or below the last one
// queued for the cell is a re-send and skipped.
void Gateway::enqueue(const storage::CellInfo& cell, const storage::CycleRecord& record) {
  auto [last, inserted] = last_enqueued_.emplace(record.cell_id, 0);
  if (!inserted && record.cycle <= last->second) return;
  last->second = record.cycle;
  wire::NodeCycle c;
  c.cell = record.cell_id;
  c.cycle = record.cycle;
  c.soh = record.discharge_capacity_ah / cell.rated_capacity_ah;
  c.ir_ohm = record.internal_resistance_ohm;
  c.temperature_c = record.temperature_avg_c;
  c.charge_time_min = record.charge_time_min;
  if (queue_.size() >= options_.queue_limit) {
    ++status_.dropped_records;  // the node fell behind: the oldest pending cycle goes
    queue_.pop_front();
  }
  queue_.push_back({std::move(c), false});
}

// ---- the line -----------------------------------------------------------------------------------

void Gateway::open_line() {
  if (stopping_) return;
  boost::system::error_code ec;
  serial_.open(options_.serial_path, ec);
  if (!ec) {
    using asio::serial_port_base;
    // A pty takes the settings too; a USB CDC port ignores the rate.
    serial_.set_option(serial_port_base::baud_rate(options_.baud), ec);
    serial_.set_option(serial_port_base::character_size(8), ec);
    serial_.set_option(serial_port_base::parity(serial_port_base::parity::none), ec);
    serial_.set_option(serial_port_base::stop_bits(serial_port_base::stop_bits::one), ec);
    serial_.set_option(serial_port_base::flow_control(serial_port_base::flow_control::none), ec);
    ec = {};
  }
  if (ec) {
    schedule_reopen("disconnected", "cannot open " + options_.serial_path + ": " + ec.message());
    return;
  }
  spdlog::info("opened {}", options_.serial_path);
  open_ = true;
  protocol_ = wire::kNodeProtocolV2;
  line_.clear();
  skipping_ = false;
  identified_ = false;
  ++status_.reopens;
  read_more();
  send_identify();
}

void Gateway::schedule_reopen(const std::string& state, const std::string& why) {
  close_line();
  if (stopping_) return;
  set_state(state);
  const int delay = static_cast<int>(std::min<int64_t>(
      options_.reopen_max_ms, int64_t{options_.reopen_min_ms} << std::min(reopen_attempt_, 20)));
  ++reopen_attempt_;
  spdlog::warn("{}; reopening in {} ms", why, delay);
  reopen_timer_.expires_after(milliseconds(delay));
  reopen_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) open_line();
  });
}

void Gateway::close_line() {
  answer_timer_.cancel();
  requeue_in_flight();
  if (open_) {
    boost::system::error_code ignored;
    serial_.cancel(ignored);
    serial_.close(ignored);
  }
  open_ = false;
  writing_ = false;
  identified_ = false;
  // Whatever the node holds now, the next identify is followed by a replay of the histories.
  replay_after_identify_ = true;
}

void Gateway::read_more() {
  serial_.async_read_some(asio::buffer(read_buffer_),
                          [this](boost::system::error_code ec, size_t n) {
                            if (ec == asio::error::operation_aborted || !open_) return;
                            if (ec) {
                              schedule_reopen("disconnected", "serial line: " + ec.message());
                              return;
                            }
                            on_bytes(n);
                            if (open_) read_more();
                          });
}

// Splits into lines with the node's own bound: an overlong line is skipped to its '\n'.
void Gateway::on_bytes(size_t n) {
  for (size_t i = 0; i < n && open_; ++i) {
    const char ch = read_buffer_[i];
    if (ch == '\n') {
      if (skipping_) {
        ++status_.garbage_lines;
      } else {
        on_line(line_);
      }
      line_.clear();
      skipping_ = false;
    } else if (!skipping_ && line_.size() == wire::kMaxNodeLine + 1) {
      skipping_ = true;  // +1: a trailing '\r' is allowed
    } else if (!skipping_) {
      line_ += ch;
    }
  }
}

void Gateway::on_line(const std::string& line) {
  if (line.empty() || line == "\r") return;
  auto answer = wire::parse_answer(line);
  if (!answer) {
    ++status_.garbage_lines;
    spdlog::debug("garbage from the node ({}): {:.80}", answer.error().message, line);
    return;
  }
  status_.last_seen_ms = now_ms();
  on_answer(*answer);
}

void Gateway::on_answer(const wire::Answer& answer) {
  if (const auto* hello = std::get_if<wire::HelloAnswer>(&answer)) {
    on_hello(*hello);
    return;
  }
  if (!in_flight_ || wire::answer_seq(answer) != in_flight_->seq) return;  // late: already resent
  answer_timer_.cancel();
  if (fall_back_to_v1(answer)) return;
  if (const auto* id = std::get_if<wire::IdentifyAnswer>(&answer)) {
    if (in_flight_->kind == RequestKind::kIdentify) on_identify(*id);
    return;
  }
  // Each handler may put the next request in flight: dispatch on the kind answered, once.
  switch (in_flight_->kind) {
    case RequestKind::kCycle:
      on_cycle_answer(answer);
      break;
    case RequestKind::kSlots:
      on_slots_answer(answer);
      break;
    case RequestKind::kUpdate:
      on_update_answer(answer);
      break;
    case RequestKind::kIdentify:
      break;
  }
}

// A node that does not speak v2 answers a v2 request "cc1 ER SEQ version": the request goes back
// to the queue and the node is identified again in v1. True when that happened.
bool Gateway::fall_back_to_v1(const wire::Answer& answer) {
  const auto* error = std::get_if<wire::ErrorAnswer>(&answer);
  if (error == nullptr || error->code != "version" || protocol_ == wire::kNodeProtocolV1)
    return false;
  spdlog::info("node does not speak protocol v2; speaking v1 (no intervals)");
  protocol_ = wire::kNodeProtocolV1;
  requeue_in_flight();
  identified_ = false;
  send_identify();
  return true;
}

// The node restarted: its histories are gone. The request in flight goes back to the queue,
// behind a replay of the histories, after the node has identified itself again.
void Gateway::on_hello(const wire::HelloAnswer& hello) {
  ++status_.resets;
  spdlog::warn("node reset (model {}); replaying cell histories", hello.model_version);
  answer_timer_.cancel();
  requeue_in_flight();
  identified_ = false;
  replay_after_identify_ = true;
  protocol_ = wire::kNodeProtocolV2;  // the node may have been flashed with another firmware
  send_identify();
}

void Gateway::on_identify(const wire::IdentifyAnswer& id) {
  in_flight_.reset();
  spdlog::info("node speaks protocol v{}; model {} {} an interval table", id.version,
               id.model_version, id.interval_bands > 0 ? "with" : "without");
  identified_ = true;
  reopen_attempt_ = 0;
  status_.model_version = id.model_version;
  status_.model_sha256 = id.model_sha256;
  status_.window = id.window;
  status_.horizon = id.horizon;
  for (auto& [cell, cycles] : history_) {
    while (static_cast<int64_t>(cycles.size()) > id.window)
      cycles.pop_front();
  }
  if (replay_after_identify_) queue_replay();
  replay_after_identify_ = false;
  set_state("online");
  if (!id.active_slot.empty()) status_.active_slot = id.active_slot;
  if (update_ && protocol_ == wire::kNodeProtocolV1 && !status_.update.starts_with("failed:")) {
    end_update("failed:protocol");  // a v1 node has no update: it would refuse every frame
    return;
  }
  if (update_ && protocol_ == wire::kNodeProtocolV2) {
    send_slots();  // then the update, if the node does not run the bundle's model yet
    return;
  }
  send_next();
}

void Gateway::on_cycle_answer(const wire::Answer& answer) {
  const Item item = in_flight_->item;
  in_flight_.reset();
  if (const auto* error = std::get_if<wire::ErrorAnswer>(&answer)) {
    // "order" after a replay means the node kept its history: harmless. Anything else is a
    // cycle the node will not take; it is dropped and counted.
    if (!(item.replay && error->code == "order")) {
      ++status_.dropped_records;
      spdlog::warn("node refused cell {} cycle {}: {}", item.cycle.cell, item.cycle.cycle,
                   error->code);
    }
  } else if (!item.replay) {
    remember(item.cycle);
  }
  if (const auto* fc = std::get_if<wire::ForecastAnswer>(&answer); fc != nullptr && !item.replay)
    publish_forecast(*fc);
  send_next();
}

// ---- model update ---------------------------------------------------------------------------

namespace {

Result<std::vector<uint8_t>> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path);
  std::vector<uint8_t> bytes;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0)
    bytes.insert(bytes.end(), buffer, buffer + in.gcount());
  return bytes;
}

}  // namespace

// The bundle must verify with the operator's key and hold a node-model blob that reads.
Result<void> Gateway::load_update() {
  if (options_.update_bundle.empty()) return {};
  auto key_bytes = read_bytes(options_.operator_key);
  if (!key_bytes) return key_bytes.error();
  auto key = bundle::parse_public_key(
      std::string_view(reinterpret_cast<const char*>(key_bytes->data()), key_bytes->size()));
  if (!key) return make_error(key.error().code, options_.operator_key + ": " + key.error().message);
  auto bytes = read_bytes(options_.update_bundle);
  if (!bytes) return bytes.error();
  auto verified = bundle::verify_bundle(*bytes, *key);
  if (!verified) {
    return make_error(verified.error().code,
                      options_.update_bundle + ": " + verified.error().message);
  }
  const auto model = std::find_if(verified->files.begin(), verified->files.end(),
                                  [](const auto& f) { return f.name == "model/model.bin"; });
  if (model == verified->files.end()) {
    return make_error(ErrorCode::kCorrupt, options_.update_bundle + ": no model/model.bin");
  }
  auto read = pipeline::read_node_model(model->data);
  if (!read) {
    return make_error(read.error().code, options_.update_bundle + ": " + read.error().message);
  }
  ModelUpdate u;
  u.blob.assign(model->data.begin(), model->data.end());
  u.version = read->version;
  u.sha256 = read->sha256_hex;
  update_ = std::move(u);
  spdlog::info("bundle {} verified: the node is to run model {} ({})", options_.update_bundle,
               update_->version, update_->sha256);
  return {};
}

void Gateway::send_slots() {
  InFlight request;
  request.kind = RequestKind::kSlots;
  request.seq = next_seq_;
  request.frame = wire::slots_request(request.seq);
  send(std::move(request));
}

// The node's slots; then the update starts unless the node runs the bundle's model already, or
// an earlier transfer to it failed (the node said why: retrying would fail the same way).
void Gateway::on_slots_answer(const wire::Answer& answer) {
  in_flight_.reset();
  const auto* slots = std::get_if<wire::SlotsAnswer>(&answer);
  if (slots == nullptr) {
    end_update("failed:protocol");  // a protocol 1 node answers ER version
    return;
  }
  status_.active_slot = slots->active;
  if (status_.model_sha256 == update_->sha256) {
    end_update(update_->sent ? "switched" : "current");
    return;
  }
  if (status_.update.starts_with("failed:")) {
    publish_status();
    send_next();
    return;
  }
  update_->sent = true;
  update_->refusals = 0;
  status_.update = "sending";
  publish_status();
  spdlog::info("updating node {} to model {}", options_.node_id, update_->version);
  send_update_frame(wire::update_begin_request(next_seq_, update_->blob.size(), update_->sha256,
                                               update_->version));
}

void Gateway::send_update_frame(std::string frame) {
  InFlight request;
  request.kind = RequestKind::kUpdate;
  request.seq = next_seq_;
  request.frame = std::move(frame);
  send(std::move(request));
}

// Each answer names the next offset the node wants: chunks go from there, so a refused or lost
// chunk is simply sent again; once all are in, the commit.
void Gateway::on_update_answer(const wire::Answer& answer) {
  in_flight_.reset();
  const auto* up = std::get_if<wire::UpdateAnswer>(&answer);
  if (up == nullptr) {
    const auto* error = std::get_if<wire::ErrorAnswer>(&answer);
    end_update("failed:" + (error != nullptr ? error->code : std::string("protocol")));
    return;
  }
  if (up->word == "switched") {
    end_update("switched");  // the node's HI follows: the histories are replayed
    return;
  }
  const bool retry = up->word == "chunk" || up->word == "offset";
  if (!up->receiving || !(up->word == "ok" || retry) || (retry && ++update_->refusals > 5)) {
    end_update("failed:" + up->word);
    return;
  }
  if (!retry) update_->refusals = 0;
  const auto next = static_cast<size_t>(up->next);
  if (next >= update_->blob.size()) {
    send_update_frame(wire::update_commit_request(next_seq_));
    return;
  }
  send_update_frame(wire::update_chunk_request(
      next_seq_, next, std::string_view(update_->blob).substr(next, wire::kUpdateChunkBytes)));
}

void Gateway::end_update(const std::string& state) {
  if (state.starts_with("failed:")) {
    spdlog::warn("model update of node {} failed: {}", options_.node_id, state.substr(7));
  }
  status_.update = state;
  publish_status();
  send_next();
}

void Gateway::publish_forecast(const wire::ForecastAnswer& fc) {
  wire::EdgeForecast f;
  f.node = options_.node_id;
  f.cell = fc.cell;
  f.cycle = fc.cycle;
  f.model_version = fc.model_version;
  f.model_sha256 = status_.model_sha256;
  f.horizon = status_.horizon;
  f.soh_at_10 = fc.soh_at_10;
  f.soh_at_h = fc.soh_at_h;
  f.eol_cycle = fc.eol_cycle;
  f.forecast_us = fc.forecast_us;
  f.received_at_ms = now_ms();
  f.interval = fc.interval;
  std::string payload = wire::serialize_edge_forecast(f);
  if (payload.size() > wire::kMaxEdgeForecastBytes && f.interval) {
    // The interval's per-step arrays of a very long horizon: the forecast goes without them
    // rather than be refused whole.
    spdlog::warn("forecast of cell {} cycle {}: interval left out (payload of {} bytes)", f.cell,
                 f.cycle, payload.size());
    f.interval.reset();
    payload = wire::serialize_edge_forecast(f);
  }
  ++status_.forecasts;
  mqtt_->publish(wire::node_forecasts_topic(options_.node_id), payload);
}

// ---- requests -----------------------------------------------------------------------------------

void Gateway::send_identify() {
  if (!open_) return;
  InFlight request;
  request.kind = RequestKind::kIdentify;
  request.seq = next_seq_;
  // A leading '\n' ends whatever half line the node holds from before (docs/node-protocol.md).
  request.frame = "\n" + wire::identify_request(request.seq, protocol_);
  send(std::move(request));
}

void Gateway::send_next() {
  status_.queued = static_cast<int64_t>(queue_.size());
  if (!open_ || !identified_ || in_flight_ || queue_.empty()) return;
  InFlight request;
  request.kind = RequestKind::kCycle;
  request.seq = next_seq_;
  request.item = std::move(queue_.front());
  queue_.pop_front();
  request.frame = wire::cycle_request(request.seq, request.item.cycle, protocol_);
  send(std::move(request));
}

void Gateway::send(InFlight request) {
  next_seq_ = next_seq_ == 0xFFFFFFFFu ? 1 : next_seq_ + 1;  // 0 is the node's "unknown"
  in_flight_ = std::move(request);
  write_frame();
}

// One write at a time: a resend while the last write is still blocked (nobody reads the line)
// is skipped rather than interleaved with it.
void Gateway::write_frame() {
  arm_answer_timer();
  if (writing_) return;
  writing_ = true;
  auto frame = std::make_shared<std::string>(in_flight_->frame);
  asio::async_write(serial_, asio::buffer(*frame),
                    [this, frame](boost::system::error_code ec, size_t) {
                      writing_ = false;
                      if (ec == asio::error::operation_aborted || !open_) return;
                      if (ec) schedule_reopen("disconnected", "serial line: " + ec.message());
                    });
}

void Gateway::arm_answer_timer() {
  answer_timer_.expires_after(milliseconds(options_.answer_timeout_ms));
  answer_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_answer_timeout();
  });
}

// No answer: resend (the node treats a repeated cycle as a retransmission); after max_retries
// the node is unresponsive and the line is reopened with backoff.
void Gateway::on_answer_timeout() {
  if (!in_flight_ || !open_) return;
  ++status_.timeouts;
  if (in_flight_->retries < options_.max_retries) {
    ++in_flight_->retries;
    write_frame();
    return;
  }
  schedule_reopen("unresponsive",
                  "node did not answer " + std::to_string(options_.max_retries + 1) + " times");
}

void Gateway::requeue_in_flight() {
  if (in_flight_ && in_flight_->kind == RequestKind::kCycle) {
    queue_.push_front(std::move(in_flight_->item));
  }
  in_flight_.reset();
}

// The histories go to the front of the queue, oldest first, ahead of what was pending.
void Gateway::queue_replay() {
  std::deque<Item> replay;
  for (const auto& [cell, cycles] : history_) {
    for (const wire::NodeCycle& c : cycles)
      replay.push_back({c, true});
  }
  queue_.insert(queue_.begin(), replay.begin(), replay.end());
}

void Gateway::remember(const wire::NodeCycle& cycle) {
  std::deque<wire::NodeCycle>& cycles = history_[cycle.cell];
  if (!cycles.empty() && cycles.back().cycle == cycle.cycle) cycles.pop_back();
  cycles.push_back(cycle);
  const int64_t window = status_.window > 0 ? status_.window : 1;
  while (static_cast<int64_t>(cycles.size()) > window)
    cycles.pop_front();
}

// ---- status -------------------------------------------------------------------------------------

void Gateway::set_state(const std::string& state) {
  if (status_.state == state) return;
  spdlog::info("node {} is {}", options_.node_id, state);
  status_.state = state;
  publish_status();
}

void Gateway::publish_status() {
  status_.queued = static_cast<int64_t>(queue_.size());
  mqtt_->publish(wire::node_status_topic(options_.node_id), wire::serialize_node_status(status_), 1,
                 true);
}

void Gateway::schedule_status() {
  status_timer_.expires_after(milliseconds(options_.status_interval_ms));
  status_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    publish_status();
    schedule_status();
  });
}

}  // namespace cyclecast::gateway
