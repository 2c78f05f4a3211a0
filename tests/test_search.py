"""The default chosen on validation (issue 21): candidates, the ones skipped and why, and that the winner wins."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import SAMPLES, load_dataset
from core.dataset import Dataset
from core.defaults import default_config
from core.search import plan, search_default

ROOT = Path(__file__).resolve().parent.parent
QUALITY = SAMPLES["weather"].parent / "quality"


def _ds(values: dict, freq: str = "h") -> Dataset:
    n = len(next(iter(values.values())))
    frame = pd.DataFrame(values, index=pd.date_range("2022-01-01", periods=n, freq=freq, name="time"))
    return Dataset(name="t", frame=frame.astype(float), freq=freq)


def _daily(n: int, seed: int = 0, period: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 4 * np.sin(2 * np.pi * t / period) + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 0.1, n)


def _labels(trials):
    return {(t.target_form, t.window): t.skipped for t in trials}


def test_plan_tries_the_five_forms_and_the_other_window():
    ds = _ds({"y": _daily(3000)})
    base = default_config(ds, "y")
    stage1, extra, period, note = plan(ds, base)
    assert period == 24 and note == ""
    assert [t.target_form for t in stage1 if t.skipped is None] == ["change_last", "change_linear", "change_both",
                                                                    "change_season", "level"]
    w1 = base.window_spec.window
    assert w1 == 24
    assert all(t.window == w1 for t in stage1 if t.target_form not in ("change_season", "change_both"))
    # The seasonal forms see more than one season (their origin's own change from a season earlier): two periods.
    assert [t.window for t in stage1 if t.target_form in ("change_season", "change_both")] == [48, 48]
    # one period and two periods: stage 2 tries whichever the rule's window is not
    assert extra and set(extra + [base.window_spec.window]) >= {48} and len(extra) == 1


def test_no_season_skips_the_seasonal_candidate_with_the_reason():
    rng = np.random.default_rng(3)
    ds = Dataset(name="walk", frame=pd.DataFrame({"y": np.cumsum(rng.normal(size=600))}), freq=None)  # no time axis
    base = default_config(ds, "y")
    assert not base.seasonality.period
    stage1, extra, period, _ = plan(ds, base)
    for form in ("change_season", "change_both"):
        skipped = _labels(stage1)[(form, base.window_spec.window)]
        assert skipped and "period 1" in skipped
    assert extra == []
    # the linear reference needs no season: it is tried on every series where the targets are inputs
    assert _labels(stage1)[("change_linear", base.window_spec.window)] is None


def test_a_season_longer_than_a_third_of_training_is_skipped():
    ds = _ds({"y": _daily(3000)})
    base = default_config(ds, "y")
    long = base.__class__(**{**base.__dict__, "seasonality": base.seasonality.__class__(900, 0.8, 24, "autocorrelation")})
    stage1, extra, _, _ = plan(ds, long)
    for form in ("change_season", "change_both"):
        assert "third of the training part" in _labels(stage1)[(form, base.window_spec.window)]
    assert extra == []


def test_targets_with_different_periods_use_the_first_and_say_so():
    n = 3000
    ds = _ds({"a": _daily(n, 1, 24), "b": _daily(n, 2, 36)})
    base = default_config(ds, ("a", "b"))
    _, _, period, note = plan(ds, base)
    assert period == 24
    assert "differ" in note and "a 24" in note and "b 36" in note and "first target's period" in note


def test_a_target_that_is_not_an_input_skips_the_change_forms():
    ds = _ds({"y": _daily(2000), "x": _daily(2000, 5)})
    base = default_config(ds, "y")
    ws = base.window_spec.__class__(**{**base.window_spec.to_dict(), "features": ("x",)})
    cfg = base.__class__(**{**base.__dict__, "window_spec": ws})
    stage1, _, _, _ = plan(ds, cfg)
    assert [t.target_form for t in stage1 if t.skipped is None] == ["level"]
    assert all("not among the inputs" in t.skipped for t in stage1 if t.skipped)
    assert "change_linear" in {t.target_form for t in stage1 if t.skipped}


@pytest.mark.slow
def test_on_a_strongly_seasonal_hourly_series_at_h24_the_chosen_default_holds_seasonal_naive(tmp_path):
    """The whole path a new user takes: `studio train` with no options, horizon 24, then the test verdict."""
    csv = QUALITY / "synthetic_seasonal_hourly.csv"
    res = subprocess.run([sys.executable, "-m", "studio", "train", "--csv", str(csv), "--target", "temp",
                          "--horizon", "24", "--seed", "0", "--out", str(tmp_path / "run")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Chosen on validation" in res.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    # Which form wins rests on short, time-bounded trainings (on a loaded machine level won once); what the
    # user gets is judged below on the test part.
    assert run["model_spec"]["target_form"] in ("level", "change_last", "change_season", "change_both", "change_linear")
    search = run["info"]["search"]
    # every candidate was either trained or skipped with its reason (on a loaded machine: the budget)
    assert all(t["score"] is not None or t["skipped"] for t in search["trials"])
    assert {t["target_form"] for t in search["trials"]} == {"level", "change_last", "change_season", "change_both",
                                                           "change_linear"}
    model, sn = metrics["model"]["mae"], metrics["baselines"]["seasonal_naive"]["mae"]
    # 24 steps ahead on this series (wandering amplitude and level, AR(1) noise) little beyond the same hour
    # yesterday is predictable: ETS ties seasonal naive too (bench_quality: model 0.248, seasonal naive 0.247,
    # ETS 0.252). The rule default before issue 21 (change from last value) scored 0.443.
    assert model <= 1.02 * sn, (model, sn)
    assert model < 0.7 * 0.4429
    assert model < metrics["baselines"]["last_value"]["mae"]
    assert set(metrics["references"]) == {"ets", "theta"}


@pytest.mark.slow
def test_search_stays_within_its_budget_and_can_be_stopped():
    ds = load_dataset(QUALITY / "synthetic_seasonal_hourly.csv")
    base = default_config(ds, "temp", horizon=1)
    seen: list[str] = []
    # A budget that never binds (so nothing here depends on how fast the machine is); stopped after two trials.
    res = search_default(ds, base, budget_s=3600.0, progress=lambda f, m: seen.append(m),
                         should_stop=lambda: len([m for m in seen if m.startswith("Trying")]) >= 2)
    assert res.stopped and len([t for t in res.trials if t.score is not None]) == 2
    # the frameworks start before the clock (and say so), then the trials
    assert seen[0] == "Starting the training frameworks" and seen[1].startswith("Trying")
    assert "Chosen on validation" in res.config.reasons["search"]
    assert not res.clock_stopped and "safety stop" not in res.config.reasons["search"]
    # A safety stop any training overruns: the first trial still runs (a model to choose), the rest are skipped
    # so, and the result says the clock, not the data, ended the search.
    tight = search_default(ds, base, budget_s=0.01)
    scored = [t for t in tight.trials if t.score is not None]
    assert len(scored) == 1 and not tight.stopped and tight.clock_stopped
    assert any(t.skipped == "the clock's safety stop ended the search first" for t in tight.trials)
    assert "safety stop" in tight.config.reasons["search"] and "may differ" in tight.config.reasons["search"]


# ---------------------------------------------------------------- the Model page

MODEL_PAGE = str(ROOT / "pages" / "3_model.py")


@pytest.fixture()
def seasonal_state(tmp_path, monkeypatch):
    from core.windows import make_windows

    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    ds = _ds({"y": _daily(1500)})
    cfg = default_config(ds, "y", horizon=3)
    return ds, make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)


def _page(ds, windows):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MODEL_PAGE, default_timeout=120)
    at.session_state["fs.dataset"] = ds
    at.session_state["fs.windows"] = windows
    return at.run()


def test_model_page_offers_the_seasonal_target_with_its_period(seasonal_state):
    ds, windows = seasonal_state
    at = _page(ds, windows)
    assert not at.exception, at.exception
    box = at.selectbox(key="model.target_form")
    assert list(box.options) == ["level", "change from last value", "change from last season (24 steps)",
                                 "change from last value and last season (24 steps)", "change from a linear forecast",
                                 "change from exponential smoothing"]
    box.select("change_smooth").run()   # one season of window: too short for it, and the page says so before training
    assert not at.exception, at.exception
    assert "at least two seasons (48 steps)" in "\n".join(str(e.value) for e in at.error)
    box.select("change_linear").run()
    spec = at.session_state["fs.model_spec"]  # the fit may shrink toward last season: it keeps the period
    assert spec.target_form == "change_linear" and spec.season_period == 24 and not spec.linear_weights
    box.select("change_season").run()
    spec = at.session_state["fs.model_spec"]
    assert spec.target_form == "change_season" and spec.season_period == 24 and spec.window >= 24
    assert at.button(key="model.search_run")


@pytest.mark.slow
def test_model_page_runs_the_search_in_the_background_and_applies_the_winner(seasonal_state, monkeypatch):
    from core.config import DEFAULTS

    from core.windows import make_windows

    monkeypatch.setitem(DEFAULTS["quickcheck"], "budget_s", 1.0)  # three short trainings of about a second
    ds, _ = seasonal_state
    # A two-season window, so whichever form wins (change from last value and last season needs more than one
    # season) can be applied on this page.
    cfg = default_config(ds, "y", horizon=3, window=48)
    windows = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    at = _page(ds, windows)
    at.button(key="model.search_run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["model.search_job"][1]
    assert job.wait(600) and job.status == "done", job.error
    at.run()
    assert not at.exception, at.exception
    text = "\n".join(str(m.value) for m in at.markdown)
    assert "Chosen on validation" in text
    best = job.result.best
    if best.target_form != at.session_state["fs.model_spec"].target_form:
        at.button(key="model.search_apply").click().run()
        at.run()  # the app-wide rerun the button asks for (a browser makes it at once)
    assert at.session_state["fs.model_spec"].target_form == best.target_form


def test_a_gap_of_whole_days_filled_by_the_data_step_keeps_the_season(tmp_path):
    # Two missing days, cut exactly at midnight (season boundaries): the data step re-inserts and fills the rows,
    # so the period stays 24 and the seasonal candidate still applies with a one-season window.
    n = 24 * 120
    times = pd.date_range("2022-01-01", periods=n, freq="h")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "y": np.round(_daily(n, 4), 3)})
    gap = (times >= "2022-02-10") & (times < "2022-02-12")
    frame[~gap].to_csv(tmp_path / "gappy.csv", index=False)
    ds = load_dataset(tmp_path / "gappy.csv")
    assert len(ds.frame) == n and ds.frame["y"].notna().all()
    base = default_config(ds, "y")
    stage1, _, period, _ = plan(ds, base)
    assert period == 24
    assert [t.target_form for t in stage1 if t.skipped is None] == ["change_last", "change_linear", "change_both",
                                                                    "change_season", "level"]


def test_a_window_fixed_by_the_user_is_the_seasonal_candidates_window_too():
    ds = _ds({"y": _daily(3000)})
    base = default_config(ds, "y", window=30)
    stage1, extra, _, _ = plan(ds, base, windows=(30,))
    assert {t.window for t in stage1} == {30} and extra == []
    short = default_config(ds, "y", window=12)
    stage1, _, _, _ = plan(ds, short, windows=(12,))
    assert "does not reach back one season (24 steps)" in _labels(stage1)[("change_season", 12)]
    # change_both also reads the row one season before the last: a window of exactly one season is too short
    exact = default_config(ds, "y", window=24)
    stage1, _, _, _ = plan(ds, exact, windows=(24,))
    labels = _labels(stage1)
    assert labels[("change_season", 24)] is None
    assert "one season (24 steps) behind its last step" in labels[("change_both", 24)]


def test_the_seasonal_window_is_one_step_past_the_season_when_two_do_not_fit():
    from core.search import season_window

    ds = _ds({"y": _daily(3000)})
    base = default_config(ds, "y")
    assert season_window(ds, base, 24, 24) == 48
    assert season_window(ds, base, 24, 36) == 36   # already longer than the season
    small = _ds({"y": _daily(300)})               # too short for 48: 25 if the data allows it
    sbase = default_config(small, "y")
    from core.search import _window_cap

    cap = _window_cap(small, sbase)
    assert season_window(small, sbase, 24, 24) == (48 if cap >= 48 else max(24, min(25, cap)))


def test_a_level_target_must_win_clearly_over_a_change_form():
    from core.search import LEVEL_MARGIN, Trial, pick

    change = Trial("change_last", 24, score=1.0)
    close = Trial("level", 24, score=1.0 - LEVEL_MARGIN / 2)
    clear = Trial("level", 24, score=1.0 - 2 * LEVEL_MARGIN)
    assert pick([close, change]) is change          # a hair better on validation is not enough for a level model
    assert pick([clear, change]) is clear
    assert pick([close]) is close and pick([]) is None
    seasonal = Trial("change_season", 48, score=0.8)
    assert pick([change, seasonal, close]) is seasonal


def _search_key(at, ds, windows):
    """The page's search key: what the result depends on, the window aside (pages/3_model.py)."""
    ws = windows.spec
    arch = ("kind", "units", "layers", "dropout", "head_units", "backend")
    return (ds.fingerprint or str(id(ds)), ws.targets, ws.features, ws.calendar, ws.horizon, ws.offset, ws.stride,
            repr(windows.split), windows.scaler.kind,
            tuple((a, at.session_state["model." + a]) for a in arch))


