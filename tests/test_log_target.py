"""Issue 34, item 2 (its multiplicative part): the log form of a target. The target (and its input column) enters
the scaler as log(value), the forecast leaves through exp(): on the host (metrics, the run's predictions), in the
firmware (fs_protocol.cpp, compiled here with g++) and in the emulator, the same float32 in the same order. A value
of 0 or below is refused with its column and row (training) or an FS ERR line (the board)."""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.board.emulator import ProtocolEngine, TflmRunner
from core.dataset import Dataset
from core.defaults import choose_log, default_config
from core.errors import StudioError
from core.firmware import load_bundle_spec, render_bundle
from core.windows import Scaler, SplitSpec, WindowSpec, make_windows
from tests.firmware_support import SLICE_EXPORT

HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"
GXX = shutil.which("g++")


def _monthly(n: int = 144, multiplicative: bool = True, seed: int = 0) -> Dataset:
    """Airline-like: a growing trend times a season whose swing grows with it; or a trend plus a fixed swing."""
    t = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(seed)
    season = np.sin(2 * np.pi * t / 12) + 0.5 * np.cos(4 * np.pi * t / 12)
    if multiplicative:  # growing 1% a step, the season's swing a share of the level
        y = 100 * np.exp(0.01 * t) * (1 + 0.3 * season) * np.exp(rng.normal(0, 0.01, n))
    else:
        y = 100 + 2 * t + 40 * season + rng.normal(0, 2, n)
    frame = pd.DataFrame({"y": y}, index=pd.date_range("2000-01-01", periods=n, freq="MS", name="month"))
    return Dataset(name="m.csv", frame=frame, freq="MS", time_col="month", fingerprint=f"log-{n}-{multiplicative}-{seed}")


# ------------------------------------------------------------------------------------------------- host


def test_the_scaler_holds_the_log_and_gives_levels_back():
    values = np.array([1.0, 10.0, 100.0, 1000.0])
    s = Scaler.fit({"y": values, "x": values}, "minmax", log=("y",))
    assert s.log == ("y",)
    np.testing.assert_allclose(s.transform(values[:, None], ["y"])[:, 0], [0, 1 / 3, 2 / 3, 1], atol=1e-12)
    np.testing.assert_allclose(s.transform(values[:, None], ["x"])[:, 0], (values - 1) / 999)
    np.testing.assert_allclose(s.inverse(s.transform(values[:, None], ["y"]), ["y"])[:, 0], values, rtol=1e-12)
    # one scaled unit is the whole training range in units, for a log column as for a plain one
    np.testing.assert_allclose(s.unit_span(["y", "x"]), [999.0, 999.0])
    assert Scaler.from_dict(s.to_dict()).log == ("y",)


def test_saved_specs_and_scalers_without_the_flag_read_as_additive():
    spec = WindowSpec(targets=("y",), features=("y",), window=12)
    assert "log" not in spec.to_dict() and WindowSpec.from_dict(spec.to_dict()).log is False
    assert WindowSpec.from_dict({**spec.to_dict(), "log": True}).log_columns == ("y",)
    old = {"kind": "minmax", "columns": ["y"], "center": [0.0], "scale": [1.0]}
    assert Scaler.from_dict(old).log == () and "log" not in Scaler.from_dict(old).to_dict()


