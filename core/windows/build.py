"""The split's row ranges, window counts without building windows, and the zero-copy ``Windows``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd

from core import frequency
from core.dataset import Dataset
from core.errors import StudioError
from core.seasons import training_season
from core.windows.checks import check
from core.windows.spec import (PART_NAMES, PARTS, Scaler, SplitSpec, WindowSpec, calendar_columns, calendar_values,
                               column_values, count_windows, first_start, fixed_calendar_scaling, shapes_sentence,
                               split_parts)

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
    calendar: dict | None = None  # Dataset.calendar: the observed steps of a working-hours / trading-day series
    # One Seasonality per target, found on its raw training values (core.seasons.training_season): the period
    # every baseline of these windows uses, the one the default configuration gave the model's seasonal form.
    seasons: tuple | None = None
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
        return count_windows(self.first_start(part), self._range(part)[1], self.spec.span, self.stride(part))

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
                return frequency.next_steps(last, int(steps[0]), len(steps), self.freq, self.calendar)
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
                 scaler_kind: str = "minmax", seasons: tuple | None = None) -> Windows:
    """Check the choices, fit the scaler on the training part, and scale the series once into float32.

    ``seasons``: the targets' seasons to keep instead of finding them in this split's training part (a backtest's
    earlier origin judges the model against the same seasonal naive as the validation origin did)."""
    check(dataset, spec, split, scaler_kind)
    frame = dataset.frame
    parts = split_parts(frame.index, split)
    t0, t1 = parts["train"]
    n = len(frame)
    cal_cols = calendar_columns(spec.calendar)
    cal = calendar_values(frame.index, spec.calendar)
    scaled_cols = list(dict.fromkeys(spec.input_columns + spec.targets))
    raw = {c: (column_values(dataset, c) if c not in cal_cols else cal[:, cal_cols.index(c)]) for c in scaled_cols}
    scaler = Scaler.fit({c: v[t0:t1] for c, v in raw.items()}, scaler_kind,
                        fixed=fixed_calendar_scaling(scaler_kind, cal_cols), log=spec.log_columns)
    # Column by column, so the float64 temporaries stay one column long.
    inputs = np.empty((n, spec.n_inputs), dtype=np.float32)
    for j, c in enumerate(spec.input_columns):
        inputs[:, j] = scaler.transform(raw[c][:, None], [c])[:, 0]
    targets = np.empty((n, spec.n_targets), dtype=np.float32)
    for j, c in enumerate(spec.targets):
        k = spec.input_columns.index(c) if c in spec.input_columns else None
        targets[:, j] = inputs[:, k] if k is not None else scaler.transform(raw[c][:, None], [c])[:, 0]
    if seasons is None:
        seasons = tuple(training_season(dataset, raw[c], t1) for c in spec.targets)
    return Windows(spec, split, scaler, inputs, targets, frame.index, parts, dataset.freq,
                   dataset.name, dataset.fingerprint, getattr(dataset, "calendar", None), tuple(seasons))


