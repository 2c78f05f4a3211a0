// The step-loop form: the exported model is ONE time step of the recurrent network
// (this step's inputs and the previous state in; the new state and the head's forecast out),
// and this loop runs it over the window, keeping the state in its own float buffers.
// The flash holds one cell and the arena one step, whatever the window length.
// Plain C++ (no Arduino, no TFLM): the studio's tests compile it with the host's g++.
#pragma once

#include <stdint.h>

#include "fs_protocol.h"

namespace fs {

// One time step of the network. The firmware plugs TensorFlow Lite Micro in (fs_model.cpp).
class StepCell {
 public:
  virtual ~StepCell() {}
  // x: features scaled values of this step; state_in: state_size floats (zeros at the first step).
  // Writes state_out (state_size floats) and y (horizon * targets scaled values).
  virtual Status Step(const float* x, const float* state_in, float* state_out, float* y) = 0;
};

typedef uint32_t (*MicrosClock)();

// A whole window through the cell, one step at a time: the Model the protocol runs.
class StepLoop : public Model {
 public:
  // state_a, state_b: state_size floats each, owned by the caller (two, so a step never reads
  // what it is writing). clock: microseconds (Arduino's micros on the board).
  StepLoop(StepCell* cell, int window, int features, int state_size, float* state_a, float* state_b,
           MicrosClock clock)
      : cell_(cell), window_(window), features_(features), state_size_(state_size),
        state_a_(state_a), state_b_(state_b), clock_(clock) {}

  Status Run(const float* in, float* out, uint32_t* elapsed_us) override;

 private:
  StepCell* cell_;
  int window_;
  int features_;
  int state_size_;
  float* state_a_;
  float* state_b_;
  MicrosClock clock_;
};

}  // namespace fs
