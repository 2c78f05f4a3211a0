"""Window, split and scaler specs: the small typed objects the Features stage hands on (see the
package docstring for which rows each part's windows read)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.config import DEFAULTS
from core.dataset import Dataset
from core import logscale
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
    # The multiplicative form (core.logscale): every target, and its input column, enters the scaler as its log.
    log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "log", bool(self.log))
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
    def log_columns(self) -> tuple[str, ...]:
        """The columns held as their log: the targets (their input columns share the name) when ``log`` is set."""
        return self.targets if self.log else ()

    @property
    def span(self) -> int:
        """Rows one window touches, from its first input to its last label."""
        return self.window + self.offset + self.horizon

    @property
    def label_start(self) -> int:
        """Row of the first label, counted from the window's first input."""
        return self.window + self.offset

    def to_dict(self) -> dict:
        d = {"targets": list(self.targets), "features": list(self.features), "calendar": list(self.calendar),
             "window": self.window, "horizon": self.horizon, "offset": self.offset, "stride": self.stride}
        if self.log:  # only when set, so a spec without it writes (and compares) as before
            d["log"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "WindowSpec":
        try:
            return cls(targets=tuple(d["targets"]), features=tuple(d["features"]),
                       calendar=tuple(d.get("calendar", ())), window=d["window"], horizon=d["horizon"],
                       offset=d.get("offset", 0), stride=d.get("stride", 1), log=bool(d.get("log", False)))
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

    def bounds(self, index: pd.Index) -> tuple[int, int]:
        """Row numbers where validation and test begin: the one split arithmetic (fractions round, dates
        resolve to the first row at or after them), which the windows, the defaults and the pages all use."""
        n = len(index)
        if self.by_date:
            if self.train_end is None or self.val_end is None:
                raise StudioError("A split by date needs both the end of training and the end of validation.",
                                  "Pick both dates, or split by fraction.")
            bounds = []
            for label, value in (("end of training", self.train_end), ("end of validation", self.val_end)):
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
                    problem = (f"the test part starts ({self.val_end}) before the validation part "
                               f"({self.train_end})")
                else:
                    empty = [PART_NAMES[p] for p, rows in (("train", t), ("val", v - t), ("test", n - v)) if rows <= 0]
                    problem = (f"they leave no rows, so no labels, in the {' and '.join(empty)} part"
                               f"{'s' if len(empty) > 1 else ''}")
                raise StudioError(f"The split dates must fall inside the data ({first} .. {last}) in order: {problem} "
                                  f"({max(t, 0):,} training, {max(v - t, 0):,} validation and {max(n - v, 0):,} "
                                  "test rows).",
                                  "Move the dates so every part has rows, or split by fraction.")
            return t, v
        tr, va = self.train, self.val
        if not (0 < tr < 1 and 0 < va < 1 and tr + va < 1):
            raise StudioError(f"Split fractions train {tr:g} and validation {va:g} leave no room for every part.",
                              "Use fractions above 0 that add up to less than 1 (for example 0.7 and 0.15); "
                              "the test part gets the rest.")
        return int(round(n * tr)), int(round(n * (tr + va)))

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
    listed in ``constant``. A column in ``log`` is held as its log: scaled = (log(x) - center) / scale,
    and ``inverse`` gives exp of the affine inverse (core.logscale).
    """

    kind: str
    columns: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    constant: tuple[str, ...] = ()
    log: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        self.log = tuple(c for c in self.columns if c in set(self.log))
        self.center = np.asarray(self.center, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        if not (len(self.columns) == len(self.center) == len(self.scale)):
            raise StudioError("The scaler's columns and statistics do not match in length.",
                              "Set the features again on the Features step.")

    @classmethod
    def fit(cls, columns: dict[str, np.ndarray], kind: str = "minmax",
            fixed: dict[str, tuple[float, float]] | None = None, log: tuple[str, ...] = ()) -> "Scaler":
        """Fit on the given (training-part) column values; ``fixed`` columns keep the (center, scale) given;
        ``log`` columns are fitted on their log (every value must be above 0)."""
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
                if name in log:
                    logscale.check_positive(v, name)
                    v = np.log(v)
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
        return cls(kind, tuple(names), np.array(center), np.array(scale), tuple(constant), tuple(log))

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
        log = logscale.mask([self.columns[i] for i in pos], self.log)
        if not forward:
            return logscale.to_units(x, c, s, log).astype(dtype, copy=False)
        if log.any():
            with np.errstate(divide="ignore", invalid="ignore"):  # a value <= 0 gives -inf / nan, refused upstream
                x = np.where(log, np.log(np.where(log, x, 1.0)), x)
        return ((x - c) / s).astype(dtype, copy=False)

    def transform(self, a: Any, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Data units to scaled units; the last axis of ``a`` runs over ``cols`` (default: all columns)."""
        return self._apply(a, cols, True)

    def inverse(self, a: Any, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Scaled units back to the data's units."""
        return self._apply(a, cols, False)

    def log_mask(self, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Bool per column of ``cols`` (default: all): whether it is held as its log."""
        return logscale.mask(self.columns if cols is None else cols, self.log)

    def unit_span(self, cols: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Per column, one scaled unit in the data's units (the scale for a plain column; core.logscale.unit_span)."""
        pos = self._positions(cols)
        return logscale.unit_span(self.center[pos], self.scale[pos], self.log_mask([self.columns[i] for i in pos]))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "columns": list(self.columns), "center": self.center.tolist(),
             "scale": self.scale.tolist(), "constant": list(self.constant)}
        if self.log:  # only when set: the export report's readers take a missing "log" as none
            d["log"] = list(self.log)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        try:
            return cls(d["kind"], tuple(d["columns"]), np.array(d["center"], dtype=np.float64),
                       np.array(d["scale"], dtype=np.float64), tuple(d.get("constant", ())), tuple(d.get("log", ())))
        except (KeyError, TypeError, ValueError) as e:
            raise StudioError(f"The saved scaler is damaged ({type(e).__name__}: {e}).",
                              "Retrain the model so the scaler is saved again.") from e


def fixed_calendar_scaling(kind: str, cols: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    # Calendar sin/cos are bounded by construction: scale them by their known range, not by how
    # much of a cycle the training part happens to cover (a short training part would misscale them).
    cs = (-1.0, 2.0) if kind == "minmax" else (0.0, math.sqrt(0.5))
    return {c: cs for c in cols}


# ---------------------------------------------------------------------------------------- the split

def split_parts(index: pd.Index, split: SplitSpec) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of each part's label rows; the parts touch (no gap since split rule 2),
    and which windows each part has is ``first_start``'s and ``Windows.count``'s business."""
    t, v = split.bounds(index)
    return {"train": (0, t), "val": (t, v), "test": (v, len(index))}


def first_start(part: str, lo: int, spec: WindowSpec) -> int:
    """Row of the first input of ``part``'s first window, for a part whose rows start at ``lo``.

    Training windows start inside training; a validation or test window's labels start at ``lo`` at the
    earliest, its inputs reaching back before the part (never before the first row of the data).
    """
    return lo if part == "train" else max(lo - spec.label_start, 0)


def count_windows(first: int, hi: int, span: int, stride: int) -> int:
    """Windows starting at ``first``, ``first + stride``, ... whose last row is before ``hi``."""
    return 0 if hi - first < span else (hi - first - span) // stride + 1


def window_counts(index: pd.Index, split: SplitSpec, spec: WindowSpec) -> dict[str, int]:
    """Windows per part without building them: the same arithmetic as ``Windows.count``."""
    parts = split_parts(index, split)
    return {p: count_windows(first_start(p, lo, spec), hi, spec.span, 1 if p == "test" else spec.stride)
            for p, (lo, hi) in parts.items()}


def largest_window(index: pd.Index, split: SplitSpec, horizon: int, offset: int = 0) -> int:
    """The longest window that still leaves at least one window in every part (0 if none fits).

    Training needs a whole window inside it; validation and test need only ``horizon`` rows for one
    window's labels, its inputs coming from before them.
    """
    t, v = split.bounds(index)
    if min(v - t, len(index) - v) < horizon:
        return 0
    return max(t - offset - horizon, 0)


def column_values(dataset: Dataset, name: str) -> np.ndarray:
    col = dataset.frame[name]
    if col.dtype == np.float64:  # the Dataset contract: a view, no copy
        return col.to_numpy(copy=False)
    return col.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable integers and the like


def shapes_sentence(spec: WindowSpec, n_windows: int | None = None) -> str:
    """ "X: (n_windows, 168, 7) = 1,176 values per forecast; y: (n_windows, 1, 1)" """
    n = "n_windows" if n_windows is None else f"{n_windows:,}"
    return (f"X: ({n}, {spec.window}, {spec.n_inputs}) = {spec.window * spec.n_inputs:,} values per forecast; "
            f"y: ({n}, {spec.horizon}, {spec.n_targets})")
