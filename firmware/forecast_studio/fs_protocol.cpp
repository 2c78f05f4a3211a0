// The protocol from the studio's SPEC, in plain C++ (see fs_protocol.h).
#include "fs_protocol.h"

// The watch's float arithmetic must round like the host's (core/alarms.py, core/adaptive.py): no fused multiply-add
// (the ESP32-S3's FPU has madd.s, and GCC contracts a * b + c into it unless told not to).
#pragma GCC optimize("fp-contract=off")

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace fs {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Appends text at *pos, never past capacity (the last byte stays for the terminator).
void Append(char* out, size_t capacity, size_t* pos, const char* text) {
  while (*text && *pos + 1 < capacity) out[(*pos)++] = *text++;
  out[*pos] = '\0';
}

}  // namespace

bool ParseNumber(const char* text, size_t length, float* out) {
  // Validate the shape first: strtod alone would also take "inf", "0x1p3" or "1e".
  size_t i = 0;
  if (i < length && (text[i] == '+' || text[i] == '-')) i++;
  size_t digits = 0;
  while (i < length && IsDigit(text[i])) { i++; digits++; }
  if (i < length && text[i] == '.') {
    i++;
    while (i < length && IsDigit(text[i])) { i++; digits++; }
  }
  if (digits == 0) return false;
  if (i < length && (text[i] == 'e' || text[i] == 'E')) {
    i++;
    if (i < length && (text[i] == '+' || text[i] == '-')) i++;
    size_t exponent_digits = 0;
    while (i < length && IsDigit(text[i])) { i++; exponent_digits++; }
    if (exponent_digits == 0) return false;
  }
  if (i != length || length >= 64) return false;
  char copy[64];
  memcpy(copy, text, length);
  copy[length] = '\0';
  // Parse as double and round once to float, exactly as the Python emulator does,
  // so both sides see the same float for the same text.
  double value = strtod(copy, nullptr);
  float f = static_cast<float>(value);
  if (!(f - f == 0.0f)) return false;  // overflow to inf
  *out = f;
  return true;
}

Protocol::Protocol(const ModelInfo& info, Model* model, const Buffers& buffers,
                   const float* test_windows, int test_window_count, LineWriter writer,
                   void* writer_context)
    : info_(info),
      model_(model),
      buf_(buffers),
      test_windows_(test_windows),
      test_window_count_(test_window_count),
      writer_(writer),
      writer_context_(writer_context) {}

void Protocol::Begin() { Ready(); }

void Protocol::SetFault(const char* code, const char* message) {
  fault_code_ = code;
  fault_message_ = message;
}

void Protocol::Feed(uint8_t byte) {
  if (byte == '\n') {
    buf_.line[length_] = '\0';
    HandleLine();
    length_ = 0;
    overlong_ = false;
    non_ascii_ = false;
    return;
  }
  if (byte == '\r') return;  // serial monitors send CRLF
  if (byte >= 0x80 || (byte < 0x20 && byte != '\t')) {
    non_ascii_ = true;
    return;
  }
  if (length_ + 1 >= buf_.line_capacity) {
    overlong_ = true;  // keep discarding until the newline, then report once
    return;
  }
  buf_.line[length_++] = static_cast<char>(byte);
}

void Protocol::HandleLine() {
  char message[64];
  if (overlong_) {
    snprintf(message, sizeof(message), "line longer than %lu bytes",
             static_cast<unsigned long>(buf_.line_capacity - 1));
    Error("PARSE", message);
    return;
  }
  if (non_ascii_) {
    Error("PARSE", "line has a byte that is not printable ASCII");
    return;
  }
  char* start = buf_.line;
  while (IsSpace(*start)) start++;
  size_t n = strlen(start);
  while (n > 0 && IsSpace(start[n - 1])) start[--n] = '\0';
  if (n == 0) return;  // blank lines are harmless
  if (n == 1 && start[0] == 'I') {
    Ready();
  } else if (n == 1 && start[0] == 'T') {
    SelfTest();
  } else if (start[0] == 'P' && (n == 1 || IsSpace(start[1]))) {
    Predict(start + 1);
  } else if (start[0] == 'R' && (n == 1 || IsSpace(start[1]))) {
    PushLine(start + 1);
  } else if (start[0] == 'W' && (n == 1 || IsSpace(start[1]))) {
    Pace(start + 1);
  } else {
    Error("UNKNOWN", "unknown command, use I, T, P v1,v2,..., R v1,v2,... or W ms");
  }
}

