// bench/bench_watch.py's driver: the host-compiled fs_protocol.cpp fed N readings with R, the watch (adaptive
// bands and alarms) on or off, timed with a monotonic clock. The model is tests/firmware_host/main.cpp's fake
// (the last reading), so the time is the protocol's: parsing, the window, the watch, the FS RESULT line.
// Usage: watch_driver <readings> <repeats>; prints "on <ns per reading>" and "off <ns per reading>" (best of
// the repeats, on and off interleaved so a busy machine slows both alike) and the lines written.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <vector>

#include "fs_protocol.h"
#include "model_config.h"
#include "test_windows.h"

namespace {

class LastStepModel : public fs::Model {
 public:
  fs::Status Run(const float* in, float* out, uint32_t* elapsed_us) override {
    for (int h = 0; h < FS_HORIZON; h++) {
      for (int t = 0; t < FS_TARGETS; t++) out[h * FS_TARGETS + t] = in[(FS_WINDOW - 1 - h) * FS_FEATURES + t % FS_FEATURES];
    }
    *elapsed_us = 7;
    return fs::kOk;
  }
};

long g_lines = 0;
long g_alerts = 0;
void CountLine(const char* line, void*) {
  g_lines++;
  if (line[3] == 'A') g_alerts++;  // "FS ALERT"
}

char g_line[FS_LINE_MAX];
float g_values[FS_WINDOW * FS_FEATURES];
float g_scaled[FS_WINDOW * FS_FEATURES];
float g_result[FS_HORIZON * FS_TARGETS];
float g_ring[FS_WINDOW * FS_FEATURES];
float g_watch[FS_WATCH_FLOATS];
int g_watch_ints[FS_TARGETS];

double Seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Run(const std::vector<char>& text, long readings, bool watch) {
  LastStepModel model;
  fs::Protocol protocol(kModelInfo, &model, fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result, g_ring},
                        kTestWindows, kTestWindowCount, CountLine, nullptr);
  if (watch) protocol.SetWatch(&kWatchInfo, g_watch, g_watch_ints);
  protocol.Begin();
  const double t0 = Seconds();
  for (char c : text) protocol.Feed(static_cast<uint8_t>(c));
  return (Seconds() - t0) * 1e9 / static_cast<double>(readings);
}

}  // namespace

int main(int argc, char** argv) {
  const long readings = argc > 1 ? atol(argv[1]) : 20000;
  const int repeats = argc > 2 ? atoi(argv[2]) : 5;
  // A random walk per feature (a fixed linear congruential generator: the same text every run).
  std::vector<char> text;
  unsigned long state = 12345;
  float level[FS_FEATURES] = {};
  char number[32];
  for (long i = 0; i < readings; i++) {
    text.push_back('R');
    for (int f = 0; f < FS_FEATURES; f++) {
      state = state * 1103515245UL + 12345UL;
      level[f] += (static_cast<float>((state >> 16) & 0x7fff) / 32768.0f - 0.5f) * 0.6f;
      snprintf(number, sizeof(number), "%c%.3f", f ? ',' : ' ', static_cast<double>(level[f]));
      for (char* p = number; *p; p++) text.push_back(*p);
    }
    text.push_back('\n');
  }
  double best_on = 1e30, best_off = 1e30;
  long lines_on = 0, alerts_on = 0;
  for (int r = 0; r < repeats; r++) {
    g_lines = g_alerts = 0;
    const double on = Run(text, readings, true);
    lines_on = g_lines;
    alerts_on = g_alerts;
    const double off = Run(text, readings, false);
    if (on < best_on) best_on = on;
    if (off < best_off) best_off = off;
  }
  printf("on %.1f\noff %.1f\nlines %ld\nalerts %ld\n", best_on, best_off, lines_on, alerts_on);
  return 0;
}
