// Forecast Studio firmware for the Seeed XIAO ESP32S3: forecasts over USB serial.
// Arduino glue only: the protocol is in fs_protocol.cpp, the model in fs_model.cpp,
// everything about this particular model in model_config.h (written by the studio).
#include "fs_model.h"
#include "fs_protocol.h"
#include "model_config.h"
#include "test_windows.h"

namespace {

char g_line[FS_LINE_MAX];
float g_values[FS_WINDOW * FS_FEATURES];
float g_scaled[FS_WINDOW * FS_FEATURES];
float g_result[FS_HORIZON * FS_TARGETS];

// SPEC lines end in a bare '\n' (println would add '\r').
void WriteLine(const char* line, void*) {
  Serial.print(line);
  Serial.print('\n');
}

TflmModel g_model_runner;
fs::Protocol g_protocol(kModelInfo, &g_model_runner,
                        fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result},
                        kTestWindows, kTestWindowCount, WriteLine, nullptr);

}  // namespace

void setup() {
  Serial.begin(115200);
  // No while (!Serial): the board must run (and answer later) without a host attached.
  const char* why = nullptr;
  if (!g_model_runner.Begin(&why)) g_protocol.SetFault("ALLOC", why);
  g_protocol.Begin();
}

void loop() {
  // Only the bytes already received: loop() never waits for the host.
  while (Serial.available() > 0) g_protocol.Feed(static_cast<uint8_t>(Serial.read()));
}
