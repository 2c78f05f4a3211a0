"""AppTest sessions with their own session ids, as a real server gives each browser tab.

Streamlit's AppTest runs every script under the one id "test session id", so two AppTests would
share a working directory and a job owner: not what a room of browsers gets. ``session_app(path,
session_id)`` makes an AppTest whose script runs see ``session_id`` through the same
``get_script_run_ctx().session_id`` the studio reads (``studio.state.session_id``).

AppTest swaps process-wide objects for each run (``Runtime._instance``, the pages manager flag, config
options) and resets them afterwards, so two AppTest runs at once in one process break each other
("Runtime hasn't been created!"). Runs of these sessions therefore take turns on one lock;
``SessionAppTest.last_wait_s`` says how long the last run waited for its turn.
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import local_script_runner as _lsr

_ATTR = "_fs_session_id"
_RUN_LOCK = threading.RLock()


class SessionAppTest(AppTest):
    last_wait_s = 0.0

    def _run(self, *args, **kwargs):
        t0 = time.perf_counter()
        with _RUN_LOCK:
            self.last_wait_s = time.perf_counter() - t0
            return super()._run(*args, **kwargs)


def _install() -> None:
    if getattr(_lsr.LocalScriptRunner, "_fs_patched", False):
        return
    original = _lsr.LocalScriptRunner.__init__

    def __init__(self, script_path, session_state, *args, **kwargs):  # noqa: N807 - replaces the constructor
        original(self, script_path, session_state, *args, **kwargs)
        sid = getattr(session_state, _ATTR, None)
        if sid:
            self._session_id = sid  # the id ScriptRunner puts into each run's ScriptRunContext

    _lsr.LocalScriptRunner.__init__ = __init__
    _lsr.LocalScriptRunner._fs_patched = True


def session_app(script: str, session_id: str | None = None, default_timeout: float = 120) -> SessionAppTest:
    _install()
    # from_file builds a plain AppTest; the constructor takes the (absolute) script path directly.
    at = SessionAppTest(str(Path(script).resolve()), default_timeout=default_timeout)
    object.__setattr__(at._session_state, _ATTR, session_id or f"sim-{uuid.uuid4().hex[:12]}")
    return at


def session_id_of(at: AppTest) -> str:
    return getattr(at._session_state, _ATTR)
