"""Adaptive bands (issue 33): the calibrated half-widths keep learning from the errors a stream reveals.

The rule is a scale times a level correction. For each target and forecast step a *scale* s follows the size of
the errors (an exponential average of |error|, each error counted at most CLIP times the scale, so one wild
reading moves it by at most BETA * (CLIP - 1)); for each level L a *multiplier* m is adaptive conformal
inference's quantile tracking, in log space, on q = m * s (Angelopoulos, Candes, Tibshirani, "Conformal PID
control"):

    e = |actual - forecast|
    miss = e > q                    (the reading fell outside the band forecast for it)
    m <- min(m * up,   2 m0)  if miss    up   = exp(GAMMA * L / 100)
    m <- max(m * down, m0 / 2) otherwise down = exp(-GAMMA * (1 - L / 100))
    pinned = every level's m == 2 m0 (after this update)
    s <- max(s + (e - s) * CATCH_UP * BETA, floor)     if pinned
    s <- max(s + (min(e, CLIP s) - s) * BETA, floor)   otherwise
    q <- m * s

The scale carries an error that keeps growing (a level forecaster leaving its training range), so the multiplier
only corrects the level: it stands still when the share of misses is 1 - L/100, and kept within MULT_RANGE of its
start it bounds both the coverage error over n readings ((2 log MULT_RANGE) / (GAMMA n), ACI's guarantee) and how
long an anomaly can keep the band wide. It starts from the exported split-conformal half-width q0: s0 is the
narrowest band's q0 over its normal quantile times sqrt(2/pi) (a normal error's mean |error|), m0 = q0 / s0, so
before any reading the band is exactly q0. The floor (a thousandth of the target's scale) keeps a band calibrated
to zero width able to open.

The catch-up (pinned): a band that starts far too narrow (test errors 5-10 times the validation errors the bands
were calibrated on) misses at every level, and the clip, there so one wild reading moves the scale by little, kept
the scale from growing by more than 15% a reading: over the first 100 test windows the bands covered up to 8 points
short (seattle temp_max 73.3 / 87.7 at 80 / 95). Only a run of misses pins every multiplier at its bound (a spike,
a shift or a drift never did on the bench), so counting the error whole at twice the rate then costs nothing where
the band fits: bench_alarms --part jump, first 100 windows at errors x10, 73.3 / 87.7 -> 77.3 / 90.7 (temp_max),
75.7 / 90.7 -> 77.3 / 94.0 (co2), readings until the 95% band reaches 90% of its right width 22 -> 14 and 27 -> 13;
the anomaly recovery figures unchanged. One compare per cell and reading on the board, no new state.

Why this rule (bench/bench_alarms.py, BENCHMARKS.md "Adaptive bands"): quantile tracking alone (the rule before,
log-space step 0.1) fell 12 and 36-41 points short where the error grows (co2 and us_macro with a clipped level
forecaster) because its only way up is a fixed step per miss; a larger step (0.4) still missed by 14 and made
the band noisy, and an anomaly kept it wide for a median 124 readings (up to 543). ACI on the level of a window
of recent errors lags a growing error as a rolling quantile does. Scale x level holds every bench series of more
than 30 test windows within 5 points, and recovers from an injected spike, shift or drift in a median 32
readings; it costs per cell and reading two compares and two multiplies, and per step one compare, a multiply and
an add, with three floats per cell (q, m and m0) and two per step (s and s0).

Bit-for-bit with the board: every quantity is float32, the constants are computed here once and written into
model_config.h as exact literals, and the board runs the same operations in the same order (no fused
multiply-add: fs_protocol.cpp turns contraction off), so fs_protocol.cpp, the emulator and `Tracker` give the
same bits.

Truth on a stream: a reading at time T is the actual for the forecast made 1 + h readings earlier, step h
(the reading's column ``target_input[t]``); `walk_forward` replays exactly that order over the test part,
each band updated only from errors already known when its forecast is made.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

import numpy as np

GAMMA = 0.2  # the multiplier's step in log m (bench_alarms: quantile tracking alone at 0.05-0.4, scale x level at 0.1-0.3)
BETA = 0.05  # the scale's averaging rate per error (bench_alarms: 0.05, 0.1)
CLIP = 4.0  # an error counts at most this many scales in the average (a spike's share)
CATCH_UP = 2.0  # the scale's rate is multiplied by this (exact in float32) while every multiplier is pinned high
MULT_RANGE = 2.0  # the multiplier stays within m0 / 2 .. 2 m0 (a power of two: the bounds are exact in float32)
FLOOR_SHARE = 1e-3  # of the target's scale: the smallest scale, for a band calibrated to zero width


def floors(target_scale: np.ndarray) -> np.ndarray:
    """The smallest scale per target, float32: a thousandth of the target's scale."""
    return (np.float32(FLOOR_SHARE) * np.abs(np.asarray(target_scale, dtype=np.float32))).astype(np.float32)


