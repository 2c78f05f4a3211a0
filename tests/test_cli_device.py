"""`python -m studio device`: a scripted board on a real pty, an export folder in the export's own shape."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from tests.pty_board import PtyBoard, firmware, make_reference, ready_line
from core.board.protocol import Expected

ROOT = Path(__file__).resolve().parent.parent


def write_export(ref, out: Path, **extra) -> Path:
    """report.json and windows.npz as core/export.py writes them (only the parts the Device step reads)."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "windows.npz", X=ref.X.astype(np.float32), y_host_scaled=ref.y_host.astype(np.float32),
             y_host=(ref.y_host * ref.scale + ref.center).astype(np.float32))
    inputs = [f"in{i}" for i in range(ref.X.shape[2])]
    report = {"model": {"kind": "lstm"}, "window": ref.expected.window, "features": ref.expected.features,
              "input_columns": inputs, "horizon": ref.expected.horizon, "targets": list(ref.targets),
              "residual": False,
              "scaler": {"kind": "minmax", "columns": inputs + list(ref.targets),
                         "center": [*ref.in_center, *ref.center], "scale": [*ref.in_scale, *ref.scale]},
              "dtypes": {"float32": {"max_abs_err": 1e-6, "max_abs_err_per_target": [1e-6] * len(ref.targets)}},
              "test_windows": list(ref.embedded), **extra}
    (out / "report.json").write_text(json.dumps(report))
    return out


@pytest.fixture
def setup(tmp_path):
    ref = make_reference()
    boards: list[PtyBoard] = []

    def board(handler=None) -> PtyBoard:
        b = PtyBoard(handler)
        boards.append(b)
        return b

    yield ref, write_export(ref, tmp_path / "export"), board
    for b in boards:
        b.close()


