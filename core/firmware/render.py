"""The bundle rendered: the sketch and PlatformIO project laid out like TFLM's hello_world, the model as a
16-byte aligned array, the op resolver, the windows, and bundle.json; zipped atomically."""
from __future__ import annotations

import io
import json
import re
import string
import zipfile
from pathlib import Path

import numpy as np

from core import escape
from core.errors import StudioError
from core.firmware import tflm_api
from core.files import atomic_write_bytes

from core.firmware.spec import BundleSpec, DEFAULT_WINDOWS, SKETCH, TEMPLATES, load_bundle_spec, op_registrations

# ---------------------------------------------------------------- rendering

def _f(v: float) -> str:
    """A float32 as C text that reads back bit-identical (9 significant digits)."""
    text = "%.9g" % float(np.float32(v))
    if not re.search(r"[.eEn]", text):
        text += ".0"
    return text + "f"


def _float_list(values, per_line: int = 8, indent: str = "    ") -> str:
    items = [_f(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    rows = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(indent + r for r in rows)


def _hex_bytes(data: bytes, per_line: int = 12) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return ",\n".join("    " + r for r in rows)


def _template(path: Path, **values) -> str:
    return string.Template(path.read_text(encoding="utf-8")).substitute(**values)


def _columns_comment(columns, center, scale) -> str:
    return "\n".join(f"//   {escape.c_comment(name)}: center {_f(c)[:-1]}, scale {_f(s)[:-1]}"
                     for name, c, s in zip(columns, center, scale))


def render_files(spec: BundleSpec) -> dict[str, str]:
    """The sketch folder's files (name -> text), ready to zip."""
    sketch = TEMPLATES / SKETCH
    iq, oq = spec.input_quant, spec.output_quant
    regs = op_registrations(spec.ops)
    where = "PSRAM" if spec.arena_in_psram else "internal RAM"
    files = {name: (sketch / name).read_text(encoding="utf-8")
             for name in ("forecast_studio.ino", "fs_protocol.h", "fs_protocol.cpp", "fs_model.h", "fs_model.cpp", "model_data.h",
                          "fs_steploop.h", "fs_steploop.cpp")}
    lay = spec.step_layout or {}
    files["model_config.h"] = _template(
        sketch / "model_config.h.in", report_name="report.json", model_name=escape.c_string(spec.model_name),
        window=spec.window, features=spec.features, horizon=spec.horizon, targets=spec.targets,
        dtype=spec.dtype, dtype_int8=int(spec.dtype == "int8"),
        input_scale=_f(iq.scale) if iq else "0.0f", input_zero_point=iq.zero_point if iq else 0,
        output_scale=_f(oq.scale) if oq else "0.0f", output_zero_point=oq.zero_point if oq else 0,
        arena_reason=escape.c_comment(f"{spec.arena_words} In {where}."),
        arena_bytes=spec.arena_bytes, arena_in_psram=int(spec.arena_in_psram), residual=int(spec.residual),
        residual_outside=int(spec.residual_outside),
        target_input=", ".join(map(str, spec.target_input)) if spec.residual_outside else "0",
        reference_rows=", ".join(map(str, spec.reference_row_list)),
        reference_comment=("the last row at every step" if not spec.reference_rows else
                           "one season before each step"),
        drift_add_row=spec.drift_rows[0] if spec.drift_rows else -1,
        drift_sub_row=spec.drift_rows[1] if spec.drift_rows else -1,
        form="step loop" if spec.form == "step" else "one invoke per window", step_loop=int(spec.form == "step"),
        state_size=max(1, spec.state_size), step_x_input=int(lay.get("x_input", 0)),
        step_state_input=int(lay.get("state_input", 1)), step_state_output=int(lay.get("state_output", 0)),
        step_y_output=int(lay.get("y_output", 1)),
        line_max=spec.line_max, scaler_kind=escape.c_comment(spec.scaler_kind),
        input_comment=_columns_comment(spec.input_columns, spec.input_center, spec.input_scale),
        input_center=", ".join(map(_f, spec.input_center)), input_scale_values=", ".join(map(_f, spec.input_scale)),
        target_comment=_columns_comment(spec.target_columns, spec.target_center, spec.target_scale),
        target_center=", ".join(map(_f, spec.target_center)), target_scale_values=", ".join(map(_f, spec.target_scale)),
        linear_block=_linear_block(spec), band_block=_band_block(spec), watch_block=_watch_block(spec), log_block=_log_block(spec))
    files["model_data.cpp"] = _template(sketch / "model_data.cpp.in", model_file=escape.c_comment(spec.model_file),
                                        model_len=len(spec.model_bytes), model_bytes=_hex_bytes(spec.model_bytes))
    files["test_windows.h"] = _template(
        sketch / "test_windows.h.in", count=len(spec.windows), test_indices=", ".join(map(str, spec.test_indices)),
        windows_len=spec.windows.size, windows=_float_list(spec.windows, per_line=max(1, min(spec.features, 8))),
        host_len=spec.host_predictions.size, host=_float_list(spec.host_predictions))
    files["op_resolver.h"] = _template(
        sketch / "op_resolver.h.in", op_list=escape.c_comment(", ".join(spec.ops)), op_count=len(regs),
        registrations="\n".join(f"  if (resolver.{call}() != kTfLiteOk) return false;" for call in regs))
    return files


def _log_block(spec: BundleSpec) -> str:
    """model_config.h's multiplicative (log) flags: which input columns fs_protocol.cpp reads as log(value) and
    which targets it gives back as exp(); none (nullptr) for an additive model."""
    if not (any(spec.input_log) or any(spec.target_log)):
        return ("// Additive model: no column is read as its log.\n"
                "#define FS_INPUT_LOG nullptr\n#define FS_TARGET_LOG nullptr")
    flags = lambda values: ", ".join(str(int(bool(v))) for v in values)
    return "\n".join([
        "// Multiplicative (log) form: 1 = the column enters the scaler as log(value) (every reading must be above 0),",
        "// and the target's forecast is exp() of the unscaled output, after the reference is added back.",
        f"static const unsigned char kInputLog[FS_FEATURES] = {{{flags(spec.input_log)}}};",
        f"static const unsigned char kTargetLog[FS_TARGETS] = {{{flags(spec.target_log)}}};",
        "#define FS_INPUT_LOG kInputLog", "#define FS_TARGET_LOG kTargetLog"])


def _linear_block(spec: BundleSpec) -> str:
    """model_config.h's linear reference ("change_linear"): the fitted weights and biases as exact float literals,
    which fs_protocol.cpp sums in double after the model; nullptr and FS_LINEAR_REFERENCE 0 for every other form."""
    if not (spec.residual_outside and spec.linear_weights):
        return ("// No linear reference (the target form is not the change from a linear forecast).\n"
                "#define FS_LINEAR_REFERENCE 0\n#define FS_LINEAR_WEIGHT nullptr\n#define FS_LINEAR_BIAS nullptr")
    flash = 4 * (len(spec.linear_weights) + len(spec.linear_bias))
    return "\n".join([
        "// The change from a linear forecast: the network outputs the change, and fs_protocol.cpp adds for step k of",
        "// target j bias[j][k] + sum over rows r (oldest first) of weight[j][k][r] * the target's scaled value at row r,",
        "// summed in double in row order, rounded once to float (core/linear_reference.py). Scaled units;",
        f"// target-major, then step, then row. {flash:,} bytes of flash.",
        "#define FS_LINEAR_REFERENCE 1",
        "static const float kLinearWeight[FS_TARGETS * FS_HORIZON * FS_WINDOW] = {",
        _float_list(spec.linear_weights, per_line=max(1, min(spec.window, 6))), "};",
        "static const float kLinearBias[FS_TARGETS * FS_HORIZON] = {", _float_list(spec.linear_bias), "};",
        "#define FS_LINEAR_WEIGHT kLinearWeight", "#define FS_LINEAR_BIAS kLinearBias"])


def _band_block(spec: BundleSpec) -> str:
    """model_config.h's band constants: level names and half-widths (level-major, then step, then target,
    like the forecast). Level names are numbers the studio formatted, never a user's text."""
    if not spec.band_levels:
        return ("// No calibrated bands: the run was trained before Forecast Studio made them. Train it\n"
                "// again and re-export for FS RESULT lines with lo<level>=/hi<level>= bounds.\n"
                "#define FS_BAND_LEVELS 0\n"
                "static const char* const* const kBandNames = nullptr;\n"
                "static const float* const kBandHalfWidth = nullptr;")
    lines = [f"// Calibrated bands (split conformal on the validation part): {', '.join(l + '%' for l in spec.band_levels)}.",
             "// Half-widths in the targets' units; the board prints forecast -/+ these as lo<level>=/hi<level>=.",
             f"#define FS_BAND_LEVELS {len(spec.band_levels)}",
             "static const char* const kBandNames[FS_BAND_LEVELS] = {" + ", ".join(f'"{l}"' for l in spec.band_levels) + "};",
             "static const float kBandHalfWidth[FS_BAND_LEVELS * FS_HORIZON * FS_TARGETS] = {",
             _float_list(spec.band_half_width), "};"]
    return "\n".join(lines)


def _int_array(name: str, size: str, values) -> str:
    return f"static const int {name}[{size}] = {{{', '.join(str(int(v)) for v in values)}}};"


def _step_lines(w) -> list[str]:
    """FS_DATA_STEP_MS (the sketch's FS_SENSOR_PERIOD_MS) and FS_READING_TIMEOUT_MS from the run's time step."""
    from core.alarms import GAP_READINGS

    step = int(w.step_ms) if w is not None and w.step_ms > 0 else 0
    timeout = int(w.timeout_ms) if w is not None else 0
    words = (f"{GAP_READINGS} time steps of the data" if step and timeout == GAP_READINGS * step else
             "the data's closed hours and weekends included" if step and timeout else
             "off: longer than the board's millis() can time" if step else "the run's time step is unknown")
    return ["// One time step of the data the model was trained on (the sketch reads its sensor this often).",
            f"#define FS_DATA_STEP_MS {step or 3600000}UL" + ("" if step else "  // unknown: one hour"),
            f"#define FS_READING_TIMEOUT_MS {timeout}UL  // gap alarm after this long without a reading ({words}); 0: off",
            f"// A host streaming at another pace says so with W <ms>: the limit is then {GAP_READINGS} of its readings' time."]


def _watch_block(spec: BundleSpec) -> str:
    """model_config.h's watch constants (issue 33, core.alarms): adaptive band factors, alarm level and margin,
    the training's longest runs, the reading timeout, and the alarm pin."""
    w = spec.watch
    adaptive = w is not None and w.adaptive
    has_columns = w is not None and len(w.columns) == spec.targets
    stuck = has_columns and len(w.stuck_limit) == spec.targets
    lines = ["// The watch over streamed readings (R, ReadSensor): see the bundle README's \"Alarms\".",
             "// The alarm pin goes on while the newest reading is in alarm or readings stopped coming. The XIAO",
             "// ESP32S3's user LED (LED_BUILTIN) is active-low: FS_ALARM_ACTIVE_LOW 1 lights it by pulling it low.",
             "#ifndef FS_ALARM_PIN", "#define FS_ALARM_PIN LED_BUILTIN", "#endif",
             "#ifndef FS_ALARM_ACTIVE_LOW", "#define FS_ALARM_ACTIVE_LOW 1", "#endif",
             *_step_lines(w)]
    if has_columns:
        lines.append("// Each target's column in a reading (its truth).")
        lines.append(_int_array("kWatchColumn", "FS_TARGETS", w.columns))
    else:
        lines.append("static const int* const kWatchColumn = nullptr;  // the targets are not inputs: no truth to watch")
    if stuck:
        lines.append("// Stuck sensor: the most consecutive equal values each target held in the training part.")
        lines.append(_int_array("kStuckLimit", "FS_TARGETS", w.stuck_limit))
    else:
        lines.append("static const int* const kStuckLimit = nullptr;  // no training runs recorded: not watched")
    if stuck and len(w.stuck_inside) == len(w.stuck_edges) == spec.targets:
        lines.append("// A value strictly between kStuckLo and kStuckHi (the training range, moved in by a 100,000th of it)")
        lines.append("// is held to kStuckInside, the longest run inside it: a bound (saturation, 0 at night) is held for long.")
        lines.append(_int_array("kStuckInside", "FS_TARGETS", w.stuck_inside))
        lines.append("static const float kStuckLo[FS_TARGETS] = {" + ", ".join(_f(lo) for lo, _ in w.stuck_edges) + "};")
        lines.append("static const float kStuckHi[FS_TARGETS] = {" + ", ".join(_f(hi) for _, hi in w.stuck_edges) + "};")
    else:
        lines += ["static const int* const kStuckInside = nullptr;  // one limit for every value",
                  "static const float* const kStuckLo = nullptr;", "static const float* const kStuckHi = nullptr;"]
    if adaptive:
        lines += [f"// Adaptive bands (core/adaptive.py): half-width = multiplier x error scale. After each reading a miss",
                  "// multiplies the multiplier by kAdaptUp, a hit by kAdaptDown, kept within kAdaptMult / 2 .. 2 kAdaptMult;",
                  "// the step's scale averages |error| at rate FS_ADAPT_BETA, each error counted at most FS_ADAPT_CLIP",
                  "// scales (while every level's multiplier is at its upper bound: whole, at twice the rate), never under",
                  "// kAdaptFloor. kAdaptScale, kAdaptMult: where they start.",
                  "static const float kAdaptUp[FS_BAND_LEVELS * FS_HORIZON * FS_TARGETS] = {", _float_list(w.up), "};",
                  "static const float kAdaptDown[FS_BAND_LEVELS * FS_HORIZON * FS_TARGETS] = {", _float_list(w.down), "};",
                  "static const float kAdaptFloor[FS_TARGETS] = {" + ", ".join(_f(v) for v in w.floor) + "};",
                  "static const float kAdaptScale[FS_HORIZON * FS_TARGETS] = {", _float_list(w.scale0), "};",
                  "static const float kAdaptMult[FS_BAND_LEVELS * FS_HORIZON * FS_TARGETS] = {", _float_list(w.mult0), "};",
                  f"#define FS_ADAPT_BETA {_f(w.beta)}", f"#define FS_ADAPT_CLIP {_f(w.clip)}",
                  f"// The band alarm: a reading outside forecast -/+ FS_ALARM_MARGIN x the {w.levels[w.alarm_level]}% half-width, the",
                  "// adaptive one but never under the exported one (kBandHalfWidth).",
                  f"#define FS_ALARM_LEVEL {w.alarm_level}",
                  f"#define FS_ALARM_MARGIN {_f(w.margin)}"]
    if adaptive and len(w.drift_scale) == spec.targets:
        if len(w.drift_factor) == spec.targets:
            calibrated = ["// kDriftScale is that scale times " + ", ".join(f"{v:.3g}" for v in w.drift_factor)
                          + f" (per target): the smallest widening at which the validation stream raised at most",
                          f"// {w.drift_rate:g} drift alarms per 1,000 readings (core.alarms.drift_calibrate)."]
        else:
            calibrated = ["// kDriftScale is not calibrated on the validation stream (a run from before that; train again)."]
        lines += ["// Slow drift: a two-sided CUSUM of (reading - forecast) / kDriftScale (the one-step validation error's",
                  "// scale) less its slow mean (fs_protocol.cpp: the mean so far, then over ~200 readings), allowance",
                  "// FS_DRIFT_K, alarm past FS_DRIFT_H: see core/alarms.py.", *calibrated,
                  "static const float kDriftScale[FS_TARGETS] = {" + ", ".join(_f(v) for v in w.drift_scale) + "};",
                  f"#define FS_DRIFT_K {_f(w.drift_k)}", f"#define FS_DRIFT_H {_f(w.drift_h)}"]
    else:
        lines += ["static const float* const kDriftScale = nullptr;  // no bands: no drift alarm",
                  "#define FS_DRIFT_K 0.0f", "#define FS_DRIFT_H 0.0f"]
    if not adaptive:
        lines += ["static const float* const kAdaptUp = nullptr;  // no bands: no adaptive bands, no band alarm",
                  "static const float* const kAdaptDown = nullptr;", "static const float* const kAdaptFloor = nullptr;",
                  "static const float* const kAdaptScale = nullptr;", "static const float* const kAdaptMult = nullptr;",
                  "#define FS_ADAPT_BETA 0.0f", "#define FS_ADAPT_CLIP 0.0f",
                  "#define FS_ALARM_LEVEL -1", "#define FS_ALARM_MARGIN 1.0f"]
    lines += ["// Floats the watch keeps (adaptive half-widths and multipliers, error scales, the last horizon forecasts,",
              "// alarm band, last values, drift sums, the drift rule's slow mean of the error and its count).",
              "#define FS_WATCH_FLOATS (2 * FS_BAND_LEVELS * FS_HORIZON * FS_TARGETS + FS_HORIZON * FS_TARGETS"
              " + FS_HORIZON * FS_HORIZON * FS_TARGETS + 7 * FS_TARGETS)",
              "static const fs::WatchInfo kWatchInfo = {kWatchColumn, kAdaptUp, kAdaptDown, kAdaptFloor, FS_ALARM_LEVEL,",
              "                                         FS_ALARM_MARGIN, kStuckLimit, FS_READING_TIMEOUT_MS,",
              "                                         kDriftScale, FS_DRIFT_K, FS_DRIFT_H,",
              "                                         kAdaptScale, kAdaptMult, FS_ADAPT_BETA, FS_ADAPT_CLIP,",
              "                                         kStuckInside, kStuckLo, kStuckHi};"]
    return "\n".join(lines)


def _project_files(spec: BundleSpec, files: dict[str, str]) -> dict[str, str]:
    """Zip paths -> text: the Arduino sketch folder, the PlatformIO project, the README."""
    out = {f"{SKETCH}/{name}": text for name, text in files.items()}
    for name, text in files.items():
        if name.endswith(".ino"):
            # PlatformIO compiles .cpp, where Arduino.h is not implied as in a sketch.
            out["platformio/src/main.cpp"] = "#include <Arduino.h>\n\n" + text
        elif name.endswith(".cpp"):
            out[f"platformio/src/{name}"] = text
        else:
            out[f"platformio/include/{name}"] = text
    psram = "    -DBOARD_HAS_PSRAM\nboard_build.arduino.memory_type = qio_opi" if spec.arena_in_psram else ""
    target = dict(core_version=tflm_api.CORE_VERSION, library=tflm_api.LIBRARY, library_version=tflm_api.LIBRARY_VERSION,
                  platform_version=tflm_api.PLATFORMIO_PLATFORM_VERSION)
    out["platformio/platformio.ini"] = _template(TEMPLATES / "platformio.ini.in", model_name=escape.ini_comment(spec.model_name),
                                                 dtype=spec.dtype, psram_flags=psram, platform_url=tflm_api.PLATFORMIO_PLATFORM,
                                                 **target)
    first = spec.host_predictions[0].reshape(-1)
    out["README.md"] = _template(
        TEMPLATES / "README.md.in", model_name=escape.markdown(spec.model_name),
        model_name_code=escape.markdown_code(spec.model_name), dtype=spec.dtype,
        horizon=spec.horizon, target_names=", ".join(map(escape.markdown, spec.target_columns)), window=spec.window,
        features=spec.features, input_names=", ".join(map(escape.markdown, spec.input_columns)), targets=spec.targets,
        model_len=len(spec.model_bytes), op_list=escape.markdown(", ".join(spec.ops)), arena_bytes=spec.arena_bytes,
        arena_place="PSRAM" if spec.arena_in_psram else "internal RAM",
        arena_note=spec.arena_words + (" It does not fit internal RAM, so PSRAM must be enabled." if spec.arena_in_psram
                                       else " It fits internal RAM; PSRAM is not needed."),
        form_note=("Form: the step loop (one time step of the network, looped over the window by "
                   "fs_steploop.cpp)." if spec.form == "step" else "Form: one invoke per window."),
        **target,
        psram_choice="**OPI PSRAM** (required: the arena lives there)" if spec.arena_in_psram else "any (OPI PSRAM is fine)",
        count=len(spec.windows), example_y=",".join("%.7g" % v for v in first), n_values=spec.n_values,
        host_summary="; ".join(f"k={k}: " + ",".join("%.7g" % v for v in y.reshape(-1))
                               for k, y in enumerate(spec.host_predictions)))
    out["bundle.json"] = json.dumps(bundle_manifest(spec), indent=1)
    return out


def bundle_manifest(spec: BundleSpec) -> dict:
    """What the Device step needs to match the board's answers: windows and host forecasts."""
    return {
        "model": spec.model_name, "dtype": spec.dtype, "window": spec.window, "features": spec.features,
        "horizon": spec.horizon, "targets": spec.targets, "input_columns": list(spec.input_columns),
        "target_columns": list(spec.target_columns), "arena_bytes": spec.arena_bytes,
        "arena_in_psram": spec.arena_in_psram, "ops": list(spec.ops), "max_abs_err": spec.max_abs_err,
        "test_indices": list(spec.test_indices), "windows": spec.windows.tolist(),
        "host_predictions": spec.host_predictions.tolist(),
        "band_levels": list(spec.band_levels),
        "band_half_width": None if spec.band_half_width is None else spec.band_half_width.tolist(),
        # What the sketch was written for: a bundle without it was made for the 2022 TensorFlowLite_ESP32 library.
        "firmware_target": firmware_target(),
    }


def firmware_target() -> dict:
    return {"core": f"{tflm_api.CORE_NAME} {tflm_api.CORE_VERSION}",
            "tflm": f"{tflm_api.LIBRARY} {tflm_api.LIBRARY_VERSION}"}


def stale_bundle(export_dir, dtype: str) -> str | None:
    """One sentence when the folder's ``dtype`` bundle zip was made for another TFLM than this studio's sketch
    targets (an export from before the esp32 core 3.x sketch); None when it is current or there is none."""
    from core.export.folder import ExportFolder

    try:
        made = ExportFolder.open(export_dir).bundles().get(dtype)
    except StudioError:
        return None
    if made is None or made.get("firmware_target") == firmware_target():
        return None
    was = (made.get("firmware_target") or {}).get("tflm") or "the 2022 TensorFlowLite_ESP32 library"
    return (f"This export's {dtype} bundle was made for {was}, which does not build with the esp32 core "
            f"{tflm_api.CORE_VERSION}; it has been made again for the TFLM that core carries "
            f"({tflm_api.LIBRARY} {tflm_api.LIBRARY_VERSION}): download it again and flash that one.")


def bundle_name(spec: BundleSpec) -> str:
    return f"forecast_studio_{spec.model_name}_{spec.dtype}"


def render_bundle(export_dir, dtype: str = "int8", run_dir=None, out=None, n_windows: int = DEFAULT_WINDOWS) -> Path:
    """Write the bundle zip (default EXPORT_DIR/<bundle name>.zip) atomically; return its path."""
    spec = load_bundle_spec(export_dir, dtype, run_dir=run_dir, n_windows=n_windows)
    files = _project_files(spec, render_files(spec))
    root = bundle_name(spec)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            zf.writestr(f"{root}/{name}", files[name])
    path = Path(out) if out is not None else Path(export_dir) / f"{root}.zip"
    return atomic_write_bytes(path, buf.getvalue())


PREVIEW_FILES = ("forecast_studio.ino", "model_config.h", "op_resolver.h", "test_windows.h", "fs_protocol.cpp")


def sketch_preview(export_dir, dtype: str = "int8", run_dir=None, max_lines: int = 90) -> dict[str, str]:
    """The sketch's main files for the Export page (long ones cut to max_lines)."""
    files = render_files(load_bundle_spec(export_dir, dtype, run_dir=run_dir))
    out = {}
    for name in PREVIEW_FILES:
        lines = files[name].splitlines()
        if len(lines) > max_lines:
            lines = lines[:max_lines] + [f"// ... {len(lines) - max_lines} more lines in the bundle"]
        out[name] = "\n".join(lines)
    return out
