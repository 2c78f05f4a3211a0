"""The device emulator on a real pty, read with pyserial like a board.

Fast tests use the committed slice exports (tiny real .tflite files); the slow ones export a
real trained-run LSTM through core.export.export_run and check the emulator's self-test
against the host's forecasts within the export report's error, for float32 and int8.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from core.board.emulator import Emulator
from core.errors import StudioError
from tests.firmware_support import SLICE1_EXPORT, SLICE_EXPORT, real_export  # noqa: F401 (shared fixture)

ROOT = Path(__file__).resolve().parent.parent


def _lines(port: serial.Serial, n: int, timeout: float = 10.0) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        raw = port.readline()
        if raw:
            out.append(raw.decode("ascii").rstrip("\r\n"))
    return out


def _result_values(line: str) -> np.ndarray:
    assert line.startswith("FS RESULT "), line
    return np.array([float(v) for v in line.split(" y=")[1].split()[0].split(",")])  # the bands follow y=


def test_ready_p_and_bad_lines_over_pty():
    with Emulator(SLICE_EXPORT, dtype="float32") as emu, serial.Serial(emu.path, 115200, timeout=0.2) as port:
        assert _lines(port, 1)[0].startswith("FS READY model=slice window=3 features=2 horizon=1 targets=2 dtype=float32 arena=")
        port.write(b"P 1,2,3,4,5,6\n")
        assert _result_values(_lines(port, 1)[0]).tolist() == [5.0, 6.0]
        for bad in (b"P 1,2\n", b"P 1,2,x,4,5,6\n", b"P " + b"9" * 5000 + b"\n", b"P \xe2\x82\xac\n", b"hello\n"):
            port.write(bad)
            assert _lines(port, 1)[0].startswith("FS ERR "), bad[:20]
        port.write(b"I\n")
        assert _lines(port, 1)[0].startswith("FS READY ")
        port.write(b"T\n")
        got = _lines(port, 4)
        assert got[-1] == "FS DONE n=3"
        assert all(int(line.split(" us=")[1].split()[0]) >= 0 for line in got[:3])


def test_reconnecting_host_is_served_again():
    with Emulator(SLICE_EXPORT, dtype="float32") as emu:
        for _ in range(2):
            # Closed long enough for the stand-in board to notice: it boots again on the next open.
            with serial.Serial(emu.path, 115200, timeout=0.2) as port:
                assert _lines(port, 1)[0].startswith("FS READY model=slice")
                port.write(b"P 1,2,3,4,5,6\n")
                assert _lines(port, 1)[0].endswith(" y=5,6")
            time.sleep(0.3)
        # Reopened at once: whether or not a boot line comes, I and P are answered.
        with serial.Serial(emu.path, 115200, timeout=0.2) as port:
            port.write(b"I\nP 1,2,3,4,5,6\n")
            got = _lines(port, 3, timeout=2.0)
        assert any(line.startswith("FS READY model=slice") for line in got)
        assert [line for line in got if line.startswith("FS RESULT")][0].endswith(" y=5,6")


def test_stop_makes_the_port_vanish():
    emu = Emulator(SLICE_EXPORT, dtype="float32")
    path = emu.start()
    port = serial.Serial(path, 115200, timeout=0.2)
    assert _lines(port, 1)
    emu.stop()
    with pytest.raises(serial.SerialException):
        for _ in range(20):  # a board pulled out: reads fail instead of returning silence forever
            port.write(b"I\n")
            port.read(1)
            time.sleep(0.05)
    port.close()
    assert not os.path.exists(path) or not emu.running
    with pytest.raises(serial.SerialException):
        serial.Serial(path, 115200, timeout=0.2).read(1)


def test_edge_impulse_replay():
    with Emulator(SLICE1_EXPORT, dtype="float32", mode="edge-impulse", ei_interval_s=0.05) as emu, \
            serial.Serial(emu.path, 115200, timeout=0.2) as port:
        port.write(b"T\n")  # ignored: the static-buffer sketch does not read serial
        lines = _lines(port, 10)
    assert lines[0] == "Edge Impulse standalone inferencing (Arduino)"
    assert lines[1] == "run_classifier returned: 0"
    assert lines[2].startswith("Timing: DSP 0 ms, inference ") and lines[2].endswith(" ms, anomaly 0 ms")
    assert lines[3] == "Predictions:"
    # features[] holds the scaled window; the value is the model's scaled output: (14 - 10) / 2
    assert lines[4] == "  value: 2.00000"
    assert lines[9] == "  value: 2.75000"  # the next embedded window: (15.5 - 10) / 2


def test_edge_impulse_mode_needs_one_output_and_modes_are_checked():
    with pytest.raises(StudioError, match="one value"):
        Emulator(SLICE_EXPORT, dtype="float32", mode="edge-impulse")
    with pytest.raises(StudioError, match="mode"):
        Emulator(SLICE_EXPORT, dtype="float32", mode="wifi")
    with pytest.raises(StudioError, match="no int8 model"):
        Emulator(SLICE_EXPORT, dtype="int8")


def test_cli_prints_the_path_and_serves_until_interrupted():
    proc = subprocess.Popen([sys.executable, "-m", "studio", "emulate", str(SLICE_EXPORT), "--dtype", "float32"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), proc.stderr.read() if proc.poll() is not None else path
        with serial.Serial(path, 115200, timeout=0.2) as port:
            port.write(b"I\n")
            assert any(line.startswith("FS READY model=slice") for line in _lines(port, 2))
        proc.send_signal(signal.SIGINT)
        # A hang guard, not a timing check: on a loaded 2-core machine the interpreter's exit after Ctrl-C (the
        # TFLM runtime's teardown) once took over 20 s.
        assert proc.wait(180) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_bad_export_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "studio", "emulate", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "has no report.json" in proc.stderr and proc.stderr.count("\n") == 1


# ---------------------------------------------------------------- a real export (slow)

@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_self_test_matches_host_within_report_error(real_export, dtype):
    import json

    report = json.loads((real_export / "report.json").read_text())
    tolerance = report[dtype]["max_abs_err"] * 1.05 + 1e-5
    with Emulator(real_export, dtype=dtype) as emu, serial.Serial(emu.path, 115200, timeout=0.2) as port:
        ready = _lines(port, 1)[0]
        assert f"window=6 features=3 horizon=2 targets=1 dtype={dtype}" in ready
        port.write(b"T\n")
        lines = _lines(port, len(emu.spec.windows) + 1)
        assert lines[-1] == f"FS DONE n={len(emu.spec.windows)}"
        board = np.stack([_result_values(line) for line in lines[:-1]])
        host = emu.spec.host_predictions.reshape(len(board), -1)
        assert np.max(np.abs(board - host)) <= tolerance
        assert all(int(line.split(" us=")[1].split()[0]) > 0 for line in lines[:-1])
        # P with a window in the data's units answers the same as T for that window
        window = emu.spec.windows[1].reshape(-1)
        port.write(("P " + ",".join("%.9g" % v for v in window) + "\n").encode())
        p_line = _lines(port, 1)[0]
        assert p_line.startswith("FS RESULT k=-1 ")
        assert _result_values(p_line).tolist() == board[1].tolist()


def test_edge_impulse_replay_prints_the_band_like_the_sketch():
    import dataclasses

    from core.board.emulator import ProtocolEngine, TflmRunner
    from core.firmware import load_bundle_spec
    from tests.firmware_support import SLICE1_EXPORT

    spec = load_bundle_spec(SLICE1_EXPORT, "float32")
    assert spec.band_levels == () and "Band" not in " ".join(ProtocolEngine(spec, TflmRunner(spec)).edge_impulse_block(0))
    banded = dataclasses.replace(spec, band_levels=("80",), band_half_width=np.array([[[0.5]]], dtype=np.float32))
    lines = ProtocolEngine(banded, TflmRunner(banded)).edge_impulse_block(0)
    assert lines[-1] == "Band 80%: 13.5 .. 14.5 (temp)"  # window 0's forecast is 14 (the slice model)

