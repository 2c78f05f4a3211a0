"""The one way an array from a user's file is loaded: declared sizes are checked before anything is allocated.

An ``.npy`` header declares its shape and dtype; numpy allocates shape x itemsize before it reads a byte,
so an 8 MB member declaring a 2 GB array costs 2 GB. ``load_npz`` / ``load_npy`` read every header first
(bounded in length), refuse object dtypes (pickles), refuse a member that declares more data than it
holds, and refuse a file whose arrays together exceed the budget; only then does numpy load it, with
``allow_pickle=False``. Used for run directories, export folders and projects (through ``core.runs``).
"""
from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.errors import StudioError

_MB = 1024 * 1024
# What one file's arrays may hold in memory together. A run's samples hold a few hundred windows, an
# export's a few dozen: tens of MB at most for the largest model the board can take.
DEFAULT_BUDGET_MB = int(os.environ.get("FS_ARRAY_BUDGET_MB", "512"))
# numpy writes headers of a few hundred bytes; its own reader allows 10,000.
MAX_HEADER_BYTES = 10_000
MAX_MEMBERS = 256


def budget_bytes(budget_mb: float | None = None) -> int:
    return int((DEFAULT_BUDGET_MB if budget_mb is None else budget_mb) * _MB)


def _refuse(where: str, what: str, fix: str) -> StudioError:
    return StudioError(f"{where} {what}.", fix)


def _declared(fp: BinaryIO, where: str, fix: str, member: str = "") -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of the .npy stream at fp, read without touching its data."""
    it = f"its member {member}" if member else "it"
    try:
        major, minor = np.lib.format.read_magic(fp)
        if (major, minor) == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=MAX_HEADER_BYTES)
        elif major in (2, 3):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=MAX_HEADER_BYTES)
        else:
            raise ValueError(f"unknown .npy version {major}.{minor}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as err:
        raise _refuse(where, f"is not a readable array file ({it}: {str(err).splitlines()[0][:200]})", fix) from None
    if dtype.hasobject:
        raise _refuse(where, f"is not a readable array file: {it} holds Python objects (a pickle), which the "
                             "studio never writes or loads", fix)
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise _refuse(where, f"is not a readable array file: {it} declares an impossible shape {shape}", fix)
    return tuple(shape), dtype, fp.tell()


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python ints: no overflow for a hostile shape


def _check_member(shape, dtype, header_len: int, stored: int, where: str, fix: str, member: str = "") -> int:
    nbytes = _nbytes(shape, dtype)
    if nbytes > stored - header_len:
        it = f"its member {member}" if member else "it"
        raise _refuse(where, f"is not a readable array file: {it} declares a {'x'.join(map(str, shape)) or 'scalar'} "
                             f"{dtype} array ({nbytes / _MB:,.1f} MB) but holds only "
                             f"{max(stored - header_len, 0) / _MB:,.1f} MB", fix)
    return nbytes


def check_npz(source: str | Path | bytes, budget_mb: float | None = None, what: str | None = None,
              fix: str = "Use the file as the studio wrote it.") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every member's declared (shape, dtype), after checking them all against the budget; nothing is loaded."""
    where = what or (str(source) if not isinstance(source, (bytes, bytearray, memoryview)) else "the array file")
    limit = budget_bytes(budget_mb)
    if not isinstance(source, (bytes, bytearray, memoryview)):
        try:
            size = Path(source).stat().st_size
        except OSError as err:
            raise _refuse(where, f"cannot be read ({err.strerror or err})", fix) from None
        if size > limit:
            raise _refuse(where, f"is {size / _MB:,.0f} MB, over the {limit / _MB:,.0f} MB an array file may be", fix)
    fh = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _refuse(where, f"has {len(infos):,} members; the studio's files have a handful", fix)
            for info in infos:
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise _refuse(where, f"is not a readable array file: it holds '{info.filename[:80]}', which is not "
                                     "an array", fix)
                name = info.filename[:80]
                with zf.open(info) as member:
                    shape, dtype, header_len = _declared(member, where, fix, member=name)
                total += _check_member(shape, dtype, header_len, info.file_size, where, fix, member=name)
                if total > limit:
                    raise _refuse(where, f"declares {total / _MB:,.0f} MB of arrays, over the {limit / _MB:,.0f} MB "
                                         "the studio loads from one file", fix)
                out[info.filename[: -len(".npy")]] = (shape, dtype)
    except StudioError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise _refuse(where, f"is not a readable array file ({str(err).splitlines()[0][:200] if str(err) else type(err).__name__})",
                      fix) from None
    return out


def load_npz(source: str | Path | bytes, budget_mb: float | None = None, what: str | None = None,
             fix: str = "Use the file as the studio wrote it.") -> dict[str, np.ndarray]:
    """All arrays of an .npz (a path or its bytes), each checked against the budget before it is loaded."""
    check_npz(source, budget_mb, what, fix)
    where = what or (str(source) if not isinstance(source, (bytes, bytearray, memoryview)) else "the array file")
    fh = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with np.load(fh, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise _refuse(where, f"is not a readable array file ({str(err).splitlines()[0][:200]})", fix) from None


def load_npy(path: str | Path, budget_mb: float | None = None, what: str | None = None,
             fix: str = "Use the file as the studio wrote it.") -> np.ndarray:
    """One .npy file, its header checked against the budget and its own length before loading."""
    path = Path(path)
    where = what or str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fp:
            shape, dtype, header_len = _declared(fp, where, fix)
    except OSError as err:
        raise _refuse(where, f"cannot be read ({err.strerror or err})", fix) from None
    nbytes = _check_member(shape, dtype, header_len, size, where, fix)
    if nbytes > budget_bytes(budget_mb):
        raise _refuse(where, f"declares {nbytes / _MB:,.0f} MB, over the {budget_bytes(budget_mb) / _MB:,.0f} MB "
                             "the studio loads from one file", fix)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise _refuse(where, f"is not a readable array ({str(err).splitlines()[0][:200]})", fix) from None
