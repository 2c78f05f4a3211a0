"""The step loop on a runtime (TFLM or TFLite): state kept in float between steps, int8 at the graph edge;
and the child process's conversion of a step model."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.steploop.graph import add_reference, convert_step, loop_numpy, numpy_forecast, state_size, step_function

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
            tf_got = add_reference(spec, tf_got.reshape(y_check[:2].shape), X_check[:2])
            err = max(err, float(np.max(np.abs(tf_got - y_check[:2]))))
            status["keras2_max_abs_err_scaled"] = err
    rep = np.load(jobdir / "rep.npy", allow_pickle=False).astype(np.float32) if dtype == "int8" else None
    t1 = time.perf_counter()
    # Whether this graph leaves the reference to the firmware: the int8 graph of a change form, and every graph
    # of a seasonal form (core.export.outside); a job from before "outside" only knew the int8 rule.
    outside = (job["outside"].get(dtype, False) if isinstance(job.get("outside"), dict)
               else dtype == "int8" and bool(job.get("int8_residual_outside")))
    buf, layout = convert_step(spec, weights, dtype, rep, bool(outside))
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