def steps(levels: Sequence[str], gamma: float = GAMMA, shape: tuple[int, int] = (1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) factors, float32 (levels, horizon, targets): a miss multiplies the multiplier by up, a hit by down."""
    cover = np.array([float(level) / 100.0 for level in levels], dtype=np.float64)[:, None, None]
    up = np.broadcast_to(np.exp(gamma * cover), (len(levels),) + tuple(shape)).astype(np.float32)
    down = np.broadcast_to(np.exp(-gamma * (1.0 - cover)), (len(levels),) + tuple(shape)).astype(np.float32)
    return up, down


def start(levels: Sequence[str], half_width: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s0 (horizon, targets), m0 (levels, horizon, targets)), float32: the scale a normal error with the narrowest
    band's half-width would have (its mean |error|), at least the floor, and each level's multiplier m0 = q0 / s0
    (a band of zero width, or a zero scale, starts from the normal ratio instead)."""
    hw = np.asarray(half_width, dtype=np.float32)
    narrow = min(range(len(levels)), key=lambda i: float(levels[i]))
    to_mean = np.float32(math.sqrt(2.0 / math.pi) / NormalDist().inv_cdf(0.5 + float(levels[narrow]) / 200.0))
    s0 = np.maximum((hw[narrow] * to_mean).astype(np.float32), np.asarray(floor, np.float32)[None, :]).astype(np.float32)
    ratio = np.array([NormalDist().inv_cdf(0.5 + float(l) / 200.0) / math.sqrt(2.0 / math.pi) for l in levels],
                     np.float32)[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = (hw / s0[None]).astype(np.float32)
    m0 = np.where((hw > 0) & (s0[None] > 0) & np.isfinite(m0), m0, np.broadcast_to(ratio, hw.shape)).astype(np.float32)
    return s0.astype(np.float32), m0


class Tracker:
    """The board's adaptive half-widths q (levels, horizon, targets) float32, updated as fs_protocol.cpp does:
    q = m * s, the multiplier m per cell, the scale s per step and target."""

    def __init__(self, half_width: np.ndarray, up: np.ndarray, down: np.ndarray, floor: np.ndarray,
                 scale0: np.ndarray, mult0: np.ndarray, beta: float = BETA, clip: float = CLIP,
                 catch_up: bool = True) -> None:
        self.q = np.array(half_width, dtype=np.float32, copy=True)
        self.up = np.asarray(up, dtype=np.float32)
        self.down = np.asarray(down, dtype=np.float32)
        self.floor = np.asarray(floor, dtype=np.float32)
        self.m0 = np.asarray(mult0, dtype=np.float32)
        self.m = np.array(mult0, dtype=np.float32, copy=True)
        self.s = np.array(scale0, dtype=np.float32, copy=True)
        self.beta = np.float32(beta)
        self.clip = np.float32(clip)
        self.catch_up = catch_up  # False: the rule before the catch-up (bench_alarms' variant; the board always has it)

    def update(self, step: int, target: int, abs_error: np.float32) -> None:
        """One known error for (step, target): every level's multiplier moves, in level order, then the scale
        (counted unclipped at twice the rate while every level's multiplier is pinned at its upper bound)."""
        e = np.float32(abs_error)
        hi_f, lo_f = np.float32(MULT_RANGE), np.float32(1.0 / MULT_RANGE)
        levels = self.q.shape[0]
        pinned = self.catch_up
        for level in range(levels):
            m = self.m[level, step, target]
            m0 = self.m0[level, step, target]
            hi = np.float32(m0 * hi_f)
            if e > self.q[level, step, target]:
                m = np.float32(m * self.up[level, step, target])
                if m > hi:
                    m = hi
            else:
                m = np.float32(m * self.down[level, step, target])
                lo = np.float32(m0 * lo_f)
                if m < lo:
                    m = lo
            if m < hi:
                pinned = False
            self.m[level, step, target] = m
        s = self.s[step, target]
        if pinned:  # misses at every level, every multiplier at its bound: the scale catches up (CATCH_UP)
            counted, beta = e, np.float32(self.beta * np.float32(CATCH_UP))
        else:
            c = np.float32(s * self.clip)
            counted, beta = (c if e > c else e), self.beta
        s = np.float32(s + np.float32(np.float32(counted - s) * beta))
        if s < self.floor[target]:
            s = self.floor[target]
        self.s[step, target] = s
        for level in range(levels):
            self.q[level, step, target] = np.float32(self.m[level, step, target] * s)


def abs_error(actual, forecast) -> np.float32:
    """|actual - forecast| in float32, as the board takes it (fabsf of a float difference)."""
    return np.float32(abs(np.float32(np.float32(actual) - np.float32(forecast))))


def walk_forward(actual: np.ndarray, pred: np.ndarray, half_width: np.ndarray, up: np.ndarray,
                 down: np.ndarray, floor: np.ndarray, scale0: np.ndarray, mult0: np.ndarray,
                 beta: float = BETA, clip: float = CLIP, catch_up: bool = True) -> np.ndarray:
    """The half-widths each test forecast is issued with, walking forward through consecutive windows.

    actual, pred: (n, horizon, targets), window i's step h lands one step after window i + h - 1's origin, so
    when window i is forecast the errors of (j, h) with j + h <= i - 1 are known. Returns (n, levels, horizon,
    targets) float32: window i's bands, updated from every error known before it and from no other. NaN
    actuals or forecasts (a gap) leave the bands as they are.
    """
    a = np.asarray(actual, dtype=np.float32)
    p = np.asarray(pred, dtype=np.float32)
    n, horizon, targets = a.shape
    tracker = Tracker(half_width, up, down, floor, scale0, mult0, beta, clip, catch_up)
    out = np.empty((n,) + tracker.q.shape, dtype=np.float32)
    for i in range(n):
        # The reading at time i - 1 (window i - 1's first label) closes window i - 1 - h's step h.
        for h in range(horizon):
            j = i - 1 - h
            if j < 0:
                continue
            for t in range(targets):
                y, f = a[j, h, t], p[j, h, t]
                if np.isfinite(y) and np.isfinite(f):
                    tracker.update(h, t, abs_error(y, f))
        out[i] = tracker.q
    return out


def walk_levels(actual: np.ndarray, pred: np.ndarray, levels: Sequence[str], half_width: np.ndarray,
                target_scale: np.ndarray, gamma: float = GAMMA, beta: float = BETA, clip: float = CLIP,
                catch_up: bool = True) -> np.ndarray:
    """walk_forward with the board's constants made from the levels, the exported half-widths and the target's scale."""
    hw = np.asarray(half_width, np.float32)
    up, down = steps(levels, gamma=gamma, shape=hw.shape[1:])
    floor = floors(target_scale)
    s0, m0 = start(levels, hw, floor)
    return walk_forward(actual, pred, hw, up, down, floor, s0, m0, beta, clip, catch_up)


def coverage(actual: np.ndarray, pred: np.ndarray, widths: np.ndarray) -> tuple[list[float], list[float]]:
    """Share (%) of finite actuals inside pred -/+ the per-window widths (n, levels, horizon, targets):
    per level overall, and per level and target."""
    a = np.asarray(actual, dtype=np.float32)
    p = np.asarray(pred, dtype=np.float32)
    ok = np.isfinite(a) & np.isfinite(p)
    err = np.abs((a - p).astype(np.float32))
    overall, per_target = [], []
    for level in range(widths.shape[1]):
        inside = ok & (err <= widths[:, level])
        overall.append(100.0 * float(inside.sum()) / max(1, int(ok.sum())))
        per_target.append([100.0 * float(inside[..., t].sum()) / max(1, int(ok[..., t].sum()))
                           for t in range(a.shape[2])])
    return overall, per_target


def adaptive_record(record: dict, test_actual: np.ndarray | None, test_pred: np.ndarray | None,
                    target_scale: np.ndarray) -> dict:
    """intervals.json's "adaptive" entry: per level, the walk-forward test coverage of the adaptive bands
    (beside the static band's "coverage"), their mean width at the test's end, and the rule's step."""
    levels = [k for k in record.get("bands", {})]
    if not levels or test_actual is None or test_pred is None or not len(test_actual):
        return {}
    hw = np.stack([np.asarray(record["bands"][k]["half_width"], dtype=np.float32) for k in levels])
    widths = walk_levels(test_actual, test_pred, levels, hw, target_scale)
    overall, per_target = coverage(test_actual, test_pred, widths)
    return {"method": f"an average error scale (rate {BETA:g}, {CATCH_UP:g}x and unclipped while every level misses at "
                      f"its bound) times a level multiplier by adaptive conformal quantile tracking (log-space step "
                      f"{GAMMA:g}), updated walking forward through the test part from errors already known",
            "gamma": GAMMA, "beta": BETA,
            "levels": {k: {"coverage": overall[i], "coverage_per_target": per_target[i],
                           "final_mean_width": (2.0 * widths[-1, i].astype(np.float64).mean(axis=0)).tolist()}
                       for i, k in enumerate(levels)}}
