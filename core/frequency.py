"""What a pandas frequency alias means, in one table: the unit of one step, its length in seconds or
months, its natural seasonal period, and its words ("hourly", "every 15 minutes").

Every module that reads a frequency asks here (the data step names one with ``alias_for``; windows word
window lengths with ``describe_steps``; the defaults size a season with ``step_days`` and
``natural_period``), so an alias means the same thing on every page.

A series observed only in working hours or on trading days (``Dataset.calendar``, see core/data/workdays.py)
keeps its observed steps, so its lengths count observed steps: each function here takes that ``calendar``,
and with it a day is the observed steps of one day (168 five-minute steps from 07:00 to 21:00), a week the
observed days times that, and the steps after the data's end are the next observed ones (no nights, no weekends).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class _Alias(NamedTuple):
    unit: str      # one step of n=1, in words
    one: str       # the frequency in words at n=1 ("hourly")
    many: str      # the unit for several steps ("hours")
    period: int    # natural cycle in steps at n=1 (a day of hours, a week of days, a year of months)


# Both pandas' old and new spellings (H/h, T/min, M/ME, A/Y...).
ALIASES: dict[str, _Alias] = {
    "s": _Alias("second", "every second", "seconds", 60), "S": _Alias("second", "every second", "seconds", 60),
    "min": _Alias("minute", "every minute", "minutes", 60), "T": _Alias("minute", "every minute", "minutes", 60),
    "h": _Alias("hour", "hourly", "hours", 24), "H": _Alias("hour", "hourly", "hours", 24),
    "D": _Alias("day", "daily", "days", 7),
    "B": _Alias("business day", "business days", "business days", 5),
    "W": _Alias("week", "weekly", "weeks", 52),
    "MS": _Alias("month", "monthly (month start)", "months", 12),
    "ME": _Alias("month", "monthly (month end)", "months", 12),
    "M": _Alias("month", "monthly", "months", 12),
    "QS": _Alias("quarter", "quarterly", "quarters", 4), "QE": _Alias("quarter", "quarterly", "quarters", 4),
    "Q": _Alias("quarter", "quarterly", "quarters", 4),
    "YS": _Alias("year", "yearly", "years", 1), "YE": _Alias("year", "yearly", "years", 1),
    "Y": _Alias("year", "yearly", "years", 1), "A": _Alias("year", "yearly", "years", 1),
    "AS": _Alias("year", "yearly", "years", 1),
}
SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
MONTHS = {"month": 1, "quarter": 3, "year": 12}
_DAYS = {"MON": "Mondays", "TUE": "Tuesdays", "WED": "Wednesdays", "THU": "Thursdays", "FRI": "Fridays",
         "SAT": "Saturdays", "SUN": "Sundays"}


class Step(NamedTuple):
    """One step of data: ``n`` units, e.g. (15, "minute"), (1, "hour"), (3, "month")."""

    n: int
    unit: str

    @property
    def seconds(self) -> int:
        """Length in seconds for clock units; 0 for calendar units (months, business days)."""
        return self.n * SECONDS.get(self.unit, 0)

    @property
    def months(self) -> int | None:
        return self.n * MONTHS[self.unit] if self.unit in MONTHS else None


def _offset(freq: str | None):
    if not freq:
        return None
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return None


def _parts(offset) -> tuple[str, str, int]:
    base, _, anchor = offset.name.partition("-")
    return base, anchor, max(int(getattr(offset, "n", 1) or 1), 1)


def step(freq: str | None) -> Step | None:
    """One step of ``freq``; None when unknown."""
    off = _offset(freq)
    if off is None:
        return None
    base, _, n = _parts(off)
    alias = ALIASES.get(base)
    return Step(n, alias.unit) if alias else None


def step_days(freq: str | None, calendar: dict | None = None) -> float | None:
    """Length of one step in days (months and quarters by their average length); None when unknown.
    With a working ``calendar``, the calendar time one observed step stands for on average (a weekday of a
    Mon-Fri series is 7/5 days, so a year is about 261 steps)."""
    obs = observed(calendar)
    if obs is not None:
        return 7.0 / (obs[0] * obs[1])
    off = _offset(freq)
    if off is None:
        return None
    st = step(freq)
    if st is not None and st.months is not None:
        return st.months * 365.25 / 12
    if st is not None and st.unit == "week":
        return 7.0 * st.n
    if st is not None and st.unit == "business day":
        return 7.0 / 5 * st.n
    try:
        return pd.Timedelta(off).total_seconds() / 86400
    except (ValueError, TypeError):
        return None


def natural_period(freq: str | None, calendar: dict | None = None) -> int | None:
    """Steps in one natural cycle: a day of hours, a week of days, a year of weeks/months/quarters; used
    when the data itself does not show a clearer one (seasonality detection refines it). With a working
    ``calendar``: a day of observed steps for intraday data, a week of observed days for daily data."""
    obs = observed(calendar)
    if obs is not None:
        per_day, days = obs
        period = per_day if per_day > 1 else days
        return period if period > 1 else None
    off = _offset(freq)
    if off is None:
        return None
    base, _, n = _parts(off)
    alias = ALIASES.get(base)
    if alias is None:
        return None
    if alias.unit == "hour":  # several-hour steps: still a daily cycle if it divides a day
        return 24 // n if 24 % n == 0 and n < 24 else None
    if alias.unit == "minute" and n > 1:
        return 60 * 24 // n if (60 * 24) % n == 0 else None
    period = alias.period // n if n > 1 and alias.period % n == 0 else alias.period
    return period if period > 1 else None


def describe_freq(freq: str | None) -> str:
    """A pandas alias as people read it: "W-SAT" -> "weekly (Saturdays)", "QE-DEC" -> "quarterly", "15min" -> "every 15 minutes"."""
    if not freq:
        return "irregular"
    off = _offset(freq)
    if off is None:
        return str(freq)
    base, anchor, n = _parts(off)
    alias = ALIASES.get(base)
    if alias is None:
        return str(freq)
    text = alias.one if n == 1 else f"every {n} {alias.many}"
    if base == "W" and anchor in _DAYS:
        text += f" ({_DAYS[anchor]})"
    return text


def plural(n: float, unit: str) -> str:
    text = f"{n:,.1f}".rstrip("0").rstrip(".") if n != int(n) else f"{int(n):,}"
    return f"{text} {unit}{'' if n == 1 else 's'}"


def describe_steps(steps: int, freq: str | None, calendar: dict | None = None) -> str:
    """Steps in time units: "168 steps = 7 days"; just "168 steps" when the data has no known frequency.
    With a working ``calendar``, in observed time: "168 steps = 1 working day", "840 steps = 1 week"."""
    head = plural(steps, "step")
    obs = observed(calendar)
    st = step(freq)
    if obs is not None:
        per_day, days = obs
        if steps >= per_day * days and steps % (per_day * days) == 0:
            return f"{head} = {plural(steps // (per_day * days), 'week')}"
        if steps >= per_day or st is None or not st.seconds:
            return f"{head} = {plural(round(steps / per_day, 1), 'working day')}"
        # under a working day: clock time (12 five-minute steps are an hour)
    if st is None:
        return head
    total = steps * st.n
    if st.months is not None:
        months = steps * st.months
        words = plural(months // 12, "year") if months % 12 == 0 else plural(months, "month")
    elif st.unit == "business day":
        words = plural(total, "business day")
    else:
        secs = steps * st.seconds
        for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if secs >= size:
                words = plural(secs / size, name)
                break
        else:
            words = plural(secs, "second")
    return f"{head} = {words}"


def step_words(freq: str | None, calendar: dict | None = None) -> str:
    """One step in words: "hour", "15 minutes"; "step" when unknown; "working day" for a working calendar's days."""
    obs = observed(calendar)
    if obs is not None and obs[0] == 1:
        return "working day"
    st = step(freq)
    if st is None:
        return "step"
    return st.unit if st.n == 1 else plural(st.n, st.unit)


