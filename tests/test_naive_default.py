"""Issue 34 (1): never worse than the naive forecast by default. A random walk's default is the last value
itself (a change-from-last-value model whose output stays at zero), it says so in words, and it exports and
runs on TFLite Micro like any model."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.defaults import default_config
from core.naive_default import naive_fallback
from core.search import Trial, search_default
from core.train_config import TrainConfig
from core.training_engines import zero_output


def _trial(form, score, base=1.0, se=0.05, window=8, name="last_value"):
    return Trial(form, window, score=score, best_baseline=name, baseline_score=base, margin_se=se, val_points=200)


def test_a_candidate_within_the_noise_of_the_naive_falls_back_to_it():
    a, b = _trial("change_last", 0.97, window=16), _trial("change_last", 0.99, window=8)
    chosen, margin = naive_fallback(a, [a, b, _trial("level", 1.2)])
    assert chosen is b and 0.02 <= margin <= 0.5          # the shortest window of the naive's own form
    assert naive_fallback(_trial("change_last", 0.9), [_trial("change_last", 0.9)]) is None  # two SE clear
    s = _trial("change_both", 1.0, name="seasonal_naive")
    season = _trial("change_season", 1.01, name="seasonal_naive")
    assert naive_fallback(s, [s, season])[0] is season    # seasonal naive best: change from last season
    m = _trial("change_last", 1.0, name="mean")
    assert naive_fallback(m, [m]) is None                 # the mean has no zero-change form: keep the model


def test_zero_output_zeroes_only_the_output_layer():
    w = [np.ones((3, 4)), np.ones(4), np.ones((4, 2)), np.ones(2)]
    z = zero_output(w)
    assert all(np.all(x == 1) for x in z[:2]) and np.all(z[-1] == 0) and np.all(np.abs(z[-2]) < 1e-15)
    assert np.all(w[-1] == 1)  # a copy
    with pytest.raises(Exception):
        TrainConfig(naive_margin=1.5).validate()


def _walk(n: int = 900, seed: int = 11) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"close": 100 + np.cumsum(rng.normal(0, 1.0, n))},
                         index=pd.bdate_range("2015-01-01", periods=n, name="time"))
    return Dataset(name="walk", frame=frame, freq="B")


@pytest.mark.slow
def test_a_random_walk_defaults_to_its_last_value_and_says_so(tmp_path):
    from core.export import export_run
    from core.training import train
    from core.windows import make_windows

    ds = _walk()
    res = search_default(ds, default_config(ds, "close"))
    assert res.naive is not None and res.to_dict()["naive_equivalent"]
    cfg = res.config
    assert cfg.model_options["target_form"] == "change_last" and cfg.train_config.naive_margin
    assert "as predictable as its last value" in cfg.reasons["search"] and "no network beats it" in cfg.reasons["search"]
    cfg = dataclasses.replace(cfg, train_config=dataclasses.replace(cfg.train_config, epochs=8, patience=3))
    win = make_windows(ds, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind)
    run = train(win, cfg.model_spec(), cfg.train_config, tmp_path / "run", references=False)
    m = run.metrics
    assert run.info["naive_equivalent"] and run.info["best_epoch"] == 0
    assert m["model"]["mae"] == pytest.approx(m["baselines"]["last_value"]["mae"], rel=1e-6)
    assert m["validation"]["model"]["mae"] == pytest.approx(m["validation"]["baselines"]["last_value"]["mae"], rel=1e-6)
    assert m["verdict"].startswith("This series is as predictable as its last value")
    # It exports and runs on TFLite Micro like any change-form model: zero change, last value added back.
    report = export_run(run, tmp_path / "export", int8=True)
    acc = report.accuracy["forecasters"]
    assert acc["float32"]["mae"] == pytest.approx(acc["last_value"]["mae"], rel=1e-4)
    assert acc["int8"]["mae"] == pytest.approx(acc["last_value"]["mae"], rel=1e-3)


def test_a_linear_forecast_that_beats_the_naive_is_the_fallback_before_the_naive_itself():
    from core.naive_default import linear_rescue

    lin = _trial("change_linear", 0.85, se=0.05)        # three standard errors below last value
    worse = _trial("change_linear", 0.97, se=0.05, window=16)
    assert linear_rescue([_trial("change_last", 0.8, se=0.3), lin, worse]) is lin
    assert linear_rescue([_trial("change_last", 0.8, se=0.3), worse]) is None  # within the noise: the naive stays
    assert linear_rescue([_trial("change_linear", 0.5, name="mean")]) is None  # no naive to be measured against


def test_a_linear_forecast_must_beat_the_naive_by_one_and_a_half_standard_errors_and_two_percent():
    """On a random walk the linear forecast won validation by 1.4% at 1.3 standard errors and lost on test: the
    change_linear rule is stricter than a network's (core.naive_default.LINEAR_Z and the 2% floor)."""
    from core.naive_default import beats_naive

    assert beats_naive(24.63, 24.99, 0.274)                      # a network: one standard error is enough
    assert not beats_naive(24.63, 24.99, 0.274, "change_linear")  # 1.3 standard errors
    assert not beats_naive(24.63, 24.99, 0.01, "change_linear")   # 1.4% < the 2% floor, however small the error
    assert beats_naive(20.0, 24.99, 1.0, "change_linear")
    assert beats_naive(0.3235, 0.3989, 0.0456, "change_linear")      # Uschange h=1: 1.65 standard errors, 19%


