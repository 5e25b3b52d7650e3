// cyclecast edge node for the Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F): a thin shell
// around the node program (src/cc_node.c, docs/node-protocol.md) and the exported model
// (src/model_data.c). It only moves bytes between Serial and the node and gives it micros();
// everything else is the same C code the host tests and the QEMU parity test run.
// src/ is filled by ../prepare_sketch.sh (README.md).
#include "src/cc_node.h"
#include "src/model_data.h"

namespace {

cc_node node;  // cell histories and buffers: static memory, no heap

void write_line(void*, const char* bytes, size_t length) {
  Serial.write(reinterpret_cast<const uint8_t*>(bytes), length);
}

uint32_t read_micros(void*) {
  return micros();
}

}  // namespace

void setup() {
  Serial.begin(115200);  // USB CDC ignores the rate; a UART bridge needs 115200 8N1
  pinMode(LED_BUILTIN, OUTPUT);
  const cc_node_io io = {write_line, read_micros, nullptr};
  if (cc_node_init(&node, &cc_model, io) != CC_NODE_OK) {
    // The exported model does not fit this build (cannot happen with an unmodified export):
    // blink fast forever rather than answer with a model it cannot run.
    for (;;) {
      digitalWrite(LED_BUILTIN, !digitalRead(LED_BUILTIN));
      delay(100);
    }
  }
}

void loop() {
  char buffer[64];
  size_t n = 0;
  while (n < sizeof buffer && Serial.available() > 0)
    buffer[n++] = static_cast<char>(Serial.read());
  if (n > 0) cc_node_feed(&node, buffer, n);
}
