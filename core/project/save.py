"""Saving a project: every step's settings, the run and the data (or its fingerprint) in one zip."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import APP_VERSION
from core.errors import StudioError
from core.files import atomic_write_bytes
from core.escape import csv_frame


FORMAT = "forecast-studio-project"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATASET = "dataset.csv"
RUN_PREFIX = "run/"
# What a run directory may hold. Anything else (a .pkl, .pt, a script) is refused, because nothing
# the studio writes needs it and some formats execute code when loaded.
SAFE_SUFFIXES = (".json", ".npz", ".h5", ".csv", ".txt", ".md")
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Settings to and from JSON


def _to_dict(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool, dict, list)):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
    raise TypeError(f"cannot store {type(obj).__name__} in a project")


def from_dict(cls: Any, data: Any, what: str) -> Any:
    if data is None:
        return None
    try:
        if hasattr(cls, "from_dict"):
            return cls.from_dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except StudioError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise StudioError(f"The project's {what} settings are unreadable ({e}).",
                          "Open a project saved by this studio, or redo that step by hand.") from e


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a dataset's content (column names, index and values), independent of its source file.

    The dataset's own fingerprint hashes the uploaded bytes; this one lets an embedded CSV, which is
    written afresh, be checked against the data the run was trained on.
    """
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in frame.columns]).encode("utf-8"))
    idx = frame.index
    if isinstance(idx, pd.DatetimeIndex):
        h.update(b"time")
        h.update(np.ascontiguousarray(idx.tz_localize(None).as_unit("ns").asi8 if idx.tz is not None
                                      else idx.as_unit("ns").asi8).tobytes())
    else:
        h.update(b"steps")
        h.update(np.ascontiguousarray(np.asarray(idx, dtype=np.int64)).tobytes())
    values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
    h.update(values.tobytes())
    return h.hexdigest()


def _dataset_csv(dataset) -> bytes:
    frame = dataset.frame
    if isinstance(frame.index, pd.DatetimeIndex):
        out = frame.copy()
        idx = out.index
        if idx.tz is not None:  # wall-clock times repeat at a DST change; UTC never does
            idx = idx.tz_convert("UTC").tz_localize(None)
        out.index = idx.strftime("%Y-%m-%dT%H:%M:%S.%f")
        out.index.name = str(dataset.time_col or frame.index.name or "time")
        text = csv_frame(out).to_csv(index=True)
    else:
        text = csv_frame(frame).to_csv(index=False)
    return text.encode("utf-8")  # names through escape.csv_cell: a column named =HYPERLINK(...) stays text


def describe_dataset(dataset) -> str:
    rows = len(dataset.frame)
    return f"'{dataset.name}' ({rows:,} rows, fingerprint {dataset.fingerprint[:12] or 'none'})"


# ---------------------------------------------------------------------------------------------
# Saving


def _run_files(run_dir: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(run_dir).parts):
            continue  # temporary files of an atomic write in progress
        rel = path.relative_to(run_dir).as_posix()
        if not rel.lower().endswith(SAFE_SUFFIXES):
            raise StudioError(f"The run folder holds '{rel}', a file type a project cannot carry safely.",
                              "Train again; the studio writes only JSON, CSV, .npz and .h5 files.")
        files[RUN_PREFIX + rel] = path
    if RUN_PREFIX + "run.json" not in files:
        raise StudioError(f"The run folder {run_dir} has no run.json, so it is not a finished training.",
                          "Train a model on the Train page first.")
    return files


def check_saveable(run) -> None:
    """Raise StudioError now (not later, mid-download) if the run cannot go into a project."""
    _run_files(Path(run.run_dir))


def project_bytes(dataset, window_spec, split, scaler_kind: str, model_spec, train_config, run,
                  include_data: bool = True) -> bytes:
    """The project zip as bytes (what the page offers for download)."""
    run_dir = Path(run.run_dir) if hasattr(run, "run_dir") else Path(run)
    entries: dict[str, bytes] = {name: path.read_bytes() for name, path in _run_files(run_dir).items()}
    if include_data:
        entries[DATASET] = _dataset_csv(dataset)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": APP_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "content_sha256": frame_hash(dataset.frame),
            "rows": int(len(dataset.frame)),
            "columns": [str(c) for c in dataset.frame.columns],
            "freq": dataset.freq,
            "time_col": dataset.time_col,
            "time_index": isinstance(dataset.frame.index, pd.DatetimeIndex),
            "tz": str(getattr(dataset.frame.index, "tz", None) or "") or None,
            "excluded": dict(dataset.excluded),
            "report": json.loads(json.dumps(dataset.report, default=str)),
            "included": bool(include_data),
        },
        "settings": {
            "window_spec": _to_dict(window_spec),
            "split": _to_dict(split),
            "scaler_kind": scaler_kind,
            "model_spec": _to_dict(model_spec),
            "train_config": _to_dict(train_config),
        },
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in sorted(entries.items())},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        for name, data in sorted(entries.items()):
            # .npz and .h5 are already compressed or incompressible floats; storing them is faster
            kind = zipfile.ZIP_STORED if name.endswith((".npz", ".h5")) else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=kind)
    return buf.getvalue()


def save_project(path: str | Path, dataset, window_spec, split, scaler_kind: str, model_spec, train_config, run,
                 include_data: bool = True) -> Path:
    """Write the project zip to ``path`` atomically (an interrupted save leaves the old file intact)."""
    data = project_bytes(dataset, window_spec, split, scaler_kind, model_spec, train_config, run, include_data)
    return atomic_write_bytes(path, data)


def count_of(value: Any) -> int:
    """A count from a manifest, for display: anything that is not a finite non-negative number shows as 0."""
    try:
        n = float(value or 0)
    except (TypeError, ValueError):
        return 0
    return int(n) if 0 <= n < 1e15 else 0


def describe(manifest: dict) -> str:
    """One line for the page: what a project holds."""
    info = manifest.get("dataset", {})
    data = "with its data" if info.get("included") else "without data (fingerprint only)"
    return (f"Project saved {manifest.get('created', '?')} by Forecast Studio {manifest.get('app_version', '?')}: "
            f"dataset '{info.get('name')}' ({count_of(info.get('rows')):,} rows), {data}.")


def default_filename(dataset_name: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in Path(str(dataset_name)).stem).strip("-")
    return f"{stem or 'forecast'}-project.zip"


