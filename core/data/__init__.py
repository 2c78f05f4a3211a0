"""The Data stage: any reasonable CSV in, a clean, sorted, regular numeric series (`Dataset`) out.

How it stays fast on big files: the format (encoding, delimiter, decimal mark, header, time column,
each column's type) is worked out on the first few hundred KB only; then the whole file is read once
by Arrow's multi-threaded CSV reader with every column's type fixed in advance, and every later step
(coercion, sorting, duplicates, gaps, filling) is a vectorised pandas/NumPy/Arrow operation.

Read top-down: ``options`` (what can be chosen, the limits), ``source`` (the bytes, refusing what is no
CSV), ``sniff`` and ``timeparse`` (the format from the first KB), ``read`` (Arrow, once), ``clean``
(sort, duplicates, resample, fill); ``load_dataset`` and ``inspect_csv`` here put them together.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import ROW_INDEX, Dataset
from core.errors import StudioError
from core.data.options import (CFG, DELIMITERS, DUPLICATES, ENCODINGS, FILL_METHODS, MAX_COLUMNS, RESAMPLE_HOW, SAMPLES,
                               THOUSANDS, CleanOptions, CsvOptions)
from core.data.source import check_upload_size, content_digest, open_source, refuse_non_csv
from core.data.sniff import detect_format
from core.data.read import Series, column_plan, read_series
from core.data.clean import clean_series

__all__ = ["CsvOptions", "CleanOptions", "Dataset", "ROW_INDEX", "SAMPLES", "load_dataset", "inspect_csv",
           "content_digest", "check_upload_size", "DELIMITERS", "ENCODINGS", "RESAMPLE_HOW", "FILL_METHODS", "DUPLICATES",
           "MAX_COLUMNS", "THOUSANDS"]

# ------------------------------------------------------------------------------------------------- api


def _fingerprint(digest: str, csv_opts: CsvOptions, clean: CleanOptions) -> str:
    h = hashlib.sha256(digest.encode())
    h.update(json.dumps([csv_opts.to_dict(), clean.to_dict()], sort_keys=True).encode())
    return h.hexdigest()


def _stats(ser: Series, report: dict) -> None:
    raw_missing = report.pop("_missing", {})
    stats = report.pop("_stats")
    n_rows = len(ser.block)
    for j, name in enumerate(ser.names):
        info = report["_columns"][name]
        miss = int(raw_missing.get(name, 0))
        lo, hi, mean = stats[j]
        info.update(used=True, missing=miss, missing_pct=round(100.0 * miss / max(n_rows, 1), 3),
                    min=_num(lo), mean=_num(mean), max=_num(hi))
        if info.get("min") is not None and info["min"] == info["max"]:
            report["problems"].append(f"'{name}' has the same value in every row; it cannot help a forecast.")


def _num(v) -> float | None:
    v = float(v)
    return None if not np.isfinite(v) else float(f"{v:.6g}")


def load_dataset(source: bytes | str | Path, name: str | None = None, csv: CsvOptions | None = None,
                 clean: CleanOptions | None = None, digest: str | None = None) -> Dataset:
    """Read, type, sort, de-duplicate, regularise and fill a CSV; everything done is in ``Dataset.report``.
    ``digest`` is the source's `content_digest` when the caller has already computed it."""
    csv = csv or CsvOptions()
    clean = clean or CleanOptions()
    src = open_source(source, name)
    refuse_non_csv(src)
    if digest is None:
        # The content hash on a side thread (BLAKE3 releases the GIL), started first: it takes the core the
        # format detection leaves idle and is done long before the parse ends.
        hasher = ThreadPoolExecutor(1, thread_name_prefix="fs-hash")
        hashing = hasher.submit(src.digest)
        hasher.shutdown(wait=False)  # the thread ends when the hash is done
    fmt = detect_format(src, csv)
    if not any(fmt.sample.values()):
        raise StudioError(f"The file {src.name} has a header row but no data rows.",
                          "Add rows of data under the header, or pick another file.")
    plan = column_plan(fmt)
    report: dict = {"file": src.name, "bytes": src.size, "excluded": {}, "_columns": {}, "problems": [],
                    "blocking": [], "notes": list(fmt.notes), "gaps": {"count": 0, "missing_steps": 0},
                    "cleaning": {"duplicates": 0, "sorted": False, "dropped_bad_time": 0, "resampled": None,
                                 "duplicates_how": clean.duplicates, "fill": clean.fill}}
    ser, rows_read, bad_rows = read_series(src, fmt, plan, report)
    if bad_rows:
        first = bad_rows[0]
        swallowed = next((r for r in bad_rows if '"' in (r.text or "") and (r.text or "").count("\n") >= 2), None)
        if swallowed is not None:
            # A quote opened and never closed turns the rest of the file into one value: the lines it swallowed
            # are the problem, not "too few rows" or "a skipped line".
            raise StudioError(f"A quote (\") in {src.name} is never closed, so {swallowed.text.count(chr(10)):,} "
                              f"following line(s) were read as one value (it starts {swallowed.text[:40]!r}).",
                              "Close or remove that quote in the file (a text editor shows it), then load it again.")
        report["problems"].append(
            f"{len(bad_rows):,} line(s) had {first.actual_columns} fields instead of {first.expected_columns} and were "
            f"skipped (e.g. {first.text[:60]!r}).")
    if rows_read == 0:
        raise StudioError(f"The file {src.name} has a header row but no data rows.",
                          "Add rows of data under the header, or pick another file.")
    for part in fmt.time.parts:
        report["_columns"][part] = {"name": part, "type": "time", "used": True}
    if fmt.time.column and not fmt.time.parts:
        report["_columns"][fmt.time.column] = {"name": fmt.time.column, "type": "time", "used": True}
    if fmt.time.note:
        report["notes"].append(fmt.time.note)
    report["problems"].extend(fmt.assumptions)
    if not ser.names:
        text_cols = [c for c, why in report["excluded"].items()]
        how = (f"delimiter {DELIMITERS.get(fmt.delimiter, repr(fmt.delimiter))}, decimal mark '{fmt.decimal}', "
               f"thousands separator {THOUSANDS[fmt.thousands].split(' (')[0]}")
        raise StudioError(f"No column of {src.name} holds numbers (read with {how}; found "
                          f"{', '.join(repr(c) for c in text_cols[:6]) or 'no other columns'}).",
                          "A forecaster needs at least one numeric column: check the delimiter, decimal mark, "
                          "thousands separator and lines above the header under Format, or pick another file.")
    freq = clean_series(ser, fmt, clean, report)
    min_rows = int(CFG.get("min_rows", 10))
    if len(ser.block) < min_rows:
        raise StudioError(f"The file {src.name} has only {len(ser.block)} row(s) of data after cleaning.",
                          f"A forecaster needs a series: use a file with at least {min_rows} rows.")
    _stats(ser, report)
    frame = ser.frame()
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.freq is None and freq:
        try:
            frame.index.freq = freq
        except ValueError:
            pass  # the index does not conform to the alias after all: keep it in Dataset.freq only
    offsets = report.pop("_offsets", [])
    if offsets:
        report["notes"].append(f"Times carry UTC offsets ({', '.join(offsets)}); converted them to UTC so "
                               "daylight-saving changes leave no gaps or repeats.")
    columns = [report["_columns"][n] for n in fmt.names if n in report["_columns"]]
    report.pop("_columns")
    report.update(
        encoding=fmt.encoding, delimiter=fmt.delimiter, decimal=fmt.decimal, thousands=fmt.thousands, header=fmt.header,
        skipped_lines=fmt.skip_rows, time_column=fmt.time.column or ROW_INDEX,
        time_format=(f"epoch_{fmt.time.fmt}" if fmt.time.kind == "epoch" else fmt.time.fmt),
        dayfirst=fmt.time.dayfirst, timezone=("UTC" if offsets else None), frequency=freq,
        rows_read=int(rows_read), rows=int(len(frame)),
        start=str(frame.index[0]) if isinstance(frame.index, pd.DatetimeIndex) else None,
        end=str(frame.index[-1]) if isinstance(frame.index, pd.DatetimeIndex) else None,
        columns=columns, skipped_bad_lines=len(bad_rows),
        missing_after=int(frame.isna().to_numpy().sum()) if report["blocking"] else 0,
    )
    return Dataset(name=src.name, frame=frame, freq=freq, time_col=fmt.time.column,
                   excluded=dict(report["excluded"]), report=report,
                   fingerprint=_fingerprint(digest or hashing.result(), csv, clean), calendar=report.get("calendar"))


