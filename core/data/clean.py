"""Sorting, duplicates, a regular step (resampling) and filling gaps, each noted in the report."""
from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd

from core import frequency
from core.dataset import ROW_INDEX
from core.errors import StudioError
from core.data.options import CleanOptions
from core.data.sniff import Format
from core.data.read import CORES, NAT, Series
from core.data.workdays import observed_calendar

WARN_SHARE = 0.03  # rows dropped or invented above this share of the series are a warning, not a note

# ----------------------------------------------------------------------------------------------- clean


def _human(td: pd.Timedelta) -> str:
    secs = td.total_seconds()
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if secs >= size:
            return f"{secs / size:,.3g} {unit}"
    return f"{secs:,.3g} seconds"


def _regularise(ser: Series, report: dict, steps: np.ndarray | None = None) -> str | None:
    """Infer the step; put missing steps back as empty rows so later stages see a regular series.
    ``steps`` are the index's differences when the caller has them already."""
    idx = ser.index
    gaps = report["gaps"]
    if len(idx) < 3:
        return None
    d = np.diff(idx.asi8) if steps is None else steps
    if d.min() == d.max():  # the common case: perfectly regular, nothing to count
        modal = int(d[0])
    else:
        values, counts = np.unique(d, return_counts=True)
        modal = int(values[counts.argmax()])
    alias = frequency.alias_for(idx, modal)
    if alias is None:
        report["problems"].append("The time steps follow no regular pattern; pick a frequency to resample to "
                                  "under Cleaning so the later steps see evenly spaced rows.")
        return None
    if d.min() == d.max():  # evenly spaced already: no gaps to look for
        try:  # an index that carries its frequency, made arithmetically instead of validated row by row
            ser.index = pd.date_range(idx[0], periods=len(idx), freq=alias, name=idx.name, unit="ns")
        except ValueError:
            pass
        return alias
    cal = observed_calendar(idx, modal)
    if cal is not None:  # working hours / trading days: nights, weekends and holidays are no gaps
        grid = cal.pop("grid")
        report["calendar"] = cal
        alias = "B" if alias == "D" and cal["weekdays"] == list(range(5)) else alias
        holidays = f" (among them {cal['holidays']:,} weekday(s) with no rows, e.g. holidays)" if cal["holidays"] else ""
        report["notes"].append(
            f"Observed on {cal['describe']} only: kept the observed steps"
            f"{f' ({n:,} a day)' if (n := cal['steps_per_day']) > 1 else ''} and did not "
            f"fill the {cal['not_invented']:,} steps outside that calendar{holidays}; windows run over observed steps "
            "and calendar features describe them.")
    else:
        grid = pd.date_range(idx[0], idx[-1], freq=alias, name=idx.name)
    if len(grid) > 3 * len(idx) + 1000:
        report["problems"].append(
            f"The rows are mostly {_human(pd.Timedelta(modal, 'ns'))} apart but span far more steps than there are "
            "rows; resample to a coarser frequency under Cleaning.")
        return None
    pos = grid.get_indexer(idx)
    off = int((pos < 0).sum())
    if off:
        report["problems"].append(
            f"{off:,} timestamps ({off / len(idx):.1%}) are off the regular {alias} step; resample under Cleaning "
            f"(e.g. to {alias}) to put them on an even grid.")
        return None
    jumps = np.diff(pos)
    at = np.flatnonzero(jumps > 1)
    missing = len(grid) - len(idx)
    if missing:
        step = pd.tseries.frequencies.to_offset(alias)
        worst = at[jumps[at].argmax()]
        gaps.update(count=int(len(at)), missing_steps=int(missing), largest_steps=int(jumps.max() - 1),
                    largest=_human(idx[worst + 1] - idx[worst]), first=[str(idx[i] + step) for i in at[:5]])
        block = np.full((len(grid), ser.block.shape[1]), np.nan, order="F")
        block[pos] = ser.block
        ser.block, ser.index = block, grid
        share = missing / len(grid)
        text = (f"{missing:,} missing time steps in {len(at):,} gap(s) (largest {gaps['largest']}) were added as empty "
                "rows")
        if share > WARN_SHARE:  # invented rows above a few percent of the series are a warning, not a note
            report["problems"].append(f"{text}: {share:.0%} of the series is filled in, not read. If the data is only "
                                      "recorded at some times, resample it or trim the gaps before forecasting.")
        else:
            report["notes"].append(text + ".")
    return alias


