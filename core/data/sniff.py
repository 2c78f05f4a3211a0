"""The format worked out from the first few hundred KB: delimiter, decimal mark, header, columns' types."""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field


from core.errors import StudioError
from core.data.options import CsvOptions, DELIMITERS, MAX_COLUMNS, NULL_SET, NUM_COMMA, NUM_DOT, SAMPLE_ROWS
from core.data.source import Source, detect_encoding
from core.data.grouping import detect_grouping
from core.data.timeparse import TimeGuess, guess_time

# ------------------------------------------------------------------------------------------- detection


def _rows(text: str, delimiter: str, limit: int, lines: list[int] | None = None) -> list[list[str]]:
    """The sample's non-empty rows; ``lines`` gets each row's first physical line (what Arrow's skip counts)."""
    out = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"')
    at = 0
    try:
        for row in reader:
            if row and any(f.strip() for f in row):
                out.append(row)
                if lines is not None:
                    lines.append(at)
                if len(out) >= limit:
                    break
            at = reader.line_num
    except csv.Error:
        pass  # a stray quote in the sample: judge on the rows read so far
    return out


def _detect_delimiter(text: str) -> tuple[str, float]:
    """The separator giving the most consistent field count (>1); ties go to the rarer-in-data character."""
    best, best_score = ",", -1.0
    for cand in ("\t", ";", "|", ","):  # priority order: a comma is also a decimal mark, so it loses ties
        rows = _rows(text, cand, 200)
        if not rows:
            continue
        counts = Counter(len(r) for r in rows)
        mode, hits = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if mode < 2:
            continue
        # A quote left inside a field means this candidate split a quoted value ("a|b" read as pipes): a
        # comma file whose quoted text holds '|' on every row is consistent for '|' too, so those rows count against it.
        broken = sum(any('"' in f for f in r) for r in rows)
        score = (hits - broken) / len(rows)
        if score > best_score + 0.02:
            best, best_score = cand, score
    return best, max(best_score, 0.0)


def _is_number(value: str, decimal: str) -> bool:
    v = value.strip()
    return bool((NUM_COMMA if decimal == "," else NUM_DOT).match(v))


def _present(values) -> list[str]:
    """The sample's non-missing values, stripped (plain Python: on a thousand strings it beats pandas)."""
    return [v for v in (str(x).strip() for x in values) if v not in NULL_SET]


def _detect_decimal(rows: list[list[str]], delimiter: str) -> str:
    comma = dot = 0
    for row in rows[1:300]:
        for f in row:
            f = f.strip()
            if NUM_DOT.match(f) and "." in f:
                dot += 1
            elif NUM_COMMA.match(f) and "," in f:
                comma += 1
    return "," if comma > dot and delimiter != "," or (delimiter == "," and comma > 2 * dot + 5) else "."


