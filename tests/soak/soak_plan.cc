#include "soak_plan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace cyclecast::soak {

namespace fs = std::filesystem;

void add_flags(CLI::App& app, Flags& flags) {
  app.add_option("--records", flags.records, "cycle records to publish in all")
      ->capture_default_str();
  app.add_option("--rigs", flags.rigs, "rig clients")->capture_default_str();
  app.add_option("--cells-per-rig", flags.cells_per_rig, "cells of each rig")
      ->capture_default_str();
  app.add_option("--daemon-kills", flags.daemon_kills, "SIGKILLs of cyclecastd")
      ->capture_default_str();
  app.add_option("--broker-restarts", flags.broker_restarts, "broker restarts")
      ->capture_default_str();
  app.add_option("--rig-kills", flags.rig_kills, "SIGKILLs of rig clients")->capture_default_str();
  app.add_option("--gateway-kills", flags.gateway_kills,
                 "SIGKILLs of cyclecast-gateway (its node runs the retrained model)")
      ->capture_default_str();
  app.add_option("--publish-s", flags.publish_s, "seconds the rigs take to publish at their rate")
      ->capture_default_str();
  app.add_flag("!--no-retrain", flags.retrain, "skip the retraining run");
  app.add_option("--seed", flags.seed, "seed of the fault schedule (0: a random one)");
  app.add_option("--timeout-s", flags.timeout_s, "give up after this long")->capture_default_str();
  app.add_option("--work-dir", flags.work_dir, "keep everything here (default: a temp dir)");
  app.add_flag("--strict-forecasts", flags.strict_forecasts,
               "fail also on late and stranded cycles without a host forecast");
  app.add_flag("--check-only", flags.check_only,
               "only check the database a soak left in --work-dir (same data flags)");
  app.add_flag("!--no-hostile", flags.hostile,
               "skip the hostile broker clients (deep nesting, forged acks, spoofed statuses, "
               "oversized edge forecasts, cells of other rigs)");
  app.add_flag("--keep", flags.keep, "keep the temp dir even when the soak passes");
}

std::string broker_password(const std::string& user) {
  return "pw-" + user;
}

namespace {

void run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

std::string gateway_user(const std::string& node) {
  return "gateway-" + node;
}

}  // namespace

std::string write_broker_access(const fs::path& dir, const Flags& flags) {
  const fs::path shipped = fs::path(CYCLECAST_SOURCE_DIR) / "packaging" / "mosquitto";
  const fs::path acl = dir / "cyclecast.acl";
  const fs::path passwords = dir / "cyclecast.passwd";
  run("cp '" + (shipped / "cyclecast.acl").string() + "' '" + acl.string() + "'");
  for (const std::string node : {kNode, kIntruderNode}) {
    run("sed 's/@NODE@/" + node + "/g' '" + (shipped / "gateway-acl.in").string() + "' >> '" +
        acl.string() + "'");
  }
  std::vector<std::string> users = {kDaemonUser, kIntruderRig, gateway_user(kNode),
                                    gateway_user(kIntruderNode)};
  for (int r = 0; r < flags.rigs; ++r)
    users.push_back("soak-rig-" + std::to_string(r));
  run("rm -f '" + passwords.string() + "' && touch '" + passwords.string() + "'");
  for (const auto& user : users) {
    run("mosquitto_passwd -b '" + passwords.string() + "' " + user + " " + broker_password(user));
  }
  // mosquitto started as root reads its files as the mosquitto user.
  run("chmod 755 '" + dir.string() + "' && chmod 644 '" + acl.string() + "' '" +
      passwords.string() + "'");
  return "allow_anonymous false\npassword_file " + passwords.string() + "\nacl_file " +
         acl.string() + "\n";
}

