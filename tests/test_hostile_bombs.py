"""Hostile class 2: bombs past the guard. An .npz/.npy declares its arrays' sizes, and numpy allocates what is
declared; a project zip may honestly declare huge entries. Every array from a file a user can hand over (run
directory, export folder, project) goes through core/arrays.py, which checks declared shape x item size against
a budget before anything is allocated; what a session may unpack from projects is capped; a refused project
leaves nothing behind."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import arrays, project
from core.errors import StudioError
from core.firmware import load_bundle_spec
from core.runs import load_run, seal
from tests.firmware_support import SLICE_EXPORT
from tests.forecast_helpers import make_run, synthetic

GB = 1024 ** 3
SPEC = None


def npy_bomb(shape=(2 ** 28,), dtype="<f8", data: bytes = b"\0" * 64) -> bytes:
    """An .npy whose header declares shape x dtype (2 GB by default) but which holds a few bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def npz_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2 ** 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.windows import WindowSpec

    base = tmp_path_factory.mktemp("bomb_run")
    spec = WindowSpec(targets=("temp",), features=("temp", "hum"), window=8, horizon=1)
    _w, _m, _c, run = make_run(base / "run", synthetic(n=300), spec)
    return run.run_dir


def _plant(src: Path, dst: Path, name: str, data: bytes) -> Path:
    shutil.copytree(src, dst)
    (dst / name).write_bytes(data)
    manifest = json.loads((dst / "run.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (dst / "run.json").write_text(json.dumps(seal(manifest)))
    return dst


def test_the_guard_reads_declared_sizes_without_allocating():
    bomb = npz_of({"X.npy": npy_bomb()})
    assert len(bomb) < 2000
    with pytest.raises(StudioError, match="declares"):
        arrays.load_npz(bomb, what="windows.npz")
    assert _peak_mb(lambda: pytest.raises(StudioError, arrays.load_npz, bomb)) < 20
    # Honestly declared and held, but over the budget: refused before loading.
    honest = npz_of({"X.npy": npy_bomb((3, 1024, 1024), "<f8", b"\0" * (3 * 8 * 2 ** 20))})
    with pytest.raises(StudioError, match="over the 16 MB"):
        arrays.load_npz(honest, budget_mb=16)
    assert arrays.load_npz(honest, budget_mb=64)["X"].shape == (3, 1024, 1024)
    # Object arrays (pickles) and non-array members never load.
    with pytest.raises(StudioError, match="pickle"):
        arrays.load_npz(npz_of({"X.npy": npy_bomb((1,), "|O", b"\0" * 8)}))
    with pytest.raises(StudioError, match="not an array"):
        arrays.load_npz(npz_of({"evil.pkl": b"x"}))
    # A header far longer than numpy writes is not parsed at all.
    with pytest.raises(StudioError):
        arrays.load_npz(npz_of({"X.npy": b"\x93NUMPY\x02\x00" + (10 ** 6).to_bytes(4, "little") + b" " * 10 ** 6}))


def test_a_run_whose_weights_declare_2_gb_is_refused_without_allocating_them(run_dir, tmp_path):
    bad = _plant(run_dir, tmp_path / "bomb", "weights.npz", npz_of({"w000.npy": npy_bomb()}))
    assert (bad / "weights.npz").stat().st_size < 2000
    with pytest.raises(StudioError, match="weights.npz.*declares"):
        load_run(bad)
    assert _peak_mb(lambda: pytest.raises(StudioError, load_run, bad)) < 200

    bad = _plant(run_dir, tmp_path / "samples", "samples.npz", npz_of({"X_test.npy": npy_bomb()}))
    with pytest.raises(StudioError, match="samples.npz.*declares"):
        load_run(bad)


def test_an_export_folder_whose_windows_declare_2_gb_is_refused(tmp_path):
    from core.board import load_reference

    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    (export / "windows.npz").write_bytes(npz_of({"X.npy": npy_bomb(), "y_host_scaled.npy": npy_bomb()}))
    assert _peak_mb(lambda: pytest.raises(StudioError, load_bundle_spec, export, "float32")) < 200
    with pytest.raises(StudioError, match="windows.npz.*declares"):
        load_bundle_spec(export, "float32")
    with pytest.raises(StudioError, match="windows.npz.*declares"):
        load_reference(export)


def _big_zip(entries: dict[str, int]) -> bytes:
    """A zip of honestly declared zero-filled entries (name -> bytes), written in chunks."""
    buf = io.BytesIO()
    chunk = b"\0" * 2 ** 20
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"{}")
        for name, size in entries.items():
            with zf.open(name, "w", force_zip64=True) as fh:
                for _ in range(size // len(chunk)):
                    fh.write(chunk)
    return buf.getvalue()


def test_what_a_session_may_unpack_from_projects_is_capped(tmp_path):
    data = _big_zip({"run/a.npz": 40 * 2 ** 20, "run/b.npz": 40 * 2 ** 20})
    assert len(data) < 400_000  # 80 MB declared honestly in a small zip
    work = tmp_path / "session" / "projects"
    with pytest.raises(StudioError, match="may still unpack"):
        project.open_project(data, workdir=work, max_unpack_mb=50)
    assert not work.exists() or not any(work.iterdir())
    # What the session already unpacked counts: with 45 MB there, a 10 MB project no longer fits under 50 MB.
    work.mkdir(parents=True, exist_ok=True)
    (work / "project-earlier").mkdir()
    (work / "project-earlier" / "samples.npz").write_bytes(b"\0" * 45 * 2 ** 20)
    small = _big_zip({"run/a.npz": 10 * 2 ** 20})
    with pytest.raises(StudioError, match="may still unpack"):
        project.open_project(small, workdir=work, max_unpack_mb=50)
    from core.config import DEFAULTS

    assert int(DEFAULTS["forecast"]["project_max_unpack_mb"]) > 0


@pytest.mark.slow
def test_a_refused_project_leaves_no_unpacked_folder(tmp_path):
    from core.windows import SplitSpec, WindowSpec

    spec = WindowSpec(targets=("temp",), features=("temp", "hum"), window=8, horizon=1)
    split = SplitSpec(train=0.6, val=0.2)
    ds = synthetic(n=300)
    windows, model_spec, config, run = make_run(tmp_path / "run", ds, spec, split=split)
    data = project.project_bytes(ds, spec, split, "minmax", model_spec, config, run, include_data=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    bomb = npz_of({"X_test.npy": npy_bomb()})
    run_json = json.loads(entries["run/run.json"])
    run_json["files"]["samples.npz"] = hashlib.sha256(bomb).hexdigest()
    entries["run/samples.npz"] = bomb
    entries["run/run.json"] = json.dumps(seal(run_json)).encode()
    manifest = json.loads(entries["manifest.json"])
    manifest["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
                         for n, d in entries.items() if n != "manifest.json"}
    entries["manifest.json"] = json.dumps(manifest).encode()
    work = tmp_path / "projects"
    with pytest.raises(StudioError, match="samples.npz"):
        project.open_project(npz_of(entries), workdir=work)
    assert not work.exists() or not [p for p in work.iterdir()], list(work.iterdir())
    # The same project without the bomb opens (the guard refuses bombs, not projects).
    assert project.open_project(data, workdir=work).run_dir.is_dir()
