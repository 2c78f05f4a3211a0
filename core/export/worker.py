"""The parts of export that may crash the process, run apart from the studio (`python -m core.export.worker`).

Two jobs live here, each in its own child process started by ``core.export``:

``convert JOBDIR float32|int8``
    Builds the batch-1 export model with ``tf_keras`` (the parent sets ``TF_USE_LEGACY_KERAS=1`` so
    ``tf.keras`` is Keras 2 here, which gives the fused UNIDIRECTIONAL_SEQUENCE_LSTM op), loads the
    canonical weights and converts to float32 or full-integer int8 TFLite, writing the model file and
    ``status_<dtype>.json``. int8 calibration has been seen to segfault on some graphs, which is why
    this is not done in the studio, and why each dtype has its own process.

``tflm``
    A small line server around the TensorFlow Lite Micro runtime. Its allocator segfaults (rather than
    raising) for some arena sizes that are too small, so the parent probes arena sizes here and restarts
    the server when it dies. Commands on stdin, one answer line each on stdout:
    ``load PATH`` | ``alloc N`` -> ``ok`` / ``fail MESSAGE``; ``recorded`` -> ``ok BYTES`` (the recording
    allocator's total); ``run N IN.npy OUT.npy`` runs every window of IN (already in the model's input
    dtype) with a fresh state per window and writes the raw outputs to OUT.

``stepconvert JOBDIR float32|int8`` and ``steprun N IN.npy OUT.npz LAYOUT.json TRACE``
    The step-loop form (``core.steploop``): convert one time step; run the firmware's loop over every window.

``tflite IN.npy OUT.npy MODEL``
    The same as ``run`` on TensorFlow Lite's own interpreter, for machines without the tflite-micro
    wheel (it is published for Linux x86-64 only).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- flatbuffer reading


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def describe_tflite(buf: bytes) -> dict:
    """Op names, input/output shape, dtype and quantisation read straight from the flatbuffer."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    ops = []
    for code in model.operatorCodes:
        # Newer files keep the real code in builtinCode and clamp deprecatedBuiltinCode at 127.
        op = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = names.get(op, f"BUILTIN_{op}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            name = f"CUSTOM:{custom}"
        ops.append(name)
    graph = model.subgraphs[0]

    def tensor(i: int) -> dict:
        t = graph.tensors[i]
        q = t.quantization
        quant = None
        if q is not None and q.scale is not None and len(q.scale):
            quant = {"scale": float(q.scale[0]), "zero_point": int(q.zeroPoint[0])}
        return {"shape": [int(s) for s in t.shape], "dtype": types.get(t.type, str(t.type)), "quant": quant}

    return {"ops": sorted(set(ops)), "subgraphs": len(model.subgraphs),
            "inputs": [tensor(int(i)) for i in graph.inputs], "outputs": [tensor(int(i)) for i in graph.outputs]}


# ----------------------------------------------------------------------------- convert


def _convert(jobdir: Path, dtype: str) -> int:
    """Convert to one dtype; the parent runs the float32 and int8 conversions as two processes at once
    (each is single-threaded work, and an int8 calibration crash then cannot touch the float32 one)."""
    job = json.loads((jobdir / "job.json").read_text())
    t0 = time.perf_counter()
    import tensorflow as tf

    from core import models

    spec = models.ModelSpec.from_dict(job["spec"])
    full_spec = spec
    # Whether this graph outputs the change only (core.export.outside: the int8 graph of a change form, every graph
    # of "change_linear"); a job from before "outside" only knew the int8 rule.
    outside = (bool(job["outside"].get(dtype, False)) if isinstance(job.get("outside"), dict)
               else dtype == "int8" and bool(job.get("int8_residual_outside")))
    if outside and spec.residual:
        # The graph forecasts the change only; the firmware adds the reference (core.export).
        import dataclasses

        # Any change form: the graph is the change network (a "change_linear" spec's weights stay with the export).
        spec = dataclasses.replace(spec, target_form="level", linear_weights=(), linear_bias=())
    with np.load(jobdir / "weights.npz", allow_pickle=False) as z:
        weights = [z[f"w{i}"] for i in range(len(z.files))]
    # form "unrolled" (core.steploop): every cell unrolled, LSTM too; otherwise what runs best on TFLM.
    model = models.build_tf_keras(spec, batch_size=1, unroll=True if job.get("form") == "unrolled" else None)
    models.load_canonical(model, weights)
    # Converting from a concrete function skips the SavedModel round trip of from_keras_model and
    # keeps the LSTM's fusable form.
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, spec.window, spec.n_inputs], tf.float32))
    status: dict = {"build_s": time.perf_counter() - t0}

    if dtype == "float32":
        # The Keras 2 graph must agree with the host's predictions before any file is trusted: this
        # separates a weight-mapping fault from a conversion fault in the error message.
        with np.load(jobdir / "check.npz", allow_pickle=False) as z:
            X_check, y_check = z["X"].astype(np.float32), z["y"].astype(np.float32)
        if len(X_check):
            got = np.concatenate([forward(tf.constant(X_check[i:i + 1])).numpy() for i in range(len(X_check))])
            if outside and full_spec.residual:  # the host's forecast holds the reference: add it as the firmware will
                from core.export.calibration import add_last_value

                got = add_last_value(full_spec, got.reshape(y_check.shape), X_check)
            status["keras2_max_abs_err_scaled"] = float(np.max(np.abs(got.reshape(y_check.shape) - y_check)))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([forward], model)
    elif dtype == "int8":
        rep = np.load(jobdir / "rep.npy", allow_pickle=False).astype(np.float32)

        def representative():
            for window in rep:
                yield [window[None]]

        converter = tf.lite.TFLiteConverter.from_concrete_functions([forward], model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    else:
        raise ValueError(f"unknown dtype {dtype}")
    t1 = time.perf_counter()
    buf = converter.convert()
    (jobdir / f"model_{dtype}.tflite").write_bytes(buf)
    status[dtype] = {"convert_s": time.perf_counter() - t1, **describe_tflite(buf)}
    status["total_s"] = time.perf_counter() - t0
    tmp = jobdir / f"status_{dtype}.json.part"
    tmp.write_text(json.dumps(status))
    os.replace(tmp, jobdir / f"status_{dtype}.json")
    return 0


# ----------------------------------------------------------------------------- TFLM line server


class _Quiet:
    """Send the C++ runtime's own prints (allocation failures, kernel checks) to /dev/null, keeping
    a private duplicate of stdout for the protocol."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self.proto = os.fdopen(os.dup(1), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)

    def reply(self, text: str) -> None:
        self.proto.write(text.replace("\n", " ") + "\n")
        self.proto.flush()

    def captured_output(self, fn) -> str:
        """What ``fn`` prints at the C level (the recording allocator reports through MicroPrintf,
        which may use either stream)."""
        with tempfile.TemporaryFile() as fh:
            saved = [os.dup(1), os.dup(2)]
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            try:
                fn()
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
            fh.seek(0)
            return fh.read().decode("utf-8", "replace")


def _tflm_server() -> int:
    from tflite_micro.python.tflite_micro import runtime

    io = _Quiet()
    buf = b""
    interp = None
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        cmd, args = parts[0], parts[1:]
        try:
            if cmd == "load":
                buf = Path(args[0]).read_bytes()
                interp = None
                io.reply("ok")
            elif cmd == "alloc":
                said: list[str] = []

                def make() -> None:
                    nonlocal interp
                    try:
                        interp = runtime.Interpreter.from_bytes(buf, arena_size=int(args[0]))
                    except Exception as e:
                        said.append(f"{type(e).__name__}: {e}")

                text = io.captured_output(make)
                if said:
                    # The runtime's exception is generic; its printed lines name the cause (a missing op).
                    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
                    io.reply("fail " + " | ".join(lines[-3:] + said)[:600])
                else:
                    io.reply("ok")
            elif cmd == "recorded":
                text = io.captured_output(interp.print_allocations)
                total = [ln for ln in text.splitlines() if "allocation total" in ln]
                io.reply(f"ok {int(total[0].split()[-2])}" if total else "fail no allocation report")
            elif cmd == "run":
                interp = runtime.Interpreter.from_bytes(buf, arena_size=int(args[0]))
                X = np.load(args[1], allow_pickle=False)
                out = []
                for window in X:
                    # The fused LSTM keeps its state in variable tensors between invokes; every test
                    # window is an independent forecast, as on the board after a reset.
                    interp.reset()
                    interp.set_input(window[None], 0)
                    interp.invoke()
                    out.append(np.array(interp.get_output(0)).reshape(-1))
                np.save(args[2], np.stack(out) if out else np.zeros((0, 0)), allow_pickle=False)
                io.reply("ok")
            elif cmd == "steprun":
                # The step-loop form (core.steploop): the firmware's loop over every window.
                from core import steploop

                interp = runtime.Interpreter.from_bytes(buf, arena_size=int(args[0]))
                X = np.load(args[1], allow_pickle=False)
                layout = json.loads(Path(args[3]).read_text())
                stats = steploop.LoopStats()
                y, trace = steploop.run_loop(interp, layout, X, trace=int(args[4]), stats=stats)
                np.savez(args[2], y=y, trace=trace if trace is not None else np.zeros((0,)),
                         clipped=np.array([stats.state_clipped, stats.state_values]))
                io.reply("ok")
            elif cmd == "quit":
                io.reply("ok")
                return 0
            else:
                io.reply(f"fail unknown command {cmd}")
        except Exception as e:  # the runtime raises RuntimeError/ValueError; report, keep serving
            io.reply(f"fail {type(e).__name__}: {str(e)[:300]}")
    return 0


def _tflite_run(in_path: str, out_path: str, model_path: str) -> int:
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=Path(model_path).read_bytes())
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    X = np.load(in_path, allow_pickle=False)
    out = []
    for window in X:
        interp.reset_all_variables()
        interp.set_tensor(inp, window[None])
        interp.invoke()
        out.append(np.array(interp.get_tensor(outp)).reshape(-1))
    np.save(out_path, np.stack(out) if out else np.zeros((0, 0)), allow_pickle=False)
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[0]
    try:
        if cmd == "convert":
            return _convert(Path(argv[1]), argv[2])
        if cmd == "stepconvert":
            from core.steploop import worker_convert

            return worker_convert(Path(argv[1]), argv[2])
        if cmd == "tflm":
            return _tflm_server()
        if cmd == "tflite":
            return _tflite_run(argv[1], argv[2], argv[3])
    except Exception as e:
        # The parent turns this last line into the user's message; the traceback helps a developer.
        traceback.print_exc()
        print(f"WORKER-ERROR {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
