"""ExportFolder (issue M): the one reader of an export folder; old key names open like today's."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.board import load_reference
from core.errors import StudioError
from core.export.folder import ExportFolder, firmware_model_name, load_report

TODAY = {
    "model": {"kind": "lstm", "name": "lstm 16 (w4)", "residual": True, "target_input_index": [1]},
    "model_label": "LSTM 16", "window": 4, "features": 2, "input_columns": ["a", "t"], "horizon": 2,
    "targets": ["t"], "residual": True, "budget": {}, "dtypes": {"float32": {"path": "model_float32.tflite",
                                                                           "max_abs_err": 1e-6}},
    "scaler": {"kind": "minmax", "columns": ["a", "t"], "center": [1.0, 10.0], "scale": [2.0, 5.0]},
    "test_windows": [0, 2], "edge_impulse": {"windows": [1], "dtype": "int8"},
    "target_input_index": [1],
}


def _write(folder: Path, report: dict, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "windows.npz", X=rng.random((n, 4, 2), dtype=np.float32),
             y_host_scaled=rng.random((n, 2, 1), dtype=np.float32), y_true=rng.random((n, 2, 1)))
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def _old(report: dict) -> dict:
    """The same report with every older key name an earlier studio wrote."""
    old = {k: v for k, v in report.items() if k not in ("dtypes", "edge_impulse", "test_windows", "input_columns",
                                                        "residual", "target_input_index")}
    old["float32"] = report["dtypes"]["float32"]
    old["ei"] = {"test_windows": report["edge_impulse"]["windows"], "dtype": "int8"}
    old["embedded_windows"] = report["test_windows"]
    old["features"] = report["input_columns"]
    return old


def test_old_key_names_read_as_todays(tmp_path):
    new = ExportFolder.open(_write(tmp_path / "new", TODAY))
    old = ExportFolder.open(_write(tmp_path / "old", _old(TODAY)))
    for f in (new, old):
        assert f.targets == ("t",) and f.input_columns == ("a", "t")
        assert f.size("window") == 4 and f.size("features") == 2 and f.size("horizon") == 2
        assert f.residual and f.target_input_index == (1,)
        assert f.test_windows == (0, 2) and f.edge_impulse["windows"] == [1]
        assert list(f.dtypes) == ["float32"] and f.entry("float32")["max_abs_err"] == 1e-6
        assert f.model_name == "lstm_16_w4"
        c, s = f.column_scaler(("t", "hour_sin"))
        assert c.tolist() == [10.0, 0.0] and s.tolist() == [5.0, 1.0]
    a, b = load_reference(new.path), load_reference(old.path)
    assert a.embedded == b.embedded == (0, 2) and a.ei_windows == b.ei_windows == (1,)
    assert a.residual and b.residual and a.ei_dtype == b.ei_dtype == "int8"
    assert np.array_equal(a.y_true, b.y_true)


def test_unknown_keys_survive_and_the_typed_report_reads(tmp_path):
    folder = _write(tmp_path / "e", {**TODAY, "from_the_future": 1})
    report = load_report(folder)
    assert report.targets == ["t"] and report.edge_impulse == {"windows": [1], "dtype": "int8"}
    assert ExportFolder.open(folder).data["from_the_future"] == 1


def test_edge_impulse_entry_is_written_once_under_its_name(tmp_path):
    folder = ExportFolder.open(_write(tmp_path / "e", _old(TODAY)))
    folder.write_edge_impulse({"windows": [0, 1], "dtype": "float32"})
    raw = json.loads((folder.path / "report.json").read_text())
    assert "ei" not in raw and raw["edge_impulse"]["windows"] == [0, 1]
    assert ExportFolder.open(folder.path).edge_impulse["dtype"] == "float32"


def test_bundles_are_read_from_zips_and_other_zips_ignored(tmp_path):
    folder = _write(tmp_path / "e", TODAY)
    with zipfile.ZipFile(folder / "fw_int8.zip", "w") as zf:
        zf.writestr("forecast_studio/bundle.json", json.dumps({"dtype": "int8", "model": "m"}))
    (folder / "broken.zip").write_bytes(b"not a zip")
    with zipfile.ZipFile(folder / "library.zip", "w") as zf:
        zf.writestr("readme.txt", "an Edge Impulse library")
    assert ExportFolder.open(folder).bundles() == {"int8": {"dtype": "int8", "model": "m"}}


@pytest.mark.parametrize("damage, words", [
    (lambda d: d.update(targets="t"), "neither a list of column names"),
    (lambda d: d["scaler"].update(scale=[-1.0, 5.0]), "negative"),
    (lambda d: d["scaler"].update(center=[1.0]), "different lengths"),
])
def test_damaged_reports_say_what_is_wrong(tmp_path, damage, words):
    report = json.loads(json.dumps(TODAY))
    damage(report)
    folder = ExportFolder.open(_write(tmp_path / "e", report))
    with pytest.raises(StudioError, match=words):
        folder.names("targets")
        folder.column_scaler(("t",))


def test_not_an_export_and_unreadable_report(tmp_path):
    with pytest.raises(StudioError, match="has no report.json"):
        ExportFolder.open(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(StudioError) as err:
        ExportFolder.open(tmp_path)
    assert "Export the run again" in str(err.value.fix if hasattr(err.value, "fix") else err.value)


def test_firmware_model_name_rule():
    assert firmware_model_name({"name": "GRU 32 / w=168"}) == "GRU_32_w_168"
    assert firmware_model_name({"kind": "lstm"}) == "lstm"
    assert firmware_model_name(None) is None and firmware_model_name("***") is None


def test_a_chosen_bundle_type_is_recorded_beside_the_recommendation(tmp_path):
    """What the bundle ships is what report.json, the summary and the Device step name; the studio's own
    recommendation stays apart, so the Export page still says what it would ship (issue V)."""
    import shutil

    from core.deliver import chosen
    from core.export import bundle_choice
    from tests.firmware_support import SLICE_EXPORT

    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    raw = json.loads((export / "report.json").read_text())
    raw["int8"] = dict(raw["float32"], path="model_int8.tflite")
    raw["bundle_dtype"], raw["bundle_reason"] = "float32", "int8 loses to float32"
    raw.setdefault("model_label", "slice")
    raw.setdefault("budget", {})
    (export / "report.json").write_text(json.dumps(raw))
    shutil.copy(export / "model_float32.tflite", export / "model_int8.tflite")

    dtype, reason = chosen("float32", "int8 loses to float32", "int8", "on the Export page")
    assert (dtype, reason) == ("int8", "chosen on the Export page; the studio would ship float32: int8 loses to float32")
    assert chosen("float32", "why", "auto") == chosen("float32", "why", "float32") == ("float32", "why")
    folder = ExportFolder.open(export)
    assert folder.record_bundle(dtype, reason) and not folder.record_bundle(dtype, reason)  # second: unchanged
    written = json.loads((export / "report.json").read_text())
    assert (written["bundle_dtype"], written["recommended_dtype"]) == ("int8", "float32")
    report = ExportFolder.open(export).report()
    assert report.shipped() == ("int8", reason) and report.recommended() == ("float32", "int8 loses to float32")
    assert bundle_choice(export)[:2] == ("float32", "int8 loses to float32")
    assert any(line.strip() == f"bundle: int8 ({reason})" for line in report.summary_lines())