def inspect_csv(source: bytes | str | Path, csv: CsvOptions | None = None,
                clean: CleanOptions | None = None) -> dict:
    """What `python -m studio inspect` prints: the detections, columns, gaps, duplicates and problems."""
    ds = load_dataset(source, csv=csv, clean=clean)
    r = ds.report
    return {
        "file": r["file"], "bytes": r["bytes"], "encoding": r["encoding"], "delimiter": r["delimiter"],
        "decimal": r["decimal"], "thousands": r["thousands"], "header": r["header"], "skipped_lines": r["skipped_lines"],
        "time_column": r["time_column"], "time_format": r["time_format"], "dayfirst": r["dayfirst"],
        "timezone": r["timezone"], "frequency": r["frequency"], "start": r["start"], "end": r["end"],
        "rows_read": r["rows_read"], "rows": r["rows"], "numeric_columns": ds.numeric_columns,
        "columns": r["columns"], "excluded": r["excluded"], "gaps": r["gaps"],
        "duplicates": r["cleaning"]["duplicates"], "sorted": r["cleaning"]["sorted"],
        "calendar": r.get("calendar"), "cleaning": r["cleaning"], "problems": r["problems"] + r["blocking"], "notes": r["notes"],
        "fingerprint": ds.fingerprint,
    }
