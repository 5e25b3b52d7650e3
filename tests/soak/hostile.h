// Hostile broker clients for the soak (docs/reliability.md, "Hostile inputs"): a thread that,
// while the rigs publish, sends every kind of hostile message the reliability document lists
// with mosquitto_pub, a client the project did not write. Each identity logs in with its own
// broker credentials, so what the shipped ACL refuses is dropped by the broker and the rest is
// left to the daemon's own checks. The soak's usual verdict (nothing lost, duplicated, changed or
// unexpected) then says whether any of it got through.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace cyclecast::soak {

struct BrokerLogin {
  std::string user;
  std::string password;
};

struct HostileTargets {
  int broker_port = 0;
  BrokerLogin rig_intruder;      // a rig user publishing as itself and as others
  std::string intruder_rig_id;   // the rig id its user may publish under
  BrokerLogin gateway_intruder;  // a gateway user publishing edge forecasts
  std::string victim_rig_id;     // a legitimate rig of the soak
  std::string victim_cell_id;    // one of its cells
  std::string daemon_client_id;  // the daemon whose status is spoofed
};

class HostileClients {
 public:
  HostileClients(const std::filesystem::path& dir, HostileTargets targets);
  ~HostileClients();
  HostileClients(const HostileClients&) = delete;
  HostileClients& operator=(const HostileClients&) = delete;

  // Sends one hostile message after another, round robin over the kinds, until stop().
  void start();
  void stop();
  // "kind × count" for every kind sent, for the soak's figures.
  std::string summary() const;

 private:
  struct Message {
    std::string kind;
    std::string topic;
    std::filesystem::path payload;
    bool retained = false;
    const BrokerLogin* login = nullptr;
  };
  void write_messages();
  void send(const Message& message);
  void loop();

  std::filesystem::path dir_;
  HostileTargets targets_;
  std::vector<Message> messages_;
  std::map<std::string, std::int64_t> sent_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cyclecast::soak
