// The soak's plan: its flags, the rigs' generated data, the daemon's configuration and the
// seeded schedule of faults. soak_main.cc carries it out.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "soak_check.h"

namespace cyclecast::soak {

struct Flags {
  std::int64_t records = 5000;
  int rigs = 4;
  int cells_per_rig = 5;
  int daemon_kills = 4;
  int broker_restarts = 2;
  int rig_kills = 3;
  int gateway_kills = 2;
  double publish_s = 20;
  bool retrain = true;
  std::uint64_t seed = 0;  // 0: a random one (printed)
  int timeout_s = 900;
  std::string work_dir;  // empty: a temporary directory, removed unless --keep
  bool keep = false;
  bool strict_forecasts = false;
  bool check_only = false;
  bool hostile = true;
};

// Adds the soak's command-line options for `flags` to `app`.
void add_flags(CLI::App& app, Flags& flags);

struct RigSetup {
  std::string rig_id;
  std::filesystem::path csv, cells_csv, outbox;
  std::int64_t records = 0;
};

// The broker's users, each with the password broker_password(user) gives: the daemon, the rigs,
// the gateway of the soak's node, and the hostile clients' rig and gateway.
inline constexpr const char* kDaemonUser = "cyclecastd";
inline constexpr const char* kIntruderRig = "soak-intruder";
inline constexpr const char* kNode = "soak-node";
inline constexpr const char* kIntruderNode = "intruder-node";
std::string broker_password(const std::string& user);

// Writes the shipped ACL (packaging/mosquitto, with a gateway section for the soak's node and for
// the intruder's) and a password file for every user into `dir`, and returns the broker's access
// configuration that uses them (docs/security.md).
std::string write_broker_access(const std::filesystem::path& dir, const Flags& flags);

// The tiny training of the lifecycle tests (W = 20, H = 10, one width-4 student: seconds), no
// automatic triggers: the soak asks for its one run through the API.
std::string daemon_config(const std::filesystem::path& token_file);

// Writes each rig's cycles and cells CSV; `records` spread over all cells, cycles 1..n each.
std::vector<RigSetup> write_rigs(const std::filesystem::path& dir, const Flags& flags,
                                 std::vector<PublishedCell>& published);

enum class Fault { kDaemonKill, kBrokerRestart, kRigKill, kGatewayKill, kRetrain };

struct Event {
  double at_s = 0;
  Fault fault = Fault::kDaemonKill;
};

// Faults at uniformly random points of the first 90 % of the publishing time; the retraining
// near the middle.
std::vector<Event> schedule(const Flags& flags, std::mt19937_64& rng);

}  // namespace cyclecast::soak
