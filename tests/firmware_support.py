"""Export directories for the firmware and emulator tests, and the golden-transcript reader.

Exports are built by running this file as a script in a subprocess: TensorFlow's converter
(and tf_keras, which needs TF_USE_LEGACY_KERAS=1 before TensorFlow is imported) stays out of
the pytest process, the way core/export.py keeps conversion out of the studio.

    python tests/firmware_support.py slice OUT_DIR   # float32 model y = x[last step, :2]
    python tests/firmware_support.py slice1 OUT_DIR  # the same, one target (Edge Impulse replay)
    python tests/firmware_support.py lstm OUT_DIR    # tf_keras LSTM(8), float32 + int8
    python tests/firmware_support.py stepsum OUT_DIR # a step-loop export: state' = state + x, y = state'
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
# Built by this script and committed: tiny real .tflite exports, so the protocol tests need
# no TensorFlow (regenerate with the commands above).
SLICE_EXPORT = TRANSCRIPTS / "slice_export"
SLICE1_EXPORT = TRANSCRIPTS / "slice1_export"
# The step-loop form (core.steploop) with a one-step model whose state sums the scaled inputs: looped
# over the window, the forecast is the window's sum, which the step transcripts state exactly.
STEPSUM_EXPORT = TRANSCRIPTS / "stepsum_export"
STEP_TRANSCRIPTS = TRANSCRIPTS / "step"
# The slice export plus an intervals.json of exact half-widths (bands/ transcripts).
SLICE_BAND_EXPORT = TRANSCRIPTS / "slice_band_export"
# The same with the training's longest runs (intervals.json "longest_run": [2, 2]) for the watch (alarms/).
SLICE_ALARM_EXPORT = TRANSCRIPTS / "slice_alarm_export"
ALARM_TRANSCRIPTS = TRANSCRIPTS / "alarms"

# The slice export: window 3 x features 2, one step of both columns. Its model copies the
# last input step, so every answer is known exactly and the golden transcripts can state it.
SLICE_CENTER = np.array([10.0, -5.0], dtype=np.float32)
SLICE_SCALE = np.array([2.0, 4.0], dtype=np.float32)
SLICE_WINDOWS = np.array([
    [[10, -5], [12, -1], [14, 3]],
    [[11, -3], [13, 1], [15.5, 7]],
    [[9, -9], [8, -13], [7.25, -17]],
], dtype=np.float32)


def build_export(kind: str, out_dir: Path, timeout: float = 240) -> Path:
    """Build an export directory in a subprocess; returns out_dir."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, __file__, kind, str(out_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"building the {kind} export failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out_dir


