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
    from core.files import mark_owned

    run = tmp_path / "run"
    run.mkdir()
    (run / "weights.npz").write_bytes(b"")
    mark_owned(run, "run")
    assert prepare_out_dir(run) == run.resolve()
    export = tmp_path / "export"
    export.mkdir()
    (export / "report.json").write_text("{}")
    mark_owned(export, "export")
    assert prepare_out_dir(export, ("export",)) == export.resolve()
    # A run folder is not an export folder.
    with pytest.raises(StudioError):
        prepare_out_dir(run, ("export",))
    user = tmp_path / "user"
    user.mkdir()
    (user / "run.json").write_text(json.dumps({"kind": "forecast-studio-run"}))
    with pytest.raises(StudioError):
        prepare_out_dir(user)
    assert prepare_out_dir(user, force=True) == user.resolve()
    f = tmp_path / "file"
    f.write_text("x")
    assert prepare_out_dir(f, force=True) == f.resolve()


# Issue 35, item 4: a user's folder that merely holds a file named like the studio's was deleted.
LOOKALIKES = [
    ("export", {"report.json": json.dumps({"suite": "lighthouse"}), "notes.txt": "mine"}),
    ("export", {"report.json": "{}"}),
    ("export", {"report.json": json.dumps({"kind": "forecast-studio-export", "dtypes": {}}), "a.txt": "x"}),
    ("run", {"run.json": json.dumps({"kind": "forecast-studio-run"}), "notes.txt": "mine"}),
    ("run", {"run.json": json.dumps({"kind": "forecast-studio-run", "format_version": 2, "checksum": "0" * 64})}),
    ("run", {".forecast-studio-owner": "forecast-studio owned folder v1\nkind=export\n", "x.txt": "x"}),  # wrong kind
    ("run", {".forecast-studio-owner": "kind=run\n", "x.txt": "x"}),  # no signature
    ("export", {"sub/.forecast-studio-owner": "forecast-studio owned folder v1\nkind=export\n"}),  # not at the top
]


@pytest.mark.parametrize("kind,files", LOOKALIKES)
def test_a_folder_the_studio_did_not_mark_is_never_replaced(tmp_path, kind, files):
    from core.files import atomic_dir

    folder = tmp_path / "mine"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    with pytest.raises(StudioError, match="marker"):
        prepare_out_dir(folder, (kind,))
    with pytest.raises(StudioError, match="did not make"):
        with atomic_dir(folder, kind) as tmp:
            (tmp / "x").write_text("new")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_linked_marker_is_not_a_marker(tmp_path):
    from core.files import OWNER_MARK, mark_owned, owned

    real = tmp_path / "real"
    real.mkdir()
    mark_owned(real, "export")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / OWNER_MARK).symlink_to(real / OWNER_MARK)
    assert owned(real, "export") and not owned(folder, "export")


def test_the_export_command_leaves_a_lookalike_folder_and_exits_2(tmp_path, capsys):
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"suite": "lighthouse"}))
    (folder / "notes.txt").write_text("mine")
    assert main(["export", str(tmp_path / "no-run"), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an export the studio made" in err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "report.json"]


def test_atomic_replacement_of_a_file_with_force_leaves_no_hidden_copy(tmp_path):
    from core.files import atomic_dir

    f = tmp_path / "out"
    f.write_text("old")
    with atomic_dir(prepare_out_dir(f, force=True), "run") as tmp:
        (Path(tmp) / "run.json").write_text("{}")
    assert (f / "run.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
