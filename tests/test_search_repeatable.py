"""Issue 34 (4): the search and the training give the same model for the same data, options and seed, on a busy
machine as on a quiet one. Busy is made, not timed: processes burn the CPU beside the second run."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.defaults import default_config
from core.search import TRIAL_EPOCHS, TRIAL_WORK, search_default, trial_epochs
from core.windows import make_windows


def _series(n: int = 700, seed: int = 5) -> Dataset:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 20 + 5 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 0.3, n)) + rng.normal(0, 0.5, n)
    frame = pd.DataFrame({"y": y}, index=pd.date_range("1960-01-01", periods=n, freq="MS", name="time"))
    return Dataset(name="monthly", frame=frame, freq="MS")


class _Burn:
    """Processes spinning on every core while the block runs (ended by their own handles)."""

    def __init__(self, n: int = 2) -> None:
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def test_a_trial_is_bounded_by_work_not_by_the_clock():
    ds = _series(3000)
    cfg = default_config(ds, "y")
    win = make_windows(ds, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind)
    epochs = trial_epochs(win, cfg.train_config)
    assert 1 <= epochs <= TRIAL_EPOCHS
    steps = -(-min(win.count("train"), 2048) // cfg.train_config.batch_size)
    assert epochs == 1 or epochs * steps * cfg.window_spec.window <= TRIAL_WORK


def _search_and_train(ds, cfg):
    from core.training import train

    res = search_default(ds, cfg, forms=("change_last", "level"))
    chosen = res.config
    win = make_windows(ds, chosen.window_spec, chosen.split, scaler_kind=chosen.scaler_kind)
    with tempfile.TemporaryDirectory() as tmp:
        run = train(win, chosen.model_spec(), chosen.train_config, Path(tmp) / "run", references=False)
        weights = [np.array(w) for w in run.weights]
    return res, weights, run.metrics["model"]["mae"]


@pytest.mark.slow
def test_the_same_seed_gives_the_same_model_on_a_busy_machine():
    import dataclasses

    ds = _series(300)
    cfg = default_config(ds, "y")
    # A few epochs keep the test short; the bound is the same whatever the count.
    cfg = dataclasses.replace(cfg, train_config=dataclasses.replace(cfg.train_config, epochs=6, patience=3))
    quiet, w_quiet, mae_quiet = _search_and_train(ds, cfg)
    with _Burn():
        busy, w_busy, mae_busy = _search_and_train(ds, cfg)
    assert not quiet.clock_stopped and not busy.clock_stopped
    key = [(t.target_form, t.window, t.score, t.epochs_run, t.skipped) for t in quiet.trials]
    assert key == [(t.target_form, t.window, t.score, t.epochs_run, t.skipped) for t in busy.trials]
    assert quiet.config.model_options == busy.config.model_options
    assert quiet.config.window_spec == busy.config.window_spec
    assert len(w_quiet) == len(w_busy) and all(np.array_equal(a, b) for a, b in zip(w_quiet, w_busy))
    assert mae_quiet == mae_busy
