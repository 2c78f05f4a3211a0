"""Working-hours and trading-day series count in observed steps (issue 31's calendar, carried past the Data step).

The files are made here in four variants: a call centre open 07:00-21:00 on weekdays at 5 minutes, exchange
minutes 09:30-16:00, weekday-only trading days with holidays, and a six-day (Mon-Sat) daily week. For each,
the default window, its words, the presets, the seasonal period and the calendar features count a day as
the observed steps of one day and a week as the observed days times that; forecasts past the end land on
the next observed steps (no nights, no weekends), and their calendar features describe those timestamps.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import frequency
from core.data import load_dataset
from core.defaults import default_config
from core.forecast import future_forecast
from core.forecast.ahead import future_index
from core.windows import SplitSpec, WindowSpec, calendar_columns, calendar_values, make_windows, presets

ROOT = Path(__file__).resolve().parent.parent


def _hours(first_day: str, days: int, step: str, opens: str, closes: str, weekdays: int = 5) -> pd.DatetimeIndex:
    t = pd.date_range(first_day, periods=days * pd.Timedelta("1D") // pd.Timedelta(step), freq=step)
    clock = t.strftime("%H:%M")
    return t[(t.day_of_week < weekdays) & (clock >= opens) & (clock < closes)]


def _intraday(t: pd.DatetimeIndex, opens: float, hours: float, seed: int) -> np.ndarray:
    """Calls that rise and fall over the open hours, busier on Mondays."""
    clock = t.hour + t.minute / 60
    rng = np.random.default_rng(seed)
    return 50 + 20 * np.sin(np.pi * (clock - opens) / hours) + 5 * (t.day_of_week == 0) + rng.normal(0, 2, len(t))


def _daily(t: pd.DatetimeIndex, seed: int) -> np.ndarray:
    """A level that wanders, higher on the week's first two days."""
    rng = np.random.default_rng(seed)
    return 100 + 10 * t.day_of_week.isin([0, 1]) + np.cumsum(rng.normal(0, 1, len(t)))


