"""The one place the studio's session state lives.

Pages read and write stage objects only through these helpers, so a change upstream (a new dataset,
another window) drops everything downstream that was built from the old one.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import streamlit as st

from core import sessions

TOKEN_PARAM = "session"  # ?session=<token> in the page's address names the studio session
_TOKEN, _KEY = "fs.token", "fs.key"  # this tab's session token and its public key (never saved as state)
# This tab's place in its session's history: the revision it last took and the values it then held in common.
_SEEN, _BASE = "fs.seen", "fs.base"
_NOT_SAVED = (_TOKEN, _KEY, _SEEN, _BASE, "fs.notice", "fs.start_over")
# Widget kinds whose value cannot be set through session state (buttons, uploads): never saved.
_UNSAVED_WIDGETS = ("trigger", "file_uploader", "chat_input")
LOG = logging.getLogger("forecast_studio")

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
# What a page keeps in st.session_state under its own name between reruns (results, flags, caches), by the
# stage that owns it: built from that stage's objects, so ``invalidate`` drops them with them. Widget keys
# (a page's inputs, "device.port_text", "export.go"...) are preferences and outlive upstream changes.
PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "train": ("train.message", "train.polling"),
    "export": ("export.ei_profile_result",),
    "device": ("device.task", "device.task_error", "device.task_result", "device.ref", "device.last", "device.ei",
               "device.connect_error", "device.link", "device.caps", "device.link_token", "device.link_seen",
               "device.link_reopen", "device.emu_dtype_for"),
}

# What one browser tab's own components said (the board link: its token, its events, what the browser can do):
# each tab on a session keeps its own; a reload takes the session's. Everything else is shared between tabs.
TAB_KEYS = ("device.link", "device.caps", "device.link_token", "device.link_seen", "device.link_reopen")


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(f"fs.{key}", default)


def put(key: str, value: Any) -> None:
    st.session_state[f"fs.{key}"] = value
    _write_through({f"fs.{key}": value})


def pop(key: str) -> None:
    st.session_state.pop(f"fs.{key}", None)
    _write_through(removed=[f"fs.{key}"])


def _write_through(values: dict[str, Any] | None = None, removed: list[str] = ()) -> None:
    """This tab's change, in its session at once: a fragment's change must survive a reload before the next
    full run. Stamped as this tab's, so its other tabs take it at their next run."""
    entry = _entry()
    if entry is None:
        return
    entry.write(_tab_id(), values, removed)
    base = st.session_state.get(_BASE)
    if isinstance(base, dict):
        base.update(values or {})
        for key in removed:
            base.pop(key, None)


def invalidate(stage: str) -> None:
    """Forget every stage after ``stage`` (the stage itself is kept)."""
    for later in ORDER[ORDER.index(stage) + 1:]:
        for key in STAGES[later]:
            value = get(key)
            closer = getattr(value, "close", None) if later == "device" else None
            if callable(closer):
                closer()
            pop(key)
        for key in PAGE_KEYS.get(later, ()):
            st.session_state.pop(key, None)
            _write_through(removed=[key])


def _tab_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "local"


def session_id() -> str:
    """The studio session's key (job owner, folder name). It outlives the tab: a reload with the session's
    address gets the same one. A page run on its own (tests) has no token and uses the tab's id."""
    return st.session_state.get(_KEY) or _tab_id()


def _entry() -> sessions.Entry | None:
    key = st.session_state.get(_KEY)
    return sessions.STORE.get(key) if key else None


def _saveable(items: dict[str, Any]) -> dict[str, Any]:
    """The session-state items a new tab can take over: stage objects, preferences and widget values,
    but not buttons or uploads (Streamlit refuses those being set)."""
    kinds: dict[str, str] = {}
    try:  # Streamlit's own record of each widget's kind; internal, so a change of it only saves less
        from streamlit.runtime.state import get_session_state

        inner = get_session_state()._state
        for key in items:
            wid = inner._key_id_mapper.get_id_from_key(key)
            meta = inner._new_widget_state.widget_metadata.get(wid) if wid else None
            if meta is not None:
                kinds[key] = str(meta.value_type)
    except Exception:
        pass
    out = {}
    for key, value in items.items():
        if not isinstance(key, str) or key in _NOT_SAVED or key.startswith("$$"):
            continue
        if any(word in kinds.get(key, "") for word in _UNSAVED_WIDGETS):
            continue
        if type(value).__module__.startswith("streamlit"):  # an UploadedFile and the like
            continue
        out[key] = value
    return out


