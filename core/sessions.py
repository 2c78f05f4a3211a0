"""Studio sessions: an unguessable token, the session's own folder, and the state kept for it.

A browser tab is not a session: a reload, a closed tab or a laptop that slept all start a new
Streamlit session and lose its memory. The studio's session is named by a random token kept in the
page's address (``?session=<token>``). The server keeps, per token, the session's state (dataset,
choices, runs, the training job, which goes on running in the job pool) and a private folder
``<root>/<key>/`` for its files; a new tab that brings the token gets all of it back. Without the
token there is no way in: the token has 192 random bits, and neither the folder name nor the job
owner is the token itself (both use ``key_of(token)``, a hash), so the token is never on disk or in
a log.

A session goes when it has been idle for ``session_ttl_s()`` (``FS_SESSION_TTL_S``, default 6 h) with no tab
attached and no job of its own unfinished, or at once when its user presses "Start over".
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable

from core.files import mark_owned, owned

LOG = logging.getLogger("forecast_studio")
KIND = "session"

HEARTBEAT = ".last-seen"
DEFAULT_TTL_S = int(os.environ.get("FS_SESSION_TTL_S", str(6 * 3600)))
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


def session_ttl_s() -> float:
    """The idle time after which a session is removed; read at every sweep, so an operator's setting applies."""
    raw = os.environ.get("FS_SESSION_TTL_S")
    try:
        return float(raw) if raw else float(DEFAULT_TTL_S)
    except ValueError:
        return float(DEFAULT_TTL_S)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def valid_token(token: Any) -> bool:
    return isinstance(token, str) and bool(_TOKEN.match(token))


def key_of(token: str) -> str:
    """The session's public name (folder, job owner, log lines): a hash, so the token itself stays secret."""
    return "s" + hashlib.sha256(token.encode("ascii")).hexdigest()[:32]


def root() -> Path:
    path = Path(os.environ.get("FS_WORKDIR_ROOT") or Path(tempfile.gettempdir()) / "forecast-studio")
    path.mkdir(parents=True, exist_ok=True)
    return path


def session_dir(session_id: str, base: Path | None = None) -> Path:
    """The session's own directory, created if needed, with its heartbeat refreshed."""
    name = _SAFE.sub("_", session_id)[:80] or "anonymous"
    path = (base or root()) / name
    try:
        path.mkdir(parents=True)
        mark_owned(path, KIND)  # the sweep and Start over delete only folders that carry it
    except FileExistsError:
        pass
    touch(path)
    return path


def touch(path: Path) -> None:
    try:
        (path / HEARTBEAT).touch()
    except FileNotFoundError:  # removed under us (Start over in another tab, the sweep): nothing to refresh
        pass


def last_seen(path: Path) -> float:
    beat = path / HEARTBEAT
    return beat.stat().st_mtime if beat.exists() else path.stat().st_mtime


def sweep(base: Path, keep: Iterable[str] | None = None, ttl_s: float | None = None,
          now: float | None = None) -> list[str]:
    """Remove the session directories idle past ``ttl_s``, except those named in ``keep`` (a tab is
    attached, or a job of theirs is unfinished). A session whose tab closed is kept until then: its
    user may come back with the session's address."""
    now = time.time() if now is None else now
    ttl = session_ttl_s() if ttl_s is None else ttl_s
    kept = {_SAFE.sub("_", s)[:80] for s in (keep or ())}
    removed = []
    for path in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
        if path.name in kept:
            continue
        try:
            idle = now - last_seen(path) > ttl
        except FileNotFoundError:
            continue
        if idle and _delete(path, "idle past the session time"):
            removed.append(path.name)
    return removed


_LEFT: set[str] = set()  # folders already named in the log as not the studio's (said once, not every minute)


def _delete(path: Path, why: str) -> bool:
    """Remove a session folder, only if the studio made it (its owner marker); log either way."""
    if not owned(path, KIND):
        if str(path) not in _LEFT:
            _LEFT.add(str(path))
            LOG.warning("not removing %s: the studio did not make it as a session folder (no owner marker)", path)
        return False
    LOG.info("removing session folder %s (%s)", path, why)
    shutil.rmtree(path, ignore_errors=True)
    return True


def same(a: Any, b: Any) -> bool:
    """Whether a tab's value is the one it had: the same object, or an equal plain value. Anything whose
    equality is not one True (arrays, frames, objects that raise) counts as changed only when replaced."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return (a == b) is True
    except Exception:
        return False


@dataclass
class Synced:
    """One tab's merge with its session (``Entry.sync``)."""

    revision: int  # the session's revision this tab has now seen
    base: dict[str, Any]  # the values this tab now holds in common with the session
    taken: dict[str, Any] = field(default_factory=dict)  # written by another tab since: this tab shows them now
    dropped: list[str] = field(default_factory=list)  # removed by another tab since: this tab forgets them
    overruled: list[str] = field(default_factory=list)  # this tab changed them too, after another tab did: theirs kept