void Protocol::Ready() {
  char line[192];
  snprintf(line, sizeof(line),
           "FS READY model=%s window=%d features=%d horizon=%d targets=%d dtype=%s arena=%lu",
           info_.name, info_.window, info_.features, info_.horizon, info_.targets, info_.dtype,
           static_cast<unsigned long>(info_.arena_bytes));
  Write(line);
}

void Protocol::SelfTest() {
  if (fault_code_) {
    Error(fault_code_, fault_message_);
    return;
  }
  const int values = info_.window * info_.features;
  int done = 0;
  for (int k = 0; k < test_window_count_; k++) {
    if (!RunWindow(test_windows_ + k * values, k)) return;
    done++;
  }
  char line[32];
  snprintf(line, sizeof(line), "FS DONE n=%d", done);
  Write(line);
}

int Protocol::ParseValues(const char* args, float* out, int max) {
  int count = 0;
  while (IsSpace(*args)) args++;
  if (*args == '\0') return 0;
  const char* token = args;
  while (true) {
    const char* end = token;
    while (*end && *end != ',') end++;
    const char* a = token;
    const char* b = end;
    while (a < b && IsSpace(*a)) a++;
    while (b > a && IsSpace(b[-1])) b--;
    float value = 0.0f;
    if (!ParseNumber(a, static_cast<size_t>(b - a), &value)) {
      char message[48];
      snprintf(message, sizeof(message), "value %d is not a number", count + 1);
      Error("PARSE", message);
      return -1;
    }
    if (count < max) out[count] = value;
    count++;
    if (*end == '\0') break;
    token = end + 1;
  }
  return count;
}

void Protocol::Predict(const char* args) {
  if (fault_code_) {
    Error(fault_code_, fault_message_);
    return;
  }
  const int expected = info_.window * info_.features;
  const int count = ParseValues(args, buf_.values, expected);
  if (count < 0) return;
  if (count != expected) {
    char message[64];
    snprintf(message, sizeof(message), "expected %d values, got %d", expected, count);
    Error("BADLEN", message);
    return;
  }
  if (!LogValuesPositive(buf_.values, expected, "value")) return;
  RunWindow(buf_.values, -1);
}

bool Protocol::LogValuesPositive(const float* values, int count, const char* what) {
  if (info_.input_log == nullptr) return true;
  for (int i = 0; i < count; i++) {
    if (info_.input_log[i % info_.features] && !(values[i] > 0.0f)) {
      char message[64];
      snprintf(message, sizeof(message), "%s %d must be above 0 (the model reads its log)", what, i + 1);
      Error("PARSE", message);
      return false;
    }
  }
  return true;
}

void Protocol::PushLine(const char* args) {
  // The reading is parsed into the scaled buffer (window*features floats, free until Push has copied
  // the reading into the ring and RunWindow scales the window into it).
  float* reading = buf_.scaled;
  const int expected = info_.features;
  const int count = ParseValues(args, reading, expected);
  if (count < 0) return;
  if (count != expected) {
    char message[80];
    snprintf(message, sizeof(message), "expected %d values per reading (one per feature), got %d", expected, count);
    Error("BADLEN", message);
    return;
  }
  Push(reading);
}

