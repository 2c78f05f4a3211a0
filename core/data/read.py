"""The whole file read once by Arrow with every column's type fixed in advance, into one float block."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.errors import StudioError
from core.data.options import NULLS, NUM_ARROW, NUM_COMMA, NUM_DOT, OFFSET, READ_BLOCK, all_numbers
from core.data.source import Source
from core.data.sniff import Format
from core.data import periods
from core.data.timeparse import parse_times

# ------------------------------------------------------------------------------------------------ read

# Whether Arrow may parse and convert on its thread pool. The server keeps it (a large upload parses on every
# core); a one-shot command (`python -m studio ...`) turns it off before reading: Arrow's pool threads, once
# started, are still alive when the interpreter exits, and under load their teardown raced it and aborted the
# process ("terminate called without an active exception", exit 134) after the output was written.
ARROW_THREADS = True


def use_arrow_threads(on: bool) -> None:
    """Off: parse and convert on the caller's thread, and give Arrow's pools one thread each (read-ahead, and
    the compute kernels that still use the pool), so a one-shot process leaves at most two idle Arrow threads,
    not one per core plus one per re-read of the file."""
    global ARROW_THREADS
    ARROW_THREADS = bool(on)
    if not on:
        pa.set_io_thread_count(1)
        pa.set_cpu_count(1)


def _arrow_time_type(fmt: Format) -> str:
    """'ts' / 'ts_utc' when Arrow's own ISO parser reads every sampled time (parsed during the read, in C++)."""
    if fmt.time.fmt != "ISO8601" or fmt.time.kind != "string":
        return "string"
    vals = pa.array(fmt.present[fmt.time.column], pa.string())
    for kind, typ in (("ts", pa.timestamp("ns")), ("ts_utc", pa.timestamp("ns", "UTC"))):
        try:
            pc.cast(vals, typ)
            return kind
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return "string"


CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_ARROW_TYPES = {"float": pa.float64(), "string": pa.string(), "ts": pa.timestamp("ns"), "ts_utc": pa.timestamp("ns", "UTC")}


def column_plan(fmt: Format) -> dict[str, str]:
    """Each column's reading type from the sample: 'float' (clean numbers), 'string' (anything else)."""
    plan = {}
    for name in fmt.names:
        if name in fmt.time.parts:
            plan[name] = "string"
            continue
        if name == fmt.time.column:
            plan[name] = "float" if fmt.time.kind == "epoch" else _arrow_time_type(fmt)
            continue
        clean = all_numbers(fmt.present[name], fmt.decimal)
        plan[name] = "float" if clean else "string"
    return plan


def _coerce(col: pa.ChunkedArray, decimal: str, thousands: str = "") -> tuple[pa.ChunkedArray, int, list[str], int]:
    """Numbers from a text column: (float64 values, count that were not numbers, examples, non-null count)."""
    text = pc.utf8_trim_whitespace(col)
    if thousands:
        text = pc.replace_substring(text, thousands, "")
    if decimal == ",":
        text = pc.replace_substring(text, ",", ".")
    ok = pc.match_substring_regex(text, NUM_ARROW)
    values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    non_null = len(col) - col.null_count
    bad_mask = pc.and_(pc.invert(ok), pc.is_valid(text))
    n_bad = int(pc.sum(pc.cast(pc.fill_null(bad_mask, False), pa.int64())).as_py() or 0)
    examples = []
    if n_bad:
        bad_vals = pc.filter(col, pc.fill_null(bad_mask, False))
        examples = [str(v) for v in pc.unique(bad_vals.slice(0, 10000)).to_pylist()[:3]]
    return values, n_bad, examples, non_null


def _sample_is_text(fmt: Format, name: str) -> tuple[bool, list[str], int]:
    """Whether a non-numeric column is text (mostly words) or numbers with some junk: judged on the sample."""
    vals = pd.Series(fmt.present[name], dtype=object)
    if len(vals) == 0:
        return False, [], 0
    if fmt.thousands:
        vals = vals.str.replace(fmt.thousands, "", regex=False)
    pattern = (NUM_COMMA if fmt.decimal == "," else NUM_DOT).pattern
    numeric = vals.str.fullmatch(pattern)
    words = list(dict.fromkeys(vals[~numeric]))
    return bool(numeric.mean() < 0.5), words[:3], len(set(vals[~numeric]))


