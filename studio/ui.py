"""UI pieces shared by the pages: error display, the page guard, links between steps, the session box and the
sidebar summary."""
from __future__ import annotations

import functools
import logging
import sys
import uuid
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import display
from core.frequency import describe_freq
from core.errors import StudioError
from studio import state

LOG = logging.getLogger("forecast_studio")
if not LOG.handlers:  # the operator's log: the server's stderr, next to Streamlit's own lines
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(_handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
PAGES = Path(__file__).resolve().parent.parent / "pages"
# The steps in flow order: page file, title, icon (the navigation and every link between steps).
STEPS = {"data": ("1_data.py", "Data", ":material/table:"),
         "features": ("2_features.py", "Features", ":material/view_timeline:"),
         "model": ("3_model.py", "Model", ":material/account_tree:"),
         "train": ("4_train.py", "Train", ":material/model_training:"),
         "forecast": ("5_forecast.py", "Forecast", ":material/show_chart:"),
         "export": ("6_export.py", "Export", ":material/memory:"),
         "device": ("7_device.py", "Device", ":material/usb:"),
         "sweep": ("8_sweep.py", "Sweep", ":material/grid_view:")}
UNEXPECTED = "hit an unexpected problem"  # in every guard message; tests look for it


def show_error(err: Exception) -> None:
    """A user-facing message, never a traceback."""
    if isinstance(err, StudioError):
        st.error(str(err))
    else:
        st.error(f"Something went wrong: {type(err).__name__}: {err}. Check your choices on this page and try again.")


def table(rows, headers: dict[str, str] | None = None, keep: tuple[str, ...] = (), digits: dict[str, int] | None = None,
          **kwargs):
    """Every table a page shows, through the one formatter (``core.display.table``): numbers as a person writes
    them, a dash for a missing value (never "None"), headers in words. ``rows`` is a frame or a list of dicts;
    ``kwargs`` go to ``st.dataframe`` (the index is hidden unless asked for)."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    kwargs.setdefault("hide_index", True)
    return st.dataframe(display.table(frame, headers, keep, digits), **kwargs)


def report_unexpected(err: BaseException, where: str) -> str:
    """Log ``err`` with its traceback for the operator and show the user what failed and what to try.
    Returns the reference that ties the two together."""
    ref = uuid.uuid4().hex[:8]
    LOG.error("unexpected error on %s (ref %s, session %s)", where, ref, state.session_id(), exc_info=err)
    st.error(f"The {where} {UNEXPECTED} and could not finish ({type(err).__name__}). Your data, choices and "
             "trainings are kept. Try again; if it happens again, change the last setting you touched or go back "
             f"one step, and tell the workshop host reference **{ref}** (the details are in the studio's log).",
             icon=":material/error:")
    return ref


def run_guarded(fn, where: str) -> None:
    """Run a page (or a fragment) so that no exception reaches the screen as a raw error box: a
    ``StudioError`` is shown as its message, anything else through ``report_unexpected``.
    ``st.stop()`` and ``st.rerun()`` are BaseExceptions and pass through untouched."""
    try:
        fn()
    except StudioError as err:
        show_error(err)
    except Exception as err:  # noqa: BLE001 - the point of the guard
        report_unexpected(err, where)


def guarded(where: str):
    """Decorator form of ``run_guarded``, for fragments, which rerun on their own outside the page's guard."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            run_guarded(lambda: fn(*args, **kwargs), where)
        return inner
    return wrap


NOTICES = {
    "restored": ("success", "Welcome back: this session was found again (data, choices, runs and any training)."),
    "unknown": ("warning", "That session address is unknown or has expired, so a new session was started."),
    "expired": ("warning", "This session expired after being idle, so a new one was started."),
    "new": ("info", "Started over: a new, empty session."),
    "elsewhere": ("warning", "These settings were changed in another tab; showing them now."),
}


def session_box(where=None) -> None:
    """The session's address and the one-click Start over, in ``where`` (the sidebar by default)."""
    notice = st.session_state.get("fs.notice")  # dropped by state.save once a run showed it
    with where if where is not None else st.sidebar:
        if notice in NOTICES:
            kind, text = NOTICES[notice]
            getattr(st, kind)(text)
        st.caption("This page's address holds your session: bookmark it to come back after a reload, a closed "
                   "tab or a sleeping laptop. Keep it to yourself: anyone with it sees your work.")
        st.button("Start over", key="fs.start_over", on_click=state.start_over, icon=":material/restart_alt:",
                  help="Forget this session: stop its trainings, delete its data, runs and exports, begin anew.")


def sidebar_summary(where=None) -> None:
    """What has been chosen so far, step by step, in ``where`` (the sidebar by default)."""
    ds = state.get("dataset")
    with where if where is not None else st.sidebar:
        st.markdown("### Your project")
        if ds is None:
            st.caption("No dataset yet: start at **Data**.")
            return
        st.markdown(f"**Dataset:** {ds.name}  \n**Rows:** {len(ds.frame):,}  \n**Frequency:** {describe_freq(ds.freq) if ds.freq else 'irregular / steps'}")
        spec = state.get("window_spec")
        if spec is not None:
            st.markdown(f"**Targets:** {', '.join(spec.targets)}  \n**Window → horizon:** {spec.window} → {spec.horizon}")
        ms = state.get("model_spec")
        if ms is not None:
            st.markdown(f"**Model:** {ms.kind.upper()} {ms.units} × {ms.layers} ({ms.backend})")
        run = state.get("run")
        if run is not None:
            st.markdown("**Trained:** yes")
        if state.get("export_dir") is not None:
            st.markdown("**Exported:** yes")


def link_to(step: str, quiet: bool = False) -> None:
    """A link to another step's page. A page run on its own (tests) has no navigation to link into, so it
    says where to go instead (or nothing, with ``quiet``)."""
    page, label, icon = STEPS[step]
    try:
        # An absolute path matches the page st.navigation registered.
        st.page_link(str(PAGES / page), label=f"Go to {label}", icon=icon)
    except StreamlitAPIException:
        if not quiet:
            st.markdown(f"Open **{label}** in the sidebar.")


def require(value, message: str, step: str):
    """The page guard: without ``value`` (what an earlier step makes), say what is missing, link to the
    step that makes it, and stop the page."""
    if value is None:
        st.info(message)
        link_to(step)
        st.stop()
    return value
