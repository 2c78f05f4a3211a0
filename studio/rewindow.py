"""Lay the session's windows out again with another look-back, from a page other than Features.

The Model step's search chooses a window as well as a target form; its Use button applies both. The windows
are built as the Features step builds them (``core.windows.make_windows`` on the session's targets, inputs,
split and scaler), and the Features step's own window field is set to match, so that page shows the new
window on the next visit instead of putting its old one back.
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from core.windows import make_windows
from studio import state

FEATURES_KEY = "feat."  # the Features page's widget prefix (pages/2_features.py)


def use_window(dataset, current, window: int, log: bool | None = None):
    """The session's windows (``current``) with ``window`` steps of look-back instead (and, given ``log``, the
    multiplicative (log) target on or off); everything after Features starts again from them (a model, run or
    export made on the old windows is dropped). Raises StudioError when the window does not fit the data, or a
    log target has a value at or below 0."""
    spec = replace(current.spec, window=int(window), log=current.spec.log if log is None else bool(log))
    split, scaler_kind = current.split, current.scaler.kind
    windows = make_windows(dataset, spec, split, scaler_kind)
    state.invalidate("features")
    state.put("window_spec", spec)
    state.put("split", split)
    state.put("scaler_kind", scaler_kind)
    state.put("windows", windows)
    ss = st.session_state
    ss[FEATURES_KEY + "window"] = int(window)
    if ss.get(FEATURES_KEY + "dataset") is not None:  # the Features page reuses these windows instead of rebuilding
        ss[FEATURES_KEY + "built"] = ((ss[FEATURES_KEY + "dataset"], spec, split, scaler_kind), [])
    return windows
