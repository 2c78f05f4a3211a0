"""core.forecast: test forecasts in the targets' units, per-step errors, the rolling-origin backtest,
direct and recursive forecasts past the end of the data, and the CSV downloads."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("core.metrics", reason="core.metrics (issues C/J) has not landed yet")

from core import forecast
from core.config import DEFAULTS
from core.errors import StudioError
from core.windows import WindowSpec
from tests.forecast_helpers import make_run, synthetic

AUTO = WindowSpec(targets=("temp",), features=("temp",), calendar=("hour",), window=12, horizon=3)


@pytest.fixture(scope="module")
def auto(tmp_path_factory):
    """An autoregressive model: the target and an hour-of-day calendar feature are the only inputs."""
    ds = synthetic()
    windows, _, _, run = make_run(tmp_path_factory.mktemp("auto"), ds, AUTO)
    return ds, windows, run


@pytest.fixture(scope="module")
def exog(tmp_path_factory):
    """A model that also reads 'hum', whose future is unknown."""
    ds = synthetic()
    spec = WindowSpec(targets=("temp",), features=("temp", "hum"), window=12, horizon=2)
    windows, _, _, run = make_run(tmp_path_factory.mktemp("exog"), ds, spec)
    return ds, windows, run


def test_test_forecasts_are_aligned_and_in_data_units(auto):
    ds, windows, run = auto
    frame = forecast.test_forecasts(run, windows)
    n, h = windows.count("test"), AUTO.horizon
    assert list(frame.columns[:7]) == forecast.FORECAST_COLUMNS
    assert len(frame) == n * h
    assert set(forecast.baseline_names(frame)) >= {"last_value", "seasonal_naive"}
    # every actual is the dataset's own value at that timestamp (not a scaled number)
    truth = ds.frame["temp"].reindex(pd.DatetimeIndex(frame["timestamp"])).to_numpy()
    np.testing.assert_allclose(frame["actual"].to_numpy(), truth, rtol=1e-5)
    # the prediction is the run's own forecast, unscaled, for the matching window and step
    y = run.predict(windows.X("test"))
    expected = windows.scaler.inverse(y.reshape(-1, 1).astype(np.float64), ["temp"]).reshape(n, h)
    np.testing.assert_allclose(frame["prediction"].to_numpy().reshape(n, h), expected, rtol=1e-5)
    # last value: the target at the origin; the label times come after the origin
    origin_vals = ds.frame["temp"].reindex(pd.DatetimeIndex(frame["origin"])).to_numpy()
    np.testing.assert_allclose(frame["baseline_last_value"].to_numpy(), origin_vals, rtol=1e-5)
    steps = (frame["timestamp"] - frame["origin"]) / pd.Timedelta("1h")
    np.testing.assert_array_equal(steps.to_numpy(), frame["step"].to_numpy())
    np.testing.assert_allclose(frame["residual"], frame["actual"] - frame["prediction"])


def test_report_metrics_and_per_step_agree(auto):
    _, windows, run = auto
    rep = forecast.test_report(run, windows)
    assert rep.metrics["model"]["mae"] == pytest.approx(float(np.mean(np.abs(rep.frame["residual"]))), rel=1e-4)
    assert rep.metrics["model"]["mae"] == pytest.approx(run.metrics["model"]["mae"], rel=1e-5)
    per = rep.per_step
    assert list(per["step"]) == [1, 2, 3]
    for step in (1, 2, 3):
        rows = rep.frame[rep.frame["step"] == step]
        got = per.loc[per["step"] == step]
        assert float(got["model_mae"].iloc[0]) == pytest.approx(float(np.mean(np.abs(rows["residual"]))))
        assert float(got["last_value_mae"].iloc[0]) == pytest.approx(
            float(np.mean(np.abs(rows["baseline_last_value"] - rows["actual"]))))
    table = forecast.metrics_table(rep.metrics)
    assert table["forecaster"].iloc[0] == "model" and np.isnan(table["model_better_by_pct"].iloc[0])
    best = table[table["best_baseline"]]
    assert len(best) == 1
    assert float(best["model_better_by_pct"].iloc[0]) == pytest.approx(rep.metrics["improvement_pct"], abs=0.05)
    assert rep.metrics["verdict"]


def test_backtest_direct_matches_test_forecasts_at_the_origins(auto):
    _, windows, run = auto
    full = forecast.test_forecasts(run, windows)
    bt = forecast.backtest(run, windows, origin_stride=24)
    n = windows.count("test")
    assert bt.method == "direct" and len(bt.origins) == int(np.ceil(n / 24))
    assert list(bt.origins) == list(windows.origin_times("test")[::24])
    picked = full[full["origin"].isin(bt.origins)].reset_index(drop=True)
    np.testing.assert_allclose(bt.frame["prediction"], picked["prediction"], rtol=1e-6)
    np.testing.assert_allclose(bt.frame["actual"], picked["actual"])
    assert set(bt.scores["forecaster"]) >= {"model", "last_value"}
    assert len(bt.per_origin) == len(bt.origins)
    # stride 1 uses every window: the same MAE as the whole test part
    every = forecast.backtest(run, windows, origin_stride=1)
    assert float(every.scores.iloc[0]["mae"]) == pytest.approx(float(np.mean(np.abs(full["residual"]))), rel=1e-6)


def test_backtest_recursive_rolls_past_the_horizon(auto):
    _, windows, run = auto
    direct = forecast.backtest(run, windows, origin_stride=48)
    rec = forecast.backtest(run, windows, origin_stride=48, steps=10)
    assert rec.method == "recursive" and rec.steps == 10
    assert set(rec.frame["step"]) == set(range(1, 11))
    # the first chunk of a recursive roll-out is the model's own direct forecast
    first = rec.frame[rec.frame["step"] <= AUTO.horizon].reset_index(drop=True)
    same = direct.frame[direct.frame["origin"].isin(first["origin"])].reset_index(drop=True)
    np.testing.assert_allclose(first["prediction"], same["prediction"], rtol=1e-5)
    np.testing.assert_allclose(first["actual"], same["actual"], rtol=1e-6)


def test_test_forecasts_and_backtest_start_on_the_first_test_row(auto):
    ds, windows, run = auto
    v, n = windows.parts["test"]
    frame = forecast.test_forecasts(run, windows)
    # every test row is forecast at every step it can be, the first from inputs before the test part
    first = frame[frame["step"] == 1]["timestamp"]
    assert first.iloc[0] == ds.frame.index[v] and first.iloc[-1] == ds.frame.index[n - AUTO.horizon]
    assert pd.Timestamp(frame["origin"].iloc[0]) == ds.frame.index[v - 1]
    assert set(pd.DatetimeIndex(frame["timestamp"])) == set(ds.frame.index[v:n])
    bt = forecast.backtest(run, windows, origin_stride=1)
    assert pd.Timestamp(bt.origins[0]) == ds.frame.index[v - 1] and len(bt.origins) == windows.count("test")
    rec = forecast.backtest(run, windows, origin_stride=1, steps=9)
    assert pd.Timestamp(rec.origins[0]) == ds.frame.index[v - 1] and rec.frame["timestamp"].max() <= ds.frame.index[n - 1]


def test_backtest_refuses_bad_strides(auto):
    _, windows, run = auto
    with pytest.raises(StudioError, match="at least 1"):
        forecast.backtest(run, windows, origin_stride=0)
    with pytest.raises(StudioError, match="stride of at least"):
        forecast.backtest(run, windows, origin_stride=1, max_origins=3)
    with pytest.raises(StudioError, match="too short"):
        forecast.backtest(run, windows, origin_stride=1, steps=10_000)


def test_future_direct_has_real_timestamps(auto):
    ds, windows, run = auto
    fut = forecast.future_forecast(run, windows)
    last = ds.frame.index[-1]
    assert list(fut["timestamp"]) == [last + pd.Timedelta(hours=k) for k in (1, 2, 3)]
    assert list(fut["step"]) == [1, 2, 3]
    y = run.predict(windows.last_window())
    np.testing.assert_allclose(fut["prediction"], windows.scaler.inverse(y.reshape(-1, 1).astype(float), ["temp"])[:, 0], rtol=1e-5)
    with pytest.raises(StudioError, match="3 step"):
        forecast.future_forecast(run, windows, steps=5)


def test_future_recursive_matches_a_backtest_from_the_same_point(auto):
    """Forecasting past the end (calendar computed for future timestamps) must equal the backtest's
    roll-out from the same origin inside the data (calendar read from the real rows)."""
    _, windows, run = auto
    lo, hi = windows.parts["test"]
    cut = lo + AUTO.window + 40  # the truncated data ends here; its last window is a test window
    short = dataclasses.replace(windows, inputs=windows.inputs[:cut], target_values=windows.target_values[:cut],
                                index=windows.index[:cut])
    fut = forecast.future_forecast(run, short, steps=9, method="recursive")
    assert list(fut["timestamp"]) == list(windows.index[cut:cut + 9])
    origin = windows.index[cut - 1]
    k = int(np.flatnonzero(np.asarray(windows.origin_times("test")) == np.datetime64(origin))[0])
    rec = forecast.backtest(run, windows, origin_stride=1, steps=9)
    rows = rec.frame[rec.frame["origin"] == origin]
    assert k >= 0 and len(rows) == 9
    np.testing.assert_allclose(fut["prediction"].to_numpy(), rows["prediction"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_recursive_is_refused_with_the_reason(exog):
    _, windows, run = exog
    reason = forecast.recursive_unavailable_reason(windows.spec)
    assert "'hum'" in reason and "future values are unknown" in reason
    with pytest.raises(StudioError, match="hum"):
        forecast.future_forecast(run, windows, steps=10, method="recursive")
    with pytest.raises(StudioError, match="recursive is unavailable"):
        forecast.future_forecast(run, windows, steps=10, method="direct")
    with pytest.raises(StudioError, match="hum"):
        forecast.backtest(run, windows, origin_stride=24, steps=5)
    # direct within the horizon still works: past inputs are known
    assert len(forecast.future_forecast(run, windows)) == 2


def test_recursive_reasons_for_other_specs():
    assert forecast.recursive_unavailable_reason(AUTO) is None
    not_input = WindowSpec(targets=("temp",), features=("hum",), window=12, horizon=1)
    assert "'temp' is not among the model's inputs" in forecast.recursive_unavailable_reason(not_input)
    offset = WindowSpec(targets=("temp",), features=("temp",), window=12, horizon=1, offset=2)
    assert "offset" in forecast.recursive_unavailable_reason(offset)


def test_recursive_limit_and_bad_method(auto):
    _, windows, run = auto
    limit = DEFAULTS["forecast"]["max_future_steps"]
    with pytest.raises(StudioError, match=f"at most {limit:,}"):
        forecast.future_forecast(run, windows, steps=limit + 1, method="recursive")
    with pytest.raises(StudioError, match="Unknown forecast method"):
        forecast.future_forecast(run, windows, method="magic")
    with pytest.raises(StudioError, match="at least one step"):
        forecast.future_forecast(run, windows, steps=0)


def test_step_numbers_for_row_indexed_data(tmp_path):
    ds = synthetic(n=300, range_index=True)
    spec = WindowSpec(targets=("temp",), features=("temp",), window=8, horizon=2)
    windows, _, _, run = make_run(tmp_path, ds, spec)
    fut = forecast.future_forecast(run, windows, steps=5, method="recursive")
    assert list(fut["timestamp"]) == [300, 301, 302, 303, 304]
    frame = forecast.test_forecasts(run, windows)
    assert (frame["timestamp"] - frame["origin"] == frame["step"]).all()


def test_irregular_data_has_no_future_timestamps():
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 03:00"])
    with pytest.raises(StudioError, match="no regular frequency"):
        forecast.future_index(idx, None, 1, 3)
    monthly = forecast.future_index(pd.date_range("2024-01-01", periods=3, freq="MS"), "MS", 1, 2)
    assert list(pd.DatetimeIndex(monthly)) == [pd.Timestamp("2024-04-01"), pd.Timestamp("2024-05-01")]


def test_windows_from_other_settings_are_refused(auto, exog):
    _, windows_auto, _ = auto
    _, _, run_exog = exog
    with pytest.raises(StudioError, match="other feature settings"):
        forecast.test_forecasts(run_exog, windows_auto)


def test_torch_run_forecasts(tmp_path):
    ds = synthetic(n=300)
    spec = WindowSpec(targets=("temp",), features=("temp",), window=8, horizon=2)
    windows, _, _, run = make_run(tmp_path, ds, spec, backend="torch")
    rep = forecast.test_report(run, windows)
    assert rep.metrics["model"]["mae"] == pytest.approx(run.metrics["model"]["mae"], rel=1e-5)
    assert len(forecast.future_forecast(run, windows, steps=6, method="recursive")) == 6


def test_csv_downloads_keep_non_ascii_names(tmp_path):
    name = "Température (°C) 温度"
    ds = synthetic(n=300, target=name)
    spec = WindowSpec(targets=(name,), features=(name,), window=8, horizon=2)
    windows, _, _, run = make_run(tmp_path, ds, spec)
    rep = forecast.test_report(run, windows)
    data = forecast.forecasts_csv(rep.frame)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert list(back.columns[:5]) == ["timestamp", "target", "step", "prediction", "actual"]
    assert set(back["target"]) == {name}
    # float32's precision survives (7 significant digits), not the float64 noise past it
    np.testing.assert_allclose(back["prediction"], rep.frame["prediction"], rtol=1e-6)
    assert pd.to_datetime(back["timestamp"]).equals(pd.to_datetime(pd.Series(rep.frame["timestamp"]), utc=False).rename("timestamp"))
    metrics = forecast.metrics_csv(rep.metrics, rep.per_step).decode("utf-8-sig")
    assert metrics.splitlines()[0].startswith("forecaster,mae")
    assert name in metrics


def test_every_figure_renders_to_json(auto):
    import plotly.io as pio

    from studio import forecast_view as fv

    _, windows, run = auto
    rep = forecast.test_report(run, windows)
    bt = forecast.backtest(run, windows, origin_stride=24, steps=6)
    fut = forecast.future_forecast(run, windows, steps=8, method="recursive")
    figs = [fv.forecast_figure(rep.frame, "temp", 2), *fv.residual_figures(rep.frame, "temp", 2),
            fv.per_step_figure(rep.per_step, "temp"), fv.backtest_figure(bt, windows, "temp"),
            fv.future_figure(windows, fut, "temp")]
    for fig in figs:
        spec = pio.from_json(fig.to_json())  # what Streamlit and the HTML download send: plotly validates here
        assert spec.data
    names = [t.name for t in figs[0].data]
    assert names[0].endswith("band (upper)")  # the bands are drawn first, under every line (issue N)
    lines = [n for n in names if "band" not in n]
    assert lines[0] == "Actual" and lines[-1] == "Model" and "Last value" in lines
    html = fv.figure_html(figs[0]).decode()
    # plotly.js is inline (the file opens offline), not a <script src=...> to a CDN
    assert "<html>" in html and 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000


def test_downsampling_keeps_peaks_and_bounds_points():
    from studio import forecast_view as fv

    y = np.random.default_rng(0).normal(size=100_003)
    y[777], y[50_001] = 50.0, -50.0
    y[10:30] = np.nan
    idx = fv.sample_rows(y, 1000)
    assert len(idx) <= 1002 and 777 in idx and 50_001 in idx
    assert idx[0] == 0 and idx[-1] == len(y) - 1 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(fv.sample_rows(y[:500], 1000), np.arange(500))


# ---------------------------------------------------------------- bands (issue N)

def test_test_forecasts_carry_the_runs_bands(auto):
    _, windows, run = auto
    frame = forecast.test_forecasts(run, windows)
    assert forecast.band_levels(frame) == ["80", "95"]
    hw = np.asarray(run.intervals["bands"]["80"]["half_width"])[:, 0]  # per step
    step = frame["step"].to_numpy()
    np.testing.assert_allclose(frame["upper_80"] - frame["prediction"], hw[step - 1])
    np.testing.assert_allclose(frame["prediction"] - frame["lower_80"], hw[step - 1])
    assert (frame["upper_95"] >= frame["upper_80"]).all() and (frame["lower_95"] <= frame["lower_80"]).all()
    # the page's share inside equals the coverage measured at training
    inside = (frame["actual"] >= frame["lower_80"]) & (frame["actual"] <= frame["upper_80"])
    assert 100 * inside.mean() == pytest.approx(run.intervals["bands"]["80"]["coverage"], abs=1e-6)
    csv = pd.read_csv(io.BytesIO(forecast.forecasts_csv(frame)), encoding="utf-8-sig")
    assert list(csv.columns[:9]) == ["timestamp", "target", "step", "prediction", "actual", "lower_80", "upper_80",
                                     "lower_95", "upper_95"]


def test_an_old_run_without_intervals_has_no_band_columns(auto):
    _, windows, run = auto
    old = dataclasses.replace(run, intervals={})
    frame = forecast.test_forecasts(old, windows)
    assert forecast.band_levels(frame) == [] and not [c for c in frame.columns if c.startswith("lower_")]


def test_backtest_and_future_carry_bands_and_recursive_steps_past_the_horizon_have_none(auto):
    _, windows, run = auto
    hw = np.asarray(run.intervals["bands"]["95"]["half_width"])[:, 0]
    bt = forecast.backtest(run, windows, 24)
    np.testing.assert_allclose(bt.frame["upper_95"] - bt.frame["prediction"], hw[bt.frame["step"] - 1])
    fut = forecast.future_forecast(run, windows)
    assert list(fut.columns) == ["timestamp", "target", "step", "prediction", "lower_80", "upper_80",
                                 "lower_95", "upper_95", "origin"]
    np.testing.assert_allclose(fut["upper_95"] - fut["prediction"], hw)
    rec = forecast.future_forecast(run, windows, steps=7, method="recursive")
    width = (rec["upper_80"] - rec["prediction"]).to_numpy()
    assert np.isfinite(width[:3]).all() and np.isnan(width[3:]).all()
    rbt = forecast.backtest(run, windows, 24, steps=5)
    assert rbt.frame.loc[rbt.frame["step"] > 3, "upper_80"].isna().all()


def test_charts_shade_the_bands_on_the_drawn_rows(auto):
    from studio import forecast_view as fv

    _, windows, run = auto
    frame = forecast.test_forecasts(run, windows)
    fig = fv.forecast_figure(frame, "temp", 2, max_points=40)
    fills = [t for t in fig.data if getattr(t, "fill", None) == "tonexty"]
    assert [t.name for t in fills] == ["95% band", "80% band"]  # the wide one under the narrow one
    actual = next(t for t in fig.data if t.name == "Actual")
    assert all(len(t.x) == len(actual.x) <= 42 for t in fig.data)  # downsampled with the lines
    rows = fv.select(frame, "temp", 2).set_index("timestamp")
    lower = np.asarray(fills[1].y)
    np.testing.assert_allclose(lower, rows.loc[pd.DatetimeIndex(actual.x), "lower_80"].to_numpy())
    bt = forecast.backtest(run, windows, 24)
    assert any(getattr(t, "fill", None) == "tonexty" for t in fv.backtest_figure(bt, windows, "temp").data)
    fut = fv.future_figure(windows, forecast.future_forecast(run, windows), "temp")
    assert sum(getattr(t, "fill", None) == "tonexty" for t in fut.data) == 2
    old = forecast.test_forecasts(dataclasses.replace(run, intervals={}), windows)
    assert not any(getattr(t, "fill", None) for t in fv.forecast_figure(old, "temp", 1).data)


def test_downloads_carry_no_float32_noise():
    """Issue 18 item 9: a float32 365.5 came out as 365.4999977350235 in the CSV."""
    noisy = 365.4999977350235  # what a float32 scaled value became once unscaled in float64
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=2, freq="h"), "target": ["co2", "co2"],
                          "step": [1, 1], "prediction": [noisy, 0.1 + 0.2], "actual": [365.5, 1e-7]})
    text = forecast.forecasts_csv(frame).decode("utf-8-sig")
    assert "365.5," in text and "365.4999" not in text and "0.3," in text and "1e-07" in text
    metrics = forecast.metrics_csv({"model": {"mae": noisy}, "baselines": {"last_value": {"mae": 1 / 3}}}).decode("utf-8-sig")
    assert "365.5" in metrics and "0.3333333," in metrics + "," and "0.33333333" not in metrics
