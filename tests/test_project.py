"""core.project: one zip restores every step; damaged, newer, unsafe or mismatched files are refused
with a message, and nothing in a project file can run code."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("core.metrics", reason="core.metrics (issues C/J) has not landed yet")

from core import forecast, project
from core.config import DEFAULTS
from core.errors import StudioError
from core.runs import seal
from core.windows import SplitSpec, WindowSpec
from tests.forecast_helpers import make_run, synthetic

SPEC = WindowSpec(targets=("temp",), features=("temp", "hum"), calendar=("hour",), window=12, horizon=2)
SPLIT = SplitSpec(train=0.6, val=0.2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained run and its project zip, with and without the data."""
    pytest.importorskip("core.data", reason="core.data (issue A) has not landed yet")
    ds = synthetic(n=400, name="Wetterstation Zürich.csv")
    windows, model_spec, config, run = make_run(tmp_path_factory.mktemp("run"), ds, SPEC, train=True, split=SPLIT)
    args = (ds, SPEC, SPLIT, "minmax", model_spec, config, run)
    return {"ds": ds, "windows": windows, "run": run, "args": args,
            "with_data": project.project_bytes(*args, include_data=True),
            "without_data": project.project_bytes(*args, include_data=False)}


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _relisted(entries: dict[str, bytes]) -> dict[str, bytes]:
    """The entries with a manifest whose checksums match them again (a careful tamperer)."""
    manifest = json.loads(entries["manifest.json"])
    manifest["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
                         for n, d in entries.items() if n != "manifest.json"}
    return {**entries, "manifest.json": json.dumps(manifest).encode()}


@pytest.mark.slow
def test_round_trip_with_data_gives_the_same_metrics(saved, tmp_path):
    opened = project.open_project(saved["with_data"], workdir=tmp_path)
    ds, run = saved["ds"], saved["run"]
    assert opened.dataset.frame.equals(ds.frame)
    assert opened.dataset.fingerprint == ds.fingerprint and opened.dataset.name == ds.name
    assert opened.dataset.freq == "h"
    assert opened.window_spec == SPEC and opened.split == SPLIT and opened.scaler_kind == "minmax"
    assert opened.model_spec == run.model_spec and opened.train_config == run.train_config
    assert opened.run_dir.is_relative_to(tmp_path)
    for a, b in zip(opened.run.weights, run.weights):
        np.testing.assert_array_equal(a, b)
    # the restored windows and run score exactly as the original did
    again = forecast.test_report(opened.run, opened.windows)
    for key in ("mae", "rmse"):
        assert again.metrics["model"][key] == pytest.approx(run.metrics["model"][key], rel=1e-6)
    assert opened.run.metrics == run.metrics
    assert again.metrics["verdict"] == run.metrics["verdict"]
    assert "with its data" in project.describe(opened.manifest)


@pytest.mark.slow
def test_save_project_writes_atomically(saved, tmp_path):
    target = tmp_path / "p.zip"
    target.write_bytes(b"old")
    project.save_project(target, *saved["args"], include_data=False)
    assert zipfile.is_zipfile(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zip"]
    names = set(_entries(target.read_bytes()))
    assert "dataset.csv" not in names and {"manifest.json", "run/run.json", "run/weights.npz",
                                           "run/model.weights.h5", "run/metrics.json", "run/history.json",
                                           "run/samples.npz"} <= names
    assert project.open_project(target, current_dataset=saved["ds"], workdir=tmp_path / "w").run.metrics == saved["run"].metrics


@pytest.mark.slow
def test_fingerprint_only_needs_the_same_dataset(saved, tmp_path):
    data = saved["without_data"]
    with pytest.raises(StudioError, match="does not contain its data; it expects the dataset 'Wetterstation Zürich.csv'"):
        project.open_project(data, workdir=tmp_path)
    other = synthetic(n=400, name="other.csv", seed=1)
    with pytest.raises(StudioError, match="expects the dataset 'Wetterstation Zürich.csv'.*loaded dataset is 'other.csv'"):
        project.open_project(data, current_dataset=other, workdir=tmp_path)
    opened = project.open_project(data, current_dataset=saved["ds"], workdir=tmp_path)
    assert opened.dataset is saved["ds"]
    assert opened.run.metrics == saved["run"].metrics


@pytest.mark.slow
@pytest.mark.parametrize("case,message", [
    ("not_zip", "not a zip archive"),
    ("truncated", "not a zip archive|damaged"),
    ("no_manifest", "no manifest.json"),
    ("other_format", "not a Forecast Studio project"),
    ("newer", "newer Forecast Studio"),
    ("missing", "missing 'run/metrics.json'"),
    ("tampered", "changed or damaged"),
    ("extra", "does not list"),
    ("bad_csv", "does not match the data the model was trained on"),
])
def test_bad_project_files_are_refused(saved, tmp_path, case, message):
    good = saved["with_data"]
    entries = _entries(good)
    manifest = json.loads(entries["manifest.json"])
    if case == "not_zip":
        data = b"date,temp\n2024-01-01,1\n"
    elif case == "truncated":
        data = good[: len(good) // 2]
    elif case == "no_manifest":
        data = _zip({k: v for k, v in entries.items() if k != "manifest.json"})
    elif case == "other_format":
        data = _zip({**entries, "manifest.json": json.dumps({**manifest, "format": "something-else"}).encode()})
    elif case == "newer":
        data = _zip({**entries, "manifest.json": json.dumps({**manifest, "format_version": project.FORMAT_VERSION + 1}).encode()})
    elif case == "missing":
        data = _zip({k: v for k, v in entries.items() if k != "run/metrics.json"})
    elif case == "tampered":
        m = json.loads(entries["run/metrics.json"])
        m["model"]["mae"] = 0.0
        data = _zip({**entries, "run/metrics.json": json.dumps(m).encode()})
    elif case == "extra":
        data = _zip({**entries, "run/notes.txt": b"hello"})
    else:  # a re-listed manifest cannot hide changed data: the content hash catches it
        csv = entries["dataset.csv"].decode().splitlines()
        csv[5] = csv[5].rsplit(",", 1)[0] + ",999"
        data = _zip(_relisted({**entries, "dataset.csv": ("\n".join(csv) + "\n").encode()}))
    with pytest.raises(StudioError, match=message) as err:
        project.open_project(data, workdir=tmp_path)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing unpacked from a refused file


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "run/../../evil.txt", "C:/evil.txt", "run\\..\\evil.txt"])
def test_zip_slip_entries_are_refused(tmp_path, name):
    data = _zip({"manifest.json": b"{}", name: b"x"})
    work = tmp_path / "work"
    with pytest.raises(StudioError, match="unsafe path"):
        project.open_project(data, workdir=work)
    assert not (tmp_path / "evil.txt").exists() and not work.exists()