@dataclass
class Entry:
    """What the server keeps for one session between its tabs.

    Two tabs on one address share it. Every write raises ``revision`` and stamps the keys it wrote with it
    and the writing tab, so a tab can tell what another tab changed since it last looked (``sync``): a
    tab's state is never written over the session's whole (the last tab to run undid the other's choices)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    clients: set[str] = field(default_factory=set)  # ids of the Streamlit sessions (tabs) attached to it
    last_seen: float = field(default_factory=time.time)
    revision: int = 0
    stamps: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (revision written, tab that wrote it)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def write(self, tab: str, values: dict[str, Any] | None = None, removed: Iterable[str] = ()) -> int:
        """Store ``values`` and remove ``removed`` as ``tab``'s change; returns the new revision."""
        with self.lock:
            return self._write(tab, values or {}, list(removed))

    def _write(self, tab: str, values: dict[str, Any], removed: list[str]) -> int:
        if values or removed:
            self.revision += 1
            for key, value in values.items():
                self.values[key] = value
                self.stamps[key] = (self.revision, tab)
            for key in removed:
                self.values.pop(key, None)
                self.stamps[key] = (self.revision, tab)
        return self.revision

    def sync(self, tab: str, seen: int, base: dict[str, Any], current: dict[str, Any], take: bool = True,
             own: Collection[str] = ()) -> Synced:
        """Merge one tab's state with the session, key by key. ``seen``: the revision the tab last took;
        ``base``: the values it then held in common; ``current``: its values now. The tab's own changes
        since (``current`` against ``base``) are written, except where another tab wrote the same key after
        ``seen``: that change was first and stays (``overruled``). With ``take`` the other tabs' changes
        come back for the tab to show (at the start of a run, before its widgets are drawn). ``own``: keys
        each tab keeps for itself (what its own browser said); written, so a reload finds them, never taken."""
        with self.lock:
            theirs = {k for k, (rev, who) in self.stamps.items() if rev > seen and who != tab and k not in own}
            changed = {k: v for k, v in current.items() if k not in base or not same(base[k], v)}
            removed = [k for k in base if k not in current]
            overruled = sorted((set(changed) | set(removed)) & theirs)
            writes = {k: v for k, v in changed.items() if k not in theirs}
            gone = [k for k in removed if k not in theirs]
            self._write(tab, writes, gone)
            if not take:
                kept = {k: v for k, v in base.items() if k not in gone}
                return Synced(seen, {**kept, **writes}, overruled=overruled)
            return Synced(self.revision, dict(self.values), taken={k: self.values[k] for k in theirs if k in self.values},
                          dropped=sorted(k for k in theirs if k not in self.values), overruled=overruled)


class SessionStore:
    """Token -> the session's saved state, in this server's memory (objects are kept as they are, so a
    running training job, its live history included, is the same object a new tab finds)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}  # by key_of(token): the token is only ever held by its tabs
        self._lock = threading.Lock()

    def open(self, token: str) -> Entry | None:
        """The session named by ``token``, if it exists (a wrong or expired token gives None)."""
        if not valid_token(token):
            return None
        with self._lock:
            entry = self._entries.get(key_of(token))
            if entry is not None:
                entry.last_seen = time.time()
            return entry

    def create(self, token: str) -> Entry:
        if not valid_token(token):
            raise ValueError("not a session token")
        with self._lock:
            return self._entries.setdefault(key_of(token), Entry(key_of(token)))

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def attached(self, clients: Iterable[str] | None) -> set[str]:
        """Keys of the sessions that one of ``clients`` (live Streamlit session ids) is attached to."""
        live = set(clients or ())
        with self._lock:
            return {k for k, e in self._entries.items() if e.clients & live}

    def drop(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.pop(key, None)

    def expire(self, ttl: float, keep: Iterable[str] = (), now: float | None = None) -> list[str]:
        """Forget the sessions idle past ``ttl`` that are not in ``keep``; returns their keys."""
        now = time.time() if now is None else now
        kept = set(keep)
        with self._lock:
            gone = [k for k, e in self._entries.items() if k not in kept and now - e.last_seen > ttl]
            for k in gone:
                self._entries.pop(k)
        return gone


STORE = SessionStore()


def remove(key: str, base: Path | None = None) -> None:
    """A session's state and files, gone now (Start over, or expiry)."""
    STORE.drop(key)
    path = (base or root()) / (_SAFE.sub("_", key)[:80] or "anonymous")
    if path.is_dir() and not path.is_symlink():
        _delete(path, "ended")
