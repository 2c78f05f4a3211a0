"""Thousands separators: which character groups digits (1,234.5 / 1.234,5 / 1 234,5 / 1'234.5), if any.

Judged per column on the sampled values, then across columns: a value with both marks (15,611.3) or with
several groups (1,234,567) settles it; a value where the candidate is followed by other than three digits
(8,1 / 0,512 / 1234,5) makes it a decimal mark instead. A column whose grouped values sit beside plain
values under 1,000 (spreadsheets quote only the values with a separator) is grouped too. A column where
every value is like 8,096 is truly ambiguous: the reading taken is stated in one sentence with the control
that changes it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.data.options import NULL_SET, THOUSANDS

SPACES = (" ", "\u202f", "\u00a0", "'")
# a number-looking token: digits, optionally split by one kind of grouping/decimal characters
_TOKEN = re.compile(r"^[+-]?\d[\d,.' \u00a0\u202f]*$")
_INT = re.compile(r"^[+-]?\d+$")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")  # 12.03.2024 is a date, not a number
AMBIGUOUS_MIN = 10  # this many ambiguous values (8,096) and nothing else before assuming a reading


def _grouped(sep: str, dec: str) -> re.Pattern:
    s, d = re.escape(sep), re.escape(dec)
    return re.compile(rf"^[+-]?[1-9]\d{{0,2}}(?:{s}\d{{3}})+(?:{d}\d*)?$")


_PATTERNS = {(s, d): _grouped(s, d) for s in THOUSANDS if s for d in (".", ",") if d != s}


@dataclass
class Grouping:
    thousands: str  # "" when none
    decimal: str | None  # the decimal mark the grouping implies, None when it says nothing
    note: str = ""  # a sentence for the report
    ambiguous: bool = False  # the note states an assumption (shown as a warning)


def _votes(tokens: list[str], sep: str) -> tuple[int, int, int]:
    """(strong, weak, conflicts) for one candidate separator among one column's number-like tokens; stops at
    the first conflict, which rules the candidate out."""
    strong = weak = 0
    other = "." if sep == "," else ","
    for v in tokens:
        if sep not in v:
            continue
        if sep in ",." and other in v:
            if not _PATTERNS[(sep, other)].match(v):
                return strong, weak, 1
            strong += 1
            continue
        if (sep, other) in _PATTERNS and _PATTERNS[(sep, other)].match(v) or \
                sep in SPACES and any(_PATTERNS[(sep, d)].match(v) for d in ".,"):
            groups = v.count(sep)
            strong += groups > 1 or sep in SPACES
            weak += groups == 1 and sep not in SPACES
        else:
            return strong, weak, 1
    return strong, weak, 0


def detect_grouping(columns: dict[str, list[str]], delimiter: str, decimal: str | None, thousands: str | None
                    ) -> Grouping:
    """The thousands separator of the sampled columns (values as text); ``decimal``/``thousands`` when forced."""
    if thousands is not None:
        implied = None if not thousands else ("," if thousands == "." else "." if thousands == "," else None)
        return Grouping(thousands, implied)
    cols, tokens, small_ints = [], [], []
    for vals in columns.values():
        vals = [v.strip() for v in vals if v.strip() not in NULL_SET]
        toks = [v for v in vals if _TOKEN.match(v) and not _DATE.match(v)]
        ints = [v for v in toks if _INT.match(v)]
        cols.append(vals)
        tokens.append([v for v in toks if not _INT.match(v)])
        small_ints.append(bool(ints) and all(len(v.lstrip("+-")) <= 3 for v in ints))
    best: tuple | None = None
    for sep in THOUSANDS:
        if not sep or sep == decimal:
            continue
        strong = weak = confident = 0
        for toks, plain_small in zip(tokens, small_ints):
            s, w, c = _votes(toks, sep)
            if c:
                break
            strong, weak = strong + s, weak + w
            confident += bool(w and plain_small)
        else:
            if strong or weak:
                score = (2 if strong else 1 if confident else 0, strong + weak)
                if best is None or score > best[0]:
                    best = (score, sep, strong, weak, confident)
    if best is None:
        return Grouping("", None)
    (_, sep, strong, weak, confident) = best
    implied = "," if sep == "." else "." if sep == "," else None
    name = THOUSANDS[sep].split(" (")[0]
    if strong or confident:
        return Grouping(sep, implied, f"Numbers are written with a {name} between thousands (e.g. "
                                      f"{THOUSANDS[sep].split('(')[1].rstrip(')')}); read them as such.")
    if weak < AMBIGUOUS_MIN or sep not in ",.":
        return Grouping("", None)
    # Every value looks like 8,096: three digits after the mark in every row. Which reading is stated.
    example = next(v for vals in cols for v in vals if sep in v)
    as_thousands = sep == "," and delimiter == "," and decimal != ","
    if as_thousands:
        value = example.replace(sep, "")
        return Grouping(sep, implied, f"Read values such as '{example}' as {value} (',' between thousands: every "
                                      f"value has exactly three digits after it). If ',' is the decimal mark here, "
                                      "set Thousands separator to none under Format (--thousands none).", True)
    value = example.replace(sep, ".")
    if sep == "." and delimiter == ",":
        return Grouping("", None)  # 20.125 in an English file: a decimal point, nothing to say
    return Grouping("", None, f"Read values such as '{example}' as {value} ('{sep}' as the decimal mark, though every "
                              f"value has exactly three digits after it). If '{sep}' separates thousands here, set "
                              f"Thousands separator to '{sep}' under Format (--thousands {'comma' if sep == ',' else 'dot'}).")


def strip_thousands(values: list[str], thousands: str) -> list[str]:
    return [v.replace(thousands, "") for v in values] if thousands else values
