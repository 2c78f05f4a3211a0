"""The one place the studio's session state lives.

Pages read and write stage objects only through these helpers, so a change upstream (a new dataset,
another window) drops everything downstream that was built from the old one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from core import sessions

# Each stage and the keys it owns, in flow order. Changing a stage invalidates the ones after it.
# Keys not listed here are preferences that outlive upstream changes (e.g. "model_choice", the
# architecture last chosen on the Model page, which does not depend on the data or the windows).
STAGES: dict[str, tuple[str, ...]] = {
    "data": ("dataset",),
    "features": ("window_spec", "split", "scaler_kind", "windows"),
    "model": ("model_spec", "train_config"),
    "train": ("job", "run"),
    "export": ("export_dir",),
    "device": ("board",),
}
ORDER = list(STAGES)


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(f"fs.{key}", default)


def put(key: str, value: Any) -> None:
    st.session_state[f"fs.{key}"] = value


def pop(key: str) -> None:
    st.session_state.pop(f"fs.{key}", None)


def invalidate(stage: str) -> None:
    """Forget every stage after ``stage`` (the stage itself is kept)."""
    for later in ORDER[ORDER.index(stage) + 1:]:
        for key in STAGES[later]:
            value = get(key)
            closer = getattr(value, "close", None) if later == "device" else None
            if callable(closer):
                closer()
            pop(key)


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "local"


def workdir() -> Path:
    """This session's private working directory (runs, exports); never shared between sessions."""
    path = get("workdir")
    if path is None or not Path(path).exists():
        path = sessions.session_dir(session_id())
        put("workdir", path)
    else:
        sessions.touch(Path(path))
    return Path(path)
