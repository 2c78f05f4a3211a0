"""The sweep: plans, board-budget filter, queued jobs with positions and cancel, real trainings into
each owner's session directory, the Sweep page, session isolation, and a local Ray run."""
from __future__ import annotations

import io
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from core import jobs, sweep
from core.errors import StudioError
from core.models import ModelSpec
from core.runs import load_run
from core.training import TrainConfig
from core.windows import SplitSpec, WindowSpec, make_windows
from tests.apptest_sessions import session_app, session_id_of
from tests.test_training import small_dataset

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "8_sweep.py")
SPEC = WindowSpec(targets=("temp",), features=("temp", "hum"), window=24, horizon=1)
QUICK = TrainConfig(epochs=2, patience=0, batch_size=32)


@pytest.fixture(scope="module")
def dataset():
    return small_dataset(600)


def _blocker(ctx, seconds):
    """Holds a worker so the trials behind it stay queued."""
    t0 = time.time()
    while time.time() - t0 < seconds and not ctx.should_stop():
        time.sleep(0.01)
    return None


def _finish_all(js, timeout=240):
    for j in js:
        assert j.wait(timeout), j.snapshot()


# ------------------------------------------------------------------------------------------ fast

def test_plan_is_the_product_in_order_without_repeats():
    trials = sweep.plan({"window": [24, 48, 24], "kind": ["lstm", "dense"], "units": [8, 16]})
    assert [t.key for t in trials] == ["w24-lstm8", "w24-lstm16", "w24-dense8", "w24-dense16",
                                       "w48-lstm8", "w48-lstm16", "w48-dense8", "w48-dense16"]
    assert trials[0].label == "LSTM(8), window 24"
    # dense has no recurrent layers to stack, so two layer counts give one dense trial
    stacked = sweep.plan({"window": [24], "kind": ["gru", "dense"], "units": [8], "layers": [1, 2]})
    assert [t.key for t in stacked] == ["w24-gru8", "w24-gru8x2", "w24-dense8"]


@pytest.mark.parametrize("grid, words", [
    ({"window": [24], "kind": ["transformer"], "units": [8]}, "Unknown layer kind"),
    ({"window": [], "kind": ["lstm"], "units": [8]}, "at least one value for window"),
    ({"window": [24], "kind": ["lstm"], "units": [0]}, "outside 1.."),
    ({"window": ["abc"], "kind": ["lstm"], "units": [8]}, "not a whole number"),
    ({"window": [24], "kind": ["lstm"], "units": [8], "lr": [1]}, "does not know"),
    ({"window": list(range(10, 30)), "kind": ["lstm", "gru", "rnn"], "units": [8]}, "at most"),
])
def test_bad_grids_are_refused_with_a_fix(grid, words):
    with pytest.raises(StudioError, match=words) as e:
        sweep.plan(grid)
    assert e.value.fix


def test_budget_filter_keeps_small_models_and_drops_big_ones():
    small, big = sweep.Trial(24, "lstm", 8), sweep.Trial(168, "lstm", 128)
    est_small, est_big = sweep.estimate(SPEC, small), sweep.estimate(SPEC, big)
    assert est_small["params"] == 4 * (8 * (2 + 8) + 8) + 8 + 1  # LSTM(8) on 2 inputs + Dense(1)
    assert est_small["latency_ms"] < 100 and est_small["ram_kb"] < 200
    assert est_big["latency_ms"] > 100  # LSTM(128) on 168 steps: about a second on the board
    kept, over = sweep.split_by_budget(SPEC, [small, big], max_latency_ms=100, max_ram_kb=200)
    assert kept == [small] and [t for t, _ in over] == [big]
    assert sweep.within_budget(est_big)  # without limits it still fits the board (PSRAM)
    assert not sweep.within_budget({**est_small, "fits": False})


