"""`python -m studio export`: a real subprocess on a saved run; bad input exits 2 with one line on stderr."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ei_standin import StandIn
from tests.export_helpers import make_run

ROOT = Path(__file__).resolve().parent.parent
KEY = "ei_cli_test_key_0123456789"


def studio(*args: str, env: dict | None = None, timeout: float = 600, stdin: str | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), **(env or {}))
    full.pop("EI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "studio", "export", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def test_missing_run_exits_2_with_one_line(tmp_path):
    res = studio(str(tmp_path / "no-run"), "--out", str(tmp_path / "exp"), timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No trained run")
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow  # builds a model and starts TensorFlow in the CLI process
def test_edge_impulse_with_a_multi_step_model_is_refused_before_exporting(tmp_path):
    make_run(tmp_path / "run", horizon=4)
    res = studio(str(tmp_path / "run"), "--ei-api-key", "-", "--out", str(tmp_path / "exp"), timeout=120, stdin=KEY)
    assert res.returncode == 2
    assert "one output value" in res.stderr and "offline firmware bundle" in res.stderr
    assert KEY not in res.stderr + res.stdout
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_an_out_folder_that_is_not_an_export_is_kept(tmp_path):
    make_run(tmp_path / "run")
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep me")
    res = studio(str(tmp_path / "run"), "--out", str(keep), timeout=120)
    assert res.returncode == 2 and "not an export" in res.stderr
    assert (keep / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_export_writes_models_report_bundle_and_edge_impulse_library(tmp_path):
    make_run(tmp_path / "run", kind="lstm", backend="torch")
    out = tmp_path / "exp"
    with StandIn(key=KEY) as s:
        res = studio(str(tmp_path / "run"), "--int8", "--ei-api-key", "-", "--out", str(out),
                     env={"EI_API_ENDPOINT": s.url}, stdin=KEY + "\n")
        reached = s.find("POST", "/jobs/build-ondevice-model")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Converting to TensorFlow Lite" in res.stderr and "%]" in res.stderr
    names = sorted(p.name for p in out.iterdir())
    assert {"model_float32.tflite", "model_int8.tflite", "report.json", "windows.npz", "ei_library.zip"} <= set(names)
    assert any(n.endswith(".zip") and n != "ei_library.zip" for n in names), names  # the firmware bundle
    report = json.loads((out / "report.json").read_text())
    assert report["float32"]["max_abs_err"] is not None and report["int8"]["arena_bytes"] > 0
    assert "float32:" in res.stdout and "int8:" in res.stdout and "ms per forecast" in res.stdout
    assert reached and reached[0]["json"]["modelType"] == "int8"
    # The key reached the server in a header and nowhere else: not in output, not in any file written.
    assert KEY not in res.stdout + res.stderr
    for p in out.rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), p


@pytest.mark.slow
def test_the_bundle_type_asked_for_is_the_one_the_report_and_summary_name(tmp_path):
    """`--bundle-dtype` other than the recommendation: the zip, report.json's bundle_dtype and the summary's
    "bundle:" line name the same type, and the studio's own recommendation is kept beside it (issue V)."""
    make_run(tmp_path / "run", kind="gru", backend="keras")
    out = tmp_path / "exp"
    first = studio(str(tmp_path / "run"), "--int8", "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    recommended = json.loads((out / "report.json").read_text())["bundle_dtype"]
    other = "float32" if recommended == "int8" else "int8"
    res = studio(str(tmp_path / "run"), "--int8", "--bundle-dtype", other, "--out", str(out), "--force")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["bundle_dtype"] == other and report["recommended_dtype"] == recommended
    assert report["bundle_reason"].startswith("chosen with --bundle-dtype; the studio would ship " + recommended)
    bundle_line = next(line for line in res.stdout.splitlines() if line.strip().startswith("bundle:"))
    assert bundle_line.split()[1] == other, bundle_line
    assert [p.name for p in out.glob("forecast_studio_*.zip")] == [f"forecast_studio_gru_{other}.zip"]
