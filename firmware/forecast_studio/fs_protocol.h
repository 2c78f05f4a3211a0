// Forecast Studio serial protocol: parse host lines, scale, run the model, format answers.
// Plain C++ with no Arduino or TFLM include, so the studio's tests compile it with the
// host's g++ and run it against the same golden transcripts as the device emulator.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>

namespace fs {

// What went wrong inside the model; the protocol turns it into an FS ERR line.
enum Status { kOk = 0, kAllocFailed = 1, kInvokeFailed = 2 };

// The model behind the protocol. The firmware plugs TensorFlow Lite Micro in
// (fs_model.cpp); the host test plugs in a fake that needs no runtime.
class Model {
 public:
  virtual ~Model() {}
  // in: window * features scaled values, time-major. out: horizon * targets scaled values.
  // elapsed_us: inference time in microseconds. Each call is one independent window, so implementations
  // clear any state a recurrent op carries between invokes.
  virtual Status Run(const float* in, float* out, uint32_t* elapsed_us) = 0;
};

// Constants from model_config.h; per-column scaler values in the model's input order.
struct ModelInfo {
  const char* name;
  int window;
  int features;
  int horizon;
  int targets;
  const char* dtype;
  uint32_t arena_bytes;
  const float* input_center;
  const float* input_scale;
  const float* target_center;
  const float* target_scale;
  // Change-from-last-value models whose int8 graph predicts only the change: the input column of
  // each target, whose last scaled value is added to the model's output here, in float, where it
  // cannot saturate. nullptr when the model adds it back itself.
  const int* target_input;
  // With target_input: the window row whose value each forecast step adds back (horizon entries).
  // The change from the last value adds row window-1 at every step; the change from the value one
  // season earlier adds, for step k, the row of the same phase one season before it.
  const int* reference_row;
  // With target_input, for the change from last value and last season: every step's reference also adds
  // row drift_add_row minus row drift_sub_row (the change since one season ago); -1 when there is none.
  int drift_add_row;
  int drift_sub_row;
  // Calibrated prediction bands: band_levels names ("80", "95") and half-widths in the targets' units,
  // band_levels * horizon * targets, level-major then step then target. 0 / null: no bands printed.
  // The bounds are the final forecast (after the last value is added back) -/+ these.
  int band_levels;
  const char* const* band_names;
  const float* band_half_width;
  // The multiplicative (log) form (core/logscale.py): 1 per input column read as log(value) before Scale, and per
  // target whose forecast is exp() of the unscaled output (after the reference add-back, before the bands).
  // nullptr: no column is. A reading of 0 or below in a log column is refused with FS ERR PARSE.
  const unsigned char* input_log;
  const unsigned char* target_log;
  // With target_input, for the change from a linear forecast (core/linear_reference.py): the fitted weights,
  // targets * horizon * window (target-major, then step, then row), and biases, targets * horizon, in scaled
  // units. Step k of target j adds bias[j*horizon+k] + the sum over rows r of weight[(j*horizon+k)*window+r] times
  // the target's scaled value at row r, summed in double in row order and rounded once to float; reference_row and
  // the drift rows are then unused. nullptr for every other form.
  const float* linear_weight;
  const float* linear_bias;
};

// The watch over streamed readings (issue 33; core/alarms.py is the same in Python), from model_config.h.
struct WatchInfo {
  const int* column;        // each target's column in a reading (its truth); nullptr: nothing to watch but gaps
  const float* up;          // adaptive bands, band_levels * horizon * targets: a miss multiplies the half-width
  const float* down;        // by up, a hit by down, never under floor[target]; nullptr: no bands
  const float* floor;
  int alarm_level;          // index into the band levels of the band alarm; -1: none
  float margin;             // alarm when a reading is outside forecast -/+ margin * max(adaptive, exported half-width)
  const int* stuck_limit;   // per target, the training's longest run of one value; nullptr: not watched
  uint32_t timeout_ms;      // gap alarm after this long without a reading; 0: off
  const float* drift_scale; // per target, the one-step validation error's scale; nullptr: no drift alarm
  float drift_k;            // the drift CUSUM's allowance (scales per reading) and threshold
  float drift_h;
  const float* scale0;      // adaptive bands: each step's starting error scale, horizon * targets (half-width =
  const float* mult0;       // multiplier x scale); each cell's starting multiplier, band_levels * horizon * targets
  float beta;               // the scale's averaging rate per error (twice it, the error unclipped, while every
                            // level's multiplier is at its upper bound)
  float clip;               // an error counts at most clip scales in the average
  const int* stuck_inside;  // per target, the longest run strictly inside the training range, for a value with
  const float* stuck_lo;    // stuck_lo < value < stuck_hi (the range's edges); nullptr: stuck_limit for every value
  const float* stuck_hi;
};

// Receives one finished output line, without its newline.
typedef void (*LineWriter)(const char* line, void* context);

// Buffers the protocol needs, sized by the caller from model_config.h so nothing is
// allocated at run time: line holds one host line, values window*features floats,
// scaled the same, result horizon*targets floats, ring window*features floats (the
// last window of readings pushed with R or Push, in the data's units).
struct Buffers {
  char* line;
  size_t line_capacity;
  float* values;
  float* scaled;
  float* result;
  float* ring;
};

// The gap alarm after this many readings' time without one: W <ms> sets ms x kGapReadings (core/alarms.py GAP_READINGS).
const uint32_t kGapReadings = 3;

class Protocol {
 public:
  Protocol(const ModelInfo& info, Model* model, const Buffers& buffers,
           const float* test_windows, int test_window_count, LineWriter writer,
           void* writer_context);

