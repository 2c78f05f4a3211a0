"""Export: a trained run -> TFLite float32 and int8 files, proven on the TensorFlow Lite Micro runtime.

``export_run(run, out_dir)`` builds the batch-1 export model (``core.models.build_tf_keras``: LSTM as
the fused UNIDIRECTIONAL_SEQUENCE_LSTM op, GRU and SimpleRNN unrolled, the residual add in the
graph), converts it in a child process (``core.export.worker``: a converter crash must not take the
studio down), and then runs the run's test windows through the TFLM kernels the board uses,
comparing them with the host's predictions in the targets' own units. The arena each model needs is
found by bisection on the same runtime. An op TFLM lacks, or a float32 error above
``DEFAULTS["export"]["float_tolerance"]`` of the target's range, fails the export and nothing is written.

The export directory (written atomically) holds ``model_float32.tflite``, ``model_int8.tflite``,
``windows.npz`` (the verified windows: scaled inputs, host and TFLM outputs, for the firmware bundle
and the emulator) and ``report.json``. The firmware bundle is added afterwards by
``core.firmware.render_bundle(export_dir)``; the page and the CLI call it.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError
from core.export.accuracy import BASELINE_NAMES, fmt as _fmt, loses_to_last_value, recommend_bundle, score_against_truth
from core.export.calibration import (add_last_value, calibration_windows, count_clipped, dequantize, quantize,
                                     drift_rows, linear_outside, outside as outside_graph, reference_rows,
                                     residual_outside,
                                     scoring_set)
from core.export.folder import MODEL_FILES, REPORT, WINDOWS, ExportReport
from core.export.runtime import ROOT, TflmRuntime, worker_env, arena_with_margin, find_arena, tflm_available
from core.files import atomic_dir

Progress = Callable[[float, str], None]


def _cfg(key: str) -> Any:
    return DEFAULTS["export"][key]


# ----------------------------------------------------------------------------- the run


def _load(run: Any):
    from core.runs import Run, load_run

    if isinstance(run, (str, Path)):
        return load_run(run)
    if not isinstance(run, Run):
        raise StudioError("There is no trained run to export.", "Train a model first (Train page or `python -m studio train`).")
    return run


def _check_run(run: Any, int8: bool) -> None:
    if not run.weights:
        raise StudioError("This run has no trained weights.", "Train the model first (Train page or `python -m studio train`).")
    s = run.samples
    missing = [k for k in ("X_test", "y_host") + (("X_rep",) if int8 else ()) if k not in s or len(s[k]) == 0]
    if missing:
        raise StudioError(f"The run has no {', '.join(missing)} windows to check the export with.",
                          "Train the model again so the run saves its sample windows.")
    spec = run.model_spec
    if s["X_test"].shape[1:] != (spec.window, spec.n_inputs):
        raise StudioError(f"The run's test windows {s['X_test'].shape[1:]} do not fit the model "
                          f"({spec.window}, {spec.n_inputs}).", "Train the model again.")
    for key in ("X_test", "y_host") + (("X_rep",) if int8 else ()):
        if not np.all(np.isfinite(s[key])):
            raise StudioError(f"The run's {key} windows contain NaN or infinite values.",
                              "Fill the gaps on the Data page and train again.")
    # A diverged training leaves NaN weights: the converter would carry them and every check would compare NaNs.
    if not all(np.all(np.isfinite(np.asarray(w, dtype=np.float64))) for w in run.weights):
        raise StudioError("The run's weights contain NaN or infinite values (the training diverged), so there is no "
                          "model to export.", "Train again with a lower learning rate (e.g. 1e-4) or scaled data.")
    from core.numbers import check_finite

    check_finite(run.scaler.center, "The run's scaler center", fix="Train the model again.")
    check_finite(run.scaler.scale, "The run's scaler scale", positive=True, fix="Train the model again.")
    if int8:
        rep = np.asarray(s["X_rep"], dtype=np.float64)
        if float(np.ptp(rep)) <= 1e-12 * max(1.0, float(np.max(np.abs(rep)))):
            raise StudioError("int8 needs varied calibration windows, but every training window holds the same constant "
                              "value, so there is no range to quantise.",
                              "Export float32 only (turn int8 off), or train on data that changes over time.")


def _target_range(run: Any, y_host: np.ndarray) -> np.ndarray:
    """Per target, the span of values the model is judged on (actuals and host forecasts, data units)."""
    targets = list(run.window_spec.targets)
    parts = [y_host.reshape(-1, len(targets))]
    if "y_test" in run.samples and len(run.samples["y_test"]):
        parts.append(run.scaler.inverse(np.asarray(run.samples["y_test"], np.float64), targets).reshape(-1, len(targets)))
    span = np.ptp(np.concatenate(parts), axis=0).astype(np.float64)
    fallback = np.abs(np.asarray(run.scaler.scale)[[list(run.scaler.columns).index(t) for t in targets]])
    return np.where(span > 0, span, np.where(fallback > 0, fallback, 1.0))


# ----------------------------------------------------------------------------- conversion


def _convert(run: Any, jobdir: Path, int8: bool, progress: Progress, form: str = "") -> dict:
    spec = run.model_spec
    check = min(len(run.samples["X_test"]), int(_cfg("keras2_check_windows")))
    (jobdir / "job.json").write_text(json.dumps({"spec": spec.to_dict(), "int8": bool(int8), "form": form,
                                                 "int8_residual_outside": residual_outside(spec),
                                                 "outside": {d: outside_graph(spec, d, form) for d in ("float32", "int8")}}))
    np.savez(jobdir / "weights.npz", **{f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(run.weights)})
    np.savez(jobdir / "check.npz", X=np.asarray(run.samples["X_test"][:check], np.float32),
             y=np.asarray(run.samples["y_host"][:check], np.float32))
    if int8:
        np.save(jobdir / "rep.npy", calibration_windows(run)[0], allow_pickle=False)
    progress(0.05, "Converting to TensorFlow Lite" + (" (float32 and int8 side by side)" if int8 else " (float32)"))
    timeout = float(_cfg("convert_timeout_s"))
    dtypes = ["float32", "int8"] if int8 else ["float32"]
    procs: dict[str, subprocess.Popen] = {}
    logs = {d: open(jobdir / f"worker_{d}.log", "wb") for d in dtypes}
    try:
        # Two processes at once: each conversion is mostly single-threaded, and an int8 calibration
        # crash stays in its own process.
        for d in dtypes:
            command = "stepconvert" if form == "step" else "convert"
            procs[d] = subprocess.Popen([sys.executable, "-m", "core.export.worker", command, str(jobdir), d],
                                        cwd=ROOT, env=worker_env(legacy_keras=True), stdout=logs[d],
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        rcs = {}
        for d, proc in procs.items():
            try:
                rcs[d] = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise StudioError(f"Converting the model took longer than {timeout:.0f} s and was stopped.",
                                  "Use fewer units, layers or a shorter window; nothing was exported.") from None
    finally:
        # Ctrl-C, a page rerun or a timeout: never leave a converter running behind us.
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for fh in logs.values():
            fh.close()
    status: dict = {}
    for d in dtypes:
        if rcs[d] != 0:
            raise _conversion_error(d, rcs[d], jobdir / f"worker_{d}.log")
        status.update(json.loads((jobdir / f"status_{d}.json").read_text()))
    return status


def _conversion_error(dtype: str, rc: int, log: Path) -> StudioError:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        what = f"crashed ({name})"
    else:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("WORKER-ERROR")]
        what = f"failed: {lines[-1][len('WORKER-ERROR '):][:500]}" if lines else f"failed (exit status {rc})"
    fix = ("Export float32 only (turn int8 off); the float32 model converts." if dtype == "int8"
           else "Try another model kind (LSTM, GRU, SimpleRNN or Dense) or fewer units; nothing was exported.")
    return StudioError(f"The TensorFlow Lite converter {what} while making the {dtype} model.", fix)


# ----------------------------------------------------------------------------- verification


def _verify_tflm(model_path: Path, X: np.ndarray, timeout: float) -> tuple[np.ndarray, dict]:
    with TflmRuntime(model_path) as rt:
        arena = find_arena(rt)
        reported, margin = arena_with_margin(arena["measured"])
        out = rt.run(reported, X, timeout=timeout)
        below = arena["measured"] - int(_cfg("arena_check_below_bytes"))
        below_fails = not rt.allocates(below)[0]
        arena.update({"reported": reported, "margin": margin, "below_checked": below,
                      "below_fails": below_fails, "reported_runs": True, "probe_crashes": rt.crashes})
    if not below_fails:
        raise StudioError(f"The arena measurement is unstable: {below:,} bytes allocated although bisection found "
                          f"{arena['measured']:,} bytes to be the least.", "Export again; if it repeats, report it with the run.")
    return out, arena


def verify_tflite(model_path: Path, X: np.ndarray, timeout: float) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="fs-tflite-") as tmp:
        src, dst = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        np.save(src, np.ascontiguousarray(X), allow_pickle=False)
        try:
            res = subprocess.run([sys.executable, "-m", "core.export.worker", "tflite", str(src), str(dst), str(model_path)],
                                 cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StudioError("Checking the model on TensorFlow Lite took too long.", "Use a smaller model.") from None
        if res.returncode != 0:
            tail = (res.stderr or "").strip().splitlines()[-1:] or [f"exit {res.returncode}"]
            raise StudioError(f"The exported model failed on TensorFlow Lite's interpreter ({tail[0][:300]}).",
                              "Try another model kind or fewer units; nothing was exported.")
        return np.load(dst, allow_pickle=False)


def _errors(y: np.ndarray, y_host: np.ndarray) -> dict:
    diff = np.abs(y.astype(np.float64) - y_host.astype(np.float64))
    return {"max_abs_err": float(diff.max()) if diff.size else 0.0,
            "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
            "max_abs_err_per_target": diff.reshape(-1, diff.shape[-1]).max(axis=0).tolist() if diff.size else []}


# ----------------------------------------------------------------------------- budget


def _budget(spec: Any, entries: dict[str, dict], form: str = "auto") -> tuple[dict, list[str]]:
    from core import budget as budget_mod

    per, warnings = {}, []
    for name, e in entries.items():
        # The flash holds the model file and, for "change_linear", the reference's float weights in model_config.h.
        flash = e["bytes"] + int(e.get("linear_reference_bytes") or 0)
        b = budget_mod.estimate(spec, model_bytes=flash, arena_bytes=e.get("arena_bytes") or 0, dtype=name, form=form)
        d = b.to_dict() if hasattr(b, "to_dict") else asdict(b)
        per[name] = d
        if d.get("warnings"):
            # Over budget still exports (a bigger board may take it); say what to change first.
            advice = f" First try: {d['advice'][0]}" if d.get("advice") else ""
            warnings.extend(f"{name}: {w}" for w in d["warnings"])
            warnings[-1] += advice
    board = getattr(budget_mod, "XIAO_ESP32S3", None)
    board_d = board.to_dict() if hasattr(board, "to_dict") else (asdict(board) if board is not None else {})
    return {"board": board_d, "per_dtype": per}, warnings


# ----------------------------------------------------------------------------- export


def guard_out_dir(out_dir: Path, run_dir: Path | None, force: bool = False) -> Path:
    """Refuse to replace a folder that is not an export (core.files.prepare_out_dir, the rule every command
    writing a folder follows): the export swaps the whole directory. Returns the resolved folder."""
    from core.files import prepare_out_dir

    out = out_dir.resolve()
    if run_dir is not None and out == Path(run_dir).resolve():
        raise StudioError("The export folder is the run folder itself.", "Choose another --out folder, e.g. RUN_DIR/export.")
    return prepare_out_dir(out_dir, ("export",), force=force)


def export_run(run: Any, out_dir: str | Path, int8: bool = True, progress: Progress | None = None,
               force: bool = False, form: str = "auto") -> ExportReport:
    """Convert, verify on TFLM, and write the export directory atomically; returns the report.

    ``run``: a ``core.runs.Run`` or its directory. ``progress(fraction, message)`` is called as the
    steps go. ``form``: auto|step|unrolled|fused (``core.steploop.resolve_form``). Raises StudioError (and writes nothing) on any failure a user can act on.
    """
    t0 = time.perf_counter()
    say: Progress = progress or (lambda f, m: None)
    run = _load(run)
    out_dir = guard_out_dir(Path(out_dir), getattr(run, "run_dir", None), force=force)
    _check_run(run, int8)
    spec = run.model_spec
    from core import steploop

    form, form_reason = steploop.resolve_form(spec, form)
    step_form = form == "step"
    targets = list(run.window_spec.targets)
    # The sample windows (what the bundle, the emulator and the Device step replay) first, then every
    # test window the exported models are scored on against the actual values.
    X_sample = np.asarray(run.samples["X_test"], np.float32)[: int(_cfg("verify_windows"))]
    y_host_scaled = np.asarray(run.samples["y_host"], np.float32)[: len(X_sample)]
    # Unscaled in float64: a target near 1e6 has float32 steps of 0.06, larger than a good model's error.
    y_host = run.scaler.inverse(y_host_scaled.astype(np.float64), targets)
    sset = scoring_set(run)
    separate = sset.whole
    X = np.ascontiguousarray(np.concatenate([X_sample, sset.X]) if separate else X_sample, dtype=np.float32)
    scored = slice(len(X_sample), len(X)) if separate else slice(0, len(X_sample))
    y_host_all = np.concatenate([y_host, sset.y_host]) if separate else y_host
    span = _target_range(run, y_host)
    use_tflm = tflm_available()
    timeout = float(_cfg("verify_timeout_s"))
    warnings: list[str] = []
    if not use_tflm:
        warnings.append("tflite-micro is not installed on this machine (it is published for Linux x86-64 only): the "
                        "models were checked with TensorFlow Lite's interpreter instead, and the arena was not measured.")

    jobdir = Path(tempfile.mkdtemp(prefix="fs-export-"))
    try:
        status = _convert(run, jobdir, int8, say, form)
        if "keras2_max_abs_err_scaled" in status:
            k2 = float(status["keras2_max_abs_err_scaled"])
            if k2 > float(_cfg("float_tolerance")):
                raise StudioError(f"The export model disagrees with the trained model before conversion "
                                  f"(max {k2:.3g} in scaled units).", "Train the run again; its weights do not fit the export graph.")
        entries: dict[str, dict] = {}
        outputs: dict[str, np.ndarray] = {}
        dtypes = ["float32", "int8"] if int8 else ["float32"]

        step_extra: dict[str, dict] = {}

        def check(name: str) -> tuple[np.ndarray, dict | None]:
            info = status[name]
            path = jobdir / MODEL_FILES[name]
            if step_form:
                # The firmware's loop over each window; its output is already dequantized (scaled float).
                y, arena, extra = steploop.verify(path, X, info["step_layout"], timeout, use_tflm)
                step_extra[name] = extra
                return y, arena
            Xin = quantize(X, info["inputs"][0]["quant"]) if name == "int8" else X
            if use_tflm:
                return _verify_tflm(path, Xin, timeout)
            return verify_tflite(path, Xin, timeout), None

        say(0.35, f"Checking {' and '.join(dtypes)} on the " + ("TFLM runtime (finding the arena)" if use_tflm else
            "TFLite interpreter") + f" and scoring {len(X) - scored.start:,} test windows against the actual values")
        # One runtime process per dtype, side by side (2 cores; each runs its windows single-threaded).
        with ThreadPoolExecutor(max_workers=len(dtypes)) as pool:
            futures = {name: pool.submit(check, name) for name in dtypes}
            results = {name: futures[name].result() for name in dtypes}
        for i, name in enumerate(dtypes):
            info = status[name]
            path = jobdir / MODEL_FILES[name]
            in_q, out_q = info["inputs"][0]["quant"], info["outputs"][0]["quant"]
            raw, arena = results[name]
            raw = raw.reshape(len(X), spec.horizon, spec.n_targets)
            y_scaled = dequantize(raw, out_q) if name == "int8" and not step_form else raw.astype(np.float32)
            outside = outside_graph(spec, name, form)
            if outside:
                y_scaled = add_last_value(spec, y_scaled, X)
            y = run.scaler.inverse(y_scaled.astype(np.float64), targets)
            if name == "float32" and not np.all(np.isfinite(y)):
                raise StudioError("The float32 model gives NaN or infinite forecasts on the board's runtime.",
                                  "Nothing was exported. Train the model again (its weights may have diverged: "
                                  "try a lower learning rate).")
            outputs[name] = y
            err = _errors(y, y_host_all)  # every window run: the samples and the whole scored test part
            entries[name] = {
                "path": MODEL_FILES[name], "bytes": path.stat().st_size, "ops": info["ops"],
                "arena_bytes": arena["reported"] if arena else None,
                "arena_measured_bytes": arena["measured"] if arena else None,
                "arena_margin_bytes": arena["margin"] if arena else None,
                "arena_check": ({"reported_runs": arena["reported_runs"], "below_bytes": arena["below_checked"],
                                 "below_fails": arena["below_fails"], "recorder_bytes": arena["recorded"]} if arena else None),
                **err,
                "error_fraction_of_range": float(np.max(np.asarray(err["max_abs_err_per_target"]) / span)) if len(X) else 0.0,
                "input_quant": in_q if name == "int8" else None,
                "output_quant": out_q if name == "int8" else None,
                "input_shape": info["inputs"][0]["shape"], "output_shape": info["outputs"][0]["shape"],
                "convert_seconds": info.get("convert_s"),
                # The graph outputs the change; the firmware adds the reference in float (core.export.outside):
                # each step's reference row, plus (row a - row b) for the change from last value and last season.
                "residual_outside": outside,
                "reference_rows": list(reference_rows(spec)) if outside and not linear_outside(spec) else None,
                "drift_rows": list(drift_rows(spec)) if outside and drift_rows(spec) else None,
                # "change_linear": the firmware adds the fitted linear reference (the model's linear_weights and
                # linear_bias, summed in double: core.linear_reference.reference_values); the check above added it.
                "reference": "linear" if outside and linear_outside(spec) else ("rows" if outside else None),
                # Its flash: kLinearWeight and kLinearBias, float32 constants beside the model file.
                "linear_reference_bytes": (4 * (len(spec.linear_weights) + len(spec.linear_bias))
                                           if outside and linear_outside(spec) else None),
            }
            if step_form:
                entries[name]["step_layout"] = info["step_layout"]
            say(0.35 + 0.55 * (i + 1) / len(dtypes), f"{name}: max error {_fmt(err['max_abs_err'])} against the host model")
        f_frac = entries["float32"]["error_fraction_of_range"]
        if f_frac > float(_cfg("float_tolerance")):
            raise StudioError(f"The float32 model on the board's runtime differs from the trained model by "
                              f"{entries['float32']['max_abs_err']:.4g} (that is {f_frac:.2e} of the target's range; "
                              f"the limit is {float(_cfg('float_tolerance')):.0e}).",
                              "Nothing was exported. Report this with the run; another model kind usually converts exactly.")
        if int8 and entries["int8"]["error_fraction_of_range"] > float(_cfg("int8_warn_fraction")):
            warnings.append(f"int8 differs from the trained model by up to {entries['int8']['max_abs_err']:.4g} "
                            f"({entries['int8']['error_fraction_of_range']:.1%} of the target's range).")
        accuracy: dict = {}
        if sset.y_true is not None:
            forecasts = {"host": sset.y_host, **{d: outputs[d][scored] for d in dtypes}, **sset.baselines}
            accuracy = score_against_truth(sset.y_true, forecasts, targets, sset.mase_scale, sset.total, sset.source)
        quantisation: dict = {}
        if int8:
            quantisation = dict(calibration_windows(run)[1])
            clipped = count_clipped(X[scored], entries["int8"]["input_quant"])
            quantisation.update({"clipped_inputs": clipped, "test_inputs": int(X[scored].size),
                                 "residual_add": ("the linear reference, in the firmware's code (summed in double), "
                                                  "outside every graph" if linear_outside(spec) else
                                                  "in the firmware's float code, outside the int8 graph"
                                                  if residual_outside(spec) else
                                                  "inside the graph" if spec.residual else "none")})
            share = clipped / max(1, X[scored].size)
            quantisation["summary"] = (f"{quantisation['scheme']}; {clipped:,} of {X[scored].size:,} test input values "
                                       f"({share:.2%}) fall outside its input range and clip")
            if clipped:
                warnings.append(f"int8: {clipped:,} test input values ({share:.2%}) fall outside the int8 input range "
                                "and clip on the board.")
        bundle_dtype, bundle_reason = recommend_bundle(accuracy, dtypes)
        if int8 and bundle_dtype != "int8":
            warnings.append(f"the firmware bundle ships float32: {bundle_reason}.")
        if sset.y_true is not None and loses_to_last_value(accuracy, bundle_dtype):
            warnings.append(f"the {bundle_dtype} model forecasts the test windows worse than repeating the last value.")
        say(0.92, "Estimating the device budget")
        budget, budget_warnings = _budget(spec, entries, form)
        warnings += budget_warnings
        forms = steploop.form_report(spec, form, form_reason, entries, step_extra)
        clipped_state = (forms.get("int8_state_clipped") or {}).get("values")
        if clipped_state:
            warnings.append(f"int8 step loop: {clipped_state:,} state values fell outside the int8 state range and clipped "
                            "(a long window grew the LSTM cell state); the float32 bundle avoids it.")

        report = ExportReport(
            out_dir=str(out_dir), model=spec.to_dict(), model_label=spec.label, window=spec.window,
            features=spec.n_inputs, input_columns=list(run.window_spec.input_columns), horizon=spec.horizon,
            targets=targets, scaler=run.scaler.to_dict(), residual=bool(spec.residual), dtypes=entries,
            budget=budget, warnings=warnings, verified_on="tflite-micro" if use_tflm else "tflite-interpreter",
            windows_checked=int(len(X) - scored.start), run_dir=str(getattr(run, "run_dir", "")),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            accuracy=accuracy, quantisation=quantisation, bundle_dtype=bundle_dtype, bundle_reason=bundle_reason,
            recommended_dtype=bundle_dtype, recommended_reason=bundle_reason,
            form=form, form_reason=form_reason, forms=forms)
        say(0.96, "Writing the export folder")
        with atomic_dir(out_dir, "export") as tmp:
            for name in dtypes:
                shutil.copyfile(jobdir / MODEL_FILES[name], tmp / MODEL_FILES[name])
            n = len(X_sample)
            arrays = {"X": X_sample, "y_host_scaled": y_host_scaled, "y_host": y_host.astype(np.float32)}
            if "y_test" in run.samples:
                arrays["y_true"] = run.scaler.inverse(np.asarray(run.samples["y_test"][:n]), targets).astype(np.float32)
            if "t_test" in run.samples:
                arrays["t"] = np.asarray(run.samples["t_test"][:n])
            for name in BASELINE_NAMES:
                if f"base_{name}" in run.samples:
                    arrays[f"y_base_{name}"] = np.asarray(run.samples[f"base_{name}"][:n], np.float32)
            for name, y in outputs.items():
                arrays[f"y_{name}"] = y[:n].astype(np.float32)
            if "test_rows" in run.samples:  # the whole test part's rows: the Device step's live stream (issue 33)
                arrays["test_rows"] = np.asarray(run.samples["test_rows"], np.float32)
            np.savez(tmp / WINDOWS, **arrays)
            report.seconds = time.perf_counter() - t0
            (tmp / REPORT).write_text(json.dumps(report.to_dict(), indent=2))
        say(1.0, f"Exported in {report.seconds:.1f} s")
        return report
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
