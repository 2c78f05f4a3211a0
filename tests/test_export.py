"""Export: real TFLite conversion (tf_keras in a child process) and real TFLM verification.

For LSTM, GRU, SimpleRNN and Dense runs from both backends: the files load in the TFLM runtime and
match the host within the stated errors (checked here independently of core.export, in a fresh
process with the report's own arena and quantisation); the reported arena is enough and the
measured minimum minus a few bytes is not. Then the bad inputs: constant data for int8, a corrupt or
untrained run, a folder that is not an export, a converter that crashes mid-way, an op TFLM lacks.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core import export as ex
from core.config import DEFAULTS
from core.errors import StudioError
from tests.export_helpers import make_run

ROOT = Path(__file__).resolve().parent.parent

# (kind, backend, options): every kind from both backends across the suite, with residual mode,
# several horizon steps and several targets spread over the cases.
CASES = {
    "lstm-keras-residual": ("lstm", "keras", dict(residual=True)),
    "lstm-torch-h3-t2": ("lstm", "torch", dict(horizon=3, n_targets=2)),
    "gru-keras": ("gru", "keras", {}),
    "gru-torch-residual": ("gru", "torch", dict(residual=True)),
    "rnn-keras-h2": ("rnn", "keras", dict(horizon=2)),
    "rnn-torch": ("rnn", "torch", {}),
    # The default form for GRU/SimpleRNN is the step loop (core.steploop); the unrolled one stays available.
    "gru-keras-unrolled": ("gru", "keras", dict(form="unrolled")),
    "dense-torch-residual": ("dense", "torch", dict(residual=True)),
    # Seasonal change target (issue 21): in the fused LSTM's float32 graph the add-back from one season earlier
    # is inside (horizon 3 within the season of 6 is a slice); in int8, and in every step-loop graph (issue V:
    # GRU/SimpleRNN run as a step loop whatever the target form), the graph forecasts the change and the
    # firmware adds the seasonal reference (horizon 8 past the season repeats rows).
    "lstm-keras-season-h3": ("lstm", "keras", dict(target_form="change_season", season_period=6, horizon=3)),
    "gru-torch-season-h8-t2": ("gru", "torch", dict(target_form="change_season", season_period=6, horizon=8,
                                                    n_targets=2)),
    # Change from last value and last season: three rows per step (the season's row, plus the last row minus
    # the row a season before it), added by the firmware in float like the others.
    "rnn-torch-both-h3": ("rnn", "torch", dict(target_form="change_both", season_period=6, horizon=3)),
    "gru-keras-both-unrolled": ("gru", "keras", dict(target_form="change_both", season_period=6, form="unrolled")),
    # Inputs relative to the window's last value (issue 34): a SUB inside the graph before the first layer, in
    # float32 and int8; the add-back is unchanged (outside in int8). No step loop: auto picks unrolled for GRU.
    "lstm-keras-relative": ("lstm", "keras", dict(residual=True, relative=True)),
    "gru-torch-relative-season": ("gru", "torch", dict(target_form="change_season", season_period=6, relative=True,
                                                       horizon=2, form="unrolled")),
}

_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    path, arena, windows = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        interp = runtime.Interpreter.from_bytes(open(path, "rb").read(), arena_size=arena)
    except Exception as e:
        print(json.dumps({"ok": False, "error": str(e)})); sys.exit(0)
    X = np.load(windows)
    out = []
    layout = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    def q(v, p):  # float -> int8 like the firmware: round half away from zero, clamp
        if p is None:
            return v.astype(np.float32)
        r = v.astype(np.float32) / np.float32(p["scale"])
        return np.clip(np.trunc(r + np.where(r >= 0, 0.5, -0.5)) + p["zero_point"], -128, 127).astype(np.int8)
    def dq(v, p):
        return np.asarray(v, np.float32) if p is None else (np.asarray(v).astype(np.float32) - p["zero_point"]) * p["scale"]
    for x in X:
        if layout is None:
            interp.reset()
            interp.set_input(x[None], 0)
            interp.invoke()
            out.append(np.array(interp.get_output(0)).reshape(-1).tolist())
            continue
        # The step-loop form: one invoke per time step, the state carried in float between steps.
        state = np.zeros((1, layout["state_size"]), np.float32)
        for t in range(len(x)):
            interp.set_input(q(x[t:t + 1], layout["x_quant"]), layout["x_input"])
            interp.set_input(q(state, layout["state_in_quant"]), layout["state_input"])
            interp.invoke()
            state = dq(interp.get_output(layout["state_output"]), layout["state_out_quant"]).reshape(state.shape)
        out.append(dq(interp.get_output(layout["y_output"]), layout["y_quant"]).reshape(-1).tolist())
    print(json.dumps({"ok": True, "y": out}))
""")