void Protocol::Push(const float* reading) {
  const int f = info_.features;
  for (int i = 0; i < f; i++) {
    if (!(reading[i] - reading[i] == 0.0f)) {  // NaN or inf from a sensor: not stored, not watched
      char message[64];
      snprintf(message, sizeof(message), "reading value %d is not a finite number", i + 1);
      Error("PARSE", message);
      return;
    }
  }
  if (!LogValuesPositive(reading, f, "reading value")) return;  // not stored, not watched, like a NaN
  WatchReading(reading);
  for (int i = 0; i < f; i++) buf_.ring[ring_next_ * f + i] = reading[i];
  ring_next_ = (ring_next_ + 1) % info_.window;
  if (ring_count_ < info_.window) ring_count_++;
  if (fault_code_) {
    Error(fault_code_, fault_message_);
    past_count_ = 0;
    return;
  }
  if (ring_count_ < info_.window) {
    char message[96];
    const int need = info_.window - ring_count_;
    snprintf(message, sizeof(message), "%d more reading%s needed before the first forecast (window %d)", need,
             need == 1 ? "" : "s", info_.window);
    Error("NEED", message);
    past_count_ = 0;
    return;
  }
  // Oldest first: the slot the next reading will overwrite holds the oldest one.
  for (int t = 0; t < info_.window; t++) {
    const int slot = (ring_next_ + t) % info_.window;
    for (int i = 0; i < f; i++) buf_.values[t * f + i] = buf_.ring[slot * f + i];
  }
  if (RunWindow(buf_.values, -1)) {
    WatchForecast(buf_.result);
  } else {
    past_count_ = 0;
  }
}

bool Protocol::RunWindow(const float* raw, int k) {
  const int values = info_.window * info_.features;
  for (int i = 0; i < values; i++) {
    const int column = i % info_.features;
    const float x = info_.input_log != nullptr && info_.input_log[column] ? LogValue(raw[i]) : raw[i];
    buf_.scaled[i] = Scale(x, info_.input_center[column], info_.input_scale[column]);
  }
  uint32_t elapsed_us = 0;
  const Status status = model_->Run(buf_.scaled, buf_.result, &elapsed_us);
  if (status == kAllocFailed) {
    Error("ALLOC", "tensor arena could not be allocated");
    return false;
  }
  if (status != kOk) {
    Error("INVOKE", "model invoke failed");
    return false;
  }
  if (info_.target_input != nullptr && info_.linear_weight != nullptr && info_.linear_bias != nullptr) {
    // The linear reference, summed as core.linear_reference.reference_values sums it: the bias, then each row's
    // product in row order, in double (a product of two floats is exact in double, so a fused multiply-add
    // cannot change it), rounded once to float and added to the network's change in float.
    for (int i = 0; i < info_.horizon * info_.targets; i++) {
      const int step = i / info_.targets;
      const int target = i % info_.targets;
      const int column = info_.target_input[target];
      const int at = target * info_.horizon + step;
      const float* weight = info_.linear_weight + at * info_.window;
      double acc = static_cast<double>(info_.linear_bias[at]);
      for (int r = 0; r < info_.window; r++) {
        acc += static_cast<double>(weight[r]) * static_cast<double>(buf_.scaled[r * info_.features + column]);
      }
      buf_.result[i] += static_cast<float>(acc);
    }
  } else if (info_.target_input != nullptr) {
    // The reference, summed in the order the studio's check sums it (core.export.reference_values).
    const bool drift = info_.drift_add_row >= 0 && info_.drift_sub_row >= 0;
    for (int i = 0; i < info_.horizon * info_.targets; i++) {
      const int row = info_.reference_row != nullptr ? info_.reference_row[i / info_.targets] : info_.window - 1;
      const int column = info_.target_input[i % info_.targets];
      float reference = buf_.scaled[row * info_.features + column];
      if (drift) {
        reference += buf_.scaled[info_.drift_add_row * info_.features + column] -
                     buf_.scaled[info_.drift_sub_row * info_.features + column];
      }
      buf_.result[i] += reference;
    }
  }
  // The answer goes out through the line buffer: the input line is no longer needed,
  // and model_config.h sizes it for the longest result too.
  char* out = buf_.line;
  const size_t capacity = buf_.line_capacity;
  size_t pos = 0;
  char number[40];
  snprintf(number, sizeof(number), "FS RESULT k=%d us=%lu y=", k, static_cast<unsigned long>(elapsed_us));
  Append(out, capacity, &pos, number);
  const int outputs = info_.horizon * info_.targets;
  for (int i = 0; i < outputs; i++) {
    const int target = i % info_.targets;
    float y = Unscale(buf_.result[i], info_.target_center[target], info_.target_scale[target]);
    if (info_.target_log != nullptr && info_.target_log[target]) y = ExpValue(y);
    buf_.result[i] = y;  // kept in the data's units for the band bounds below
    snprintf(number, sizeof(number), i ? ",%.7g" : "%.7g", static_cast<double>(y));
    Append(out, capacity, &pos, number);
  }
  // Bands after y=, as " lo80=v,... hi80=v,...": a host that does not know them skips the fields.
  for (int level = 0; level < info_.band_levels; level++) {
    const float* half = HalfWidths() + level * outputs;
    for (int side = 0; side < 2; side++) {
      snprintf(number, sizeof(number), side ? " hi%s=" : " lo%s=", info_.band_names[level]);
      Append(out, capacity, &pos, number);
      for (int i = 0; i < outputs; i++) {
        const float bound = side ? buf_.result[i] + half[i] : buf_.result[i] - half[i];
        snprintf(number, sizeof(number), i ? ",%.7g" : "%.7g", static_cast<double>(bound));
        Append(out, capacity, &pos, number);
      }
    }
  }
  Write(out);
  return true;
}

