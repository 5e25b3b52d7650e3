// `cyclecast-gateway`: bridges one edge node's serial line and MQTT (docs/gateway.md).
// Exit status: 0 after SIGTERM/SIGINT, 1 when MQTT cannot be configured, 2 bad command line.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange unincluded

#include <boost/asio.hpp>
#include <exception>
#include <iostream>

#include "cyclecast/wire/protocol.h"
#include "gateway.h"

int main(int argc, char** argv) {
  using cyclecast::gateway::GatewayOptions;
  CLI::App app{"cyclecast-gateway: an edge node's serial line <-> MQTT (docs/gateway.md)"};
  GatewayOptions options;
  std::string log_level = "info";
  app.add_option("--node", options.node_id, "node id (names the MQTT topics)")->required();
  app.add_option("--serial", options.serial_path, "serial device (or a pty's link)")->required();
  app.add_option("--cells", options.cells, "the node's cells (comma-separated)")
      ->required()
      ->delimiter(',');
  app.add_option("--baud", options.baud, "serial line rate")->capture_default_str();
  app.add_option("--mqtt-host", options.mqtt.host, "broker host")->capture_default_str();
  app.add_option("--mqtt-port", options.mqtt.port, "broker port")->capture_default_str();
  app.add_option("--client-id", options.mqtt.client_id,
                 "MQTT client id (default cyclecast-gateway-NODE)");
  // A broker with users and an ACL (docs/security.md): the gateway's user is gateway-NODE.
  app.add_option("--username", options.mqtt.username, "MQTT user name");
  app.add_option("--password", options.mqtt.password, "MQTT password (env CYCLECAST_MQTT_PASSWORD)")
      ->envname("CYCLECAST_MQTT_PASSWORD");
  auto* ca = app.add_option("--tls-ca-file", options.mqtt.tls_ca_file,
                            "CA bundle: connect with TLS, verifying the broker");
  auto* cert = app.add_option("--tls-cert-file", options.mqtt.tls_cert_file,
                              "client certificate (with --tls-key-file), for mutual TLS");
  auto* key = app.add_option("--tls-key-file", options.mqtt.tls_key_file,
                             "client certificate's private key");
  cert->needs(ca)->needs(key);
  key->needs(cert);
  app.add_option("--answer-timeout-ms", options.answer_timeout_ms, "wait for each answer")
      ->capture_default_str();
  app.add_option("--max-retries", options.max_retries, "resends before the node is unresponsive")
      ->capture_default_str();
  app.add_option("--reopen-min-ms", options.reopen_min_ms, "first reopen delay")
      ->capture_default_str();
  app.add_option("--reopen-max-ms", options.reopen_max_ms, "reopen backoff cap")
      ->capture_default_str();
  app.add_option("--queue-limit", options.queue_limit, "pending cycles kept")
      ->capture_default_str();
  app.add_option("--status-interval-ms", options.status_interval_ms, "status republish period")
      ->capture_default_str();
  auto* bundle = app.add_option("--update-bundle", options.update_bundle,
                                "signed bundle whose model the node must run (model update)");
  auto* operator_key =
      app.add_option("--operator-key", options.operator_key,
                     "the operator's public key file; the bundle must verify with it");
  bundle->needs(operator_key);
  operator_key->needs(bundle);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const std::string& id : options.cells) {
    if (const std::string why = cyclecast::protocol::check_id(id); !why.empty()) {
      std::cerr << "cyclecast-gateway: cell '" << id << "': " << why << '\n';
      return 2;
    }
  }
  if (const std::string why = cyclecast::protocol::check_id(options.node_id); !why.empty()) {
    std::cerr << "cyclecast-gateway: node '" << options.node_id << "': " << why << '\n';
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (options.mqtt.client_id.empty())
    options.mqtt.client_id = "cyclecast-gateway-" + options.node_id;
  options.mqtt.status_topic = cyclecast::protocol::status_topic(options.mqtt.client_id);
  try {
    boost::asio::io_context io;
    cyclecast::gateway::Gateway gateway(io, options);
    if (auto started = gateway.start(); !started) {
      std::cerr << "cyclecast-gateway: " << started.error().message << '\n';
      return 1;
    }
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) {
      gateway.stop();
      io.stop();
    });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "cyclecast-gateway: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
