"""A board on the participant's own computer, through the browser (Web Serial), in real Chromium.

What runs for real: the studio's server (studio/server.py: Streamlit plus the board relay route), the
Device page, the link component's own JavaScript in its iframe (port chooser call, open, line framing,
relay over the WebSocket, reopen, fault reporting), core.board.weblink, core.board.Board, the protocol and the
comparison, and the device emulator running the exported model on TensorFlow Lite Micro behind a pty.

The stand-in is the one part this machine has not got, a USB serial port in the browser:
tests/js/webserial_shim.js replaces ``navigator.serial`` in the component's frame, and its ports are real
streams to tests/browser_port.UsbBridge, which opens the emulator's pty with pyserial (the OS driver's
part). The bridge also plays the faults a cable and an OS produce: pulled mid-answer, port busy, and the
bytes a UART makes of a wrong baud rate. The session starts with an export in place
(tests/webserial_app.py) instead of training one in the browser first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from core.config import DEFAULTS
from core.board import Board, compare, load_reference
from tests.browser_port import UsbBridge
from tests.conftest import ARTIFACTS, _free_port
from tests.pty_board import PtyBoard

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SLICE = ROOT / "tests" / "transcripts" / "slice_export"
BROWSER = "This computer's USB (in the browser)"
WAIT = 60  # the longest any element may take to appear on a busy machine; waits end as soon as it does


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """The emulated board, the USB stand-in in front of it, and the studio's server with the export in place."""
    from core.board.emulator import Emulator

    export = tmp_path_factory.mktemp("webserial") / "export"
    shutil.copytree(SLICE, export)
    emulator = Emulator(export, dtype="float32")
    target = {"path": emulator.start()}
    bridge = UsbBridge(lambda: target["path"])
    port = _free_port()
    log = open(tempfile.mktemp(prefix="streamlit-webserial-", suffix=".log"), "w")
    env = dict(os.environ, PYTHONUNBUFFERED="1", FS_TEST_EXPORT=str(export),
               FS_TEST_BRIDGE=f"ws://127.0.0.1:{bridge.port}",
               FS_WORKDIR_ROOT=tempfile.mkdtemp(prefix="fs-server-"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "tests" / "webserial_server.py"),
                             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _healthy(url) or proc.poll() is not None, 90)
        assert proc.poll() is None and _healthy(url), f"the studio did not start; log at {log.name}"
        yield {"url": url, "bridge": bridge, "target": target, "emulator_path": target["path"], "export": export,
               "log": log.name}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        bridge.close()
        emulator.stop()


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok"
    except OSError:
        return False


