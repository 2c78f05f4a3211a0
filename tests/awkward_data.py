"""Awkward datasets a first walk through the studio meets (issue 18), made here so no file is needed:
a very long span, a very short series, one column, many columns, irregular epoch-second timestamps."""
from __future__ import annotations

import numpy as np
import pandas as pd


def yearly_1700() -> bytes:
    """Yearly readings 1700-2008: 308 years do not fit a pandas Timedelta (the Data page's span crashed)."""
    years = np.arange(1700, 2009)
    rng = np.random.default_rng(1)
    v = 50 + 40 * np.sin(2 * np.pi * (years - 1700) / 11) + rng.normal(0, 8, len(years))
    return pd.DataFrame({"year": years, "sunspots": v.round(1)}).to_csv(index=False).encode()


def very_short() -> bytes:
    """Twelve monthly rows: barely more than the studio's minimum."""
    t = pd.date_range("2020-01-01", periods=12, freq="MS")
    return pd.DataFrame({"month": t.strftime("%Y-%m-%d"), "sales": np.arange(12) * 3.0 + 10}).to_csv(index=False).encode()


def one_column() -> bytes:
    """One column of numbers, no time at all."""
    rng = np.random.default_rng(2)
    return pd.DataFrame({"reading": np.sin(np.arange(400) / 5) + rng.normal(0, 0.1, 400)}).to_csv(index=False).encode()


def many_columns(n: int = 60) -> bytes:
    """Hourly, with 60 columns."""
    t = pd.date_range("2023-01-01", periods=600, freq="h")
    rng = np.random.default_rng(3)
    cols = {f"sensor_{i:02d}": np.sin(np.arange(600) * 2 * np.pi / 24 + i) + rng.normal(0, 0.1, 600) for i in range(n)}
    return pd.DataFrame({"time": t.strftime("%Y-%m-%d %H:%M:%S"), **cols}).to_csv(index=False).encode()


def irregular_epoch(n: int = 3000) -> bytes:
    """Epoch seconds, about a minute apart with jitter and some gaps, and a daily cycle."""
    rng = np.random.default_rng(4)
    steps = rng.integers(40, 80, n)
    steps[rng.integers(0, n, n // 100)] += 900
    t = 1_700_000_000 + np.cumsum(steps)
    v = 20 + 5 * np.sin(2 * np.pi * (t % 86400) / 86400) + rng.normal(0, 0.3, len(t))
    return pd.DataFrame({"epoch": t, "temperature": v.round(3)}).to_csv(index=False).encode()


AWKWARD = {"yearly 1700-2008": yearly_1700, "12 monthly rows": very_short, "one column": one_column,
           "60 columns": many_columns, "irregular epoch seconds": irregular_epoch}
