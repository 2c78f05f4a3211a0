"""The Features stage: window arithmetic, the chronological split, the scaler, and zero-copy windows.

One small spec object owns the arithmetic (like the TensorFlow tutorial's WindowGenerator). A window
that starts at row ``s`` reads inputs from rows ``s .. s+window-1`` (its origin is the last of them)
and its labels are rows ``s+window+offset .. s+window+offset+horizon-1``; so one window spans
``window + offset + horizon`` rows. The series is scaled once into a float32 array and every window
is a strided view of it, never a copy.

Which windows belong to a part (split rule 2, issue U): a training window lies wholly inside the
training part, inputs and labels, so nothing from validation or test is ever learned from. A
validation or test window is every window whose labels lie wholly inside that part; its inputs are
whatever precedes its labels, which may be rows of an earlier part: that is the past, read exactly
as the deployed model reads it, and it keeps every label row of a short test part scored. (Rule 1,
before, kept whole windows inside a part and left a gap of ``span - 1`` rows before validation and
test, so a 16-row test part with a 14-row window had 2 test windows.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

import numpy as np
import pandas as pd

from core.config import DEFAULTS
from core.dataset import Dataset
from core.errors import StudioError

PARTS = ("train", "val", "test")
# How the parts' windows are chosen (see the module docstring); written into every run so an old run
# (rule 1, no field) is known for what it is and its metrics are read as they were written.
SPLIT_RULE = 2
PART_NAMES = {"train": "training", "val": "validation", "test": "test"}
CALENDAR = ("hour", "dow", "doy")
CALENDAR_NAMES = {"hour": "hour of day", "dow": "day of week", "doy": "day of year"}
SCALERS = ("minmax", "standard")

_F = DEFAULTS["features"]


def calendar_columns(calendar: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The input column names of the chosen calendar features, a sin/cos pair each."""
    return tuple(f"{name}_{fn}" for name in calendar for fn in ("sin", "cos"))


def calendar_values(index: pd.Index, calendar: tuple[str, ...] | list[str]) -> np.ndarray:
    """(len(index), 2*len(calendar)) float64 sin/cos of the position in each cycle."""
    if not calendar:
        return np.empty((len(index), 0))
    if not isinstance(index, pd.DatetimeIndex):
        raise StudioError("Calendar features need a time column, and this data is indexed by step number.",
                          "Untick the calendar features, or load the data with its time column on the Data step.")
    day = (index.hour.to_numpy() + index.minute.to_numpy() / 60 + index.second.to_numpy() / 3600) / 24
    out = []
    for name in calendar:
        if name == "hour":
            frac = day
        elif name == "dow":
            frac = (index.dayofweek.to_numpy() + day) / 7
        elif name == "doy":
            frac = (index.dayofyear.to_numpy() - 1 + day) / np.where(index.is_leap_year, 366, 365)
        else:
            raise StudioError(f"Unknown calendar feature {name!r}.", f"Choose from {', '.join(CALENDAR)}.")
        angle = 2 * np.pi * frac
        out += [np.sin(angle), np.cos(angle)]
    return np.stack(out, axis=1)


# ----------------------------------------------------------------------------------------------- specs

