"""The quick check: short real training, validation-part verdict, and recommendations that fit the case."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.errors import StudioError
from core.metrics import Seasonality, evaluate
from core.models import ModelSpec
from core.quickcheck import _for_check, _subsample, quick_check, recommend
from core.training import TrainConfig
from core.windows import SplitSpec, WindowSpec, make_windows


def _hourly(n: int = 2400, seed: int = 0) -> Dataset:
    """A daily cycle on a slow random walk, with noise: last value is beatable, seasonal naive is strong."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.2, n)) + rng.normal(0, 0.3, n)
    frame = pd.DataFrame({"temp": x}, index=pd.date_range("2024-01-01", periods=n, freq="h", name="time"))
    return Dataset("cycle", frame, freq="h", time_col="time", fingerprint=f"cycle{seed}")


DAILY = Seasonality(24, 0.8, 24, "autocorrelation")


def _windows(window: int = 6, calendar: tuple = (), n: int = 2400):
    spec = WindowSpec(targets=("temp",), features=("temp",), calendar=calendar, window=window, horizon=1)
    return make_windows(_hourly(n), spec, SplitSpec())


def test_recommendations_name_residual_window_calendar_and_epochs():
    w = _windows(window=6)
    spec = ModelSpec.for_windows(w.spec, residual=False)
    recs = recommend(w, spec, [DAILY], epochs_run=3, best_epoch=3, cut_by_budget=True, train_windows=1500,
                     beats_best=False, beats_last_value=False)
    keys = [r.key for r in recs]
    assert keys[:4] == ["residual", "window", "calendar", "epochs"]
    by = {r.key: r for r in recs}
    assert by["residual"].change == {"residual": True}
    assert by["window"].change == {"window": 24} and "24 steps" in by["window"].text
    assert by["calendar"].change == {"calendar": ["hour"]}
    assert all(r.text.endswith(".") for r in recs)


def test_no_recommendation_when_the_model_already_wins_or_all_is_set():
    w = _windows(window=24, calendar=("hour",))
    spec = ModelSpec.for_windows(w.spec)
    assert spec.residual
    assert recommend(w, spec, [DAILY], epochs_run=5, best_epoch=2, cut_by_budget=False, train_windows=1500,
                     beats_best=True, beats_last_value=True) == []
    # losing with everything set: still one concrete suggestion, never an empty list
    recs = recommend(w, spec, [DAILY], epochs_run=5, best_epoch=2, cut_by_budget=False, train_windows=1500,
                     beats_best=False, beats_last_value=False)
    assert len(recs) == 1 and recs[0].key == "epochs"


def test_target_not_an_input_is_told_to_add_it():
    ds = _hourly()
    ds.frame["other"] = np.arange(len(ds.frame), dtype=float) % 7
    spec = WindowSpec(targets=("temp",), features=("other",), window=24, horizon=1)
    w = make_windows(ds, spec, SplitSpec())
    m = ModelSpec.for_windows(spec)
    assert not m.residual
    recs = recommend(w, m, [DAILY], epochs_run=5, best_epoch=2, cut_by_budget=False, train_windows=50,
                     beats_best=False, beats_last_value=False)
    assert recs[0].key == "residual" and "temp" in recs[0].text
    assert recs[0].change["features"] == ["other", "temp"]


def test_subsample_keeps_the_newest_windows_without_copying():
    w = _windows(window=24)
    sub = _subsample(w, 100)
    assert sub.count("train") == 100
    assert sub.parts["train"][1] == w.parts["train"][1] and sub.parts["val"] == w.parts["val"]
    assert np.shares_memory(sub.inputs, w.inputs)
    np.testing.assert_array_equal(sub.X("train")[-1], w.X("train")[-1])
    assert _subsample(w, 10**6) is w


