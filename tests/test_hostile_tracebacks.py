"""Hostile class 6: tracebacks where one line is promised. Deeply nested JSON in any file a user hands over,
timestamps at pandas' limits, NaN weights at export, non-numeric manifest fields, and whatever else gets past
a check: each ends as one StudioError (one line on stderr, exit 2), never a traceback."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import project
from core.data import load_dataset
from core.errors import StudioError
from core.files import load_json
from core.firmware import load_bundle_spec
from core.runs import load_run, seal
from tests.firmware_support import SLICE_EXPORT
from tests.forecast_helpers import make_run, synthetic

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 100_000 + "]" * 100_000
NESTED = "{\"a\": " * 500 + "1" + "}" * 500  # parses, but is deeper than anything the studio writes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from core.windows import WindowSpec

    spec = WindowSpec(targets=("temp",), features=("temp", "hum"), window=8, horizon=1)
    return make_run(tmp_path_factory.mktemp("tb_run") / "run", synthetic(n=300), spec)[3]


def test_the_json_reader_bounds_depth_and_size(tmp_path):
    for text in (DEEP, NESTED):
        with pytest.raises(StudioError, match="nested"):
            load_json(text.encode(), "x.json", "fix")
    with pytest.raises(StudioError, match="far more"):
        load_json(b" " * 100, "x.json", "fix", max_bytes=10)
    with pytest.raises(StudioError, match="JSON object"):
        load_json(b"[1]", "x.json", "fix")


@pytest.mark.parametrize("name", ["run.json", "history.json", "metrics.json"])
def test_deep_json_in_a_run_is_one_error(run, tmp_path, name):
    dst = tmp_path / "deep"
    shutil.copytree(run.run_dir, dst)
    (dst / name).write_text(DEEP)
    if name != "run.json":
        manifest = json.loads((dst / "run.json").read_text())
        manifest["files"][name] = hashlib.sha256(DEEP.encode()).hexdigest()
        (dst / "run.json").write_text(json.dumps(seal(manifest)))
    with pytest.raises(StudioError, match=name):
        load_run(dst)


def test_deep_json_in_a_report_is_one_error(tmp_path):
    from core.board import load_reference
    from core.export import load_report

    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    (export / "report.json").write_text(DEEP)
    for reader in (load_report, load_reference, lambda p: load_bundle_spec(p, "float32")):
        with pytest.raises(StudioError, match="report.json"):
            reader(export)


def test_deep_json_and_odd_fields_in_a_project_manifest(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", DEEP)
    with pytest.raises(StudioError, match="manifest.json"):
        project.open_project(buf.getvalue(), workdir=tmp_path)
    # A manifest's count fields are shown to the user; a non-number shows as 0, never a ValueError.
    assert "(0 rows)" in project.describe({"dataset": {"name": "x", "rows": "many", "included": False}})
    assert "(0 rows)" in project.describe({"dataset": {"name": "x", "rows": 1e400, "included": False}})


def test_nan_weights_at_export_are_one_error(run, tmp_path):
    from core.export import export_run

    run.weights[0] = np.full_like(run.weights[0], np.nan)
    with pytest.raises(StudioError, match="NaN"):
        export_run(run, tmp_path / "export")
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("first,freq", [("1677-09-21 00:00", "h"), ("2262-04-10 00:00", "h")])
def test_timestamps_past_pandas_limits_are_one_error(tmp_path, first, freq):
    # Hourly readings that start before 1677-09-21 00:12 or run past 2262-04-11 23:47.
    start = np.datetime64(first)
    lines = ["time,v"] + [f"{start + np.timedelta64(h, 'h')},{h % 5}" for h in range(72)]
    path = tmp_path / "edge.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StudioError, match="outside 1677-09-21 to 2262-04-11"):
        load_dataset(path)
    proc = subprocess.run([sys.executable, "-m", "studio", "inspect", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_future_forecast_past_2262_is_one_error():
    import pandas as pd

    from core.forecast import future_index

    index = pd.date_range("2262-04-01", periods=10, freq="h").as_unit("ns")  # the datasets' time axis is ns
    with pytest.raises(StudioError, match="beyond 2262-04-11"):
        future_index(index, "h", 1, 1000)