def _dying_counts(seed: int = 0) -> Dataset:
    """Monthly counts whose rate falls to zero and stays there (like PBS's scripts for a withdrawn drug)."""
    rng = np.random.default_rng(seed)
    rate = np.r_[np.linspace(12, 0.3, 150), np.zeros(54)]
    return Dataset(name="dying", frame=pd.DataFrame(
        {"scripts": rng.poisson(rate).astype(float)},
        index=pd.date_range("1991-07-01", periods=len(rate), freq="MS", name="time")), freq="MS")


def _naive_run(ds: Dataset, target: str, margin: float, tmp_path):
    from core.training import train
    from core.windows import make_windows

    cfg = default_config(ds, target)
    cfg = dataclasses.replace(cfg, model_options={**cfg.model_options, "target_form": "change_last"},
                              train_config=dataclasses.replace(cfg.train_config, naive_margin=margin))
    win = make_windows(ds, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind)
    return train(win, cfg.model_spec(), cfg.train_config, tmp_path / "run", references=False)


def test_an_epoch_that_wins_validation_loss_but_not_its_mae_does_not_replace_the_naive_start(tmp_path):
    """The squared loss moved the model off the last value by shaving the few large errors (validation loss 10%
    below the start's); its validation MAE was 26% worse. The one rule (MAE, one standard error) holds it at the
    naive start, so on a test part of zeros the default forecasts zero, where the moved model did not."""
    run = _naive_run(_dying_counts(), "scripts", 0.1, tmp_path)
    dep = run.info["naive_start"]["departure"]
    assert dep["baseline"] == "last_value" and dep["compared_by"] == "mae" and not dep["beats"]
    assert dep["model"] > dep["naive"]
    assert run.info["naive_start"]["kept"] and run.info["naive_equivalent"] and run.info["best_epoch"] == 0
    m = run.metrics
    assert m["baselines"]["last_value"]["mae"] == 0.0 and m["model"]["mae"] < 1e-12
    assert m["validation"]["model"]["mae"] == pytest.approx(dep["naive"], rel=1e-6)
    assert m["verdict"].startswith("This series is as predictable as its last value")


def test_an_epoch_that_beats_the_naive_by_the_rule_is_kept(tmp_path):
    """White noise: the last value is a poor forecast and the network learns the mean; it moves and stays moved."""
    rng = np.random.default_rng(3)
    ds = Dataset(name="noise", frame=pd.DataFrame({"y": 50 + rng.normal(0, 1, 900)},
                                                  index=pd.bdate_range("2015-01-01", periods=900, name="time")),
                 freq="B")
    run = _naive_run(ds, "y", 0.05, tmp_path)
    dep = run.info["naive_start"]["departure"]
    assert dep["beats"] and dep["model"] < dep["naive"] - dep["se"]
    assert not run.info["naive_start"]["kept"] and not run.info["naive_equivalent"] and run.info["best_epoch"] > 0
    assert run.metrics["model"]["mae"] < 0.9 * run.metrics["baselines"]["last_value"]["mae"]
