// Broker security against a real mosquitto configured for it: TLS with certificates the test makes
// with openssl, and username/password. cyclecastd and a rig connect with the right CA and
// credentials and records arrive; wrong credentials are refused while the daemon stays up and
// keeps retrying; a CA that does not verify the broker makes the daemon refuse to start.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using namespace std::chrono_literals;

bool shell(const std::string& command) {
  return std::system(command.c_str()) == 0;
}

// A CA, a broker certificate it signs for 127.0.0.1, and an unrelated second CA.
void make_certificates(const std::filesystem::path& dir) {
  const std::string d = "'" + dir.string() + "'";
  const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  ASSERT_TRUE(shell("cd " + d + " && openssl req -x509" + key +
                    " -keyout ca.key -out ca.pem -days 2 -subj /CN=cyclecast-test-ca 2>/dev/null"));
  ASSERT_TRUE(shell("cd " + d + " && openssl req -x509" + key +
                    " -keyout other.key -out other-ca.pem -days 2 -subj /CN=someone-else "
                    "2>/dev/null"));
  ASSERT_TRUE(shell("cd " + d + " && openssl req" + key +
                    " -keyout broker.key -out broker.csr -subj /CN=127.0.0.1 2>/dev/null"));
  ASSERT_TRUE(shell("cd " + d +
                    " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
                    "openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                    "-out broker.pem -days 2 -extfile san.ext 2>/dev/null"));
  // Started as root, mosquitto drops to its own user, which must reach its files.
  ASSERT_TRUE(shell("chmod 755 " + d + " && chmod 644 " + d + "/broker.key"));
}

class BrokerSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(make_certificates(dir_.path()));
    ASSERT_TRUE(shell("mosquitto_passwd -b -c '" + (dir_ / "passwords").string() +
                      "' lab-daemon 'pw of the daemon' && mosquitto_passwd -b '" +
                      (dir_ / "passwords").string() + "' lab-rig 'pw of the rig' && chmod 644 '" +
                      (dir_ / "passwords").string() + "'"));
    broker_.start();
  }

  std::filesystem::path config(const std::string& ca, const std::string& user,
                               const std::string& password) {
    const auto path = dir_ / (ca + "-" + user + ".toml");
    std::ofstream(path) << "[mqtt]\ntls_ca_file = \"" << (dir_ / ca).string() << "\"\nusername = \""
                        << user << "\"\npassword = \"" << password
                        << "\"\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n";
    return path;
  }

  // cyclecastd started without waiting for its connection (DaemonProcess waits for one), its log
  // in log().
  Child start_unconnected(const std::filesystem::path& config_file) {
    return Child({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecastd", "--config",
                  config_file.string(), "--state-dir", (dir_ / "state").string(), "--mqtt-port",
                  std::to_string(broker_.port()), "--http-port", "0"},
                 log());
  }
  std::filesystem::path log() const { return dir_ / "cyclecastd.log"; }

  std::string broker_security() const {
    return "cafile " + (dir_ / "ca.pem").string() + "\ncertfile " + (dir_ / "broker.pem").string() +
           "\nkeyfile " + (dir_ / "broker.key").string() +
           "\nallow_anonymous false\npassword_file " + (dir_ / "passwords").string() + "\n";
  }

  TempDir dir_;
  Broker broker_{dir_.path(), free_port(), broker_security()};
};

TEST_F(BrokerSecurity, RightCaAndCredentialsCarryRecords) {
  DaemonProcess daemon(dir_ / "state", broker_.port(),
                       config("ca.pem", "lab-daemon", "pw of the daemon"));
  ASSERT_NO_THROW(daemon.start());
  const RigData data = write_rig_data(dir_.path(), 2, 30);
  Child rig = start_rig(dir_.path(), broker_.port(),
                        {data.cycles_csv.string(), "--cells", data.cells_csv.string(),
                         "--tls-ca-file", (dir_ / "ca.pem").string(), "--username", "lab-rig",
                         "--password", "pw of the rig", "--outbox", (dir_ / "rig.outbox").string()},
                        "rig.log");
  EXPECT_EQ(rig.wait(60s), 0) << read_text(dir_ / "rig.log");
  EXPECT_EQ(stored_cycle_count(daemon.database()), 60);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s), 0);
}

TEST_F(BrokerSecurity, WrongPasswordIsRefusedAndTheDaemonKeepsTrying) {
  const auto log = this->log();
  Child daemon = start_unconnected(config("ca.pem", "lab-daemon", "not the password"));
  EXPECT_TRUE(eventually(
      [&] {
        return read_text(log).find("not authorised") != std::string::npos ||
               read_text(log).find("not authorized") != std::string::npos;
      },
      15s))
      << read_text(log);
  EXPECT_TRUE(daemon.running()) << read_text(log);
  EXPECT_EQ(read_text(log).find("mqtt: connected"), std::string::npos);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s), 0) << read_text(log);
}

TEST_F(BrokerSecurity, ACaThatDoesNotVerifyTheBrokerRefusesToStart) {
  const auto log = this->log();
  Child daemon = start_unconnected(config("other-ca.pem", "lab-daemon", "pw of the daemon"));
  EXPECT_EQ(daemon.wait(30s), 1) << read_text(log);
  EXPECT_NE(read_text(log).find((dir_ / "other-ca.pem").string()), std::string::npos)
      << read_text(log);
}

}  // namespace
}  // namespace cyclecast::testing
