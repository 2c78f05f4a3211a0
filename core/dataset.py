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

    @property
    def numeric_columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @property
    def has_time(self) -> bool:
        return isinstance(self.frame.index, pd.DatetimeIndex)

    def summary(self) -> dict:
        return {"name": self.name, "rows": int(len(self.frame)), "freq": self.freq,
                "time_col": self.time_col, "fingerprint": self.fingerprint}


# Natural seasonal period (in steps) for a pandas frequency alias; used when the data itself
# does not show a clearer one (seasonality detection refines it).
_PERIODS = [("min", 60), ("T", 60), ("h", 24), ("H", 24), ("B", 5), ("D", 7), ("W", 52),
            ("QS", 4), ("Q", 4), ("MS", 12), ("ME", 12), ("M", 12), ("YS", 1), ("Y", 1), ("A", 1), ("s", 60), ("S", 60)]


def natural_period(freq: str | None) -> int | None:
    """Steps in one natural cycle: a day of hours, a week of days, a year of weeks/months/quarters."""
    if not freq:
        return None
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return None
    base = offset.name.split("-")[0]
    n = max(int(getattr(offset, "n", 1) or 1), 1)
    for prefix, period in _PERIODS:
        if base == prefix:
            if prefix in ("h", "H"):  # several-hour steps: still a daily cycle if it divides a day
                return 24 // n if 24 % n == 0 and n < 24 else None
            if prefix in ("min", "T") and n > 1:
                return 60 * 24 // n if (60 * 24) % n == 0 else None
            period = period // n if n > 1 and period % n == 0 else period
            return period if period > 1 else None
    return None


_DAYS = {"MON": "Mondays", "TUE": "Tuesdays", "WED": "Wednesdays", "THU": "Thursdays", "FRI": "Fridays",
         "SAT": "Saturdays", "SUN": "Sundays"}
# (base alias, word for one step, unit for several steps)
_FREQ_WORDS = {"s": ("every second", "seconds"), "S": ("every second", "seconds"),
               "min": ("every minute", "minutes"), "T": ("every minute", "minutes"),
               "h": ("hourly", "hours"), "H": ("hourly", "hours"), "D": ("daily", "days"),
               "B": ("business days", "business days"), "W": ("weekly", "weeks"),
               "MS": ("monthly (month start)", "months"), "ME": ("monthly (month end)", "months"),
               "M": ("monthly", "months"), "QS": ("quarterly", "quarters"), "QE": ("quarterly", "quarters"),
               "Q": ("quarterly", "quarters"), "YS": ("yearly", "years"), "YE": ("yearly", "years"),
               "Y": ("yearly", "years"), "A": ("yearly", "years"), "AS": ("yearly", "years")}


def describe_freq(freq: str | None) -> str:
    """A pandas alias as people read it: "W-SAT" -> "weekly (Saturdays)", "QE-DEC" -> "quarterly", "15min" -> "every 15 minutes"."""
    if not freq:
        return "irregular"
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return str(freq)
    base, _, anchor = offset.name.partition("-")
    n = max(int(getattr(offset, "n", 1) or 1), 1)
    words = _FREQ_WORDS.get(base)
    if words is None:
        return str(freq)
    text = words[0] if n == 1 else f"every {n} {words[1]}"
    if base == "W" and anchor in _DAYS:
        text += f" ({_DAYS[anchor]})"
    return text


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
