"""The Device page under Streamlit's AppTest, talking to scripted boards on real pseudo-terminals."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.config import DEFAULTS
from core.board.protocol import Expected
from tests.pty_board import PtyBoard, firmware, make_reference, ready_line, wait_until
from tests.test_cli_device import _ei_text, write_export

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "7_device.py")
OTHER = "Other: type a port or URL"


@pytest.fixture(autouse=True)
def _fast(monkeypatch, tmp_path):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    # real boards get seconds; the scripted ones answer at once or never
    monkeypatch.setitem(DEFAULTS["device"], "ready_timeout_s", 0.6)
    monkeypatch.setitem(DEFAULTS["device"], "answer_timeout_s", 0.6)


@pytest.fixture
def ptys():
    made: list[PtyBoard] = []

    def make(handler=None) -> PtyBoard:
        b = PtyBoard(handler)
        made.append(b)
        return b

    yield made, make
    for b in made:
        b.close()


def _texts(at) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.success] + [e.value for e in at.warning] + [e.value for e in at.error]
    parts += [e.value for e in at.code]
    return "\n".join(str(p) for p in parts)


def _close(at) -> None:
    board = at.session_state["fs.board"] if "fs.board" in at.session_state else None
    if board is not None:
        board.close()


def _connect(at, port: str) -> AppTest:
    at.selectbox(key="device.port_choice").select(OTHER).run()
    at.text_input(key="device.port_text").input(port).run()
    return at.button(key="device.connect").click().run()


def _settle(at, cond, timeout: float = 120.0) -> AppTest:
    """Rerun the page until ``cond(at)``: AppTest does not fire the fragment's timer, so poll by hand.
    Returns as soon as it holds; the bound is only against a hang (3 s failed on a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        if cond(at):
            return at
        time.sleep(0.05)
    return at


def test_page_renders_without_export():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception, at.exception
    assert "No export yet" in _texts(at)
    assert at.button(key="device.connect") is not None
    assert OTHER in at.selectbox(key="device.port_choice").options


def test_connect_to_loop_url_without_export_shows_log():
    at = _connect(AppTest.from_file(PAGE, default_timeout=30).run(), "loop://")
    try:
        assert not at.exception, at.exception
        assert at.session_state["fs.board"].port == "loop://"
        # loop:// echoes the ready request back; no READY arrives, so the page says the board did not answer
        at = _settle(at, lambda a: "did not answer" in _texts(a))
        text = _texts(at)
        assert "> I" in text and "< I" in text and "did not answer the ready request" in text
        at.button(key="device.disconnect").click().run()
        assert "fs.board" not in at.session_state
    finally:
        _close(at)


def test_self_test_and_windows_against_export(tmp_path, ptys):
    made, make = ptys
    ref = make_reference()
    export = write_export(ref, tmp_path / "export")
    pty = make(firmware(ref))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        assert not at.exception, at.exception
        at = _connect(at, pty.path)
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        assert "Board: model lstm, window 4 × 2 features" in _texts(at)
        at.button(key="device.self_test").click().run()
        at = _settle(at, lambda a: "Board and host agree" in _texts(a))
        assert "Board and host agree on 3 window(s)" in _texts(at)
        assert "Emulated XIAO" not in _texts(at)  # a real port's times are the board's own
        assert len(at.get("plotly_chart")) == 1 and at.dataframe[0].value.shape[0] == 6
        at.multiselect(key="device.picks").set_value([0, 2]).run()
        at.button(key="device.send").click().run()
        at = _settle(at, lambda a: "on 2 window(s)" in _texts(a))
        assert "Board and host agree on 2 window(s)" in _texts(at)
    finally:
        _close(at)


def test_mismatch_unplug_and_reconnect(tmp_path, ptys):
    made, make = ptys
    ref = make_reference()
    export = write_export(ref, tmp_path / "export")
    wrong = make(firmware(ref, ready=ready_line(Expected("gru", 8, 2, 2, 1))))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        at = _settle(_connect(at, wrong.path), lambda a: "different model" in _texts(a))
        assert "window: board 8, export 4" in _texts(at)
        # unplug: the page names it and offers to reconnect
        wrong.unplug()
        board = at.session_state["fs.board"]
        assert wait_until(lambda: not board.connected)
        at.run()
        assert "disconnected" in _texts(at) and "Reconnect" in _texts(at)
        at.button(key="device.disconnect").click().run()
        good = make(firmware(ref))
        at = _settle(_connect(at, good.path), lambda a: "The board is ready" in _texts(a))
        assert not at.exception
    finally:
        _close(at)


def test_edge_impulse_transcript_on_the_page(tmp_path):
    ref = make_reference(horizon=1, targets=1, embedded=())
    export = write_export(ref, tmp_path / "export", edge_impulse={"windows": [2]})
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    at.text_area(key="device.ei_text").input(_ei_text([ref.y_host[2, 0, 0]])).run()
    at.button(key="device.ei_compare").click().run()
    assert not at.exception, at.exception
    assert "Board and host agree on 1 window(s)" in _texts(at)
    at.text_area(key="device.ei_text").input(_ei_text([42.0])).run()
    at.button(key="device.ei_compare").click().run()
    text = _texts(at)
    assert "DISAGREE" in text and "matches no test window" in text


def test_emulated_xiao_self_test_then_pulled_away_and_reconnected(tmp_path):
    pytest.importorskip("core.board.emulator")
    import json
    import shutil

    export = tmp_path / "slice_export"
    shutil.copytree(ROOT / "tests" / "transcripts" / "slice_export", export)
    report = json.loads((export / "report.json").read_text())
    report["budget"] = {"per_dtype": {"float32": {"latency_ms": 43.9}}}  # as core/export.py writes it
    (export / "report.json").write_text(json.dumps(report))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        at.radio(key="device.kind").set_value("Emulated XIAO (no hardware)").run()
        assert at.selectbox(key="device.emu_dtype").options == ["float32"]
        at.button(key="device.connect").click().run()
        assert not at.exception, at.exception
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        at.button(key="device.self_test").click().run()
        at = _settle(at, lambda a: "Board and host agree" in _texts(a))
        assert "Board and host agree on 3 window(s)" in _texts(at)
        # the emulator's times are this computer's: said, with the board estimate beside them
        assert "not the board's. The Export step estimates ~44 ms on the XIAO ESP32S3 (float32)" in _texts(at)
        # pull the emulator away: the board's closers include stopping it, so stop it behind the board's back
        board = at.session_state["fs.board"]
        board._closers[0]()
        assert wait_until(lambda: not board.connected)
        at.run()
        assert "disconnected" in _texts(at)
        at.button(key="device.reconnect").click().run()
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        assert at.session_state["fs.board"].connected
    finally:
        _close(at)


def test_emulated_edge_impulse_sketch_read_live():
    pytest.importorskip("core.board.emulator")
    export = ROOT / "tests" / "transcripts" / "slice1_export"
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        at.radio(key="device.kind").set_value("Emulated XIAO (no hardware)").run()
        at.radio(key="device.emu_mode").set_value("edge-impulse").run()
        at.button(key="device.connect").click().run()
        board = at.session_state["fs.board"]
        assert wait_until(lambda: any("value:" in e.text for e in board.log()), 5)
        at.run()
        at.button(key="device.ei_live").click().run()
        assert not at.exception, at.exception
        assert "Board and host agree" in _texts(at)
    finally:
        _close(at)


def test_emulated_xiao_shows_the_boards_band_next_to_the_hosts(tmp_path):
    pytest.importorskip("core.board.emulator")
    import shutil

    export = tmp_path / "slice_band_export"
    shutil.copytree(ROOT / "tests" / "transcripts" / "slice_band_export", export)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    try:
        at.radio(key="device.kind").set_value("Emulated XIAO (no hardware)").run()
        at.button(key="device.connect").click().run()
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        at.button(key="device.self_test").click().run()
        at = _settle(at, lambda a: "Board and host agree" in _texts(a))
        assert not at.exception, at.exception
        assert "Bars: the 80% prediction band the board printed" in _texts(at)
        table = at.dataframe[-1].value
        assert list(table.loc[0, ["board 80% low", "board 80% high", "host 80% low", "host 80% high"]]) == ["13.5", "14.5", "13.5", "14.5"]
        assert "board 95% high" in table.columns
    finally:
        _close(at)


def test_emulated_board_starts_on_the_type_the_bundle_ships(tmp_path):
    """Issue V: the emulated XIAO starts on the model type the Export step's bundle ships (report.json's
    bundle_dtype: the recommendation, or a person's pick), not on the first in the list; and the arena the board
    announces is explained in the Export page's words."""
    pytest.importorskip("core.board.emulator")
    import json
    import shutil

    export = tmp_path / "slice_export"
    shutil.copytree(ROOT / "tests" / "transcripts" / "slice_export", export)
    shutil.copy(export / "model_float32.tflite", export / "model_int8.tflite")
    report = json.loads((export / "report.json").read_text())
    report["int8"] = dict(report["float32"], path="model_int8.tflite")
    report["bundle_dtype"], report["bundle_reason"] = "int8", "chosen on the Export page"
    (export / "report.json").write_text(json.dumps(report))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["fs.export_dir"] = str(export)
    at.run()
    at.radio(key="device.kind").set_value("Emulated XIAO (no hardware)").run()
    assert at.selectbox(key="device.emu_dtype").value == "int8"
    # A person's own pick on this page then sticks for this export.
    at.selectbox(key="device.emu_dtype").set_value("float32").run()
    assert at.selectbox(key="device.emu_dtype").value == "float32"
    try:
        at.button(key="device.connect").click().run()
        at = _settle(at, lambda a: "The board is ready" in _texts(a))
        assert "Arena: " in _texts(at) and "margin" in _texts(at)
        # The export re-made with another arena while the board still runs the old bundle: said, not explained away.
        report = json.loads((export / "report.json").read_text())
        report["float32"]["arena_bytes"] += 4096
        (export / "report.json").write_text(json.dumps(report))
        at.run()
        assert "flash the bundle again" in _texts(at) and "Arena: " not in _texts(at)
    finally:
        _close(at)