// ------------------------------------------------------------------ the watch (issue 33, core/alarms.py)

void Protocol::SetWatch(const WatchInfo* watch, float* floats, int* ints) {
  watch_ = watch;
  const int cells = info_.band_levels * info_.horizon * info_.targets;
  adapt_q_ = floats;
  adapt_m_ = adapt_q_ + cells;
  adapt_s_ = adapt_m_ + cells;
  past_ = adapt_s_ + info_.horizon * info_.targets;
  alarm_lo_ = past_ + info_.horizon * info_.horizon * info_.targets;
  alarm_hi_ = alarm_lo_ + info_.targets;
  last_value_ = alarm_hi_ + info_.targets;
  cusum_ = last_value_ + info_.targets;
  run_ = ints;
  for (int i = 0; i < 3 * info_.targets; i++) cusum_[i] = 0.0f;  // up, down, the error's slow mean
  for (int t = 0; t < info_.targets; t++) cusum_[3 * info_.targets + t] = 20.0f;  // its count (core/alarms.py DRIFT_START)
  for (int i = 0; i < cells; i++) adapt_q_[i] = info_.band_half_width[i];
  for (int i = 0; i < cells && watch != nullptr && watch->mult0 != nullptr; i++) adapt_m_[i] = watch->mult0[i];
  for (int i = 0; i < info_.horizon * info_.targets && watch != nullptr && watch->scale0 != nullptr; i++) {
    adapt_s_[i] = watch->scale0[i];
  }
  for (int t = 0; t < info_.targets; t++) run_[t] = 0;
}

const float* Protocol::HalfWidths() const {
  return watch_ != nullptr && watch_->up != nullptr ? adapt_q_ : info_.band_half_width;
}

