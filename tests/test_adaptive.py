"""Adaptive bands (issue 33): core.adaptive's tracker and the walk-forward test coverage beside the static bands."""
from __future__ import annotations

import numpy as np

from core.adaptive import Tracker, coverage, floors, start, steps, walk_forward, walk_levels
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
    w1 = walk_levels(actual, pred, ["80"], hw, np.ones(1))
    changed = actual.copy()
    changed[30] = pred[30] + 100.0  # window 30's actuals: step 0 is known at window 31, step 1 at window 32
    w2 = walk_levels(changed, pred, ["80"], hw, np.ones(1))
    np.testing.assert_array_equal(w1[:31], w2[:31])
    assert w2[31, 0, 1, 0] == w1[31, 0, 1, 0]  # step 1 of window 30 is not known yet
    assert w2[31, 0, 0, 0] > w1[31, 0, 0, 0] or w2[32, 0, 1, 0] > w1[32, 0, 1, 0]


def test_adaptive_band_holds_its_level_where_the_static_one_fails():
    actual, pred = _drifting()
    calib = actual[:100] / np.linspace(1.0, 3.0, 600)[:100, None, None]  # errors of the start only
    hw = np.stack([np.quantile(np.abs(calib), 0.8, axis=0), np.quantile(np.abs(calib), 0.95, axis=0)]).astype(np.float32)
    static = coverage(actual, pred, np.broadcast_to(hw[None], (600,) + hw.shape))[0]
    adaptive = coverage(actual, pred, walk_levels(actual, pred, ["80", "95"], hw, np.ones(1)))[0]
    assert static[0] < 70 and static[1] < 88
    assert abs(adaptive[0] - 80) < 5 and abs(adaptive[1] - 95) < 5


def test_a_band_of_zero_width_opens_from_the_floor():
    up, down = steps(["95"], shape=(1, 1))
    floor = floors(np.array([2.0]))
    s0, m0 = start(["95"], np.zeros((1, 1, 1), np.float32), floor)
    assert s0[0, 0] == np.float32(0.002) and m0[0, 0, 0] > 2  # the normal ratio, not 0 / 0
    tracker = Tracker(np.zeros((1, 1, 1), np.float32), up, down, floor, s0, m0)
    tracker.update(0, 0, np.float32(0.0))  # a hit: the scale held at the floor, the band open, not stuck at zero
    assert tracker.s[0, 0] == np.float32(0.002) and tracker.q[0, 0, 0] > 0
    for _ in range(100):
        tracker.update(0, 0, np.float32(1.0))
    assert tracker.q[0, 0, 0] > 1.0


def _growing(n=400, seed=1):
    """A level forecaster left behind by a trend: the error grows tenfold over the stream, with noise."""
    rng = np.random.default_rng(seed)
    growth = np.linspace(1.0, 10.0, n)[:, None, None]
    return growth + rng.normal(0, 0.5, (n, 2, 1)), np.zeros((n, 2, 1))


def test_adaptive_band_holds_its_level_where_the_error_keeps_growing():
    """Quantile tracking alone (the rule before) fell behind an error that keeps growing (a clipped level
    forecaster on a trending series: co2 68 / 88 at 80 / 95); the error scale carries the growth."""
    actual, pred = _growing()
    calib = np.abs(np.random.default_rng(2).normal(1.0, 0.5, (200, 2, 1)))
    hw = np.stack([np.quantile(calib, 0.8, axis=0), np.quantile(calib, 0.95, axis=0)]).astype(np.float32)
    adaptive = coverage(actual, pred, walk_levels(actual, pred, ["80", "95"], hw, np.ones(1)))[0]
    assert abs(adaptive[0] - 80) < 5 and abs(adaptive[1] - 95) < 5, adaptive


def test_one_wild_error_widens_the_band_briefly():
    """A single error 50 times the band moves the scale by at most 0.05 x (4 - 1) and the multiplier one step:
    against a twin that never saw it, the 95% band is at most 1.5 times as wide, and back within 10% in 40
    ordinary readings (quantile tracking alone needed 0.095 / 0.005 = 19 hits per miss, unbounded)."""
    hw = np.array([[[1.0]], [[2.0]]], np.float32)
    up, down = steps(["80", "95"], shape=(1, 1))
    floor = floors(np.ones(1))
    s0, m0 = start(["80", "95"], hw, floor)
    hit, twin = Tracker(hw, up, down, floor, s0, m0), Tracker(hw, up, down, floor, s0, m0)
    errors = np.abs(np.random.default_rng(0).normal(0, 0.78, 300)).astype(np.float32)
    for e in errors[:200]:
        hit.update(0, 0, e)
        twin.update(0, 0, e)
    hit.update(0, 0, np.float32(100.0))
    assert float(hit.q[1, 0, 0]) < 1.5 * float(twin.q[1, 0, 0])
    ratio = []
    for e in errors[200:]:
        hit.update(0, 0, e)
        twin.update(0, 0, e)
        ratio.append(float(hit.q[1, 0, 0]) / float(twin.q[1, 0, 0]))
    assert abs(ratio[39] - 1) < 0.1, ratio[:45]


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
