"""Server-wide clean-up, started once per server: sessions idle past their time lose their state,
files and jobs. A session whose tab closed is kept until then, so its user can come back to it."""
from __future__ import annotations

import threading
import time

import streamlit as st

from core import jobs, sessions

SWEEP_EVERY_S = 60


def _known_sessions() -> set[str] | None:
    """Ids of the sessions Streamlit still holds (connected, or disconnected but able to reconnect)."""
    try:
        from streamlit.runtime import Runtime

        return {info.session.id for info in Runtime.instance()._session_mgr.list_sessions()}
    except Exception:  # no runtime (AppTest, bare mode) or an internal API change: fall back to idle time
        return None


def _busy(key: str) -> bool:
    return any(j.status not in jobs.FINISHED for j in jobs.pool().jobs(key))


def sweep_once(now: float | None = None) -> list[str]:
    """Remove every session idle past ``FS_SESSION_TTL_S`` with no tab attached and no unfinished job."""
    ttl = sessions.session_ttl_s()
    keep = sessions.STORE.attached(_known_sessions())
    keep |= {key for key in sessions.STORE.keys() if _busy(key)}
    # A tab or a running job keeps the folder's heartbeat fresh too (see studio.state.attach).
    for key in keep:
        entry = sessions.STORE.get(key)
        if entry is not None:
            entry.last_seen = time.time() if now is None else now
    removed = set(sessions.sweep(sessions.root(), keep=keep, ttl_s=ttl, now=now))
    removed |= set(sessions.STORE.expire(ttl, keep=keep, now=now))
    for key in removed:
        sessions.remove(key)
        jobs.pool().forget(key)
    return sorted(removed)


def _loop() -> None:
    while True:
        time.sleep(SWEEP_EVERY_S)
        try:
            sweep_once()
        except OSError:
            pass  # a directory vanished under us; the next sweep sees the rest


@st.cache_resource
def start() -> threading.Thread:
    thread = threading.Thread(target=_loop, name="fs-housekeeping", daemon=True)
    thread.start()
    return thread
