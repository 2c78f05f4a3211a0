"""Adaptive bands (issue 33): core.adaptive's tracker and the walk-forward test coverage beside the static bands."""
from __future__ import annotations

import numpy as np

from core.adaptive import Tracker, coverage, floors, start, steps, walk_forward, walk_levels
from core.alarms import inside_runs, longest_run, stuck_edges
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


def test_runs_inside_the_range_leave_out_the_runs_at_its_bounds():
    """Humidity held at 100 for 5 readings, 0 at night for 4: inside them the longest run is 2; a column with only
    its bounds keeps its longest run; the edges move in by a 100,000th of the range, in float32."""
    hum = np.array([100, 100, 100, 100, 100, 80, 80, 70, 0, 0, 0, 0, 50.0])
    binary = np.array([0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1.0])
    runs, ranges = inside_runs(np.c_[hum, binary])
    assert runs == [2, 3] and ranges == [(0.0, 100.0), (0.0, 1.0)]
    (lo, hi), _ = stuck_edges(ranges)
    assert lo == float(np.float32(1e-3)) and hi == float(np.float32(100 - 1e-3))


def test_summary_names_the_adaptive_coverage_beside_the_static():
    actual, pred = _drifting(400)
    record = build(actual[:150], pred[:150], actual[150:], pred[150:], ["temp"], [80])
    from core.adaptive import adaptive_record

    record["adaptive"] = adaptive_record(record, actual[150:], pred[150:], np.ones(1))
    line = summary_lines(record)[0]
    assert "80% band:" in line and "adaptive on the board, walking forward:" in line


def test_the_scale_catches_up_only_while_every_multiplier_is_pinned():
    """A band far too narrow: misses at every level pin every multiplier at twice its start, and from then the error
    counts whole at twice the rate (core.adaptive.CATCH_UP); before that, and with catch_up=False, at most CLIP
    scales at BETA. A single wild error (a spike) never pins them, so it moves the scale as before."""
    from core.adaptive import BETA, CLIP

    levels = ["80", "95"]
    hw = np.array([[[1.0]], [[2.0]]], np.float32)
    up, down = steps(levels, shape=(1, 1))
    floor = floors(np.ones(1))
    s0, m0 = start(levels, hw, floor)
    fast, slow = (Tracker(hw, up, down, floor, s0, m0, catch_up=c) for c in (True, False))
    for i in range(12):
        s_before = fast.s[0, 0]
        fast.update(0, 0, np.float32(50.0))
        slow.update(0, 0, np.float32(50.0))
        pinned = bool(np.all(fast.m[:, 0, 0] >= np.float32(2) * fast.m0[:, 0, 0]))
        cap = np.float32(s_before * np.float32(CLIP))
        counted, beta = (np.float32(50.0), np.float32(BETA * 2)) if pinned else (min(cap, np.float32(50.0)), np.float32(BETA))
        assert fast.s[0, 0] == np.float32(s_before + np.float32(np.float32(counted - s_before) * beta))
    assert fast.q[1, 0, 0] > 3 * slow.q[1, 0, 0]
    spike = Tracker(hw, up, down, floor, s0, m0)
    spike.update(0, 0, np.float32(50.0))
    assert spike.s[0, 0] == np.float32(s0[0, 0] + np.float32(np.float32(s0[0, 0] * np.float32(CLIP) - s0[0, 0]) * np.float32(BETA)))


def test_the_alarm_band_is_never_narrower_than_the_exported_one():
    """core.alarms.Watch: after a quiet stretch the adaptive 95% band narrows, the alarm band (margin x the half-width)
    does not go under margin x the exported half-width; with alarm_floor=False (the rule before) it does."""
    import dataclasses

    from core.alarms import Watch, WatchSpec

    levels = ("80", "95")
    hw = np.array([[[1.0]], [[2.0]]], np.float32)
    up, down = steps(levels, shape=(1, 1))
    floor = floors(np.ones(1))
    s0, m0 = start(levels, hw, floor)
    spec = WatchSpec(horizon=1, targets=1, columns=(0,), levels=levels, half_width=hw, up=up, down=down, floor=floor,
                     scale0=s0, mult0=m0, alarm_level=1, margin=1.5)
    for alarm_floor, width in ((True, np.float32(3.0)), (False, None)):
        watch = Watch(dataclasses.replace(spec, alarm_floor=alarm_floor))
        x = 0.0
        for i in range(60):
            x += 0.01 if i % 2 else -0.01
            watch.reading(np.array([x], np.float32))
            watch.forecast(np.array([x], np.float32))
        assert watch.tracker.q[1, 0, 0] < 0.5
        half = np.float32((watch.alarm_hi[0] - watch.alarm_lo[0]) / 2)
        if width is not None:
            assert abs(half - width) < 1e-5
            assert watch.reading(np.array([x + 2.5], np.float32)) == []  # outside the printed band, not an alarm
        else:
            assert half < 1.0 and watch.reading(np.array([x + 2.5], np.float32))
