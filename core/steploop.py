"""The step-loop form: a recurrent network exported as ONE time step, run in a loop by the firmware.

TFLite Micro has a fused LSTM kernel and nothing for GRU or SimpleRNN, which therefore export unrolled
(one copy of the cell per time step: export time, flatbuffer and arena all grow with the window). Here
the cell is exported as a one-step model instead:

    inputs:  x  (1, n_inputs)   this step's scaled inputs
             state (1, S)       every layer's state side by side (LSTM: h then c per layer), float
    outputs: state' (1, S)      the new states
             y  (1, horizon, n_targets)  the output head applied to the top layer's new h

The head runs on every step (a few hundred multiply-adds against the cell's thousands); the loop keeps
the last step's ``y``. The firmware (``fs_steploop.cpp``), the emulator and the export's TFLM check all
run the same loop: state = 0; for each step: state, y = step(x_t, state). The state lives in the
caller's float buffers between steps; in the int8 model the state tensors are int8 at the graph edge and
the loop dequantizes/requantizes them in float (``run_loop``). Measured drift: ``bench/bench_steploop.py``.

The graph is written directly from the canonical weights with TensorFlow ops (the same equations as the
Keras cells: SimpleRNN tanh, GRU ``reset_after=True`` with gates z, r, h, LSTM gates i, f, c, o), so both
backends' runs (PyTorch mapped to the canonical layout by ``core.models``) export the same way.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMS = ("auto", "step", "unrolled", "fused")
STEP_KINDS = ("gru", "rnn", "lstm")


def state_size(spec: Any) -> int:
    """Floats of state the loop carries: units per layer (LSTM: h and c)."""
    return spec.layers * spec.units * (2 if spec.kind == "lstm" else 1)


def resolve_form(spec: Any, form: str = "auto") -> tuple[str, str]:
    """(form, reason) for a model spec. ``auto``: the form that fits the board best (``choose_form``: in practice
    the fused op for LSTM, the step loop for GRU and SimpleRNN, whose flash and arena do not grow with the
    window); "step", "unrolled" or "fused" on request."""
    from core.errors import StudioError

    if form not in FORMS:
        raise StudioError(f"Unknown export form {form!r}.", f"Use one of {', '.join(FORMS)}.")
    kind = spec.kind
    if kind == "dense":
        if form in ("step", "fused"):
            raise StudioError(f"A Dense model has no recurrent cell to export as the {form} form.",
                              "Use --form auto (or unrolled) for a Dense model.")
        return "unrolled", "a Dense model has no recurrence: one graph over the whole window"
    if form == "fused":
        if kind != "lstm":
            raise StudioError(f"TFLite Micro has a fused kernel for LSTM only, not for {spec.label}.",
                              "Use --form step (or auto) for GRU and SimpleRNN.")
        return "fused", "requested: the fused UNIDIRECTIONAL_SEQUENCE_LSTM op"
    if form == "step":
        return "step", "requested: one time step exported, the firmware loops it over the window"
    if form == "unrolled":
        return "unrolled", "requested: one copy of the cell per time step"
    return choose_form(spec)


def choose_form(spec: Any) -> tuple[str, str]:
    """The form that fits the board best, by the budget's figures (``compare_forms``): one whose float32 and
    int8 models fit flash and whose arenas fit SRAM first, then the smallest flash, then the shortest
    estimated latency; the reason quotes the figures, and the export time."""
    from core import budget
    from core.models import KIND_LABELS

    compare = compare_forms(spec)
    flash_free = budget.XIAO_ESP32S3.app_partition_bytes - budget.XIAO_ESP32S3.firmware_bytes
    forms = [f for f in compare if f != "basis"]

    def key(f):
        e = compare[f]
        fits = all(e[d]["flash_bytes"] <= flash_free and e[d]["arena_bytes"] <= budget.XIAO_ESP32S3.psram_bytes
                   for d in ("float32", "int8"))
        sram = all(e[d]["arena_in"] == "SRAM" for d in ("float32", "int8"))
        return (not fits, not sram, e["float32"]["flash_bytes"], e["float32"]["latency_ms"])

    best = min(forms, key=key)
    e = compare[best]
    others = "; ".join(f"{f}: {compare[f]['float32']['flash_bytes'] / 1024:,.0f} KB flash, "
                       f"{compare[f]['float32']['arena_bytes'] / 1024:,.0f} KB arena in {compare[f]['float32']['arena_in']}, "
                       f"~{compare[f]['export_s']:,.0f} s to export" for f in forms if f != best)
    what = {"fused": "TFLite Micro's fused LSTM op", "step": "the step loop (one time step, looped by the firmware)",
            "unrolled": "the unrolled graph"}[best]
    lead = (f"TFLite Micro has no {KIND_LABELS[spec.kind]} kernel; " if spec.kind in ("gru", "rnn") else "")
    return best, (f"{lead}{what} fits the board best for a {spec.window}-step window: "
                  f"{e['float32']['flash_bytes'] / 1024:,.0f} KB flash, {e['float32']['arena_bytes'] / 1024:,.0f} KB arena "
                  f"in {e['float32']['arena_in']} (float32), ~{e['float32']['latency_ms']:,.0f} ms, ~{e['export_s']:,.0f} s "
                  f"to export (estimates; {others})")


# ----------------------------------------------------------------------------- the one-step graph (TensorFlow)


def _layer_weights(spec: Any, weights: list[np.ndarray]) -> tuple[list[tuple], list[tuple]]:
    """Canonical weights -> per layer (kernel, recurrent, bias), and the dense stack [(kernel, bias), ...]."""
    w = [np.asarray(a, np.float32) for a in weights]
    cells = [tuple(w[3 * i:3 * i + 3]) for i in range(spec.layers)]
    rest = w[3 * spec.layers:]
    dense = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
    return cells, dense


def step_function(spec: Any, weights: list[np.ndarray], residual: bool | None = None):
    """A ``tf.function`` step(x (1,n), state (1,S)) -> (state' (1,S), y (1,horizon,targets)).

    ``residual``: add each target's input at this step (the window's last value, at the last step) to y;
    defaults to ``spec.residual``. The int8 graph of a residual model leaves it to the firmware."""
    import tensorflow as tf

    residual = spec.residual if residual is None else residual
    cells, dense = _layer_weights(spec, weights)
    u = spec.units
    kind = spec.kind
    per = 2 * u if kind == "lstm" else u
    S = state_size(spec)
    idx = list(spec.target_input_index)

    def gate(h_in, k, rk, b, j):
        # One gate block j of width u: x @ W_j + h @ U_j + b_j (FULLY_CONNECTED, ESP-NN accelerated in int8).
        return tf.matmul(h_in[0], k[:, j * u:(j + 1) * u]) + tf.matmul(h_in[1], rk[:, j * u:(j + 1) * u]) + b[j * u:(j + 1) * u]

    @tf.function(input_signature=[tf.TensorSpec([1, spec.n_inputs], tf.float32, name="x"),
                                  tf.TensorSpec([1, S], tf.float32, name="state")])
    def step(x, state):
        inp = x
        new = []
        for li, (k, rk, b) in enumerate(cells):
            k, rk = tf.constant(k), tf.constant(rk)
            s = state[:, li * per:(li + 1) * per] if spec.layers > 1 or kind == "lstm" else state
            if kind == "rnn":
                h = s
                h2 = tf.tanh(tf.matmul(inp, k) + tf.matmul(h, rk) + tf.constant(b))
                new.append(h2)
            elif kind == "gru":
                h = s
                b_in, b_rec = tf.constant(b[0]), tf.constant(b[1])
                mx = [tf.matmul(inp, k[:, j * u:(j + 1) * u]) + b_in[j * u:(j + 1) * u] for j in range(3)]
                mh = [tf.matmul(h, rk[:, j * u:(j + 1) * u]) + b_rec[j * u:(j + 1) * u] for j in range(3)]
                z = tf.sigmoid(mx[0] + mh[0])
                r = tf.sigmoid(mx[1] + mh[1])
                hh = tf.tanh(mx[2] + r * mh[2])
                h2 = hh + z * (h - hh)  # = z*h + (1-z)*hh
                new.append(h2)
            else:  # lstm
                h, c = s[:, :u], s[:, u:]
                bb = tf.constant(b)
                i_ = tf.sigmoid(gate((inp, h), k, rk, bb, 0))
                f_ = tf.sigmoid(gate((inp, h), k, rk, bb, 1))
                g_ = tf.tanh(gate((inp, h), k, rk, bb, 2))
                o_ = tf.sigmoid(gate((inp, h), k, rk, bb, 3))
                c2 = f_ * c + i_ * g_
                h2 = o_ * tf.tanh(c2)
                new.append(tf.concat([h2, c2], axis=1))
            inp = h2
        state2 = new[0] if len(new) == 1 else tf.concat(new, axis=1)
        hd = inp
        for j, (dk, db) in enumerate(dense):
            hd = tf.matmul(hd, tf.constant(dk)) + tf.constant(db)
            if j < len(dense) - 1:
                hd = tf.nn.relu(hd)
        y = tf.reshape(hd, [1, spec.horizon, spec.n_targets])
        if residual:
            last = tf.gather(x, idx, axis=1) if not _contiguous(idx) else x[:, idx[0]:idx[-1] + 1]
            y = y + tf.reshape(last, [1, 1, spec.n_targets])
        return state2, y

    return step


def _contiguous(idx: list) -> bool:
    return all(b == a + 1 for a, b in zip(idx, idx[1:]))


def loop_numpy(step, X: np.ndarray, S: int, trace: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """The loop on the host with the TF step function: (y (n, horizon, targets), state traces of the first
    ``trace`` windows (trace, window, S) or None)."""
    import tensorflow as tf

    ys, traces = [], []
    for n, window in enumerate(np.asarray(X, np.float32)):
        state = tf.zeros([1, S], tf.float32)
        tr = []
        for t in range(window.shape[0]):
            state, y = step(tf.constant(window[t:t + 1]), state)
            if n < trace:
                tr.append(state.numpy()[0])
        ys.append(y.numpy()[0])
        if n < trace:
            traces.append(tr)
    return np.stack(ys), (np.asarray(traces, np.float32) if trace else None)


# ----------------------------------------------------------------------------- conversion (in core.export.worker)


def numpy_states(spec: Any, weights: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """Every step's state for a batch of windows, in numpy float64 (the same equations as
    ``step_function``, batched): (n, window, S). Used for int8 calibration, where thousands of
    batch-1 graph calls would cost seconds."""
    cells, _ = _layer_weights(spec, weights)
    X = np.asarray(X, np.float64)
    n, W, _ = X.shape
    u = spec.units
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    inp = X
    out = []
    for k, rk, b in cells:
        k, rk, b = k.astype(np.float64), rk.astype(np.float64), np.asarray(b, np.float64)
        h = np.zeros((n, u))
        c = np.zeros((n, u))
        hs, full = [], []
        for t in range(W):
            x = inp[:, t]
            if spec.kind == "rnn":
                h = np.tanh(x @ k + h @ rk + b)
                full.append(h)
            elif spec.kind == "gru":
                mx, mh = x @ k + b[0], h @ rk + b[1]
                z = sig(mx[:, :u] + mh[:, :u])
                r = sig(mx[:, u:2 * u] + mh[:, u:2 * u])
                hh = np.tanh(mx[:, 2 * u:] + r * mh[:, 2 * u:])
                h = hh + z * (h - hh)
                full.append(h)
            else:
                g = x @ k + h @ rk + b
                i_, f_, g_, o_ = sig(g[:, :u]), sig(g[:, u:2 * u]), np.tanh(g[:, 2 * u:3 * u]), sig(g[:, 3 * u:])
                c = f_ * c + i_ * g_
                h = o_ * np.tanh(c)
                full.append(np.concatenate([h, c], axis=1))
            hs.append(h)
        inp = np.stack(hs, axis=1)
        out.append(np.stack(full, axis=1))
    return np.concatenate(out, axis=2)


def numpy_forecast(spec: Any, weights: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """The whole network in numpy through the step equations: (n, horizon, n_targets) scaled."""
    cells, dense = _layer_weights(spec, weights)
    states = numpy_states(spec, weights, X)
    u = spec.units
    off = (spec.layers - 1) * u * (2 if spec.kind == "lstm" else 1)
    h = states[:, -1, off:off + u]
    for j, (dk, db) in enumerate(dense):
        h = h @ dk.astype(np.float64) + db
        if j < len(dense) - 1:
            h = np.maximum(h, 0.0)
    y = h.reshape(len(X), spec.horizon, spec.n_targets)
    if spec.residual:
        y = y + np.asarray(X, np.float64)[:, -1, list(spec.target_input_index)][:, None, :]
    return y


def representative_steps(spec: Any, weights: list[np.ndarray], rep: np.ndarray,
                         max_samples: int = 2000) -> list[list[np.ndarray]]:
    """(x_t, state) pairs the float step model meets over the calibration windows, plus the states'
    bounds: GRU and SimpleRNN states stay in [-1, 1] (tanh, a convex mix of tanh values), so calibrating
    the state tensors on +-1 makes any window length safe from int8 state overflow; an LSTM's cell
    state is unbounded and gets 50% headroom over the largest seen."""
    rep = np.asarray(rep, np.float32)
    n, W, _ = rep.shape
    S = state_size(spec)
    states = numpy_states(spec, weights, rep)  # state after step t
    before = np.concatenate([np.zeros((n, 1, S)), states[:, :-1]], axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    flat = rng.choice(n * W, size=min(n * W, max_samples), replace=False)
    samples = [[rep[i // W, i % W][None], before[i // W, i % W][None]] for i in sorted(flat)]
    top = np.abs(states).reshape(-1, S).max(axis=0)
    bound = np.ones(S, np.float32) if spec.kind != "lstm" else np.maximum(1.0, 1.5 * top).astype(np.float32)
    for sign in (1.0, -1.0):
        samples.append([rep[0, -1:], (sign * bound)[None].astype(np.float32)])
    return samples


def convert_step(spec: Any, weights: list[np.ndarray], dtype: str, rep: np.ndarray | None,
                 residual_outside: bool) -> tuple[bytes, dict]:
    """The step model's TFLite bytes and its tensor layout: which input is x / state, which output is
    state' / y (the converter's order is read back, never assumed), their quantisation."""
    import tensorflow as tf

    residual = spec.residual and not (dtype == "int8" and residual_outside)
    step = step_function(spec, weights, residual=residual)
    S = state_size(spec)
    cf = step.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([cf])
    if dtype == "int8":
        samples = representative_steps(spec, weights, rep)

        def representative():
            yield from samples

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    buf = converter.convert()
    return buf, tensor_layout(buf, spec)


def tensor_layout(buf: bytes, spec: Any) -> dict:
    """Input/output indices of x, state, state', y, read from the names and shapes in the flatbuffer."""
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=buf)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    S = state_size(spec)

    def q(d):
        s, z = d["quantization"]
        return {"scale": float(s), "zero_point": int(z)} if s else None

    x_i = next(i for i, d in enumerate(ins) if "state" not in d["name"])
    s_i = 1 - x_i
    y_n = spec.horizon * spec.n_targets
    # Outputs: by shape where they differ; names ("Identity" = first returned value) when they agree.
    shapes = [tuple(d["shape"]) for d in outs]
    if shapes[0] != shapes[1]:
        so_i = 0 if shapes[0] == (1, S) else 1
    else:
        names = [d["name"] for d in outs]
        so_i = 0 if names[0].endswith("Identity") or names[0] < names[1] else 1
    assert int(np.prod(shapes[1 - so_i])) == y_n
    return {"x_input": x_i, "state_input": s_i, "state_output": so_i, "y_output": 1 - so_i, "state_size": S,
            "x_quant": q(ins[x_i]), "state_in_quant": q(ins[s_i]), "state_out_quant": q(outs[so_i]),
            "y_quant": q(outs[1 - so_i]), "dtype": "int8" if ins[x_i]["dtype"] == np.int8 else "float32"}