def test_no_validation_part_is_a_studio_error():
    w = _windows()
    w.parts["val"] = (w.parts["val"][0], w.parts["val"][0])
    with pytest.raises(StudioError, match="validation"):
        quick_check(w, ModelSpec.for_windows(w.spec), TrainConfig(epochs=1), budget_s=1)


@pytest.mark.slow
def test_quick_check_trains_scores_on_validation_and_keeps_to_its_budget():
    w = _windows(window=6)
    spec = ModelSpec.for_windows(w.spec, residual=False, units=8, backend="torch")
    # A spent budget: the first epoch always finishes (a model to score), then the check stops within the
    # next batch. A positive budget would race the check's own early stopping on a fast machine.
    res = quick_check(w, spec, TrainConfig(epochs=200, patience=50), budget_s=0.0, max_train_windows=512)
    assert res.train_windows == 512 and res.val_windows == w.count("val")
    assert res.cut_by_budget and 1 <= res.epochs_run <= 2
    # one epoch of 512 windows and the scoring; generous, since a shared 2-core machine can be slow
    assert res.seconds < 90
    assert res.compared_by == "mae" and np.isfinite(res.model_mae)
    assert set(res.baselines) == {"last_value", "seasonal_naive", "mean"}
    # the baselines are the validation part's own, as evaluate() computes them
    lv = evaluate(w, w.y("val"), "val")["baselines"]["last_value"]["mae"]
    assert res.baselines["last_value"] == pytest.approx(lv)
    assert "validation" in res.verdict and "Quick check" in res.summary
    # every validation row is scored (its first windows read training rows), and the verdict says how many
    assert res.val_points == w.parts["val"][1] - w.parts["val"][0] and f"over {res.val_points:,} validation points" in res.verdict
    assert res.weak is None
    # a 6-step window on a 24-step cycle, residual off: both are named
    if not res.beats_best:
        keys = {r.key for r in res.recommendations}
        assert {"residual", "window"} <= keys
    d = res.to_dict()
    assert d["likely_wins"] == res.beats_best and isinstance(d["recommendations"], list)


