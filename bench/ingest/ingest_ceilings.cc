// The two ceilings the end-to-end ingest rate sits under (docs/benchmarks.md, "## Ingest"):
//   broker   a QoS 1 publisher and a subscriber that counts and discards, through the broker
//            alone: the same protocol v1 payloads (arrays of records) the rig sends;
//   sqlite   the same records written with Database::write_cycles in the daemon's batch size,
//            synchronous=FULL, no network at all;
//   postgresql  the same on the PostgreSQL backend (a database at --url, left with the rows),
//            then the same records once more: a rig's re-send, every one a duplicate.
// Each prints one line "<mode> records=N seconds=S records_per_s=R".
//
//   ingest_ceilings broker --port P [--records N] [--per-message K]
//   ingest_ceilings sqlite --dir DIR [--records N] [--batch B]
//   ingest_ceilings postgresql --url URL [--records N] [--batch B]
#include <mosquitto.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "cyclecast/storage/database.h"
#include "cyclecast/wire/protocol.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace protocol = cyclecast::protocol;
namespace storage = cyclecast::storage;

constexpr int kCycles = 1000;  // cycles per cell, like a simulated cell

// Records shaped like the simulator's: cell i has cycles 1..kCycles.
std::vector<storage::CycleRecord> make_records(std::size_t count) {
  std::vector<storage::CycleRecord> records(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto& r = records[i];
    r.cell_id = "bench" + std::to_string(i / kCycles);
    r.cycle = static_cast<std::int64_t>(i % kCycles) + 1;
    r.discharge_capacity_ah = 1.07 - 0.0001 * static_cast<double>(r.cycle);
    r.charge_capacity_ah = r.discharge_capacity_ah + 0.0004;
    r.internal_resistance_ohm = 0.0171;
    r.temperature_min_c = 29.1;
    r.temperature_avg_c = 31.2;
    r.temperature_max_c = 35.3;
    r.charge_time_min = 10.4;
    r.measured_at_ms = 1767225600000 + r.cycle * 3600000;
    r.source = "bench";
  }
  return records;
}

long arg(int argc, char** argv, const char* name, long fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  }
  return fallback;
}

