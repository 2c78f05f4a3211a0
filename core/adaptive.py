"""Adaptive bands (issue 33): the calibrated half-widths keep learning from the errors a stream reveals.

The rule is online quantile tracking, the update of adaptive conformal inference written on the half-width
itself (Angelopoulos, Candes, Tibshirani, "Conformal PID control", the quantile-tracking step), taken in log
space so the step scales with the band: for each level L, target and forecast step, starting from the
exported split-conformal half-width q0,

    miss = |actual - forecast| > q        (the reading fell outside the band forecast for it)
    q   <- q * up              if miss    up   = exp(GAMMA * L / 100)
    q   <- max(q * down, floor) otherwise down = exp(-GAMMA * (1 - L / 100))

so log q rises by GAMMA * L/100 after a miss and falls by GAMMA * (1 - L/100) after a hit: it stands still
exactly when the share of misses is 1 - L/100, and over any stretch the share of misses stays within
(log q_max - log q0) / (GAMMA * n) of it whatever the errors do (ACI's long-run coverage guarantee). The floor (a
thousandth of the target's scale) keeps a band calibrated to zero width (constant errors) able to open.

Why this rule (bench/bench_alarms.py, BENCHMARKS.md "Adaptive bands"): on the sample_data/quality series it
holds coverage as well as a rolling quantile of the last 100 errors where the static band already holds, and
much better where the static band fails (a level forecaster on a trending series: co2 weekly 80% band, static
5%, additive tracking 62%, rolling quantile 55%, this rule 68%); it needs three floats per cell instead of a
hundred, and costs one compare and one multiply per cell and reading, where the rolling quantile sorts a window.

Bit-for-bit with the board: every quantity is float32, `up`, `down` and the floor are computed here once and
written into model_config.h as exact literals, and the board's update is one float multiply (and a max) per
cell, so fs_protocol.cpp, the emulator and `Tracker` give the same bits.

Truth on a stream: a reading at time T is the actual for the forecast made 1 + h readings earlier, step h
(the reading's column ``target_input[t]``); `walk_forward` replays exactly that order over the test part,
each band updated only from errors already known when its forecast is made.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

GAMMA = 0.1  # the tracker's step in log q (bench_alarms: 0.05, 0.1, 0.2 tried)
FLOOR_SHARE = 1e-3  # of the target's scale: the smallest step, for a band calibrated to zero width


def floors(target_scale: np.ndarray) -> np.ndarray:
    """The smallest half-width per target, float32: a thousandth of the target's scale."""
    return (np.float32(FLOOR_SHARE) * np.abs(np.asarray(target_scale, dtype=np.float32))).astype(np.float32)


def steps(levels: Sequence[str], gamma: float = GAMMA, shape: tuple[int, int] = (1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) factors, float32 (levels, horizon, targets): a miss multiplies the half-width by up, a hit by down."""
    cover = np.array([float(level) / 100.0 for level in levels], dtype=np.float64)[:, None, None]
    up = np.broadcast_to(np.exp(gamma * cover), (len(levels),) + tuple(shape)).astype(np.float32)
    down = np.broadcast_to(np.exp(-gamma * (1.0 - cover)), (len(levels),) + tuple(shape)).astype(np.float32)
    return up, down


class Tracker:
    """The board's adaptive half-widths, (levels, horizon, targets) float32, updated as fs_protocol.cpp does."""

    def __init__(self, half_width: np.ndarray, up: np.ndarray, down: np.ndarray, floor: np.ndarray) -> None:
        self.q = np.array(half_width, dtype=np.float32, copy=True)
        self.up = np.asarray(up, dtype=np.float32)
        self.down = np.asarray(down, dtype=np.float32)
        self.floor = np.asarray(floor, dtype=np.float32)

    def update(self, step: int, target: int, abs_error: np.float32) -> None:
        """One known error for (step, target): every level's half-width moves, in level order."""
        e = np.float32(abs_error)
        for level in range(self.q.shape[0]):
            q = self.q[level, step, target]
            if e > q:
                q = np.float32(q * self.up[level, step, target])
            else:
                q = np.float32(q * self.down[level, step, target])
                if q < self.floor[target]:
                    q = self.floor[target]
            self.q[level, step, target] = q


def abs_error(actual, forecast) -> np.float32:
    """|actual - forecast| in float32, as the board takes it (fabsf of a float difference)."""
    return np.float32(abs(np.float32(np.float32(actual) - np.float32(forecast))))


def walk_forward(actual: np.ndarray, pred: np.ndarray, half_width: np.ndarray, up: np.ndarray,
                 down: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """The half-widths each test forecast is issued with, walking forward through consecutive windows.

    actual, pred: (n, horizon, targets), window i's step h lands one step after window i + h - 1's origin, so
    when window i is forecast the errors of (j, h) with j + h <= i - 1 are known. Returns (n, levels, horizon,
    targets) float32: window i's bands, updated from every error known before it and from no other. NaN
    actuals or forecasts (a gap) leave the bands as they are.
    """
    a = np.asarray(actual, dtype=np.float32)
    p = np.asarray(pred, dtype=np.float32)
    n, horizon, targets = a.shape
    tracker = Tracker(half_width, up, down, floor)
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
    up, down = steps(levels, shape=hw.shape[1:])
    widths = walk_forward(test_actual, test_pred, hw, up, down, floors(target_scale))
    overall, per_target = coverage(test_actual, test_pred, widths)
    return {"method": f"online quantile tracking (adaptive conformal, log-space step {GAMMA:g}), updated walking "
                      "forward through the test part from errors already known",
            "gamma": GAMMA,
            "levels": {k: {"coverage": overall[i], "coverage_per_target": per_target[i],
                           "final_mean_width": (2.0 * widths[-1, i].astype(np.float64).mean(axis=0)).tolist()}
                       for i, k in enumerate(levels)}}
