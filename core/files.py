"""Atomic file writes (an interrupted step never leaves a half-written file behind), the guarded JSON
reader and the one JSON sanitiser."""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import stat
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


# --- ownership: the one marker the studio writes in every folder it makes, checked before any delete ---------

OWNER_MARK = ".forecast-studio-owner"
OWNER_SIGNATURE = "forecast-studio owned folder v1"
KIND_WORDS = {"run": "a training run", "export": "an export", "session": "a studio session"}


def mark_owned(folder: str | Path, kind: str) -> Path:
    """Write the marker that makes ``folder`` the studio's (its signature, the kind, a random id)."""
    text = f"{OWNER_SIGNATURE}\nkind={kind}\nid={secrets.token_hex(16)}\n"
    return atomic_write_text(Path(folder) / OWNER_MARK, text)


def owned(folder: str | Path, kinds: str | tuple[str, ...]) -> bool:
    """Did the studio make ``folder`` as one of ``kinds``? Only its marker says so: a regular file (not a link)
    whose first line is the signature and which names the kind. A user's file named like a run's or an
    export's (run.json, report.json) proves nothing."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    path = Path(folder) / OWNER_MARK
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
            return False
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return len(lines) >= 2 and lines[0] == OWNER_SIGNATURE and lines[1] in {f"kind={k}" for k in kinds}


def not_owned_error(path: Path, kinds, option: str | None = None):
    from core.errors import StudioError

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    what = " or ".join(KIND_WORDS.get(k, k) for k in kinds)
    name = f"{option} {path}" if option else str(path)
    return StudioError(f"{name} is a folder the studio did not make as {what} (it has no {OWNER_MARK} marker of "
                       "that kind, e.g. it holds a user's files or was made before the studio marked its folders); "
                       "it is left as it is.",
                       "Choose a new or empty folder, or delete or move that folder yourself"
                       + (", or add --force to replace it and everything in it." if option else "."))


def replaceable(path: Path, kinds) -> bool:
    """May the studio delete what is at ``path`` to put its own folder there? Nothing there, an empty folder,
    or a folder carrying the studio's marker of one of ``kinds``."""
    if not os.path.lexists(path):
        return True
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        empty = not any(path.iterdir())
    except OSError:
        return False
    return empty or owned(path, kinds)


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: str) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place only when complete, marked as the
    studio's ``kind`` (``mark_owned``).

    An existing directory at ``path`` is replaced only after the new one is finished, and only if the studio
    made it (``replaceable``): anything else raises StudioError and is left as it is.
    """
    path = Path(path)
    if not replaceable(path, kind):
        raise not_owned_error(path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        mark_owned(tmp, kind)
        if os.path.lexists(path):
            if not replaceable(path, kind):  # it changed while the work ran
                raise not_owned_error(path, kind)
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


def prepare_out_dir(path: str | Path, kinds=("run",), force: bool = False, option: str = "--out") -> Path:
    """The one rule for every command that writes a folder, applied BEFORE any work starts.

    The folder is replaced whole when the work is done (``atomic_dir``), so: a folder that is empty, absent,
    or a run/export the studio made (its ``OWNER_MARK``) may be replaced; a folder holding anything else, or
    an existing regular file, is refused unless ``force``, which hands it to the studio now. The path is resolved first (``X/inner/..`` is ``X``), and the
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
        if entries and not force and not owned(target, kinds):
            what = " or ".join(KIND_WORDS[k] for k in kinds)
            raise StudioError(f"{option} {raw} already holds {len(entries)} file(s) and is not {what} the studio made "
                              f"(it has no {OWNER_MARK} marker: a user's folder, or one made before the studio marked "
                              "its folders); writing there would delete them.",
                              f"Choose a new or empty folder, or add --force to replace that folder and everything in it.")
    # Writable now? Create the parent and a scratch folder beside the target, exactly as the final write will.
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        os.rmdir(probe)
        if force and not replaceable(target, kinds):
            # --force: the user gave this folder (or file) to the studio, so it becomes the studio's to replace.
            if target.is_dir() and not target.is_symlink():
                mark_owned(target, kinds[0])
            else:
                target.unlink()
    except OSError as err:
        raise StudioError(f"{option} {raw} cannot be written ({err.strerror or err}).",
                          f"Choose a folder you can write to for {option}.") from None
    return target
