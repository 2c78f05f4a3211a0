"""The app shell: every step is reachable, and a new session starts on the bundled sample."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")


def test_new_session_starts_on_the_sample_on_any_step():
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    assert not at.exception
    ds = at.session_state["fs.dataset"]
    assert ds.name == "weather.csv" and len(ds.frame) > 8000
    # the Features page works on it without a visit to the Data page first
    assert "no dataset" not in " ".join(i.value for i in at.info).lower()


def test_sidebar_names_the_dataset():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert "weather.csv" in " ".join(m.value for m in at.sidebar.markdown)
