"""Server-wide clean-up, started once per server: ended sessions lose their files and queued jobs."""
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


def sweep_once() -> list[str]:
    known = _known_sessions()
    removed = sessions.sweep(sessions.root(), active=known)
    for owner in removed:
        jobs.pool().forget(owner)
    return removed


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
