"""Issue L: int8 calibration covers the range the deployed model will see (core.export.calibration_windows)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.config import DEFAULTS
from core.export import calibration_windows, count_clipped
from core.windows import calendar_columns


def _run(val_top: float, calendar=("hour",)):
    rng = np.random.default_rng(0)
    cal = calendar_columns(calendar)
    cols = ("level", "other") + cal
    train = rng.uniform(0, 1, (200, 12, len(cols))).astype(np.float32)
    val = rng.uniform(0, 1, (60, 12, len(cols))).astype(np.float32)
    val[..., 0] += val_top - 1.0  # the level drifts past the training maximum in validation
    for j in range(2, len(cols)):
        train[..., j] = val[..., j] = np.sin(np.linspace(0, 6, 12))[None]  # fixed-range calendar columns
    spec = SimpleNamespace(calendar=tuple(calendar), input_columns=cols, target_input_index=(0,))
    return SimpleNamespace(samples={"X_rep": train, "X_val": val}, window_spec=spec)


def test_the_range_reaches_past_the_drift_validation_shows():
    run = _run(val_top=1.3)
    rep, record = calibration_windows(run)
    frac = DEFAULTS["export"]["int8_headroom"]
    # Validation reached 1.3; one more part of the same drift (0.3) or the fixed headroom, whichever is more.
    assert rep[..., 0].max() >= 1.3 + max(0.3, frac) - 0.01  # (validation windows are a sample of 1.3)
    assert rep[..., 0].min() <= 0.0 - frac + 0.01
    assert rep[..., 1].max() >= 1.0 + frac - 0.01           # a stationary column still gets its headroom
    calendar = rep[..., 2:]
    assert calendar.max() <= 1.0 + 1e-6 and calendar.min() >= -1.0 - 1e-6   # calendar columns are not shifted
    assert record["calibration_windows"]["validation"] > 0 and record["calibration_windows"]["shifted"] > 0
    assert len(rep) <= 2 * DEFAULTS["export"]["rep_windows"]


def test_an_older_run_without_validation_windows_still_calibrates():
    run = _run(val_top=1.0)
    del run.samples["X_val"]
    rep, record = calibration_windows(run)
    assert record["calibration_windows"]["validation"] == 0 and np.isfinite(rep).all()


@pytest.mark.parametrize("values, clipped", [([0.0, 1.0], 0), ([-2.0, 0.5, 3.0], 2)])
def test_inputs_outside_the_int8_range_are_counted(values, clipped):
    quant = {"scale": 1.0 / 100.0, "zero_point": 0}   # int8 covers [-1.28, 1.27]
    assert count_clipped(np.array(values), quant) == clipped