def test_symlink_entries_are_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", b"{}")
        info = zipfile.ZipInfo("run/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(StudioError, match="link"):
        project.open_project(buf.getvalue(), workdir=tmp_path)


def test_zip_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(DEFAULTS["forecast"], "project_max_entry_mb", 1)
    data = _zip({"manifest.json": b"{}", "dataset.csv": b"0" * (3 * 1024 * 1024)})
    assert len(data) < 20_000  # compresses to almost nothing: the ratio is the attack
    with pytest.raises(StudioError, match="unpacks to"):
        project.open_project(data, workdir=tmp_path)


def test_lying_size_header_is_caught(tmp_path):
    """A header that declares a small size while the stream inflates to more must not be trusted."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.json", b"{}")
        zf.writestr("dataset.csv", b"A" * 5000)
    raw = bytearray(buf.getvalue())
    # patch the central directory's uncompressed size of dataset.csv to 10 bytes
    cd = raw.rfind(b"PK\x01\x02")
    assert raw[cd + 46: cd + 46 + 11] == b"dataset.csv"
    raw[cd + 24: cd + 28] = (10).to_bytes(4, "little")
    with pytest.raises(StudioError):
        project.open_project(bytes(raw), workdir=tmp_path)


class _Boom:
    """Unpickling this would create a marker file: proof that code ran."""

    marker: Path

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.slow
def test_pickle_payloads_are_never_unpickled(saved, tmp_path):
    marker = tmp_path / "pwned"
    boom = _Boom()
    boom.marker = marker
    entries = _entries(saved["with_data"])
    # 1. an object array inside samples.npz, with every checksum (zip manifest and run.json) fixed up
    evil = io.BytesIO()
    np.savez(evil, X_rep=np.array([boom], dtype=object), X_test=np.zeros(1))
    evil_bytes = evil.getvalue()
    assert b"touch" in evil_bytes  # the payload really is a pickle
    run_json = json.loads(entries["run/run.json"])
    run_json["files"]["samples.npz"] = hashlib.sha256(evil_bytes).hexdigest()
    run_json = seal(run_json)
    data = _zip(_relisted({**entries, "run/samples.npz": evil_bytes, "run/run.json": json.dumps(run_json).encode()}))
    with pytest.raises(StudioError, match="samples.npz"):
        project.open_project(data, workdir=tmp_path / "w1")
    # 2. a pickle file riding along, listed and checksummed
    import pickle

    data = _zip(_relisted({**entries, "run/model.pkl": pickle.dumps(boom)}))
    with pytest.raises(StudioError, match="model.pkl"):
        project.open_project(data, workdir=tmp_path / "w2")
    assert not marker.exists()
    assert not (tmp_path / "w2").exists()


@pytest.mark.slow
def test_saving_refuses_a_run_folder_with_foreign_files(saved, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(saved["run"].run_dir, copy)
    (copy / "model.pt").write_bytes(b"\x80\x04")
    ds, spec, split, kind, ms, cfg, run = saved["args"]
    with pytest.raises(StudioError, match="model.pt"):
        project.project_bytes(ds, spec, split, kind, ms, cfg, copy, include_data=False)


def test_default_filename_is_safe():
    assert project.default_filename("Wetterstation Zürich.csv") == "Wetterstation-Zürich-project.zip"
    assert project.default_filename("../../x") == "x-project.zip"