def _arena_bytes(model: bytes) -> int:
    """Smallest arena the TFLM runtime accepts, by bisection (what core/export.py reports).
    Each probe runs in a forked child: an arena far too small crashes the runtime
    instead of raising."""
    from tflite_micro.python.tflite_micro import runtime

    def fits(n: int) -> bool:
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller's code
            code = 1
            try:
                i = runtime.Interpreter.from_bytes(model, arena_size=n)
                d = i.get_input_details(0)
                i.set_input(np.zeros(d["shape"], d["dtype"]), 0)
                i.invoke()
                code = 0
            finally:
                os._exit(code)
        return os.waitpid(pid, 0)[1] == 0

    lo, hi = 256, 1 << 14
    while not fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def _tflm_predict(model: bytes, arena: int, x_scaled: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
    det_in, det_out = interp.get_input_details(0), interp.get_output_details(0)
    out = []
    for x in x_scaled:
        interp.reset()
        if det_in["dtype"] == np.int8:
            s, z = det_in["quantization_parameters"]["scales"][0], det_in["quantization_parameters"]["zero_points"][0]
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        interp.set_input(x[None].astype(det_in["dtype"]), 0)
        interp.invoke()
        y = interp.get_output(0)
        if det_out["dtype"] == np.int8:
            s, z = det_out["quantization_parameters"]["scales"][0], det_out["quantization_parameters"]["zero_points"][0]
            y = (y.astype(np.float32) - z) * s
        out.append(np.asarray(y, dtype=np.float32)[0])
    return np.stack(out)


def _quant_of(model: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
    result = []
    for det in (interp.get_input_details(0), interp.get_output_details(0)):
        q = det["quantization_parameters"]
        result.append({"scale": float(q["scales"][0]), "zero_point": int(q["zero_points"][0])} if len(q["scales"]) else None)
    return result


def _entry(model: bytes, name: str, ops: list[str], y_tflm_units, y_host_units) -> dict:
    arena = _arena_bytes(model)
    iq, oq = _quant_of(model, arena)
    err = np.abs(np.asarray(y_tflm_units) - np.asarray(y_host_units))
    return {"path": name, "bytes": len(model), "ops": ops, "arena_bytes": arena,
            "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
            "input_quant": iq, "output_quant": oq}


def _ops_of(model: bytes) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return sorted({names[max(oc.builtinCode, oc.deprecatedBuiltinCode)] for oc in m.operatorCodes})


def _make_slice(out: Path, targets: int = 2) -> None:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 3, 2], tf.float32)])
    def last_step(x):
        return x[:, 2:3, 0:targets]

    model = tf.lite.TFLiteConverter.from_concrete_functions([last_step.get_concrete_function()], last_step).convert()
    x_scaled = (SLICE_WINDOWS - SLICE_CENTER) / SLICE_SCALE
    y_scaled = x_scaled[:, 2:3, :targets]
    names = ["temp", "hum"][:targets]
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_float32.tflite").write_bytes(model)
    np.savez(out / "samples.npz", X_test=x_scaled, y_test=y_scaled, y_host=y_scaled)
    entry = _entry(model, "model_float32.tflite", _ops_of(model), y_scaled, y_scaled)
    report = {"model": "slice", "window": 3, "features": ["temp", "hum"], "horizon": 1, "targets": names,
              "scaler": {"kind": "standard", "columns": ["temp", "hum"], "center": SLICE_CENTER.tolist(),
                         "scale": SLICE_SCALE.tolist()},
              "residual": False, "float32": entry}
    (out / "report.json").write_text(json.dumps(report, indent=1))


def _make_lstm(out: Path) -> None:
    """A small fused-LSTM forecaster with seeded weights: 6 steps x 3 inputs -> 2 steps of 1 target."""
    import tensorflow as tf
    import tf_keras as keras

    W, F, H = 6, 3, 2
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(W, F), batch_size=1)
    x = keras.layers.LSTM(8)(inp)
    x = keras.layers.Dense(H)(x)
    net = keras.Model(inp, keras.layers.Reshape((H, 1))(x))
    rng = np.random.default_rng(0)
    center = np.array([15.0, 1000.0, 60.0], dtype=np.float32)
    scale = np.array([5.0, 10.0, 20.0], dtype=np.float32)
    t = np.arange(400, dtype=np.float32)
    series = np.stack([np.sin(t / 10), np.cos(t / 17), np.sin(t / 5 + 1)], axis=1) + rng.normal(0, 0.05, (400, 3))
    series = series.astype(np.float32)
    starts = np.arange(0, 400 - W - H)
    X = np.stack([series[s:s + W] for s in starts]).astype(np.float32)
    Y = np.stack([series[s + W:s + W + H, :1] for s in starts]).astype(np.float32)
    X_rep, X_test, y_test = X[:200], X[300:], Y[300:]
    y_host = net.predict(X_test, batch_size=1, verbose=0).astype(np.float32)

    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    f32 = conv.convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in X_rep[:100])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    i8 = conv.convert()

    out.mkdir(parents=True, exist_ok=True)
    report = {"model": "lstm", "window": W, "features": ["temp", "pressure", "humidity"], "horizon": H,
              "targets": ["temp"], "residual": False,
              "scaler": {"kind": "standard", "columns": ["temp", "pressure", "humidity"],
                         "center": center.tolist(), "scale": scale.tolist()}}
    for name, model in (("float32", f32), ("int8", i8)):
        (out / f"model_{name}.tflite").write_bytes(model)
        arena = _arena_bytes(model)
        y_tflm = _tflm_predict(model, arena, X_test)
        report[name] = _entry(model, f"model_{name}.tflite", _ops_of(model),
                              y_tflm * scale[0] + center[0], y_host * scale[0] + center[0])
    np.savez(out / "samples.npz", X_rep=X_rep, X_test=X_test, y_test=y_test, y_host=y_host)
    (out / "report.json").write_text(json.dumps(report, indent=1))


_REAL_EXPORT: dict[str, Path] = {}


