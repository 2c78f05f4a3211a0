"""Every page walked with awkward datasets, uploaded through the Data page as a person would (issue 18):
no page may show an exception box, and the page guard must not have had to catch anything either.

A dataset that cannot be used (12 monthly rows leave no validation window) must say so in a message;
that is the studio working, not failing. Each dataset gets a short real training so the Forecast,
Export, Device and Sweep pages are walked with a run, not only their empty state.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.training import TrainConfig, train
from studio.ui import UNEXPECTED
from tests.awkward_data import AWKWARD

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")
PAGES = ["1_data.py", "2_features.py", "3_model.py", "4_train.py", "5_forecast.py", "6_export.py", "7_device.py",
         "8_sweep.py"]


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))


def _check(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    caught = [e.value for e in at.error if UNEXPECTED in e.value]
    assert not caught, f"{where}: the page guard caught an error: {caught}"


def _upload(name: str, content: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.radio(key="data.source").set_value("Upload").run()
    at.file_uploader(key="data.upload").upload(name, content, "text/csv").run()
    _check(at, f"{name} on Data")
    assert at.session_state["fs.dataset"].name == name
    return at


@pytest.mark.parametrize("kind", ["yearly 1700-2008"])
def test_the_data_page_shows_a_308_year_span(kind):
    at = _upload("yearly.csv", AWKWARD[kind]())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Span"] == "308 years" and metrics["Frequency"] == "yearly"
    assert at.dataframe and at.get("plotly_chart")  # the table and the chart appear


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(AWKWARD))
def test_every_page_with_an_awkward_dataset(kind, tmp_path):
    name = kind.replace(" ", "_") + ".csv"
    at = _upload(name, AWKWARD[kind]())
    for page in PAGES:
        windows = at.session_state["fs.windows"] if "fs.windows" in at.session_state else None
        if page == "5_forecast.py" and windows is not None and "fs.run" not in at.session_state:
            # a short series has only a few training windows (issue U keeps them): a batch that fits
            config = TrainConfig(epochs=2, patience=2, batch_size=max(1, min(32, windows.count("train"))))
            run = train(windows, at.session_state["fs.model_spec"], config, tmp_path / "run")
            at.session_state["fs.run"] = run
        at.switch_page(str(ROOT / "pages" / page))
        at.run()
        _check(at, f"{kind} on {page}")
        if page == "2_features.py" and windows is None and at.session_state["fs.windows"] is None:
            assert at.error, "no windows, and no message saying why"