  // Prints the ready line; call once at boot.
  void Begin();
  // Feed one received byte. Never blocks: a line is handled when its '\n' arrives.
  void Feed(uint8_t byte);
  // Set when the model could not start (e.g. no arena); T and P then answer with it.
  void SetFault(const char* code, const char* message);
  // One reading (features values, data units, the model's input order) into the ring buffer of
  // the last window; answers FS RESULT k=-1 from the newest full window, the same forecast as P
  // with that window, or FS ERR NEED while fewer than window readings have arrived. The serial
  // line's R command and the sketch's own sensor reading both come here.
  void Push(const float* reading);
  // The watch (adaptive bands and alarms, FS ALERT lines): floats holds FS_WATCH_FLOATS, ints FS_TARGETS.
  // Without it the board forecasts as before and prints no alert.
  void SetWatch(const WatchInfo* watch, float* floats, int* ints);
  // The board's clock in milliseconds (millis()); call from loop(). Prints the gap alert once readings stop
  // (for longer than the bundle's FS_READING_TIMEOUT_MS, or kGapReadings times the pace a host set with W <ms>).
  void Tick(uint32_t now_ms);
  // True while the newest reading raised an alert, or readings stopped coming: the sketch drives FS_ALARM_PIN.
  bool Alarm() const { return alarm_; }
  // Readings still needed before the first forecast (0 once the window is full).
  int ReadingsNeeded() const { return ring_count_ < info_.window ? info_.window - ring_count_ : 0; }

  // Exposed for tests: scaling between the data's units and the model's.
  static float Scale(float x, float center, float scale) { return (x - center) / scale; }
  static float Unscale(float y, float center, float scale) { return y * scale + center; }
  // log and exp in double, rounded once to float: the same float32 on the board's libm, the host's g++ and the
  // emulator (core/logscale.py), where logf/expf may differ in the last bit between libraries.
  static float LogValue(float x) { return static_cast<float>(log(static_cast<double>(x))); }
  static float ExpValue(float y) { return static_cast<float>(exp(static_cast<double>(y))); }

 private:
  void HandleLine();
  void Ready();
  void SelfTest();
  void Predict(const char* args);
  void PushLine(const char* args);
  void Pace(const char* args);
  // The gap alarm's limit: W's pace times kGapReadings, else the bundle's watch->timeout_ms (0: off).
  uint32_t GapLimit() const;
  // Parses "v1,v2,..." into out (up to max values); returns the count, or -1 after an FS ERR PARSE.
  int ParseValues(const char* args, float* out, int max);
  bool RunWindow(const float* raw, int k);
  // False, after an FS ERR PARSE naming the first value, when a log column's value is 0 or below.
  bool LogValuesPositive(const float* values, int count, const char* what);
  // The watch, in its own functions (fs_protocol.cpp's end): each reading, each forecast.
  void WatchReading(const float* reading);
  void WatchForecast(const float* y);
  const float* HalfWidths() const;
  void Error(const char* code, const char* message);
  void Write(const char* line) { writer_(line, writer_context_); }

  const ModelInfo& info_;
  Model* model_;
  Buffers buf_;
  const float* test_windows_;
  int test_window_count_;
  LineWriter writer_;
  void* writer_context_;
  size_t length_ = 0;
  bool overlong_ = false;
  bool non_ascii_ = false;
  int ring_count_ = 0;  // readings held, at most window
  int ring_next_ = 0;   // step slot the next reading goes to
  const WatchInfo* watch_ = nullptr;
  float* adapt_q_ = nullptr;     // band_levels * horizon * targets adaptive half-widths
  float* adapt_m_ = nullptr;     // their multipliers, band_levels * horizon * targets
  float* adapt_s_ = nullptr;     // each step's error scale, horizon * targets
  float* past_ = nullptr;        // horizon forecasts, newest first, horizon * targets each
  float* alarm_lo_ = nullptr;    // the band alarm's bounds for the next reading, per target
  float* alarm_hi_ = nullptr;
  float* last_value_ = nullptr;  // per target, for the stuck check
  float* cusum_ = nullptr;       // per target, the drift CUSUM's upward then downward sums, the error's slow mean, its count
  int* run_ = nullptr;           // per target, consecutive equal values
  int past_count_ = 0;
  long readings_ = 0;
  uint32_t now_ms_ = 0;
  uint32_t last_reading_ms_ = 0;
  bool gap_alerted_ = false;
  bool paced_ = false;        // W <ms> set the gap limit below, else the bundle's watch->timeout_ms
  uint32_t pace_limit_ms_ = 0;
  bool alarm_ = false;
  const char* fault_code_ = nullptr;
  const char* fault_message_ = nullptr;
};

// int8 models: the TFLM tensors carry scale and zero point; round half away from zero
// like TFLite's own quantizer, clamped to the int8 range.
inline int8_t QuantizeInt8(float x, float scale, int zero_point) {
  const float r = x / scale;
  long q = static_cast<long>(r >= 0.0f ? r + 0.5f : r - 0.5f) + zero_point;
  if (q < -128) q = -128;
  if (q > 127) q = 127;
  return static_cast<int8_t>(q);
}
inline float DequantizeInt8(int8_t q, float scale, int zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

// Parses a decimal number the way the emulator does: [+-]digits[.digits][e[+-]digits].
// Rejects hex, inf, nan and empty text so both sides accept exactly the same lines.
bool ParseNumber(const char* text, size_t length, float* out);

}  // namespace fs
