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