def _table_start(rows: list[list[str]], first: int, width: int, decimal: str, thousands: str) -> int:
    """The header row (or first data row) at or after ``first``: a note above the header can have as many fields
    as the table ("10 min", "north-central Wisconsin"), so the table starts just above the first run of rows
    whose numeric columns all hold numbers."""
    body = [r for r in rows[first:first + 400] if len(r) == width]
    if len(body) < 6:
        return first
    later = body[len(body) // 2:]

    def value(v: str) -> bool:
        v = v.strip()
        return v in NULL_SET or _is_number(v.replace(thousands, "") if thousands else v, decimal)

    numeric = [j for j in range(width) if sum(value(r[j]) for r in later) >= 0.9 * len(later)
               and any(r[j].strip() not in NULL_SET for r in later)]
    if not numeric:
        return first

    def data(i: int) -> bool:
        return len(rows[i]) == width and all(value(rows[i][j]) for j in numeric)

    end = min(len(rows), first + 60)
    start = next((i for i in range(first, end) if all(data(k) for k in range(i, min(i + 3, len(rows))))), first)
    if start == first:
        return first
    header = start - 1
    while header > first and len(rows[header]) != width:
        header -= 1
    # a units row ("[degC]", "%") under the names: the names are the row above it, as before
    if header > first and len(rows[header - 1]) == width and _units(rows[header]):
        header -= 1
    return header


def _units(row: list[str]) -> bool:
    """A row of units under the names: short fields, most in brackets or symbols ("[degC]", "(%)", "m/s")."""
    fields = [f.strip() for f in row if f.strip()]
    marked = sum(bool(re.search(r"[\[(%°/]", f)) for f in fields)
    return bool(fields) and all(len(f) <= 8 for f in fields) and 2 * marked >= len(fields)


def _looks_like_value(value: str, decimal: str) -> bool:
    v = value.strip()
    if not v or v in NULL_SET or _is_number(v, decimal):
        return True
    return bool(re.match(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", v))


def _index_corner(rows: list[list[str]]) -> bool:
    """A first row whose first cell is empty over a first column every following row fills: the empty corner
    pandas' ``to_csv`` writes above its index, so the row holds names even when they read as numbers (a Series
    saved with its index: ",0" over "1821,269" read the names as a data row, and --target 0 found no column 0)."""
    body = rows[1:200]
    return (len(rows[0]) > 1 and not str(rows[0][0]).strip() and len(body) >= 2
            and all(r and str(r[0]).strip() for r in body))


def _unique_names(raw: list[str]) -> tuple[list[str], list[str]]:
    names, notes, seen = [], [], Counter()
    for i, name in enumerate(raw):
        base = name.strip() or f"column_{i + 1}"
        if not name.strip():
            notes.append(f"Column {i + 1} has no name; called it '{base}'.")
        seen[base] += 1
        final = base if seen[base] == 1 else f"{base}_{seen[base]}"
        while final in names:
            seen[base] += 1
            final = f"{base}_{seen[base]}"
        if final != base:
            notes.append(f"Two columns are called '{base}'; renamed the later one to '{final}'.")
        names.append(final)
    return names, notes


@dataclass
class Format:
    encoding: str
    delimiter: str
    decimal: str
    header: bool
    skip_rows: int
    names: list[str]
    sample: dict[str, list[str]]  # each column's first values as text, for typing columns
    present: dict[str, list[str]]  # each sampled column's non-missing values, stripped
    time: TimeGuess
    newlines_in_values: bool
    notes: list[str] = field(default_factory=list)
    header_lines: int = 1  # physical lines the header row spans (a quoted name may hold line breaks)
    thousands: str = ""  # the digit-group separator, "" when none
    assumptions: list[str] = field(default_factory=list)  # readings of an ambiguous file, shown as warnings


def detect_format(src: Source, opts: CsvOptions) -> Format:
    truncated = src.size > len(src.head)
    encoding = opts.encoding or detect_encoding(src.head, truncated)
    head = src.head
    if truncated:  # cut at the last full line so the sample never ends mid-row or mid-character
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    try:
        text = head.decode(encoding, errors="strict" if opts.encoding is None else "replace")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
        encoding = "latin-1"
    text = text.lstrip("\ufeff")
    if "\n" not in text and "\r" in text:  # old Mac line ends: the csv module wants "\n"
        text = text.replace("\r", "\n")
    notes, ambiguous = [], []
    # Bound the header before any parsing: a 100,000-column header took 30 s to refuse.
    first_line = text.split("\n", 1)[0]
    if "\n" not in text and truncated:
        raise StudioError(f"The first line of {src.name} is longer than {len(src.head) // 1024:,} KB, so it is not a "
                          "table's header.", "Choose a CSV file: one header row, then one row per time point.")
    most = max((first_line.count(d) for d in (opts.delimiter,) if d) , default=None)
    if most is None:
        most = max(first_line.count(d) for d in DELIMITERS)
    if most + 1 > MAX_COLUMNS:
        raise StudioError(f"The first line of {src.name} has about {most + 1:,} fields; the studio reads at most "
                          f"{MAX_COLUMNS:,} columns.", "Keep the time column and the columns to forecast from, "
                                                        "and save the file again.")
    delimiter = opts.delimiter or _detect_delimiter(text)[0]
    lines: list[int] = []
    rows = _rows(text, delimiter, SAMPLE_ROWS + 50, lines)
    if not rows:
        raise StudioError(f"The file {src.name} is empty.", "Choose a CSV with a header row and rows of data.")
    counts = Counter(len(r) for r in rows)
    width = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    # Lines before the first full-width row are a preamble (titles, units, comments): skip them.
    first = next((i for i, r in enumerate(rows) if len(r) == width), 0)
    full = [r for r in rows[first:] if len(r) == width]
    grouping = detect_grouping(dict(enumerate(map(list, zip(*full[1:])))), delimiter, opts.decimal, opts.thousands)
    thousands = grouping.thousands
    decimal = opts.decimal or grouping.decimal or _detect_decimal(
        [[f.replace(thousands, "") for f in r] for r in rows[first:300]] if thousands else rows[first:], delimiter)
    if thousands and thousands == decimal:
        raise StudioError(f"The thousands separator and the decimal mark are both {thousands!r}.",
                          "Set one of them to something else under Format.")
    if grouping.note:
        (ambiguous if grouping.ambiguous else notes).append(grouping.note)
    if opts.skip_rows is not None:
        skip = next((i for i, at in enumerate(lines) if at >= opts.skip_rows), len(rows) - 1)
    else:
        skip = _table_start(rows, first, width, decimal, thousands)
    if lines[skip]:
        notes.append(f"Skipped {lines[skip]} line(s) at the top that are not part of the table"
                     f"{'' if opts.skip_rows is not None else ' (change it under Format: Lines above the header)'}.")
    rows = rows[skip:]
    if opts.header is not None:
        header = opts.header
    else:
        header = not all(_looks_like_value(v, decimal) for v in rows[0]) or len(rows) == 1 or _index_corner(rows)
    if header:
        names, name_notes = _unique_names([str(v) for v in rows[0]] + [""] * (width - len(rows[0])))
        names = names[:width]
        notes += name_notes
        body = rows[1:]
    else:
        names = [f"column_{i + 1}" for i in range(width)]
        notes.append("The first row holds values, not names; the columns are called column_1, column_2, ...")
        body = rows
    body = [r[:width] + [""] * (width - len(r)) for r in body[:SAMPLE_ROWS]]
    # plain lists, not a DataFrame: on a thousand rows Python's string ops start faster than pandas'
    sample = dict(zip(names, map(list, zip(*body)))) if body else {n: [] for n in names}
    present = {name: _present(sample[name]) for name in names}
    time = guess_time(sample, present, decimal, opts.time_col, opts.dayfirst, opts.time_format, opts.time_cols)
    newlines = any("\n" in f or "\r" in f for r in rows[1 if header else 0:200] for f in r)
    # A quoted header name holding line breaks spans several physical lines; without newlines_in_values
    # Arrow skips physical lines, so skip them all (else "b\",c" came back as a "skipped line").
    header_lines = 1 + (sum(str(v).count("\n") for v in rows[0]) if header and not newlines else 0)
    return Format(encoding, delimiter, decimal, header, lines[skip], names, sample, present, time, newlines, notes,
                  header_lines=header_lines, thousands=thousands, assumptions=ambiguous)


