"""The Model and Train pages under Streamlit's AppTest: state in, widgets, a real short training polled to the end."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import display
from core.models import ModelSpec
from core.training import TrainConfig
from tests.test_training import small_windows

ROOT = Path(__file__).resolve().parent.parent
MODEL_PAGE = str(ROOT / "pages" / "3_model.py")
TRAIN_PAGE = str(ROOT / "pages" / "4_train.py")


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))


@pytest.fixture(scope="module")
def windows():
    return small_windows()


def _texts(at) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.success] + [e.value for e in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def test_model_page_needs_windows():
    at = AppTest.from_file(MODEL_PAGE, default_timeout=60).run()
    assert not at.exception
    assert "Features" in at.info[0].value
    assert "fs.model_spec" not in at.session_state


def test_model_page_builds_the_spec_and_shows_the_budget(windows):
    at = AppTest.from_file(MODEL_PAGE, default_timeout=60)
    at.session_state["fs.windows"] = windows
    at.run()
    assert not at.exception, at.exception
    spec = at.session_state["fs.model_spec"]
    assert isinstance(spec, ModelSpec) and spec.window == 24 and spec.n_inputs == 2 and spec.horizon == 2
    assert spec.residual  # every target is an input, so "change from last value" starts on
    assert isinstance(at.session_state["fs.train_config"], TrainConfig)
    labels = [m.label for m in at.metric]
    assert "Parameters" in labels and "Weights, int8" in labels
    # The seed project's preset sets its sizes and the spec follows.
    at.selectbox(key="model.preset").select("LSTM 128 (seed project)").run()
    assert at.session_state["fs.model_spec"].units == 128
    at.radio(key="model.backend").set_value("torch").run()
    assert at.session_state["fs.model_spec"].backend == "torch"
    # A conflicting option is an error on the page, not a traceback.
    at.number_input(key="model.epochs").set_value(0)
    at.run()
    assert not at.exception


def _train_page(windows, epochs=2, backend="torch", **spec_options):
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=120)
    at.session_state["fs.windows"] = windows
    at.session_state["fs.model_spec"] = ModelSpec.for_windows(windows.spec, units=8, backend=backend, **spec_options)
    at.session_state["fs.train_config"] = TrainConfig(epochs=epochs, patience=0)
    return at.run()


def _poll(at, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = at.session_state["fs.job"]
        if job.status not in ("queued", "running"):
            break
        time.sleep(0.5)
        at.run()
    at.run()
    return at


@pytest.mark.slow
def test_train_page_trains_to_the_verdict(windows):
    at = _train_page(windows)
    assert not at.exception
    assert at.button(key="train.stop_button").disabled  # nothing to stop yet
    at.button(key="train.start").click().run()
    assert not at.exception, at.exception
    job = at.session_state["fs.job"]
    # While it runs, the start button is disabled and a second start is refused by the job itself.
    if job.status in ("queued", "running"):
        assert at.button(key="train.start").disabled
    _poll(at)
    assert not at.exception, at.exception
    assert job.snapshot()["status"] == "done"
    run = at.session_state["fs.run"]
    assert run is job.result
    table = at.dataframe[0].value
    # the Forecast page's presentation (core.forecast.metrics_table), without SPEC's "naive" alias
    assert list(table["forecaster"])[:2] == ["Model", "Last value"] and "naive" not in list(table["forecaster"])
    assert table["MAE"].iloc[0] == display.readable(run.metrics["model"]["mae"])  # the one table formatter
    assert run.metrics["verdict"] in _texts(at)
    assert len(at.get("plotly_chart")) == 1  # the loss curves


@pytest.mark.slow
def test_train_page_stop_and_failure_keep_the_page_usable(windows):
    at = _train_page(windows, epochs=500, backend="keras")
    at.button(key="train.start").click().run()
    job = at.session_state["fs.job"]
    while job.snapshot()["epoch"] < 1 and not job.wait(0.1):
        pass
    at.button(key="train.stop_button").click().run()
    _poll(at)
    assert job.status == "stopped" and at.session_state["fs.run"] is job.result
    assert "Stopped" in _texts(at) or "stopped" in _texts(at)

    bad = small_windows()
    bad.inputs[bad.starts("train")[2] + 3, 0] = np.nan
    at = _train_page(bad, epochs=2, backend="torch")
    at.button(key="train.start").click().run()
    _poll(at)
    assert not at.exception
    assert at.error and "NaN or infinite" in at.error[0].value
    assert "fs.run" not in at.session_state or at.session_state["fs.run"] is None
    assert not at.button(key="train.start").disabled  # the page stays usable: start again


def test_model_page_log_checkbox_lays_the_windows_out_again(tmp_path):
    """Issue 34 item 2: the Model page's multiplicative (log) checkbox re-windows with the targets read as log(value)
    (core.windows, the same call the CLI's --log-target makes); a target with a 0 is refused on the page, unticked."""
    from tests.test_log_target import _monthly
    from core.dataset import Dataset
    from core.windows import SplitSpec, WindowSpec, make_windows

    ds = _monthly()
    spec = WindowSpec(targets=("y",), features=("y",), window=12)
    at = AppTest.from_file(MODEL_PAGE, default_timeout=60)
    at.session_state["fs.dataset"] = ds
    at.session_state["fs.windows"] = make_windows(ds, spec, SplitSpec())
    at.run()
    assert not at.exception, at.exception
    at.checkbox(key="model.log").check().run()
    assert not at.exception, at.exception
    assert at.session_state["fs.windows"].spec.log and at.session_state["fs.windows"].scaler.log == ("y",)
    assert at.checkbox(key="model.log").value
    frame = ds.frame.copy()
    frame.iloc[5, 0] = 0.0
    zero = Dataset(name="z.csv", frame=frame, freq="MS", fingerprint="zero")
    at = AppTest.from_file(MODEL_PAGE, default_timeout=60)
    at.session_state["fs.dataset"] = zero
    at.session_state["fs.windows"] = make_windows(zero, spec, SplitSpec())
    at.run()
    at.checkbox(key="model.log").check().run()
    assert not at.exception, at.exception
    assert not at.session_state["fs.windows"].spec.log and not at.checkbox(key="model.log").value
    assert "row 6" in _texts(at)