def _variant(name: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    if name == "call centre":
        t = _hours("2024-01-01", 42, "5min", "07:00", "21:00")
        return t, _intraday(t, 7, 14, 1)
    if name == "exchange":
        t = _hours("2024-03-04", 28, "1min", "09:30", "16:00")
        return t, _intraday(t, 9.5, 6.5, 2)
    if name == "trading days":
        t = pd.bdate_range("2019-01-01", "2022-12-30").drop(pd.to_datetime(["2020-12-25", "2021-12-24", "2022-04-15"]))
        return t, _daily(t, 3)
    t = pd.date_range("2021-01-04", "2022-12-31", freq="D")
    t = t[t.day_of_week < 6]  # a shop open Monday to Saturday
    return t, _daily(t, 4)


def _csv(name: str) -> bytes:
    t, y = _variant(name)
    return ("time,X\n" + "".join(f"{a:%Y-%m-%d %H:%M},{b:.3f}\n" for a, b in zip(t, y))).encode()


# name: (steps a day, days a week, the default window, its words, the calendar feature of the cycle)
VARIANTS = {
    "call centre": (168, 5, 168, "168 steps = 1 working day", "hour"),
    "exchange": (390, 5, 390, "390 steps = 1 working day", "hour"),
    "trading days": (1, 5, 20, "20 steps = 4 weeks", "dow"),
    "six-day week": (1, 6, 24, "24 steps = 4 weeks", "dow"),
}
_LOADED: dict = {}


def _dataset(name: str):
    if name not in _LOADED:
        _LOADED[name] = load_dataset(_csv(name), f"{name.replace(' ', '-')}.csv")
    return _LOADED[name]


@pytest.mark.parametrize("name", VARIANTS)
def test_defaults_count_a_day_and_a_week_in_observed_steps(name):
    per_day, days, window, words, cycle = VARIANTS[name]
    ds = _dataset(name)
    assert ds.calendar is not None and ds.calendar["steps_per_day"] == per_day and len(ds.calendar["weekdays"]) == days
    d = default_config(ds, "X")
    season = per_day if per_day > 1 else days
    assert d.seasonality.natural == season and d.seasonality.period == season
    assert d.window_spec.window == window
    assert d.reasons["window"].startswith(f"Window {words}:")
    assert cycle in d.window_spec.calendar, d.reasons["calendar"]
    # the seasonal targets reach back one observed day (or week), not one clock day
    assert d.model_spec(target_form="change_season").season_period == season


@pytest.mark.parametrize("name", VARIANTS)
def test_step_words_and_presets_follow_the_calendar(name):
    per_day, days, *_ = VARIANTS[name]
    ds = _dataset(name)
    cal = ds.calendar
    assert frequency.natural_period(ds.freq, cal) == (per_day if per_day > 1 else days)
    assert frequency.describe_steps(per_day * days, ds.freq, cal) == f"{per_day * days:,} steps = 1 week"
    if per_day > 1:
        assert frequency.describe_steps(per_day, ds.freq, cal) == f"{per_day} steps = 1 working day"
        assert frequency.describe_steps(2 * per_day, ds.freq, cal) == f"{2 * per_day} steps = 2 working days"
        hour = 3600 // frequency.step(ds.freq).seconds
        assert frequency.describe_steps(hour, ds.freq, cal) == f"{hour} steps = 1 hour"  # within a day: the clock
    else:
        assert frequency.describe_steps(3, ds.freq, cal) == "3 steps = 3 working days"
        assert frequency.step_words(ds.freq, cal) == "working day"
    ps = presets(ds.freq, 10_000, limit=50, calendar=cal)
    by_label = {p.label.split(" → ")[0]: p.window for p in ps}
    if per_day > 1:
        assert by_label["1 working day"] == per_day
    assert by_label.get("4 weeks", 4 * per_day * days) == 4 * per_day * days
    assert all(p.window in {per_day, 2 * per_day, per_day * days, 4 * per_day * days, 8 * per_day * days,
                            52 * per_day * days} or p.window * frequency.step(ds.freq).seconds in (3600, 6 * 3600)
               for p in ps), ps


def _on_calendar(stamps, cal) -> bool:
    stamps = pd.DatetimeIndex(stamps)
    ok = stamps.day_of_week.isin(cal["weekdays"])
    if cal["steps_per_day"] > 1:
        clock = stamps.strftime("%H:%M")
        ok &= (clock >= cal["day_start"]) & (clock < cal["day_end"])
    return bool(ok.all())


@pytest.mark.parametrize("name", VARIANTS)
def test_forecasts_past_the_end_land_on_observed_steps(name):
    per_day, days, *_ = VARIANTS[name]
    ds = _dataset(name)
    cal, last = ds.calendar, ds.frame.index[-1]
    count = 3 * per_day * days  # three weeks ahead: nights and weekends in between
    stamps = pd.DatetimeIndex(future_index(ds.frame.index, ds.freq, 1, count, cal))
    assert len(stamps) == count and stamps.is_monotonic_increasing and stamps[0] > last
    assert _on_calendar(stamps, cal)
    # no observed day skipped: from the last row on, the next weekday of the calendar each time
    gaps = pd.Series(ds.frame.index[-1:].append(stamps).normalize().unique()).diff().dt.days.dropna()
    assert gaps.max() == (3 if days == 5 else 2) and gaps.min() == 1
    if per_day > 1:
        assert stamps[0] == pd.Timestamp(f"{(last + pd.offsets.BDay(1)).date()} {cal['day_start']}")
        assert stamps.strftime("%H:%M").value_counts().max() == 15  # each slot once a day, 15 working days
    else:
        assert stamps.normalize().nunique() == count
    spec = WindowSpec(targets=("X",), features=("X",), calendar=("hour",) if per_day > 1 else ("dow",), window=12,
                      horizon=4, offset=2)
    windows = make_windows(ds, spec, SplitSpec(train=0.7, val=0.15))
    assert list(windows.future_times()) == list(stamps[2:6])


@pytest.mark.parametrize("name", ["call centre", "six-day week"])
def test_recursive_forecasts_feed_the_calendar_features_of_the_future_steps(name, tmp_path, monkeypatch):
    from tests.forecast_helpers import make_run

    ds = _dataset(name)
    cal = ds.calendar
    feature = "hour" if cal["steps_per_day"] > 1 else "dow"
    spec = WindowSpec(targets=("X",), features=("X",), calendar=(feature,), window=8, horizon=1)
    windows, _, _, run = make_run(tmp_path, ds, spec, split=SplitSpec(train=0.7, val=0.15))
    seen = []
    predict = run.predict
    monkeypatch.setattr(run, "predict", lambda x: (seen.append(np.array(x)), predict(x))[1])
    out = future_forecast(run, windows, steps=6, method="recursive")
    times = pd.DatetimeIndex(out["timestamp"])
    assert _on_calendar(times, cal) and times[0] > ds.frame.index[-1]
    cols = list(calendar_columns(spec.calendar))
    want = windows.scaler.transform(calendar_values(times, spec.calendar), cols)
    fed = seen[-1][0, -5:, 1:]  # the last call's newest five rows: the first five forecast steps fed back
    np.testing.assert_allclose(fed, want[:5], atol=1e-6)


def test_features_page_says_the_calendar_and_words_its_lengths():
    from streamlit.testing.v1 import AppTest

    ds = _dataset("call centre")
    at = AppTest.from_file(str(ROOT / "pages" / "2_features.py"), default_timeout=120)
    at.session_state["fs.dataset"] = ds
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " | ".join(str(c.value) for c in at.caption)
    assert "Observed on weekdays (Mon-Fri), 07:00-21:00 only" in captions and "a working day is 168 steps" in captions
    assert "168 steps = 1 working day" in captions and "= 1 day" not in captions
    preset = next(s for s in at.selectbox if s.label == "Preset")
    assert any(o.startswith("1 working day → next 5 minutes  (168 → 1)") for o in preset.options), preset.options


@pytest.mark.slow
def test_train_export_and_the_forecast_page_on_a_working_hours_file(tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.forecast_helpers import make_run

    csv = tmp_path / "calls.csv"
    csv.write_bytes(_csv("call centre"))
    env_run = [sys.executable, "-m", "studio"]
    done = subprocess.run(env_run + ["train", "--csv", str(csv), "--target", "X", "--epochs", "1", "--units", "4",
                                     "--no-search", "--out", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    assert "Window 168 steps = 1 working day" in said and "hour of day" in said
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["window_spec"]["window"] == 168
    assert record["dataset"]["calendar"]["steps_per_day"] == 168  # the run says which steps exist
    done = subprocess.run(env_run + ["export", str(tmp_path / "run"), "--out", str(tmp_path / "export")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "export" / "model_float32.tflite").stat().st_size > 0

    ds = _dataset("call centre")
    spec = WindowSpec(targets=("X",), features=("X",), calendar=("hour",), window=24, horizon=6)
    split = SplitSpec(train=0.7, val=0.15)
    windows, model_spec, config, run = make_run(tmp_path / "page", ds, spec, train=True, split=split)
    at = AppTest.from_file(str(ROOT / "pages" / "5_forecast.py"), default_timeout=300)
    for key, value in {"dataset": ds, "window_spec": spec, "split": split, "scaler_kind": "minmax", "windows": windows,
                       "model_spec": model_spec, "train_config": config, "run": run}.items():
        at.session_state[f"fs.{key}"] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " | ".join(str(c.value) for c in at.caption)
    assert "Observed on weekdays (Mon-Fri), 07:00-21:00 only" in captions
    table = next(d.value for d in at.dataframe if "prediction" in d.value.columns and "step" in d.value.columns
                 and len(d.value) == 6)
    assert _on_calendar(table["timestamp"], ds.calendar)
