"""`python -m studio inspect`: JSON on stdout and exit 0, or one line on stderr and exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", "inspect", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_inspect_sample_prints_json(tmp_path):
    res = _inspect("sample_data/weather.csv")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["time_column"] == "time" and out["frequency"] == "h"
    assert "summary" in out["excluded"]


def test_inspect_with_overrides(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Zeit;Wert\n" + "".join(f"{d:02d}.01.2024;{d},5\n" for d in range(1, 29)))
    res = _inspect(str(path), "--delimiter", ";", "--decimal", ",", "--time-format", "%d.%m.%Y", "--fill", "ffill")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["frequency"] == "D" and out["numeric_columns"] == ["Wert"]


def test_inspect_bad_input_exits_2_with_one_line(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    xlsx = tmp_path / "book.csv"
    xlsx.write_bytes(b"PK\x03\x04" + bytes(300))
    for path, words in ((empty, "empty"), (xlsx, "Excel"), (tmp_path / "absent.csv", "no file")):
        res = _inspect(str(path))
        assert res.returncode == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
        assert res.stdout == ""