@dataclass
class Series:
    """The series while it is cleaned: one column-major float64 block we own, and its time stamps.

    Arrow converts its parsed table into the block, freeing the table column by column (so both never sit
    in memory whole); cleaning then works on the block with NumPy, in place where it can, and the DataFrame
    is built once at the end.
    """

    names: list[str]
    block: np.ndarray  # (rows, columns), order="F": each column is contiguous
    index: pd.DatetimeIndex | None = None
    stamps: np.ndarray | None = None  # int64 ns since the epoch (NaT where unreadable), until ``index`` is set

    def take(self, rows: np.ndarray) -> None:
        self.block = np.asfortranarray(self.block[rows])
        if self.index is not None:
            self.index = self.index[rows]

    def from_frame(self, frame: pd.DataFrame) -> None:
        self.block = np.asfortranarray(frame.to_numpy(dtype=np.float64))
        self.index = frame.index

    def frame(self) -> pd.DataFrame:
        index = self.index if self.index is not None else pd.RangeIndex(len(self.block), name="step")
        return pd.DataFrame(self.block, index=index, columns=self.names, copy=False)


NAT = np.iinfo(np.int64).min


@dataclass
class _Read:
    """What reading found, per kept column and for the time column, for the report."""

    valid: np.ndarray  # values present per kept column (after coercion)
    not_numbers: np.ndarray  # text values in a numeric column, treated as missing
    bad_examples: dict[str, list[str]] = field(default_factory=dict)
    bad_times: list[str] = field(default_factory=list)
    offsets: set[str] = field(default_factory=set)


def _out_of_range_times(parsed) -> StudioError:
    """Timestamps the studio's nanosecond time axis cannot hold (before 1677-09-21 or after 2262-04-11)."""
    try:
        values = pd.Series(parsed).dropna()
        lo, hi = values.min(), values.max()
        span = f" (they run from {lo} to {hi})"
    except Exception:  # the values themselves may be what cannot be compared
        span = ""
    return StudioError(f"The time column holds dates outside {pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d}, "
                       f"the range the studio's time axis can hold{span}.",
                       "Choose '(row number)' as the time column under Format, or shift the dates into that range.")


def _stamps(col: pa.ChunkedArray, fmt: Format, read: _Read) -> np.ndarray:
    """int64 ns per row (NaT where unreadable) from a time column Arrow could not parse itself, a chunk at a
    time so the text is never all in Python at once."""
    t = fmt.time
    # "-1980" ends Jan-1980 (%b-%Y) like an offset ends a time: only formats that can hold an offset have one
    can_offset = t.fmt in (None, "ISO8601") or "%z" in (t.fmt or "") or "%Z" in (t.fmt or "")
    want_offsets = t.kind == "string" and can_offset and any(OFFSET.search(v) for v in fmt.present[t.column])
    out = np.empty(len(col), dtype=np.int64)
    at = 0
    for chunk in col.chunks:
        raw = pd.Series(chunk.to_numpy(zero_copy_only=False) if t.kind == "epoch"
                        else chunk.to_pandas(use_threads=ARROW_THREADS))
        parsed = parse_times(raw, t.kind, t.fmt, t.dayfirst)
        try:
            out[at:at + len(chunk)] = pd.DatetimeIndex(parsed).as_unit("ns").asi8
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            raise _out_of_range_times(parsed) from None
        at += len(chunk)
        if len(read.bad_times) < 3:
            bad = parsed.isna().to_numpy() & raw.notna().to_numpy()
            if bad.any():
                read.bad_times.extend(str(v) for v in raw[bad].iloc[: 3 - len(read.bad_times)])
        if want_offsets:
            tail = pc.utf8_slice_codeunits(chunk.drop_null(), -6)
            found = pc.extract_regex(pc.unique(tail), r"(?P<o>[+-]\d{2}:?\d{2}|Z)\s*$")
            read.offsets.update(v["o"] for v in found.to_pylist() if v)
    return out