def test_the_host_forecast_is_exp_of_the_unscaled_network_output(tmp_path):
    """Round trip: trained with log on a positive multiplicative series, the run's test predictions (data units)
    are exp(network output x scale + center), and its metrics are scored on those levels."""
    from core.models import ModelSpec
    from core.runs import load_run
    from core.training import TrainConfig, train

    ds = _monthly()
    spec = WindowSpec(targets=("y",), features=("y",), window=24, horizon=2, log=True)
    windows = make_windows(ds, spec, SplitSpec(0.7, 0.15))
    assert windows.scaler.log == ("y",)
    # the scaled series is the scaled log of the data
    np.testing.assert_allclose(windows.target_values[:, 0],
                               (np.log(ds.frame["y"].to_numpy()) - windows.scaler.center[0]) / windows.scaler.scale[0],
                               rtol=1e-5, atol=1e-5)
    model_spec = ModelSpec.for_windows(spec, units=4, target_form="change_season", season_period=12, relative=True)
    run = train(windows, model_spec, TrainConfig(epochs=2, batch_size=32, patience=0, seed=0), tmp_path / "run",
                dataset=ds)
    run = load_run(run.run_dir)
    assert run.scaler.log == ("y",) and run.window_spec.log
    out = np.asarray(run.predict(np.asarray(windows.X("test"), np.float32)), np.float64)
    c, s = windows.scaler.center[0], windows.scaler.scale[0]
    levels = np.exp(out * s + c)
    np.testing.assert_allclose(windows.scaler.inverse(out, ["y"]), levels, rtol=1e-9)
    actual = windows.y_data_units("test")
    np.testing.assert_allclose(actual[:, :, 0], np.lib.stride_tricks.sliding_window_view(
        ds.frame["y"].to_numpy(), 2)[-len(actual):], rtol=1e-5)
    mae = float(np.mean(np.abs(levels - actual)))
    assert run.metrics["model"]["mae"] == pytest.approx(mae, rel=1e-3)


def test_a_zero_in_a_log_target_is_refused_with_its_column_and_row():
    ds = _monthly()
    frame = ds.frame.copy()
    frame.iloc[30, 0] = 0.0
    bad = Dataset(name="m.csv", frame=frame, freq="MS", time_col="month", fingerprint="zero")
    spec = WindowSpec(targets=("y",), features=("y",), window=12, log=True)
    with pytest.raises(StudioError, match=r"'y' above 0, and row 31 \(2002-07-01.*holds 0.*--no-log-target"):
        make_windows(bad, spec)
    frame.iloc[30, 0] = -5.0
    with pytest.raises(StudioError, match="row 31"):
        make_windows(Dataset(name="m.csv", frame=frame, freq="MS", fingerprint="neg"), spec)
    make_windows(bad, WindowSpec(targets=("y",), features=("y",), window=12))  # additive: a zero is fine


def test_choose_log_tells_a_multiplicative_season_from_an_additive_one():
    mult, add = _monthly(), _monthly(multiplicative=False)
    why = choose_log(mult, ("y",), SplitSpec())
    assert why and "grows with its level" in why
    assert choose_log(add, ("y",), SplitSpec()) is None
    frame = mult.frame.copy()
    frame.iloc[3, 0] = -1.0  # a value at or below 0: never multiplicative
    assert choose_log(Dataset(name="m.csv", frame=frame, freq="MS"), ("y",), SplitSpec()) is None
    assert default_config(mult, "y", log=True).window_spec.log


# ------------------------------------------------------------------------------------ firmware, emulator


def _log_export(tmp_path: Path, outside: bool = False) -> Path:
    """The slice export (its model copies the last step) with temp held as its log (target and input)."""
    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    report = json.loads((export / "report.json").read_text())
    report["scaler"]["log"] = ["temp"]
    if outside:
        report["model"] = {"name": "slice", "target_input_index": [0, 1]}
        report["residual"] = True
        report["float32"]["residual_outside"] = True
    (export / "report.json").write_text(json.dumps(report))
    return export


WINDOW = [[11.0, -4.0], [12.5, -6.0], [9.0, -1.0]]
LINES = [("P " + ",".join(f"{v:g}" for row in WINDOW for v in row)),
         "P 11,-4,0,-6,9,-1", "R 11,-4", "R 12.5,-6", "R -2,-1", "R 9,-1", "R 0.001,3"]


def _engine(export: Path) -> ProtocolEngine:
    spec = load_bundle_spec(export, "float32")
    return ProtocolEngine(spec, TflmRunner(spec))


