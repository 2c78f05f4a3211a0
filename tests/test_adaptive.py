"""Adaptive bands (issue 33): core.adaptive's tracker and the walk-forward test coverage beside the static bands."""
from __future__ import annotations

import numpy as np

from core.adaptive import Tracker, coverage, floors, steps, walk_forward
from core.alarms import longest_run
from core.intervals import build, summary_lines


def _drifting(n=600, seed=0):
    """Forecast errors whose spread triples over the stream: a static band calibrated on the start under-covers."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(1.0, 3.0, n)[:, None, None]
    pred = np.zeros((n, 2, 1))
    actual = rng.normal(0, 1, (n, 2, 1)) * scale
    return actual, pred


def test_walk_forward_uses_only_errors_known_before_each_forecast():
    actual, pred = _drifting(50)
    hw = np.ones((1, 2, 1), np.float32)
    up, down = steps(["80"], shape=(2, 1))
    w1 = walk_forward(actual, pred, hw, up, down, floors(np.ones(1)))
    changed = actual.copy()
    changed[30] = pred[30] + 100.0  # window 30's actuals: step 0 is known at window 31, step 1 at window 32
    w2 = walk_forward(changed, pred, hw, up, down, floors(np.ones(1)))
    np.testing.assert_array_equal(w1[:31], w2[:31])
    assert w2[31, 0, 1, 0] == w1[31, 0, 1, 0]  # step 1 of window 30 is not known yet
    assert w2[31, 0, 0, 0] > w1[31, 0, 0, 0] or w2[32, 0, 1, 0] > w1[32, 0, 1, 0]


def test_adaptive_band_holds_its_level_where_the_static_one_fails():
    actual, pred = _drifting()
    calib = actual[:100] / np.linspace(1.0, 3.0, 600)[:100, None, None]  # errors of the start only
    hw = np.stack([np.quantile(np.abs(calib), 0.8, axis=0), np.quantile(np.abs(calib), 0.95, axis=0)]).astype(np.float32)
    up, down = steps(["80", "95"], shape=(2, 1))
    static = coverage(actual, pred, np.broadcast_to(hw[None], (600,) + hw.shape))[0]
    adaptive = coverage(actual, pred, walk_forward(actual, pred, hw, up, down, floors(np.ones(1))))[0]
    assert static[0] < 70 and static[1] < 88
    assert abs(adaptive[0] - 80) < 5 and abs(adaptive[1] - 95) < 5


def test_a_band_of_zero_width_opens_from_the_floor():
    up, down = steps(["95"], shape=(1, 1))
    tracker = Tracker(np.zeros((1, 1, 1), np.float32), up, down, floors(np.array([2.0])))
    tracker.update(0, 0, np.float32(0.0))  # a hit: held at the floor, not stuck at zero
    assert tracker.q[0, 0, 0] == np.float32(0.002)
    for _ in range(100):
        tracker.update(0, 0, np.float32(1.0))
    assert tracker.q[0, 0, 0] > 1.0


def test_longest_run_counts_consecutive_equal_values():
    assert longest_run(np.array([[1.0, 5], [1, 5], [2, 5], [2, 6], [2, 6]])) == [3, 3]
    assert longest_run(np.array([np.nan, np.nan, 1.0])) == [1]


def test_summary_names_the_adaptive_coverage_beside_the_static():
    actual, pred = _drifting(400)
    record = build(actual[:150], pred[:150], actual[150:], pred[150:], ["temp"], [80])
    from core.adaptive import adaptive_record

    record["adaptive"] = adaptive_record(record, actual[150:], pred[150:], np.ones(1))
    line = summary_lines(record)[0]
    assert "80% band:" in line and "adaptive on the board, walking forward:" in line
