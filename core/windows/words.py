"""Presets in time words, the calendar features a frequency can vary, and the sentences the pages show."""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from core import frequency
from core.config import DEFAULTS
from core.dataset import Dataset
from core.windows.build import Windows
from core.windows.spec import CALENDAR, SplitSpec, WindowSpec, largest_window

_F = DEFAULTS["features"]

# ------------------------------------------------------------------------------ presets and words

class Preset(NamedTuple):
    label: str
    window: int
    horizon: int


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


def presets(freq: str | None, n_train: int | None = None, limit: int = 6, calendar: dict | None = None) -> list[Preset]:
    """Window/horizon pairs that read naturally for the data's frequency, e.g. "1 week → next hour" (168 → 1).

    With ``n_train`` (rows in the training part), only pairs that leave many windows to learn from. With a
    working ``calendar`` (Dataset.calendar), lengths count observed steps: "1 working day" is the day's
    observed steps, "1 week" its observed days times that.
    """
    st = frequency.step(freq)
    out: list[Preset] = []
    if frequency.observed(calendar) is not None:
        out = _observed_presets(freq, calendar)
    elif st is None:
        out = [Preset(f"{w} steps → next {'step' if h == 1 else f'{h} steps'}", w, h) for w, h in _STEP_PRESETS]
    else:
        n, unit = st
        if st.months is not None:
            size, table, durations = st.months, _MONTH_PRESETS, _MONTH_DURATIONS
        elif unit == "business day":
            size, table = n, [("1 week", "step"), ("4 weeks", "step"), ("4 weeks", "1 week"), ("1 year", "4 weeks")]
            durations = {"1 week": 5, "4 weeks": 20, "1 year": 260}
        else:
            size, table, durations = st.seconds, _TIME_PRESETS, _DURATIONS
        unit_words = frequency.step_words(freq)
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


def _observed_presets(freq: str | None, calendar: dict) -> list[Preset]:
    """Presets in observed steps for a working calendar (see ``presets``)."""
    per_day, days = frequency.observed(calendar)
    week = per_day * days
    lengths = {"1 working day": per_day, "2 working days": 2 * per_day, "1 week": week, "2 weeks": 2 * week,
               "4 weeks": 4 * week, "8 weeks": 8 * week, "1 year": 52 * week}
    st = frequency.step(freq)
    secs = st.seconds if st is not None else 0
    if per_day > 1 and secs and 3600 % secs == 0:
        lengths.update({"1 hour": 3600 // secs, "6 hours": 6 * 3600 // secs if 6 * 3600 < per_day * secs else 0})
    table = [("1 week", "step"), ("1 working day", "step"), ("1 working day", "1 hour"), ("2 working days", "1 working day"),
             ("1 week", "1 working day"), ("6 hours", "1 hour"), ("1 hour", "step"), ("4 weeks", "step"),
             ("4 weeks", "1 week"), ("8 weeks", "step"), ("1 year", "4 weeks")]
    unit = frequency.step_words(freq, calendar)
    out = []
    for w_words, h_words in table:
        w, h = lengths.get(w_words, 0), 1 if h_words == "step" else lengths.get(h_words, 0)
        if 3 <= w <= _F["max_window"] and 1 <= h <= w:
            out.append(Preset(f"{w_words} → next {unit if h_words == 'step' else h_words.removeprefix('1 ')}", w, h))
    return out


def calendar_options(dataset: Dataset) -> tuple[str, ...]:
    """Calendar features that can vary at this data's step (no hour of day on daily data...)."""
    if not isinstance(dataset.frame.index, pd.DatetimeIndex):
        return ()
    st = frequency.step(dataset.freq)
    if st is None:
        return CALENDAR
    n, unit = st
    secs = st.seconds
    if st.months is not None:
        return ("doy",) if st.months < 12 else ()
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
