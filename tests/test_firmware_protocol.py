"""The firmware's protocol code (host g++) and the device emulator pass the same golden transcripts.

fs_protocol.cpp is taken from a rendered bundle (with its rendered model_config.h and
test_windows.h), compiled with -Wall -Werror next to tests/firmware_host/main.cpp, and fed
each transcript's host lines on stdin. The emulator gets the same bytes over a real pty
through pyserial. The model is the committed slice export (see tests/firmware_support.py).
"""
from __future__ import annotations

import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import serial

from core.board.emulator import Emulator
from core.firmware import render_bundle
from tests.firmware_support import SLICE_BAND_EXPORT, SLICE_EXPORT, TRANSCRIPTS, assert_transcript, read_lines, read_transcript

HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"
# Top-level transcripts: a bundle without bands (a run from before them), whose lines must not change;
# bands/: the same model with calibrated bands, each FS RESULT carrying lo<level>=/hi<level>= after y=.
CASES = [(p, SLICE_EXPORT) for p in sorted(TRANSCRIPTS.glob("*.txt"))] + \
        [(p, SLICE_BAND_EXPORT) for p in sorted((TRANSCRIPTS / "bands").glob("*.txt"))]
GXX = shutil.which("g++")


def _case_id(case) -> str:
    return ("bands-" if case[1] == SLICE_BAND_EXPORT else "") + case[0].stem


def _compile(work: Path, export: Path) -> Path:
    zpath = render_bundle(export, "float32", out=work / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(work)
    sketch = next(work.glob("*/forecast_studio"))
    exe = work / "fs_host"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(sketch / "fs_protocol.cpp"), str(HOST_MAIN), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.fixture(scope="module")
def host_binaries(tmp_path_factory) -> dict[Path, Path]:
    if GXX is None:
        pytest.skip("g++ is not installed: the firmware protocol code cannot be compiled on this host")
    return {export: _compile(tmp_path_factory.mktemp("fw"), export) for export in (SLICE_EXPORT, SLICE_BAND_EXPORT)}


@pytest.fixture(scope="module")
def host_binary(host_binaries) -> Path:
    return host_binaries[SLICE_EXPORT]


def test_there_are_transcripts():
    assert {c.name for c, e in CASES if e == SLICE_EXPORT} >= {"basic.txt", "bad_lines.txt", "overlong.txt"}
    assert {c.name for c, e in CASES if e == SLICE_BAND_EXPORT} >= {"basic.txt", "overlong.txt"}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_host_compiled_protocol_passes_transcript(host_binaries, case):
    case, export = case
    sent, expected = read_transcript(case)
    proc = subprocess.run([str(host_binaries[export])], input=b"".join(sent), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert_transcript(expected, proc.stdout.decode("ascii").splitlines(), f"g++ {case.name}")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_emulator_passes_transcript(case):
    case, export = case
    sent, expected = read_transcript(case)
    emu = Emulator(export, dtype="float32")
    path = emu.start()
    try:
        with serial.Serial(path, 115200, timeout=0.2) as port:
            lines = read_lines(port, 1)  # the boot ready line
            for data in sent:
                port.write(data)
            lines += read_lines(port, len(expected) - 1)
            time.sleep(0.3)  # anything extra would show up now
            lines += [raw.decode("ascii").rstrip("\n") for raw in port.readlines()]
    finally:
        emu.stop()
    assert_transcript(expected, lines, f"emulator {case.name}")


def test_host_and_emulator_format_numbers_alike(host_binary):
    """Values that stress float parsing and %.7g formatting give identical text on both sides."""
    from core.board.emulator import ProtocolEngine, TflmRunner
    from core.firmware import load_bundle_spec

    lines = [b"P 0,0,0,0,123456.789,-0.000123456789\n", b"P 1,1,1,1,3.14159265358979,2.718281828e-3\n",
             b"P 0,0,0,0,1e-30,-9.99999999e+20\n", b"P 0,0,0,0,0.1,0.2\n"]
    host = subprocess.run([str(host_binary)], input=b"".join(lines), capture_output=True, timeout=30)
    host_lines = host.stdout.decode("ascii").splitlines()[1:]
    spec = load_bundle_spec(SLICE_EXPORT, "float32")
    engine = ProtocolEngine(spec, TflmRunner(spec))
    py_lines = [line for data in lines for line in engine.feed(data)]
    strip = [line.split(" y=")[1] for line in host_lines], [line.split(" y=")[1] for line in py_lines]
    assert strip[0] == strip[1] and len(strip[0]) == 4
