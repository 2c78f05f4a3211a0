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
from core.data.timeparse import TimeGuess, guess_time

# ------------------------------------------------------------------------------------------- detection


def _rows(text: str, delimiter: str, limit: int) -> list[list[str]]:
    out = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"')
    try:
        for row in reader:
            if row and any(f.strip() for f in row):
                out.append(row)
                if len(out) >= limit:
                    break
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
        score = hits / len(rows)
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


def _looks_like_value(value: str, decimal: str) -> bool:
    v = value.strip()
    if not v or v in NULL_SET or _is_number(v, decimal):
        return True
    return bool(re.match(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", v))


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
    notes = []
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
    rows = _rows(text, delimiter, SAMPLE_ROWS + 50)
    if not rows:
        raise StudioError(f"The file {src.name} is empty.", "Choose a CSV with a header row and rows of data.")
    counts = Counter(len(r) for r in rows)
    width = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    # Lines before the first full-width row are a preamble (titles, units, comments): skip them.
    skip = next((i for i, r in enumerate(rows) if len(r) == width), 0)
    if skip:
        notes.append(f"Skipped {skip} line(s) at the top that are not part of the table.")
    rows = rows[skip:]
    decimal = opts.decimal or _detect_decimal(rows, delimiter)
    if opts.header is not None:
        header = opts.header
    else:
        header = not all(_looks_like_value(v, decimal) for v in rows[0]) or len(rows) == 1
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
    time = guess_time(sample, present, decimal, opts.time_col, opts.dayfirst, opts.time_format)
    newlines = any("\n" in f or "\r" in f for r in rows[1 if header else 0:200] for f in r)
    # A quoted header name holding line breaks spans several physical lines; without newlines_in_values
    # Arrow skips physical lines, so skip them all (else "b\",c" came back as a "skipped line").
    header_lines = 1 + (sum(str(v).count("\n") for v in rows[0]) if header and not newlines else 0)
    return Format(encoding, delimiter, decimal, header, skip, names, sample, present, time, newlines, notes,
                   header_lines=header_lines)