def test_trials_queue_behind_a_busy_pool_with_positions_and_cancel(dataset, tmp_path):
    pool = jobs.LocalPool(workers=1)
    busy = pool.submit("someone-else", "train", _blocker, 30.0)
    while busy.status == jobs.QUEUED:  # the worker takes it off the queue first, then ours line up behind
        time.sleep(0.01)
    js = sweep.submit(dataset, SPEC, SplitSpec(), "minmax", {"window": [12, 24], "kind": ["gru"], "units": [4]},
                      QUICK, tmp_path / "alice", "alice", pool=pool)
    df = sweep.table(js)
    assert list(df["status"]) == ["queued", "queued"]
    assert list(df["queue"]) == [1, 2]
    assert list(df["configuration"]) == ["GRU(4), window 12", "GRU(4), window 24"]
    assert df["params"].notna().all() and df["latency ms (est.)"].notna().all()
    assert all(str(tmp_path / "alice" / "sweeps") in d for d in df["run dir"])
    for j in js:
        j.stop()
    busy.stop()
    _finish_all(js, 10)
    assert [j.status for j in js] == [jobs.CANCELLED, jobs.CANCELLED]
    assert list(sweep.table(js)["status"]) == ["cancelled", "cancelled"]
    assert sweep.best(js) is None
    assert [j.owner for j in pool.jobs("alice")] == ["alice", "alice"]


def test_a_window_too_long_for_the_data_is_refused_before_anything_queues(dataset, tmp_path):
    pool = jobs.LocalPool(workers=1)
    with pytest.raises(StudioError, match="Window 500"):
        sweep.submit(dataset, SPEC, SplitSpec(), "minmax", {"window": [24, 500], "kind": ["lstm"], "units": [8]},
                     QUICK, tmp_path, "alice", pool=pool)
    assert pool.jobs("alice") == []