def attach() -> bool:
    """Bind this tab to its studio session, once per tab; returns True when the session was found again.

    The token comes from the address (``?session=``). A known token brings the session's saved state
    back (a training started before the reload is the same running job); none, or an unknown or expired
    one, starts a new session with a new token, put into the address so a reload finds it. A tab already
    bound merges with its session at every run (``_sync``): another tab on the same address may have
    changed it since."""
    ss = st.session_state
    token = ss.get(_TOKEN)
    if token is not None:
        if st.query_params.get(TOKEN_PARAM) != token:  # a page switch can drop the query: put it back
            st.query_params[TOKEN_PARAM] = token
        entry = _entry()
        if entry is None:  # expired while this tab stayed open (or Start over in another tab): begin anew
            ss.clear()
            ss["fs.notice"] = "expired"
            return attach()
        entry.clients.add(_tab_id())
        _sync(entry)
        return False
    asked = st.query_params.get(TOKEN_PARAM)
    entry = sessions.STORE.open(asked) if asked else None
    restored = entry is not None
    if restored:
        token = asked
        with entry.lock:
            ss[_SEEN], values = entry.revision, dict(entry.values)
        ss[_BASE] = _apply(values)
    else:
        token = sessions.new_token()
        entry = sessions.STORE.create(token)
        if asked:
            ss["fs.notice"] = "unknown"
    ss[_TOKEN], ss[_KEY] = token, entry.key
    ss.setdefault(_SEEN, 0)
    ss.setdefault(_BASE, {})
    entry.clients.add(_tab_id())
    st.query_params[TOKEN_PARAM] = token
    if restored:
        ss["fs.notice"] = "restored"
    return restored


def _apply(values: dict[str, Any], dropped: Any = ()) -> dict[str, Any]:
    """Put the session's ``values`` into this tab (forgetting ``dropped``); returns those it took."""
    ss = st.session_state
    for key in dropped:
        ss.pop(key, None)
    taken = {}
    for key, value in values.items():
        try:
            ss[key] = value
            taken[key] = value
        except Exception:  # a value Streamlit will not take back (a widget kind it refuses): skip it
            LOG.debug("session value %s not restored", key)
    return taken


def _setting(key: str) -> bool:
    """A value a person chose or sees as the session's work (a widget's value, the dataset, the model...), as
    against a page's bookkeeping (``PAGE_KEYS``, the work folder)."""
    if key.startswith("fs."):
        return any(key == f"fs.{k}" for keys in STAGES.values() for k in keys)
    return not any(key in keys for keys in PAGE_KEYS.values())


def _sync(entry: sessions.Entry) -> None:
    """Start of a run in a tab already on its session: write this tab's changes since its last run (the
    widget just changed) and take what another tab on the same address changed meanwhile, key by key, so
    neither undoes the other's choices. Where both changed one value, the other tab's came first and
    stays; whenever a setting this tab shows is changed so, it says so once."""
    ss = st.session_state
    base = ss.get(_BASE)
    if not isinstance(base, dict):
        base = {}
    current = _saveable(dict(ss.items()))
    synced = entry.sync(_tab_id(), int(ss.get(_SEEN) or 0), base, current, own=TAB_KEYS)
    shown = [k for k in synced.dropped if k in current and _setting(k)]
    shown += [k for k, v in synced.taken.items() if _setting(k) and not sessions.same(current.get(k, v), v)]
    took = _apply(synced.taken, synced.dropped)
    ss[_SEEN] = synced.revision
    ss[_BASE] = {k: v for k, v in synced.base.items() if k in took or k not in synced.taken}
    if shown or synced.overruled:
        LOG.info("session %s: another tab changed %s", entry.key, sorted(set(shown) | set(synced.overruled)))
        ss["fs.notice"] = "elsewhere"


def save(shown: bool = True) -> None:
    """Keep this tab's state for its session (end of every full run), and refresh its heartbeat.
    ``shown``: this run's page reached the browser, so a one-time notice drawn in it is done."""
    if shown:
        st.session_state.pop("fs.notice", None)
    entry = _entry()
    if entry is None:
        return
    ss = st.session_state
    base = ss.get(_BASE)
    # Only what this tab changed goes in (never its whole state over the session's); where another tab
    # changed the same key since this run began, that change stays and this tab takes it next run.
    synced = entry.sync(_tab_id(), int(ss.get(_SEEN) or 0), base if isinstance(base, dict) else {},
                        _saveable(dict(ss.items())), take=False, own=TAB_KEYS)
    ss[_BASE] = synced.base
    entry.last_seen = time.time()
    path = get("workdir")
    if path is not None:
        sessions.touch(Path(path))


def start_over() -> None:
    """Throw this session away (its jobs stopped, its files and state removed) and begin a new one."""
    from core import jobs

    key = st.session_state.get(_KEY)
    job = get("job")
    if job is not None and getattr(job, "status", None) in ("queued", "running"):
        job.stop()
    invalidate("data")  # closes a connected board
    if key:
        jobs.pool().forget(key)
        sessions.remove(key)
    st.session_state.clear()
    token = sessions.new_token()
    entry = sessions.STORE.create(token)
    st.session_state[_TOKEN], st.session_state[_KEY] = token, entry.key
    st.session_state[_SEEN], st.session_state[_BASE] = 0, {}
    entry.clients.add(_tab_id())
    st.query_params[TOKEN_PARAM] = token
    st.session_state["fs.notice"] = "new"


def workdir() -> Path:
    """This session's private working directory (runs, exports); never shared between sessions."""
    path = get("workdir")
    if path is None or not Path(path).exists():
        path = sessions.session_dir(session_id())
        put("workdir", path)
    else:
        sessions.touch(Path(path))
    return Path(path)