# ----------------------------------------------------------------------------- the loop on a runtime


def _quantize(x: np.ndarray, quant: dict | None) -> np.ndarray:
    """fs::QuantizeInt8 exactly: float32 divide, round half away from zero, clamp."""
    if quant is None:
        return np.asarray(x, np.float32)
    r = np.asarray(x, np.float32) / np.float32(quant["scale"])
    q = np.trunc(np.where(r >= 0, r + np.float32(0.5), r - np.float32(0.5))).astype(np.int64) + quant["zero_point"]
    return np.clip(q, -128, 127).astype(np.int8)


def _dequantize(q: np.ndarray, quant: dict | None) -> np.ndarray:
    if quant is None:
        return np.asarray(q, np.float32)
    return (np.asarray(q).astype(np.int32) - quant["zero_point"]).astype(np.float32) * np.float32(quant["scale"])


@dataclass
class LoopStats:
    state_clipped: int = 0  # int8 state values that fell outside the state tensor's range (clamped)
    state_values: int = 0


def run_loop(interp: Any, layout: dict, X: np.ndarray, trace: int = 0, stats: LoopStats | None = None,
             reset=None) -> tuple[np.ndarray, np.ndarray | None]:
    """The firmware's loop on a TFLM (or TFLite-like) interpreter with ``set_input(arr, i)``, ``invoke()``,
    ``get_output(i)``: the state stays float between steps, quantized to the state input's int8 grid
    per step in the int8 model (fs::QuantizeInt8's arithmetic). X: (n, window, n_inputs) scaled float.
    Returns y scaled float (n, horizon*targets) and, for the first ``trace`` windows, the float state after
    every step. Per-step work is kept to a few NumPy calls: the export runs every test window through it."""
    S = layout["state_size"]
    xq, siq, soq, yq = layout["x_quant"], layout["state_in_quant"], layout["state_out_quant"], layout["y_quant"]
    xi, si, so, yo = layout["x_input"], layout["state_input"], layout["state_output"], layout["y_output"]
    X = np.asarray(X, np.float32)
    Xin = _quantize(X, xq)  # every step's inputs at once, the same numbers as step by step
    if siq is not None:
        s_scale, s_zero = np.float32(siq["scale"]), float(siq["zero_point"])
        half = np.float32(0.5)
    if soq is not None:
        o_scale, o_zero = np.float32(soq["scale"]), np.int32(soq["zero_point"])
    ys, traces = [], []
    clipped = 0
    for n in range(len(X)):
        window = Xin[n]
        state = np.zeros((1, S), np.float32)
        tr = []
        for t in range(window.shape[0]):
            interp.set_input(window[t:t + 1], xi)
            if siq is None:
                interp.set_input(state, si)
            else:
                r = state / s_scale
                q = np.trunc(r + np.copysign(half, r)) + s_zero
                if q.min() < -128.0 or q.max() > 127.0:
                    clipped += int(np.count_nonzero((q < -128.0) | (q > 127.0)))
                    np.clip(q, -128.0, 127.0, out=q)
                interp.set_input(q.astype(np.int8), si)
            interp.invoke()
            out = interp.get_output(so)
            state = (np.asarray(out, np.float32).reshape(1, S) if soq is None
                     else ((np.asarray(out, np.int32) - o_zero).astype(np.float32) * o_scale).reshape(1, S))
            if n < trace:
                tr.append(state[0].copy())
        ys.append(_dequantize(np.array(interp.get_output(yo)), yq).reshape(-1))
        if n < trace:
            traces.append(tr)
    if stats is not None:
        stats.state_clipped += clipped
        stats.state_values += len(X) * X.shape[1] * S if siq is not None else 0
    return (np.stack(ys) if ys else np.zeros((0, 0), np.float32)), (np.asarray(traces, np.float32) if trace else None)


