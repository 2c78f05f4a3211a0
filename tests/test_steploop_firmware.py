"""The step-loop firmware (fs_steploop.cpp behind fs_protocol.cpp, host g++) and the emulator's step loop
(the real one-step .tflite on TFLM) pass the same golden transcripts (tests/transcripts/step/).

The model is the committed stepsum export (tests/firmware_support.py): its one step adds this step's
scaled inputs to the state, so a looped window forecasts the window's sum, and the transcripts can state
every answer exactly; a state not carried, not reset, or a step skipped changes them.
"""
from __future__ import annotations

import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import serial

from core.board.emulator import Emulator
from core.firmware import load_bundle_spec, render_bundle, render_files
from tests.firmware_support import STEP_TRANSCRIPTS, STEPSUM_EXPORT, assert_transcript, read_lines, read_transcript

STEP_MAIN = Path(__file__).resolve().parent / "firmware_host" / "step_main.cpp"
CASES = sorted(STEP_TRANSCRIPTS.glob("*.txt"))
GXX = shutil.which("g++")


@pytest.fixture(scope="module")
def step_binary(tmp_path_factory) -> Path:
    if GXX is None:
        pytest.skip("g++ is not installed: the firmware's step loop cannot be compiled on this host")
    work = tmp_path_factory.mktemp("fwstep")
    zpath = render_bundle(STEPSUM_EXPORT, "float32", out=work / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(work)
    sketch = next(work.glob("*/forecast_studio"))
    exe = work / "fs_step_host"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(sketch / "fs_protocol.cpp"), str(sketch / "fs_steploop.cpp"), str(STEP_MAIN),
                           "-o", str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return exe


def test_there_are_step_transcripts():
    assert {c.name for c in CASES} >= {"loop.txt", "push.txt"}


def test_bundle_renders_the_step_loop():
    spec = load_bundle_spec(STEPSUM_EXPORT, "float32")
    assert spec.form == "step" and spec.state_size == 2 and spec.window == 3 and spec.features == 2
    files = render_files(spec)
    cfg = files["model_config.h"]
    assert "#define FS_STEP_LOOP 1" in cfg and "#define FS_STATE_SIZE 2" in cfg
    assert "fs_steploop.cpp" in files and "g_loop.Run" in files["fs_model.cpp"]
    # The sketch's sensor hook is there, clearly marked, and feeds the same Push as the R command.
    ino = files["forecast_studio.ino"]
    assert "YOUR SENSOR" in ino and "bool ReadSensor(float* reading)" in ino and "g_protocol.Push(g_reading)" in ino


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_host_compiled_step_loop_passes_transcript(step_binary, case):
    sent, expected = read_transcript(case)
    proc = subprocess.run([str(step_binary)], input=b"".join(sent), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert_transcript(expected, proc.stdout.decode("ascii").splitlines(), f"g++ step {case.name}")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_emulator_step_loop_passes_transcript(case):
    sent, expected = read_transcript(case)
    emu = Emulator(STEPSUM_EXPORT, dtype="float32")
    path = emu.start()
    try:
        with serial.Serial(path, 115200, timeout=0.2) as port:
            lines = read_lines(port, 1)
            for data in sent:
                port.write(data)
            lines += read_lines(port, len(expected) - 1)
            time.sleep(0.3)  # anything extra would show up now
            lines += [raw.decode("ascii").rstrip("\n") for raw in port.readlines()]
    finally:
        emu.stop()
    assert_transcript(expected, lines, f"emulator step {case.name}")


def test_push_window_of_one(step_binary):
    """Window 1 is not special for the loop or the ring: the first reading is already a full window."""
    from core.board.emulator import ProtocolEngine
    from core.steploop import StepRunner
    import dataclasses

    spec = load_bundle_spec(STEPSUM_EXPORT, "float32")
    one = dataclasses.replace(spec, window=1, windows=spec.windows[:, -1:], test_indices=spec.test_indices)
    engine = ProtocolEngine(one, StepRunner(one))
    got = engine.feed(b"R 12,-1\n")
    assert len(got) == 1 and got[0].endswith("y=12,-1"), got  # one step: the sum is the reading itself
    assert engine.feed(b"P 12,-1\n")[0].split(" y=")[1] == "12,-1"


def test_board_push_through_the_emulated_step_loop():
    """The host side of R (core.board.Board.push) against the emulated step-loop board: NEED records while
    the window fills, then the same forecast Board.predict gets for that window."""
    from core.board import Board
    from core.board.protocol import Err, Result

    emu = Emulator(STEPSUM_EXPORT, dtype="float32")
    path = emu.start()
    board = Board(path)
    try:
        board.ready()
        first = board.push([1, 2])
        assert isinstance(first, Err) and first.code == "NEED" and first.message.startswith("2 more readings")
        assert isinstance(board.push([3, 4]), Err)
        got = board.push([5, 6])
        assert isinstance(got, Result) and list(got.y) == [-11.0, 22.0]
        assert list(board.predict(np.array([[1, 2], [3, 4], [5, 6]])).y) == list(got.y)
    finally:
        board.close()
        emu.stop()
