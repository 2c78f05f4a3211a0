"""Issue 34, item 2 (its additive part): inputs relative to the window's last value. A level that leaves the
training range (a trend, a random walk) must look to the network like any level it trained on; the model still
adds the level back, in the graph (Keras 3, tf_keras for export, PyTorch) so export, int8 and Edge Impulse follow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.defaults import default_config
from core.errors import StudioError
from core.models import ModelSpec


def _spec(**kw) -> ModelSpec:
    base = dict(kind="lstm", units=8, window=6, n_inputs=3, horizon=2, n_targets=1, target_input_index=(1,),
                target_form="change_last", relative=True)
    return ModelSpec(**{**base, **kw}).validate()


@pytest.mark.parametrize("form", ["change_last", "change_both"])
def test_the_three_graphs_agree_and_a_level_shift_only_shifts_the_forecast(form):
    import torch

    from core.models import build_keras, build_tf_keras, build_torch, canonical_weights, load_canonical

    spec = _spec(target_form=form, season_period=2 if form == "change_both" else 0)
    keras_model = build_keras(spec)
    out = keras_model.get_layer("output")  # a seasonal form starts at zero output: give it weights to show
    out.set_weights([np.random.default_rng(1).normal(0, 0.5, w.shape).astype(np.float32) for w in out.get_weights()])
    x = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    y = np.asarray(keras_model(x))
    twin = load_canonical(build_torch(spec), canonical_weights(keras_model))
    assert np.abs(twin(torch.from_numpy(x)).detach().numpy() - y).max() < 1e-5
    export = load_canonical(build_tf_keras(spec, batch_size=None), canonical_weights(keras_model))
    assert np.abs(np.asarray(export(x)) - y).max() < 1e-5
    # The target column 40 units higher (far outside anything seen): the network reads the same window, the
    # forecast is the same change from a level 40 higher. The other inputs are read as they are.
    shifted = x.copy()
    shifted[:, :, 1] += 40.0
    assert np.abs(np.asarray(keras_model(shifted)) - (y + 40.0)).max() < 1e-4
    other = x.copy()
    other[:, :, 0] += 1.0
    assert np.abs(np.asarray(keras_model(other)) - y).max() > 1e-6


def test_relative_inputs_need_a_change_form_and_no_step_loop():
    from core.steploop import resolve_form

    from core.windows import WindowSpec

    with pytest.raises(StudioError, match="need a change target"):
        ModelSpec.for_windows(WindowSpec(targets=("y",), features=("y",), window=6), target_form="level", relative=True)
    gru = _spec(kind="gru")
    with pytest.raises(StudioError, match="step loop cannot export"):
        resolve_form(gru, "step")
    assert resolve_form(gru, "auto")[0] == "unrolled"
    assert resolve_form(_spec(kind="gru", relative=False), "auto")[0] == "step"
    # saved specs from before the field read as absolute inputs
    saved = _spec().to_dict()
    saved.pop("relative")
    assert ModelSpec.from_dict(saved).relative is False


def _daily(values, start="2020-01-01") -> Dataset:
    frame = pd.DataFrame({"y": values}, index=pd.date_range(start, periods=len(values), freq="D", name="time"))
    return Dataset(name="s", frame=frame, freq="D")


def test_the_default_reads_relative_inputs_where_the_level_moves_and_absolute_ones_where_it_does_not():
    rng = np.random.default_rng(3)
    # A geometric random walk whose validation part stays inside the training range (as bench_quality_shapes'
    # walk): only the unit-root test can tell that the test part will leave it.
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    cfg = default_config(_daily(walk), "y")
    assert cfg.model_options["relative"] is True and cfg.model_spec().relative
    assert "random walk" in cfg.reasons["relative"] or "outside its training range" in cfg.reasons["relative"]
    # a level spec from these defaults (the older --no-residual) drops it instead of failing
    assert cfg.model_spec(residual=False).relative is False
    t = np.arange(800)
    season = 10 + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.5, 800)
    flat = default_config(_daily(season), "y")
    assert flat.model_options["relative"] is False and "relative" not in flat.reasons
    # a seasonal series keeps absolute inputs even when its trend leaves the training range: there relative
    # inputs did not pay (bench_quality_shapes' subsidies and souvenir at h=12)
    assert default_config(_daily(season + 0.05 * t), "y").model_options["relative"] is False
    trend = default_config(_daily(10 + 0.05 * t + rng.normal(0, 0.5, 800)), "y")
    assert trend.model_options["relative"] is True, trend.seasonality
    assert "outside its training range" in trend.reasons["relative"]


def test_the_model_page_preselects_relative_inputs_where_the_level_moves_and_the_user_can_turn_them_off(tmp_path,
                                                                                                          monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.windows import make_windows
    from tests.test_search import MODEL_PAGE

    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 800)))
    ds = _daily(walk)
    cfg = default_config(ds, "y")
    at = AppTest.from_file(MODEL_PAGE, default_timeout=120)
    at.session_state["fs.dataset"] = ds
    at.session_state["fs.windows"] = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    at.run()
    assert not at.exception, at.exception
    assert at.checkbox(key="model.relative").value is True and at.session_state["fs.model_spec"].relative
    at.checkbox(key="model.relative").uncheck().run()
    assert at.session_state["fs.model_spec"].relative is False
    # a level model has nothing to be relative to: the box is off in effect and disabled
    at.checkbox(key="model.relative").check().run()
    at.selectbox(key="model.target_form").select("level").run()
    assert not at.exception, at.exception
    assert at.session_state["fs.model_spec"].relative is False and at.checkbox(key="model.relative").disabled


@pytest.mark.slow
def test_a_relative_model_on_the_emulated_board_answers_as_the_host_in_float32_and_int8(tmp_path):
    """The whole board path of a relative model: export (the int8 graph's change only, the last value added in the
    firmware's float code), bundle spec, the emulator's T self-test: every window within the report's error."""
    import serial

    from core.board.emulator import Emulator
    from core.export import export_run
    from tests.export_helpers import make_run
    from tests.test_emulator import _lines, _result_values

    run = make_run(tmp_path / "run", kind="lstm", window=6, n_features=3, units=8, horizon=2, residual=True,
                   relative=True)
    export_run(run, tmp_path / "export")
    import json

    report = json.loads((tmp_path / "export" / "report.json").read_text())
    assert report["int8"]["residual_outside"] and not report["float32"].get("residual_outside")
    for dtype in ("float32", "int8"):
        tolerance = report[dtype]["max_abs_err"] * 1.05 + 1e-5
        with Emulator(tmp_path / "export", dtype=dtype) as emu, serial.Serial(emu.path, 115200, timeout=0.2) as port:
            _lines(port, 1)
            port.write(b"T\n")
            lines = _lines(port, len(emu.spec.windows) + 1)
            assert lines[-1] == f"FS DONE n={len(emu.spec.windows)}"
            board = np.stack([_result_values(line) for line in lines[:-1]])
            host = emu.spec.host_predictions.reshape(len(board), -1)
            assert np.max(np.abs(board - host)) <= tolerance, dtype
