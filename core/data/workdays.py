"""Series observed only on working days or in working hours (a call centre 07:00-21:00 on weekdays, a stock index
on trading days). Their nights, weekends and holidays are not gaps: filling them would invent most of the series.

The calendar is read off the rows themselves: the weekdays that have rows, and for intraday data the span of the
day that has rows. A calendar applies when it explains most of the steps a regular grid would add; then the
series keeps its observed steps (a ``DatetimeIndex`` without a regular frequency), only steps missing inside an
observed day are filled, and ``Dataset.calendar`` says which steps exist.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DAY = 86_400 * 10**9
_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
EXPLAINS = 0.5  # the calendar must account for at least this share of the steps a regular grid would add


def _days(weekdays: list[int]) -> str:
    if weekdays == list(range(5)):
        return "weekdays (Mon-Fri)"
    if weekdays == list(range(6)):
        return "Mon-Sat"
    return ", ".join(_NAMES[d] for d in weekdays)


def _clock(ns: int) -> str:
    minutes = ns // (60 * 10**9)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def observed_calendar(idx: pd.DatetimeIndex, step_ns: int) -> dict | None:
    """The working calendar of ``idx`` (sorted, unique, at a modal step of ``step_ns``), when it has one.

    Returns ``{"grid": DatetimeIndex of the steps that exist, "describe": words, ...}`` or None."""
    if len(idx) < 20 or step_ns <= 0 or step_ns > DAY or DAY % step_ns:
        return None
    span_days = (idx[-1] - idx[0]).value / DAY
    if span_days < 7:
        return None
    weekday = idx.day_of_week.to_numpy()
    counts = np.bincount(weekday, minlength=7)
    weekdays = [d for d in range(7) if counts[d] > 0.02 * counts.max()]
    days = idx.normalize()
    day_ns = days.asi8
    tod = idx.asi8 - day_ns
    intraday = step_ns < DAY
    lo, hi = (int(tod.min()), int(tod.max())) if intraday else (0, 0)
    short_day = intraday and (hi - lo) < DAY - step_ns - step_ns // 2
    short_week = len(weekdays) < 7
    if not (short_day or short_week):
        return None
    added = (idx[-1] - idx[0]).value // step_ns + 1 - len(idx)  # what a regular grid would add
    if added <= 0:
        return None
    # the steps that exist: the observed days (weekdays with rows; a weekday with none is a holiday) x the day's span
    unique_days = np.unique(day_ns)
    per_day = (hi - lo) // step_ns + 1 if intraday else 1
    offsets = lo + np.arange(per_day, dtype=np.int64) * step_ns
    grid = pd.DatetimeIndex((unique_days[:, None] + offsets[None, :]).ravel(), name=idx.name)
    grid = grid[(grid >= idx[0]) & (grid <= idx[-1])]
    if grid.get_indexer(idx).min() < 0:  # rows off the calendar's steps: not this kind of series
        return None
    kept_out = added - (len(grid) - len(idx))
    if kept_out < EXPLAINS * added:
        return None
    wk = pd.DatetimeIndex(unique_days).day_of_week
    all_days = pd.date_range(pd.Timestamp(unique_days[0]), pd.Timestamp(unique_days[-1]), freq="D")
    holidays = int(np.isin(all_days.day_of_week, weekdays).sum() - np.isin(wk, weekdays).sum())
    hours = f", {_clock(lo)}-{_clock(hi + step_ns)}" if short_day else ""
    words = f"{_days(weekdays)}{hours}"
    return {"grid": grid, "describe": words, "weekdays": weekdays, "day_start": _clock(lo) if intraday else None,
            "day_end": _clock(hi + step_ns) if intraday else None, "steps_per_day": int(per_day),
            "holidays": max(holidays, 0), "not_invented": int(kept_out)}
