"""Issue 34 (short series, what works there): a search whose winner is the linear forecast tries one longer window
where the linear forecast alone, a ridge fitted in a fraction of a second, does clearly better there on validation.
On daily counts with a weekly cycle and much day-to-day noise a 14-day window averages two values of each weekday;
56 days average eight, which is what exponential smoothing wins with."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.linear_reference import screen_error
from core.search import FORMS, Trial, _config_for, search_default
from core.defaults import default_config
from core.search_rules import STRETCH_MARGIN, linear_stretch
from core.windows import make_windows


def _daily_counts(n: int = 730, seed: int = 37) -> Dataset:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2016-01-04", periods=n, freq="D", name="time")
    week = np.array([1.05, 1.08, 1.06, 1.05, 1.04, 0.88, 0.84])
    level = 11000 + 400 * np.sin(2 * np.pi * np.arange(n) / 365.25) + np.cumsum(rng.normal(0, 20, n))
    return Dataset(name="births", frame=pd.DataFrame(
        {"y": level * week[index.day_of_week] + rng.normal(0, 250, n)}, index=index), freq="D")


def _t(window, form="change_linear", score=1.0):
    return Trial(form, window, score=score)


def test_the_rule_tries_the_longer_window_only_when_the_linear_forecast_gains_enough_there():
    errors = {14: 1.0, 28: 0.93, 56: 0.84, 112: 0.86}
    best, scored = _t(14), [_t(14), _t(8), _t(14, "change_last")]
    assert linear_stretch(best, scored, 400, errors.get) == 56          # 2x and 4x the longest linear window
    assert linear_stretch(best, scored, 40, errors.get) == 28           # 56 is over the cap
    assert linear_stretch(_t(28), [_t(28)], 400, errors.get) == 56      # 10% below 28's error...
    near = {28: 0.93, 56: 0.93 * (1 - STRETCH_MARGIN) + 1e-6, 112: 0.95}
    assert linear_stretch(_t(28), [_t(28)], 400, near.get) is None      # ...not a hair under 5%
    assert linear_stretch(_t(14, "change_last"), scored, 400, errors.get) is None  # a network winner: no
    assert linear_stretch(best, scored, 400, lambda w: None) is None


def test_the_screen_measures_what_a_longer_window_gives_the_linear_forecast():
    ds = _daily_counts()
    base = default_config(ds, "y", horizon=1)
    err = {}
    for w in (14, 56):
        cfg = _config_for(ds, base, w)
        err[w] = screen_error(make_windows(ds, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind),
                              int(base.seasonality.period or 0))
    assert err[56] < (1 - STRETCH_MARGIN) * err[14]


@pytest.mark.slow
def test_a_linear_winner_on_a_noisy_weekly_series_is_tried_and_chosen_at_a_longer_window():
    ds = _daily_counts()
    said: list[str] = []
    # The ridge's stretch alone: exponential smoothing (its own trial at four weeks, issue 34) is left out here.
    forms = tuple(f for f in FORMS if f != "change_smooth")
    res = search_default(ds, default_config(ds, "y", horizon=1), forms=forms, progress=lambda f, msg: said.append(msg))
    counts = [re.search(r"\((\d+) of (\d+)\)", m) for m in said]
    assert all(int(c[1]) <= int(c[2]) for c in counts if c), said  # the longer window's trial is counted
    linear = {t.window: t.score for t in res.trials if t.target_form == "change_linear" and t.score is not None}
    assert not any(t.smooth for t in res.trials)
    assert max(linear) >= 4 * min(linear), linear
    assert res.config.model_options["target_form"] == "change_linear"
    assert res.config.window_spec.window == max(linear)
    assert "seasonal periods" in res.config.reasons["window"] and "won on validation over" in res.config.reasons["window"]


@pytest.mark.slow
def test_a_smoothing_lead_gets_no_ridge_stretch():
    """Exponential smoothing at four weeks leads on this series (issue 34): the ridge's longer window is for a ridge
    winner only (trying it anyway put a short quarterly series' ridge back in front, and it lost to the naive on
    test: BENCHMARKS)."""
    from core.search_rules import pick

    ds = _daily_counts()
    res = search_default(ds, default_config(ds, "y", horizon=1))
    scored = [t for t in res.trials if t.score is not None]
    lead = pick(scored)
    assert lead.smooth and lead.window == 28, [(t.label, t.score) for t in scored]
    ridge = [t.window for t in scored if t.target_form == "change_linear" and not t.smooth]
    assert max(ridge) <= 14, ridge
    assert res.config.model_options["linear_base"] == "smooth" and res.config.window_spec.window == 28