@pytest.mark.slow
def test_model_page_quick_check_button_shows_verdict_table_and_advice(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from core.config import DEFAULTS

    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    monkeypatch.setitem(DEFAULTS["quickcheck"], "budget_s", 2.0)
    page = str(Path(__file__).resolve().parent.parent / "pages" / "3_model.py")
    at = AppTest.from_file(page, default_timeout=180)
    at.session_state["fs.windows"] = _windows(window=6)
    at.run()
    assert not at.exception, at.exception
    at.selectbox(key="model.target_form").set_value("level").run()
    at.number_input(key="model.units").set_value(8).run()
    at.radio(key="model.backend").set_value("torch").run()  # no TensorFlow start-up: a shorter test
    at.button(key="model.qc_run").click().run()
    assert not at.exception, at.exception
    texts = "\n".join(str(e.value) for e in list(at.success) + list(at.info) + list(at.warning) + list(at.markdown))
    assert "Quick check (" in texts and "validation MAE for temp" in texts
    table = at.dataframe[-1].value
    assert list(table["forecaster"])[:2] == ["model (short training)", "last value"]
    stored = at.session_state["model.qc"][1]
    if not stored.beats_best:
        assert stored.recommendations and stored.recommendations[0].text in texts
    # changing the model hides the old numbers instead of showing them for the new model
    at.number_input(key="model.units").set_value(16).run()
    assert any("changed since the last quick check" in c.value for c in at.caption)


@pytest.mark.slow
def test_a_quick_check_on_few_validation_points_says_it_is_weak():
    idx = pd.date_range("1990-01-01", periods=80, freq="QS", name="time")
    frame = pd.DataFrame({"gdp": 1000 + 10 * np.arange(80) + 5 * np.sin(np.arange(80))}, index=idx)
    w = make_windows(Dataset("q", frame, freq="QS", time_col="time"),
                     WindowSpec(targets=("gdp",), features=("gdp",), window=8), SplitSpec())
    assert w.count("val") == 12  # rule 1 (a gap of 8 rows) left 4
    res = quick_check(w, ModelSpec.for_windows(w.spec, units=4, backend="torch"), TrainConfig(epochs=1), budget_s=0.0)
    assert res.val_points == 12 and res.weak and "12 validation points" in res.weak and res.weak in res.summary


def test_check_windows_skip_the_test_part_it_never_reads():
    w = _windows(window=24)
    sub = _for_check(w, 100)
    assert sub.count("train") == 100 and sub.count("test") == 1
    assert sub.parts["val"] == w.parts["val"] and sub.parts["test"][0] == w.parts["test"][0]
    assert np.shares_memory(sub.inputs, w.inputs)
    np.testing.assert_array_equal(sub.X("test")[0], w.X("test")[0])
    assert w.count("test") > 1  # the session's own windows are untouched


def test_training_stops_once_the_budget_less_the_scoring_reserve_is_spent(monkeypatch):
    from core import quickcheck

    seen = []

    def fake_train(windows, spec, config, run_dir, on_epoch=None, should_stop=None, **kw):
        assert not should_stop()  # never before the first epoch: there would be no model to score
        on_epoch({"epoch": 1})
        seen.append(should_stop())
        raise StudioError("stop here", "test")

    monkeypatch.setattr(quickcheck, "train", fake_train)
    w = _windows()
    spec = ModelSpec.for_windows(w.spec, backend="torch")
    for reserve, stops in ((1000.0, True), (0.0, False)):
        monkeypatch.setitem(quickcheck._Q, "reserve_s", reserve)
        with pytest.raises(StudioError, match="stop here"):
            quick_check(w, spec, TrainConfig(epochs=5), budget_s=1000)
        assert seen[-1] is stops


def test_an_unscored_keras_run_predicts_with_the_torch_twin_that_trained_it(tmp_path):
    # The quick check's run (train(score=False)) predicts with the PyTorch twin: Keras's predict traced a new
    # function for every search candidate. The twin holds the same weights, so the forecasts agree to float rounding.
    import torch

    from core.training import train

    w = _windows(window=6, n=600)
    spec = ModelSpec.for_windows(w.spec, residual=True, units=8, backend="keras")
    run = train(w, spec, TrainConfig(epochs=2, seed=0), tmp_path / "run", references=False, score=False)
    assert isinstance(run._backend_model(), torch.nn.Module)
    X = w.X("val")
    keras_pred = np.asarray(run.keras_model().predict(np.ascontiguousarray(X), verbose=0))
    np.testing.assert_allclose(run.predict(X), keras_pred, rtol=0, atol=1e-5)
    scored = train(w, spec, TrainConfig(epochs=2, seed=0), tmp_path / "scored", references=False)
    assert not isinstance(scored._backend_model(), torch.nn.Module)  # a scored run's forecasts stay Keras's


def test_the_twin_predicts_the_weights_the_run_holds_after_the_keras_model_changed():
    # A failed departure check (training._check_departure) zeroes the Keras model's output layer after training;
    # an unscored run made from it must forecast with those weights, not the twin's trained ones.
    from core.models import canonical_weights, load_canonical
    from core.runs import Run
    from core.training_engines import train_keras_on_torch, zero_output

    w = _windows(window=6, n=600)
    spec = ModelSpec.for_windows(w.spec, residual=True, units=8, backend="keras")
    config = TrainConfig(epochs=2, seed=0)
    model, tracker = train_keras_on_torch(w, spec, config, lambda r: None, None, lambda: False)
    load_canonical(model, zero_output(canonical_weights(model)))
    run = Run.from_training(w, spec, config, model, tracker.history, {}, "", score=False)
    X = w.X("val")
    keras_pred = np.asarray(model.predict(np.ascontiguousarray(X), verbose=0))
    np.testing.assert_allclose(run.predict(X), keras_pred, rtol=0, atol=1e-5)
