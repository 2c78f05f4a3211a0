"""The job pool: bounded concurrency, queue positions, cancel and stop, failures kept apart."""
from __future__ import annotations

import threading
import time

import pytest

from core import jobs
from core.errors import StudioError


def _sleeper(ctx, seconds, value):
    t0 = time.time()
    while time.time() - t0 < seconds:
        if ctx.should_stop():
            raise jobs.JobStopped()
        ctx.report(elapsed=time.time() - t0)
        time.sleep(0.01)
    return value


def test_pool_runs_at_most_workers_at_once_and_reports_positions():
    pool = jobs.LocalPool(workers=2)
    active, peak, lock = [0], [0], threading.Lock()

    def counted(ctx, i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return i

    submitted = [pool.submit(f"user{i}", "train", counted, i) for i in range(6)]
    time.sleep(0.05)
    positions = sorted(j.snapshot()["position"] for j in submitted)
    assert positions == [0, 0, 1, 2, 3, 4]  # two running, four waiting in order
    for j in submitted:
        assert j.wait(10)
    assert peak[0] == 2
    assert [j.result for j in submitted] == list(range(6))
    assert all(j.status == jobs.DONE for j in submitted)


def test_cancel_queued_and_stop_running():
    pool = jobs.LocalPool(workers=1)
    running = pool.submit("a", "train", _sleeper, 5.0, "never")
    queued = pool.submit("b", "train", _sleeper, 0.01, "x")
    time.sleep(0.05)
    queued.stop()
    assert queued.wait(1) and queued.status == jobs.CANCELLED
    running.stop()
    assert running.wait(5) and running.status == jobs.STOPPED


def test_a_failing_job_does_not_take_the_pool_down():
    pool = jobs.LocalPool(workers=1)

    def boom(ctx):
        raise ValueError("bad shapes")

    def user_error(ctx):
        raise StudioError("Too few windows.", "Shorten the window.")

    a = pool.submit("a", "train", boom)
    b = pool.submit("a", "train", user_error)
    c = pool.submit("a", "train", _sleeper, 0.01, 42)
    assert c.wait(5)
    assert a.status == jobs.FAILED and "bad shapes" in a.error and "start it again" in a.error
    assert b.status == jobs.FAILED and b.error == "Too few windows. Shorten the window."
    assert c.result == 42


def test_owners_see_only_their_jobs_and_forget_cleans_up():
    pool = jobs.LocalPool(workers=1)
    mine = pool.submit("alice", "train", _sleeper, 0.01, 1)
    pool.submit("bob", "train", _sleeper, 0.01, 2)
    mine.wait(5)
    assert [j.owner for j in pool.jobs("alice")] == ["alice"]
    pool.forget("alice")
    assert pool.jobs("alice") == []


def test_full_queue_is_refused_with_a_message():
    pool = jobs.LocalPool(workers=1, max_queued=1)
    pool.submit("a", "train", _sleeper, 0.3, 0)
    time.sleep(0.05)
    pool.submit("a", "train", _sleeper, 0.01, 0)
    with pytest.raises(StudioError, match="queue is full"):
        pool.submit("a", "train", _sleeper, 0.01, 0)


@pytest.mark.slow
def test_ray_pool_runs_jobs_and_streams_progress():
    pytest.importorskip("ray")
    pool = jobs.RayPool(workers=2)
    try:
        job = pool.submit("alice", "train", _sleeper, 0.5, "from ray")
        assert job.wait(120), job.snapshot()
        assert job.status == jobs.DONE, job.error
        assert job.result == "from ray"
        assert "elapsed" in job.progress
    finally:
        import ray
        ray.shutdown()


@pytest.mark.slow
def test_trainings_queue_on_the_shared_pool(monkeypatch, tmp_path):
    """With one worker, a second session's training waits with a queue position and can be cancelled."""
    import numpy as np
    import pandas as pd

    from core import training
    from core.dataset import Dataset
    from core.models import ModelSpec
    from core.windows import WindowSpec, make_windows

    monkeypatch.setattr(jobs, "_POOL", jobs.LocalPool(workers=1))
    t = np.arange(600, dtype=float)
    frame = pd.DataFrame({"y": np.sin(t / 6)}, index=pd.date_range("2024-01-01", periods=600, freq="h", name="time"))
    windows = make_windows(Dataset("s", frame, freq="h"), WindowSpec(targets=("y",), features=("y",), window=12))
    spec = ModelSpec.for_windows(windows.spec, kind="gru", units=4)
    config = training.TrainConfig(epochs=2, batch_size=32)
    first = training.TrainingJob(windows, spec, config, tmp_path / "a", owner="alice").start()
    second = training.TrainingJob(windows, spec, config, tmp_path / "b", owner="bob").start()
    third = training.TrainingJob(windows, spec, config, tmp_path / "c", owner="carol").start()
    assert second.snapshot()["queue_position"] in (1, 2) and third.snapshot()["queue_position"] in (2, 3)
    third.stop()
    assert third.wait(5) and third.status == "failed" and "Cancelled" in third.snapshot()["error"]
    assert first.wait(300) and second.wait(300)
    assert first.status == "done" and second.status == "done"
    assert (tmp_path / "a" / "run.json").exists() and (tmp_path / "b" / "run.json").exists()
    assert not (tmp_path / "c").exists()
