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


def test_inspect_reads_issue_31_files_and_its_options_change_the_reading(tmp_path):
    """Issue 31: quoted thousands, Year + Quarter, notes above the header; each option changes the reading."""
    births = tmp_path / "births.csv"
    births.write_text("date,births\n" + "".join(f'2020-01-{d:02d},"8,{d:03d}"\n' for d in range(1, 29)))
    out = json.loads(_inspect(str(births)).stdout)
    assert out["thousands"] == "," and out["columns"][1]["min"] == 8001
    assert any("--thousands none" in p for p in out["problems"])
    out = json.loads(_inspect(str(births), "--thousands", "none").stdout)
    assert out["columns"][1]["max"] == 8.028
    gas = tmp_path / "gas.csv"
    gas.write_text("Year,Quarter,Gas\n" + "".join(f"{y},{q},{y % 7 + q}\n" for y in range(1960, 1980) for q in range(1, 5)))
    out = json.loads(_inspect(str(gas)).stdout)
    assert out["rows"] == 80 and out["frequency"] == "QS" and out["time_column"] == "Year+Quarter"
    out = json.loads(_inspect(str(gas), "--time-col", "Year").stdout)
    assert out["rows"] == 20 and any("75%" in p and "--time-cols" in p for p in out["problems"])
    out = json.loads(_inspect(str(gas), "--time-cols", "Year,Quarter").stdout)
    assert out["rows"] == 80
    logger = tmp_path / "logger.csv"
    logger.write_text("Logger v2\n10 min,north-central Wisconsin,x\ntime,temp,rh\n"
                      + "".join(f"2024-05-01 {h:02d}:00,{h * 0.5},{h}\n" for h in range(24)))
    out = json.loads(_inspect(str(logger)).stdout)
    assert out["time_column"] == "time" and out["numeric_columns"] == ["temp", "rh"] and out["skipped_lines"] == 2
    out = json.loads(_inspect(str(logger), "--skip-rows", "1", "--header", "yes").stdout)
    assert out["time_column"] != "time"
    res = _inspect(str(logger), "--thousands", "tilde")
    assert res.returncode == 2 and "--thousands" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_train_takes_the_same_format_options():
    res = subprocess.run([sys.executable, "-m", "studio", "train", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0
    for option in ("--delimiter", "--thousands", "--skip-rows", "--time-cols", "--decimal", "--header"):
        assert option in res.stdout
