"""A board held by the participant's browser (core/board/weblink.py), driven by the same core.board.Board.

The browser's part is played by tests/browser_port.PortPump: a real pyserial port on a pty where the
scripted firmware answers, its bytes moved into the Link as the component moves them. What is real:
the Link, Board's reader, framing, deadlines and messages, the protocol and the comparison.
The studio server's WebSocket route is tested at the end, with a real WebSocket client as the browser.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
import serial

from core.board import weblink
from core.config import DEFAULTS
from core.board import Board, compare
from core.errors import StudioError
from tests.browser_port import PortPump
from tests.pty_board import PtyBoard, firmware, make_reference, wait_until

T = 1.0


@pytest.fixture
def ref():
    return make_reference()


@pytest.fixture
def rig():
    """(pty board, pump, Board) over a browser link; everything closed afterwards."""
    made: list = []

    def make(handler, baud: int = 115200, ack: bool = True, board_baud: int | None = None):
        pty = PtyBoard(handler)
        token = weblink.register()
        pump = PortPump(weblink.get(token), pty.path, baud=baud, ack=ack)
        board = Board(weblink.url(token), board_baud or baud, expected=None)
        made.extend([board, pump, pty])
        return pty, pump, board

    yield make
    for thing in made:
        thing.close()


def test_self_test_and_windows_agree_as_over_pyserial(ref, rig):
    pty, pump, board = rig(firmware(ref))
    ready = board.ready(timeout=T, expected=ref.expected)
    assert ready.model == "lstm" and board.name == weblink.LABEL
    through_browser = compare(board.self_test(timeout=T), ref, dtype=ready.dtype)
    pairs = [(i, board.predict(ref.window_units(i), timeout=T)) for i in range(3)]
    windows = compare(pairs, ref, dtype=ready.dtype)
    # the same board straight over pyserial gives the same verdicts and numbers
    direct_pty = PtyBoard(firmware(ref))
    try:
        with Board(direct_pty.path, 115200) as direct:
            direct_cmp = compare(direct.self_test(timeout=T), ref, dtype="float32")
            direct_pairs = compare([(i, direct.predict(ref.window_units(i), timeout=T)) for i in range(3)], ref)
    finally:
        direct_pty.close()
    assert through_browser.agree and windows.agree
    assert through_browser.summary().split(":")[0] == direct_cmp.summary().split(":")[0] == \
        "Board and host agree on 3 window(s)"
    assert [r.board for r in through_browser.rows] == [r.board for r in direct_cmp.rows]
    assert [r.board for r in windows.rows] == [r.board for r in direct_pairs.rows]
    assert "connected to this computer's USB (browser) at 115200 baud" in board.log_text()


def test_unplugged_mid_answer_is_named_at_once(ref, rig):
    box = {}

    def handler(b: PtyBoard, line: str) -> None:
        if line == "T":  # one result, then the cable goes
            b.write("FS RESULT k=0 us=5 y=1,2\n")
            wait_until(lambda: any("FS RESULT" in e.text for e in box["board"].log()))
            box["pump"].unplug()

    pty, pump, board = rig(handler)
    box.update(board=board, pump=pump)
    start = time.monotonic()
    with pytest.raises(StudioError) as err:
        board.self_test(timeout=30)  # far longer than the test takes: the loss must end the wait, not the clock
    assert time.monotonic() - start < 30
    text = str(err.value)
    assert "this computer's USB (browser) disconnected" in text and "unplugged" in text
    assert "did not answer" not in text and not board.connected


def test_board_that_stops_reading_makes_the_write_time_out(ref, rig, monkeypatch):
    monkeypatch.setitem(DEFAULTS["device"], "write_timeout_s", 0.2)
    pty, pump, board = rig(firmware(ref), ack=False)
    with pytest.raises(StudioError, match="not taking input"):
        board.send("I")


def test_wrong_baud_through_the_browser_is_named(rig):
    noisy = "FS READY model=lstm window=4 features=2 horizon=2 targets=1 dtype=float32 arena=1\n" * 8

    def handler(b: PtyBoard, line: str) -> None:
        b.write(noisy)

    pty, pump, board = rig(handler, baud=9600)
    with pytest.raises(StudioError, match="baud rate"):
        board.ready(timeout=T)


def test_not_our_firmware_times_out_with_the_firmware_named(rig):
    pty, pump, board = rig(lambda b, line: b.write("hello from some other sketch\n"))
    with pytest.raises(StudioError, match="did not answer the ready request") as err:
        board.ready(timeout=0.5)
    assert "studio's firmware" in str(err.value)


def test_opening_a_link_the_browser_never_connected(monkeypatch):
    with pytest.raises(StudioError, match="Connect board"):
        Board(weblink.url("no-such-token"), 115200)
    token = weblink.register()
    monkeypatch.setitem(DEFAULTS["device"], "browser_attach_s", 0.1)
    with pytest.raises(StudioError, match="did not connect the port"):
        Board(weblink.url(token), 115200)
    weblink.discard(token)


def test_a_link_is_attached_and_opened_once(ref):
    pty = PtyBoard(firmware(ref))
    token = weblink.register()
    link = weblink.get(token)
    pump = PortPump(link, pty.path)
    try:
        assert not link.attach(lambda m: None), "a second browser (another tab) may not take the link over"
        with Board(weblink.url(token), 115200) as board:
            with pytest.raises(StudioError, match="already in use"):
                Board(weblink.url(token), 115200)
            assert board.ready(timeout=T).model == "lstm"
        assert weblink.get(token) is None, "closing the board lets go of its link"
    finally:
        pump.close()
        pty.close()


def test_close_tells_the_browser_to_free_the_port():
    token = weblink.register()
    link = weblink.get(token)
    sent: list = []
    assert link.attach(sent.append)
    link.hello(0x303A, 0x1001, 115200)
    weblink.open_link(weblink.url(token), 115200).close()
    assert sent == [{"type": "close"}]
    with pytest.raises(serial.SerialException):
        link.read(1)


def test_flooding_board_is_bounded(monkeypatch):
    monkeypatch.setitem(DEFAULTS["device"], "browser_rx_cap_bytes", 1000)
    link = weblink.Link("x")
    link.feed(b"a" * 600)
    link.feed(b"b" * 600)
    assert link.in_waiting == 1000 and link.dropped == 200
    assert link.read(5000) == b"a" * 400 + b"b" * 600


def test_registry_is_bounded(monkeypatch):
    monkeypatch.setattr(weblink, "_MAX_LINKS", 3)
    monkeypatch.setattr(weblink, "_links", weblink.OrderedDict())
    tokens = [weblink.register() for _ in range(5)]
    assert len(weblink._links) == 3 and weblink.get(tokens[0]) is None and weblink.get(tokens[-1]) is not None


@pytest.mark.parametrize("name, stage, words", [
    ("NotFoundError", "request", "port chooser was closed"),
    ("SecurityError", "request", "refused this page access"),
    ("NotAllowedError", "open", "Site settings"),
    ("InvalidStateError", "open", "already open"),
    ("NetworkError", "open", "another program or tab"),
    ("NetworkError", "read", "unplugged"),
    ("NotSupportedError", "request", "Chrome or Edge"),
    ("BreakError", "read", "reading from it"),
    ("NotFoundError", "reopen", "Connect board"),
    ("RelayError", "relay", "relay"),
])
def test_browser_errors_are_messages(name, stage, words):
    err = weblink.browser_error(name, "some text", stage)
    assert words in str(err) and err.fix


def test_browser_port_description():
    assert "Seeed XIAO ESP32S3 (303A:1001" in weblink.BrowserPort(0x303A, 0x1001).describe()
    assert "not a XIAO" in weblink.BrowserPort(0x1A86, 0x7523).describe()
    assert weblink.parse_info({"usbVendorId": 0x2886, "usbProductId": 0x0056}) == (0x2886, 0x0056)
    assert weblink.parse_info({"usbVendorId": "x", "usbProductId": 1 << 20}) == (None, None)
    assert weblink.parse_info("nope") == (None, None)


# --- the studio server's route, with a real WebSocket --------------------------------------------------

@pytest.fixture
def relay_server():
    """studio/board_relay.py's route on a real uvicorn (no Streamlit: the route does not need it)."""
    import socket

    import uvicorn
    from starlette.applications import Starlette

    from studio.board_relay import routes

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes()), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 20)
    yield f"ws://127.0.0.1:{port}{weblink.RELAY['path']}"
    server.should_exit = True
    thread.join(timeout=10)