def test_a_winner_with_a_longer_window_is_applied_whole_by_its_button(seasonal_state):
    """Change from last value and last season won at 48 steps; this page's windows are 24 steps (one season,
    too short for it). The button names both, lays out the 48-step windows (the Features step's field set to
    match) and sets the form: the page then shows what it named."""
    from types import SimpleNamespace

    from core.search import SearchResult, Trial

    ds, windows = seasonal_state
    at = _page(ds, windows)
    assert windows.spec.window == 24
    base = default_config(ds, "y", horizon=3)
    result = SearchResult(base, [Trial("change_both", 48, score=0.1), Trial("change_last", 24, score=0.2)], period=24)
    assert result.best.target_form == "change_both"
    at.session_state["model.search_job"] = (_search_key(at, ds, windows),
                                            SimpleNamespace(status="done", result=result, error=None))
    at.run()
    assert not at.exception, at.exception
    info = "\n".join(str(m.value) for m in at.info)
    assert "A window of 48 steps won" in info
    button = at.button(key="model.search_apply")
    assert button.label == "Use change from last value and last season and a window of 48 steps"
    button.click().run()
    assert not at.exception, at.exception
    assert at.session_state["fs.windows"].spec.window == 48 and at.session_state["feat.window"] == 48
    assert at.session_state["fs.model_spec"].target_form == "change_both"
    assert at.selectbox(key="model.target_form").value == "change_both"
    # the result is still there, and says it is in use
    assert "In use: change from last value and last season with a window of 48 steps" in "\n".join(
        str(c.value) for c in at.caption)


