"""Issue L: a change-from-last-value model whose int8 graph forecasts only the change, the last value added
back in the firmware's float code (FS_RESIDUAL_OUTSIDE). The g++-compiled protocol and the emulator must add
exactly the same thing, and a bundle that cannot say which input each target is must be refused."""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.board.emulator import ProtocolEngine, TflmRunner
from core.errors import StudioError
from core.firmware import load_bundle_spec, render_bundle
from tests.firmware_support import SLICE_CENTER, SLICE_EXPORT, SLICE_SCALE

HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"
GXX = shutil.which("g++")


def _outside_export(tmp_path: Path, target_input=(0, 1), reference_rows=None, drift_rows=None) -> Path:
    """The slice export (its model copies the last step), marked as forecasting the change only; with
    ``reference_rows`` the change from that window row (a seasonal change target, issue 21); with ``drift_rows``
    (a, b) also plus row a minus row b (the change from last value and last season, issue V)."""
    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    report = json.loads((export / "report.json").read_text())
    report["model"] = {"name": "slice", "target_input_index": list(target_input)}
    report["residual"] = True
    report["float32"]["residual_outside"] = True
    if reference_rows is not None:
        report["float32"]["reference_rows"] = list(reference_rows)
    if drift_rows is not None:
        report["float32"]["drift_rows"] = list(drift_rows)
    (export / "report.json").write_text(json.dumps(report))
    return export


WINDOW = [[11.0, -4.0], [12.5, -6.0], [9.0, -1.0]]  # data units, 3 steps x (temp, hum)


def _expected(row: int = -1, drift=None) -> list[float]:
    scaled = lambda r: ((np.array(WINDOW[r], np.float32) - SLICE_CENTER) / SLICE_SCALE).astype(np.float32)
    ref_scaled = scaled(row)
    if drift is not None:  # in the firmware's order: reference row, plus (row a - row b)
        ref_scaled = (ref_scaled + (scaled(drift[0]) - scaled(drift[1]))).astype(np.float32)
    # the model's output (a copy of the last step) plus the reference, then unscaled
    return list(((scaled(-1) + ref_scaled) * SLICE_SCALE + SLICE_CENTER).astype(np.float32))


def _p_line() -> bytes:
    return ("P " + ",".join(f"{v:g}" for row in WINDOW for v in row) + "\n").encode()


@pytest.mark.parametrize("rows", [None, (0,), (1,)], ids=["last-value", "season-3", "season-2"])
def test_emulator_adds_the_reference_outside_the_model(tmp_path, rows):
    spec = load_bundle_spec(_outside_export(tmp_path, reference_rows=rows), "float32")
    assert spec.residual_outside and spec.target_input == (0, 1)
    line = ProtocolEngine(spec, TflmRunner(spec)).feed(_p_line())[0]
    got = [float(v) for v in line.split(" y=")[1].split(",")]
    assert got == pytest.approx(_expected(-1 if rows is None else rows[0]), rel=1e-6)
    # a seasonal reference really reads another row: the sum differs from the last value's
    if rows is not None:
        assert got != pytest.approx(_expected(), rel=1e-6)


def _compiled_result(export: Path, tmp_path: Path) -> str:
    """The FS RESULT line the g++-compiled fs_protocol.cpp of the export's float32 bundle gives for _p_line()."""
    zpath = render_bundle(export, "float32", out=tmp_path / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "b")
        config = next(n for n in zf.namelist() if n.endswith("forecast_studio/model_config.h"))
        header = zf.read(config).decode()
        assert "#define FS_RESIDUAL_OUTSIDE 1" in header
        rows = json.loads((export / "report.json").read_text())["float32"].get("reference_rows") or [2]
        assert f"kReferenceRow[FS_HORIZON] = {{{', '.join(map(str, rows))}}};" in header
    sketch = next((tmp_path / "b").glob("*/forecast_studio"))
    exe = tmp_path / "fs_host"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(sketch / "fs_protocol.cpp"), str(HOST_MAIN), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], input=_p_line(), capture_output=True, timeout=30).stdout.decode().splitlines()
    return next(line for line in out if line.startswith("FS RESULT"))


