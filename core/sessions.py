"""Per-session working directories and their clean-up.

Each browser session writes its runs and exports under ``<root>/<session id>/`` and nowhere else,
so one participant can never see another's files. A directory goes when its session has ended, or
when it has not been touched for ``ttl_s`` (a laptop closed mid-workshop).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

HEARTBEAT = ".last-seen"
DEFAULT_TTL_S = int(os.environ.get("FS_SESSION_TTL_S", str(6 * 3600)))
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def root() -> Path:
    path = Path(os.environ.get("FS_WORKDIR_ROOT") or Path(tempfile.gettempdir()) / "forecast-studio")
    path.mkdir(parents=True, exist_ok=True)
    return path


def session_dir(session_id: str, base: Path | None = None) -> Path:
    """The session's own directory, created if needed, with its heartbeat refreshed."""
    name = _SAFE.sub("_", session_id)[:80] or "anonymous"
    path = (base or root()) / name
    path.mkdir(parents=True, exist_ok=True)
    touch(path)
    return path


def touch(path: Path) -> None:
    (path / HEARTBEAT).touch()


def last_seen(path: Path) -> float:
    beat = path / HEARTBEAT
    return beat.stat().st_mtime if beat.exists() else path.stat().st_mtime


def sweep(base: Path, active: Iterable[str] | None, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> list[str]:
    """Remove session directories whose session ended (when ``active`` is known) or that idled past ``ttl_s``."""
    now = time.time() if now is None else now
    alive = None if active is None else {_SAFE.sub("_", s)[:80] for s in active}
    removed = []
    for path in sorted(p for p in base.iterdir() if p.is_dir()):
        ended = alive is not None and path.name not in alive
        idle = now - last_seen(path) > ttl_s
        if ended or idle:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