@pytest.fixture(scope="session")
def real_export(tmp_path_factory) -> Path:
    """A trained-run LSTM (fused op) exported by core.export.export_run, float32 and int8.
    Each test module that imports this fixture gets its own copy of it from pytest, so the
    export itself is memoised here: it is built once per session (about a minute)."""
    if "path" not in _REAL_EXPORT:
        from core.export import export_run
        from tests.export_helpers import make_run

        base = tmp_path_factory.mktemp("fw_real")
        run = make_run(base / "run", kind="lstm", window=6, n_features=3, units=8, horizon=2)
        export_run(run, base / "export")
        _REAL_EXPORT["path"] = base / "export"
    return _REAL_EXPORT["path"]


# ---------------------------------------------------------------- golden transcripts

def unescape(text: str) -> bytes:
    """Host lines: `\\xHH` is a raw byte, `{N*text}` repeats text N times."""
    text = re.sub(r"\{(\d+)\*([^}]*)\}", lambda m: m.group(2) * int(m.group(1)), text)
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("ascii"))


def read_transcript(path: Path) -> tuple[list[bytes], list[str]]:
    """`> line` is sent by the host, `< line` expected from the board (`#` = any integer), `@ <ms>` moves the
    board's clock (millis()) to <ms>: kept in ``sent`` as b"@ <ms>\\n" (firmware_host/main.cpp reads it, the
    in-process emulator engine calls ``tick``)."""
    sent, expected = [], []
    for raw in path.read_text(encoding="ascii").splitlines():
        if raw.startswith("@ "):
            sent.append(raw.encode("ascii") + b"\n")
        elif raw.startswith("> "):
            sent.append(unescape(raw[2:]) + b"\n")
        elif raw.startswith("< "):
            expected.append(raw[2:])
        elif raw.strip() and not raw.startswith("#"):
            raise ValueError(f"{path.name}: bad transcript line {raw!r}")
    return sent, expected


def line_matches(expected: str, actual: str) -> bool:
    pattern = "".join(r"\d+" if ch == "#" else re.escape(ch) for ch in expected)
    return re.fullmatch(pattern, actual) is not None


def assert_transcript(expected: list[str], actual: list[str], who: str) -> None:
    for i, exp in enumerate(expected):
        got = actual[i] if i < len(actual) else "<nothing>"
        assert line_matches(exp, got), f"{who}: line {i + 1}: expected {exp!r}, got {got!r}\nall: {actual}"
    assert len(actual) == len(expected), f"{who}: extra lines {actual[len(expected):]}"


def _make_stepsum(out: Path) -> None:
    import types

    import tensorflow as tf

    sys.path.insert(0, str(ROOT))
    from core.steploop import tensor_layout

    @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32, name="x"),
                                  tf.TensorSpec([1, 2], tf.float32, name="state")])
    def step(x, state):
        s2 = state + x
        return s2, tf.reshape(s2, [1, 1, 2])

    model = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], step).convert()
    spec = types.SimpleNamespace(kind="rnn", layers=1, units=2, horizon=1, n_targets=2)
    layout = tensor_layout(model, spec)
    x_scaled = (SLICE_WINDOWS - SLICE_CENTER) / SLICE_SCALE
    y_scaled = x_scaled.sum(axis=1, keepdims=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_float32.tflite").write_bytes(model)
    np.savez(out / "samples.npz", X_test=x_scaled, y_test=y_scaled, y_host=y_scaled)
    entry = _entry(model, "model_float32.tflite", _ops_of(model), y_scaled, y_scaled)
    entry.update({"input_quant": None, "output_quant": None, "step_layout": layout})
    report = {"model": "stepsum", "window": 3, "features": ["temp", "hum"], "horizon": 1, "targets": ["temp", "hum"],
              "scaler": {"kind": "standard", "columns": ["temp", "hum"], "center": SLICE_CENTER.tolist(),
                         "scale": SLICE_SCALE.tolist()},
              "residual": False, "form": "step", "float32": entry}
    (out / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    kind, target = sys.argv[1], Path(sys.argv[2])
    {"slice": _make_slice, "slice1": lambda o: _make_slice(o, targets=1), "lstm": _make_lstm,
     "stepsum": _make_stepsum}[kind](target)


def read_lines(port, n: int, timeout: float = 10.0) -> list[str]:
    """Up to ``n`` lines from an open serial port, within ``timeout`` seconds (a bound on a failure, not a pace)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        raw = port.readline()
        if raw:
            lines.append(raw.decode("ascii").rstrip("\n"))
    return lines
