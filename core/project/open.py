"""Opening a project file from anyone: only JSON, CSV and weight files, read into memory under hard limits
before anything touches the disk, no entry escaping its folder."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import APP_VERSION, DEFAULTS
from core.errors import StudioError
from core.escape import csv_cell, csv_uncell
from core.files import atomic_dir, load_json

from core.project.save import (DATASET, FORMAT, FORMAT_VERSION, MANIFEST, MB, RUN_PREFIX, SAFE_SUFFIXES, count_of,
                               describe_dataset, frame_hash, from_dict)

# ---------------------------------------------------------------------------------------------
# Opening


@dataclass
class Project:
    """Everything a project restores; ``windows`` is rebuilt from the dataset and the settings."""

    manifest: dict
    dataset: Any
    window_spec: Any
    split: Any
    scaler_kind: str
    model_spec: Any
    train_config: Any
    run: Any
    run_dir: Path
    windows: Any


def _refuse(problem: str, fix: str = "Ask for the project file again, or save it again from the studio that made it.") -> StudioError:
    return StudioError(problem, fix)


def _check_name(name: str) -> None:
    """Zip-slip guard: every entry must be a plain relative path that stays inside the target folder."""
    bad = (not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name.split("/")[0]
           or any(part in ("..", "") for part in name.rstrip("/").split("/"))
           or posixpath.normpath(name) != name.rstrip("/"))
    if bad:
        raise _refuse(f"The project file contains an unsafe path '{name}' (absolute or leading outside its folder).",
                      "Do not open this file; it was not made by the studio.")


def _folder_bytes(path: Path) -> int:
    """Bytes of the regular files under path (what a session's projects folder already holds)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _read_entries(zf: zipfile.ZipFile, limits: dict, unpack_left: int | None = None) -> dict[str, bytes]:
    max_entry = int(limits["project_max_entry_mb"]) * MB
    max_total = int(limits["project_max_total_mb"]) * MB
    if unpack_left is not None and unpack_left < max_total:
        max_total = max(unpack_left, 0)
    max_count = int(limits["project_max_entries"])
    infos = zf.infolist()
    if len(infos) > max_count:
        raise _refuse(f"The project file has {len(infos):,} entries; a project has at most {max_count:,}.")
    entries: dict[str, bytes] = {}
    total = 0
    for info in infos:
        name = info.filename
        _check_name(name)
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _refuse(f"The project file contains a link '{name}'.", "Do not open this file; it was not made by the studio.")
        if name in entries:
            raise _refuse(f"The project file contains '{name}' twice.")
        if info.file_size > max_entry or total + info.file_size > max_total:
            raise _refuse(f"'{name}' in the project file unpacks to {info.file_size / MB:,.0f} MB, over the "
                          f"{max_entry // MB} MB per file / {max_total / MB:,.0f} MB total this session may still "
                          "unpack.",
                          "Save the project without the data, or with a smaller dataset (a workshop host can raise "
                          "FS_PROJECT_MAX_UNPACK_MB).")
        # The sizes in the header can lie (a zip bomb); count what actually comes out.
        chunks, got = [], 0
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(MB)
                if not chunk:
                    break
                got += len(chunk)
                if got > info.file_size or got > max_entry or total + got > max_total:
                    raise _refuse(f"'{name}' in the project file unpacks to more than it declares or the studio accepts.",
                                  "Do not open this file; it was not made by the studio.")
                chunks.append(chunk)
        total += got
        entries[name] = b"".join(chunks)
    return entries


def _load_manifest(entries: dict[str, bytes]) -> dict:
    if MANIFEST not in entries:
        raise _refuse("The zip file has no manifest.json, so it is not a Forecast Studio project.",
                      "Open a project saved with 'Save project' on the Forecast page.")
    manifest = load_json(entries[MANIFEST], "The project's manifest.json",
                         "Ask for the project file again, or save it again from the studio that made it.", kind=None)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse("The zip file is not a Forecast Studio project (its manifest names another format).",
                      "Open a project saved with 'Save project' on the Forecast page.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _refuse("The project's manifest has no valid format version.")
    if version > FORMAT_VERSION:
        raise StudioError(
            f"This project was saved by a newer Forecast Studio (project format {version}, app "
            f"{manifest.get('app_version', '?')}); this studio ({APP_VERSION}) reads format {FORMAT_VERSION} and older.",
            "Update the studio, or ask for the project to be saved again with this version.")
    for key, kind in (("dataset", dict), ("settings", dict), ("files", dict)):
        if not isinstance(manifest.get(key), kind):
            raise _refuse(f"The project's manifest has no valid '{key}' section.")
    return manifest


def _verify_files(manifest: dict, entries: dict[str, bytes]) -> None:
    listed = manifest["files"]
    for name, meta in listed.items():
        _check_name(name)
        if name not in entries:
            raise _refuse(f"The project file is missing '{name}'.",
                          "The file is incomplete; save the project again and re-send it.")
        if not isinstance(meta, dict) or hashlib.sha256(entries[name]).hexdigest() != meta.get("sha256"):
            raise _refuse(f"'{name}' in the project file was changed or damaged after saving (its checksum differs).",
                          "Use the original file, or save the project again.")
    extra = sorted(set(entries) - set(listed) - {MANIFEST})
    if extra:
        raise _refuse(f"The project file contains entries its manifest does not list: {', '.join(extra[:5])}.",
                      "Do not open this file; it was changed after saving.")
    for name in listed:
        if name.startswith(RUN_PREFIX) and not name.lower().endswith(SAFE_SUFFIXES):
            raise _refuse(f"The project file carries '{name}', a file type the studio never writes and will not open.",
                          "Do not open this file; it was not made by the studio.")
    if RUN_PREFIX + "run.json" not in listed:
        raise _refuse("The project file has no trained run (run/run.json is missing).")


def _restore_dataset(manifest: dict, entries: dict[str, bytes], current_dataset):
    info = manifest["dataset"]
    expected = (f"'{info.get('name')}' ({count_of(info.get('rows')):,} rows, fingerprint "
                f"{str(info.get('fingerprint') or '')[:12] or 'none'})")
    if DATASET in entries:
        from core.data import CsvOptions, load_dataset
        from core.dataset import ROW_INDEX

        time_index = bool(info.get("time_index"))
        opts = CsvOptions(delimiter=",", decimal=".", encoding="utf-8", header=True,
                          time_col=csv_cell(info.get("time_col") or "time") if time_index else ROW_INDEX,
                          time_format="ISO8601" if time_index else None)
        try:
            loaded = load_dataset(entries[DATASET], name=str(info.get("name") or "project data"), csv=opts)
        except StudioError as e:
            raise _refuse(f"The dataset inside the project cannot be read: {e}") from e
        frame = loaded.frame
        if info.get("tz") and isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is None:
            frame = frame.tz_localize("UTC").tz_convert(info["tz"])
        # The names were written through escape.csv_cell (a project saved before that was not).
        unescaped = frame.rename(columns=csv_uncell)
        frame = unescaped if frame_hash(unescaped) == info.get("content_sha256") else frame
        if frame_hash(frame) != info.get("content_sha256"):
            raise _refuse("The dataset inside the project does not match the data the model was trained on "
                          f"(expected {expected}).", "Use the original project file.")
        # Same content as the trained-on data: keep that data's identity (fingerprint, name,
        # frequency, cleaning report), which the run itself records.
        return dataclasses.replace(loaded, frame=frame, name=str(info.get("name") or loaded.name),
                                   freq=info.get("freq", loaded.freq), time_col=info.get("time_col", loaded.time_col),
                                   excluded=dict(info.get("excluded") or {}), report=dict(info.get("report") or {}),
                                   fingerprint=str(info.get("fingerprint") or loaded.fingerprint))
    if current_dataset is None:
        raise StudioError(f"This project does not contain its data; it expects the dataset {expected}.",
                          "Load that dataset on the Data page first, then open the project again.")
    same = (current_dataset.fingerprint and current_dataset.fingerprint == info.get("fingerprint")) or \
        frame_hash(current_dataset.frame) == info.get("content_sha256")
    if not same:
        raise StudioError(f"This project expects the dataset {expected}, but the loaded dataset is "
                          f"{describe_dataset(current_dataset)}.",
                          "Load the dataset the project was made with (same file, same cleaning options) on the Data page, then open the project again.")
    return current_dataset


def _write_run(entries: dict[str, bytes], workdir: Path, manifest: dict) -> Path:
    base = Path(workdir)
    stamp = hashlib.sha256(entries[MANIFEST]).hexdigest()[:12]
    target = base / f"project-{stamp}"
    with atomic_dir(target, "run") as tmp:
        for name, data in entries.items():
            if not name.startswith(RUN_PREFIX):
                continue
            dest = (tmp / name[len(RUN_PREFIX):]).resolve()
            if not dest.is_relative_to(tmp.resolve()):  # belt and braces after _check_name
                raise _refuse(f"The project file contains an unsafe path '{name}'.")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    return target


def open_project(source: str | Path | bytes, current_dataset=None, workdir: str | Path | None = None,
                 max_unpack_mb: float | None = None) -> Project:
    """Open a project zip (a path or its bytes) and restore every step.

    The run is unpacked into ``workdir`` (a fresh temporary folder when None) and loaded with
    ``core.runs.load_run``; the windows are rebuilt from the dataset and the saved settings.
    Raises StudioError for a file that is not a project, damaged, from a newer studio, unsafe,
    or whose dataset does not match. ``max_unpack_mb`` (default ``DEFAULTS["forecast"]["project_max_unpack_mb"]``)
    caps what projects may unpack into ``workdir`` all together, what is already there included, so one
    session cannot fill the disk by opening project after project. A refused project leaves nothing behind.
    """
    limits = DEFAULTS["forecast"]
    cap = int(float(limits["project_max_unpack_mb"] if max_unpack_mb is None else max_unpack_mb) * MB)
    used = _folder_bytes(Path(workdir)) if workdir is not None and Path(workdir).is_dir() else 0
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise StudioError(f"There is no project file at {path}.", "Choose an existing .zip project file.")
        if path.stat().st_size > int(limits["project_max_total_mb"]) * MB:
            raise _refuse(f"{path.name} is larger than the {limits['project_max_total_mb']} MB a project may be.")
        raw = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise StudioError("This file is not a project: it is not a zip archive (or it is damaged).",
                          "Open a .zip saved with 'Save project' on the Forecast page.")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            entries = _read_entries(zf, limits, unpack_left=cap - used)
    except StudioError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as e:
        raise StudioError(f"The project file is damaged and cannot be unpacked ({e}).",
                          "Use the original file, or save the project again.") from e
    except Exception as e:  # zlib.error and friends: a corrupt stream surfaces under several types
        raise StudioError(f"The project file is damaged and cannot be unpacked ({type(e).__name__}: {e}).",
                          "Use the original file, or save the project again.") from e
    manifest = _load_manifest(entries)
    _verify_files(manifest, entries)
    try:
        dataset = _restore_dataset(manifest, entries, current_dataset)
    except StudioError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        # A manifest field of the wrong type (a number for a time zone, text for a flag): one message.
        raise _refuse(f"The project's dataset description is unreadable ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200] if str(e) else 'no detail'}).") from None

    from core.models import ModelSpec
    from core.runs import load_run
    from core.training import TrainConfig
    from core.windows import SplitSpec, WindowSpec, make_windows

    settings = manifest["settings"]
    window_spec = from_dict(WindowSpec, settings.get("window_spec"), "feature")
    split = from_dict(SplitSpec, settings.get("split"), "split")
    scaler_kind = str(settings.get("scaler_kind") or "minmax")
    model_spec = from_dict(ModelSpec, settings.get("model_spec"), "model")
    train_config = from_dict(TrainConfig, settings.get("train_config"), "training")
    if window_spec is None or model_spec is None:
        raise _refuse("The project's settings lack the feature or model step.")

    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="fs-project-"))
    run_dir = _write_run(entries, base, manifest)
    try:
        run = load_run(run_dir)
        windows = make_windows(dataset, window_spec, split=split, scaler_kind=scaler_kind)
    except BaseException as err:
        # A refused project leaves no unpacked folder behind in the session.
        shutil.rmtree(run_dir, ignore_errors=True)
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
        if isinstance(err, StudioError):
            raise
        if isinstance(err, (ValueError, TypeError, KeyError, AttributeError, OverflowError, MemoryError)):
            raise _refuse(f"The project's run or settings cannot be used ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'}).") from None
        raise
    return Project(manifest=manifest, dataset=dataset, window_spec=window_spec, split=split, scaler_kind=scaler_kind,
                   model_spec=model_spec, train_config=train_config, run=run, run_dir=run_dir, windows=windows)


