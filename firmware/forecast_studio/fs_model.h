// TensorFlow Lite Micro behind the protocol's Model interface (board only).
#pragma once

#include "fs_protocol.h"

class TflmModel : public fs::Model {
 public:
  // Places the arena (internal RAM or PSRAM, see model_config.h), registers the
  // model's ops and allocates its tensors. On failure *why says what to do.
  bool Begin(const char** why);
  fs::Status Run(const float* in, float* out, uint32_t* elapsed_us) override;

 private:
  bool ready_ = false;
};
