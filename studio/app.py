"""Streamlit entry script: navigation over the studio's steps and the shared sidebar.

Run with `python -m studio` or `streamlit run studio/app.py`.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run studio/app.py` puts only studio/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException  # noqa: E402

from core import data  # noqa: E402
from core.config import DEFAULTS  # noqa: E402
from studio import housekeeping, perf, reruns, state, ui  # noqa: E402

# Before anything trains: Streamlit's reset of Keras and full GC after every rerun (studio/reruns.py).
reruns.keep_frameworks_between_reruns()

@st.cache_data(show_spinner="Loading the sample data ...")
def default_sample() -> data.Dataset:
    """The bundled sample every new session starts with; default options, so the Data page sees the same fingerprint."""
    path = data.SAMPLES[DEFAULTS["data"]["sample"]]
    return data.load_dataset(path, name=path.name)


# A local icon: a :material/...: one made every page load ask fonts.gstatic.com for the favicon (issue 35).
st.set_page_config(page_title="Forecast Studio", page_icon=str(ROOT / "studio" / "icon.png"), layout="wide")
pages = [st.Page(str(ROOT / "pages" / f), title=t, icon=i) for f, t, i in ui.STEPS.values() if (ROOT / "pages" / f).exists()]
housekeeping.start()
# The studio session named in the address (?session=...): a reload or a new tab finds its state again.
state.attach()
if state.get("dataset") is None:
    # Any step's URL opens on real data, not only the Data page.
    state.put("dataset", default_sample())
nav = st.navigation(pages)
# The summary's place is kept under the navigation, but it is drawn after the page: the page is what
# changes the choices, and drawn first the summary would show the previous click's.
summary = st.sidebar.container()
ui.session_box(st.sidebar.container())
rerunning = False
try:
    # One guard around every page: an unexpected exception becomes a message and a log line, never a raw box.
    ui.run_guarded(nav.run, f"{nav.title} step")
except RerunException:
    rerunning = True  # this run's drawing is thrown away: a notice must wait for the run that shows
    raise
finally:  # st.stop() ends a page early by raising; summarise, save and freeze all the same
    ui.sidebar_summary(summary)
    state.save(shown=not rerunning)
    perf.freeze_heavy_imports()
