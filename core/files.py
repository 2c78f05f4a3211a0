"""Atomic file writes (an interrupted step never leaves a half-written file behind), the guarded JSON
reader and the one JSON sanitiser."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def json_safe(obj: Any) -> Any:
    """The one JSON sanitiser: NaN/inf become null (JSON has none, and other tools read these files), numpy
    numbers and arrays become Python ones, paths strings, keys strings."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _remove(path: Path) -> None:
    """Remove a file or a folder tree, if there is one (a replaced output may have been either)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place only when complete.

    An existing directory at ``path`` is replaced only after the new one is finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            _remove(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# JSON the studio writes nests a few levels; a file nested deeper than this was not written by it, and
# nesting near Python's recursion limit would raise RecursionError in the parser or in whatever walks it.
JSON_MAX_DEPTH = 64
JSON_MAX_BYTES = 64 * 1024 * 1024


def _depth_ok(obj, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children)
    return True


def load_json(source, what: str, fix: str, max_bytes: int = JSON_MAX_BYTES, kind: type | None = dict):
    """The one reader for a JSON file a user can hand over (run.json, report.json, history.json, a project's
    manifest): bounded in size and depth, and every failure a StudioError naming the file.

    ``source`` is a path or the file's bytes/text; ``kind`` is the type the top level must have (None: any).
    """
    from core.errors import StudioError

    try:
        if isinstance(source, (bytes, bytearray, str)) and not isinstance(source, Path):
            data = source
        else:
            path = Path(source)
            if path.stat().st_size > max_bytes:
                raise StudioError(f"{what} is {path.stat().st_size / 2**20:,.0f} MB, far more than the studio writes.", fix)
            data = path.read_bytes()
        if len(data) > max_bytes:
            raise StudioError(f"{what} is {len(data) / 2**20:,.0f} MB, far more than the studio writes.", fix)
        obj = json.loads(data)
    except StudioError:
        raise
    except RecursionError:
        raise StudioError(f"{what} is nested too deeply to be a file the studio wrote.", fix) from None
    except FileNotFoundError:
        raise StudioError(f"{what} is missing.", fix) from None
    except OSError as err:
        raise StudioError(f"{what} cannot be read ({err.strerror or err}).", fix) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise StudioError(f"{what} is not readable JSON ({str(err).splitlines()[0][:200]}).", fix) from None
    if not _depth_ok(obj, JSON_MAX_DEPTH):
        raise StudioError(f"{what} is nested more than {JSON_MAX_DEPTH} levels deep, so the studio did not write it.", fix)
    if kind is not None and not isinstance(obj, kind):
        raise StudioError(f"{what} does not hold a JSON {'object' if kind is dict else kind.__name__}.", fix)
    return obj


# What marks a folder as one the studio wrote, per kind: the file and, for JSON, the "kind" it declares.
OUTPUT_KINDS = {"run": ("run.json", "forecast-studio-run"), "export": ("report.json", None)}


def _is_ours(folder: Path, kinds) -> bool:
    for kind in kinds:
        marker, declared = OUTPUT_KINDS[kind]
        path = folder / marker
        if not path.is_file() or path.stat().st_size > JSON_MAX_BYTES:
            continue
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, RecursionError, OSError):
            continue
        if isinstance(data, dict) and (declared is None or data.get("kind") == declared):
            return True
    return False


def prepare_out_dir(path: str | Path, kinds=("run",), force: bool = False, option: str = "--out") -> Path:
    """The one rule for every command that writes a folder, applied BEFORE any work starts.

    The folder is replaced whole when the work is done (``atomic_dir``), so: a folder that is empty, absent,
    or a run/export the studio wrote earlier may be replaced; a folder holding anything else, or an existing
    regular file, is refused unless ``force``. The path is resolved first (``X/inner/..`` is ``X``), and the
    place is checked to be writable now, not after a long training. Returns the resolved path.
    """
    from core.errors import StudioError

    raw = str(path)
    if not raw.strip():
        raise StudioError(f"{option} is empty.", f"Give {option} a folder name, e.g. {option} runs/first.")
    target = Path(os.path.abspath(Path(raw).expanduser()))
    try:
        target = target.resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise StudioError(f"{option} {raw} cannot be resolved ({err}).", f"Choose another {option} folder.") from None
    if target.parent == target or target.name in ("", ".", ".."):
        raise StudioError(f"{option} {raw} is the root of the filesystem.", f"Choose a folder for {option}.")
    if target.exists() and not target.is_dir():
        if not force:
            raise StudioError(f"{option} {raw} is an existing file, not a folder; writing there would replace it.",
                              f"Choose a new folder name, or add --force to replace that file.")
    elif target.is_dir():
        try:
            entries = [p for p in target.iterdir() if not p.name.startswith(f".{target.name}.")]
        except OSError as err:
            raise StudioError(f"{option} {raw} cannot be read ({err.strerror or err}).", f"Choose another {option} folder.") from None
        if entries and not force and not _is_ours(target, kinds):
            what = " or ".join({"run": "a training run", "export": "an export"}[k] for k in kinds)
            raise StudioError(f"{option} {raw} already holds {len(entries)} file(s) that are not {what} of the studio; "
                              "writing there would delete them.",
                              f"Choose a new or empty folder, or add --force to replace that folder and everything in it.")
    # Writable now? Create the parent and a scratch folder beside the target, exactly as the final write will.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        os.rmdir(probe)
    except OSError as err:
        raise StudioError(f"{option} {raw} cannot be written ({err.strerror or err}).",
                          f"Choose a folder you can write to for {option}.") from None
    return target
