"""Holt-Winters as weights over a window: the exponential smoothing forecast the linear reference can start from.

Why: on short seasonal series ETS was 1.2-1.7x better than the default (quarterly gas, US accidental deaths,
electrical equipment, beer, debit cards), while a ridge over the window, the linear reference, learns every one of
its window-many weights from a few dozen windows and generalises worse. Additive Holt-Winters with its parameters
fixed is a linear filter of the values it runs over; run over the window alone, from a starting state that is
itself linear in the window, it is one weight per window row and step, what the "change_linear" form already adds
back on the board (fs_protocol.cpp's float sum): no new code on the board, and a network that starts from
exponential smoothing instead of from a line fitted to each row.

Truncated to the window, it is not statsmodels' forecast from the whole history: the starting state is read from
the window (least squares over it: a level, a slope for a trend model, one offset per phase), so a window of several seasons gets close (quarterly gas h=1: 30.5 against ETS's 33.4 at
8 quarters; beer h=1: 10.45 against 10.40 at 16 quarters) and a window of one season only gives seasonal naive back.

The parameters (alpha, beta, gamma, phi) come from ``core.references.fit_smoothing`` on the training part, in the
scaled (for a multiplicative target, log) units the network sees; the recursion is statsmodels' additive form:
    level_t  = alpha (y_t - s_{t-m}) + (1 - alpha)(level_{t-1} + phi trend_{t-1})
    trend_t  = beta (level_t - level_{t-1}) + (1 - beta) phi trend_{t-1}
    s_t      = gamma (y_t - level_{t-1} - phi trend_{t-1}) + (1 - gamma) s_{t-m}
    forecast = level + (phi + ... + phi^k) trend + s of step k's phase
(for a step a whole number of seasons ahead, statsmodels reads that phase's season from before the last row's
update; so do these weights, so they equal the ETS reference the studio reports beside the model).
"""
from __future__ import annotations

import numpy as np

from core.references import Smoothing


def holt_winters_rows(fit: Smoothing, window: int, horizon: int) -> np.ndarray | None:
    """(horizon, window) weights: step k's Holt-Winters forecast from a window as a weighted sum of its rows;
    None when the model is seasonal and the window holds less than two seasons (no phase to average)."""
    w = int(window)
    m = int(fit.period or 0)
    if w < 3 or (m and w < 2 * m):
        return None
    rows = np.eye(w)              # row r of every state below: its weight on each window row
    t = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    phase = np.arange(w) % m if m else np.zeros(w, np.int64)
    # The starting state by least squares over the whole window, every coefficient a weighting of its rows: a
    # level (and a slope, for a trend model) with one offset per phase fitted together, so a season does not
    # tilt the line (fitted alone, a line through two seasons of a high-then-low cycle leans the wrong way).
    cols = [np.ones(w)] + ([t] if fit.trend else []) + [(phase == p).astype(np.float64) for p in range(1, m)]
    coef = np.linalg.pinv(np.stack(cols, axis=1))              # (columns, w)
    slope = coef[1] if fit.trend else np.zeros(w)
    season = np.zeros((max(m, 1), w))
    if m:
        season[1:] = coef[len(cols) - (m - 1):]
    centre = season.mean(axis=0)
    season -= centre
    level = coef[0] + centre + slope * (t[0] - 1.0)            # one row before the window
    trend = slope.copy()
    a, b, g, phi = float(fit.alpha), float(fit.beta), float(fit.gamma), float(fit.phi) if fit.trend else 1.0
    stale = season[(w - 1) % m].copy() if m else None
    for r in range(w):
        y = rows[r]
        p = r % m if m else 0
        if m and r == w - 1:
            stale = season[p].copy()
        ahead = level + phi * trend
        new_level = a * (y - season[p]) + (1.0 - a) * ahead
        if fit.trend:
            trend = b * (new_level - level) + (1.0 - b) * phi * trend
        if m:
            season[p] = g * (y - ahead) + (1.0 - g) * season[p]
        level = new_level
    out = np.empty((int(horizon), w))
    damp = 0.0
    for k in range(1, int(horizon) + 1):
        damp += phi ** k if fit.trend else 0.0
        if not m:
            out[k - 1] = level + damp * trend
        else:  # statsmodels reads a whole season ahead from the cycle before the last row's update
            out[k - 1] = level + damp * trend + (stale if k % m == 0 else season[(w - 1 + k) % m])
    return out