def test_agreeing_board_table_and_json(setup, capsys):
    ref, export, board = setup
    pty = board(firmware(ref))
    assert main(["device", "--port", pty.path, "--export", str(export), "--windows", "2", "--timeout", "2"]) == 0
    out = capsys.readouterr().out
    assert "board: model=lstm window=4 features=2 horizon=2 targets=1 dtype=float32" in out
    assert "Board and host agree on 5 window(s)" in out and "min / median / max" in out
    assert len([line for line in out.splitlines() if line.rstrip().endswith("yes")]) == 5 * 2

    assert main(["device", "--port", pty.path, "--export", str(export), "--windows", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"]["window"] == 4 and len(data["self_test"]) == 3 and data["windows"][0]["window"] == 0
    assert data["comparison"]["verdict"] == "agree" and data["comparison"]["max_abs_err"] < 1e-4


def test_disagreeing_board_exits_1(setup, capsys):
    ref, export, board = setup
    pty = board(firmware(ref, offset=1.0))
    assert main(["device", "--port", pty.path, "--export", str(export)]) == 1
    assert "DISAGREE" in capsys.readouterr().out


def test_without_export_shows_board_answers(setup, capsys):
    ref, _, board = setup
    pty = board(firmware(ref))
    assert main(["device", "--port", pty.path]) == 0
    out = capsys.readouterr().out
    assert "k=0 us=1500 y=" in out and "nothing to compare" in out


@pytest.mark.parametrize("argv,message", [
    (["device"], "error: No --port was given"),
    (["device", "--port", "/dev/ttyACM-missing"], "error: There is no serial port /dev/ttyACM-missing"),
    (["device", "--port", "loop://", "--windows", "2"], "error: --windows needs --export"),
    (["device", "--port", "loop://", "--export", "/nonexistent/export"], "has no report.json"),
    (["device", "--port", "loop://", "--timeout", "0"], "must be positive"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_mismatched_board_and_silent_board_exit_2(setup, capsys):
    ref, export, board = setup
    other = board(firmware(ref, ready=ready_line(Expected("gru", 48, 2, 2, 1))))
    assert main(["device", "--port", other.path, "--export", str(export)]) == 2
    assert "window: board 48, export 4" in capsys.readouterr().err
    silent = board()
    # The message says the deadline passed; how long a busy machine took to get there is not asserted.
    assert main(["device", "--port", silent.path, "--timeout", "0.5"]) == 2
    assert "did not answer" in capsys.readouterr().err


def _ei_text(values):
    lines = ["Edge Impulse standalone inferencing (Arduino)"]
    for v in values:
        lines += ["Timing: DSP 0 ms, inference 31 ms, anomaly 0 ms", "Predictions:", f"  value: {v:.5f}"]
    return "\r\n".join(lines) + "\r\n"


def test_edge_impulse_transcript(tmp_path, capsys):
    ref = make_reference(horizon=1, targets=1, embedded=())
    export = write_export(ref, tmp_path / "export", edge_impulse={"windows": [3]})
    good = tmp_path / "good.txt"
    good.write_text(_ei_text([ref.y_host[3, 0, 0]]))
    assert main(["device", "--transcript", str(good), "--export", str(export), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["comparison"]["rows"][0]
    assert row["window"] == 3 and row["host"] == pytest.approx(ref.y_host[3, 0, 0] * 20 + 10, rel=1e-6)
    bad = tmp_path / "bad.txt"
    bad.write_text(_ei_text([7.5]))
    assert main(["device", "--transcript", str(bad), "--export", str(export)]) == 1
    out = capsys.readouterr().out
    assert "matches no test window" in out and "NO" in out
    empty = tmp_path / "empty.txt"
    empty.write_text("hello\n")
    assert main(["device", "--transcript", str(empty), "--export", str(export)]) == 2


def test_listen_for_edge_impulse_board(tmp_path, capsys):
    ref = make_reference(horizon=1, targets=1, embedded=())
    export = write_export(ref, tmp_path / "export")
    pty = PtyBoard()
    stop = threading.Event()

    def sketch():
        # like the static-buffer sketch's loop: a reading every so often, whenever the host connects
        while not stop.wait(0.1):
            pty.write(_ei_text([ref.y_host[1, 0, 0]]))

    threading.Thread(target=sketch, daemon=True).start()
    try:
        assert main(["device", "--port", pty.path, "--listen", "0.6", "--export", str(export)]) == 0
        assert "agree" in capsys.readouterr().out
    finally:
        stop.set()
        pty.close()


def test_real_command_line(setup):
    """The same through `python -m studio`, as scripted checks call it."""
    ref, export, board = setup
    pty = board(firmware(ref))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "studio", "device", "--port", pty.path, "--export", str(export),
                          "--windows", "1", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["comparison"]["agree"] is True
    res = subprocess.run([sys.executable, "-m", "studio", "device", "--list"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip()


def test_cli_against_the_emulator(capsys):
    """The emulator prints its boot line before the host connects, then answers I: the late ready line must not
    be taken for a reboot."""
    emulator = pytest.importorskip("core.board.emulator")
    export = ROOT / "tests" / "transcripts" / "slice_export"
    with emulator.Emulator(export, dtype="float32") as emu:
        assert main(["device", "--port", emu.path, "--export", str(export), "--windows", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"]["model"] == "slice" and data["comparison"]["agree"] and len(data["comparison"]["rows"]) == 12


def _lying(ref, lie: str):
    """The scripted firmware, except that the self-test's answers are replaced by ``lie`` (lines, then DONE)."""
    honest = firmware(ref)

    def handle(board: PtyBoard, line: str) -> None:
        if line == "T":
            board.write(lie)
        else:
            honest(board, line)
    return handle


# Issue 35, item 8: without --export the answers were printed as read, even when they contradicted the board's
# own ready line (horizon 2 x 1 target here). Each is now a board fault in words, exit 2, nothing shown as a result.
@pytest.mark.parametrize("lie,words", [
    ("FS RESULT k=0 us=1 y=" + ",".join(["1.5"] * 2000) + "\nFS DONE n=1\n", "2000 value(s) for the self-test, where horizon 2 x targets 1 is 2"),
    ("FS RESULT k=0 us=1 y=1.5\nFS DONE n=1\n", "1 value(s) for the self-test"),
    ("FS RESULT k=0 us=1 y=1.5,2.5\nFS DONE n=1000000000000\n", "reported 1000000000000 self-test windows done but sent 1"),
    ("FS RESULT k=0 us=1 y=1.5,2.5\nFS RESULT k=1 us=1 y=1.5,2.5\nFS DONE n=1\n", "reported 1 self-test windows done but sent 2"),
    ("FS RESULT k=0 us=1 y=nan,2.5\nFS DONE n=1\n", "not numbers (nan)"),
    ("FS RESULT k=0 us=1 y=1.5,inf\nFS DONE n=1\n", "not numbers (inf)"),
])
def test_without_export_answers_against_the_ready_line_are_a_fault(setup, capsys, lie, words):
    ref, _, board = setup
    pty = board(_lying(ref, lie))
    assert main(["device", "--port", pty.path, "--timeout", "5"]) == 2
    captured = capsys.readouterr()
    assert "answered against its own ready line" in captured.err and words in captured.err, captured.err
    assert captured.err.count("\n") == 1 and "k=0 us=1 y=" not in captured.out


def test_a_forecast_against_the_ready_line_is_a_fault(setup, capsys):
    ref, export, board = setup
    honest = firmware(ref)

    def handle(b: PtyBoard, line: str) -> None:
        if line.startswith("P "):
            b.write("FS RESULT k=-1 us=5 y=1,2,3\n")
        else:
            honest(b, line)
    pty = board(handle)
    assert main(["device", "--port", pty.path, "--export", str(export), "--windows", "1", "--no-self-test"]) == 2
    assert "3 value(s) for a window (P), where horizon 2 x targets 1 is 2" in capsys.readouterr().err
