"""The firmware bundle zip: layout for both tools, the model array, the op resolver, the config
constants, arena placement, and the messages for what cannot become a bundle."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import StudioError
from core.firmware import (INTERNAL_ARENA_MAX, PSRAM_ARENA_MAX, arena_placement, load_bundle_spec, render_bundle,
                           sketch_preview)
from tests.firmware_support import SLICE_EXPORT, real_export  # noqa: F401 (shared fixture)

GXX = shutil.which("g++")


def _unzip(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode("utf-8") for n in zf.namelist()}


def _copy_export(tmp_path: Path, **entry_changes) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, dst)
    report = json.loads((dst / "report.json").read_text())
    report["float32"].update(entry_changes)
    (dst / "report.json").write_text(json.dumps(report))
    return dst


def _defines(text: str) -> dict[str, str]:
    return {m[0]: m[1].strip() for m in re.findall(r"^#define (\w+) (.+?)(?:\s+//.*)?$", text, re.M)}


def _floats(text: str, name: str) -> list[float]:
    body = re.search(rf"{name}\[[^\]]*\] = \{{(.*?)\}};", text, re.S).group(1)
    return [float(v.rstrip("f")) for v in re.findall(r"[-+0-9.eE]+f", body)]


def test_zip_opens_as_arduino_sketch_and_platformio_project(tmp_path):
    path = render_bundle(SLICE_EXPORT, "float32", out=tmp_path / "b.zip")
    files = _unzip(path)
    roots = {n.split("/")[0] for n in files}
    assert roots == {"forecast_studio_slice_float32"}
    rel = {n.split("/", 1)[1]: t for n, t in files.items()}
    # Arduino: the folder is named after its .ino, and it is the only .ino there.
    sketch = {n.split("/", 1)[1] for n in rel if n.startswith("forecast_studio/")}
    assert [n for n in sketch if n.endswith(".ino")] == ["forecast_studio.ino"]
    assert {"fs_protocol.cpp", "fs_protocol.h", "fs_model.cpp", "fs_model.h", "model_data.cpp", "model_data.h",
            "model_config.h", "test_windows.h", "op_resolver.h"} <= sketch
    # PlatformIO: platformio.ini beside src/ (with main.cpp) and include/.
    ini = rel["platformio/platformio.ini"]
    assert "board = seeed_xiao_esp32s3" in ini and "framework = arduino" in ini
    # TFLM comes with the esp32 core 3.x that pioarduino's pinned platform release carries: no library to install.
    from core.firmware import tflm_api

    assert f"platform = {tflm_api.PLATFORMIO_PLATFORM}" in ini and "monitor_speed = 115200" in ini
    assert "lib_deps =" not in ini and "tanakamasayuki/TensorFlowLite_ESP32@" not in ini
    assert rel["platformio/src/main.cpp"] == "#include <Arduino.h>\n\n" + rel["forecast_studio/forecast_studio.ino"]
    for name in sketch - {"forecast_studio.ino"}:
        folder = "src" if name.endswith(".cpp") else "include"
        assert rel[f"platformio/{folder}/{name}"] == rel[f"forecast_studio/{name}"], name
    readme = rel["README.md"]
    for needle in ("XIAO_ESP32S3", "115200", "FS READY model=slice", "PSRAM", "pio run",
                   f"esp32 core {tflm_api.CORE_VERSION}", f"{tflm_api.LIBRARY} {tflm_api.LIBRARY_VERSION}",
                   "remove it", "TensorFlowLite_ESP32", tflm_api.PLATFORMIO_PLATFORM_VERSION):
        assert needle in readme, needle
    manifest = json.loads(rel["bundle.json"])
    assert manifest["dtype"] == "float32" and manifest["test_indices"] == [0, 1, 2]
    assert not list(tmp_path.glob(".*part"))  # written atomically: no temp file left behind


def test_model_array_is_the_tflite_file_16_byte_aligned(tmp_path):
    rel = {n.split("/", 1)[1]: t for n, t in _unzip(render_bundle(SLICE_EXPORT, "float32", out=tmp_path / "b.zip")).items()}
    src = rel["forecast_studio/model_data.cpp"]
    model = (SLICE_EXPORT / "model_float32.tflite").read_bytes()
    assert "alignas(16) const unsigned char g_model[] = {" in src
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", src)) == model
    assert f"const unsigned int g_model_len = {len(model)};" in src
    if GXX is None:
        pytest.skip("g++ missing: the compiled alignment check needs it")
    # Compiled, the array holds exactly the file and sits on a 16-byte boundary.
    (tmp_path / "model_data.cpp").write_text(src)
    (tmp_path / "model_data.h").write_text(rel["forecast_studio/model_data.h"])
    (tmp_path / "check.cpp").write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "model_data.h"\n'
        "int main() { fwrite(g_model, 1, g_model_len, stdout);"
        " return reinterpret_cast<uintptr_t>(g_model) % 16 == 0 ? 0 : 3; }\n")
    subprocess.run([GXX, "-std=c++17", "-Wall", "-Werror", "-o", str(tmp_path / "check"), str(tmp_path / "check.cpp"),
                    str(tmp_path / "model_data.cpp")], check=True, cwd=tmp_path, timeout=120)
    proc = subprocess.run([str(tmp_path / "check")], capture_output=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == model


def test_config_constants_and_windows_match_the_report(tmp_path):
    rel = {n.split("/", 1)[1]: t for n, t in _unzip(render_bundle(SLICE_EXPORT, "float32", out=tmp_path / "b.zip")).items()}
    cfg = rel["forecast_studio/model_config.h"]
    d = _defines(cfg)
    report = json.loads((SLICE_EXPORT / "report.json").read_text())
    assert d["FS_MODEL_NAME"] == '"slice"' and d["FS_DTYPE"] == '"float32"' and d["FS_DTYPE_INT8"] == "0"
    assert (int(d["FS_WINDOW"]), int(d["FS_FEATURES"]), int(d["FS_HORIZON"]), int(d["FS_TARGETS"])) == (3, 2, 1, 2)
    assert int(d["FS_ARENA_BYTES"]) >= report["float32"]["arena_bytes"] and int(d["FS_ARENA_BYTES"]) % 16 == 0
    assert d["FS_ARENA_IN_PSRAM"] == "0" and d["FS_RESIDUAL"] == "0"
    assert _floats(cfg, "kInputCenter") == report["scaler"]["center"]
    assert _floats(cfg, "kInputScale") == report["scaler"]["scale"]
    assert _floats(cfg, "kTargetCenter") == report["scaler"]["center"]
    windows = rel["forecast_studio/test_windows.h"]
    assert "kTestWindowCount = 3;" in windows
    with np.load(SLICE_EXPORT / "samples.npz") as npz:
        data_units = npz["X_test"] * np.array(report["scaler"]["scale"]) + np.array(report["scaler"]["center"])
    assert _floats(windows, "kTestWindows") == data_units.reshape(-1).tolist()
    assert _floats(windows, "kHostPredictions") == data_units[:, 2, :].reshape(-1).tolist()


def test_op_resolver_registers_exactly_the_reported_ops(tmp_path):
    rel = {n.split("/", 1)[1]: t for n, t in _unzip(render_bundle(SLICE_EXPORT, "float32", out=tmp_path / "b.zip")).items()}
    resolver = rel["forecast_studio/op_resolver.h"]
    assert re.findall(r"resolver\.(\w+)\(\)", resolver) == ["AddStridedSlice"]
    assert "constexpr int kOpCount = 1;" in resolver


def test_unknown_op_stops_the_bundle(tmp_path):
    export = _copy_export(tmp_path, ops=["STRIDED_SLICE", "FLEX_TENSOR_LIST"])
    with pytest.raises(StudioError, match="FLEX_TENSOR_LIST"):
        render_bundle(export, "float32")
    assert not list(export.glob("*.zip"))


def test_arena_placement_ram_psram_and_no_fit(tmp_path):
    # The export's figure (measured + margin) unchanged, aligned to 16: no second margin on top.
    assert arena_placement(4000) == (4000, False)
    assert arena_placement(4001) == (4016, False)
    assert arena_placement(INTERNAL_ARENA_MAX) == (INTERNAL_ARENA_MAX, False)
    board, psram = arena_placement(INTERNAL_ARENA_MAX + 1)
    assert psram and board % 16 == 0
    assert arena_placement(PSRAM_ARENA_MAX)[1]
    with pytest.raises(StudioError, match="no bundle"):
        arena_placement(PSRAM_ARENA_MAX + 1)

    export = _copy_export(tmp_path, arena_bytes=300_000)
    rel = {n.split("/", 1)[1]: t for n, t in _unzip(render_bundle(export, "float32")).items()}
    assert _defines(rel["forecast_studio/model_config.h"])["FS_ARENA_IN_PSRAM"] == "1"
    assert "-DBOARD_HAS_PSRAM" in rel["platformio/platformio.ini"]
    assert "memory_type = qio_opi" in rel["platformio/platformio.ini"]
    assert "OPI PSRAM** (required" in rel["README.md"]

    huge = _copy_export(tmp_path / "huge", arena_bytes=9_000_000)
    with pytest.raises(StudioError, match="tensor arena"):
        render_bundle(huge, "float32")
    assert not list(huge.glob("*.zip"))


def test_bad_exports_are_clear_errors(tmp_path):
    with pytest.raises(StudioError, match="has no report.json"):
        render_bundle(tmp_path, "float32")
    with pytest.raises(StudioError, match="no int8 model"):
        render_bundle(SLICE_EXPORT, "int8")
    with pytest.raises(StudioError, match="int8 or float32"):
        render_bundle(SLICE_EXPORT, "float16")
    no_windows = _copy_export(tmp_path)
    (no_windows / "samples.npz").unlink()
    with pytest.raises(StudioError, match="No test windows"):
        render_bundle(no_windows, "float32")
    broken = _copy_export(tmp_path / "broken")
    (broken / "model_float32.tflite").write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(StudioError, match="TFLM"):
        render_bundle(broken, "float32")


def test_sketch_preview_shows_the_main_files():
    preview = sketch_preview(SLICE_EXPORT, "float32")
    assert list(preview) == ["forecast_studio.ino", "model_config.h", "op_resolver.h", "test_windows.h", "fs_protocol.cpp"]
    assert "void loop()" in preview["forecast_studio.ino"]
    assert "#define FS_WINDOW 3" in preview["model_config.h"]


# ---------------------------------------------------------------- a real export (slow)

@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_real_export_bundle(real_export, dtype):
    from tensorflow.lite.python import schema_py_generated as schema

    report = json.loads((real_export / "report.json").read_text())
    path = render_bundle(real_export, dtype)
    assert path.parent == real_export and path.name == f"forecast_studio_lstm_{dtype}.zip"
    rel = {n.split("/", 1)[1]: t for n, t in _unzip(path).items()}
    model = (real_export / f"model_{dtype}.tflite").read_bytes()
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", rel["forecast_studio/model_data.cpp"])) == model
    # The ops the flatbuffer really holds == the report's == what the resolver registers.
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    in_model = sorted({names[max(oc.builtinCode, oc.deprecatedBuiltinCode)] for oc in m.operatorCodes})
    assert sorted(report[dtype]["ops"]) == in_model
    calls = re.findall(r"resolver\.Add(\w+)\(\)", rel["forecast_studio/op_resolver.h"])
    assert sorted(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", c).upper().replace("L_S_T_M", "LSTM") for c in calls) == in_model
    cfg = rel["forecast_studio/model_config.h"]
    d = _defines(cfg)
    assert (int(d["FS_WINDOW"]), int(d["FS_FEATURES"]), int(d["FS_HORIZON"]), int(d["FS_TARGETS"])) == \
        (report["window"], report["features"], report["horizon"], len(report["targets"]))
    assert d["FS_DTYPE"] == f'"{dtype}"'
    assert np.allclose(_floats(cfg, "kInputCenter"), report["scaler"]["center"], rtol=1e-7)
    assert np.allclose(_floats(cfg, "kInputScale"), report["scaler"]["scale"], rtol=1e-7)
    if dtype == "int8":
        assert float(d["FS_INPUT_SCALE"].rstrip("f")) == pytest.approx(report["int8"]["input_quant"]["scale"], rel=1e-7)
        assert int(d["FS_OUTPUT_ZERO_POINT"]) == report["int8"]["output_quant"]["zero_point"]
    # The embedded host forecasts are the export's own (windows.npz, data units).
    spec = load_bundle_spec(real_export, dtype)
    with np.load(real_export / "windows.npz") as npz:
        assert np.allclose(spec.host_predictions, npz["y_host"][list(spec.test_indices)], atol=1e-4)


def _bundle_page():
    import shutil
    import tempfile
    from pathlib import Path

    from studio.bundle_ui import bundle_section
    from tests.firmware_support import SLICE_EXPORT, real_export  # noqa: F401 (shared fixture)

    export = Path(tempfile.mkdtemp()) / "export"
    shutil.copytree(SLICE_EXPORT, export)
    bundle_section(export)


def test_bundle_section_offers_the_zip_and_a_preview():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_bundle_page).run(timeout=60)
    assert not at.error and not at.exception
    assert at.radio[0].options == ["float32"]  # the slice export has no int8 model
    assert len(at.code) == 5 and "FS_WINDOW 3" in at.code[1].value
    assert any("forecast_studio_slice_float32.zip" in str(b.proto) for b in at.get("download_button"))


def test_a_bundle_made_for_the_old_library_is_named_and_made_again(tmp_path):
    """An export folder from before the esp32 core 3.x sketch holds a zip written for TensorFlowLite_ESP32: the
    studio says so in one sentence, and the bundle it renders now is the current one (issue V, bad input)."""
    from core.firmware import firmware_target, stale_bundle

    export = _copy_export(tmp_path)
    assert stale_bundle(export, "float32") is None  # no zip yet: nothing to warn about
    path = render_bundle(export, "float32")
    assert stale_bundle(export, "float32") is None  # a current zip
    # Rewrite the zip as an old studio wrote it: bundle.json without firmware_target, the old include.
    files = _unzip(path)
    old = {}
    for name, text in files.items():
        if name.endswith("bundle.json"):
            manifest = json.loads(text)
            manifest.pop("firmware_target")
            text = json.dumps(manifest)
        old[name] = text.replace('#include <Arduino.h>\n', '#include <Arduino.h>\n#include <TensorFlowLite_ESP32.h>\n')
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in old.items():
            zf.writestr(name, text)
    sentence = stale_bundle(export, "float32")
    assert sentence and "TensorFlowLite_ESP32" in sentence and "esp32 core" in sentence and sentence.count(". ") == 0
    render_bundle(export, "float32")  # what the Export page does on opening it
    assert stale_bundle(export, "float32") is None
    fresh = _unzip(path)
    assert json.loads(next(t for n, t in fresh.items() if n.endswith("bundle.json")))["firmware_target"] == firmware_target()
    assert not any("TensorFlowLite_ESP32.h>" in t and "__has_include" not in t for n, t in fresh.items() if n.endswith(".cpp"))