def _component(url: str, pty_path: str, origin: str | None, events: dict, stop: threading.Event):
    """What the component does, in Python: hello, pty bytes up, writes down and acknowledged."""
    import websockets

    async def run() -> None:
        headers = {"Origin": origin} if origin else None
        try:
            ws = await websockets.connect(url, origin=origin, max_size=None) if origin else \
                await websockets.connect(url, max_size=None)
        except Exception as exc:
            events["refused"] = str(exc)
            return
        ser = serial.Serial(pty_path, 115200, timeout=0)
        await ws.send(json.dumps({"type": "hello", "info": {"usbVendorId": 0x303A, "usbProductId": 0x1001},
                                  "baud": 115200}))
        written = 0

        async def up() -> None:
            while not stop.is_set():
                data = ser.read(4096)
                if data:
                    await ws.send(data)
                else:
                    await asyncio.sleep(0.01)
            await ws.send(json.dumps({"type": "lost", "name": "NetworkError", "message": "The device has been lost.",
                                      "stage": "read"}))
            await ws.close()

        task = asyncio.create_task(up())
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    ser.write(message)
                    written += len(message)
                    await ws.send(json.dumps({"type": "ack", "n": written}))
                else:
                    events.setdefault("controls", []).append(json.loads(message))
        except Exception:
            pass
        await task
        ser.close()

    asyncio.run(run())