@dataclass(frozen=True)
class WindowSpec:
    """Which columns go in and come out, and how many steps each window looks back and ahead.

    ``offset`` k means the labels are t+1+k .. t+k+horizon, t being the window's last input step.
    ``stride`` is the step between windows in the parts used for fitting (train and val); the test
    part always uses every window so scores compare across strides.
    """

    targets: tuple[str, ...]
    features: tuple[str, ...]
    calendar: tuple[str, ...] = ()
    window: int = _F["window"]
    horizon: int = _F["horizon"]
    offset: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        # Frozen and made of tuples, so a spec is hashable and can key a cache.
        for name in ("targets", "features", "calendar"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(str(v) for v in value))
        for name in ("window", "horizon", "offset", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise StudioError(f"{name.capitalize()} must be a whole number of steps, not {value!r}.",
                                  f"Enter a whole number for the {name}.")
            object.__setattr__(self, name, int(value))

    @property
    def input_columns(self) -> tuple[str, ...]:
        return self.features + calendar_columns(self.calendar)

    @property
    def n_inputs(self) -> int:
        return len(self.input_columns)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def target_input_index(self) -> tuple[int | None, ...]:
        cols = self.input_columns
        return tuple(cols.index(t) if t in cols else None for t in self.targets)

    @property
    def span(self) -> int:
        """Rows one window touches, from its first input to its last label."""
        return self.window + self.offset + self.horizon

    @property
    def label_start(self) -> int:
        """Row of the first label, counted from the window's first input."""
        return self.window + self.offset

    def to_dict(self) -> dict:
        return {"targets": list(self.targets), "features": list(self.features), "calendar": list(self.calendar),
                "window": self.window, "horizon": self.horizon, "offset": self.offset, "stride": self.stride}

    @classmethod
    def from_dict(cls, d: dict) -> "WindowSpec":
        try:
            return cls(targets=tuple(d["targets"]), features=tuple(d["features"]),
                       calendar=tuple(d.get("calendar", ())), window=d["window"], horizon=d["horizon"],
                       offset=d.get("offset", 0), stride=d.get("stride", 1))
        except (KeyError, TypeError, ValueError) as e:
            raise StudioError(f"The saved window spec is damaged ({type(e).__name__}: {e}).",
                              "Set the window again on the Features step and retrain.") from e


@dataclass(frozen=True)
class SplitSpec:
    """A chronological train/validation/test split, by fraction or (when ``train_end`` is set) by date.

    ``train_end``/``val_end`` are ISO dates (or step numbers for step-indexed data): the first row of
    the next part. The test part is the rest.
    """

    train: float = _F["train"]
    val: float = _F["val"]
    train_end: str | None = None
    val_end: str | None = None

    def __post_init__(self) -> None:
        for name in ("train_end", "val_end"):  # kept as text so the split saves as plain JSON
            value = getattr(self, name)
            if isinstance(value, np.datetime64):
                value = pd.Timestamp(value)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, value.isoformat() if hasattr(value, "isoformat") else str(value))
        object.__setattr__(self, "train", float(self.train))
        object.__setattr__(self, "val", float(self.val))

    @property
    def by_date(self) -> bool:
        return self.train_end is not None or self.val_end is not None

    def to_dict(self) -> dict:
        return {"train": self.train, "val": self.val, "train_end": self.train_end, "val_end": self.val_end}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitSpec":
        try:
            return cls(train=d.get("train", _F["train"]), val=d.get("val", _F["val"]),
                       train_end=d.get("train_end"), val_end=d.get("val_end"))
        except (TypeError, ValueError) as e:
            raise StudioError(f"The saved split is damaged ({e}).", "Set the split again on the Features step.") from e


# ---------------------------------------------------------------------------------------------- scaler

