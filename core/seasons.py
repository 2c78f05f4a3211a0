"""The season a target's training part shows: one function, so the period a model's seasonal form reads and the
period its seasonal naive baseline uses are the same number.

They were not: the default configuration detected the period on the raw training values, while the evaluation
detected it again on the windows' scaled values, which for a multiplicative (log) form are logarithms, and for the
quick check only the newest training rows. On 55 yearly murder rates the configuration found 7 years, the
evaluation 2, and the "naive" default the search picked (a change-from-last-season model at 7) scored 1.00
against the 2-year seasonal naive's 0.34 it was meant to equal. ``core.windows.make_windows`` now stores what
``training_season`` finds, and every baseline of those windows reads it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core import frequency
from core.dataset import Dataset
from core.metrics import Seasonality, detect_period

# Autocorrelation by FFT on at most this many points (the newest training rows): the cost stays small on a
# year of minute readings, and a few hundred thousand points show any cycle up to a week many times over.
_SAMPLE_MAX = 200_000
_WEEK_DAYS = 7.0


def regularised(dataset: Dataset, values: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(values on a regular grid, step in days). Irregular timestamps are put on a grid of their median step
    by linear interpolation in time (what the Data page's resampling offers), so a lag means a fixed time;
    one grid step is about one row, so a period found on the grid is a period in rows too."""
    days = frequency.step_days(dataset.freq)
    index = dataset.frame.index
    if days is not None or not isinstance(index, pd.DatetimeIndex) or len(values) < 4:
        return values, days
    t = index[: len(values)].to_numpy().astype("datetime64[s]").astype(np.int64).astype(np.float64)
    ok = np.isfinite(values)
    t, v = t[ok], values[ok]
    if len(t) < 4:
        return values, None
    step = float(np.median(np.diff(t)))
    if step <= 0:
        return values, None
    # Long gaps must not blow the grid up: it holds at most twice the rows (the newest part if longer).
    start = max(t[0], t[-1] - step * (2 * len(t)))
    grid = np.arange(start, t[-1] + step / 2, step)
    return np.interp(grid, t, v), step / 86400


def detect_season(values: np.ndarray, freq: str | None, days: float | None,
                  calendar: dict | None = None) -> Seasonality:
    """The period of ``values`` (one step = ``days`` of clock time), looking as far as a week of steps.

    On the step itself the differenced series' autocorrelation finds sharp cycles, but a smooth daily cycle
    in minute readings is buried in the noise of 1,440 one-minute changes; so sub-hourly data is also looked
    at in hourly means, where a day is 24 steps and a week 168, and the stronger detected cycle wins.
    A working ``calendar`` (observed steps only) makes a day its observed steps; a mean is then over the
    longest stretch of at most an hour that divides the day (39 minutes of a 09:30-16:00 day), so a day
    is a whole number of means."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)][-_SAMPLE_MAX:]
    per_day = frequency.observed(calendar)[0] if frequency.observed(calendar) else None  # observed steps a day
    day_steps = per_day or (1 / days if days else None)
    fine_max = max(400, math.ceil(1.1 * day_steps)) if days and days < 1 / 24 else None
    fine = detect_period(x, freq, max_period=fine_max, calendar=calendar)
    if not days or days >= 1 / 24:
        return fine  # hourly and slower: the default 400 lags already reach a week
    block = max(2, int(round((1 / 24) / days)))  # steps per hour
    if per_day:
        block = max([b for b in range(2, block + 1) if per_day % b == 0] or [block])
    n = len(x) // block * block
    if n < 8 * block:
        return fine
    hourly = x[-n:].reshape(-1, block).mean(axis=1)
    coarse = detect_period(hourly, None, max_period=math.ceil(1.1 * _WEEK_DAYS * 24))
    if coarse.period and coarse.source == "autocorrelation" and coarse.strong and \
            not (fine.source == "autocorrelation" and fine.strong and fine.strength >= coarse.strength):
        return Seasonality(int(coarse.period * block), coarse.strength, fine.natural, "autocorrelation")
    return fine


def training_season(dataset: Dataset, values: np.ndarray, train_end: int) -> Seasonality:
    """The season of one column's raw ``values`` (every row, the data's own units) in its training part, rows
    0 to ``train_end`` (the validation and test parts stay unseen)."""
    part = np.asarray(values, dtype=np.float64)[: max(int(train_end), 3)]
    part, days = regularised(dataset, part)
    return detect_season(part, dataset.freq, days, dataset.calendar)
