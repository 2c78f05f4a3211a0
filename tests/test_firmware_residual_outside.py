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


def _outside_export(tmp_path: Path, target_input=(0, 1)) -> Path:
    """The slice export (its model copies the last step), marked as forecasting the change only."""
    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    report = json.loads((export / "report.json").read_text())
    report["model"] = {"name": "slice", "target_input_index": list(target_input)}
    report["residual"] = True
    report["float32"]["residual_outside"] = True
    (export / "report.json").write_text(json.dumps(report))
    return export


WINDOW = [[11.0, -4.0], [12.5, -6.0], [9.0, -1.0]]  # data units, 3 steps x (temp, hum)


def _expected() -> list[float]:
    last_scaled = (np.array(WINDOW[-1], np.float32) - SLICE_CENTER) / SLICE_SCALE
    # the model's output (a copy of the last step) plus the last value, then unscaled
    return list(((last_scaled + last_scaled) * SLICE_SCALE + SLICE_CENTER).astype(np.float32))


def _p_line() -> bytes:
    return ("P " + ",".join(f"{v:g}" for row in WINDOW for v in row) + "\n").encode()


def test_emulator_adds_the_last_value_outside_the_model(tmp_path):
    spec = load_bundle_spec(_outside_export(tmp_path), "float32")
    assert spec.residual_outside and spec.target_input == (0, 1)
    line = ProtocolEngine(spec, TflmRunner(spec)).feed(_p_line())[0]
    got = [float(v) for v in line.split(" y=")[1].split(",")]
    assert got == pytest.approx(_expected(), rel=1e-6)


def _compiled_result(export: Path, tmp_path: Path) -> str:
    """The FS RESULT line the g++-compiled fs_protocol.cpp of the export's float32 bundle gives for _p_line()."""
    zpath = render_bundle(export, "float32", out=tmp_path / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "b")
        config = next(n for n in zf.namelist() if n.endswith("forecast_studio/model_config.h"))
        assert "#define FS_RESIDUAL_OUTSIDE 1" in zf.read(config).decode()
    sketch = next((tmp_path / "b").glob("*/forecast_studio"))
    exe = tmp_path / "fs_host"
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(sketch / "fs_protocol.cpp"), str(HOST_MAIN), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], input=_p_line(), capture_output=True, timeout=30).stdout.decode().splitlines()
    return next(line for line in out if line.startswith("FS RESULT"))


@pytest.mark.skipif(GXX is None, reason="g++ is not installed: the firmware protocol cannot be compiled here")
def test_compiled_firmware_adds_it_the_same_way(tmp_path):
    export = _outside_export(tmp_path)
    result = _compiled_result(export, tmp_path)
    # The host driver's fake model copies the last step, like the slice model: same sum on both sides.
    emu_spec = load_bundle_spec(export, "float32")
    emu = ProtocolEngine(emu_spec, TflmRunner(emu_spec)).feed(_p_line())[0]
    assert result.split(" y=")[1] == emu.split(" y=")[1]


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