def tflm_check(path: Path, arena: int, X: np.ndarray, tmp: Path, layout: dict | None = None) -> dict:
    """Run windows on TFLM in a fresh process; a crash (TFLM segfaults on some small arenas) is a failure.
    ``layout``: a step-loop model's tensor layout; the windows are then looped step by step."""
    windows = tmp / f"w{time.monotonic_ns()}.npy"
    np.save(windows, X)
    res = subprocess.run([sys.executable, "-c", _CHECK, str(path), str(arena), str(windows)]
                         + ([json.dumps(layout)] if layout else []),
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        return {"ok": False, "error": f"crashed rc={res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Each case exported once (lazily), shared by the tests that look at it."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            kind, backend, opts = CASES[name]
            opts = dict(opts)
            form = opts.pop("form", "auto")
            base = tmp_path_factory.mktemp(name)
            run = make_run(base / "run", kind=kind, backend=backend, **opts)
            steps: list[tuple[float, str]] = []
            report = ex.export_run(run, base / "export", int8=True, progress=lambda f, m: steps.append((f, m)),
                                   form=form)
            cache[name] = (run, report, base / "export", steps)
        return cache[name]

    return get


# ------------------------------------------------------------------------------ fast


def test_quantize_round_trip_and_clipping():
    q = {"scale": 0.5, "zero_point": -10}
    x = np.array([-100.0, -5.0, 0.0, 0.26, 10.0, 100.0], np.float32)
    got = ex.quantize(x, q)
    assert got.dtype == np.int8
    assert got.tolist() == [-128, -20, -10, -9, 10, 127]
    np.testing.assert_allclose(ex.dequantize(got[1:5], q), [-5.0, 0.0, 0.5, 10.0])


def test_arena_margin_is_stated_and_aligned():
    total, margin = ex.arena_with_margin(3760)
    assert total % 16 == 0 and total - margin == 3760
    assert margin >= DEFAULTS["export"]["arena_margin_bytes"]
    big, big_margin = ex.arena_with_margin(200_000)
    assert big_margin >= 0.1 * 200_000


def test_refuses_to_replace_a_folder_that_is_not_an_export(tmp_path):
    keep = tmp_path / "documents"
    keep.mkdir()
    (keep / "thesis.txt").write_text("precious")
    with pytest.raises(StudioError, match="not an export"):
        ex.guard_out_dir(keep, None)
    with pytest.raises(StudioError, match="run folder itself"):
        ex.guard_out_dir(tmp_path, tmp_path)
    ex.guard_out_dir(tmp_path / "new", None)  # a new folder is fine


def test_int8_on_constant_data_is_refused_with_a_reason(tmp_path):
    run = make_run(tmp_path / "run", constant=True)
    with pytest.raises(StudioError) as e:
        ex.export_run(run, tmp_path / "export", int8=True)
    assert "int8" in str(e.value) and "constant" in str(e.value) and "float32 only" in str(e.value)
    assert not (tmp_path / "export").exists()


def test_missing_and_corrupt_runs_are_refused(tmp_path):
    with pytest.raises(StudioError, match="No trained run"):
        ex.export_run(tmp_path / "nothing-here", tmp_path / "export")
    run = make_run(tmp_path / "run")
    weights = tmp_path / "run" / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(StudioError, match="damaged"):
        ex.export_run(tmp_path / "run", tmp_path / "export")
    run.weights = []
    with pytest.raises(StudioError, match="no trained weights"):
        ex.export_run(run, tmp_path / "export")
    with pytest.raises(StudioError, match="no trained run"):
        ex.export_run(object(), tmp_path / "export")
    assert not (tmp_path / "export").exists()


# ------------------------------------------------------------------------------ real conversions


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_export_matches_host_on_tflm(exports, name, tmp_path):
    run, report, out, steps = exports(name)
    kind, backend, opts = CASES[name]
    spec = run.model_spec
    assert sorted(p.name for p in out.iterdir()) == [".forecast-studio-owner", "model_float32.tflite",
                                                     "model_int8.tflite", "report.json", "windows.npz"]
    saved = json.loads((out / "report.json").read_text())
    for key in ("float32", "int8", "budget", "warnings", "model", "window", "features", "horizon", "targets",
                "scaler", "residual"):
        assert key in saved, key
    assert saved["window"] == spec.window and saved["features"] == spec.n_inputs and saved["horizon"] == spec.horizon
    assert saved["targets"] == list(run.window_spec.targets) and saved["residual"] == spec.residual
    assert saved["verified_on"] == "tflite-micro"
    assert [f for f, _ in steps] == sorted(f for f, _ in steps) and steps[-1][0] == 1.0

    # The op list says how each kind reached the board: LSTM fused, GRU/SimpleRNN as the step loop (or
    # unrolled on request), and report.json says which form and why.
    ops = set(saved["float32"]["ops"])
    # Every target form runs as a step loop for GRU/SimpleRNN (the firmware adds a seasonal reference).
    seasonal = opts.get("target_form") in ("change_season", "change_both")
    expected_form = opts.get("form") or {"lstm": "fused", "dense": "unrolled"}.get(kind, "step")
    assert saved["form"] == expected_form and saved["form_reason"], saved.get("form")
    if kind == "lstm":
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops
    else:
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops and "WHILE" not in ops
    step_form = saved["form"] == "step"
    assert saved["int8"]["input_quant"]["scale"] > 0 and saved["float32"]["input_quant"] is None

    targets = list(run.window_spec.targets)
    X = np.asarray(run.samples["X_test"], np.float32)[: DEFAULTS["export"]["verify_windows"]]
    y_host = run.scaler.inverse(run.samples["y_host"][: len(X)], targets)
    span = np.ptp(np.concatenate([y_host.reshape(-1, len(targets)),
                                  run.scaler.inverse(run.samples["y_test"][: len(X)], targets).reshape(-1, len(targets))]),
                  axis=0)
    for dtype in ("float32", "int8"):
        entry = saved[dtype]
        path = out / entry["path"]
        assert path.stat().st_size == entry["bytes"] > 0
        # Independently of core.export: the file on TFLM with the report's arena and quantisation.
        layout = entry.get("step_layout") if step_form else None
        Xin = ex.quantize(X, entry["input_quant"]) if dtype == "int8" and not step_form else X
        res = tflm_check(path, entry["arena_bytes"], Xin, tmp_path, layout)
        assert res["ok"], res
        raw = np.asarray(res["y"]).reshape(len(X), spec.horizon, spec.n_targets)
        y_scaled = ex.dequantize(raw, entry["output_quant"]) if dtype == "int8" and not step_form else raw
        # The graph forecasts the change and the reference is the firmware's to add: in int8 (issue L), and in
        # every step-loop graph of a seasonal form (issue V); never elsewhere.
        assert bool(entry.get("residual_outside")) == (spec.residual and (dtype == "int8" or (step_form and seasonal)))
        if entry.get("residual_outside"):
            # The reference: the last value, or for a seasonal change target the same phase one season before
            # each step (issue 21), plus for change_both the last row minus the row a season before it.
            idx = list(spec.target_input_index)
            if seasonal:
                p, w = spec.season_period, spec.window
                rows = [w - p + (k % p) for k in range(spec.horizon)]
            else:
                rows = [spec.window - 1] * spec.horizon
            assert entry["reference_rows"] == rows
            ref = X[:, rows][:, :, idx]
            if spec.target_form == "change_both":
                a, b = spec.window - 1, spec.window - 1 - spec.season_period
                assert entry["drift_rows"] == [a, b]
                ref = ref + (X[:, a, idx] - X[:, b, idx])[:, None, :]
            else:
                assert entry.get("drift_rows") is None
            y_scaled = y_scaled + ref
        y = run.scaler.inverse(y_scaled, targets)
        err = np.abs(y - y_host)
        # Two float32 unit-in-the-last-place steps of the forecasts' size: the report and this check inverse-scale
        # in a different order, so an error that is itself one rounding step can read one step apart.
        ulp = max(1e-6, 2 * float(np.spacing(np.float32(np.abs(y_host).max()))))
        assert entry["max_abs_err"] == pytest.approx(float(err.max()), rel=1e-3, abs=ulp)
        assert entry["mean_abs_err"] == pytest.approx(float(err.mean()), rel=1e-3, abs=ulp)
        limit = DEFAULTS["export"]["float_tolerance"] if dtype == "float32" else 0.25
        assert np.all(err.reshape(-1, len(targets)).max(axis=0) <= limit * span), (dtype, err.max(), span)
        # The arena: the reported figure works (above) and the measured minimum less a little does not.
        assert entry["arena_bytes"] == entry["arena_measured_bytes"] + entry["arena_margin_bytes"]
        assert entry["arena_margin_bytes"] >= DEFAULTS["export"]["arena_margin_bytes"]
        below = tflm_check(path, entry["arena_measured_bytes"] - 32, Xin[:1], tmp_path, layout)
        assert not below["ok"], "the arena figure is not the minimum"
        assert entry["arena_check"]["below_fails"] and entry["arena_check"]["reported_runs"]

    with np.load(out / "windows.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["X"], X)
        np.testing.assert_allclose(z["y_host"], y_host, rtol=1e-6)
        assert z["y_float32"].shape == z["y_int8"].shape == y_host.shape

    budget = saved["budget"]["per_dtype"]
    assert set(budget) == {"float32", "int8"}
    for dtype, b in budget.items():
        assert b["measured"] and b["model_bytes"] == saved[dtype]["bytes"] and b["arena_bytes"] == saved[dtype]["arena_bytes"]
        assert b["latency_ms"] > 0 and "2024" in b["latency_basis"]
    assert saved["budget"]["board"]["name"] == "Seeed XIAO ESP32S3"
    assert ex.load_report(out).dtypes["int8"]["bytes"] == saved["int8"]["bytes"]


@pytest.mark.slow
def test_float32_only_export_and_replacing_an_earlier_export(exports, tmp_path):
    run, _, out, _ = exports("gru-keras")
    again = tmp_path / "again"
    report = ex.export_run(run, again, int8=False)
    assert sorted(p.name for p in again.iterdir()) == [".forecast-studio-owner", "model_float32.tflite", "report.json",
                                                       "windows.npz"]
    assert list(report.dtypes) == ["float32"] and "int8" not in json.loads((again / "report.json").read_text())
    # An earlier export is replaced as a whole, and no temporary folders are left beside it.
    report = ex.export_run(run, again, int8=True)
    assert (again / "model_int8.tflite").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["again"]


def _children(pattern: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and pattern in cmd:
            pids.append(int(p.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the converter process through /proc")
def test_a_crashing_converter_becomes_a_message_and_writes_nothing(tmp_path):
    """A real SIGSEGV in the converter process (as int8 calibration has produced) must not reach the studio."""
    run = make_run(tmp_path / "run")
    out = tmp_path / "export"
    result: dict = {}

    def go():
        try:
            ex.export_run(run, out, int8=True)
        except StudioError as e:
            result["error"] = e

    t = threading.Thread(target=go)
    t.start()
    deadline = time.time() + 60
    pids: list[int] = []
    while time.time() < deadline and not pids:
        pids = _children("core.export.worker convert")
        time.sleep(0.05)
    assert pids, "the converter process never started"
    os.kill(pids[0], signal.SIGSEGV)
    t.join(120)
    assert "error" in result
    msg = str(result["error"])
    assert "crashed (SIGSEGV)" in msg and "converter" in msg
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.slow
def test_a_crashing_tflm_probe_is_survived(exports):
    """TFLM segfaults on some too-small arenas; the probe server restarts and answers the next question."""
    _, report, out, _ = exports("lstm-keras-residual")
    with ex.TflmRuntime(out / "model_float32.tflite") as rt:
        crashed_or_failed, _ = rt.allocates(256)
        assert not crashed_or_failed
        ok, _ = rt.allocates(report.dtypes["float32"]["arena_bytes"])
        assert ok
        assert rt.recorded_bytes() > 0


@pytest.mark.slow
def test_an_op_tflm_lacks_fails_with_its_name(tmp_path):
    code = textwrap.dedent("""
        import sys, tensorflow as tf
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def top2(x):
            return tf.math.top_k(x, k=2).values
        open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_concrete_functions([top2.get_concrete_function()]).convert())
    """)
    path = tmp_path / "topk.tflite"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=300,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    with ex.TflmRuntime(path) as rt:
        with pytest.raises(StudioError) as e:
            ex.find_arena(rt)
    assert "TOPK_V2" in str(e.value) and "TensorFlow Lite Micro" in str(e.value)


@pytest.mark.slow
def test_tflite_fallback_matches_tflm(exports):
    """Where tflite-micro is missing, TFLite's interpreter checks the same files to the same numbers."""
    run, report, out, _ = exports("rnn-torch")
    X = np.asarray(run.samples["X_test"], np.float32)[:8]
    assert report.form == "step"
    from core import steploop

    raw, arena, _ = steploop.verify(out / "model_float32.tflite", X, report.dtypes["float32"]["step_layout"],
                                    timeout=300, use_tflm=False)
    assert arena is None
    with np.load(out / "windows.npz") as z:
        host = z["y_host_scaled"][:8].reshape(raw.shape)
    np.testing.assert_allclose(raw, host, atol=1e-5)