def test_a_smoothing_winner_is_applied_with_its_base_and_the_page_shows_it(seasonal_state):
    """Exponential smoothing at three seasons won (issue 34): the Use button lays out its window and sets the
    Model step to it, the spec keeps the smoothing base (not the ridge), and the selectbox and caption say so."""
    from types import SimpleNamespace

    from core.search import SearchResult, Trial

    ds, windows = seasonal_state
    at = _page(ds, windows)
    base = default_config(ds, "y", horizon=3)
    result = SearchResult(base, [Trial("change_linear", 72, score=0.1, smooth=True),
                                 Trial("change_linear", 24, score=0.2)], period=24)
    at.session_state["model.search_job"] = (_search_key(at, ds, windows),
                                            SimpleNamespace(status="done", result=result, error=None))
    at.run()
    assert not at.exception, at.exception
    button = at.button(key="model.search_apply")
    assert "exponential smoothing" in button.label
    button.click().run()
    assert not at.exception, at.exception
    spec = at.session_state["fs.model_spec"]
    assert (spec.target_form, spec.linear_base, spec.window) == ("change_linear", "smooth", 72)
    assert at.selectbox(key="model.target_form").value == "change_smooth"
    assert "In use: change from exponential smoothing with a window of 72 steps" in "\n".join(
        str(c.value) for c in at.caption)
    at.selectbox(key="model.target_form").select("change_linear").run()   # the ridge again: the base goes
    assert at.session_state["fs.model_spec"].linear_base == ""