std::string arg_text(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

struct Sink {
  std::mutex mutex;
  std::condition_variable done;
  std::atomic<std::size_t> messages{0};
  std::size_t expected = 0;
  bool subscribed = false;
};

int run_broker(int argc, char** argv) {
  const int port = static_cast<int>(arg(argc, argv, "--port", 1883));
  const auto count = static_cast<std::size_t>(arg(argc, argv, "--records", 100000));
  const auto per_message = static_cast<std::size_t>(arg(argc, argv, "--per-message", 100));
  const auto records = make_records(count);
  std::vector<std::pair<std::string, std::string>> messages;
  for (std::size_t i = 0; i < count;) {
    const std::size_t end = std::min(count, i + per_message);
    // Messages never span cells, as the rig sends them.
    std::size_t stop = i;
    while (stop < end && records[stop].cell_id == records[i].cell_id)
      ++stop;
    messages.emplace_back(protocol::cycles_topic("bench-rig", records[i].cell_id),
                          protocol::serialize_cycles({records.data() + i, stop - i}));
    i = stop;
  }
  mosquitto_lib_init();
  Sink sink;
  sink.expected = messages.size();
  mosquitto* sub = mosquitto_new("bench-sink", true, &sink);
  mosquitto* pub = mosquitto_new("bench-pub", true, nullptr);
  mosquitto_max_inflight_messages_set(pub, 1000);
  mosquitto_subscribe_callback_set(sub, [](mosquitto*, void* user, int, int, const int*) {
    auto* s = static_cast<Sink*>(user);
    std::lock_guard lock(s->mutex);
    s->subscribed = true;
    s->done.notify_all();
  });
  mosquitto_message_callback_set(sub, [](mosquitto*, void* user, const mosquitto_message*) {
    auto* s = static_cast<Sink*>(user);
    if (++s->messages == s->expected) {
      std::lock_guard lock(s->mutex);
      s->done.notify_all();
    }
  });
  if (mosquitto_connect(sub, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
      mosquitto_connect(pub, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
    std::fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port);
    return 1;
  }
  mosquitto_loop_start(sub);
  mosquitto_loop_start(pub);
  mosquitto_subscribe(sub, nullptr, protocol::cycles_subscription().c_str(), 1);
  {
    std::unique_lock lock(sink.mutex);
    sink.done.wait(lock, [&] { return sink.subscribed; });
  }
  const auto started = Clock::now();
  for (const auto& [topic, payload] : messages) {
    while (mosquitto_publish(pub, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), 1, false) == MOSQ_ERR_OVERSIZE_PACKET) {
    }
  }
  {
    std::unique_lock lock(sink.mutex);
    sink.done.wait_for(lock, std::chrono::seconds(120),
                       [&] { return sink.messages.load() >= sink.expected; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::size_t delivered_messages = sink.messages.load();
  // Records delivered (exact when every message arrived).
  const double delivered = static_cast<double>(count) * static_cast<double>(delivered_messages) /
                           static_cast<double>(messages.size());
  std::printf("broker records=%.0f seconds=%.3f records_per_s=%.0f messages=%zu\n", delivered,
              seconds, delivered / seconds, delivered_messages);
  mosquitto_disconnect(pub);
  mosquitto_disconnect(sub);
  mosquitto_loop_stop(pub, false);
  mosquitto_loop_stop(sub, false);
  mosquitto_destroy(pub);
  mosquitto_destroy(sub);
  mosquitto_lib_cleanup();
  return delivered_messages == messages.size() ? 0 : 1;
}

// Registers the cells of make_records(count) on `db`.
bool register_cells(storage::Database& db, std::size_t count) {
  for (std::size_t c = 0; c * kCycles < count; ++c) {
    storage::CellInfo cell;
    cell.cell_id = "bench" + std::to_string(c);
    cell.rig_id = "bench-rig";
    cell.rated_capacity_ah = 1.1;
    if (auto ok = db.upsert_cell(cell); !ok) {
      std::fprintf(stderr, "%s\n", ok.error().message.c_str());
      return false;
    }
  }
  return true;
}

// Writes `records` in batches of `batch`; the seconds it took, or a negative number when a
// batch failed or did not come out as `expect` (inserted, or duplicate).
double write_all(storage::Database& db, const std::vector<storage::CycleRecord>& records,
                 std::size_t batch, bool expect_inserted) {
  const auto started = Clock::now();
  for (std::size_t i = 0; i < records.size(); i += batch) {
    const std::size_t n = std::min(batch, records.size() - i);
    auto written = db.write_cycles({records.data() + i, n});
    if (!written) {
      std::fprintf(stderr, "write failed: %s\n", written.error().message.c_str());
      return -1;
    }
    if ((expect_inserted ? written->inserted : written->duplicates) != n) {
      std::fprintf(stderr, "write failed: unexpected outcomes\n");
      return -1;
    }
  }
  return std::chrono::duration<double>(Clock::now() - started).count();
}

int run_sqlite(int argc, char** argv) {
  const std::filesystem::path dir = arg_text(argc, argv, "--dir", "/tmp");
  const auto count = static_cast<std::size_t>(arg(argc, argv, "--records", 100000));
  const auto batch = static_cast<std::size_t>(arg(argc, argv, "--batch", 2000));
  const auto records = make_records(count);
  const auto path = dir / "ceiling.db";
  std::filesystem::remove(path);
  auto db = storage::Database::open(path);
  if (!db) {
    std::fprintf(stderr, "%s\n", db.error().message.c_str());
    return 1;
  }
  if (!register_cells(*db, count)) return 1;
  const double seconds = write_all(*db, records, batch, true);
  if (seconds < 0) return 1;
  std::printf("sqlite records=%zu seconds=%.3f records_per_s=%.0f batch=%zu\n", count, seconds,
              static_cast<double>(count) / seconds, batch);
  return 0;
}

int run_postgresql(int argc, char** argv) {
  const std::string url = arg_text(argc, argv, "--url", "");
  const auto count = static_cast<std::size_t>(arg(argc, argv, "--records", 20000));
  const auto batch = static_cast<std::size_t>(arg(argc, argv, "--batch", 2000));
  const auto records = make_records(count);
  auto db = storage::Database::open_url(url);
  if (!db) {
    std::fprintf(stderr, "%s\n", db.error().message.c_str());
    return 1;
  }
  if (!register_cells(*db, count)) return 1;
  const double seconds = write_all(*db, records, batch, true);
  if (seconds < 0) return 1;
  const double resend = write_all(*db, records, batch, false);
  if (resend < 0) return 1;
  std::printf(
      "postgresql records=%zu seconds=%.3f records_per_s=%.0f batch=%zu resend_seconds=%.3f "
      "resend_records_per_s=%.0f\n",
      count, seconds, static_cast<double>(count) / seconds, batch, resend,
      static_cast<double>(count) / resend);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "broker") == 0) return run_broker(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "sqlite") == 0) return run_sqlite(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "postgresql") == 0) return run_postgresql(argc, argv);
  std::fprintf(stderr,
               "usage: ingest_ceilings broker --port P [--records N] [--per-message K]\n"
               "       ingest_ceilings sqlite --dir DIR [--records N] [--batch B]\n"
               "       ingest_ceilings postgresql --url URL [--records N] [--batch B]\n");
  return 2;
}
