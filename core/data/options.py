"""What a person can choose about reading and cleaning a CSV, and the reader's fixed limits and patterns."""
from __future__ import annotations

import codecs
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from core.config import DEFAULTS
from core.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES: dict[str, Path] = {
    "weather": ROOT / "sample_data" / "weather.csv",
    "co2": ROOT / "sample_data" / "co2.csv",
}
DELIMITERS = {",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
# Thousands separators by name (UI, CLI); "" means "none".
THOUSANDS = {"": "none", ",": "comma (1,234.5)", ".": "dot (1.234,5)", " ": "space (1 234,5)",
             "\u202f": "narrow space (1\u202f234,5)", "\u00a0": "no-break space (1\u00a0234,5)",
             "'": "apostrophe (1'234.5)"}
MAX_SKIP = 200  # lines of notes above a header, at most
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]
DUPLICATES = ("first", "mean")
RESAMPLE_HOW = ("mean", "sum", "last", "min", "max")
FILL_METHODS = ("interpolate", "ffill", "none")

CFG = DEFAULTS["data"]
SAMPLE_BYTES = 256 * 1024  # enough for a few thousand rows of any sane CSV
SAMPLE_ROWS = 1000
# Arrow parses the file in blocks of this size; small blocks keep the parser's buffers (and the peak) small.
READ_BLOCK = 2 << 20
# More columns than this is not a series to forecast (and parsing a huge header took 30 s before it was bounded).
MAX_COLUMNS = 10_000
# Tokens that mean "no value" in exported data; anything else non-numeric in a numeric column is reported.
NULLS = ["", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "None", "none", "#N/A", "#NA",
         "#VALUE!", "#DIV/0!", "-nan", "-NaN", "?", "-", "--", "—", "–"]
NULL_SET = set(NULLS)
TIME_HINTS = ("time", "date", "timestamp", "datetime", "dt", "ts", "period", "day", "month", "year", "week",
               "hour", "zeit", "datum", "fecha", "temps", "data", "epoch", "unix")
