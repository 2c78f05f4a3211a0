"""Every problem a window/split/scaler choice has on a dataset, each with what to do."""
from __future__ import annotations


import numpy as np
import pandas as pd

from core.config import DEFAULTS
from core.dataset import Dataset
from core import logscale
from core.errors import StudioError
from core.windows.spec import (CALENDAR, CALENDAR_NAMES, PART_NAMES, SCALERS, SplitSpec, WindowSpec, calendar_columns,
                               calendar_values, column_values, largest_window, split_parts)

_F = DEFAULTS["features"]

# -------------------------------------------------------------------------------------- validation

def validate(dataset: Dataset, spec: WindowSpec, split: SplitSpec = SplitSpec(),
             scaler_kind: str = "minmax") -> list[StudioError]:
    """Every problem with these choices, each naming what is wrong and the fix; empty means ready."""
    out: list[StudioError] = []
    frame = dataset.frame
    n = len(frame)
    cols = [str(c) for c in frame.columns]
    if n == 0:
        return [StudioError("The dataset has no rows.", "Load a file with data rows on the Data step.")]

    # Columns
    if not spec.targets:
        out.append(StudioError("No target is chosen.", "Pick at least one column to forecast."))
    if not spec.input_columns:
        out.append(StudioError("No input is chosen.", "Pick at least one input feature or calendar feature."))
    for kind, names in (("target", spec.targets), ("input feature", spec.features)):
        dup = sorted({c for c in names if names.count(c) > 1})
        if dup:
            out.append(StudioError(f"The {kind} {', '.join(map(repr, dup))} is chosen twice.", "Choose each column once."))
        for c in dict.fromkeys(names):
            if c in cols:
                if not pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c].dtype):
                    out.append(StudioError(f"The {kind} {c!r} is not numeric ({frame[c].dtype}).",
                                           "Choose a numeric column; the Data step lists which columns are numeric."))
            elif c in dataset.excluded:
                out.append(StudioError(f"The {kind} {c!r} is not numeric: the Data step left it out "
                                       f"({dataset.excluded[c]}).",
                                       "Choose a numeric column, or fix that column in the file and load it again."))
            else:
                out.append(StudioError(f"The {kind} {c!r} is not a column of this dataset.",
                                       f"Choose from: {', '.join(cols[:12])}{' ...' if len(cols) > 12 else ''}."))
    bad_cal = [c for c in spec.calendar if c not in CALENDAR]
    if bad_cal:
        out.append(StudioError(f"Unknown calendar feature {', '.join(map(repr, bad_cal))}.",
                               f"Choose from {', '.join(CALENDAR)}."))
    elif spec.calendar and not isinstance(frame.index, pd.DatetimeIndex):
        out.append(StudioError("Calendar features need a time column, and this data is indexed by step number.",
                               "Untick the calendar features, or load the data with its time column on the Data step."))
    clash = sorted(set(calendar_columns(spec.calendar)) & set(spec.features))
    if clash:
        out.append(StudioError(f"Calendar feature names {', '.join(clash)} clash with data columns.",
                               "Untick the calendar features or rename those columns in the file."))

    # Sizes
    limits = {"window": (1, _F["max_window"]), "horizon": (1, _F["max_horizon"]),
              "offset": (0, _F["max_offset"]), "stride": (1, _F["max_window"])}
    sizes_ok = True
    for name, (lo, hi) in limits.items():
        value = getattr(spec, name)
        if value < lo:
            sizes_ok = False
            out.append(StudioError(f"{name.capitalize()} {value:,} is below {lo}.", f"Set the {name} to at least {lo}."))
        elif value > hi:
            sizes_ok = False
            longer = f" and longer than the whole series ({n:,} rows)" if name == "window" and value > n else ""
            out.append(StudioError(f"{name.capitalize()} {value:,} is far beyond anything a small recurrent model "
                                   f"(or the XIAO board) can use{longer}; the studio allows at most {hi:,}.",
                                   f"Set the {name} to {hi:,} or less; a preset is a good start."))
    if sizes_ok and spec.window > n:
        sizes_ok = False
        out.append(StudioError(f"Window {spec.window:,} is longer than the whole series ({n:,} rows).",
                               "Choose a much shorter window (a preset is a good start), or load more data."))

    # Split and fit
    parts = None
    try:
        parts = split_parts(frame.index, split)
    except StudioError as e:
        out.append(e)
    if parts is not None and sizes_ok:
        fit = largest_window(frame.index, split, spec.horizon, spec.offset)
        fits = f"the largest window that fits every part is {fit:,}" if fit else \
            f"no window fits with horizon {spec.horizon}{f' and offset {spec.offset}' if spec.offset else ''}"
        t, v = parts["train"][1], parts["test"][0]
        short = [p for p in ("val", "test") if parts[p][1] - parts[p][0] < spec.horizon]
        for part in short:
            lo, hi = parts[part]
            out.append(StudioError(
                f"The {PART_NAMES[part]} part has {hi - lo:,} row{'' if hi - lo == 1 else 's'}, fewer than the horizon "
                f"({spec.horizon:,} steps), so no forecast's labels fit inside it.",
                f"Give the {PART_NAMES[part]} part a larger share (or move its dates), or shorten the horizon."))
        if spec.span > t:
            out.append(StudioError(
                f"Window + {'offset + ' if spec.offset else ''}horizon ({spec.span:,} rows) is longer than the "
                f"training part ({t:,} rows); {fits}.",
                "Shorten the window or horizon, or give training a larger share of the data."))
        if spec.window + spec.offset > v:
            out.append(StudioError(
                f"Window {spec.window:,}{f' + offset {spec.offset:,}' if spec.offset else ''} is longer than everything "
                f"before the test part ({v:,} rows), so not even the first test forecast has a full window of past "
                f"data; {fits}.",
                "Shorten the window, or give training and validation a larger share of the data."))
    if scaler_kind not in SCALERS:
        out.append(StudioError(f"Unknown scaler {scaler_kind!r}.", f"Choose one of: {', '.join(SCALERS)}."))

    # Values: only for columns that exist and are numeric
    used = [c for c in dict.fromkeys(spec.features + spec.targets)
            if c in cols and pd.api.types.is_numeric_dtype(frame[c].dtype)]
    train = parts["train"] if parts is not None else (0, n)
    for c in used:
        v = column_values(dataset, c)
        if c in spec.log_columns:  # every row goes through log(), the test part's too; names the first bad row
            try:
                logscale.check_positive(v, c, frame.index)
            except StudioError as err:
                out.append(err)
                continue
        bad = n - int(np.count_nonzero(np.isfinite(v)))
        if bad:
            out.append(StudioError(f"Column {c!r} still has {bad:,} missing or infinite values.",
                                   "Go back to the Data step and fill the gaps (fill: interpolate or ffill), "
                                   "or leave this column out."))
            continue
        if train[1] > train[0]:
            part = v[train[0]:train[1]]
            lo, hi = float(part.min()), float(part.max())
            if hi - lo <= 1e-12 * max(1.0, abs(lo)):
                role = "target" if c in spec.targets else "input feature"
                fix = "Choose another target." if c in spec.targets else "Leave it out of the input features."
                out.append(StudioError(f"The {role} {c!r} is constant in the training part (always {lo:g}): "
                                       "it carries no information.", fix))
    if spec.calendar and not bad_cal and isinstance(frame.index, pd.DatetimeIndex) and train[1] > train[0]:
        cal = calendar_values(frame.index[train[0]:train[1]], spec.calendar)
        for name, k in zip(spec.calendar, range(0, cal.shape[1], 2)):
            if np.ptp(cal[:, k]) < 1e-9 and np.ptp(cal[:, k + 1]) < 1e-9:
                out.append(StudioError(f"The calendar feature {CALENDAR_NAMES[name]!r} is the same for every row "
                                       "of this data's frequency: it carries no information.",
                                       f"Untick {CALENDAR_NAMES[name]}."))
    return out


def check(dataset: Dataset, spec: WindowSpec, split: SplitSpec = SplitSpec(), scaler_kind: str = "minmax") -> None:
    """Raise the first problem ``validate`` finds."""
    problems = validate(dataset, spec, split, scaler_kind)
    if problems:
        raise problems[0]