def _to_block(table: pa.Table, fmt: Format, plan: dict[str, str], keep: list[str]
              ) -> tuple[np.ndarray, np.ndarray | None, _Read]:
    """The parsed table as one column-major float64 block (and int64 time stamps).

    Text columns that hold numbers are coerced in Arrow first; then Arrow's own pandas conversion builds the
    block on every core, freeing each column as it goes (``self_destruct``), where a Python loop over the
    batches would copy on one."""
    read = _Read(np.zeros(len(keep), dtype=np.int64), np.zeros(len(keep), dtype=np.int64))
    for j, name in enumerate(keep):
        i = table.schema.get_field_index(name)
        col = table.column(i)
        if plan[name] != "float":
            col, n_bad, examples, _ = _coerce(col, fmt.decimal, fmt.thousands)
            table = table.set_column(i, name, col)
            if n_bad:
                read.not_numbers[j] = n_bad
                read.bad_examples[name] = examples
        read.valid[j] = len(col) - col.null_count
    col = None  # only the table may hold the columns now, or converting cannot free them
    stamps = None
    time = fmt.time.column
    if fmt.time.parts:  # Year + Quarter ...: one time from several text columns
        cols = {n: table.column(n).to_pandas() for n in fmt.time.parts}
        parsed = periods.combine(cols, fmt.time.roles)
        stamps = pd.DatetimeIndex(parsed).as_unit("ns").asi8.copy()
        bad = parsed.isna().to_numpy()
        if bad.any():
            read.bad_times.extend(" ".join(str(cols[n].iloc[i]) for n in fmt.time.parts)
                                  for i in np.flatnonzero(bad)[:3])
        for n in fmt.time.parts:
            table = table.remove_column(table.schema.get_field_index(n))
        time = None
    elif time is not None:
        i = table.schema.get_field_index(time)
        if plan[time] == "ts_utc":  # offsets were applied by Arrow: UTC wall time
            table = table.set_column(i, time, pc.cast(table.column(i), pa.timestamp("ns")))
        elif plan[time] != "ts":
            stamps = _stamps(table.column(i), fmt, read)
            table = table.remove_column(i)
    frame = table.to_pandas(self_destruct=True, split_blocks=False, use_threads=ARROW_THREADS)
    del table
    if time is not None and stamps is None:
        stamps = frame[time].to_numpy().view(np.int64)
    block = frame[keep].to_numpy(dtype=np.float64) if keep else np.empty((len(frame), 0))
    del frame
    if block.flags.f_contiguous:
        try:  # a view of the frame's block, which we now own alone: let cleaning work on it in place
            block.flags.writeable = True
        except ValueError:
            block = block.copy(order="F")
    else:
        block = np.asfortranarray(block)
    pa.system_memory_pool().release_unused()  # hand the table's freed pages back before cleaning allocates
    return block, stamps, read