@pytest.mark.slow
def test_route_relays_a_board_and_reports_the_unplug(ref, relay_server):
    pty = PtyBoard(firmware(ref))
    token = weblink.register()
    events: dict = {}
    stop = threading.Event()
    client = threading.Thread(target=_component, args=(f"{relay_server}?token={token}", pty.path,
                                                       "http://127.0.0.1:1", events, stop), daemon=True)
    # the Origin must be the studio's own host: a page elsewhere may not drive a board
    client.start()
    client.join(10)
    assert "403" in events.get("refused", ""), events
    host = relay_server.split("/")[2]
    client = threading.Thread(target=_component, args=(f"{relay_server}?token={token}", pty.path,
                                                       f"http://{host}", events, stop), daemon=True)
    client.start()
    try:
        board = Board(weblink.url(token), 115200, expected=ref.expected)
        assert weblink.get(token).port.describe().startswith("Seeed XIAO ESP32S3")
        board.ready(timeout=T)
        assert compare(board.self_test(timeout=T), ref).agree
        stop.set()  # the component saw the port lost
        with pytest.raises(StudioError, match="unplugged"):
            board.self_test(timeout=30)
        board.close()
    finally:
        stop.set()
        client.join(10)
        pty.close()


@pytest.mark.slow
def test_route_refuses_unknown_tokens(relay_server):
    events: dict = {}
    _component(f"{relay_server}?token=made-up", "/dev/null", None, events, threading.Event())
    assert "403" in events["refused"]


def test_a_frame_no_board_sends_closes_the_link(relay_server):
    """Issue 35, item 8: frames of 150 MB were taken whole (three links held 910 MB afterwards)."""
    import websockets

    from studio.board_relay import MAX_FRAME_BYTES

    token = weblink.register()
    link = weblink.get(token)
    result = {}

    async def run() -> None:
        async with websockets.connect(f"{relay_server}?token={token}", max_size=None) as ws:
            await ws.send(b"x" * 100)
            await ws.send(b"y" * (MAX_FRAME_BYTES + 1))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                result["code"] = exc.rcvd.code if exc.rcvd else None

    try:
        asyncio.run(run())
        assert result["code"] == 1009
        assert wait_until(lambda: link._error is not None, 10)
        assert "more than a board's" in str(link._error)
        assert len(link._rx) <= 100  # the big frame never reached the link
    finally:
        weblink.discard(token)