@pytest.mark.parametrize("outside", [False, True], ids=["in-graph", "reference-outside"])
def test_the_emulator_takes_the_log_in_and_the_exp_out(tmp_path, outside):
    spec = load_bundle_spec(_log_export(tmp_path, outside), "float32")
    assert spec.input_log == (True, False) and spec.target_log == (True, False)
    assert np.all(spec.windows[:, :, 0] > 0)  # the embedded windows are levels, exp of the scaled log
    out = ProtocolEngine(spec, TflmRunner(spec)).feed(("\n".join(LINES) + "\n").encode())
    y = [float(v) for v in out[0].split(" y=")[1].split(",")]
    log9 = np.float32(np.log(np.float64(9.0)))
    scaled = np.float32((log9 - np.float32(10)) / np.float32(2))
    temp = np.float32(scaled + scaled if outside else scaled)  # the model copies the last step; outside adds it again
    want = np.float32(np.exp(np.float64(np.float32(np.float32(temp * np.float32(2)) + np.float32(10)))))
    assert y[0] == pytest.approx(float(want), rel=1e-6)
    if not outside:
        assert y[0] == pytest.approx(9.0, rel=1e-6)  # the last temp, through log and exp
    assert y[1] == pytest.approx(-1.0 * (2 if outside else 1) + (5.0 if outside else 0.0), rel=1e-6)
    assert out[1] == "FS ERR PARSE value 3 must be above 0 (the model reads its log)"
    assert "FS ERR PARSE reading value 1 must be above 0 (the model reads its log)" in out
    assert out[-1].startswith("FS RESULT")  # a refused reading is not stored: the window is 11, 12.5, 9 -> 0.001


@pytest.mark.skipif(GXX is None, reason="g++ is not installed: the firmware protocol cannot be compiled here")
@pytest.mark.parametrize("outside", [False, True], ids=["in-graph", "reference-outside"])
def test_the_compiled_firmware_prints_what_the_emulator_prints(tmp_path, outside):
    export = _log_export(tmp_path, outside)
    zpath = render_bundle(export, "float32", out=tmp_path / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "b")
        header = zf.read(next(n for n in zf.namelist() if n.endswith("forecast_studio/model_config.h"))).decode()
    assert "kInputLog[FS_FEATURES] = {1, 0}" in header and "kTargetLog[FS_TARGETS] = {1, 0}" in header
    sketch = next((tmp_path / "b").glob("*/forecast_studio"))
    exe = tmp_path / "fs_host"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(sketch / "fs_protocol.cpp"), str(HOST_MAIN), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = ("\n".join(LINES + ["T"]) + "\n").encode()
    board = subprocess.run([str(exe)], input=text, capture_output=True, timeout=30).stdout.decode().splitlines()
    emu = _engine(export).feed(text)
    strip = lambda lines: [l.split(" us=")[0] + l.split(" us=")[1][l.split(" us=")[1].index(" "):]
                           if " us=" in l else l for l in lines if not l.startswith("FS READY")]
    assert strip(board) == strip(emu)
    assert any("must be above 0" in l for l in board)


def test_an_additive_bundle_has_no_log_flags(tmp_path):
    spec = load_bundle_spec(SLICE_EXPORT, "float32")
    assert spec.input_log == () and spec.target_log == ()


def test_edge_impulse_refuses_the_log_form(tmp_path):
    from core.board.emulator import Emulator
    from core.edge_impulse.client import check_single_output
    from core.models import ModelSpec

    ms = ModelSpec.for_windows(WindowSpec(targets=("y",), features=("y",), window=4), units=4)
    scaler = Scaler.fit({"y": np.array([1.0, 2.0, 4.0])}, log=("y",))
    with pytest.raises(StudioError, match="log.*offline firmware bundle"):
        check_single_output(ms, scaler)
    check_single_output(ms, Scaler.fit({"y": np.array([1.0, 2.0, 4.0])}))
    with pytest.raises(StudioError, match="cannot run a multiplicative"):
        Emulator(_log_export(tmp_path), "float32", mode="edge-impulse")