NUM_DOT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
NUM_COMMA = re.compile(r"^[+-]?(\d+,?\d*|,\d+)([eE][+-]?\d+)?$")
ALL_DOT = re.compile(r"(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\n)+")
ALL_COMMA = re.compile(r"(?:[+-]?(?:\d+,?\d*|,\d+)(?:[eE][+-]?\d+)?\n)+")
NUM_ARROW = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
OFFSET = re.compile(r"(?:[+-]\d{2}:?\d{2}|Z)$")
# Epoch magnitudes (1973..2100) per unit, for numeric time columns.
EPOCH_RANGES = [("s", 1e8, 4.2e9), ("ms", 1e11, 4.2e12), ("us", 1e14, 4.2e15), ("ns", 1e17, 4.2e18)]
MAGIC = [(b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive"),
          (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
          (b"\x1f\x8b", "a gzip-compressed file"),
          (b"PAR1", "a Parquet file"),
          (b"%PDF", "a PDF document"),
          (b"\x89PNG", "a PNG image"),
          (b"\xff\xd8\xff", "a JPEG image"),
          (b"SQLite format", "an SQLite database"),
          (b"{\\rtf", "an RTF document")]


@dataclass(frozen=True)
class CsvOptions:
    """How to read the file; ``None`` means detect. ``time_col=ROW_INDEX`` uses the row number as the time step.

    ``time_format`` is a strftime pattern (``%d.%m.%Y %H:%M``), ``"ISO8601"``, or ``"epoch_s"`` / ``"epoch_ms"``.
    ``thousands`` is the digit-group separator (``""`` for none); ``skip_rows`` the lines above the header
    row (notes, titles); ``time_cols`` the columns that together say the time (``("Year", "Quarter")``).
    """

    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    header: bool | None = None
    time_col: str | None = None
    dayfirst: bool | None = None
    time_format: str | None = None
    thousands: str | None = None
    skip_rows: int | None = None
    time_cols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.thousands is not None and self.thousands not in THOUSANDS:
            raise StudioError(f"The thousands separator {self.thousands!r} is not supported.",
                              "Choose none, comma, dot, space, narrow space or apostrophe, or leave it on Detect.")
        if self.thousands and self.thousands in (self.decimal, self.delimiter):
            raise StudioError(f"The thousands separator {self.thousands!r} is also the "
                              f"{'decimal mark' if self.thousands == self.decimal else 'delimiter'}.",
                              "Choose a different thousands separator, or leave it on Detect.")
        if self.skip_rows is not None and not 0 <= int(self.skip_rows) <= MAX_SKIP:
            raise StudioError(f"{self.skip_rows} lines above the header is not a number of lines to skip.",
                              f"Give 0 to {MAX_SKIP} lines, or leave it on Detect.")
        if self.time_cols is not None:
            object.__setattr__(self, "time_cols", tuple(str(c) for c in self.time_cols) or None)
            if self.time_cols is not None and len(self.time_cols) < 2:
                raise StudioError("Combining time columns needs at least two columns (e.g. Year and Quarter).",
                                  "Pick two or three columns, or leave the time column on Detect.")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in "\"\r\n"):
            raise StudioError(f"The delimiter {self.delimiter!r} is not a single separator character.",
                              "Choose comma, semicolon, tab or pipe, or leave it on Detect.")
        if self.decimal is not None and self.decimal not in (".", ","):
            raise StudioError(f"The decimal mark {self.decimal!r} is not supported.", "Choose '.' or ','.")
        if self.decimal is not None and self.decimal == self.delimiter:
            raise StudioError("The decimal mark and the delimiter are the same character.",
                              "Use ';' as delimiter with a decimal comma, or '.' as decimal mark.")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise StudioError(f"Unknown text encoding {self.encoding!r}.",
                                  f"Choose one of {', '.join(ENCODINGS)}, or leave it on Detect.") from None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CleanOptions:
    """What to do with duplicated timestamps, the sampling frequency and missing values."""

    duplicates: str = CFG.get("duplicates", "first")
    resample: str | None = None
    resample_how: str = CFG.get("resample_how", "mean")
    fill: str = CFG.get("fill", "interpolate")

    def __post_init__(self) -> None:
        if self.duplicates not in DUPLICATES:
            raise StudioError(f"Unknown duplicate handling {self.duplicates!r}.", "Choose 'first' or 'mean'.")
        if self.resample_how not in RESAMPLE_HOW:
            raise StudioError(f"Unknown resampling method {self.resample_how!r}.",
                              f"Choose one of {', '.join(RESAMPLE_HOW)}.")
        if self.fill not in FILL_METHODS:
            raise StudioError(f"Unknown fill method {self.fill!r}.", f"Choose one of {', '.join(FILL_METHODS)}.")
        if self.resample:
            try:
                offset = pd.tseries.frequencies.to_offset(self.resample)
            except (ValueError, OverflowError):
                raise StudioError(f"{self.resample!r} is not a frequency.",
                                  "Use a pandas frequency such as 15min, h, 6h, D, W or MS.") from None
            # The one rule for numbers: a step of zero or less is no resampling interval (0h divided by zero).
            if getattr(offset, "n", 1) <= 0:
                raise StudioError(f"{self.resample!r} is not a positive interval.",
                                  "Use a pandas frequency such as 15min, h, 6h, D, W or MS.")

    def to_dict(self) -> dict:
        return asdict(self)


def all_numbers(values, decimal: str) -> bool:
    """Whether every (stripped) value is a number: one regex pass over the values joined by newlines."""
    values = list(values)
    if not values:
        return False
    joined = "\n".join(values) + "\n"
    if joined.count("\n") != len(values):  # a value with a line break of its own is not a number
        return False
    return (ALL_COMMA if decimal == "," else ALL_DOT).fullmatch(joined) is not None
