"""The pieces every stage shares: the user-facing error, atomic writes, the CLI's error contract."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.frequency import natural_period
from core.errors import StudioError
from core.files import atomic_dir, atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent


def test_studio_error_is_one_line_with_problem_and_fix():
    err = StudioError("The file is empty.\n", "Upload a CSV with a header row and data rows.")
    assert str(err) == "The file is empty. Upload a CSV with a header row and data rows."
    assert "\n" not in str(err)
    assert str(StudioError("No fix given")) == "No fix given"


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_dir_leaves_nothing_when_interrupted(tmp_path):
    out = tmp_path / "export"
    with atomic_dir(out, "export") as tmp:
        (tmp / "model.tflite").write_bytes(b"1")
    assert (out / "model.tflite").read_bytes() == b"1"
    with pytest.raises(RuntimeError):
        with atomic_dir(out, "export") as tmp:
            (tmp / "model.tflite").write_bytes(b"half")
            raise RuntimeError("interrupted")
    # the previous complete export is untouched and no temporary folder is left behind
    assert (out / "model.tflite").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


@pytest.mark.parametrize("freq,period", [("h", 24), ("3h", 8), ("D", 7), ("W-SUN", 52), ("MS", 12),
                                         ("QS-DEC", 4), ("QE-DEC", 4), ("15min", 96), (None, None), ("not-a-freq", None)])
def test_natural_period(freq, period):
    assert natural_period(freq) == period


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_cli_help_lists_commands():
    res = _cli("--help")
    assert res.returncode == 0
    assert "python -m studio" in res.stdout


def test_cli_unknown_command_exits_2():
    res = _cli("no-such-command")
    assert res.returncode == 2
    assert "invalid choice" in res.stderr
