// The step loop (see fs_steploop.h).
#include "fs_steploop.h"

namespace fs {

Status StepLoop::Run(const float* in, float* out, uint32_t* elapsed_us) {
  const uint32_t start = clock_();
  // Every window is an independent forecast: the state starts at zero, as in training.
  float* state = state_a_;
  float* next = state_b_;
  for (int i = 0; i < state_size_; i++) state[i] = 0.0f;
  for (int t = 0; t < window_; t++) {
    // Each step writes the forecast; the last step's is the window's.
    const Status status = cell_->Step(in + t * features_, state, next, out);
    if (status != kOk) return status;
    float* swap = state;
    state = next;
    next = swap;
  }
  *elapsed_us = clock_() - start;
  return kOk;
}

}  // namespace fs