void Protocol::WatchReading(const float* reading) {
  if (watch_ == nullptr) return;
  const long k = readings_++;
  last_reading_ms_ = now_ms_;
  gap_alerted_ = false;
  alarm_ = false;
  if (watch_->column == nullptr) return;
  char line[160];
  const int targets = info_.targets;
  for (int t = 0; t < targets; t++) {
    const float x = reading[watch_->column[t]];
    run_[t] = (k > 0 && x == last_value_[t]) ? run_[t] + 1 : 1;
    last_value_[t] = x;
    int limit = watch_->stuck_limit != nullptr ? watch_->stuck_limit[t] : 0;
    // A value inside the training range is held to the longest run inside it (a bound is held for long: saturation).
    if (watch_->stuck_inside != nullptr && x > watch_->stuck_lo[t] && x < watch_->stuck_hi[t]) {
      limit = watch_->stuck_inside[t];
    }
    if (limit > 0 && run_[t] == limit + 1) {
      snprintf(line, sizeof(line), "FS ALERT k=%ld kind=stuck y=%.7g run=%d limit=%d target=%d", k,
               static_cast<double>(x), run_[t], limit, t);
      Write(line);
      alarm_ = true;
    }
  }
  if (watch_->up == nullptr || past_count_ == 0) return;
  const int level = watch_->alarm_level;
  for (int t = 0; t < targets && level >= 0; t++) {
    const float x = reading[watch_->column[t]];
    if (x < alarm_lo_[t] || x > alarm_hi_[t]) {
      snprintf(line, sizeof(line), "FS ALERT k=%ld y=%.7g lo=%.7g hi=%.7g level=%s target=%d kind=band", k,
               static_cast<double>(x), static_cast<double>(alarm_lo_[t]), static_cast<double>(alarm_hi_[t]),
               info_.band_names[level], t);
      Write(line);
      alarm_ = true;
    }
  }
  // Slow drift: a two-sided CUSUM of the one-step error over the target's validation scale, less the error's slow
  // mean (a bias the forecaster keeps is learned; a change in it is caught).
  float* const bias = cusum_ + 2 * targets;
  float* const count = cusum_ + 3 * targets;
  for (int t = 0; t < targets && watch_->drift_scale != nullptr; t++) {
    const float x = reading[watch_->column[t]];
    float z = (x - past_[t]) / watch_->drift_scale[t];
    z = z - bias[t];
    if (z > 2.0f) z = 2.0f;  // at most 2 scales per reading: one wild reading is the band alarm's, not a drift
    if (z < -2.0f) z = -2.0f;  // (core/alarms.py DRIFT_CLIP)
    float up = cusum_[t] + z - watch_->drift_k;
    float down = cusum_[targets + t] - z - watch_->drift_k;
    if (up < 0.0f) up = 0.0f;
    if (down < 0.0f) down = 0.0f;
    cusum_[t] = up;
    cusum_[targets + t] = down;
    bias[t] = bias[t] + z / count[t];  // the mean of z so far (count from 20), then over the last ~200 readings
    float c = count[t] + 1.0f;
    if (c > 200.0f) c = 200.0f;  // (core/alarms.py DRIFT_MEMORY)
    count[t] = c;
    if (up > watch_->drift_h || down > watch_->drift_h) {
      snprintf(line, sizeof(line), "FS ALERT k=%ld kind=drift y=%.7g cusum=%.7g h=%.7g dir=%s target=%d", k,
               static_cast<double>(x), static_cast<double>(up > down ? up : down),
               static_cast<double>(watch_->drift_h), up > watch_->drift_h ? "up" : "down", t);
      Write(line);
      alarm_ = true;
      cusum_[t] = 0.0f;
      cusum_[targets + t] = 0.0f;
    }
  }
  // The reading is the truth for step h of the forecast made h + 1 readings ago.
  const int cells = info_.horizon * targets;
  for (int h = 0; h < past_count_ && h < info_.horizon; h++) {
    for (int t = 0; t < targets; t++) {
      const float e = fabsf(reading[watch_->column[t]] - past_[h * cells + h * targets + t]);
      // Each level's multiplier: up after a miss, down after a hit, within m0 / 2 .. 2 m0 (core/adaptive.py).
      bool pinned = true;  // every level's multiplier at its upper bound after this error
      for (int l = 0; l < info_.band_levels; l++) {
        const int i = l * cells + h * targets + t;
        float m = adapt_m_[i];
        const float hi = watch_->mult0[i] * 2.0f;
        if (e > adapt_q_[i]) {
          m = m * watch_->up[i];
          if (m > hi) m = hi;
        } else {
          m = m * watch_->down[i];
          const float lo = watch_->mult0[i] * 0.5f;
          if (m < lo) m = lo;
        }
        if (m < hi) pinned = false;
        adapt_m_[i] = m;
      }
      // The step's error scale: an average of |error|, each counted at most clip scales, never under the floor;
      // while every multiplier is pinned (the band far too narrow) the error counts whole at twice the rate
      // (core/adaptive.py CATCH_UP).
      const int c = h * targets + t;
      float s = adapt_s_[c];
      const float cap = s * watch_->clip;
      const float counted = (pinned || !(e > cap)) ? e : cap;
      const float rate = pinned ? watch_->beta * 2.0f : watch_->beta;
      s = s + (counted - s) * rate;
      if (s < watch_->floor[t]) s = watch_->floor[t];
      adapt_s_[c] = s;
      for (int l = 0; l < info_.band_levels; l++) adapt_q_[l * cells + c] = adapt_m_[l * cells + c] * s;
    }
  }
}

