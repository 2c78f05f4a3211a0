"""AppTest sessions with their own session ids, as a real server gives each browser tab.

Streamlit's AppTest runs every script under the one id "test session id", so two AppTests would
share a working directory and a job owner: not what a room of browsers gets. ``session_app(path,
session_id)`` makes an AppTest whose script runs see ``session_id`` through the same
``get_script_run_ctx().session_id`` the studio reads (``studio.state.session_id``).
"""
from __future__ import annotations

import uuid

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import local_script_runner as _lsr

_ATTR = "_fs_session_id"


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


def session_app(script: str, session_id: str | None = None, default_timeout: float = 120) -> AppTest:
    _install()
    at = AppTest.from_file(script, default_timeout=default_timeout)
    object.__setattr__(at._session_state, _ATTR, session_id or f"sim-{uuid.uuid4().hex[:12]}")
    return at


def session_id_of(at: AppTest) -> str:
    return getattr(at._session_state, _ATTR)
