// The virtual node `cyclecast-node` as a process: on pipes, on a pty a gateway opens like a
// serial device, reset by SIGUSR1 (a power cycle: histories lost, HI again), and refusing a bad
// model file.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/export.h"
#include "node_fixture.h"
#include "temp_dir.h"

extern char** environ;

namespace cyclecast {
namespace {

const std::string kNode = std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-node";

std::string frame(const std::string& body) {
  char crc[10];
  std::snprintf(crc, sizeof crc, "*%08x",
                models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  return body + crc + "\n";
}

// Writes an exported model of W 5, H 12, SOH only into `dir`/model.bin; returns its version.
std::string write_model(const std::filesystem::path& dir) {
  const auto cells = testing::generated_cells(2, 40, 4);
  pipeline::FeatureOptions options;
  options.input_len = 5;
  options.horizon = 12;
  options.use_optional_features = false;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  const auto student = testing::random_student(spec, pipeline::make_windows(cells, spec, 2), 4, 8);
  EXPECT_TRUE(pipeline::write_exported_model(*pipeline::export_model(student, spec, "vn-1"), dir));
  return "vn-1";
}

// Reads one line from fd; empty on timeout (10 s, a guard against a hang, not a timing check).
std::string read_line(int fd) {
  std::string line;
  char c = 0;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return "";
    if (read(fd, &c, 1) != 1) return line;
    if (c == '\n') return line;
    line += c;
  }
}

std::string body_of(const std::string& line) {
  return line.substr(0, line.rfind('*'));
}

struct Process {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
};

Process spawn(const std::vector<std::string>& args) {
  int in[2], out[2], err[2];
  EXPECT_EQ(pipe(in), 0);
  EXPECT_EQ(pipe(out), 0);
  EXPECT_EQ(pipe(err), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  for (int fd : {in[1], out[0], err[0]})
    posix_spawn_file_actions_addclose(&actions, fd);
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Process p;
  EXPECT_EQ(posix_spawn(&p.pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  p.in = in[1];
  p.out = out[0];
  p.err = err[0];
  return p;
}

int wait_exit(const Process& p) {
  int status = 0;
  waitpid(p.pid, &status, 0);
  for (int fd : {p.in, p.out, p.err})
    if (fd >= 0) close(fd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void send(int fd, const std::string& bytes) {
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

TEST(VirtualNode, SpeaksTheProtocolOnStdinAndStdout) {
  const testing::TempDir dir;
  const std::string version = write_model(dir.path());
  Process p = spawn({kNode, "--model", (dir.path() / "model.bin").string()});
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 HI 0 1 vn-1 ");
  send(p.in, "garbage\n" + std::string(400, 'x') + "\n" + frame("cc1 ID 3"));
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 ID 3 1 vn-1 ");
  for (int cycle = 1; cycle <= 5; ++cycle) {
    send(p.in, frame("cc1 CY " + std::to_string(cycle) + " b1c0 " + std::to_string(cycle) + " " +
                     std::to_string(1.0 - 0.001 * cycle) + " - - -"));
    const std::string answer = body_of(read_line(p.out));
    EXPECT_EQ(answer.substr(0, 6), cycle < 5 ? "cc1 OK" : "cc1 FC") << answer;
  }
  send(p.in, frame("cc1 ST 9"));
  EXPECT_EQ(body_of(read_line(p.out)),
            "cc1 ST 9 rx=7 crc=0 bad=1 long=1 fc=1 err=0 evict=0 cells=1");
  close(p.in);
  p.in = -1;
  EXPECT_EQ(wait_exit(p), 0) << "end of input ends the node";
}

TEST(VirtualNode, ServesOnAPtyAndResetsOnSigusr1) {
  const testing::TempDir dir;
  write_model(dir.path());
  const std::string link = (dir.path() / "ttyNODE").string();
  Process p = spawn({kNode, "--model", (dir.path() / "model.bin").string(), "--pty", link});
  const std::string ready = read_line(p.err);
  ASSERT_NE(ready.find("serving on"), std::string::npos) << ready;
  const int tty = open(link.c_str(), O_RDWR | O_NOCTTY);
  ASSERT_GE(tty, 0);
  termios tio{};
  tcgetattr(tty, &tio);
  cfmakeraw(&tio);
  tcsetattr(tty, TCSANOW, &tio);
  EXPECT_EQ(body_of(read_line(tty)).substr(0, 16), "cc1 HI 0 1 vn-1 ");
  send(tty, frame("cc1 CY 1 c 1 0.99 - - -"));
  EXPECT_EQ(body_of(read_line(tty)), "cc1 OK 1 c 1 1");
  kill(p.pid, SIGUSR1);
  EXPECT_EQ(body_of(read_line(tty)).substr(0, 16), "cc1 HI 0 1 vn-1 ") << "reset announces itself";
  send(tty, frame("cc1 CY 2 c 2 0.98 - - -"));
  EXPECT_EQ(body_of(read_line(tty)), "cc1 OK 2 c 2 1") << "the reset lost the history";
  close(tty);
  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p), 0);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(link)));
}

TEST(VirtualNode, RefusesACorruptModelFile) {
  const testing::TempDir dir;
  write_model(dir.path());
  std::fstream blob(dir.path() / "model.bin", std::ios::in | std::ios::out | std::ios::binary);
  blob.seekp(20);
  blob.put('\x7f');
  blob.close();
  Process p = spawn({kNode, "--model", (dir.path() / "model.bin").string()});
  EXPECT_NE(read_line(p.err).find("CRC mismatch"), std::string::npos);
  EXPECT_EQ(wait_exit(p), 1);
}

// A second export (W 5, H 12) for the update tests; returns its blob.
std::vector<uint8_t> update_blob(const std::string& version) {
  const auto cells = testing::generated_cells(2, 40, 6);
  pipeline::FeatureOptions options;
  options.input_len = 5;
  options.horizon = 12;
  options.use_optional_features = false;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  const auto student = testing::random_student(spec, pipeline::make_windows(cells, spec, 2), 4, 9);
  return pipeline::export_model(student, spec, version)->blob;
}

// The model-update frames of `blob`: UB, the chunks, UE.
std::vector<std::string> update_frames(const std::vector<uint8_t>& blob,
                                       const std::string& version) {
  std::vector<std::string> frames{frame("cc2 UB 1 " + std::to_string(blob.size()) + " " +
                                        pipeline::sha256_hex(blob) + " " + version)};
  for (size_t at = 0; at < blob.size(); at += 96) {
    const auto piece = std::span(blob).subspan(at, std::min<size_t>(96, blob.size() - at));
    std::string hex;
    char two[3];
    for (const uint8_t b : piece) {
      std::snprintf(two, sizeof two, "%02x", b);
      hex += two;
    }
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x", models::crc32(piece));
    frames.push_back(frame("cc2 UC " + std::to_string(2 + at / 96) + " " + std::to_string(at) +
                           " " + hex + " " + crc));
  }
  frames.push_back(frame("cc2 UE 999"));
  return frames;
}

TEST(VirtualNode, KeepsUpdatedModelsInItsSlotFileAcrossKillsAndRestarts) {
  const testing::TempDir dir;
  write_model(dir.path());
  const std::string slots = (dir.path() / "slots.bin").string();
  const std::vector<std::string> args{kNode,     "--model", (dir.path() / "model.bin").string(),
                                      "--slots", slots,     "--slot-bytes",
                                      "16384"};
  const auto blob = update_blob("vn-2");
  const auto frames = update_frames(blob, "vn-2");

  // Killed (SIGKILL: no clean-up, as a power cut) halfway through the transfer.
  Process p = spawn(args);
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 HI 0 1 vn-1 ");
  for (size_t i = 0; i < frames.size() / 2; ++i) {
    send(p.in, frames[i]);
    EXPECT_EQ(body_of(read_line(p.out)).substr(0, 6), "cc2 UP");
  }
  kill(p.pid, SIGKILL);
  wait_exit(p);

  p = spawn(args);
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 HI 0 1 vn-1 ") << "the old model";
  send(p.in, frame("cc2 US 2"));
  EXPECT_EQ(body_of(read_line(p.out)), "cc2 UP 2 idle 0 interrupted");
  for (const std::string& f : frames) {
    send(p.in, f);
    const std::string answer = body_of(read_line(p.out));
    EXPECT_EQ(answer.substr(answer.size() - (&f == &frames.back() ? 8 : 2)),
              &f == &frames.back() ? "switched" : "ok")
        << answer;
  }
  EXPECT_EQ(body_of(read_line(p.out)), "cc1 HI 0 1 vn-2 " + pipeline::sha256_hex(blob));
  kill(p.pid, SIGUSR1);  // a reset reads the slots again
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 HI 0 1 vn-2 ");
  close(p.in);
  p.in = -1;
  EXPECT_EQ(wait_exit(p), 0);

  p = spawn(args);
  EXPECT_EQ(body_of(read_line(p.out)).substr(0, 16), "cc1 HI 0 1 vn-2 ") << "after a restart";
  send(p.in, frame("cc2 SL 3"));
  EXPECT_EQ(body_of(read_line(p.out)),
            "cc2 SL 3 A A vn-2 " + pipeline::sha256_hex(blob) + " B - -");
  close(p.in);
  p.in = -1;
  EXPECT_EQ(wait_exit(p), 0);

  const std::vector<std::string> other_size{
      kNode,          "--model", (dir.path() / "model.bin").string(), "--slots", slots,
      "--slot-bytes", "8192"};
  p = spawn(other_size);
  EXPECT_NE(read_line(p.err).find("need"), std::string::npos);
  EXPECT_EQ(wait_exit(p), 1);
}

}  // namespace
}  // namespace cyclecast
