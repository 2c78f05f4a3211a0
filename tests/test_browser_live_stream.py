"""The Device step's live stream in real Chromium (issue 33): the emulated XIAO connected with an export whose test
part is a 62-reading random walk, a spike injected at reading 31 and streamed as fast as the board answers; the
chart fills and the detection sentence appears. The screenshot goes to artifacts/ for a person to look at (legend,
band, alarm markers). Nothing waits on a clock: every wait ends when its element appears."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, _free_port
from tests.test_browser_webserial import Page, _until
from tests.test_live_stream_page import _long_test_part

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).resolve().parent.parent


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok"
    except OSError:
        return False


@pytest.fixture
def studio_with_export(tmp_path):
    """The studio (tests/webserial_app.py: every session starts with the export in place) on a port of its own."""
    export = _long_test_part(tmp_path)
    port = _free_port()
    log = open(tempfile.mktemp(prefix="streamlit-live-", suffix=".log"), "w")
    env = dict(os.environ, PYTHONUNBUFFERED="1", FS_TEST_EXPORT=str(export),
               FS_WORKDIR_ROOT=tempfile.mkdtemp(prefix="fs-server-"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "tests" / "webserial_app.py"),
                             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _healthy(url) or proc.poll() is not None, 90)
        assert proc.poll() is None and _healthy(url), f"the studio did not start; log at {log.name}"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_live_stream_chart_in_a_real_browser(studio_with_export, browser):
    browser.set_window_size(1400, 1400)
    page = Page(browser, studio_with_export)
    browser.get(f"{studio_with_export}/device")
    page.wait(lambda: "Device" in page.text() and "Board" in page.text(), "the Device step")
    page.radio("Board", "Emulated XIAO (no hardware)")
    page.button("Connect")
    page.alert("The board is ready", "the board's ready line")
    page.wait(lambda: "62 readings" in page.text(), "the live stream's readings")
    page.select("Inject", "spike")
    page.button("Start the stream")
    sentence = page.alert("The board flagged the injected spike", "the detection sentence")
    assert "at once (a band alarm)" in sentence
    page.wait(lambda: "finished: 62 of 62" in page.text(), "the stream's end")
    chart = page.wait(lambda: next((c for c in browser.find_elements("css selector", '[data-testid="stPlotlyChart"]')
                                    if "board's alarm" in c.text), None), "the live chart with its alarm")
    legend = [e.text for e in chart.find_elements("css selector", "g.legend text.legendtext")]
    assert any(t.startswith("board's adaptive 95% band") for t in legend), legend
    assert "board's forecast (one step ahead)" in legend and "board's alarm" in legend
    # the legend sits below the axis title, not on it (plotly's horizontal default overlapped "reading")
    title = chart.find_element("css selector", "g.g-xtitle text").rect
    box = chart.find_element("css selector", "g.legend").rect
    assert box["y"] >= title["y"] + title["height"] - 1, (title, box)
    # the reading and the board's forecast are told apart by colour, not only by dash
    strokes = browser.execute_script(
        "return [...arguments[0].querySelectorAll('g.legend g.traces path.js-line')].map(p => p.style.stroke)", chart)
    assert len(set(strokes)) == len(strokes) >= 2, strokes
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", chart)
    ARTIFACTS.mkdir(exist_ok=True)
    chart.screenshot(str(ARTIFACTS / "live_stream_chart.png"))
    browser.save_screenshot(str(ARTIFACTS / "live_stream_page.png"))