def _until(cond, timeout: float) -> None:
    """Server start-up has no element to wait on: poll its health answer (not a timed assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        time.sleep(0.25)


class Page:
    def __init__(self, driver, url: str) -> None:
        self.d, self.url = driver, url

    def wait(self, cond, what: str, timeout: float = WAIT):
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def probe(_):
            try:
                return cond()
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(probe)
        except TimeoutException:
            self.evidence(what)
            pytest.fail(f"waited {timeout} s for {what}; page text:\n{self.text()[-3000:]}")

    def text(self) -> str:
        self.d.switch_to.default_content()
        return self.d.find_element("css selector", "body").text

    def alerts(self) -> list[str]:
        self.d.switch_to.default_content()
        return [a.text for a in self.d.find_elements("css selector", '[data-testid="stAlert"]')]

    def alert(self, needle: str, what: str, timeout: float = WAIT) -> str:
        return self.wait(lambda: next((a for a in self.alerts() if needle in a), None), what, timeout)

    def evidence(self, what: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        name = "webserial_" + "".join(c if c.isalnum() else "_" for c in what)[:60]
        self.d.switch_to.default_content()
        self.d.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        (ARTIFACTS / f"{name}.txt").write_text(self.text())

    def button(self, label: str) -> None:
        from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException,
                                                StaleElementReferenceException)

        xpath = f'//div[@data-testid="stButton"]//button[.//p[normalize-space()="{label}"]]'

        def click():
            found = [b for b in self.d.find_elements("xpath", xpath) if b.is_enabled() and b.is_displayed()]
            if not found:
                return False
            try:
                self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
                found[0].click()
                return True
            # covered, redrawn, or in the DOM but not yet clickable (a rerun mid-way): wait for it like a person
            except (ElementClickInterceptedException, ElementNotInteractableException, StaleElementReferenceException):
                return False
        self.d.switch_to.default_content()
        self.wait(click, f"the {label!r} button")

    def radio(self, label: str, option: str) -> None:
        def click():
            for group in self.d.find_elements("css selector", '[data-testid="stRadio"]'):
                if label in group.text:
                    for e in group.find_elements("css selector", "label"):
                        if e.text.strip() == option:
                            e.click()
                            return True
            return False
        self.d.switch_to.default_content()
        self.wait(click, f"the {option!r} choice")

    def select(self, label: str, option: str) -> None:
        def open_it():
            for box in self.d.find_elements("css selector", '[data-testid="stSelectbox"]'):
                if label in box.text:
                    box.find_element("css selector", 'input[role="combobox"]').click()
                    return True
            return False
        self.d.switch_to.default_content()
        self.wait(open_it, f"the {label!r} list")
        choice = self.wait(lambda: [o for o in self.d.find_elements("css selector", '[role="option"]')
                                    if o.text.strip() == option], f"{option!r} in the list")
        choice[0].click()

    # -- inside the link component's frame ------------------------------------------------------------
    def in_link(self, fn):
        """Run ``fn`` inside the component's iframe (found by its source), then come back out."""
        self.d.switch_to.default_content()
        frame = self.wait(lambda: next((f for f in self.d.find_elements("css selector", "iframe")
                                        if "board_link" in (f.get_attribute("src") or "")), None),
                          "the browser link component")
        self.d.switch_to.frame(frame)
        try:
            return fn()
        finally:
            self.d.switch_to.default_content()

    def connect_board(self, chooser: str = "pick") -> None:
        """Press the component's own Connect board button, the chooser answering ``chooser``."""
        def press():
            self.d.execute_script("window.__fsShim.next = arguments[0]", chooser)
            btn = self.wait(lambda: next((b for b in self.d.find_elements("css selector", "#connect")
                                          if b.is_displayed() and b.is_enabled()), None), "Connect board")
            btn.click()
        self.in_link(press)

    def link_status(self) -> str:
        return self.in_link(lambda: self.d.find_element("css selector", "#status").text)


def _open(browser, rig, query: str = "") -> Page:
    page = Page(browser, rig["url"])
    browser.get(f"{rig['url']}/device{query}")
    page.wait(lambda: "Device" in page.text() and "Board" in page.text(), "the Device step")
    return page


def _pyserial_verdicts(rig) -> tuple[str, str]:
    """What the same emulated board gives over plain pyserial: the self-test and the P windows' verdicts."""
    ref = load_reference(rig["export"])
    with Board(rig["emulator_path"], 115200, expected=ref.expected) as board:
        ready = board.ready(timeout=10)
        tested = compare(board.self_test(timeout=10), ref, dtype=ready.dtype)
        picks = list(range(min(DEFAULTS["device"]["windows"], ref.n_windows)))
        sent = compare([(i, board.predict(ref.window_units(i), timeout=10)) for i in picks], ref, dtype=ready.dtype)
    assert tested.agree and sent.agree
    return tested.summary().split(" (tolerance")[0], sent.summary().split(" (tolerance")[0]


