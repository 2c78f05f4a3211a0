"""Issue 35, item 1: a port is a serial device, the studio's own emulator, a browser link or a URL from an
allow-list; no pyserial handler that reaches the host's files, ports or network is ever opened."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.board import Board
from core.board.ports import URL_SCHEMES, check_port
from core.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent

# Every pyserial URL handler but the allowed ones, in several spellings, each aimed at a file or the host.
HOSTILE = ["spy://loop://?file={f}", "spy://x?file={f}", "SPY://loop://?file={f}", "Spy://x?file={f}",
           "alt:///dev/ttyS0?class=Serial", "alt://{f}?class=PosixPollSerial", "hwgrep://ttyS", "hwgrep://.*",
           "cp2110://0001:0002", "ftdi://ftdi:232h/1", "file://{f}", " spy://x?file={f} ", "loop+spy://x"]


@pytest.mark.parametrize("template", HOSTILE)
def test_other_url_schemes_are_refused_and_touch_nothing(tmp_path, template):
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's notes")
    port = template.format(f=victim)
    with pytest.raises(StudioError, match="does not open") as err:
        Board(port)
    assert "socket://HOST:PORT" in err.value.fix
    assert victim.read_text() == "the user's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("kind", ["file", "folder", "missing", "fifo"])
def test_a_path_must_be_a_serial_device(tmp_path, kind):
    path = tmp_path / "thing"
    if kind == "file":
        path.write_text("keep me")
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    expected = "There is no serial port" if kind == "missing" else "is not a serial device"
    with pytest.raises(StudioError, match=expected):
        Board(str(path))
    if kind == "file":
        assert path.read_text() == "keep me"


@pytest.mark.parametrize("port", ["loop://", "socket://127.0.0.1:9", "rfc2217://127.0.0.1:9", "/dev/null",
                                  "/dev/ptmx", "spy://x?file=/tmp/x", "hwgrep://.*", "alt:///dev/null"])
def test_a_remote_participant_gets_only_the_browser_link(port):
    with pytest.raises(StudioError, match="not of yours"):
        check_port(port, remote=True)
    assert check_port("browser://abc", remote=True) == "browser://abc"


def test_the_allow_list_is_bridges_and_the_echo():
    assert set(URL_SCHEMES) == {"socket", "rfc2217", "loop"}
    assert check_port(" loop:// ") == "loop://"
    assert check_port("/dev/null") == "/dev/null"  # a character device: allowed to the local user


def test_the_cli_refuses_spy_in_one_line_and_leaves_the_file(tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's notes")
    proc = subprocess.run([sys.executable, "-m", "studio", "device", "--port", f"spy://x?file={victim}"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "does not open" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "the user's notes"


# Odd ports of the allowed kinds (issue 35, item 8): pyserial's own parsing of each failed in its internals'
# words (a KeyError 'x' as an internal error, "'<=' not supported between instances of 'int' and 'NoneType'",
# "'debug|info|warning|error'", "(25, 'Inappropriate ioctl for device')"). Each is one clear sentence now.
ODD = {
    "loop://?logging=x": "takes no option 'logging'",
    "loop://?logging=debug": "takes no option 'logging'",  # a log line per read poll, 20 a second
    "loop://?foo=1": "takes no option 'foo'",
    "loop://somewhere": "takes nothing but options",
    "socket://": "names no host",
    "socket://:4000": "names no host",
    "socket://host:notaport": "'notaport' is not a number from 1 to 65535",
    "socket://127.0.0.1:99999": "'99999' is not a number from 1 to 65535",
    "socket://127.0.0.1:0": "'0' is not a number from 1 to 65535",
    "socket://127.0.0.1": "names no port number",
    "socket://[::1": "host cannot be read",
    "socket://127.0.0.1:9/x": "means nothing",
    "socket://127.0.0.1:9#x": "means nothing",
    "socket://127.0.0.1:9?logging=info": "takes no option 'logging'",
    "rfc2217://": "names no host",
    "rfc2217://host:notaport": "'notaport' is not a number from 1 to 65535",
    "rfc2217://127.0.0.1:9?timeout=x": "timeout='x' is not a number of seconds",
    "rfc2217://127.0.0.1:9?timeout=nan": "timeout='nan' is not a number of seconds",
    "RFC2217://127.0.0.1:9?poll_modem&bogus": "takes no option 'bogus'",
    "/dev/null": "/dev/null is not a serial port: it takes no serial settings",
    "/dev/zero": "/dev/zero is not a serial port: it takes no serial settings",
    "\x00": "There is no serial port",
    " ": "No port was given",
}
INTERNAL = ("local variable", "KeyError", "'<='", "NoneType", "debug|info", "Inappropriate ioctl", "Errno 25",
            "Traceback", "report this", "Could not open port")


def _clear(text: str) -> None:
    assert not any(word in text for word in INTERNAL), text


@pytest.mark.parametrize("port", ODD)
def test_odd_ports_of_the_allowed_kinds_are_one_clear_sentence(port):
    with pytest.raises(StudioError) as err:
        Board(port)
    assert ODD[port] in err.value.problem, err.value
    _clear(str(err.value))


def test_good_bridge_addresses_pass_the_rule():
    for port in ("socket://127.0.0.1:4000", "socket://board.local:23", "rfc2217://[::1]:2217",
                 "rfc2217://h:1?ign_set_control&poll_modem&timeout=2.5", "loop://", "loop://?"):
        assert check_port(port) == port


def test_a_fault_inside_pyserial_reads_as_a_disconnect_not_its_text():
    # The UnboundLocalError "cannot access local variable 'fd'" came from PosixPollSerial.read (reached by
    # alt://...?class=PosixPollSerial, refused since): a read that times out leaves its loop variable unset.
    import serial

    from core.board.ports import disconnected_error, open_error

    master, slave = os.openpty()
    try:
        ser = serial.serialposix.PosixPollSerial(os.ttyname(slave), timeout=0.01)
        try:
            with pytest.raises(UnboundLocalError) as fault:
                ser.read(1)
        finally:
            ser.close()
    finally:
        os.close(master)
        os.close(slave)
    for err in (disconnected_error("/dev/ttyACM0", fault.value), open_error("/dev/ttyACM0", fault.value)):
        _clear(str(err))
        assert "/dev/ttyACM0" in err.problem and err.fix


@pytest.mark.parametrize("port", ["loop://?logging=x", "socket://host:notaport", "rfc2217://", "/dev/null"])
def test_the_cli_says_an_odd_port_in_one_line_and_exits_2(tmp_path, port):
    proc = subprocess.run([sys.executable, "-m", "studio", "device", "--port", port], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert ODD[port] in proc.stderr and not proc.stdout.strip()
    _clear(proc.stderr)


@pytest.mark.parametrize("port", ["loop://?logging=x", "socket://", "rfc2217://127.0.0.1:9?timeout=x", "/dev/null"])
def test_the_device_page_shows_an_odd_port_as_its_message(tmp_path, monkeypatch, port):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    at = AppTest.from_file(str(ROOT / "pages" / "7_device.py"), default_timeout=120).run()
    at.selectbox(key="device.port_choice").select("Other: type a port or URL").run()
    at.text_input(key="device.port_text").input(port).run()
    at.button(key="device.connect").click().run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1 and ODD[port] in errors[0], errors
    _clear(errors[0])
    assert "fs.board" not in at.session_state or at.session_state["fs.board"] is None
