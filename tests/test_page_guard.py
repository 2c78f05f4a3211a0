"""The one guard around every page (issue 18): an unexpected exception is a clear message on the page and a
log line with the traceback for the operator, never Streamlit's raw error box; st.stop and st.rerun pass."""
from __future__ import annotations

import logging
from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio.ui import UNEXPECTED

ROOT = Path(__file__).resolve().parent.parent


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def _broken_page(root: str) -> None:
    import sys

    sys.path.insert(0, root)
    import streamlit as st

    from core.errors import StudioError
    from studio import ui

    def page():
        st.write("before the failure")
        if st.session_state.get("kind") == "studio":
            raise StudioError("The file is empty.", "Choose another file.")
        if st.session_state.get("kind") == "stop":
            st.stop()
        {}["missing"]  # a bug

    ui.run_guarded(page, "Demo step")

    @st.fragment
    @ui.guarded("Demo step (live part)")
    def part():
        1 / 0

    part()
    st.write("after the guard")


def _run(kind: str | None = None) -> tuple[AppTest, list[logging.LogRecord]]:
    handler = _Records()
    log = logging.getLogger("forecast_studio")
    log.addHandler(handler)
    try:
        at = AppTest.from_function(_broken_page, args=(str(ROOT),), default_timeout=60)
        if kind:
            at.session_state["kind"] = kind
        at.run()
    finally:
        log.removeHandler(handler)
    return at, handler.records


def test_an_unexpected_error_is_a_message_and_a_log_line():
    at, records = _run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and all(UNEXPECTED in e for e in errors)
    assert "The Demo step" in errors[0] and "KeyError" in errors[0] and "reference" in errors[0]
    assert "ZeroDivisionError" in errors[1]
    assert "after the guard" in [m.value for m in at.markdown]  # the rest of the app still draws
    assert len(records) == 2 and all(r.exc_info for r in records)
    ref = records[0].args[1]
    assert ref in errors[0] and "Demo step" in records[0].getMessage()


def test_a_studio_error_is_its_own_message_and_stop_passes_through():
    at, records = _run("studio")
    assert not at.exception and at.error[0].value.startswith("The file is empty. Choose another file.")
    assert not [r for r in records if "Demo step" in r.getMessage() and "live" not in r.getMessage()]
    at, _ = _run("stop")
    assert not at.exception
    assert "after the guard" not in [m.value for m in at.markdown]  # st.stop still stops