def test_board_through_the_browser_matches_pyserial_and_survives_faults(rig, browser):
    self_test_verdict, windows_verdict = _pyserial_verdicts(rig)
    bridge = rig["bridge"]
    page = _open(browser, rig)

    # The component's frame may really use Web Serial: Chromium's own API is there and its permissions
    # policy lets this frame (same origin as the page) have it. The shim only stands in for the port.
    real = page.in_link(lambda: browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const s = window.__fsRealSerial;"
        "if (!s) return done('no navigator.serial');"
        "s.getPorts().then(p => done('ok ' + p.length), e => done(e.name + ': ' + e.message));"))
    assert real == "ok 0", f"Chromium's own Web Serial in the component frame: {real}"

    page.radio("Board", BROWSER)
    # the chooser cancelled, serial ports refused, the port held by another program: a message, then again
    page.connect_board("cancel")
    assert "port chooser was closed" in page.alert("No board was picked", "the cancelled chooser's message")
    page.connect_board("deny")
    page.alert("refused this page access to serial ports", "the refused permission's message")
    bridge.busy = True
    page.connect_board()
    page.alert("could not open the port", "the busy port's message")
    bridge.busy = False
    requests = page.in_link(lambda: browser.execute_script("return window.__fsShim.requests"))
    assert requests[0] == {"filters": [{"usbVendorId": 0x303A, "usbProductId": 0x1001},
                                       {"usbVendorId": 0x2886, "usbProductId": 0x0056},
                                       {"usbVendorId": 0x2886, "usbProductId": 0x8056}]}, requests

    # connected: the same Board, protocol and comparison as over pyserial, through the browser
    page.connect_board()
    page.wait(lambda: "Connected to this computer's USB (browser) at 115200 baud" in page.text(), "the connection")
    page.alert("The board is ready: model slice", "the ready line")
    assert "Connected: XIAO ESP32S3 (303A:1001)" in page.link_status()
    page.button("Run the self-test (T)")
    verdict = page.alert("Board and host", "the self-test verdict")
    assert verdict.startswith(self_test_verdict), (verdict, self_test_verdict)
    page.button("Send windows (P)")
    verdict = page.wait(lambda: next((a for a in page.alerts() if a.startswith(windows_verdict)), None),
                        "the P windows' verdict")
    assert "agree" in verdict

    # the cable pulled right after the board's first answer line: the page says so, not the deadline
    bridge.pull_on = b"FS RESULT"
    page.button("Run the self-test (T)")
    message = page.alert("disconnected", "the unplugged message", timeout=DEFAULTS["device"]["answer_timeout_s"] + WAIT)
    assert bridge.pulled.is_set()
    assert "this computer's USB (browser) disconnected" in message and "unplugged" in message, message
    assert not any("did not answer" in a for a in page.alerts()), page.alerts()
    # plugged back: Reconnect reopens the port the browser was given, without the chooser
    page.button("Reconnect")
    page.alert("The board is ready: model slice", "the ready line after reconnecting")
    assert len(page.in_link(lambda: browser.execute_script("return window.__fsShim.requests"))) == 4

    # a wrong baud rate: the UART's garbage arrives byte for byte and is named
    page.button("Disconnect")
    page.wait(lambda: "Disconnected: the port is free again." in page.link_status(), "the port let go")
    page.select("Baud rate", "9600")
    page.connect_board()
    page.alert("baud rate", "the wrong baud rate's message")
    assert page.in_link(lambda: browser.execute_script("return window.__fsShim.opens"))[-1] == 9600

    # a board that is not running the studio's firmware: the ready request times out with that said. The port
    # must be let go first (as above): reconnecting while the browser still holds the emulator's would answer
    # the ready request from there.
    page.button("Disconnect")
    page.wait(lambda: "Disconnected: the port is free again." in page.link_status(), "the port let go")
    page.select("Baud rate", "115200")
    other = PtyBoard(lambda b, line: b.write("Hello from another sketch\n"))
    rig["target"]["path"] = other.path
    try:
        page.connect_board()
        message = page.alert("did not answer the ready request", "the not-our-firmware message",
                             timeout=DEFAULTS["device"]["ready_timeout_s"] + WAIT)
        assert "studio's firmware" in message
    finally:
        rig["target"]["path"] = rig["emulator_path"]
        other.close()
    page.button("Disconnect")


def test_browser_without_web_serial_gets_one_sentence(rig, browser):
    page = _open(browser, rig, "?webserial=none")
    message = page.alert("cannot reach serial ports", "the no-Web-Serial sentence")
    assert "Chrome or Edge" in message
    page.d.switch_to.default_content()
    radio = page.d.find_element("css selector", '[data-testid="stRadio"]').text
    assert BROWSER not in radio and "Emulated XIAO" in radio
