"""The step-loop export form (core.steploop): GRU and SimpleRNN (and LSTM on request) exported as one time
step, looped on TFLM over every test window, the emulator running the same loop behind the protocol, and
the R push command answering what P answers for the same window. Real runs of both backends, no mocks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import StudioError
from core.models import ModelSpec
from core import steploop


# ----------------------------------------------------------------------------- choosing the form (no TF)


def _spec(kind, **kw):
    return ModelSpec(kind=kind, units=kw.pop("units", 32), window=kw.pop("window", 168), n_inputs=7, **kw).validate()


def test_auto_picks_step_for_gru_and_rnn_fused_for_lstm():
    assert steploop.resolve_form(_spec("gru"))[0] == "step"
    assert steploop.resolve_form(_spec("rnn"))[0] == "step"
    assert steploop.resolve_form(_spec("lstm"))[0] == "fused"
    assert steploop.resolve_form(_spec("lstm"), "step")[0] == "step"
    assert steploop.resolve_form(_spec("gru"), "unrolled")[0] == "unrolled"
    form, reason = steploop.resolve_form(_spec("gru"))
    assert "no GRU kernel" in reason and "168" in reason


@pytest.mark.parametrize("kind,form", [("gru", "fused"), ("rnn", "fused"), ("dense", "step"), ("dense", "fused")])
def test_impossible_forms_are_refused_with_a_fix(kind, form):
    with pytest.raises(StudioError) as e:
        steploop.resolve_form(_spec(kind), form)
    assert "--form" in str(e.value)


def test_every_target_form_runs_as_a_step_loop():
    """A seasonal change target no longer keeps the window-at-once forms (issue V): the step graph outputs the
    change and the firmware adds the seasonal reference, so auto picks the step loop for GRU and SimpleRNN
    whatever the target form, and the step form is there on request for every kind."""
    season = dict(target_form="change_season", season_period=24, horizon=8, target_input_index=(0,), n_targets=1)
    for form_name in ("change_last", "change_season", "change_both", "level"):
        for kind in ("gru", "rnn"):
            form, reason = steploop.resolve_form(_spec(kind, **{**season, "target_form": form_name}))
            assert form == "step", (kind, form_name, reason)
        for kind in ("gru", "rnn", "lstm"):
            assert steploop.resolve_form(_spec(kind, **{**season, "target_form": form_name}), "step")[0] == "step"


def test_unknown_form_is_refused():
    with pytest.raises(StudioError):
        steploop.resolve_form(_spec("gru"), "folded")


def test_compare_forms_step_is_smaller_and_independent_of_the_window():
    short, long = steploop.compare_forms(_spec("gru", window=24)), steploop.compare_forms(_spec("gru", window=168))
    for dtype in ("float32", "int8"):
        assert long["step"][dtype]["flash_bytes"] == short["step"][dtype]["flash_bytes"]
        assert long["step"][dtype]["arena_bytes"] == short["step"][dtype]["arena_bytes"]
        assert long["step"][dtype]["arena_bytes"] <= 0.1 * long["unrolled"][dtype]["arena_bytes"]
        assert long["step"][dtype]["arena_in"] == "SRAM"
    assert long["step"]["export_s"] < long["unrolled"]["export_s"]
    assert "fused" in steploop.compare_forms(_spec("lstm")) and "fused" not in long


def test_state_size_counts_every_layer():
    assert steploop.state_size(_spec("gru", layers=2)) == 64
    assert steploop.state_size(_spec("lstm", layers=2, units=8)) == 32


# ----------------------------------------------------------------------------- real exports (slow)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.export_helpers import make_run

    base = tmp_path_factory.mktemp("steploop")
    return {
        "gru_keras": make_run(base / "gru_keras", kind="gru", window=24, n_features=3, units=8, residual=True,
                              fit_epochs=3, whole_test=True, rows=500),
        "rnn_torch": make_run(base / "rnn_torch", kind="rnn", backend="torch", window=24, n_features=3, units=8,
                              layers=2, horizon=2, n_targets=2, fit_epochs=3, whole_test=True, rows=500),
        "gru_torch_w48": make_run(base / "gru_torch_w48", kind="gru", backend="torch", window=48, n_features=3,
                                  units=8, residual=True, whole_test=True, rows=500),
    }


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    from core.export import export_run

    base = tmp_path_factory.mktemp("steploop_exports")
    return {name: export_run(run, base / name) for name, run in runs.items()}


@pytest.mark.slow
def test_numpy_step_equations_match_the_trained_models(runs):
    """The step equations (what is converted) reproduce both backends' trained networks."""
    for run in runs.values():
        X = np.asarray(run.samples["X_test"], np.float32)
        y = steploop.numpy_forecast(run.model_spec, run.weights, X)
        assert np.max(np.abs(y - run.samples["y_host"])) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru_keras", "rnn_torch", "gru_torch_w48"])