def _fill_column(col: np.ndarray, x: np.ndarray | None, how: str) -> None:
    """Fill the NaN runs of one column in place, working only on the gap positions (temporaries scale with
    the gaps, not the series). Leading gaps take the first reading, trailing ones the last."""
    pos = np.flatnonzero(np.isnan(col))
    if len(pos) == 0:
        return
    brk = np.flatnonzero(np.diff(pos) != 1)  # where one run of NaNs ends and the next begins
    starts = pos[np.concatenate(([0], brk + 1))]
    ends = pos[np.concatenate((brk, [len(pos) - 1]))] + 1  # each run is col[start:end]
    run = np.repeat(np.arange(len(starts)), ends - starts)
    prev, nxt = starts[run] - 1, ends[run]
    n = len(col)
    lead, tail = prev < 0, nxt >= n
    left = col[np.where(lead, np.minimum(nxt, n - 1), prev)]
    right = col[np.where(tail, np.maximum(prev, 0), nxt)]
    if how == "ffill":
        col[pos] = np.where(lead, right, left)
        return
    left = np.where(lead, right, left)
    right = np.where(tail, left, right)
    xs = x if x is not None else None
    p0 = np.where(lead | tail, pos, prev)
    p1 = np.where(lead | tail, pos + 1, nxt)
    if xs is None:
        span, at = (p1 - p0).astype(np.float64), (pos - p0).astype(np.float64)
    else:  # time-weighted: a value 1 h into a 3 h gap is a third of the way
        span = (xs[np.minimum(p1, n - 1)] - xs[p0]).astype(np.float64)
        at = (xs[pos] - xs[p0]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, at / span, 0.0)
    col[pos] = left + w * (right - left)


def _describe(block: np.ndarray, columns, nan_aware: bool = False, workers: int = CORES
              ) -> dict[int, tuple[float, float, float]]:
    """(min, max, mean) of the given columns, a column per task on every core (NumPy's reductions release
    the GIL). Plain reductions let a NaN through, which is how the fill finds the columns that have gaps."""
    def one(j: int) -> tuple[float, float, float]:
        c = block[:, j]
        if len(c) == 0:
            return np.nan, np.nan, np.nan
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty column: NaN is the answer
            if nan_aware:
                return float(np.nanmin(c)), float(np.nanmax(c)), float(np.nanmean(c))
            return float(c.min()), float(c.max()), float(c.sum()) / max(len(c), 1)
    columns = list(columns)
    if workers < 2 or len(columns) < 2 or block.shape[0] < 100_000:
        return {j: one(j) for j in columns}
    with ThreadPoolExecutor(min(workers, len(columns)), thread_name_prefix="fs-stats") as pool:
        return dict(zip(columns, pool.map(one, columns)))


def _fill(ser: Series, how: str, report: dict, early: tuple[np.ndarray, Future] | None = None) -> None:
    """Fill gaps in place, one column at a time, only in the columns that have them; leaves each column's
    (min, max, mean) in ``report["_stats"]`` for the summary, so the block is read once for both.
    ``early`` is (block, its statistics being computed): used when cleaning left that block as it was."""
    block = ser.block
    k = len(ser.names)
    stats = early[1].result() if early is not None and early[0] is block else _describe(block, range(k))
    missing = np.zeros(k, dtype=np.int64)
    for j in range(k):
        if np.isnan(stats[j][2]):  # a NaN somewhere (or +inf and -inf): count exactly
            missing[j] = np.count_nonzero(np.isnan(block[:, j]))
    report["_stats"] = stats
    total = int(missing.sum())
    report["cleaning"]["missing_before_fill"] = total
    report["_missing"] = {name: int(v) for name, v in zip(ser.names, missing)}
    report["cleaning"]["filled"] = 0
    if total == 0:
        return
    gappy = np.flatnonzero(missing).tolist()
    per_col = ", ".join(f"{c} {int(v):,}" for c, v in zip(ser.names, missing) if v)
    if how == "none":
        report["blocking"].append(f"{total:,} missing values remain ({per_col}). Choose 'interpolate' or "
                                  "'forward-fill' under Cleaning: the later steps need complete rows.")
        stats.update(_describe(block, gappy, nan_aware=True))
        return
    x = ser.index.asi8 if ser.index is not None else None
    for j in gappy:
        _fill_column(block[:, j], x, how)  # a view: writes land in the block
    stats.update(_describe(block, gappy))
    label = {"interpolate": "interpolated in time" if ser.index is not None else "interpolated",
             "ffill": "forward-filled"}[how]
    report["cleaning"]["filled"] = total
    report["notes"].append(f"{total:,} missing values {label} ({per_col}).")


