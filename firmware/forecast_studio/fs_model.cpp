// The only file that touches TensorFlow Lite Micro; everything else is plain C++.
//
// TFLM comes with the board package, not from a library: the esp32 core 3.x (arduino-esp32, Espressif's
// Boards Manager package) carries Espressif's esp-tflite-micro with its ESP-NN kernels. Every TFLM name
// used here is on the list in core/firmware/tflm_api.py, verified by compiling this file against
// esp-tflite-micro and running it (docs/FIRMWARE.md); tests/test_firmware_tflm_api.py keeps it there.
#include "fs_model.h"

#include <Arduino.h>

#if defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR < 3
#error "Forecast Studio: this sketch needs the esp32 core 3.x (it carries TensorFlow Lite Micro). Arduino IDE: Boards Manager > esp32 by Espressif Systems > install 3.3.11. PlatformIO: use the platformio.ini in this bundle."
#endif
#if __has_include(<TensorFlowLite_ESP32.h>)
#error "Forecast Studio: the TensorFlowLite_ESP32 library (a 2022 TensorFlow Lite Micro) is installed and hides the one the esp32 core 3.x carries. Remove it (Arduino IDE: Library Manager > TensorFlowLite_ESP32 > Remove; PlatformIO: delete it from lib_deps and .pio/libdeps) and build again."
#endif
// The core's TFLM is built with TF_LITE_STATIC_MEMORY; the tensor structs seen here must have the same layout.
#ifndef TF_LITE_STATIC_MEMORY
#define TF_LITE_STATIC_MEMORY
#endif

#include <esp_heap_caps.h>
#include <new>
#include <string.h>

#include "fs_steploop.h"
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

void ToTensor(TfLiteTensor* tensor, const float* values, int n) {
  if (tensor->type == kTfLiteInt8) {
    for (int i = 0; i < n; i++) {
      tensor->data.int8[i] = fs::QuantizeInt8(values[i], tensor->params.scale, tensor->params.zero_point);
    }
  } else {
    memcpy(tensor->data.f, values, n * sizeof(float));
  }
}

void FromTensor(const TfLiteTensor* tensor, float* values, int n) {
  for (int i = 0; i < n; i++) {
    values[i] = tensor->type == kTfLiteInt8
                    ? fs::DequantizeInt8(tensor->data.int8[i], tensor->params.scale, tensor->params.zero_point)
                    : tensor->data.f[i];
  }
}

#if FS_STEP_LOOP
// One time step on TFLM. The state stays float in the loop's buffers; an int8 model's state tensors
// are quantized here on the way in and dequantized on the way out, every step.
class TflmStepCell : public fs::StepCell {
 public:
  fs::Status Step(const float* x, const float* state_in, float* state_out, float* y) override {
    ToTensor(g_interpreter->input(FS_STEP_X_INPUT), x, FS_FEATURES);
    ToTensor(g_interpreter->input(FS_STEP_STATE_INPUT), state_in, FS_STATE_SIZE);
    if (g_interpreter->Invoke() != kTfLiteOk) return fs::kInvokeFailed;
    FromTensor(g_interpreter->output(FS_STEP_STATE_OUTPUT), state_out, FS_STATE_SIZE);
    FromTensor(g_interpreter->output(FS_STEP_Y_OUTPUT), y, FS_HORIZON * FS_TARGETS);
    return fs::kOk;
  }
};

uint32_t Micros() { return micros(); }

TflmStepCell g_cell;
float g_state_a[FS_STATE_SIZE];
float g_state_b[FS_STATE_SIZE];
fs::StepLoop g_loop(&g_cell, FS_WINDOW, FS_FEATURES, FS_STATE_SIZE, g_state_a, g_state_b, Micros);
#endif

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
  const size_t width = FS_DTYPE_INT8 ? 1 : 4;
#if FS_STEP_LOOP
  if (g_interpreter->input(FS_STEP_X_INPUT)->bytes != FS_FEATURES * width ||
      g_interpreter->input(FS_STEP_STATE_INPUT)->bytes != FS_STATE_SIZE * width ||
      g_interpreter->output(FS_STEP_STATE_OUTPUT)->bytes != FS_STATE_SIZE * width ||
      g_interpreter->output(FS_STEP_Y_OUTPUT)->bytes != FS_HORIZON * FS_TARGETS * width) {
    *why = "step model tensor sizes do not match model_config.h";
    return false;
  }
#else
  const TfLiteTensor* input = g_interpreter->input(0);
  const TfLiteTensor* output = g_interpreter->output(0);
  if (input->bytes != FS_WINDOW * FS_FEATURES * width ||
      output->bytes != FS_HORIZON * FS_TARGETS * width) {
    *why = "model tensor sizes do not match model_config.h";
    return false;
  }
#endif
  ready_ = true;
  return true;
}

fs::Status TflmModel::Run(const float* in, float* out, uint32_t* elapsed_us) {
  if (!ready_) return fs::kAllocFailed;
#if FS_STEP_LOOP
  return g_loop.Run(in, out, elapsed_us);
#else
  // The fused LSTM op keeps its state between invokes; each window starts fresh (Reset clears the
  // variable tensors and every kernel's state; TFLM removed ResetVariableTensors in 2023).
  if (g_interpreter->Reset() != kTfLiteOk) return fs::kInvokeFailed;
  ToTensor(g_interpreter->input(0), in, FS_WINDOW * FS_FEATURES);
  const uint32_t start = micros();
  const TfLiteStatus status = g_interpreter->Invoke();
  *elapsed_us = micros() - start;
  if (status != kTfLiteOk) return fs::kInvokeFailed;
  FromTensor(g_interpreter->output(0), out, FS_HORIZON * FS_TARGETS);
  return fs::kOk;
#endif
}