def test_the_use_button_carries_the_naive_margin_of_a_naive_equivalent_default(seasonal_state):
    """The search fell back to the naive-equivalent model (change from last value at this page's window, its
    margin 0.07): the Use button applies the margin too, as the command line does, and a model the user then
    changes to another form trains without it (issue 34)."""
    from types import SimpleNamespace

    from core.search import SearchResult, Trial

    ds, windows = seasonal_state
    at = _page(ds, windows)
    assert at.session_state["fs.train_config"].naive_margin is None
    base = default_config(ds, "y", horizon=3)
    naive = Trial("change_last", windows.spec.window, score=0.2)
    cfg = dataclasses.replace(base, train_config=dataclasses.replace(base.train_config, naive_margin=0.07))
    result = SearchResult(cfg, [naive, Trial("level", windows.spec.window, score=0.3)], period=24, naive=naive)
    at.session_state["model.search_job"] = (_search_key(at, ds, windows),
                                            SimpleNamespace(status="done", result=result, error=None))
    at.run()
    assert not at.exception, at.exception
    # the form and window are already this page's: the button is still offered, for the margin
    button = at.button(key="model.search_apply")
    button.click().run()
    assert not at.exception, at.exception
    assert at.session_state["fs.train_config"].naive_margin == pytest.approx(0.07)
    assert "beats it on validation by 7%" in "\n".join(str(c.value) for c in at.caption)
    assert "In use: change from last value" in "\n".join(str(c.value) for c in at.caption)
    at.selectbox(key="model.target_form").select("level").run()
    assert at.session_state["fs.train_config"].naive_margin is None