std::string daemon_config(const fs::path& token_file) {
  return "[mqtt]\nusername = \"" + std::string(kDaemonUser) + "\"\npassword = \"" +
         broker_password(kDaemonUser) + "\"\n[http]\ntoken_file = \"" + token_file.string() +
         "\"\n"
         "[retrain]\ncheck_s = 1\nmin_cycles = 0\nmin_gap_min = 0\ninterval_h = 0\n"
         "new_cycles = 0\nwindow = 20\nhorizon = 10\ntrain_stride = 2\nteacher = \"liquid\"\n"
         "teacher_budget_s = 1\nteacher_max_epochs = 2\nwidths = [4]\nfeatures = 3\n"
         "prune_ratios = []\nstudent_epochs = 2\nstage2_epochs = 1\nstudent_steps = 0\n"
         "stage2_steps = 0\ncalibration_windows = 64\nthreads = 2\nlower_priority = false\n"
         "[alerts]\nretrain = false\n";
}

std::vector<RigSetup> write_rigs(const fs::path& dir, const Flags& flags,
                                 std::vector<PublishedCell>& published) {
  const int cells = flags.rigs * flags.cells_per_rig;
  const std::int64_t base = flags.records / cells;
  const std::int64_t extra = flags.records % cells;
  std::vector<RigSetup> rigs;
  char line[256];
  for (int r = 0; r < flags.rigs; ++r) {
    RigSetup rig;
    rig.rig_id = "soak-rig-" + std::to_string(r);
    rig.csv = dir / (rig.rig_id + ".csv");
    rig.cells_csv = dir / (rig.rig_id + ".cells.csv");
    rig.outbox = dir / (rig.rig_id + ".outbox");
    std::ofstream cycles_out(rig.csv);
    std::ofstream cells_out(rig.cells_csv);
    cycles_out << "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
    cells_out << "cell_id,rig_id,chemistry,rated_capacity_ah\n";
    for (int c = 0; c < flags.cells_per_rig; ++c) {
      PublishedCell cell;
      cell.index = r * flags.cells_per_rig + c;
      cell.cell_id = "soak-r" + std::to_string(r) + "c" + std::to_string(c);
      cell.cycles = base + (cell.index < extra ? 1 : 0);
      cells_out << cell.cell_id << ',' << rig.rig_id << ",LFP,1.1\n";
      for (std::int64_t k = 1; k <= cell.cycles; ++k) {
        const double qd = soak_qd_ah(cell.index, k);
        std::snprintf(line, sizeof line, "%s,soak,%lld,%.6f,%.6f,0.0170,35.0,31.0,29.0,10.5\n",
                      cell.cell_id.c_str(), static_cast<long long>(k), qd, qd + 0.0005);
        cycles_out << line;
      }
      rig.records += cell.cycles;
      published.push_back(cell);
    }
    rigs.push_back(rig);
  }
  return rigs;
}

std::vector<Event> schedule(const Flags& flags, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> anywhere(0.05 * flags.publish_s, 0.9 * flags.publish_s);
  std::uniform_real_distribution<double> middle(0.4 * flags.publish_s, 0.6 * flags.publish_s);
  std::vector<Event> events;
  for (int i = 0; i < flags.daemon_kills; ++i)
    events.push_back({anywhere(rng), Fault::kDaemonKill});
  for (int i = 0; i < flags.broker_restarts; ++i)
    events.push_back({anywhere(rng), Fault::kBrokerRestart});
  for (int i = 0; i < flags.rig_kills; ++i)
    events.push_back({anywhere(rng), Fault::kRigKill});
  if (flags.retrain) {
    events.push_back({middle(rng), Fault::kRetrain});
    // The gateway's node runs the run's model: it starts once that is champion.
    std::uniform_real_distribution<double> late(0.65 * flags.publish_s, 0.9 * flags.publish_s);
    for (int i = 0; i < flags.gateway_kills; ++i)
      events.push_back({late(rng), Fault::kGatewayKill});
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.at_s < b.at_s; });
  return events;
}

}  // namespace cyclecast::soak