@dataclass
class Scaler:
    """scaled = (x - center) / scale, per column; fitted on the training part only.

    A column that is constant in the training part gets scale 1 (never a division by zero) and is
    listed in ``constant``.
    """

    kind: str
    columns: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    constant: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        if not (len(self.columns) == len(self.center) == len(self.scale)):
            raise StudioError("The scaler's columns and statistics do not match in length.",
                              "Set the features again on the Features step.")

    @classmethod
    def fit(cls, columns: dict[str, np.ndarray], kind: str = "minmax",
            fixed: dict[str, tuple[float, float]] | None = None) -> "Scaler":
        """Fit on the given (training-part) column values; ``fixed`` columns keep the (center, scale) given."""
        if kind not in SCALERS:
            raise StudioError(f"Unknown scaler {kind!r}.", f"Choose one of: {', '.join(SCALERS)}.")
        fixed = fixed or {}
        names, center, scale, constant = [], [], [], []
        for name, values in columns.items():
            names.append(name)
            if name in fixed:
                c, s = fixed[name]
            else:
                v = np.asarray(values, dtype=np.float64)
                if kind == "minmax":
                    lo, hi = float(np.min(v)), float(np.max(v))
                    c, s = lo, hi - lo
                else:
                    c, s = float(np.mean(v)), float(np.std(v))
                # Relative test: float noise on a constant column must not blow values up by 1e15.
                if not np.isfinite(s) or s <= 1e-12 * max(1.0, abs(c)):
                    s = 1.0
                    constant.append(name)
            center.append(c)
            scale.append(s)
        return cls(kind, tuple(names), np.array(center), np.array(scale), tuple(constant))

    def _positions(self, cols: tuple[str, ...] | list[str] | None) -> np.ndarray:
        if cols is None:
            return np.arange(len(self.columns))
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise StudioError(f"The scaler knows no column {', '.join(map(repr, missing))}.",
                              "Use the columns chosen on the Features step.")
        return np.array([self.columns.index(c) for c in cols], dtype=np.intp)

    def _apply(self, a: Any, cols: Any, forward: bool) -> np.ndarray:
        a = np.asarray(a)
        pos = self._positions(cols)
        if a.shape[-1:] != (len(pos),):
            raise StudioError(f"Values with last dimension {a.shape[-1:] or '()'} do not match {len(pos)} columns.",
                              "Pass one value per chosen column.")
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
        c, s = self.center[pos], self.scale[pos]
        x = a.astype(np.float64, copy=False)
        return ((x - c) / s if forward else x * s + c).astype(dtype, copy=False)

    def transform(self, a: Any, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Data units to scaled units; the last axis of ``a`` runs over ``cols`` (default: all columns)."""
        return self._apply(a, cols, True)

    def inverse(self, a: Any, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Scaled units back to the data's units."""
        return self._apply(a, cols, False)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "columns": list(self.columns), "center": self.center.tolist(),
                "scale": self.scale.tolist(), "constant": list(self.constant)}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        try:
            return cls(d["kind"], tuple(d["columns"]), np.array(d["center"], dtype=np.float64),
                       np.array(d["scale"], dtype=np.float64), tuple(d.get("constant", ())))
        except (KeyError, TypeError, ValueError) as e:
            raise StudioError(f"The saved scaler is damaged ({type(e).__name__}: {e}).",
                              "Retrain the model so the scaler is saved again.") from e


