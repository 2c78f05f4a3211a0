"""The Data page through Streamlit's AppTest: the default sample is loaded at once, choices re-run
cleanly, problems show as messages (never a traceback), and a new dataset drops downstream state."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "studio" / "app.py")


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def chart(at):
    """The "Columns to draw" box (keyed by the dataset, so found by its label)."""
    return next(m for m in at.multiselect if m.label == "Columns to draw")


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_weather_sample_is_loaded_when_the_studio_opens(app):
    ds = app.session_state["fs.dataset"]
    assert ds.name == "weather.csv" and len(ds.numeric_columns) == 7
    assert metrics(app)["Rows"] == f"{len(ds.frame):,}" and metrics(app)["Frequency"] == "hourly"
    assert any("weather.csv" in m.value for m in app.sidebar.markdown)  # the sidebar already knows it
    assert not app.error
    assert app.get("plotly_chart")  # the chart is drawn
    table = app.dataframe[0].value
    assert "summary" in set(table["column"]) and {"missing %", "min", "mean", "max"} <= set(table.columns)


def test_switching_sample_replaces_dataset_and_invalidates_downstream(app):
    app.session_state["fs.windows"] = "stale"
    app.selectbox(key="data.sample").select("co2").run()
    assert not app.exception
    assert app.session_state["fs.dataset"].name == "co2.csv"
    assert "fs.windows" not in app.session_state
    assert metrics(app)["Frequency · Saturdays"] == "weekly"
    assert any("missing time steps" in i.value for i in app.info)


def test_leaving_gaps_shows_a_blocking_message(app):
    app.selectbox(key="data.sample").select("co2").run()
    app.radio(key="data.fill").set_value("none").run()
    assert not app.exception
    assert any("missing values remain" in e.value for e in app.error)


def test_bad_override_is_a_message_and_keeps_the_dataset(app):
    app.selectbox(key="data.time_col").select("temperature").run()
    assert not app.exception
    assert any("does not hold dates" in e.value and "Pick another" in e.value for e in app.error)
    assert app.session_state["fs.dataset"].name == "weather.csv"


def test_resample_and_chart_options(app):
    app.selectbox(key="data.resample").select("D").run()
    app.selectbox(key="data.resample_how").select("max").run()
    assert not app.exception
    assert metrics(app)["Frequency"] == "daily" and int(metrics(app)["Rows"]) in (730, 731)
    chart(app).set_value(["pressure"]).run()
    app.toggle(key="data.separate").set_value(True).run()
    assert not app.exception and app.get("plotly_chart")


def test_upload_mode_without_a_file_keeps_the_current_dataset(app):
    app.radio(key="data.source").set_value("Upload").run()
    assert not app.exception
    assert app.session_state["fs.dataset"].name == "weather.csv"
    assert any("still using" in c.value for c in app.caption)


def _csv(columns: list[str], rows: int = 200, seed: int = 0) -> bytes:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M")
    return pd.DataFrame({"time": t, **{c: rng.normal(size=rows) for c in columns}}).to_csv(index=False).encode()


def test_a_new_upload_draws_its_own_first_columns(app):
    """Issue 18 item 4: the chart's columns belonged to the previous file after an upload that shares names."""
    app.radio(key="data.source").set_value("Upload").run()
    app.file_uploader(key="data.upload").upload("a.csv", _csv(["a", "b", "c", "d"]), "text/csv").run()
    assert chart(app).value == ["a", "b", "c"]
    chart(app).set_value(["d"]).run()
    app.file_uploader(key="data.upload").upload("b.csv", _csv(["a", "b", "c", "d", "e"], seed=1), "text/csv").run()
    assert not app.exception
    assert app.session_state["fs.dataset"].name == "b.csv"
    assert chart(app).value == ["a", "b", "c"]


def test_words_people_read(app):
    """Issue 18 item 9: "delimiter comma ,," and "None" in the columns table; frequencies in words."""
    caption = " ".join(c.value for c in app.caption)
    assert "delimiter comma (,)," in caption and ",," not in caption
    table = app.dataframe[0].value
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    assert not table.isna().to_numpy().any()
    options = app.selectbox(key="data.resample").options
    assert "hourly" in options and "h" not in options and not any("None" in o for o in options)
    app.selectbox(key="data.sample").select("co2").run()
    assert metrics(app)["Frequency · Saturdays"] == "weekly"  # the detail in the label: the value is not cut


def test_issue_31_files_on_the_page_and_the_format_controls_that_change_them(app):
    """Issue 31: quoted thousands read right with the assumption in a warning; the Thousands separator control
    flips it; Year + Quarter is combined, and taking Year alone warns with the count; a call centre's working
    hours are kept as observed steps and the page says so."""
    app.radio(key="data.source").set_value("Upload").run()
    births = "date,births\n" + "".join(f'2020-01-{d:02d},"8,{d:03d}"\n' for d in range(1, 29))
    app.file_uploader(key="data.upload").upload("births.csv", births.encode(), "text/csv").run()
    assert not app.exception and app.session_state["fs.dataset"].frame["births"].min() == 8001
    assert any("Thousands separator to none" in w.value for w in app.warning)
    app.selectbox(key="data.thousands").select("").run()
    assert app.session_state["fs.dataset"].frame["births"].max() == 8.028
    gas = "Year,Quarter,Gas\n" + "".join(f"{y},{q},{y % 7 + q}\n" for y in range(1960, 1980) for q in range(1, 5))
    app.file_uploader(key="data.upload").upload("gas.csv", gas.encode(), "text/csv").run()
    assert not app.exception and len(app.session_state["fs.dataset"].frame) == 80
    assert metrics(app)["Frequency"] == "quarterly" and chart(app).value == ["Gas"]
    app.selectbox(key="data.time_col").select("Year").run()
    assert any("75% of the file" in w.value for w in app.warning)
    app.selectbox(key="data.time_col").select("Detect").run()
    app.multiselect(key="data.time_cols").set_value(["Year", "Quarter"]).run()
    assert not app.exception and len(app.session_state["fs.dataset"].frame) == 80
    import pandas as pd

    t = pd.date_range("2024-01-01", "2024-01-31 23:55", freq="5min")
    t = t[(t.day_of_week < 5) & (t.hour >= 7) & (t.hour < 21)]
    calls = "time,calls\n" + "".join(f"{s:%Y-%m-%d %H:%M},{i % 37}\n" for i, s in enumerate(t))
    app.file_uploader(key="data.upload").upload("calls.csv", calls.encode(), "text/csv").run()
    assert not app.exception and len(app.session_state["fs.dataset"].frame) == len(t)
    assert any("Observed on weekdays (Mon-Fri), 07:00-21:00 only" in i.value for i in app.info)
    assert not app.warning
