// Forecast Studio firmware for the Seeed XIAO ESP32S3: forecasts over USB serial.
// Arduino glue only: the protocol is in fs_protocol.cpp, the model in fs_model.cpp (with the
// step loop in fs_steploop.cpp for a step-loop export), everything about this particular model
// in model_config.h (written by the studio).
#include "fs_model.h"
#include "fs_protocol.h"
#include "model_config.h"
#include "test_windows.h"

// ============================================================================ YOUR SENSOR
// Live forecasting from your own sensor instead of the serial line. Every FS_SENSOR_PERIOD_MS the
// sketch calls ReadSensor; fill reading[0 .. FS_FEATURES-1] with one time step of the model's inputs,
// in the data's own units and in the order of kInputCenter in model_config.h (calendar columns, if
// the model has them, are sin/cos of the time, see the Features step), and return true. The board
// keeps the last FS_WINDOW readings and prints "FS RESULT k=-1 ..." with the forecast from the newest
// full window (until the window is full: "FS ERR NEED <n> more readings ..."). Returning false (the
// default) leaves streaming to the host's "R v1,v2,..." command, which does the same thing.
#define FS_SENSOR_PERIOD_MS FS_DATA_STEP_MS  // one reading per time step of the data (model_config.h)

bool ReadSensor(float* reading) {
  (void)reading;  // e.g. reading[0] = analogRead(A0) * 3.3f / 4095.0f;
  return false;
}
// ============================================================================

namespace {

char g_line[FS_LINE_MAX];
float g_values[FS_WINDOW * FS_FEATURES];
float g_scaled[FS_WINDOW * FS_FEATURES];
float g_result[FS_HORIZON * FS_TARGETS];
float g_ring[FS_WINDOW * FS_FEATURES];  // the last window of readings (R command, ReadSensor)
float g_reading[FS_FEATURES];
float g_watch[FS_WATCH_FLOATS];  // adaptive bands, the last forecasts, the alarm band (model_config.h)
int g_watch_ints[FS_TARGETS];

// SPEC lines end in a bare '\n' (println would add '\r').
void WriteLine(const char* line, void*) {
  Serial.print(line);
  Serial.print('\n');
}

TflmModel g_model_runner;
fs::Protocol g_protocol(kModelInfo, &g_model_runner,
                        fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result, g_ring},
                        kTestWindows, kTestWindowCount, WriteLine, nullptr);
unsigned long g_last_reading_ms = 0;
bool g_alarm_shown = false;

// FS_ALARM_PIN (model_config.h: the XIAO's LED by default, which lights when pulled low).
void ShowAlarm(bool on) {
  digitalWrite(FS_ALARM_PIN, (on != (FS_ALARM_ACTIVE_LOW != 0)) ? HIGH : LOW);
  g_alarm_shown = on;
}

}  // namespace

void setup() {
  Serial.begin(115200);
  // No while (!Serial): the board must run (and answer later) without a host attached.
  const char* why = nullptr;
  if (!g_model_runner.Begin(&why)) g_protocol.SetFault("ALLOC", why);
  pinMode(FS_ALARM_PIN, OUTPUT);
  ShowAlarm(false);
  g_protocol.SetWatch(&kWatchInfo, g_watch, g_watch_ints);
  g_protocol.Begin();
}

void loop() {
  // The clock first (the gap alarm: no reading for FS_READING_TIMEOUT_MS), then the bytes already received:
  // loop() never waits for the host.
  g_protocol.Tick(static_cast<uint32_t>(millis()));
  while (Serial.available() > 0) g_protocol.Feed(static_cast<uint8_t>(Serial.read()));
  if (g_protocol.Alarm() != g_alarm_shown) ShowAlarm(g_protocol.Alarm());
  const unsigned long now = millis();
  if (now - g_last_reading_ms >= FS_SENSOR_PERIOD_MS) {
    g_last_reading_ms = now;
    if (ReadSensor(g_reading)) g_protocol.Push(g_reading);
  }
}
