"""The Device step's live stream (issue 33, item 3) under AppTest on the emulated XIAO: a stretch of the export's
test part goes to the board with R as fast as it answers (no pauses, so nothing waits on a clock), a spike is
injected, and the chart, the board's alarm and the detection summary appear."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.firmware_support import SLICE_ALARM_EXPORT
from tests.test_device_page import PAGE, _close, _settle, _texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _long_test_part(tmp_path: Path, n: int = 60) -> Path:
    """The slice alarm export (its model forecasts the last reading) with a test part of n + 2 readings: a random
    walk of temp and hum, cut into consecutive windows of 3 as a run's samples.npz holds them (scaled)."""
    export = tmp_path / "slice_alarm_long"
    shutil.copytree(SLICE_ALARM_EXPORT, export)
    rng = np.random.default_rng(4)
    walk = np.round(np.c_[10 + np.cumsum(rng.normal(0, 0.3, n + 3)), -5 + np.cumsum(rng.normal(0, 0.6, n + 3))], 3)
    scaled = (walk - [10.0, -5.0]) / [2.0, 4.0]
    X = np.stack([scaled[i:i + 3] for i in range(n)]).astype(np.float32)
    np.savez(export / "samples.npz", X_test=X, y_test=scaled[3:n + 3, None, :].astype(np.float32),
             y_host=X[:, -1:, :])
    return export


def test_live_stream_of_the_test_part_flags_an_injected_spike(tmp_path):
    pytest.importorskip("core.board.emulator")
    export = _long_test_part(tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        at.radio(key="device.kind").set_value("Emulated XIAO (no hardware)").run()
        at.button(key="device.connect").click().run()
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        assert "Live stream" in [h.value for h in at.subheader]
        assert at.radio(key="device.live.source").value == "The export's test part"
        assert "62 readings" in _texts(at)
        assert at.selectbox(key="device.live.pace").value == 0.0  # as fast as the board answers
        at.selectbox(key="device.live.kind").select("spike").run()
        at.number_input(key="device.live.start").set_value(30).run()
        at.button(key="device.live.start_button").click().run()
        at = _settle(at, lambda a: "finished: 62 of 62" in _texts(a))
        assert not at.exception, at.exception
        assert "The board flagged the injected spike at once (a band alarm)" in _texts(at)
        summary = at.dataframe[-2].value
        assert summary.loc[0, "flagged"] == "yes" and summary.loc[0, "readings later"] == "0"
        assert summary.loc[0, "false alarms"] == "0"
        alarms = at.dataframe[-1].value
        assert alarms.loc[0, "reading"] == "30" and "outside the alarm band" in alarms.loc[0, "alarm"]
        chart = at.get("plotly_chart")[-1]  # the live chart (the self-test's was not asked for)
        names = [t.get("name") for t in json.loads(chart.proto.spec)["data"]]
        assert "board's alarm" in names and "board's forecast (one step ahead)" in names
        assert any(n and n.startswith("board's adaptive 95% band") for n in names)
        # the board is free again: the other commands are back
        assert not at.button(key="device.self_test").disabled
    finally:
        _close(at)
