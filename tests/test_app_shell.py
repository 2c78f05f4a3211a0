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


def test_sidebar_shows_the_choice_made_on_this_click():
    """The summary is drawn after the page, so a change on a page is in the sidebar at once, not one click late."""
    at = AppTest.from_file(APP, default_timeout=120)
    for page in ("2_features.py", "3_model.py"):  # the Model page takes the windows the Features page made
        at.switch_page(str(ROOT / "pages" / page))
        at.run()
        assert not at.exception
    at.number_input(key="model.units").set_value(13).run()
    assert not at.exception
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "13 ×" in sidebar and "weather.csv" in sidebar
