// `cyclecast-node`: the virtual node. Runs the firmware's node program (cc_node.c) on the host
// with a node-model blob, speaking docs/node-protocol.md on stdin/stdout, or on a pseudo-terminal
// (--pty LINK: a symlink to the pty's device, as `socat pty,link=LINK` makes) for a gateway that
// opens a serial device. SIGUSR1 resets the node (histories lost, HI frame), as a power cycle of
// the Nano would; SIGINT/SIGTERM end it. With --slots FILE the node keeps the two model slots of
// the model update (protocol 2, firmware/node/cc_update.h) in FILE and runs the active one; the
// --model blob is then its built-in model. Exit codes: 0 done, 1 failure, 2 bad command line.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cyclecast/edge/slot_file.h"
#include "cyclecast/edge/virtual_node.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_reset = 0;

void on_stop(int) {
  g_stop = 1;
}
void on_reset(int) {
  g_reset = 1;
}

struct Link {
  int in = STDIN_FILENO;
  int out = STDOUT_FILENO;
  bool drop_when_full = false;  // a pty nobody reads must not stall the node, as a UART would not
};

void write_line(void* context, const char* bytes, size_t length) {
  const Link& link = *static_cast<const Link*>(context);
  while (length > 0) {
    const ssize_t n = ::write(link.out, bytes, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed, or full with drop_when_full: the line is lost, as on a wire
    bytes += n;
    length -= static_cast<size_t>(n);
  }
}

uint32_t micros(void*) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

// Opens a pty in raw mode, links `link` to its device and returns the master; the slave stays
// open here too, so that reads do not fail with EIO while no gateway has it open.
int open_pty(const std::string& link, int& slave) {
  int master = -1;
  char name[256] = {};
  if (openpty(&master, &slave, name, nullptr, nullptr) != 0) return -1;
  termios tio{};
  tcgetattr(slave, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave, TCSANOW, &tio);
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  std::error_code ec;
  std::filesystem::remove(link, ec);
  std::filesystem::create_symlink(name, link, ec);
  if (ec) {
    std::cerr << "cyclecast-node: cannot link " << link << " to " << name << ": " << ec.message()
              << '\n';
    return -1;
  }
  std::cerr << "cyclecast-node: serving on " << name << " (" << link << ")\n";
  return master;
}

// Starts the node as at power-on: with slots, the update module picks the model (the active
// slot's, or the built-in one) from what the file holds now.
cc_node_status start(cc_node& node, const cc_node_model& builtin, const cc_node_io& io,
                     cyclecast::edge::SlotFile* slots) {
  static cc_update update;  // two slots' models: static, as on the Nano
  if (slots == nullptr) return cc_node_init(&node, &builtin, io);
  const cc_node_status status =
      cc_node_init(&node, cc_update_init(&update, slots->storage(), &builtin), io);
  if (status == CC_NODE_OK) cc_update_attach(&update, &node);
  return status;
}

int serve(const cyclecast::edge::LoadedNodeModel& model, Link& link,
          cyclecast::edge::SlotFile* slots) {
  static cc_node node;  // large (cell histories): static, as on the Nano
  const cc_node_io io{write_line, micros, &link};
  cc_node_status status = start(node, model.view(), io, slots);
  if (status != CC_NODE_OK) {
    std::cerr << "cyclecast-node: " << cyclecast::edge::node_status_text(status) << '\n';
    return 1;
  }
  char buffer[512];
  while (!g_stop) {
    if (g_reset) {
      g_reset = 0;
      status = start(node, model.view(), io, slots);
      if (status != CC_NODE_OK) return 1;
    }
    pollfd p{link.in, POLLIN, 0};
    const int ready = ::poll(&p, 1, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    const ssize_t n = ::read(link.in, buffer, sizeof buffer);
    if (n == 0) return 0;  // end of input
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return 1;
    }
    cc_node_feed(&node, buffer, static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cyclecast-node: the virtual edge node (docs/node-protocol.md) on stdin/stdout"};
  std::string model_path;
  std::string pty_link;
  app.add_option("--model", model_path, "node-model blob (model.bin from cyclecast export)")
      ->required();
  app.add_option("--pty", pty_link, "serve on a new pty and make this path a symlink to it");
  std::string slots_path;
  uint32_t slot_bytes = 65536;
  app.add_option("--slots", slots_path,
                 "keep the model-update slots in this file (created erased) and run the active "
                 "slot's model; --model is then the built-in one");
  app.add_option("--slot-bytes", slot_bytes, "bytes per slot (default 65536)")
      ->check(CLI::Range(4u, 16u << 20));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto model = cyclecast::edge::load_node_model_file(model_path);
  if (!model) {
    std::cerr << "cyclecast-node: " << model.error().message << '\n';
    return 1;
  }
  std::unique_ptr<cyclecast::edge::SlotFile> slots;
  if (!slots_path.empty()) {
    auto opened = cyclecast::edge::SlotFile::open(slots_path, slot_bytes);
    if (!opened) {
      std::cerr << "cyclecast-node: " << opened.error().message << '\n';
      return 1;
    }
    slots = std::move(*opened);
  }
  struct sigaction stop {};
  stop.sa_handler = on_stop;
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  struct sigaction reset {};
  reset.sa_handler = on_reset;
  sigaction(SIGUSR1, &reset, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  Link link;
  int slave = -1;
  if (!pty_link.empty()) {
    const int master = open_pty(pty_link, slave);
    if (master < 0) return 1;
    link = Link{master, master, true};
  }
  const int rc = serve(**model, link, slots.get());
  if (!pty_link.empty()) {
    std::error_code ec;
    std::filesystem::remove(pty_link, ec);
  }
  return rc;
}
