"""Hostile class 3: a user's folder deleted. Every command that writes a folder follows one rule
(core.files.prepare_out_dir), checked before any work: a folder holding files that are not a run/export of
the studio, or an existing regular file, is refused unless --force; the place must be writable now (not after
the training); ``X/inner/..`` is X."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.errors import StudioError
from core.files import prepare_out_dir
from studio.cli import main

def _train(out, *extra) -> int:
    # The CSV path does not even exist: the folder rule must answer before the data is read.
    return main(["train", "--csv", "/nonexistent/never-read.csv", "--target", "temp", "--epochs", "1",
                 "--out", str(out), *extra])


def test_train_refuses_a_folder_holding_other_files_and_keeps_them(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("years of work")
    assert _train(folder) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a training run" in err and "--force" in err
    assert (folder / "thesis.docx").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing hidden beside it either


def test_train_refuses_an_existing_file_and_does_not_move_it(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert _train(target) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_export_refuses_the_same_way(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"jpeg")
    assert main(["export", str(tmp_path / "no-run"), "--out", str(folder)]) == 2
    assert "not an export" in capsys.readouterr().err
    assert (folder / "a.jpg").exists()


def test_unwritable_out_is_found_before_any_work(tmp_path, capsys):
    for out in ("/proc/forecast-studio-run", "/proc/self/inner/run"):
        assert _train(out) == 2
        err = capsys.readouterr().err
        assert "cannot be written" in err and "epoch" not in err and "no file" not in err.lower()
    if os.geteuid() != 0:  # root writes through a read-only mode bit
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        assert _train(ro / "run") == 2
        assert "cannot be written" in capsys.readouterr().err


def test_dot_dot_and_odd_paths_resolve_before_they_are_used(tmp_path):
    assert prepare_out_dir(tmp_path / "x" / "inner" / "..") == (tmp_path / "x").resolve()
    with pytest.raises(StudioError, match="root"):
        prepare_out_dir("/")
    with pytest.raises(StudioError, match="empty"):
        prepare_out_dir(" ")


def test_an_earlier_run_or_export_may_be_replaced_and_force_replaces_anything(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "forecast-studio-run", "format_version": 1}))
    (run / "weights.npz").write_bytes(b"")
    assert prepare_out_dir(run) == run.resolve()
    export = tmp_path / "export"
    export.mkdir()
    (export / "report.json").write_text("{}")
    assert prepare_out_dir(export, ("export",)) == export.resolve()
    # A run folder is not an export folder, and a run.json of another kind is not a run.
    with pytest.raises(StudioError):
        prepare_out_dir(run, ("export",))
    (run / "run.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(StudioError):
        prepare_out_dir(run)
    assert prepare_out_dir(run, force=True) == run.resolve()
    f = tmp_path / "file"
    f.write_text("x")
    assert prepare_out_dir(f, force=True) == f.resolve()


def test_atomic_replacement_of_a_file_with_force_leaves_no_hidden_copy(tmp_path):
    from core.files import atomic_dir

    f = tmp_path / "out"
    f.write_text("old")
    with atomic_dir(prepare_out_dir(f, force=True)) as tmp:
        (Path(tmp) / "run.json").write_text("{}")
    assert (f / "run.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
