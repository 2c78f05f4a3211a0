"""Which column holds the time, and how it is written (formats, epochs, day-first)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.dataset import ROW_INDEX
from core.errors import StudioError
from core.data.options import EPOCH_RANGES, TIME_HINTS, all_numbers
from core.data import periods

@dataclass
class TimeGuess:
    column: str | None
    kind: str = "none"  # "string" | "epoch" | "period" | "parts" | "none"
    fmt: str | None = None  # strftime / "ISO8601" / epoch unit / period kind / the parts in words
    dayfirst: bool | None = None
    note: str = ""
    roles: dict[str, str] = field(default_factory=dict)  # kind "parts": column -> year / quarter / month / day

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.roles)


def parse_times(values: pd.Series, kind: str, fmt: str | None, dayfirst: bool | None = None) -> pd.Series:
    """Parse to naive UTC datetimes; values that do not parse become NaT."""
    if kind == "native":
        return values
    if kind == "period":
        return periods.parse_period(values, fmt or "quarter")
    if kind == "epoch":
        nums = pd.to_numeric(values, errors="coerce")
        out = pd.to_datetime(nums, unit=fmt or "s", errors="coerce")
    else:
        with np.errstate(all="ignore"):
            out = pd.to_datetime(values, format=fmt or "ISO8601", errors="coerce", utc=True,
                                 dayfirst=bool(dayfirst))
    if getattr(out.dtype, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _epoch_unit(nums: np.ndarray) -> str | None:
    lo, hi = np.nanmin(nums), np.nanmax(nums)
    for unit, a, b in EPOCH_RANGES:
        if a <= lo and hi <= b:
            return unit
    return None


def _regularity(times: pd.Series) -> float:
    """Share of steps equal to the most common step (1.0 for a perfectly regular sample)."""
    t = times.dropna().sort_values().to_numpy().astype("datetime64[ns]").astype(np.int64)
    d = np.diff(t)
    d = d[d > 0]
    if len(d) == 0:
        return 0.0
    _, counts = np.unique(d, return_counts=True)
    return counts.max() / len(d)


def _parts(present: dict[str, list[str]], cols: tuple[str, ...], forced: bool) -> TimeGuess | None:
    """The time combined from several columns (Year + Quarter ...), when the sample's rows read as times."""
    missing = [c for c in cols if c not in present]
    if missing:
        raise StudioError(f"There is no column {missing[0]!r} in this file (columns: {', '.join(list(present)[:12])}).",
                          "Pick the time columns to combine from the list, or leave them empty.")
    roles = periods.assign_roles(cols, present) if forced else {c: periods.role(c, present[c]) for c in cols}
    n = min(len(present[c]) for c in cols)
    parsed = periods.combine({c: pd.Series(present[c][:n], dtype=object) for c in cols}, roles)
    if n and parsed.notna().mean() >= 0.9:
        names = " and ".join(f"'{c}'" for c in cols)
        note = "" if forced else (f"The time is split over {names}; combined them into one time axis (change it "
                                  "under Format: Time columns).")
        return TimeGuess("+".join(cols), "parts", periods.describe(roles), note=note, roles=roles)
    if forced:
        example = " ".join(present[c][0] if present[c] else "" for c in cols)
        raise StudioError(f"The columns {', '.join(cols)} do not read as a year with a quarter, month or day "
                          f"(e.g. '{example}').", "Pick a year column and a quarter or month column (and a day), "
                                                  "or leave the time columns empty.")
    return None


