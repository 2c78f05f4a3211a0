// Host test driver for the step loop (fs_steploop.cpp) behind fs_protocol.cpp: bytes from stdin,
// board lines to stdout. The cell is the C++ twin of the committed stepsum export's one-step model
// (tests/firmware_support.py): state' = state + x, y = state'. Looped over a window, the forecast
// is the sum of the window's scaled inputs, so a wrong loop (state not carried, not reset between
// windows, a step skipped or repeated) changes the answer the golden transcripts state.
#include <stdio.h>

#include "fs_protocol.h"
#include "fs_steploop.h"
#include "model_config.h"
#include "test_windows.h"

#if !FS_STEP_LOOP
#error "step_main.cpp needs a step-loop bundle (model_config.h with FS_STEP_LOOP 1)"
#endif

namespace {

class SumCell : public fs::StepCell {
 public:
  fs::Status Step(const float* x, const float* state_in, float* state_out, float* y) override {
    for (int i = 0; i < FS_STATE_SIZE; i++) state_out[i] = state_in[i] + x[i % FS_FEATURES];
    for (int i = 0; i < FS_HORIZON * FS_TARGETS; i++) y[i] = state_out[i % FS_STATE_SIZE];
    return fs::kOk;
  }
};

uint32_t g_now = 0;
uint32_t FakeMicros() { return g_now += 7; }

void WriteLine(const char* line, void*) {
  fputs(line, stdout);
  fputc('\n', stdout);
}

char g_line[FS_LINE_MAX];
float g_values[FS_WINDOW * FS_FEATURES];
float g_scaled[FS_WINDOW * FS_FEATURES];
float g_result[FS_HORIZON * FS_TARGETS];
float g_ring[FS_WINDOW * FS_FEATURES];
float g_state_a[FS_STATE_SIZE];
float g_state_b[FS_STATE_SIZE];

}  // namespace

int main() {
  SumCell cell;
  fs::StepLoop loop(&cell, FS_WINDOW, FS_FEATURES, FS_STATE_SIZE, g_state_a, g_state_b, FakeMicros);
  fs::Protocol protocol(kModelInfo, &loop, fs::Buffers{g_line, sizeof(g_line), g_values, g_scaled, g_result, g_ring},
                        kTestWindows, kTestWindowCount, WriteLine, nullptr);
  protocol.Begin();
  unsigned char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
    for (size_t i = 0; i < n; i++) protocol.Feed(chunk[i]);
  }
  return 0;
}