def alias_for(idx: pd.DatetimeIndex, step_ns: int) -> str | None:
    """A pandas frequency alias for a modal step in ns, calendar-aware for weeks, months, quarters, years."""
    day = 86_400 * 10**9
    if step_ns % day == 0:
        days = step_ns // day
        if days == 7:
            return f"W-{idx[0].day_name()[:3].upper()}"
        if 28 <= days <= 31:
            return "MS" if idx.is_month_start.mean() > 0.9 else "ME" if idx.is_month_end.mean() > 0.9 else None
        if 89 <= days <= 92:
            return "QS" if idx.is_quarter_start.mean() > 0.9 else "QE" if idx.is_quarter_end.mean() > 0.9 else None
        if days in (365, 366):
            return "YS" if idx.is_year_start.mean() > 0.9 else "YE" if idx.is_year_end.mean() > 0.9 else None
        return "D" if days == 1 else f"{days}D"  # pandas would spell a day "24h"
    try:
        return pd.tseries.frequencies.to_offset(pd.Timedelta(int(step_ns), "ns")).freqstr
    except ValueError:
        return None


# --------------------------------------------------------------------------- working calendars

def observed(calendar: dict | None) -> tuple[int, int] | None:
    """(observed steps a day, observed days a week) of a working ``calendar`` (``Dataset.calendar``); None without."""
    if not calendar or not calendar.get("weekdays"):
        return None
    return max(int(calendar.get("steps_per_day") or 1), 1), len(calendar["weekdays"])


def cycle_steps(calendar: dict | None) -> dict[str, float]:
    """Steps in a day, a week and a year of a working ``calendar``, keyed by the calendar feature of each cycle."""
    obs = observed(calendar)
    if obs is None:
        return {}
    per_day, days = obs
    out = {"dow": float(per_day * days), "doy": 365.25 / 7 * days * per_day}
    if per_day > 1:
        out["hour"] = float(per_day)
    return out


def next_steps(last, first: int, count: int, freq: str | None, calendar: dict | None = None) -> pd.DatetimeIndex:
    """``count`` timestamps, the first ``first`` steps after ``last`` (0: ``last`` itself). With a working
    ``calendar``, observed steps only: the day's slots from its opening, on its weekdays (holidays ahead are not
    known, so none is skipped)."""
    obs = observed(calendar)
    st = step(freq)
    if obs is None or st is None or (obs[0] > 1 and not st.seconds):
        return pd.date_range(start=last, periods=first + count, freq=freq)[first:first + count]
    last = pd.Timestamp(last)
    wall = last.tz_localize(None) if last.tz is not None else last  # the calendar is in the index's wall time
    per_day, days_a_week = obs
    day0 = wall.normalize()
    if per_day > 1 and calendar.get("day_start"):
        slots = pd.Timedelta(f"{calendar['day_start']}:00") + pd.Timedelta(seconds=st.seconds) * np.arange(per_day)
    else:
        slots = pd.TimedeltaIndex([wall - day0])
    days = pd.date_range(day0, periods=7 * ((first + count) // (per_day * days_a_week) + 2) + 1, freq="D")
    days = days[days.day_of_week.isin(calendar["weekdays"])]
    grid = pd.DatetimeIndex((days.to_numpy()[:, None] + np.asarray(slots)[None, :]).ravel())
    grid = grid[grid > wall].insert(0, wall)[first:first + count].as_unit("ns")
    return grid.tz_localize(last.tz) if last.tz is not None else grid