@pytest.mark.skipif(GXX is None, reason="g++ is not installed: the firmware protocol cannot be compiled here")
@pytest.mark.parametrize("rows", [None, (0,)], ids=["last-value", "season-3"])
def test_compiled_firmware_adds_it_the_same_way(tmp_path, rows):
    export = _outside_export(tmp_path, reference_rows=rows)
    result = _compiled_result(export, tmp_path)
    got = [float(v) for v in result.split(" y=")[1].split(",")]
    assert got == pytest.approx(_expected(-1 if rows is None else rows[0]), rel=1e-6)
    # The host driver's fake model copies the last step, like the slice model: same sum on both sides.
    emu_spec = load_bundle_spec(export, "float32")
    emu = ProtocolEngine(emu_spec, TflmRunner(emu_spec)).feed(_p_line())[0]
    assert result.split(" y=")[1] == emu.split(" y=")[1]


@pytest.mark.parametrize("rows", [(3,), (0, 1), ("a",)])
def test_reference_rows_that_do_not_fit_the_window_are_refused(tmp_path, rows):
    with pytest.raises(StudioError, match="reference rows"):
        load_bundle_spec(_outside_export(tmp_path, reference_rows=rows), "float32")


def test_a_bundle_that_does_not_name_the_targets_inputs_is_refused(tmp_path):
    with pytest.raises(StudioError, match="which input column"):
        load_bundle_spec(_outside_export(tmp_path, target_input=()), "float32")


@pytest.mark.skipif(GXX is None, reason="g++ is not installed: the firmware protocol cannot be compiled here")
def test_bands_surround_the_level_after_the_last_value_is_added(tmp_path):
    """Issue N with issue L: the bounds are the final level forecast -/+ the half-width, so the last value is
    added before they are computed (a band around the bare change would sit near zero)."""
    from tests.firmware_support import SLICE_BAND_EXPORT

    export = _outside_export(tmp_path)
    shutil.copy(SLICE_BAND_EXPORT / "intervals.json", export / "intervals.json")
    spec = load_bundle_spec(export, "float32")
    assert spec.residual_outside and spec.band_levels == ("80", "95")
    board = _compiled_result(export, tmp_path)
    emu = ProtocolEngine(spec, TflmRunner(spec)).feed(_p_line())[0]
    assert board.split(" y=")[1] == emu.split(" y=")[1]  # the C++ and the emulator print the same bounds
    fields = dict(f.split("=", 1) for f in board.split(" ")[2:])
    y = np.array([float(v) for v in fields["y"].split(",")], np.float32)
    assert y == pytest.approx(_expected(), rel=1e-6)
    for level, half in (("80", [0.5, 1.25]), ("95", [1.5, 2.75])):
        lo = np.array([float(v) for v in fields[f"lo{level}"].split(",")], np.float32)
        hi = np.array([float(v) for v in fields[f"hi{level}"].split(",")], np.float32)
        np.testing.assert_allclose(lo, y - np.float32(half), rtol=0, atol=1e-5)
        np.testing.assert_allclose(hi, y + np.float32(half), rtol=0, atol=1e-5)


@pytest.mark.parametrize("rows, drift", [((1,), (2, 0)), ((0,), (1, 2))], ids=["both-2", "both-reversed"])
def test_change_from_last_value_and_last_season_adds_three_rows(tmp_path, rows, drift):
    """The change-from-last-value-and-last-season reference (issue V: every target form outside the graph, so
    the step loop can take it too): row + (a - b), the same float32 sum in the emulator and the compiled firmware."""
    export = _outside_export(tmp_path, reference_rows=rows, drift_rows=drift)
    spec = load_bundle_spec(export, "float32")
    assert spec.drift_rows == drift
    emu = ProtocolEngine(spec, TflmRunner(spec)).feed(_p_line())[0]
    want = _expected(rows[0], drift)
    assert [float(v) for v in emu.split(" y=")[1].split(",")] == pytest.approx(want, rel=1e-6)
    assert want != pytest.approx(_expected(rows[0]), rel=1e-6)  # the drift really moves it
    if GXX is not None:
        result = _compiled_result(export, tmp_path)
        assert result.split(" y=")[1] == emu.split(" y=")[1]
        header = (next((tmp_path / "b").glob("*/forecast_studio")) / "model_config.h").read_text()
        assert f"#define FS_DRIFT_ADD_ROW {drift[0]}" in header and f"#define FS_DRIFT_SUB_ROW {drift[1]}" in header


@pytest.mark.parametrize("drift", [(3, 0), (0,), ("a", 1)])
def test_drift_rows_that_do_not_fit_the_window_are_refused(tmp_path, drift):
    with pytest.raises(StudioError, match="drift rows"):
        load_bundle_spec(_outside_export(tmp_path, reference_rows=(0,), drift_rows=drift), "float32")