def test_auto_export_is_the_step_loop_and_matches_the_host(exports, name):
    rep = exports[name]
    d = json.loads((rep.out_dir and __import__("pathlib").Path(rep.out_dir) / "report.json").read_text())
    assert d["form"] == "step" and "kernel" in d["form_reason"]
    assert d["forms"]["form"] == "step" and d["forms"]["compare"]["step"]["float32"]["source"] == "measured"
    f32, i8 = d["dtypes"]["float32"], d["dtypes"]["int8"]
    assert f32["error_fraction_of_range"] <= 1e-4  # today's float bar, the loop over every test window
    assert set(f32["ops"]) <= {"ADD", "FULLY_CONNECTED", "LOGISTIC", "MUL", "RESHAPE", "STRIDED_SLICE", "SUB",
                               "TANH", "CONCATENATION", "GATHER"}
    assert f32["step_layout"]["state_size"] == steploop.state_size(rep_spec(d))
    # int8: scored against the actual values like every int8 export; its state stays float between steps
    acc = d["accuracy"]["forecasters"]
    assert acc["int8"]["finite"] and not acc["int8"]["constant"]
    assert acc["int8"][d["accuracy"]["compared_by"]] <= 1.5 * acc["float32"][d["accuracy"]["compared_by"]] + 1e-3
    drift = d["forms"]["int8_state_drift"]
    assert not drift["grows"] and drift["after_step"][str(d["window"])]["mean"] < 0.05
    assert d["forms"]["int8_state_clipped"]["values"] == 0  # GRU/SimpleRNN states calibrated on +-1
    assert i8["arena_bytes"] < 32 * 1024 and f32["arena_bytes"] < 32 * 1024


def rep_spec(d):
    return ModelSpec.from_dict(d["model"])


@pytest.mark.slow
def test_flatbuffer_does_not_grow_with_the_window(tmp_path):
    from core.export import export_run
    from tests.export_helpers import make_run

    sizes = {}
    for w in (8, 64):
        run = make_run(tmp_path / f"run{w}", kind="gru", window=w, n_features=3, units=8, rows=300)
        rep = export_run(run, tmp_path / f"exp{w}", int8=False)
        sizes[w] = (rep.dtypes["float32"]["bytes"], rep.dtypes["float32"]["arena_bytes"])
    assert sizes[8] == sizes[64]


@pytest.mark.slow
def test_step_arena_is_a_fraction_of_the_unrolled(runs, exports, tmp_path):
    from core.export import export_run

    unrolled = export_run(runs["gru_torch_w48"], tmp_path / "unrolled", form="unrolled")
    assert unrolled.form == "unrolled"
    step = exports["gru_torch_w48"]
    for dtype in ("float32", "int8"):
        assert step.dtypes[dtype]["arena_bytes"] <= 0.25 * unrolled.dtypes[dtype]["arena_bytes"]
        assert step.dtypes[dtype]["bytes"] < unrolled.dtypes[dtype]["bytes"]
    # the same network either way: the two forms agree on TFLM
    assert abs(step.accuracy["forecasters"]["float32"]["mae"] - unrolled.accuracy["forecasters"]["float32"]["mae"]) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "int8"])
