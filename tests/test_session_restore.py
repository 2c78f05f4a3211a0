"""A studio session survives a reload: the token in the address brings its state back, and only it does.

Each AppTest is a new browser tab (a reload is a new Streamlit session); ``?session=<token>`` is what a
reloaded tab sends. The training case starts a real training in one tab and finds the same job, still
running, from a second tab opened with the token.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs, sessions
from studio import housekeeping

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")
PAGE = {name: str(ROOT / "pages" / f) for name, f in
        (("data", "1_data.py"), ("features", "2_features.py"), ("model", "3_model.py"), ("train", "4_train.py"))}


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))


def tab(token: str | None = None, page: str | None = None) -> AppTest:
    """A new browser tab on the studio, optionally with a session address, run once."""
    at = AppTest.from_file(APP, default_timeout=120)
    if token is not None:
        at.query_params["session"] = token
    if page:
        at.switch_page(PAGE[page])
    at.run()
    assert not at.exception, at.exception
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(PAGE[page])
    at.run()
    assert not at.exception, at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("success", "warning", "info", "caption") for e in getattr(at.sidebar, kind))


def test_a_reload_finds_the_dataset_and_every_choice_again():
    first = tab()
    token = first.session_state["fs.token"]
    assert sessions.valid_token(token) and first.query_params["session"] == token
    first.selectbox(key="data.sample").select("co2").run()  # another dataset than the one a new tab opens on
    go(first, "features")
    first.number_input(key="feat.stride").set_value(5).run()
    go(first, "model")
    first.number_input(key="model.units").set_value(13).run()
    first.number_input(key="model.epochs").set_value(7).run()
    spec = first.session_state["fs.model_spec"]
    workdir = Path(first.session_state["fs.workdir"]) if "fs.workdir" in first.session_state else None

    again = tab(token, page="model")  # the reload: a new tab, the same address
    assert "found again" in sidebar_text(again)
    assert again.session_state["fs.dataset"].name == "co2.csv"
    assert again.session_state["fs.model_spec"] == spec
    assert again.number_input(key="model.units").value == 13 and again.number_input(key="model.epochs").value == 7
    go(again, "features")
    assert again.number_input(key="feat.stride").value == 5
    go(again, "data")  # the Data page does not fall back to the first sample
    assert again.session_state["fs.dataset"].name == "co2.csv"
    assert again.session_state["fs.token"] == token
    if workdir is not None:
        assert Path(again.session_state["fs.workdir"]) == workdir


def test_without_the_token_another_tab_gets_its_own_session():
    alice = tab()
    go(alice, "features")
    alice.number_input(key="feat.stride").set_value(5).run()
    bob = tab(page="features")  # no token: a participant at another laptop
    assert bob.session_state["fs.token"] != alice.session_state["fs.token"]
    assert bob.session_state["fs.key"] != alice.session_state["fs.key"]
    assert bob.number_input(key="feat.stride").value != 5
    mallory = tab(sessions.new_token(), page="features")  # a well-formed guess
    assert mallory.session_state["fs.token"] not in (alice.session_state["fs.token"], bob.session_state["fs.token"])
    assert mallory.number_input(key="feat.stride").value != 5
    assert "unknown or has expired" in sidebar_text(mallory)
    forged = tab(alice.session_state["fs.key"])  # the public key (folder, job owner) opens nothing
    assert forged.session_state["fs.token"] != alice.session_state["fs.token"]


def test_an_idle_session_expires_with_its_files(monkeypatch):
    at = tab()
    token, key = at.session_state["fs.token"], at.session_state["fs.key"]
    folder = sessions.session_dir(key)
    (folder / "runs").mkdir()
    monkeypatch.setenv("FS_SESSION_TTL_S", "60")
    assert key not in housekeeping.sweep_once()  # fresh: kept
    later = time.time() + 120
    os.utime(folder / sessions.HEARTBEAT, (later - 120 - 61, later - 120 - 61))
    assert key in housekeeping.sweep_once(now=later)
    assert not folder.exists() and sessions.STORE.get(key) is None
    back = tab(token)
    assert back.session_state["fs.token"] != token and "unknown or has expired" in sidebar_text(back)


def test_start_over_is_one_click():
    at = tab(page="features")
    token, key = at.session_state["fs.token"], at.session_state["fs.key"]
    at.number_input(key="feat.stride").set_value(5).run()
    folder = sessions.session_dir(key)
    at.button(key="fs.start_over").click().run()
    assert not at.exception, at.exception
    assert at.session_state["fs.token"] != token and at.query_params["session"] == at.session_state["fs.token"]
    assert not folder.exists() and sessions.STORE.get(key) is None
    assert at.session_state["fs.dataset"].name == "weather.csv"
    assert at.number_input(key="feat.stride").value != 5
    assert "Started over" in sidebar_text(at)
    assert tab(token).session_state["fs.token"] != token  # the old address leads nowhere now


@pytest.mark.slow
def test_a_training_started_before_the_reload_is_found_running():
    first = tab(page="features")
    first.number_input(key="feat.window").set_value(12).run()
    first.number_input(key="feat.stride").set_value(20).run()
    go(first, "model")
    first.selectbox(key="model.kind").select("dense").run()
    first.number_input(key="model.units").set_value(4).run()
    first.radio(key="model.backend").set_value("torch").run()
    first.number_input(key="model.epochs").set_value(500).run()
    first.number_input(key="model.patience").set_value(500).run()
    go(first, "train")
    first.button(key="train.start").click().run()
    job = first.session_state["fs.job"]
    token, key = first.session_state["fs.token"], first.session_state["fs.key"]
    try:
        assert job.owner == key  # the job belongs to the studio session, not to the tab
        deadline = time.time() + 120
        while job.snapshot()["epoch"] < 1 and time.time() < deadline:
            time.sleep(0.2)
        assert job.status == "running"
        again = tab(token, page="train")
        assert again.session_state["fs.job"] is job and job.status == "running"
        progress = again.get("progress")
        assert progress and progress[0].proto.text.startswith("Epoch ")  # the page polls the live job
        done = {m.label: m.value for m in again.metric}["Epochs done"]
        assert int(done.split("/")[0]) >= 1 and done.endswith("/ 500")
        assert any(j is job._job for j in jobs.pool().jobs(key))
    finally:
        job.stop()
        job.wait(60)
