// The only file that touches TensorFlow Lite Micro; everything else is plain C++.
#include "fs_model.h"

#include <Arduino.h>
#include <TensorFlowLite_ESP32.h>
#include <esp_heap_caps.h>
#include <new>
#include <string.h>

#include "model_config.h"
#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

#if !FS_ARENA_IN_PSRAM
// Fits internal SRAM: a static array is the fastest memory and fails at link time,
// not at run time, if the sketch outgrows the chip.
alignas(16) uint8_t g_arena[FS_ARENA_BYTES];
#endif

tflite::MicroMutableOpResolver<kOpCount> g_resolver;
// The interpreter lives in static storage: no heap, and it is built only once the
// arena exists (a PSRAM arena is known only at run time).
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_memory[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* g_interpreter = nullptr;

}  // namespace

bool TflmModel::Begin(const char** why) {
#if FS_ARENA_IN_PSRAM
  uint8_t* arena = static_cast<uint8_t*>(
      heap_caps_aligned_alloc(16, FS_ARENA_BYTES, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
  if (arena == nullptr) {
    *why = "no PSRAM for the arena: choose Tools > PSRAM > OPI PSRAM and upload again";
    return false;
  }
#else
  uint8_t* arena = g_arena;
#endif
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    *why = "model schema version does not match the TFLM library";
    return false;
  }
  if (!RegisterOps(g_resolver)) {
    *why = "the TFLM library lacks an op this model needs";
    return false;
  }
  g_interpreter = new (g_interpreter_memory)
      tflite::MicroInterpreter(model, g_resolver, arena, FS_ARENA_BYTES);
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    *why = "AllocateTensors failed: the arena is too small for this library build";
    return false;
  }
  const TfLiteTensor* input = g_interpreter->input(0);
  const TfLiteTensor* output = g_interpreter->output(0);
  const size_t width = FS_DTYPE_INT8 ? 1 : 4;
  if (input->bytes != FS_WINDOW * FS_FEATURES * width ||
      output->bytes != FS_HORIZON * FS_TARGETS * width) {
    *why = "model tensor sizes do not match model_config.h";
    return false;
  }
  ready_ = true;
  return true;
}

fs::Status TflmModel::Run(const float* in, float* out, uint32_t* elapsed_us) {
  if (!ready_) return fs::kAllocFailed;
  // The fused LSTM op keeps its state between invokes; each window starts fresh.
  g_interpreter->ResetVariableTensors();
  TfLiteTensor* input = g_interpreter->input(0);
  const int n_in = FS_WINDOW * FS_FEATURES;
  if (input->type == kTfLiteInt8) {
    for (int i = 0; i < n_in; i++) {
      input->data.int8[i] = fs::QuantizeInt8(in[i], input->params.scale, input->params.zero_point);
    }
  } else {
    memcpy(input->data.f, in, n_in * sizeof(float));
  }
  const uint32_t start = micros();
  const TfLiteStatus status = g_interpreter->Invoke();
  *elapsed_us = micros() - start;
  if (status != kTfLiteOk) return fs::kInvokeFailed;
  const TfLiteTensor* output = g_interpreter->output(0);
  const int n_out = FS_HORIZON * FS_TARGETS;
  for (int i = 0; i < n_out; i++) {
    out[i] = output->type == kTfLiteInt8
                 ? fs::DequantizeInt8(output->data.int8[i], output->params.scale, output->params.zero_point)
                 : output->data.f[i];
  }
  return fs::kOk;
}