# ------------------------------------------------------------------------------ a real exported log model


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_an_exported_log_model_on_the_emulator_gives_the_host_levels(tmp_path_factory, dtype):
    """Trained with log and a seasonal change target (reference added back outside the int8 graph), exported,
    run by the emulator on TFLM: its FS RESULT levels match the host's forecasts (exp of the unscaled output)
    within the board check's own tolerance, which is stated in the data's units."""
    from core.board.reference import load_reference
    from core.export import export_run
    from core.models import ModelSpec
    from core.training import TrainConfig, train

    base = tmp_path_factory.getbasetemp() / "log-export"
    if not (base / "export" / "report.json").exists():
        ds = _monthly(120)
        spec = WindowSpec(targets=("y",), features=("y",), window=24, horizon=1, log=True)
        windows = make_windows(ds, spec, SplitSpec(0.7, 0.15))
        model_spec = ModelSpec.for_windows(spec, units=4, target_form="change_season", season_period=12)
        run = train(windows, model_spec, TrainConfig(epochs=2, batch_size=32, patience=0, seed=0), base / "run",
                    dataset=ds)
        export_run(run, base / "export", int8=True)
    spec = load_bundle_spec(base / "export", dtype)
    assert spec.input_log == (True,) and spec.target_log == (True,)
    ref = load_reference(base / "export")
    engine = ProtocolEngine(spec, TflmRunner(spec))
    tol = ref.tolerance(dtype)
    for k, i in enumerate(spec.test_indices):
        line = engine.feed(("P " + ",".join("%.9g" % v for v in spec.windows[k].reshape(-1)) + "\n").encode())[0]
        y = np.array([float(v) for v in line.split(" y=")[1].split(" ")[0].split(",")])
        host = ref.host_units(i).reshape(-1)
        assert host.min() > 50  # levels, not logs
        assert np.all(np.abs(y - host) <= tol), (line, host, tol)
        np.testing.assert_allclose(y, spec.host_predictions[k].reshape(-1), rtol=0, atol=float(tol.max()))


# ------------------------------------------------------------------------------------------------ search


def test_the_search_picks_the_log_form_on_a_multiplicative_series_and_not_on_an_additive_one():
    """Airline-like (a 1%-a-step growth times a season that swings with it): the log form is tried against one
    additive control and wins on validation; on a trend plus a fixed season it is not even tried."""
    from core.search import search_default

    ds = _monthly()
    result = search_default(ds, default_config(ds, "y"))
    assert result.best.log and result.config.window_spec.log
    control = [t for t in result.trials if t.score is not None and not t.log]
    assert len(control) == 1 and control[0].score > result.best.score
    assert "grows with its level" in result.config.reasons["log"]
    add = _monthly(multiplicative=False)
    result = search_default(add, default_config(add, "y"))
    assert not any(t.log for t in result.trials) and not result.config.window_spec.log
    assert "log" not in result.config.reasons


@pytest.mark.parametrize("control_score, log_wins", [(0.95, True), (0.5, False)])
def test_an_additive_control_must_beat_the_log_form_by_more_than_the_noise(monkeypatch, control_score, log_wins):
    """The additive control replaces the log form of its own form and window only by more than one standard error
    of its validation lead (Airline h=12: 14.05 against 14.60, standard error 4.4; on test 29.1 additive, 25.2 log).
    Scores set by a fake quick check: log trials 1.0 (the season form) or 2.0, the control ``control_score``,
    seasonal naive 3.0, standard error 0.1; the backtest kept out (a long enough training part is not needed here)."""
    import types

    import core.quickcheck as qc_module
    import core.search as search_module
    from core.search import search_default

    def quick_check(win, spec, tc, **_):
        log = bool(win.spec.log)
        score = (1.0 if spec.target_form == "change_season" else 2.0) if log else control_score
        return types.SimpleNamespace(model_mae=score, compared_by="mae", seconds=0.1, epochs_run=tc.epochs,
                                     best_baseline="seasonal_naive", cut_by_budget=False, paired_se=0.1,
                                     val_points=int(win.points("val")), baselines={"seasonal_naive": 3.0})
    monkeypatch.setattr(qc_module, "warm_up", lambda *a, **k: None)
    monkeypatch.setattr(qc_module, "quick_check", quick_check)
    monkeypatch.setattr(search_module, "needs_backtest", lambda w: False)
    ds = _monthly()
    result = search_default(ds, default_config(ds, "y"))
    control = [t for t in result.trials if t.score is not None and not t.log]
    assert len(control) == 1 and control[0].target_form == "change_season"
    assert result.best.log is log_wins and result.config.window_spec.log is log_wins
    assert result.to_dict()["chosen"]["log"] is log_wins
    if log_wins:
        assert "an additive control must beat the multiplicative form clearly" in result.config.reasons["search"]