def guess_time(sample: dict[str, list[str]], present: dict[str, list[str]], decimal: str, forced: str | None,
               dayfirst: bool | None, fmt: str | None, time_cols: tuple[str, ...] | None = None) -> TimeGuess:
    from pandas.tseries.api import guess_datetime_format

    def hinted(name: str) -> bool:
        low = name.lower()
        return any(h == low or low.startswith(h) or low.endswith(h) or f" {h}" in low or f"_{h}" in low
                   or f"{h}_" in low for h in TIME_HINTS)

    def try_column(name: str, must: bool) -> TimeGuess | None:
        vals = pd.Series(present[name], dtype=object)
        if len(vals) == 0:
            return None
        numeric = all_numbers(vals, decimal)
        if fmt in ("epoch_s", "epoch_ms"):
            return TimeGuess(name, "epoch", fmt.split("_")[1], note=f"'{name}' read as epoch ({fmt[6:]}).")
        if fmt:
            parsed = parse_times(vals, "string", fmt, dayfirst)
            if parsed.notna().mean() >= 0.9 or must:
                return TimeGuess(name, "string", fmt, dayfirst)
            return None
        if numeric:
            nums = pd.to_numeric(vals.str.replace(",", ".", regex=False), errors="coerce").to_numpy(float)
            unit = _epoch_unit(nums)
            increasing = bool(np.all(np.diff(nums) >= 0))
            if unit and (hinted(name) or must or increasing):
                return TimeGuess(name, "epoch", unit, note=f"'{name}' holds Unix epoch times in {unit}.")
            if (must or name.lower().startswith("year")) and nums.min() >= 1000 and nums.max() < 3000 and (nums % 1 == 0).all():
                return TimeGuess(name, "string", "%Y")
            if (hinted(name) or must) and vals.str.fullmatch(r"(1|2)\d{3}(0[1-9]|1[0-2])(\d{2})?").all():
                return TimeGuess(name, "string", "%Y%m%d" if vals.str.len().eq(8).all() else "%Y%m")
            return None
        first = vals.iloc[0]
        kind = periods.period_kind(present[name])
        if kind is not None:  # 1960 Q1, Jan-1980, 1987M01: read by the period reader, not strptime
            return TimeGuess(name, "period", kind, note=f"'{name}' holds {periods.KINDS[kind]}; each is read as "
                                                        "the period's first day.")
        options = []
        iso = parse_times(vals, "string", "ISO8601")
        if iso.notna().mean() >= 0.9:
            options.append(("ISO8601", None, iso))
        else:
            for df in ((dayfirst,) if dayfirst is not None else (False, True)):
                with warnings.catch_warnings():  # "dayfirst=True but the date is month-first": expected here
                    warnings.simplefilter("ignore", UserWarning)
                    guess = guess_datetime_format(first, dayfirst=df)
                if guess and all(g != guess for g, _, _ in options):
                    parsed = parse_times(vals, "string", guess)
                    if parsed.notna().mean() >= 0.9:
                        options.append((guess, df, parsed))
        if not options:
            if must:
                return TimeGuess(name, "string", None)
            return None
        note = ""
        if len(options) > 1:  # both day-first and month-first read every date: prefer the regular one
            options.sort(key=lambda o: (-_regularity(o[2]), o[1] is True))
            chosen = "day-first" if options[0][1] else "month-first"
            note = (f"Dates in '{name}' such as '{first}' read both day-first and month-first; took {chosen} "
                    "because its steps are more regular. Change it under Format if that is wrong.")
        guess, df, _ = options[0]
        return TimeGuess(name, "string", guess, df if guess != "ISO8601" else None, note)

    columns = list(sample)
    if time_cols:
        return _parts(present, tuple(time_cols), True)
    if forced is None and fmt is None:
        found = periods.find_parts(present)
        guess = _parts(present, found, False) if found else None
        if guess is not None:
            return guess
    if forced is not None:
        if forced == ROW_INDEX:
            return TimeGuess(None, note="Using the row number as the time step, as chosen.")
        if forced not in columns:
            raise StudioError(f"There is no column '{forced}' in this file (columns: {', '.join(columns[:12])}).",
                              "Pick the time column from the list, or leave it on Detect.")
        found = try_column(forced, True)
        if found is None or found.fmt is None:
            example = sample[forced][0] if sample[forced] else ""
            raise StudioError(f"Column '{forced}' does not hold dates or times that could be read (e.g. '{example}').",
                              f"Pick another time column, set its format, or choose '{ROW_INDEX}'.")
        return found
    ordered = sorted(columns, key=lambda c: (not hinted(c), columns.index(c)))
    for name in ordered:
        found = try_column(name, False)
        if found is not None:
            return found
    return TimeGuess(None, note="No column holds dates or times that could be read, so the row number is the "
                                 f"time step. If a column does hold times, pick it (and its format) under Format.")