def read_series(src: Source, fmt: Format, plan: dict[str, str], report: dict) -> tuple[Series, int, list]:
    """Parse the file with Arrow and copy it into a float64 block; text columns are never even converted."""
    excluded, columns_info = report["excluded"], report["_columns"]
    keep: list[str] = []
    for name in fmt.names:
        if name == fmt.time.column or name in fmt.time.parts:
            continue
        info = columns_info.setdefault(name, {"name": name})
        if plan[name] == "string":
            is_text, words, distinct = _sample_is_text(fmt, name)
            if is_text:
                shown = ", ".join(f"'{w}'" for w in words[:2])
                excluded[name] = f"text ({shown}{', ...' if distinct > 2 else ''}): not a number"
                info.update(type="text", used=False, distinct=int(distinct))
                continue
        keep.append(name)
    bad_rows: list = []

    def on_bad_row(row) -> str:
        bad_rows.append(row)
        return "skip"

    encoding = "utf8" if fmt.encoding in ("utf-8", "utf-8-sig") else fmt.encoding
    include = keep + (list(fmt.time.parts) or ([fmt.time.column] if fmt.time.column else []))
    for _ in range(len(plan) + 3):
        types = {n: _ARROW_TYPES[plan[n]] for n in include}
        bad_rows.clear()
        stream = src.stream()
        try:
            # The whole-file reader parses blocks on every core (the streaming reader mostly on one: 1.6x
            # slower on 1M rows). The table goes straight into `_to_block`, holding the only reference, so
            # each column is freed as soon as it has been converted.
            block, stamps, read = _to_block(pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=fmt.names, skip_rows=fmt.skip_rows + (fmt.header_lines if fmt.header else 0),
                                               encoding=encoding, use_threads=ARROW_THREADS, block_size=READ_BLOCK),
                parse_options=pacsv.ParseOptions(delimiter=fmt.delimiter, newlines_in_values=fmt.newlines_in_values,
                                                 ignore_empty_lines=True, invalid_row_handler=on_bad_row),
                convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include, null_values=NULLS,
                                                     strings_can_be_null=True, quoted_strings_can_be_null=True,
                                                     decimal_point=fmt.decimal),
                # malloc, not Arrow's own pool (mimalloc or jemalloc, which keep freed memory): a column freed
                # after its conversion goes back to the system (with the trim after it), so the Arrow table
                # shrinks while the block fills instead of both staying resident.
                memory_pool=pa.system_memory_pool(),
            ), fmt, plan, keep)
            break
        except pa.ArrowInvalid as err:
            msg = str(err)
            col = re.search(r"column #(\d+)", msg)
            if col and "conversion error" in msg and ("to double" in msg or "to timestamp" in msg):
                # a value after the sampled rows does not fit the sampled type: read the column as text,
                # coerce numbers / parse times from the text, and start again
                plan[fmt.names[int(col.group(1))]] = "string"  # Arrow counts the file's columns
                continue
            if "utf8" in msg.lower() or "decode" in msg.lower():
                if fmt.encoding in ("utf-8", "utf-8-sig"):
                    fmt.encoding, encoding = "cp1252", "cp1252"
                    fmt.notes.append("The file is not valid UTF-8 further down; read it as Windows-1252 (Latin-1).")
                    continue
            if "straddl" in msg:  # Arrow's words for a row longer than its block
                raise StudioError(f"The file {src.name} holds a line (or a quoted value) longer than "
                                  f"{READ_BLOCK // 2**20} MB; a row of a table is at most a few KB.",
                                  "Check the file for a missing line break or a quote (\") that is never closed, "
                                  "and save it again.") from None
            raise StudioError(f"The file {src.name} could not be read as a table: {msg.splitlines()[0]}.",
                              "Check the delimiter, decimal mark and encoding under Format.") from None
        except UnicodeDecodeError:
            if fmt.encoding != "latin-1":
                fmt.notes.append(f"The file is not valid {fmt.encoding}; read it as Latin-1.")
                fmt.encoding, encoding = "latin-1", "latin-1"
                continue
            raise
        finally:
            stream.close()
    else:
        raise StudioError(f"The file {src.name} could not be read as a table.",
                          "Check the delimiter, decimal mark and encoding under Format.")
    if fmt.time.column and plan.get(fmt.time.column) in ("ts", "ts_utc"):
        fmt.time.kind = "native"
    rows = len(block)
    valid, not_numbers, bad_examples = read.valid, read.not_numbers, read.bad_examples
    ser = Series(list(keep), block, stamps=stamps)
    for j, name in enumerate(keep):
        info = columns_info[name]
        if valid[j] == 0 and not not_numbers[j]:
            excluded[name] = "empty: no values"
            info.update(type="empty", used=False)
            continue
        if valid[j] == 0:
            excluded[name] = f"text ({', '.join(repr(e) for e in bad_examples.get(name, [])[:2])}): not a number"
            info.update(type="text", used=False)
            continue
        info.update(type="numeric" if plan[name] == "float" else "numeric (coerced)")
        if not_numbers[j]:
            info["not_numbers"] = int(not_numbers[j])
            examples = ", ".join(repr(e) for e in bad_examples[name][:3])
            report["problems"].append(f"'{name}': {int(not_numbers[j]):,} value(s) that are not numbers "
                                      f"({examples}) were treated as missing.")
    dropped = [j for j, name in enumerate(keep) if name in excluded]
    if dropped:  # rare (a column with no numbers at all): one copy without it
        ser.names = [n for n in keep if n not in excluded]
        ser.block = np.asfortranarray(np.delete(ser.block, dropped, axis=1))
    report["_bad_times"] = read.bad_times
    report["_offsets"] = sorted(read.offsets)
    return ser, rows, bad_rows


