// Host driver for fs_protocol.cpp: bytes from stdin, board lines to stdout.
// The model is a fake with no runtime: forecast step h of target t is the input value of
// column t, h steps before the last one. tests/firmware_support.py builds a real .tflite
// that computes the same, so the emulator passes the same transcripts.
// With a file argument the model replays the outputs in it instead (one invoke a line, horizon x targets
// scaled floats as %a hex): bench/bench_alarms_trained.py runs the board's own C++ watch on a trained
// network's forecasts that way.
#include <stdio.h>

#include "fs_protocol.h"
#include "model_config.h"
#include "test_windows.h"

namespace {

class LastStepModel : public fs::Model {
 public:
  fs::Status Run(const float* in, float* out, uint32_t* elapsed_us) override {
    for (int h = 0; h < FS_HORIZON; h++) {
      for (int t = 0; t < FS_TARGETS; t++) {
        out[h * FS_TARGETS + t] = in[(FS_WINDOW - 1 - h) * FS_FEATURES + t % FS_FEATURES];
      }
    }
    *elapsed_us = 7;
    return fs::kOk;
  }
};

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
  if (argc > 2) return 2;
  FILE* outputs = argc == 2 ? fopen(argv[1], "r") : nullptr;
  if (argc == 2 && outputs == nullptr) return 2;
  LastStepModel last_step;
  ReplayModel replay(outputs);
  fs::Model& model = outputs != nullptr ? static_cast<fs::Model&>(replay) : last_step;
  fs::Protocol protocol(kModelInfo, &model, fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result, g_ring},
                        kTestWindows, kTestWindowCount, WriteLine, nullptr);
  protocol.SetWatch(&kWatchInfo, g_watch, g_watch_ints);
  protocol.Begin();
  // Bytes go to the protocol as they come, except a line "@ <ms>" at a line's start: the board's clock
  // (millis()) moves to <ms> (the transcripts' clock lines; core.board.emulator.ProtocolEngine.tick).
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