def test_a_shipped_run_with_foreign_file_names_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    with pytest.raises(StudioError, match="not a run directory"):
        sweep._unpack(buf.getvalue(), tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_band_summary_takes_the_narrowest_level():
    rec = {"bands": {"95": {"level": 95.0, "mean_width": [4.0, 6.0], "coverage": 94.0},
                     "80": {"level": 80.0, "mean_width": [2.0, 3.0], "coverage": 79.5}}}
    assert sweep.band_summary(rec) == {"band_level": 80.0, "band_width": 2.5, "band_coverage": 79.5}
    assert sweep.band_summary({}) == {"band_level": None, "band_width": None, "band_coverage": None}
    assert "intervals.json" in sweep.RUN_FILES  # a run shipped back from a Ray worker keeps its bands


def test_page_needs_windows_first():
    at = session_app(PAGE).run()
    assert not at.exception
    assert "Features" in at.info[0].value


def test_a_trial_is_the_model_steps_configuration_with_the_sweeps_axes_varied():
    """Issue 32: trials kept the sweep's own backend and epochs and always changed from the last value."""
    spec = ModelSpec.for_windows(SPEC, kind="gru", units=32, backend="torch", target_form="change_season",
                                 season_period=24, dropout=0.1, head_units=8, relative=True)
    options = sweep.model_options(spec)
    assert options == {"backend": "torch", "dropout": 0.1, "head_units": 8, "target_form": "change_season",
                       "season_period": 24, "relative": True, "linear_base": ""}
    ws, trial = sweep.trial_spec(SPEC, sweep.Trial(48, "lstm", 16), **options)
    assert (trial.kind, trial.units, trial.window, ws.window) == ("lstm", 16, 48, 48)
    assert (trial.target_form, trial.season_period, trial.backend, trial.dropout, trial.head_units, trial.relative) == \
        ("change_season", 24, "torch", 0.1, 8, True)
    # a window shorter than the season cannot take the form: left out with the reason, never trained as another
    ok, cannot = sweep.unfit(SPEC, [sweep.Trial(12, "lstm", 8), sweep.Trial(48, "lstm", 8)], **options)
    assert [t.window for t in ok] == [48] and cannot[0][0].window == 12 and "season" in cannot[0][1]
    words = sweep.settings_words(options, TrainConfig(epochs=150, patience=10))
    assert words.startswith("change from last season (24 steps); 150 epochs,") and "PyTorch" in words
    assert "inputs relative to the last value" in words
    # exponential smoothing (issue 34) travels to every trial; a window under two seasons is left out, with why
    smooth = sweep.model_options(ModelSpec.for_windows(replace(SPEC, window=48), target_form="change_linear",
                                                       season_period=24, linear_base="smooth"))
    assert smooth["linear_base"] == "smooth"
    ok, cannot = sweep.unfit(SPEC, [sweep.Trial(24, "lstm", 8), sweep.Trial(72, "gru", 8)], **smooth)
    assert [t.window for t in ok] == [72] and "two seasons" in cannot[0][1]
    assert sweep.trial_spec(SPEC, ok[0], **smooth)[1].linear_base == "smooth"
    assert sweep.settings_words(smooth, None).startswith("change from exponential smoothing (24 steps)")


class _Done:
    """A finished trial as the table reads it (a job's snapshot and result)."""
    finished_ok, status = True, "done"

    def __init__(self, id_, mae, pct):
        self.id, self.label, self.owner = id_, f"LSTM(8), window {id_}", "me"
        self.result = {"mae": mae, "improvement_pct": pct, "best_baseline": "seasonal_naive", "run_dir": "x"}

    def snapshot(self):
        return {"id": self.id, "label": self.label, "status": "done", "position": None, "error": None,
                "progress": {"trial": {"window": self.id}, "estimate": {}, "from_model": "level; 5 epochs"}}


def test_the_star_says_in_words_when_the_lowest_error_loses_to_the_best_baseline():
    losing = [_Done(1, 3.9, -21.0), _Done(2, 3.8, -19.0)]
    table = sweep.table(losing)
    assert list(table["best"]) == ["", "★ lowest error, but loses to seasonal naive by 19%"]
    assert list(table["from the Model step"]) == ["level; 5 epochs"] * 2
    winning = [_Done(1, 3.9, -21.0), _Done(2, 2.0, 12.0)]
    assert list(sweep.table(winning)["best"]) == ["", "★ best"]


# ------------------------------------------------------------------------------------------ slow

@pytest.mark.slow
def test_local_sweep_trains_every_trial_into_the_owners_directory(dataset, tmp_path):
    pool = jobs.LocalPool(workers=2)
    grid = {"window": [12, 24], "kind": ["dense", "gru"], "units": [8]}
    js = sweep.submit(dataset, SPEC, SplitSpec(), "minmax", grid, QUICK, tmp_path / "bob", "bob", pool=pool,
                      model_options={"backend": "torch"})
    _finish_all(js)
    assert [j.status for j in js] == [jobs.DONE] * 4, [j.error for j in js]
    df = sweep.table(js)
    assert df["test MAE"].notna().all() and df["vs best baseline %"].notna().all()
    # how sure each model is: the 80% band's mean width and its measured test coverage
    assert (df["band"] == "80%").all() and (df["band width"] > 0).all()
    assert df["band coverage %"].between(0, 100).all()
    for j in js:
        run = sweep.load(j)
        assert df.loc[df["job"] == j.id, "band width"].iloc[0] == pytest.approx(run.intervals["bands"]["80"]["mean_width"][0])
        assert run.run_dir.parent.parent == tmp_path / "bob" / "sweeps"
        assert run.window_spec.window == j.snapshot()["progress"]["trial"]["window"]
        assert run.model_spec.kind == j.snapshot()["progress"]["trial"]["kind"]
        assert j.snapshot()["progress"]["epoch"] == 2
    top = sweep.best(js)
    assert top.result["mae"] == min(j.result["mae"] for j in js)
    # the budget can rule a trial out of "best": a latency limit below the GRU's estimates leaves dense only
    # (a RAM limit no longer does: the GRU exports as the step loop, one step in the arena, core.steploop)
    lat = sweep.table(js).groupby("kind")["latency ms (est.)"]
    assert lat.max()["dense"] < lat.min()["gru"]
    limit = (lat.max()["dense"] + lat.min()["gru"]) / 2
    dense_only = sweep.best(js, max_latency_ms=limit)
    assert dense_only.snapshot()["progress"]["trial"]["kind"] == "dense"
    assert set(sweep.table(js, max_latency_ms=limit, only_within_budget=True)["kind"]) == {"dense"}


@pytest.mark.slow
def test_stopping_a_running_trial_keeps_its_best_weights(dataset, tmp_path):
    pool = jobs.LocalPool(workers=1)
    [job] = sweep.submit(dataset, SPEC, SplitSpec(), "minmax", {"window": [24], "kind": ["lstm"], "units": [16]},
                         TrainConfig(epochs=200, patience=0), tmp_path, "carol", pool=pool,
                         model_options={"backend": "torch"})
    deadline = time.time() + 120
    while time.time() < deadline and int(job.snapshot()["progress"].get("epoch") or 0) < 1:
        time.sleep(0.1)
    job.stop()
    assert job.wait(60)
    assert job.status == jobs.STOPPED and job.result["status"] == "stopped"
    assert load_run(sweep.collect(job)).status == "stopped"


@pytest.mark.slow
def test_two_page_sessions_cannot_see_each_others_sweeps(dataset, tmp_path, monkeypatch):
    """Two sessions (distinct session ids, as two browser tabs get) each run a sweep on the page."""
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    windows = make_windows(dataset, SPEC, SplitSpec())
    apps = []
    for name in ("alice", "bob"):
        at = session_app(PAGE, f"session-{name}")
        at.session_state["fs.dataset"] = dataset
        at.session_state["fs.windows"] = windows
        # every trial is the Model step's configuration: its backend and epochs
        at.session_state["fs.model_spec"] = ModelSpec.for_windows(SPEC, backend="torch")
        at.session_state["fs.train_config"] = TrainConfig(epochs=1, patience=0)
        at.run()
        at.multiselect(key="sweep.windows").set_value([12 if name == "alice" else 24])
        at.multiselect(key="sweep.kinds").set_value(["dense"])
        at.multiselect(key="sweep.units").set_value([4])
        at.run()
        at.button(key="sweep.start").click().run()
        assert not at.exception, at.exception
        apps.append(at)
    deadline = time.time() + 240
    while time.time() < deadline:
        if all(j.status in jobs.FINISHED for at in apps for j in at.session_state["fs.sweep_jobs"]):
            break
        time.sleep(0.5)
    for at in apps:
        at.run()
    (alice, bob) = apps
    a_jobs, b_jobs = alice.session_state["fs.sweep_jobs"], bob.session_state["fs.sweep_jobs"]
    assert [j.owner for j in a_jobs] == ["session-alice"] and [j.owner for j in b_jobs] == ["session-bob"]
    a_table, b_table = alice.dataframe[-1].value, bob.dataframe[-1].value
    assert list(a_table["configuration"]) == ["Dense(4), window 12"]
    assert list(b_table["configuration"]) == ["Dense(4), window 24"]
    a_dir, b_dir = Path(alice.session_state["fs.workdir"]), Path(bob.session_state["fs.workdir"])
    assert a_dir != b_dir and a_dir.parent == b_dir.parent == tmp_path / "sessions"
    assert list(a_dir.rglob("run.json")) and list(b_dir.rglob("run.json"))
    assert not any("window 24" in str(p) or "w24" in str(p) for p in a_dir.rglob("*"))
    assert not any("w12" in str(p) for p in b_dir.rglob("*"))
    # the pool answers each owner with that owner's jobs only
    assert {j.id for j in jobs.pool().jobs(session_id_of(alice))} >= {j.id for j in a_jobs}
    assert not {j.id for j in jobs.pool().jobs(session_id_of(alice))} & {j.id for j in b_jobs}
    # continuing with a run sets this session's state only
    alice.button(key="sweep.use").click().run()
    assert not alice.exception, alice.exception
    assert alice.session_state["fs.run"].window_spec.window == 12
    assert alice.session_state["fs.windows"].spec.window == 12
    assert "fs.run" not in bob.session_state


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_cluster(dataset, tmp_path):
    """ray.init on this machine; workers are separate processes that ship each run back as bytes."""
    pytest.importorskip("ray")
    import ray

    pool = jobs.RayPool(workers=2)
    try:
        js = sweep.submit(dataset, SPEC, SplitSpec(), "minmax", {"window": [12, 24], "kind": ["dense", "rnn"], "units": [4]},
                          TrainConfig(epochs=1, patience=0), tmp_path / "dana", "dana", pool=pool,
                          model_options={"backend": "torch"})
        _finish_all(js, 300)
        assert [j.status for j in js] == [jobs.DONE] * 4, [j.error for j in js]
        assert all("run_zip" in j.result for j in js)  # each came back over Ray, not through a shared disk
        assert all(j.snapshot()["progress"].get("epoch") == 1 for j in js)  # progress streamed back
        runs = [sweep.load(j) for j in js]
        assert all(r.run_dir.is_relative_to(tmp_path / "dana" / "sweeps") for r in runs)
        assert all("run_zip" not in j.result for j in js)  # unpacked once, then dropped from memory
        df = sweep.table(js)
        assert df["test MAE"].notna().all() and (df["status"] == "done").all()
    finally:
        ray.shutdown()