def _fixed_calendar_scaling(kind: str, cols: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    # Calendar sin/cos are bounded by construction: scale them by their known range, not by how
    # much of a cycle the training part happens to cover (a short training part would misscale them).
    cs = (-1.0, 2.0) if kind == "minmax" else (0.0, math.sqrt(0.5))
    return {c: cs for c in cols}


# ---------------------------------------------------------------------------------------- the split

def _split_bounds(index: pd.Index, split: SplitSpec) -> tuple[int, int]:
    """Row numbers where validation and test begin."""
    n = len(index)
    if split.by_date:
        if split.train_end is None or split.val_end is None:
            raise StudioError("A split by date needs both the end of training and the end of validation.",
                              "Pick both dates, or split by fraction.")
        bounds = []
        for label, value in (("end of training", split.train_end), ("end of validation", split.val_end)):
            if isinstance(index, pd.DatetimeIndex):
                try:
                    when = pd.Timestamp(value)
                    if index.tz is not None and when.tz is None:
                        when = when.tz_localize(index.tz)
                    elif index.tz is None and when.tz is not None:
                        when = when.tz_convert(None)
                except (ValueError, TypeError):
                    raise StudioError(f"The {label} {value!r} is not a date.",
                                      "Pick a date from the calendar, or split by fraction.") from None
            else:
                try:
                    when = int(float(value))
                except ValueError:
                    raise StudioError(f"The {label} {value!r} is not a step number (this data has no time column).",
                                      "Enter a step number, or split by fraction.") from None
            bounds.append(int(index.searchsorted(when, side="left")))
        t, v = bounds
        if not 0 < t < v < n:
            first, last = index[0], index[-1]
            if v < t:
                problem = (f"the test part starts ({split.val_end}) before the validation part "
                           f"({split.train_end})")
            else:
                empty = [PART_NAMES[p] for p, rows in (("train", t), ("val", v - t), ("test", n - v)) if rows <= 0]
                problem = (f"they leave no rows, so no labels, in the {' and '.join(empty)} part"
                           f"{'s' if len(empty) > 1 else ''}")
            raise StudioError(f"The split dates must fall inside the data ({first} .. {last}) in order: {problem} "
                              f"({max(t, 0):,} training, {max(v - t, 0):,} validation and {max(n - v, 0):,} "
                              "test rows).",
                              "Move the dates so every part has rows, or split by fraction.")
        return t, v
    tr, va = split.train, split.val
    if not (0 < tr < 1 and 0 < va < 1 and tr + va < 1):
        raise StudioError(f"Split fractions train {tr:g} and validation {va:g} leave no room for every part.",
                          "Use fractions above 0 that add up to less than 1 (for example 0.7 and 0.15); "
                          "the test part gets the rest.")
    return int(round(n * tr)), int(round(n * (tr + va)))


def split_parts(index: pd.Index, split: SplitSpec) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of each part's label rows; the parts touch (no gap since split rule 2),
    and which windows each part has is ``first_start``'s and ``Windows.count``'s business."""
    t, v = _split_bounds(index, split)
    return {"train": (0, t), "val": (t, v), "test": (v, len(index))}


def first_start(part: str, lo: int, spec: WindowSpec) -> int:
    """Row of the first input of ``part``'s first window, for a part whose rows start at ``lo``.

    Training windows start inside training; a validation or test window's labels start at ``lo`` at the
    earliest, its inputs reaching back before the part (never before the first row of the data).
    """
    return lo if part == "train" else max(lo - spec.label_start, 0)


def _count(first: int, hi: int, span: int, stride: int) -> int:
    """Windows starting at ``first``, ``first + stride``, ... whose last row is before ``hi``."""
    return 0 if hi - first < span else (hi - first - span) // stride + 1


def window_counts(index: pd.Index, split: SplitSpec, spec: WindowSpec) -> dict[str, int]:
    """Windows per part without building them: the same arithmetic as ``Windows.count``."""
    parts = split_parts(index, split)
    return {p: _count(first_start(p, lo, spec), hi, spec.span, 1 if p == "test" else spec.stride)
            for p, (lo, hi) in parts.items()}


def largest_window(index: pd.Index, split: SplitSpec, horizon: int, offset: int = 0) -> int:
    """The longest window that still leaves at least one window in every part (0 if none fits).

    Training needs a whole window inside it; validation and test need only ``horizon`` rows for one
    window's labels, its inputs coming from before them.
    """
    t, v = _split_bounds(index, split)
    if min(v - t, len(index) - v) < horizon:
        return 0
    return max(t - offset - horizon, 0)


# -------------------------------------------------------------------------------------- validation

def _column_values(dataset: Dataset, name: str) -> np.ndarray:
    col = dataset.frame[name]
    if col.dtype == np.float64:  # the Dataset contract: a view, no copy
        return col.to_numpy(copy=False)
    return col.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable integers and the like


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
        v = _column_values(dataset, c)
        bad = n - int(np.count_nonzero(np.isfinite(v)))
        if bad:
            out.append(StudioError(f"Column {c!r} still has {bad:,} missing or infinite values.",
                                   "Go back to the Data step and fill the gaps (fill: interpolate or ffill), "
                                   "or leave this column out."))
        elif train[1] > train[0]:
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


# ---------------------------------------------------------------------------------------- windows

class TorchWindows:
    """A map-style torch dataset (``__len__``/``__getitem__``) over one part's windows.

    Each item is a pair of tensor slices of the shared float32 series (no copy per window); a
    DataLoader's collate stacks them into a batch.
    """

    def __init__(self, inputs: np.ndarray, targets: np.ndarray, starts: np.ndarray, window: int,
                 label_start: int, horizon: int) -> None:
        import torch

        self.inputs = torch.from_numpy(inputs)
        self.targets = torch.from_numpy(targets)
        self.starts = starts
        self.window, self.label_start, self.horizon = window, label_start, horizon

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int):
        s = int(self.starts[i])
        ls = s + self.label_start
        return self.inputs[s:s + self.window], self.targets[ls:ls + self.horizon]


@dataclass(eq=False)
class Windows:
    """The scaled series and everything needed to read windows out of it for one split."""

    spec: WindowSpec
    split: SplitSpec
    scaler: Scaler
    inputs: np.ndarray          # float32 (n_rows, n_inputs), scaled
    target_values: np.ndarray   # float32 (n_rows, n_targets), scaled
    index: pd.Index
    parts: dict[str, tuple[int, int]]
    freq: str | None = None
    dataset_name: str = ""
    dataset_fingerprint: str = ""
    _tf: tuple | None = field(default=None, repr=False)

    # ---- arithmetic
    def stride(self, part: str) -> int:
        return 1 if part == "test" else self.spec.stride

    def _range(self, part: str) -> tuple[int, int]:
        if part not in self.parts:
            raise StudioError(f"Unknown part {part!r}.", f"Use one of {', '.join(PARTS)}.")
        return self.parts[part]

    def first_start(self, part: str) -> int:
        """Row of the first input of ``part``'s first window (before the part for validation and test)."""
        return first_start(part, self._range(part)[0], self.spec)

    def count(self, part: str) -> int:
        return _count(self.first_start(part), self._range(part)[1], self.spec.span, self.stride(part))

    def points(self, part: str) -> int:
        """Label rows (time points) of ``part`` that its windows forecast, each counted once."""
        n, h = self.count(part), self.spec.horizon
        return 0 if n == 0 else (n - 1) * min(self.stride(part), h) + h

    def part_of(self, start: int) -> str | None:
        """The part a window starting at row ``start`` belongs to, or None when it is used by none."""
        for p in PARTS:
            first, hi, stride = self.first_start(p), self._range(p)[1], self.stride(p)
            if first <= start and start + self.spec.span <= hi and (start - first) % stride == 0:
                return p
        return None

    def counts(self) -> dict[str, int]:
        return {p: self.count(p) for p in PARTS}

    def starts(self, part: str) -> np.ndarray:
        """Row of each window's first input."""
        return self.first_start(part) + self.stride(part) * np.arange(self.count(part), dtype=np.int64)

    # ---- arrays (zero-copy views)
    def X(self, part: str) -> np.ndarray:
        """(n, window, n_inputs) read-only strided view of the scaled inputs."""
        lo = self.first_start(part)
        view = np.lib.stride_tricks.sliding_window_view(self.inputs, self.spec.window, axis=0)
        view = view.transpose(0, 2, 1)  # numpy puts the window axis last; models want time before features
        return view[lo: lo + self.stride(part) * self.count(part): self.stride(part)]

    def y(self, part: str) -> np.ndarray:
        """(n, horizon, n_targets) read-only strided view of the scaled labels."""
        first = self.first_start(part) + self.spec.label_start
        view = np.lib.stride_tricks.sliding_window_view(self.target_values, self.spec.horizon, axis=0)
        view = view.transpose(0, 2, 1)
        return view[first: first + self.stride(part) * self.count(part): self.stride(part)]

    def y_data_units(self, part: str) -> np.ndarray:
        """Labels in the data's own units (a float64 copy)."""
        return self.scaler.inverse(self.y(part).astype(np.float64), self.spec.targets)

    def origin_times(self, part: str) -> pd.Index:
        """The time of each window's last input step (when the forecast is made)."""
        return self.index[self.starts(part) + self.spec.window - 1]

    def label_times(self, part: str) -> np.ndarray:
        """(n, horizon) times of each window's labels."""
        rows = self.starts(part)[:, None] + self.spec.label_start + np.arange(self.spec.horizon)
        return self.index.to_numpy()[rows]

    def last_window(self) -> np.ndarray:
        """The newest full input window as a batch of one: (1, window, n_inputs), scaled, a view."""
        return self.inputs[len(self.inputs) - self.spec.window:][None]

    def future_times(self) -> pd.Index:
        """The times a forecast from ``last_window()`` is for (past the end of the data)."""
        steps = np.arange(self.spec.offset + 1, self.spec.label_start - self.spec.window + self.spec.horizon + 1)
        last = self.index[-1]
        if isinstance(self.index, pd.DatetimeIndex):
            if self.freq:
                return pd.date_range(last, periods=steps[-1] + 1, freq=self.freq)[steps]
            step = pd.Series(self.index[-min(len(self.index), 100):]).diff().median()
            return pd.DatetimeIndex([last + k * step for k in steps])
        return pd.Index(int(last) + steps, name=self.index.name)

    # ---- iteration for the two backends
    def batches(self, part: str, batch_size: int = 32, shuffle: bool = False,
                seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Numpy batches gathered on demand: only one batch of windows exists at a time."""
        starts = self.starts(part)
        if shuffle:
            starts = np.random.default_rng(seed).permutation(starts)
        w_off = np.arange(self.spec.window)
        h_off = self.spec.label_start + np.arange(self.spec.horizon)
        for i in range(0, len(starts), batch_size):
            s = starts[i:i + batch_size, None]
            yield self.inputs[s + w_off], self.target_values[s + h_off]

    def tf_dataset(self, part: str, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
        """A tf.data pipeline of (X, y) batches gathered from one in-graph copy of the series.

        Shuffling permutes the window start rows once per pass (a fresh permutation each epoch,
        reproducible from ``seed``) rather than through a shuffle buffer, which would have to take in
        every window one by one before the first batch.
        """
        import tensorflow as tf

        if self._tf is None:
            self._tf = (tf.constant(self.inputs), tf.constant(self.target_values))
        inputs, targets = self._tf
        w_off = tf.range(self.spec.window, dtype=tf.int64)
        h_off = tf.range(self.spec.horizon, dtype=tf.int64) + self.spec.label_start
        starts = tf.constant(self.starts(part))
        n = len(self.starts(part))
        n_full = n // batch_size * batch_size

        def in_batches(order):
            # Reshape into whole batches instead of batching element by element; the remainder is the last batch.
            ds = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:n_full], (-1, batch_size)))
            return ds.concatenate(tf.data.Dataset.from_tensors(order[n_full:])) if n > n_full else ds

        if shuffle:
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
            ds = draws.flat_map(lambda r: in_batches(tf.random.experimental.stateless_shuffle(
                starts, seed=tf.stack([tf.constant(seed, tf.int64), r]))))
        else:
            ds = in_batches(starts)

        def gather(s):
            s = s[:, None]
            return tf.gather(inputs, s + w_off), tf.gather(targets, s + h_off)

        return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def torch_dataset(self, part: str) -> TorchWindows:
        return TorchWindows(self.inputs, self.target_values, self.starts(part), self.spec.window,
                            self.spec.label_start, self.spec.horizon)

    # ---- words
    def shapes(self) -> str:
        return shapes_sentence(self.spec, self.count("train"))

    def describe_parts(self) -> list[dict]:
        """One row per part: its rows and dates, its windows, and from which row its windows read inputs."""
        rows = []
        for p in PARTS:
            lo, hi = self.parts[p]
            n = self.count(p)
            first = self.first_start(p)
            rows.append({"part": PART_NAMES[p], "rows": hi - lo, "from": self.index[lo] if hi > lo else None,
                         "to": self.index[hi - 1] if hi > lo else None, "windows": n,
                         "points": self.points(p), "stride": self.stride(p),
                         "inputs from": self.index[first] if n else None,
                         "input rows before the part": max(lo - first, 0) if n else 0})
        return rows


def make_windows(dataset: Dataset, spec: WindowSpec, split: SplitSpec = SplitSpec(),
                 scaler_kind: str = "minmax") -> Windows:
    """Check the choices, fit the scaler on the training part, and scale the series once into float32."""
    check(dataset, spec, split, scaler_kind)
    frame = dataset.frame
    parts = split_parts(frame.index, split)
    t0, t1 = parts["train"]
    n = len(frame)
    cal_cols = calendar_columns(spec.calendar)
    cal = calendar_values(frame.index, spec.calendar)
    scaled_cols = list(dict.fromkeys(spec.input_columns + spec.targets))
    raw = {c: (_column_values(dataset, c) if c not in cal_cols else cal[:, cal_cols.index(c)]) for c in scaled_cols}
    scaler = Scaler.fit({c: v[t0:t1] for c, v in raw.items()}, scaler_kind,
                        fixed=_fixed_calendar_scaling(scaler_kind, cal_cols))
    # Column by column, so the float64 temporaries stay one column long.
    inputs = np.empty((n, spec.n_inputs), dtype=np.float32)
    for j, c in enumerate(spec.input_columns):
        inputs[:, j] = scaler.transform(raw[c][:, None], [c])[:, 0]
    targets = np.empty((n, spec.n_targets), dtype=np.float32)
    for j, c in enumerate(spec.targets):
        k = spec.input_columns.index(c) if c in spec.input_columns else None
        targets[:, j] = inputs[:, k] if k is not None else scaler.transform(raw[c][:, None], [c])[:, 0]
    return Windows(spec, split, scaler, inputs, targets, frame.index, parts, dataset.freq,
                   dataset.name, dataset.fingerprint)


# ------------------------------------------------------------------------------ presets and words

class Preset(NamedTuple):
    label: str
    window: int
    horizon: int


_UNITS = {"min": "minute", "T": "minute", "s": "second", "S": "second", "h": "hour", "H": "hour",
          "D": "day", "B": "business day", "W": "week", "MS": "month", "ME": "month", "M": "month",
          "QS": "quarter", "QE": "quarter", "Q": "quarter", "YS": "year", "YE": "year", "Y": "year", "A": "year",
          "AS": "year"}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _step(freq: str | None) -> tuple[int, str] | None:
    """(n, unit) of one step, e.g. (15, "minute"), (1, "hour"), (1, "month"); None when unknown."""
    if not freq:
        return None
    try:
        off = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return None
    unit = _UNITS.get(off.name.split("-")[0])
    return (max(int(off.n), 1), unit) if unit else None


def _plural(n: float, unit: str) -> str:
    text = f"{n:,.1f}".rstrip("0").rstrip(".") if n != int(n) else f"{int(n):,}"
    return f"{text} {unit}{'' if n == 1 else 's'}"


_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


def describe_steps(steps: int, freq: str | None) -> str:
    """Steps in time units: "168 steps = 7 days"; just "168 steps" when the data has no known frequency."""
    head = _plural(steps, "step")
    st = _step(freq)
    if st is None:
        return head
    n, unit = st
    total = steps * n
    if unit in _MONTHS:
        months = total * _MONTHS[unit]
        words = _plural(months // 12, "year") if months % 12 == 0 else _plural(months, "month")
    elif unit == "business day":
        words = _plural(total, "business day")
    else:
        secs = total * _SECONDS[unit]
        for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if secs >= size:
                words = _plural(secs / size, name)
                break
        else:
            words = _plural(secs, "second")
    return f"{head} = {words}"


def step_words(freq: str | None) -> str:
    st = _step(freq)
    if st is None:
        return "step"
    n, unit = st
    return unit if n == 1 else _plural(n, unit)


# Presets in time words; a pair is offered when both lengths are whole numbers of steps.
_TIME_PRESETS = [("1 week", "step"), ("1 day", "step"), ("1 day", "6 hours"), ("2 days", "1 day"),
                 ("1 week", "1 day"), ("6 hours", "1 hour"), ("1 hour", "step"), ("2 weeks", "step"),
                 ("4 weeks", "1 week"), ("8 weeks", "step"), ("1 year", "4 weeks")]
_DURATIONS = {"1 hour": 3600, "6 hours": 6 * 3600, "1 day": 86400, "2 days": 2 * 86400, "1 week": 7 * 86400,
              "2 weeks": 14 * 86400, "4 weeks": 28 * 86400, "8 weeks": 56 * 86400, "1 year": 52 * 7 * 86400}
_MONTH_PRESETS = [("1 year", "step"), ("2 years", "3 months"), ("3 years", "1 year"), ("6 months", "step"),
                  ("2 years", "step"), ("5 years", "1 year"), ("10 years", "step")]
_MONTH_DURATIONS = {"3 months": 3, "6 months": 6, "1 year": 12, "2 years": 24, "3 years": 36, "5 years": 60,
                    "10 years": 120}
_STEP_PRESETS = [(24, 1), (48, 1), (96, 12), (168, 1), (12, 1)]


def presets(freq: str | None, n_train: int | None = None, limit: int = 6) -> list[Preset]:
    """Window/horizon pairs that read naturally for the data's frequency, e.g. "1 week → next hour" (168 → 1).

    With ``n_train`` (rows in the training part), only pairs that leave many windows to learn from.
    """
    st = _step(freq)
    out: list[Preset] = []
    if st is None:
        out = [Preset(f"{w} steps → next {'step' if h == 1 else f'{h} steps'}", w, h) for w, h in _STEP_PRESETS]
    else:
        n, unit = st
        if unit in _MONTHS:
            size, table, durations = n * _MONTHS[unit], _MONTH_PRESETS, _MONTH_DURATIONS
        elif unit == "business day":
            size, table = n, [("1 week", "step"), ("4 weeks", "step"), ("4 weeks", "1 week"), ("1 year", "4 weeks")]
            durations = {"1 week": 5, "4 weeks": 20, "1 year": 260}
        else:
            size, table, durations = n * _SECONDS[unit], _TIME_PRESETS, _DURATIONS
        unit_words = step_words(freq)
        for w_words, h_words in table:
            w_len = durations[w_words]
            h_len = size if h_words == "step" else durations[h_words]
            if w_len % size or h_len % size:
                continue
            w, h = w_len // size, h_len // size
            if not 3 <= w <= _F["max_window"] or h > w:
                continue
            label = f"{w_words} → next {unit_words if h_words == 'step' else h_words.removeprefix('1 ')}"
            out.append(Preset(label, w, h))
    if n_train is not None:
        out = [p for p in out if 2 * (p.window + p.horizon) <= n_train]
    seen: set[tuple[int, int]] = set()
    unique = []
    for p in out:
        if (p.window, p.horizon) not in seen:
            seen.add((p.window, p.horizon))
            unique.append(p)
    return unique[:limit]


def calendar_options(dataset: Dataset) -> tuple[str, ...]:
    """Calendar features that can vary at this data's step (no hour of day on daily data...)."""
    if not isinstance(dataset.frame.index, pd.DatetimeIndex):
        return ()
    st = _step(dataset.freq)
    if st is None:
        return CALENDAR
    n, unit = st
    secs = n * _SECONDS.get(unit, 0)
    if unit in _MONTHS:
        return ("doy",) if n * _MONTHS[unit] < 12 else ()
    out = []
    if 0 < secs < 86400:
        out.append("hour")
    if (0 < secs < 7 * 86400) or unit == "business day":
        out.append("dow")
    out.append("doy")
    return tuple(out)


def parts_sentence(windows: Windows) -> str:
    """How many windows each part has, and that validation and test inputs may come from before the part."""
    c = windows.counts()
    reach = max(windows.parts["test"][0] - windows.first_start("test"), 0) if c["test"] else 0
    text = (f"{c['train']:,} training, {c['val']:,} validation and {c['test']:,} test windows. A training window "
            "lies wholly in the training part; a validation or test window has its labels in its part and reads "
            "its inputs from the rows just before them, as the board does")
    if reach:
        text += (f": the first test forecasts read up to {reach:,} row{'' if reach == 1 else 's'} from before the "
                 "test part")
    return text + ". Every test row a full window of past data can reach is forecast."


def shapes_sentence(spec: WindowSpec, n_windows: int | None = None) -> str:
    """ "X: (n_windows, 168, 7) = 1,176 values per forecast; y: (n_windows, 1, 1)" """
    n = "n_windows" if n_windows is None else f"{n_windows:,}"
    return (f"X: ({n}, {spec.window}, {spec.n_inputs}) = {spec.window * spec.n_inputs:,} values per forecast; "
            f"y: ({n}, {spec.horizon}, {spec.n_targets})")


def default_spec(dataset: Dataset, targets: tuple[str, ...] | None = None) -> WindowSpec:
    """The first varying column as target, every varying numeric column as input, and a window that fits."""
    frame = dataset.frame
    # A column constant over the whole data would only be refused by validate(); leave it out up front.
    def varies(c: str) -> bool:
        values = frame[c].dropna()
        return len(values) > 0 and values.max() > values.min()

    cols = tuple(c for c in dataset.numeric_columns if varies(c))
    cols = cols or tuple(dataset.numeric_columns)
    targets = targets or cols[:1]
    window, horizon = _F["window"], _F["horizon"]
    if len(frame) >= 3:
        # Short data: the longest window that still leaves a window in every part.
        window = max(min(window, largest_window(frame.index, SplitSpec(), horizon)), 1)
    return WindowSpec(targets=tuple(targets), features=cols, window=window, horizon=horizon)
