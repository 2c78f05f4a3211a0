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


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_weather_sample_is_loaded_when_the_studio_opens(app):
    ds = app.session_state["fs.dataset"]
    assert ds.name == "weather.csv" and len(ds.numeric_columns) == 7
    assert metrics(app)["Rows"] == f"{len(ds.frame):,}" and metrics(app)["Frequency"] == "h"
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
    assert metrics(app)["Frequency"] == "W-SAT"
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
    assert metrics(app)["Frequency"] == "D" and int(metrics(app)["Rows"]) in (730, 731)
    app.multiselect(key="data.chart_cols").set_value(["pressure"]).run()
    app.toggle(key="data.separate").set_value(True).run()
    assert not app.exception and app.get("plotly_chart")


def test_upload_mode_without_a_file_keeps_the_current_dataset(app):
    app.radio(key="data.source").set_value("Upload").run()
    assert not app.exception
    assert app.session_state["fs.dataset"].name == "weather.csv"
    assert any("still using" in c.value for c in app.caption)
