"""The cleaned series every later stage starts from, and facts derived from its frequency."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

ROW_INDEX = "(row number)"  # the time axis when a file has no usable time column


@dataclass
class Dataset:
    """A clean, sorted, de-duplicated series: numeric float64 columns only.

    ``frame.index`` is a unique increasing ``DatetimeIndex`` named after the time column, or a
    ``RangeIndex`` named "step" when the row number is the time step.
    """

    name: str
    frame: pd.DataFrame
    freq: str | None = None
    time_col: str | None = None
    excluded: dict[str, str] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    fingerprint: str = ""
    # Set for a series observed only on working days / in working hours (core/data/workdays.py): which steps
    # exist ("weekdays (Mon-Fri), 07:00-21:00", steps_per_day ...). The index then keeps the observed steps.
    calendar: dict | None = None

    @property
    def numeric_columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def has_time(self) -> bool:
        return isinstance(self.frame.index, pd.DatetimeIndex)

    def summary(self) -> dict:
        return {"name": self.name, "rows": int(len(self.frame)), "freq": self.freq,
                "time_col": self.time_col, "fingerprint": self.fingerprint}


def describe_span(first, last) -> str:
    """The time between two timestamps in words, for any span pandas can index (1700-2008 does not fit a
    pandas Timedelta, so this goes through Python's datetime, which holds about 2.7 million years)."""
    def naive(t):  # UTC without a zone, so an aware and a naive stamp compare
        t = pd.Timestamp(t)
        return (t.tz_convert(None) if t.tzinfo is not None else t).to_pydatetime()

    delta = naive(last) - naive(first)
    days = delta.days + delta.seconds / 86400
    if days >= 730:
        return f"{days / 365.25:,.0f} years"
    if days >= 2:
        return f"{days:,.0f} days"
    hours = delta.total_seconds() / 3600
    if hours >= 2:
        return f"{hours:,.0f} hours"
    minutes = delta.total_seconds() / 60
    return f"{minutes:,.0f} minutes" if minutes >= 2 else f"{delta.total_seconds():,.0f} seconds"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd ... (so no page says "every 2th window")."""
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
