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