def clean_series(ser: Series, fmt: Format, clean: CleanOptions, report: dict) -> str | None:
    cleaning = report["cleaning"]
    # The block's statistics on a side thread while the time index is checked here: most files are sorted,
    # unique and regular, so the block comes through unchanged and the numbers stand (else they are redone).
    describing = ThreadPoolExecutor(1, thread_name_prefix="fs-stats")
    early = (ser.block, describing.submit(_describe, ser.block, range(len(ser.names)), False, 1))
    describing.shutdown(wait=False)
    freq = None
    stamps, ser.stamps = ser.stamps, None
    if stamps is None:
        if clean.resample:
            raise StudioError("Resampling needs a time column, and this file uses the row number as its time step.",
                              "Pick the time column under Format, or set Resample to None.")
    else:
        # NaT is int64's minimum, so the minimum says whether any time is unreadable without a mask
        bad = stamps == NAT if len(stamps) and stamps.min() == NAT else None
        n_bad = 0 if bad is None else int(bad.sum())
        examples = report.pop("_bad_times", [])
        if n_bad == len(stamps):
            example = examples[0] if examples else ""
            raise StudioError(f"No value in the time column '{fmt.time.column}' could be read as a time "
                              f"(e.g. '{example}').",
                              f"Set the time format under Format, pick another time column, or choose '{ROW_INDEX}'.")
        if n_bad:
            keep = np.flatnonzero(~bad)
            ser.block, stamps = np.asfortranarray(ser.block[keep]), stamps[keep]
            shown = f" ({', '.join(repr(e) for e in examples)})" if examples else ""
            report["problems"].append(f"{n_bad:,} row(s) had no readable time{shown} and were dropped.")
            cleaning["dropped_bad_time"] = n_bad
        del bad
        ser.index = pd.DatetimeIndex(stamps.view("M8[ns]"), name=fmt.time.column, copy=False)  # ours alone
        del stamps
        steps = np.diff(ser.index.asi8)  # one pass answers both "sorted?" and "unique?"
        if len(steps) and steps.min() < 0:
            ser.take(np.argsort(ser.index.asi8, kind="stable"))
            cleaning["sorted"] = True
            report["notes"].append("The rows were not in time order; sorted them by time.")
            steps = np.diff(ser.index.asi8)
        if len(steps) and steps.min() == 0:
            steps = None  # rows are about to change
            dup = ser.index.duplicated(keep="first")
            n_dup = int(dup.sum())
            if clean.duplicates == "mean":
                ser.from_frame(ser.frame().groupby(level=0, sort=True).mean())
                how = "averaged"
            else:
                ser.take(np.flatnonzero(~dup))
                how = "kept the first of each"
            cleaning["duplicates"] = n_dup
            share = n_dup / (n_dup + len(ser.block))
            if share > WARN_SHARE:  # a quarter of the rows gone is no footnote: Year,Quarter read as Year alone
                report["problems"].append(
                    f"{n_dup:,} row(s) ({share:.0%} of the file) repeated an earlier timestamp in '{fmt.time.column}'; "
                    f"{how}. If the time is split over several columns (year and quarter, date and hour), combine them "
                    "under Format: Time columns (--time-cols).")
            else:
                report["notes"].append(f"{n_dup:,} row(s) repeated an earlier timestamp; {how}.")
        if clean.resample:
            before = len(ser.block)
            offset = pd.tseries.frequencies.to_offset(clean.resample)
            try:
                bins = (ser.index[-1] - ser.index[0]) / pd.Timedelta(offset)
            except (ValueError, TypeError):  # calendar offsets (months, weeks) are never too fine
                bins = 0
            if bins > 50_000_000:
                raise StudioError(f"Resampling to {clean.resample} would make {bins:,.0f} rows.",
                                  "Choose a coarser frequency.")
            res = ser.frame().resample(offset)
            ser.from_frame(res.sum(min_count=1) if clean.resample_how == "sum" else getattr(res, clean.resample_how)())
            freq = offset.freqstr
            cleaning["resampled"] = {"to": freq, "how": clean.resample_how, "rows_before": before,
                                     "rows_after": len(ser.block)}
            report["notes"].append(f"Resampled {before:,} rows to {len(ser.block):,} rows at {freq} "
                                   f"({clean.resample_how}).")
        else:
            freq = _regularise(ser, report, steps)
    _fill(ser, clean.fill, report, early)
    return freq


