"""Which form a model exports as, and the one-step graph: written from the canonical weights, converted
to TFLite (in core.export.worker), with a numpy reference of the same loop."""
from __future__ import annotations

from typing import Any

import numpy as np

from core.models.spec import OUTSIDE_FORMS


FORMS = ("auto", "step", "unrolled", "fused")
STEP_KINDS = ("gru", "rnn", "lstm")


def state_size(spec: Any) -> int:
    """Floats of state the loop carries: units per layer (LSTM: h and c)."""
    return spec.layers * spec.units * (2 if spec.kind == "lstm" else 1)


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
    defaults to ``spec.residual``. The int8 graph of a residual model leaves it to the firmware, and so does
    every graph of a seasonal form: its reference rows lie earlier in the window than the one step the model
    sees (``add_reference`` adds them on the host, fs_protocol.cpp on the board)."""
    import tensorflow as tf

    residual = spec.residual if residual is None else residual
    residual = residual and spec.target_form not in OUTSIDE_FORMS
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
    if spec.residual and spec.target_form not in OUTSIDE_FORMS:
        y = y + np.asarray(X, np.float64)[:, -1, list(spec.target_input_index)][:, None, :]
    return add_reference(spec, y, X)


def add_reference(spec: Any, y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """What the firmware adds to the step-loop output (the model's own change) of a form whose reference reads
    earlier rows (OUTSIDE_FORMS: seasonal, linear): each step's reference (core.export.reference_values); other
    forms unchanged (their graph adds the last value)."""
    if spec.target_form not in OUTSIDE_FORMS:
        return y
    from core.export.calibration import reference_values

    return (np.asarray(y) + reference_values(spec, np.asarray(X, np.float32))).astype(np.asarray(y).dtype)


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

    # residual_outside: this graph outputs only the change (core.export.outside decides, per dtype and form).
    residual = spec.residual and not residual_outside
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


