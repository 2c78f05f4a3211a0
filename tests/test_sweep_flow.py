"""Sweep -> "Use this run" sticks through the whole studio (issue 18 item 3): Features and Model show the
run's window and model, and Forecast still has the run; the table's "best" is the run the box offers."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")


def _page(name: str) -> str:
    return str(ROOT / "pages" / name)


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(_page(page))
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_use_this_run_sticks_on_features_model_and_forecast():
    at = AppTest.from_file(APP, default_timeout=300).run()
    _go(at, "2_features.py")
    at.number_input(key="feat.stride").set_value(20).run()
    window = at.number_input(key="feat.window").value
    _go(at, "3_model.py")
    # the trials take the Model step's backend and epochs (issue 32)
    at.radio(key="model.backend").set_value("torch").run()
    at.number_input(key="model.epochs").set_value(1).run()
    _go(at, "8_sweep.py")
    other = 12 if window != 12 else 24
    at.multiselect(key="sweep.windows").set_value([other, window])
    at.multiselect(key="sweep.kinds").set_value(["dense"])
    at.multiselect(key="sweep.units").set_value([4])
    at.run()
    at.button(key="sweep.start").click().run()
    assert not at.exception, at.exception
    mine = at.session_state["fs.sweep_jobs"]
    deadline = time.time() + 300
    while not all(j.status in jobs.FINISHED for j in mine) and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    table = at.dataframe[-1].value
    starred = list(table.loc[table["best"].str.startswith("★"), "job"])
    box = at.selectbox(key="sweep.pick")
    assert len(starred) == 1 and box.value == starred[0] and "within budget" in box.format_func(box.value)
    # one dense epoch may lose to the best baseline: then the star and the box say so in words
    if table.loc[table["job"] == starred[0], "best"].iloc[0] != "★ best":
        assert "loses to" in box.format_func(box.value)
    pick = next(j for j in mine if j.result and j.snapshot()["progress"]["trial"]["window"] == other)
    box.set_value(pick.id).run()
    at.button(key="sweep.use").click().run()
    assert not at.exception, at.exception
    run = at.session_state["fs.run"]
    assert run.window_spec.window == other
    _go(at, "2_features.py")
    assert at.number_input(key="feat.window").value == other
    assert at.session_state["fs.run"] is run, "opening Features dropped the sweep's run"
    _go(at, "3_model.py")
    assert at.selectbox(key="model.kind").value == "dense" and at.number_input(key="model.units").value == 4
    assert at.session_state["fs.run"] is run, "opening Model dropped the sweep's run"
    _go(at, "5_forecast.py")
    assert not any("no trained model" in i.value for i in at.info)
    assert at.session_state["fs.run"] is run