void Protocol::WatchForecast(const float* y) {
  if (watch_ == nullptr || watch_->up == nullptr || watch_->column == nullptr) return;
  const int cells = info_.horizon * info_.targets;
  for (int i = (info_.horizon - 1) * cells - 1; i >= 0; i--) past_[i + cells] = past_[i];
  for (int i = 0; i < cells; i++) past_[i] = y[i];
  if (past_count_ < info_.horizon) past_count_++;
  const int level = watch_->alarm_level;
  if (level < 0) return;
  // The alarm's half-width: the adaptive one, never under the exported (split-conformal) one at the alarm level, so
  // a quiet stretch that narrows the displayed band does not narrow the alarm with it (core/alarms.py).
  for (int t = 0; t < info_.targets; t++) {
    float q = adapt_q_[level * cells + t];
    if (q < info_.band_half_width[level * cells + t]) q = info_.band_half_width[level * cells + t];
    const float w = q * watch_->margin;
    alarm_lo_[t] = y[t] - w;
    alarm_hi_[t] = y[t] + w;
  }
}

// W <ms>: the host's pace, ms between readings (a live stream's); the gap limit becomes FS_GAP_READINGS of them,
// counted from now. W 0 puts back the bundle's own limit (watch->timeout_ms). Answers FS PACE ms=<ms> limit=<limit>.
void Protocol::Pace(const char* args) {
  while (IsSpace(*args)) args++;
  size_t n = strlen(args);
  bool ok = n > 0 && n <= 9;
  for (size_t i = 0; ok && i < n; i++) ok = IsDigit(args[i]);
  if (!ok) {
    Error("PARSE", "pace must be a whole number of milliseconds, 0 to 999999999");
    return;
  }
  const uint32_t ms = static_cast<uint32_t>(strtoul(args, nullptr, 10));
  paced_ = ms > 0;
  pace_limit_ms_ = ms * kGapReadings;
  last_reading_ms_ = now_ms_;
  gap_alerted_ = false;
  char line[64];
  snprintf(line, sizeof(line), "FS PACE ms=%lu limit=%lu", static_cast<unsigned long>(ms),
           static_cast<unsigned long>(GapLimit()));
  Write(line);
}

uint32_t Protocol::GapLimit() const {
  if (paced_) return pace_limit_ms_;
  return watch_ != nullptr ? watch_->timeout_ms : 0;
}

void Protocol::Tick(uint32_t now_ms) {
  now_ms_ = now_ms;
  const uint32_t limit = GapLimit();
  if (watch_ == nullptr || limit == 0 || readings_ == 0 || gap_alerted_) return;
  const uint32_t elapsed = now_ms_ - last_reading_ms_;
  if (elapsed <= limit) return;
  gap_alerted_ = true;
  alarm_ = true;
  char line[96];
  snprintf(line, sizeof(line), "FS ALERT k=%ld kind=gap ms=%lu limit=%lu", readings_,
           static_cast<unsigned long>(elapsed), static_cast<unsigned long>(limit));
  Write(line);
}

void Protocol::Error(const char* code, const char* message) {
  char line[128];
  snprintf(line, sizeof(line), "FS ERR %s %s", code, message);
  Write(line);
}

}  // namespace fs
