// bench/bench_alarms_trained.py's driver: the host-compiled fs_protocol.cpp fed a stream (stdin, the transcripts'
// form: protocol bytes, "@ <ms>" clock lines), its model replaying the outputs the emulated board's tflite-micro
// runtime gave for the same stream (argv[1]: one invoke a line, the horizon x targets scaled floats as %a hex), so
// the watch (adaptive bands, alarms) runs the board's own C++ on a trained network's forecasts.
#include <stdio.h>
#include <stdlib.h>

#include "fs_protocol.h"
#include "model_config.h"
#include "test_windows.h"

namespace {

class ReplayModel : public fs::Model {
 public:
  explicit ReplayModel(FILE* f) : f_(f) {}
  fs::Status Run(const float*, float* out, uint32_t* elapsed_us) override {
    for (int i = 0; i < FS_HORIZON * FS_TARGETS; i++) {
      if (fscanf(f_, " %a", &out[i]) != 1) return fs::kInvokeFailed;
    }
    *elapsed_us = 7;
    return fs::kOk;
  }

 private:
  FILE* f_;
};

void WriteLine(const char* line, void*) {
  fputs(line, stdout);
  fputc('\n', stdout);
}

char g_line[FS_LINE_MAX];
float g_values[FS_WINDOW * FS_FEATURES];
float g_scaled[FS_WINDOW * FS_FEATURES];
float g_result[FS_HORIZON * FS_TARGETS];
float g_ring[FS_WINDOW * FS_FEATURES];
float g_watch[FS_WATCH_FLOATS];
int g_watch_ints[FS_TARGETS];

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  FILE* outputs = fopen(argv[1], "r");
  if (outputs == nullptr) return 2;
  ReplayModel model(outputs);
  fs::Protocol protocol(kModelInfo, &model, fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result, g_ring},
                        kTestWindows, kTestWindowCount, WriteLine, nullptr);
  protocol.SetWatch(&kWatchInfo, g_watch, g_watch_ints);
  protocol.Begin();
  int c;
  bool line_start = true;
  while ((c = fgetc(stdin)) != EOF) {
    if (line_start && c == '@') {
      unsigned long ms = 0;
      if (fscanf(stdin, " %lu", &ms) != 1) return 3;
      while ((c = fgetc(stdin)) != EOF && c != '\n') {
      }
      protocol.Tick(static_cast<uint32_t>(ms));
      continue;
    }
    protocol.Feed(static_cast<uint8_t>(c));
    line_start = c == '\n';
  }
  return 0;
}
