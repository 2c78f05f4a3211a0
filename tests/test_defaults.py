"""The default configuration: chosen from the data (period, calendar, size), the same for CLI and pages."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from core.config import DEFAULTS
from core.data import SAMPLES, load_dataset
from core.dataset import Dataset
from core.defaults import choose_training, cycle_of, default_config
from core.errors import StudioError
from core.metrics import detect_period
from core.windows import make_windows

QUALITY = SAMPLES["weather"].parent / "quality"


@pytest.fixture(scope="module")
def weather():
    return load_dataset(SAMPLES["weather"])


def test_weather_default_is_residual_covers_the_day_and_suggests_hour(weather):
    cfg = default_config(weather, "temperature")
    spec = cfg.window_spec
    assert cfg.seasonality.period == 24 and cfg.seasonality.strong
    assert spec.window >= cfg.seasonality.period
    assert "hour" in spec.calendar
    assert spec.features[0] == "temperature"  # the target is an input, first
    model = cfg.model_spec()
    assert model.residual is True
    assert model.kind == DEFAULTS["model"]["kind"] and model.units == DEFAULTS["model"]["units"]
    # the windows really build from it, and the reasons say why each choice was made
    w = make_windows(weather, spec, cfg.split, cfg.scaler_kind)
    assert w.count("train") > 1000
    assert set(cfg.reasons) >= {"window", "calendar", "residual", "training"}
    assert "24" in cfg.reasons["window"]


def test_monthly_quality_series_window_covers_the_year_with_day_of_year():
    ds = load_dataset(QUALITY / "nino12_monthly.csv")
    cfg = default_config(ds, "nino12")
    assert cfg.seasonality.period == 12 and cfg.seasonality.strong
    assert cfg.window_spec.window >= 12
    assert cfg.window_spec.calendar == ("doy",)
    assert cfg.model_spec().residual
    # a short series gets more epochs (enough weight updates) and a patience to match
    assert cfg.train_config.epochs > DEFAULTS["train"]["epochs"]
    assert cfg.train_config.patience > DEFAULTS["train"]["patience"]


def test_short_series_uses_the_target_alone_and_a_natural_period():
    ds = load_dataset(QUALITY / "us_macro_quarterly.csv")
    cfg = default_config(ds, "realgdp")
    assert cfg.window_spec.features == ("realgdp",)
    # a weak autocorrelation bump at 42 quarters is not taken for a season
    assert cfg.seasonality.period == 4 and cfg.seasonality.source == "frequency"
    assert cfg.window_spec.window >= 4
    assert cfg.window_spec.calendar == ()
    # given choices are kept as they are
    kept = default_config(ds, "realgdp", features=["realcons"], window=6, calendar=())
    assert kept.window_spec.features == ("realgdp", "realcons") and kept.window_spec.window == 6


def test_weekly_co2_window_covers_a_year_and_trend_beats_seasonal_lag():
    ds = load_dataset(SAMPLES["co2"])
    cfg = default_config(ds, "co2")
    assert cfg.window_spec.window >= cfg.seasonality.period >= 50
    assert "doy" in cfg.window_spec.calendar


def test_no_time_column_and_no_period_falls_back_to_standard_window():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": np.cumsum(rng.normal(size=3000))}, index=pd.RangeIndex(3000, name="step"))
    ds = Dataset("walk", frame, freq=None, time_col=None, fingerprint="walk")
    cfg = default_config(ds)
    assert cfg.window_spec.targets == ("x",) and cfg.window_spec.calendar == ()
    assert cfg.window_spec.window >= DEFAULTS["quality"]["min_window"]
    assert cfg.model_spec().residual


def test_long_period_is_left_to_the_calendar_and_window_stays_small():
    # daily data with a yearly cycle (period 365 > max_window share of a short series)
    idx = pd.date_range("2010-01-01", periods=4 * 365, freq="D", name="date")
    rng = np.random.default_rng(1)
    x = 10 * np.sin(2 * np.pi * np.arange(len(idx)) / 365.25) + rng.normal(0, 1, len(idx))
    ds = Dataset("yearly", pd.DataFrame({"t": x}, index=idx), freq="D", time_col="date", fingerprint="y")
    cfg = default_config(ds, "t")
    assert cfg.window_spec.window <= int(len(idx) * 0.7 * DEFAULTS["quality"]["max_window_share"])
    assert "doy" in cfg.window_spec.calendar


def test_long_minute_series_gets_a_stride_that_bounds_an_epoch():
    n = 200_000  # about 139 days of minute readings
    idx = pd.date_range("2024-01-01", periods=n, freq="min", name="time")
    # a machine on from 08:00 to 18:00 every day, read each minute with a little noise
    x = ((idx.hour >= 8) & (idx.hour < 18)).astype(float) + np.random.default_rng(2).normal(0, 0.01, n)
    ds = Dataset("minutes", pd.DataFrame({"v": x}, index=idx), freq="min", time_col="time", fingerprint="m")
    cfg = default_config(ds, "v")
    spec = cfg.window_spec
    assert spec.stride > 1 and "stride" in cfg.reasons
    # the daily cycle (1,440 steps) is found, too long for a window: the hour-of-day feature carries it
    assert cfg.seasonality.period == 1440 and spec.window <= DEFAULTS["quality"]["max_window"]
    assert spec.calendar == ("hour",)
    w = make_windows(ds, spec, cfg.split)
    assert w.count("train") * spec.window <= DEFAULTS["quality"]["max_epoch_steps"]
    assert w.points("test") == w.parts["test"][1] - w.parts["test"][0]  # test keeps every window and every row
    # the weather sample is small enough for every window
    assert default_config(load_dataset(SAMPLES["weather"])).window_spec.stride == 1


def test_unknown_target_is_a_studio_error(weather):
    with pytest.raises(StudioError) as e:
        default_config(weather, "no_such_column")
    assert "no_such_column" in str(e.value)


def test_cycle_names_and_training_scale():
    assert cycle_of(24, "h") == "hour" and cycle_of(48, "30min") == "hour"
    assert cycle_of(7, "D") == "dow" and cycle_of(168, "h") == "dow"
    assert cycle_of(12, "MS") == "doy" and cycle_of(4, "QS") == "doy" and cycle_of(53, "W-SAT") == "doy"
    assert cycle_of(10, "h") is None and cycle_of(24, None) is None
    big, big_why = choose_training(20_000)
    middle, _ = choose_training(5_000)
    small, why = choose_training(150)
    q = DEFAULTS["quality"]
    # A long series is held to about max_steps updates (never fewer than min_epochs epochs), a middling one keeps
    # the configured epochs, a short one gets more.
    assert big.epochs == q["min_epochs"] < DEFAULTS["train"]["epochs"] and "weight updates" in big_why
    assert choose_training(12_000)[0].epochs == math.ceil(q["max_steps"] / math.ceil(12_000 / 32))
    assert middle.epochs == DEFAULTS["train"]["epochs"]
    assert DEFAULTS["train"]["epochs"] < small.epochs <= DEFAULTS["quality"]["max_epochs"]
    assert str(small.epochs) in why


def test_detect_period_prefers_natural_over_a_weak_far_peak():
    rng = np.random.default_rng(5)
    trend = np.cumsum(1 + rng.normal(0, 0.5, 200))  # quarterly-like growth, no season
    s = detect_period(trend, "QS")
    assert s.period == 4 and not s.strong


@pytest.mark.slow
def test_cli_default_config_beats_last_value_on_a_real_series(tmp_path):
    """`python -m studio train` with no model options, on the Nino 1+2 monthly record (real, public domain)."""
    import json
    import os
    import subprocess
    import sys

    root = SAMPLES["weather"].parent.parent
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(root))
    # Fewer epochs than the default only to keep the test short; everything else is the default.
    proc = subprocess.run([sys.executable, "-m", "studio", "train", "--csv", str(QUALITY / "nino12_monthly.csv"),
                           "--target", "nino12", "--epochs", "20", "--out", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The window is one or two seasons (12 steps = 1 year), chosen on validation by the search (issue 21).
    assert re.search(r"default: Window (12 steps = 1 year|24 steps = 2 years)", proc.stderr), proc.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["model_spec"]["residual"] is True
    assert run["window_spec"]["window"] >= 12 and run["window_spec"]["calendar"] == ["doy"]
    metrics = json.loads((out / "metrics.json").read_text())
    model, last = metrics["model"]["mae"], metrics["baselines"]["last_value"]["mae"]
    assert model < last, (model, last)
    assert metrics["beats_last_value"] is True
    assert metrics["verdict"] in proc.stdout


def _yearly_nino() -> Dataset:
    monthly = load_dataset(QUALITY / "nino12_monthly.csv")
    frame = monthly.frame[["nino12"]].resample("YS").mean()
    return Dataset("nino12 yearly", frame, freq="YS", time_col="date", fingerprint="nino-yearly")


@pytest.mark.parametrize("name,target,window", [("us_macro_quarterly.csv", "realgdp", 14),
                                                ("us_macro_quarterly.csv", "realgdp", None),
                                                ("nino12_monthly.csv", "nino12", None),
                                                ("yearly", "nino12", None)])
def test_real_short_series_keep_every_test_and_validation_row(name, target, window):
    from core.metrics import evaluate

    ds = _yearly_nino() if name == "yearly" else load_dataset(QUALITY / name)
    cfg = default_config(ds, target, window=window)
    spec = cfg.window_spec
    w = make_windows(ds, spec, cfg.split)
    t, v, n = w.parts["train"][1], w.parts["val"][1], len(ds.frame)
    assert (w.starts("train") + spec.span).max() <= t  # no training window reads a validation or test row
    assert w.points("val") == v - t and w.points("test") == n - v  # every validation and test row is forecast
    if window == 14:  # the GDP case: 2 test windows under the gap
        assert w.counts() == {"train": 128, "val": 31, "test": 30}
    # the verdict states its points; a short part says its comparison is weak
    out = evaluate(w, np.asarray(w.y("test")) * 1.01, "test")
    assert f"over {n - v:,} test points" in out["verdict"]
    assert (out["weak"] is not None) == (n - v < DEFAULTS["forecast"]["weak_points"])


def test_a_smooth_daily_cycle_in_minute_readings_is_found():
    """Issue 18 item 7: minute data with a strong daily (1,440-step) cycle got 60 steps and no hour of day."""
    n = 30 * 1440
    idx = pd.date_range("2024-01-01", periods=n, freq="min", name="time")
    rng = np.random.default_rng(5)
    x = 10 * np.sin(2 * np.pi * np.arange(n) / 1440) + rng.normal(0, 1.0, n)
    ds = Dataset("minutes", pd.DataFrame({"v": x}, index=idx), freq="min", time_col="time", fingerprint="s")
    cfg = default_config(ds, "v")
    assert cfg.seasonality.period == 1440 and cfg.seasonality.source == "autocorrelation"
    assert "hour" in cfg.window_spec.calendar


def test_a_weekly_cycle_in_minute_readings_reaches_10080_steps():
    n = 8 * 7 * 1440
    idx = pd.date_range("2024-01-01", periods=n, freq="min", name="time")
    rng = np.random.default_rng(6)
    x = 10 * (idx.dayofweek >= 5).astype(float) + rng.normal(0, 1.0, n)  # weekends differ
    ds = Dataset("minutes", pd.DataFrame({"v": x}, index=idx), freq="min", time_col="time", fingerprint="w")
    assert default_config(ds, "v").seasonality.period == 7 * 1440


def test_irregular_timestamps_are_regularised_before_detection():
    """Issue 18 item 7: irregular epoch seconds with a daily cycle got a 297-step window."""
    from tests.awkward_data import irregular_epoch

    ds = load_dataset(irregular_epoch(30_000), name="epoch.csv")  # about 3 weeks
    assert ds.freq is None
    cfg = default_config(ds, "temperature")
    # about one reading a minute (with gaps): the daily cycle is about 1,440 rows, within 10 %
    assert cfg.seasonality.period is not None and abs(cfg.seasonality.period - 1440) <= 144
    assert cfg.window_spec.window != 297 and cfg.window_spec.window <= DEFAULTS["quality"]["max_window"]
    assert "hour" in cfg.window_spec.calendar


def test_training_batch_fits_a_training_part_shorter_than_one_batch():
    # 36 monthly rows at window 24 leave 19 training windows: the default batch of 32 refused to train them.
    from core.defaults import choose_training

    assert choose_training(19)[0].batch_size == 19
    assert choose_training(500)[0].batch_size == 32
    assert choose_training(19, batch_size=32)[0].batch_size == 32  # a batch the user gave is kept (and refused)