@pytest.mark.slow
def test_the_search_tries_the_linear_forecast_and_a_chosen_one_trains_it(tmp_path):
    """A short AR(2) series: the linear reference is a candidate, scored beyond the naive; it trains as chosen."""
    from core.training import train
    from core.windows import make_windows

    rng = np.random.default_rng(5)
    y = np.zeros(400)
    for t in range(2, len(y)):
        y[t] = 1.2 * y[t - 1] - 0.5 * y[t - 2] + rng.normal(0, 1)
    ds = Dataset(name="ar2", frame=pd.DataFrame({"y": 50 + y}), freq=None)
    res = search_default(ds, default_config(ds, "y"), forms=("change_last", "change_linear"))
    lin = [t for t in res.trials if t.target_form == "change_linear"]
    # AR(2) is a linear filter: the linear forecast beats the last value on validation (an LSTM may learn it too)
    assert lin and lin[0].score is not None and lin[0].score < lin[0].baseline_score
    assert res.naive is None and "change from a linear forecast" in res.config.reasons["search"]
    cfg = res.config
    spec = cfg.model_spec(target_form="change_linear")
    assert spec.target_form == "change_linear" and not spec.linear_weights
    win = make_windows(ds, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind)
    run = train(win, spec, dataclasses.replace(cfg.train_config, epochs=2), tmp_path / "run", references=False)
    assert run.model_spec.linear_weights and run.info["linear_reference"]["bases"] == ["last"]
    m = run.metrics
    assert m["model"]["mae"] < m["baselines"]["last_value"]["mae"]


def test_a_longer_window_must_win_by_the_window_margin():
    """The weather sample's linear forecast: 48 steps scored 0.3545 against 24 steps' 0.3551 on validation and took
    twice the training; a longer window wins only by WINDOW_MARGIN, and the search says why."""
    from core.search import WINDOW_MARGIN, Trial, pick
    from core.search_words import why_won

    short = Trial("change_linear", 24, score=0.3551)
    long = Trial("change_linear", 48, score=0.3545)
    other = Trial("change_last", 12, score=0.39)
    assert pick([short, long, other]) is short
    clear = Trial("change_linear", 48, score=0.3551 * (1 - 2 * WINDOW_MARGIN))
    assert pick([short, clear, other]) is clear
    assert pick([long, other]) is long                      # no shorter one of its form: the lowest stays
    assert "longer window must win by" in why_won(short, long, "mae", 0.1, "", WINDOW_MARGIN)
