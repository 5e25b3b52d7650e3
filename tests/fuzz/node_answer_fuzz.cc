// libFuzzer target for what the gateway reads from outside: the node's answer lines (the serial
// line may carry anything), and edge forecast, node status and gateway liveness payloads (what
// cyclecastd reads from the broker).
// Beyond "no crash": an answer that parses has a valid CRC (re-framing its body gives the line
// back), and an edge forecast or node status that parses writes back to text that parses to the
// same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/node_frames.h"

using namespace cyclecast::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto answer = parse_answer(input); answer.ok()) {
    std::string_view line = input;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string body(line.substr(0, line.size() - 9));
    std::string again = frame(body);
    again.pop_back();  // the '\n'
    if (again != line) std::abort();
  }
  if (auto forecast = parse_edge_forecast(input); forecast.ok()) {
    const std::string text = serialize_edge_forecast(*forecast);
    auto again = parse_edge_forecast(text);
    if (!again.ok() || serialize_edge_forecast(*again) != text) std::abort();
  }
  if (auto status = parse_node_status(input); status.ok()) {
    const std::string text = serialize_node_status(*status);
    auto again = parse_node_status(text);
    if (!again.ok() || serialize_node_status(*again) != text) std::abort();
  }
  // A gateway's liveness: the input as the payload on a gateway's topic, and as a topic.
  auto liveness = parse_gateway_status("cyclecast/v1/daemons/cyclecast-gateway-n1/status", input);
  if (liveness.ok() && (input.size() > kMaxGatewayStatusBytes ||
                        (liveness->state != "online" && liveness->state != "offline"))) {
    std::abort();
  }
  if (auto named = parse_gateway_status(input, "offline"); named.ok() && named->node.empty()) {
    std::abort();
  }
  return 0;
}
