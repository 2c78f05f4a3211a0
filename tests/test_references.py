"""Statistical references beside the network (issue 21): statsmodels' Holt-Winters ETS and Theta, fitted on
the training part, forecasting the same test points from every origin; a bounded tail on long series, and a
reason instead of a number where they cannot be fitted."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from core import references as refs
from core.config import DEFAULTS
from core.dataset import Dataset
from core.defaults import default_config
from core.windows import make_windows


def _daily(n: int, seed: int = 0, period: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 4 * np.sin(2 * np.pi * t / period) + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.1, n)


def _origins(train_end: int, n: int, horizon: int):
    origins = np.arange(train_end - 1, n - horizon)
    return origins, origins[:, None] + 1 + np.arange(horizon)


@pytest.mark.parametrize("name", refs.REFERENCES)
def test_the_first_origin_forecasts_what_the_library_forecasts(name):
    """From the last training row, the reference is statsmodels' own forecast (fitted here independently)."""
    y = _daily(1200)
    origins, labels = _origins(900, len(y), 30)
    got = refs.forecast_references(y[:, None], 900, origins, labels, [24], names=(name,))
    assert name in got["forecasts"], got["info"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "theta":
            from statsmodels.tsa.forecasting.theta import ThetaModel

            lib = np.asarray(ThetaModel(y[:900], period=24).fit().forecast(30))
        else:
            res = refs._fit_ets(y[:900], 24)
            lib = np.asarray(res.forecast(30))
    np.testing.assert_allclose(got["forecasts"][name][0, :, 0], lib, rtol=0, atol=1e-8)
    # Later origins use the data up to them (not the training part's end): their step-1 forecasts follow it.
    later = got["forecasts"][name][1:30, 0, 0]   # labels 901..929, each one step after its origin
    truth = y[labels[1:30, 0]]
    assert np.mean(np.abs(later - truth)) < np.mean(np.abs(lib[1:30] - truth))


def test_ets_holds_the_season_that_last_value_misses():
    y = _daily(1500, seed=3)
    origins, labels = _origins(1000, len(y), 24)
    got = refs.forecast_references(y[:, None], 1000, origins, labels, [24])
    actual = y[labels]
    ets = np.mean(np.abs(got["forecasts"]["ets"][..., 0] - actual))
    last = np.mean(np.abs(y[origins][:, None] - actual))
    assert ets < 0.5 * last, (ets, last)
    assert got["info"]["ets"]["targets"][0]["period"] == 24 and got["info"]["ets"]["seconds"] >= 0
    assert "season of 24" in got["info"]["ets"]["targets"][0]["model"]


def test_a_long_training_part_is_fitted_on_a_bounded_tail_and_says_so(monkeypatch):
    monkeypatch.setitem(DEFAULTS["references"], "max_fit_rows", 300)
    y = _daily(1500)
    origins, labels = _origins(1200, len(y), 2)
    got = refs.forecast_references(y[:, None], 1200, origins, labels, [24])
    for name in refs.REFERENCES:
        entry = got["info"][name]["targets"][0]
        # 300 rows asked, but ten seasons (240) fit inside it: the tail is 300 rows
        assert entry["fit_rows"] == 300 and "newest 300 of 1,200 training rows" in entry["note"]
    # a season too long for the cap: the tail grows to ten seasons
    monkeypatch.setitem(DEFAULTS["references"], "max_fit_rows", 100)
    got = refs.forecast_references(y[:, None], 1200, origins, labels, [24], names=("ets",))
    assert got["info"]["ets"]["targets"][0]["fit_rows"] == 240


def test_no_season_fits_without_one():
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(0, 1, 600)) + 50
    origins, labels = _origins(400, len(y), 3)
    got = refs.forecast_references(y[:, None], 400, origins, labels, [None])
    assert set(got["forecasts"]) == {"ets", "theta"}
    assert "no season" in got["info"]["ets"]["targets"][0]["model"]
    assert got["info"]["theta"]["targets"][0]["period"] is None


def test_too_few_rows_and_gaps_give_a_reason_not_a_number():
    y = _daily(60)
    origins, labels = _origins(40, len(y), 2)
    got = refs.forecast_references(y[:, None], 40, origins, labels, [24])
    assert got["forecasts"] == {}
    assert "too few to fit a season of 24" in got["info"]["ets"]["unavailable"]
    y = _daily(800)
    y[500] = np.nan
    origins, labels = _origins(600, len(y), 2)
    got = refs.forecast_references(y[:, None], 600, origins, labels, [24])
    assert got["forecasts"] == {} and "gaps" in got["info"]["theta"]["unavailable"]


def test_a_constant_target_forecasts_its_value():
    y = np.full(300, 7.5)
    origins, labels = _origins(200, len(y), 2)
    got = refs.forecast_references(y[:, None], 200, origins, labels, [None])
    assert np.all(got["forecasts"]["ets"] == 7.5) and got["info"]["ets"]["targets"][0]["model"] == "constant"


def test_metrics_json_carries_the_references_beside_the_baselines():
    """build_metrics (what metrics.json is made from) scores them on the very test windows, two targets with
    different periods each on their own."""
    from core.runs import build_metrics

    n = 1500
    rng = np.random.default_rng(0)
    t = np.arange(n)
    frame = pd.DataFrame({"a": _daily(n), "b": 5 + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, n)},
                         index=pd.date_range("2022-01-01", periods=n, freq="h", name="time"))
    ds = Dataset(name="t", frame=frame, freq="h")
    cfg = default_config(ds, ("a", "b"), horizon=2)
    w = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    y_last = np.repeat(np.asarray(w.X("test"))[:, -1:, list(cfg.window_spec.target_input_index)], 2, axis=1)
    m = build_metrics(w, y_last)
    assert set(m["references"]) == {"ets", "theta"}
    assert m["baselines"]["last_value"]["mae"] == pytest.approx(m["model"]["mae"], rel=1e-5)
    assert m["references"]["ets"]["mase"] < m["baselines"]["last_value"]["mase"]
    assert [t["period"] for t in m["references_info"]["ets"]["targets"]] == m["references_info"]["periods"]
    assert len(m["references_info"]["periods"]) == 2  # one period per target, each fitted with its own
    assert "Statistical references fitted on the training part" in m["references_note"]
    assert m["best_baseline"] in ("last_value", "seasonal_naive", "mean")  # the verdict stays naive


def test_short_trainings_leave_them_out_and_a_full_one_has_them(tmp_path):
    """The quick check (so the candidate search) trains with references=False (they never read the test part,
    and an ETS fit costs seconds per candidate); `studio train` keeps them."""
    from core.models import ModelSpec
    from core.training import TrainConfig, train

    n = 800
    frame = pd.DataFrame({"a": _daily(n)}, index=pd.date_range("2022-01-01", periods=n, freq="h", name="time"))
    ds = Dataset(name="t", frame=frame, freq="h")
    cfg = default_config(ds, "a", horizon=1, window=24)
    w = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    spec = ModelSpec.for_windows(cfg.window_spec, kind="dense", units=4)
    config = TrainConfig(epochs=1, batch_size=64, seed=0)
    short = train(w, spec, config, tmp_path / "short", references=False)
    full = train(w, spec, config, tmp_path / "full")
    assert "references" not in short.metrics and set(full.metrics["references"]) == {"ets", "theta"}