@pytest.mark.parametrize("name", ["gru_keras", "rnn_torch"])
def test_emulator_step_loop_answers_what_the_export_verified(exports, name, dtype):
    """The emulated board (step loop on TFLM behind the protocol) answers T with the export's TFLM outputs,
    and R pushes give exactly the P answer of the same window."""
    from core.board.emulator import ProtocolEngine, make_runner
    from core.firmware import load_bundle_spec

    out = exports[name].out_dir
    spec = load_bundle_spec(out, dtype)
    assert spec.form == "step"
    engine = ProtocolEngine(spec, make_runner(spec))
    lines = engine.feed(b"T\n")
    assert lines[-1] == f"FS DONE n={len(spec.windows)}"
    got = np.array([[float(v) for v in ln.split(" y=")[1].split(",")] for ln in lines[:-1]])
    with np.load(f"{out}/windows.npz") as z:
        verified = z[f"y_{dtype}"][list(spec.test_indices)].reshape(len(got), -1)
        host = z["y_host"][list(spec.test_indices)].reshape(len(got), -1)
    assert np.allclose(got, verified, rtol=1e-5, atol=1e-4)
    if dtype == "float32":
        assert np.allclose(got, host, rtol=1e-4, atol=1e-3)
    # streaming: W-1 early pushes say how many are missing; then every push equals P with that window
    rng = np.random.default_rng(1)
    W, F = spec.window, spec.features
    readings = np.concatenate([spec.windows[0], spec.windows[-1][:4]]) + rng.normal(0, 0.5, (W + 4, F)).astype(np.float32)
    for t, r in enumerate(readings):
        text = ",".join("%.6g" % v for v in r)
        answer = engine.feed(f"R {text}\n".encode())
        if t < W - 1:
            need = W - 1 - t
            assert answer == [f"FS ERR NEED {need} more reading{'' if need == 1 else 's'} needed before the first "
                              f"forecast (window {W})"]
            continue
        window = readings[t - W + 1:t + 1]
        p = engine.feed(("P " + ",".join("%.6g" % v for v in window.reshape(-1)) + "\n").encode())
        assert answer[0].split(" y=")[1] == p[0].split(" y=")[1], (answer, p)
    assert engine.feed(b"R 1\n") == [f"FS ERR BADLEN expected {F} values per reading (one per feature), got 1"]


@pytest.mark.slow
def test_window_of_one_exports_and_loops(tmp_path):
    from core.export import export_run
    from tests.export_helpers import make_run

    run = make_run(tmp_path / "run", kind="rnn", window=1, n_features=2, units=4, rows=200)
    rep = export_run(run, tmp_path / "exp", form="step")
    assert rep.form == "step" and rep.dtypes["float32"]["error_fraction_of_range"] <= 1e-4
    assert rep.forms["int8_state_clipped"]["values"] == 0
    # auto may pick either here: at one step the unrolled graph is one cell too, and the figures say why
    form, reason = steploop.resolve_form(run.model_spec)
    assert form in ("step", "unrolled") and "1-step window" in reason


@pytest.mark.slow
def test_lstm_step_option_clips_no_state_on_a_long_window(tmp_path):
    """LSTM's cell state is unbounded: its int8 state tensor is calibrated with headroom over the states
    the calibration windows reach, so a 96-step window neither clips nor drifts."""
    from core.export import export_run
    from tests.export_helpers import make_run

    run = make_run(tmp_path / "run", kind="lstm", window=96, n_features=3, units=8, rows=600, fit_epochs=2)
    rep = export_run(run, tmp_path / "exp", form="step")
    assert rep.form == "step" and rep.dtypes["float32"]["error_fraction_of_range"] <= 1e-4
    assert rep.forms["int8_state_clipped"]["values"] == 0
    assert not rep.forms["int8_state_drift"]["grows"]


@pytest.mark.slow
def test_a_seasonal_gru_at_window_144_exports_as_a_step_loop_in_sram(tmp_path):
    """Issue V: a GRU(32) with a change-from-last-season target over a 144-step window (a day of 10-minute
    readings) exports as the step loop, not unrolled (844 KB of int8 arena before), and the firmware's add-back
    of the seasonal reference gives the host's forecasts on TFLM (the export's own check, float32 and int8)."""
    from core.export import export_run
    from tests.export_helpers import make_run

    run = make_run(tmp_path / "run", kind="gru", window=144, n_features=2, units=32, rows=900, fit_epochs=2,
                   target_form="change_season", season_period=144)
    rep = export_run(run, tmp_path / "exp")
    assert rep.form == "step", rep.form_reason
    for dtype in ("float32", "int8"):
        entry = rep.dtypes[dtype]
        assert entry["residual_outside"] and entry["reference_rows"] == [0]  # one season before the one step
        assert entry["arena_bytes"] <= 64 * 1024, entry["arena_bytes"]
    assert rep.dtypes["float32"]["error_fraction_of_range"] <= 1e-4
    assert rep.dtypes["int8"]["error_fraction_of_range"] <= 0.05