def drift(trace_test: np.ndarray, trace_ref: np.ndarray, at: tuple[int, ...] = (1, 24, 168)) -> dict:
    """Mean and max |state - reference state| after step t, averaged over the traced windows."""
    d = np.abs(trace_test.astype(np.float64) - trace_ref.astype(np.float64))  # (n, W, S)
    W = d.shape[1]
    out = {}
    for t in sorted(set(min(a, W) for a in at) | {W}):
        out[str(t)] = {"mean": float(d[:, t - 1].mean()), "max": float(d[:, t - 1].max())}
    first, last = d[:, : max(1, W // 4)].mean(), d[:, -max(1, W // 4):].mean()
    return {"after_step": out, "first_quarter_mean": float(first), "last_quarter_mean": float(last),
            "grows": bool(last > 2.0 * first + 1e-6)}


# ----------------------------------------------------------------------------- worker side (a child process)


def worker_convert(jobdir: Path, dtype: str) -> int:
    """``python -m core.export.worker stepconvert JOBDIR DTYPE``: the step model of one dtype."""
    from core import models

    t0 = time.perf_counter()
    job = json.loads((jobdir / "job.json").read_text())
    spec = models.ModelSpec.from_dict(job["spec"])
    with np.load(jobdir / "weights.npz", allow_pickle=False) as z:
        weights = [z[f"w{i}"] for i in range(len(z.files))]
    status: dict = {}
    if dtype == "float32":
        # The step equations on the host must agree with the trained model before any file is trusted
        # (a weight-mapping fault, told apart from a conversion fault): every check window in numpy, and
        # the very graph that is converted on the first two.
        with np.load(jobdir / "check.npz", allow_pickle=False) as z:
            X_check, y_check = z["X"].astype(np.float32), z["y"].astype(np.float32)
        if len(X_check):
            got = numpy_forecast(spec, weights, X_check)
            err = float(np.max(np.abs(got.reshape(y_check.shape) - y_check)))
            tf_got, _ = loop_numpy(step_function(spec, weights), X_check[:2], state_size(spec))
            err = max(err, float(np.max(np.abs(tf_got.reshape(y_check[:2].shape) - y_check[:2]))))
            status["keras2_max_abs_err_scaled"] = err
    rep = np.load(jobdir / "rep.npy", allow_pickle=False).astype(np.float32) if dtype == "int8" else None
    t1 = time.perf_counter()
    buf, layout = convert_step(spec, weights, dtype, rep, bool(job.get("int8_residual_outside")))
    (jobdir / f"model_{dtype}.tflite").write_bytes(buf)
    from core.export.worker import describe_tflite

    desc = describe_tflite(buf)
    # Report the x input / y output as the model's "input"/"output" (what the report and the bundle read).
    desc["inputs"] = [{"shape": [1, spec.n_inputs], "dtype": layout["dtype"], "quant": layout["x_quant"]}]
    desc["outputs"] = [{"shape": [1, spec.horizon, spec.n_targets], "dtype": layout["dtype"], "quant": layout["y_quant"]}]
    status[dtype] = {"convert_s": time.perf_counter() - t1, **desc, "step_layout": layout}
    status["total_s"] = time.perf_counter() - t0
    tmp = jobdir / f"status_{dtype}.json.part"
    tmp.write_text(json.dumps(status))
    os.replace(tmp, jobdir / f"status_{dtype}.json")
    return 0


# ----------------------------------------------------------------------------- export side (the studio's process)

TRACE_WINDOWS = 8  # windows whose state is recorded after every step, for the int8 drift figure


class _TfliteAdapter:
    """TensorFlow Lite's interpreter behind the TFLM runtime's calls (machines without tflite-micro)."""

    def __init__(self, buf: bytes) -> None:
        import tensorflow as tf

        self._i = tf.lite.Interpreter(model_content=buf)
        self._i.allocate_tensors()
        self._ins = [d["index"] for d in self._i.get_input_details()]
        self._outs = [d["index"] for d in self._i.get_output_details()]

    def set_input(self, arr, i):
        self._i.set_tensor(self._ins[i], arr)

    def invoke(self):
        self._i.invoke()

    def get_output(self, i):
        return self._i.get_tensor(self._outs[i])


def verify(model_path: Path, X: np.ndarray, layout: dict, timeout: float, use_tflm: bool) -> tuple[np.ndarray, dict | None, dict]:
    """Run the loop over X on TFLM (arena found by the export's own bisection on the step model), or on
    TFLite where the wheel is missing. Returns (y scaled float (n, horizon*targets), arena, extra) with
    extra = {"trace": states of the first TRACE_WINDOWS windows, "state_clipped", "state_values"}."""
    import tempfile

    from core import export as ex
    from core.config import DEFAULTS

    if not use_tflm:
        y, trace = run_loop(_TfliteAdapter(Path(model_path).read_bytes()), layout, X, trace=TRACE_WINDOWS,
                            stats=(st := LoopStats()))
        return y, None, {"trace": trace, "state_clipped": st.state_clipped, "state_values": st.state_values}
    with ex.TflmRuntime(model_path) as rt, tempfile.TemporaryDirectory(prefix="fs-step-") as tmp:
        arena = ex.find_arena(rt)
        reported, margin = ex.arena_with_margin(arena["measured"])
        src, dst, lay = Path(tmp) / "in.npy", Path(tmp) / "out.npz", Path(tmp) / "layout.json"
        np.save(src, np.ascontiguousarray(X, np.float32), allow_pickle=False)
        lay.write_text(json.dumps(layout))
        ok, msg = rt.ask(f"steprun {reported} {src} {dst} {lay} {TRACE_WINDOWS}", timeout=timeout)
        if not ok:
            from core.errors import StudioError

            raise StudioError(f"The step model failed on the TFLM runtime with a {reported:,}-byte arena ({msg}).",
                              "Export the unrolled form instead (--form unrolled), or report this with the run.")
        with np.load(dst, allow_pickle=False) as z:
            y, trace, clipped = z["y"], z["trace"], z["clipped"]
        below = arena["measured"] - int(DEFAULTS["export"]["arena_check_below_bytes"])
        below_fails = not rt.allocates(below)[0]
        arena.update({"reported": reported, "margin": margin, "below_checked": below, "below_fails": below_fails,
                      "reported_runs": True, "probe_crashes": rt.crashes})
    return y, arena, {"trace": trace, "state_clipped": int(clipped[0]), "state_values": int(clipped[1])}


# Board figures for the comparison before export (after export the measured ones replace the chosen form's).
# Measured on this stack (bench/bench_steploop.py, 32 units, 7 inputs): the step graph's bytes over its
# weights, and the arena of one step.
_STEP_FLASH_FIXED = {("gru", "float32"): 4700, ("gru", "int8"): 9700, ("rnn", "float32"): 2600,
                     ("rnn", "int8"): 3100, ("lstm", "float32"): 6300, ("lstm", "int8"): 10200}
# Arena of one step (fitted to the same exports): a base, the step's activations, and TFLM's per-op
# bookkeeping (nodes, tensor metadata, int8 requantisation scratch) for about this many ops per layer.
_STEP_OPS = {"gru": 26, "rnn": 5, "lstm": 46}
_STEP_ARENA_BASE = 3200
_STEP_ARENA_PER_OP = {"float32": 114, "int8": 191}
# The step loop's own cost per time step besides the cell's ops (which the unrolled graph runs as well):
# one Invoke call and the state's int8 (de)quantisation at the graph edge. An estimate: about 15 us on the S3.
STEP_INVOKE_OVERHEAD_MS = 0.015
# Export time (float32 + int8, verified on TFLM, 2 cores), measured in bench/bench_steploop.py on 168 steps.
_EXPORT_S = {"step": (6.0, 0.0), "fused": (10.0, 0.0), "unrolled": (8.0, 0.30)}  # (fixed, per step and layer)


def estimate_step_flash(spec: Any, dtype: str) -> int:
    """The step model's flatbuffer: the weights once plus the one-step graph."""
    from core.models import model_size_bytes

    return int(model_size_bytes(spec, dtype) + _STEP_FLASH_FIXED[(spec.kind, dtype)] * spec.layers)


def estimate_step_arena(spec: Any, dtype: str) -> int:
    """One step's tensors: x, state in/out, every gate's activations, the head; plus TFLM bookkeeping.
    Measured (32 units, 7 inputs): GRU 7.5 / 8.3 KB, SimpleRNN 4.5 / 4.3 KB, LSTM 10.6 / 12.2 KB (float32 / int8)."""
    b = 1 if dtype == "int8" else 4
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[spec.kind]
    S = state_size(spec)
    acts = b * (spec.n_inputs + 2 * S + 3 * gates * spec.units + spec.horizon * spec.n_targets)
    return int(_STEP_ARENA_BASE + acts + _STEP_ARENA_PER_OP[dtype] * _STEP_OPS[spec.kind] * spec.layers)


def compare_forms(spec: Any, measured: dict | None = None, chosen: str | None = None) -> dict:
    """Flash, arena, latency and export time of each form this spec can take, per dtype, from the budget
    module's estimates (``measured``: {dtype: {"bytes", "arena_bytes"}} of the exported form replaces
    its estimate). Returns {form: {dtype: {...}, "export_s": ...}, "basis": ...}."""
    from core import budget
    from core.models import model_size_bytes

    if spec.kind == "dense":
        return {}
    forms = ["step", "unrolled"] + (["fused"] if spec.kind == "lstm" else [])
    out: dict = {}
    sram = budget.XIAO_ESP32S3.sram_usable_bytes - budget.SKETCH_RAM_BYTES
    for form in forms:
        entry: dict = {}
        for dtype in ("float32", "int8"):
            if form == "step":
                flash = estimate_step_flash(spec, dtype)
                arena = estimate_step_arena(spec, dtype)
            elif form == "unrolled" and spec.kind == "lstm":
                # No measured table for an unrolled LSTM: a GRU's per-step cost scaled by the gate count.
                gru = dict(spec.to_dict(), kind="gru")
                g = type(spec).from_dict(gru)
                flash = int(budget.estimate_model_bytes(g, dtype, "unrolled") * 4 / 3)
                arena = int(budget.estimate_arena_bytes(g, dtype, "unrolled") * 4 / 3)
            else:
                flash = budget.estimate_model_bytes(spec, dtype, form)
                arena = budget.estimate_arena_bytes(spec, dtype, form)
            source = "estimate"
            if chosen == form and measured and dtype in measured and measured[dtype].get("bytes"):
                flash, source = int(measured[dtype]["bytes"]), "measured"
                arena = int(measured[dtype].get("arena_bytes") or arena)
            in_psram = arena > sram
            lat = budget.latency_ms(spec, dtype, in_psram=in_psram)
            if form == "step":
                lat += spec.window * STEP_INVOKE_OVERHEAD_MS
            entry[dtype] = {"flash_bytes": int(flash), "arena_bytes": int(arena), "arena_in": "PSRAM" if in_psram else "SRAM",
                            "latency_ms": float(lat), "source": source}
        fixed, per = _EXPORT_S[form]
        entry["export_s"] = float(fixed + per * spec.window * spec.layers)
        out[form] = entry
    out["basis"] = ("flash and arena: sizes measured on this stack for each form (core.budget, core.steploop), replaced by "
                    "the export's own measurement for the form exported; latency: multiply-adds at the board's measured "
                    f"speed, plus {STEP_INVOKE_OVERHEAD_MS * 1000:.0f} us per step for the step loop's invokes (estimate); "
                    "export time: float32 + int8 measured here")
    return out


def form_report(spec: Any, form: str, reason: str, entries: dict, extras: dict) -> dict:
    """The report's ``form`` section: which form, why, the comparison, and for the step loop its state
    layout and the int8 state drift against the float32 loop on TFLM."""
    d: dict = {"form": form, "reason": reason,
               "compare": compare_forms(spec, {k: v for k, v in entries.items()}, chosen=form)}
    if form == "step":
        d["state_size"] = state_size(spec)
        d["state_precision"] = ("float32 between steps in the firmware's own buffers; the int8 model's state tensors "
                                "are quantized at the graph edge each step (fs_steploop.cpp)")
        if "int8" in extras and "float32" in extras:
            tr8, tr32 = extras["int8"]["trace"], extras["float32"]["trace"]
            if tr8 is not None and tr32 is not None and np.size(tr8) and np.shape(tr8) == np.shape(tr32):
                d["int8_state_drift"] = drift(tr8, tr32)
        if "int8" in extras:
            e = extras["int8"]
            d["int8_state_clipped"] = {"values": e["state_clipped"], "of": e["state_values"]}
    return d


# ----------------------------------------------------------------------------- bundle and emulator


def bundle_shapes(model_bytes: bytes, arena: int, layout: dict, report: dict) -> tuple[tuple, tuple]:
    """(1, window, features) and (1, horizon, targets) of a step model, read by loading it on TFLM (a
    model that does not load there must not become a bundle); the window comes from the report."""
    from core.errors import StudioError
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=max(arena, 4096))
        x = tuple(int(v) for v in interp.get_input_details(layout["x_input"])["shape"])
        s = tuple(int(v) for v in interp.get_input_details(layout["state_input"])["shape"])
        y = tuple(int(v) for v in interp.get_output_details(layout["y_output"])["shape"])
    except Exception as err:  # the runtime raises RuntimeError/ValueError with TFLM's text
        raise StudioError(f"The exported step model does not load on the TFLM runtime ({err}).", "Export the run again.") from err
    if len(x) != 2 or s != (1, int(layout["state_size"])):
        raise StudioError(f"The step model's inputs {x}, {s} are not (1, features) and (1, state).", "Export the run again.")
    window = int(report.get("window") or 0)
    if window < 1:
        raise StudioError("The export report gives no window for the step model.", "Export the run again.")
    return (1, window, x[1]), y


class StepRunner:
    """The emulator's model for a step-loop bundle: the firmware's loop on the TFLM runtime, with its
    int8 (de)quantisation of x, the state and y (``run_loop``)."""

    def __init__(self, spec: Any) -> None:
        from core.errors import StudioError
        from tflite_micro.python.tflite_micro import runtime

        try:
            self._interp = runtime.Interpreter.from_bytes(spec.model_bytes, arena_size=spec.arena_bytes)
        except Exception as err:
            raise StudioError(f"The bundle's step model does not start on TFLM with a {spec.arena_bytes}-byte arena "
                              f"({err}).", "Export the run again.") from err
        self._layout = spec.step_layout
        self._shape = (1, spec.window, spec.features)

    def __call__(self, x_scaled: np.ndarray) -> tuple[np.ndarray, int]:
        X = np.asarray(x_scaled, np.float32).reshape(self._shape)
        start = time.perf_counter_ns()
        y, _ = run_loop(self._interp, self._layout, X)
        return y[0].astype(np.float32), int((time.perf_counter_ns() - start) // 1000)


def form_rows(forms: dict) -> list[dict]:
    """The forms side by side, one row per form and dtype, for the Export page and the CLI."""
    compare = (forms or {}).get("compare") or {}
    chosen = (forms or {}).get("form")
    rows = []
    for form, entry in compare.items():
        if form == "basis":
            continue
        for dtype in ("float32", "int8"):
            e = entry.get(dtype) or {}
            rows.append({"form": form + (" (exported)" if form == chosen else ""), "model": dtype,
                         "flash": f"{e.get('flash_bytes', 0) / 1024:,.1f} KB",
                         "arena": f"{e.get('arena_bytes', 0) / 1024:,.1f} KB in {e.get('arena_in', '?')}",
                         "latency (estimate)": f"~{e.get('latency_ms', 0):,.0f} ms",
                         "export time": f"~{entry.get('export_s', 0):,.0f} s", "figures": e.get("source", "")})
    return rows
