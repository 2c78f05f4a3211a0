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

Read top-down: ``spec`` (WindowSpec, SplitSpec with ``bounds`` the one split arithmetic, Scaler, the
parts' row ranges and window counts), ``checks`` (``validate``: every problem with what to do),
``build`` (``make_windows`` and the zero-copy ``Windows``), ``words`` (presets and sentences).
"""
from core.windows.spec import (CALENDAR, CALENDAR_NAMES, PART_NAMES, PARTS, SCALERS, SPLIT_RULE, Scaler, SplitSpec,
                               WindowSpec, calendar_columns, calendar_values, column_values, count_windows,
                               first_start, largest_window, shapes_sentence, split_parts, window_counts)
from core.windows.checks import check, validate
from core.windows.build import TorchWindows, Windows, make_windows
from core.windows.words import Preset, calendar_options, default_spec, parts_sentence, presets

__all__ = [
    "CALENDAR", "CALENDAR_NAMES", "PARTS", "PART_NAMES", "Preset", "SCALERS", "SPLIT_RULE", "Scaler", "SplitSpec",
    "TorchWindows", "WindowSpec", "Windows", "calendar_columns", "calendar_options", "calendar_values", "check",
    "column_values", "count_windows", "default_spec", "first_start", "largest_window", "make_windows",
    "parts_sentence", "presets", "shapes_sentence", "split_parts", "validate", "window_counts"
]
