"""The Edge Impulse static-buffer sketch beside the library (issue K): rendering, the library zip's header,
bad zips, the report entry the Device step reads, transcripts in the seed project's format matched in data
units, the sketch compiled with the host's g++ against a stand-in library header and its output read back,
the emulator's replay, and the whole path from a trained run through the local Edge Impulse stand-in.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.edge_impulse import sketch as es
from core.board import Board, compare_ei, ei_readings, load_reference, parse_transcript
from core.errors import StudioError
from tests.ei_standin import library_zip

ROOT = Path(__file__).resolve().parent.parent
SLICE1 = ROOT / "tests" / "transcripts" / "slice1_export"
KEY = "ei_0123456789abcdef0123456789abcdef"
PROJECT = "forecast_studio_test"


def fake_export(out: Path, window: int, features: int, n: int = 10, seed: int = 0,
                host_scaled: dict[int, float] | None = None, target: str = "temperature") -> Path:
    """An export folder as core/export.py writes it (report.json + windows.npz), without a model: the sketch
    needs only the windows, the host's forecasts and the scaler."""
    rng = np.random.default_rng(seed)
    cols = [target] + [f"f{j}" for j in range(1, features)]
    X = rng.normal(0, 1, (n, window, features)).astype(np.float32)
    y = rng.normal(0, 1, (n, 1, 1)).astype(np.float32)
    for i, v in (host_scaled or {}).items():
        y[i, 0, 0] = v
    scaler = {"kind": "minmax", "columns": cols, "center": [float(-5 + j) for j in range(features)],
              "scale": [float(30 + 2 * j) for j in range(features)]}
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "windows.npz", X=X, y_host_scaled=y, y_host=(y * 30.0 - 5.0).astype(np.float32))
    report = {"model": {"kind": "lstm", "units": 8, "residual": False}, "model_label": "LSTM(8)", "window": window,
              "features": features, "input_columns": cols, "horizon": 1, "targets": [target], "scaler": scaler,
              "residual": False, "float32": {"path": "model_float32.tflite", "max_abs_err": 1e-6, "mean_abs_err": 1e-7},
              "dtypes": {"float32": {"path": "model_float32.tflite", "max_abs_err": 1e-6, "mean_abs_err": 1e-7}}}
    (out / "report.json").write_text(json.dumps(report))
    return out


def _floats_in_features(header: str) -> list[float]:
    body = header[header.index("static const float features[] = {"):]
    body = body[body.index("{") + 1: body.index("};")]
    body = "\n".join(line for line in body.splitlines() if not line.strip().startswith("//"))
    return [float(t.strip().rstrip("f")) for t in body.split(",") if t.strip()]


def _zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


# ------------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize("window,features", [(24, 3), (168, 7), (12, 1)])
def test_sketch_holds_real_windows_of_the_right_length(tmp_path, window, features):
    exp = fake_export(tmp_path / "exp", window, features)
    path = es.write_package(exp, library_zip(PROJECT, window * features, "float32"))
    files = _zip_files(path)
    root = es.PACKAGE_ZIP.removesuffix(".zip")
    ino = files[f"{root}/{es.SKETCH}/{es.SKETCH}.ino"].decode()
    header = files[f"{root}/{es.SKETCH}/fs_ei_windows.h"].decode()
    assert f"#include <{PROJECT}_inferencing.h>" in ino
    assert "static_assert(FS_EI_WINDOW_VALUES == EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE" in ino
    assert f"#define FS_EI_WINDOW_VALUES {window * features}" in header
    report = json.loads((exp / "report.json").read_text())["edge_impulse"]
    picks = report["windows"]
    assert picks == [0, 3, 6, 9] and f"#define FS_EI_WINDOW_COUNT {len(picks)}" in header
    values = _floats_in_features(header)
    assert len(values) == len(picks) * window * features
    with np.load(exp / "windows.npz") as z:
        X, y = z["X"], z["y_host_scaled"]
    # Exactly the model's input: scaled, time-major (window x features), bit for bit.
    np.testing.assert_array_equal(np.asarray(values, np.float32), X[picks].reshape(-1))
    host = [30.0 * float(y[i, 0, 0]) - 5.0 for i in picks]
    np.testing.assert_allclose(report["host_predictions"], host, rtol=1e-6)
    for k, i in enumerate(picks):
        assert f"// Window {k + 1} of {len(picks)}: studio test window {i}. Host: temperature=" in header
        assert f'"temperature={host[k]:.7g}"' in header
    assert report["residual_in_model"] is True and report["scaler"]["center"] == -5.0 and report["scaler"]["scale"] == 30.0
    assert report["header"] == f"{PROJECT}_inferencing.h" and report["frame_size"] == window * features
    # The library travels as Edge Impulse built it, and beside the export as well.
    assert files[f"{root}/{PROJECT}_inferencing.zip"] == (exp / "ei_library.zip").read_bytes()
    readme = files[f"{root}/README.md"].decode()
    for needed in ("Add .ZIP Library", "XIAO_ESP32S3", "115200", "temperature = value * 30 - 5", "Device"):
        assert needed in readme


def test_one_window_and_names_that_need_escaping(tmp_path):
    exp = fake_export(tmp_path / "exp", 4, 2, n=1, target='Temp "C" \\ °')
    path = es.write_package(exp, library_zip(PROJECT, 8, "float32"))
    header = _zip_files(path)[f"forecast_studio_edge_impulse/{es.SKETCH}/fs_ei_windows.h"].decode()
    assert "#define FS_EI_WINDOW_COUNT 1" in header
    assert '"Temp \\"C\\" \\\\ \\302\\260=' in header  # quotes, backslash and UTF-8 bytes escaped for C


def test_header_name_comes_from_the_library_zip():
    lib = es.inspect_library(library_zip("Seed-Weather_2", 1176, "float32"))
    assert lib.header == "Seed-Weather_2_inferencing.h" and lib.folder == "Seed-Weather_2_inferencing"
    assert lib.frame_size == 1176 and lib.zip_name == "Seed-Weather_2_inferencing.zip"
    # No top folder, and the frame size written the way Edge Impulse writes it (an expression of defines).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("library.properties", "name=x\n")
        z.writestr("src/edge-impulse-sdk/porting/ei_classifier_porting.h", "")
        z.writestr("src/weather_inferencing.h", "#pragma once\n")
        z.writestr("src/model-parameters/model_metadata.h",
                   "#define EI_CLASSIFIER_RAW_SAMPLE_COUNT 168\n#define EI_CLASSIFIER_RAW_SAMPLES_PER_FRAME    7\n"
                   "#define EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE (EI_CLASSIFIER_RAW_SAMPLE_COUNT * "
                   "EI_CLASSIFIER_RAW_SAMPLES_PER_FRAME) // the model's input\n")
    lib = es.inspect_library(buf.getvalue())
    assert (lib.header, lib.folder, lib.frame_size) == ("weather_inferencing.h", "weather_inferencing", 1176)


def _zip(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in entries.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"<html>502 Bad Gateway</html>", "not a zip file"),
    (b"PK\x03\x04 truncated", "not a zip file"),
    (_zip({"lib/library.properties": "name=x\n", "lib/examples/static_buffer/static_buffer.ino": ""}),
     "no src/<project>_inferencing.h"),
    (_zip({"lib/x_inferencing.h": ""}), "not in a src/ folder"),
])
def test_bad_library_zips_are_refused_with_a_message(tmp_path, data, message):
    exp = fake_export(tmp_path / "exp", 4, 2)
    before = sorted(p.name for p in exp.iterdir())
    with pytest.raises(StudioError) as e:
        es.write_package(exp, data)
    assert message in str(e.value) and "Deploy to Edge Impulse again" in str(e.value)
    assert sorted(p.name for p in exp.iterdir()) == before  # nothing written, the report untouched
    assert "edge_impulse" not in json.loads((exp / "report.json").read_text())


def test_library_of_another_input_length_is_refused(tmp_path):
    exp = fake_export(tmp_path / "exp", 24, 3)
    with pytest.raises(StudioError, match=r"takes 48 input values.*24 x 3 = 72.*deploy this run"):
        es.write_package(exp, library_zip(PROJECT, 48, "float32"))


def test_multi_output_export_is_refused(tmp_path):
    exp = fake_export(tmp_path / "exp", 4, 2)
    report = json.loads((exp / "report.json").read_text())
    report["horizon"] = 3
    (exp / "report.json").write_text(json.dumps(report))
    with pytest.raises(StudioError, match="offline firmware bundle"):
        es.write_package(exp, library_zip(PROJECT, 8, "float32"))


# ------------------------------------------------------------------------------------------ the Device step


SEED_TRANSCRIPT = """\
Edge Impulse standalone inferencing (Arduino)
run_classifier returned: 0
Timing: DSP 0 ms, inference 2024 ms, anomaly 0 ms
Predictions:
  value: 0.36065
"""


def test_seed_project_transcript_matched_in_data_units(tmp_path):
    exp = fake_export(tmp_path / "exp", 168, 7, host_scaled={3: 0.36065})
    es.write_package(exp, library_zip(PROJECT, 168 * 7, "float32"))
    ref = load_reference(exp)
    assert ref.ei_windows == (0, 3, 6, 9) and not ref.ei_output_is_delta
    cmp = compare_ei(ei_readings(parse_transcript(SEED_TRANSCRIPT)), ref)
    assert cmp.agree, cmp.problems
    (row,) = cmp.rows
    assert row.window == 3 and row.target == "temperature"
    assert row.board == pytest.approx(0.36065 * 30 - 5) and row.host == pytest.approx(0.36065 * 30 - 5, abs=1e-4)
    assert cmp.timing_us == {"min": 2024000.0, "median": 2024000.0, "max": 2024000.0}


def test_sketch_output_for_every_window_matched_and_an_unmatched_value_flagged(tmp_path):
    exp = fake_export(tmp_path / "exp", 24, 3)
    es.write_package(exp, library_zip(PROJECT, 72, "float32"))
    entry = json.loads((exp / "report.json").read_text())["edge_impulse"]
    blocks = []
    for k, (idx, scaled) in enumerate(zip(entry["windows"], entry["host_predictions_scaled"])):
        blocks.append(f"Window {k + 1} of 4 (studio test window {idx})\r\nHost: temperature={entry['host_predictions'][k]:.7g}\r\n"
                      f"run_classifier returned: 0\r\nTiming: DSP 0 ms, inference 5 ms, anomaly 0 ms\r\n"
                      f"Predictions:\r\n  value: {scaled:.5f}\r\n")
    blocks.append("Window 1 of 4 (studio test window 0)\r\nHost: temperature=1\r\nTiming: DSP 0 ms, inference 5 ms, "
                  "anomaly 0 ms\r\nPredictions:\r\n  value: 9.99000\r\n")
    cmp = compare_ei(ei_readings(parse_transcript("".join(blocks))), load_reference(exp))
    assert [r.window for r in cmp.rows] == entry["windows"] + [None]
    assert all(r.ok for r in cmp.rows[:4]) and not cmp.rows[4].ok and cmp.rows[4].host is None
    assert cmp.rows[4].board == pytest.approx(9.99 * 30 - 5)
    assert cmp.verdict == "disagree" and "matches no test window" in cmp.problems[0]
    for r, host in zip(cmp.rows, entry["host_predictions"]):
        assert r.host == pytest.approx(host, rel=1e-6) and r.board == pytest.approx(host, abs=30 * 1e-5)


def test_an_int8_library_is_held_to_int8_tolerance(tmp_path):
    # Edge Impulse quantises an int8 library itself, so its value may be off by about a percent of the range;
    # the float32 export's tolerance would call that a disagreement.
    transcripts = {}
    for dtype in ("float32", "int8"):
        exp = fake_export(tmp_path / dtype, 12, 2, host_scaled={0: 0.5})
        es.write_package(exp, library_zip(PROJECT, 24, dtype), dtype=dtype)
        transcripts[dtype] = compare_ei(ei_readings(parse_transcript("Predictions:\n  value: 0.51000\n")),
                                        load_reference(exp))
    assert not transcripts["float32"].agree and transcripts["int8"].agree
    assert transcripts["int8"].rows[0].window == 0


# ------------------------------------------------------------------------------------------ g++


ARDUINO_H = r"""
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
// The few Arduino calls the sketch makes, on stdout; printf keeps its format checks.
struct HostSerial {
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  __attribute__((format(printf, 2, 3))) int printf(const char* fmt, ...) {
    va_list ap; va_start(ap, fmt); int n = vprintf(fmt, ap); va_end(ap); return n;
  }
  void println(const char* s) { printf("%s\n", s); }
};
inline HostSerial Serial;
inline unsigned long millis() { return 0; }
inline void delay(unsigned long) {}
"""

# A stand-in for the Edge Impulse library's API as the sketch uses it: the types, the macros, and a
# run_classifier that reads the window through the signal in slices (as the SDK does) and returns the
# next of FAKE_VALUES. It records each window's sum so the test sees what the library was fed.
FAKE_LIBRARY_H = r"""
#pragma once
#include <stddef.h>
#define EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE FAKE_FRAME
#define EI_CLASSIFIER_LABEL_COUNT 1
typedef struct { size_t total_length; int (*get_data)(size_t offset, size_t length, float* out_ptr); } signal_t;
typedef struct { const char* label; float value; } ei_impulse_result_classification_t;
typedef struct { int sampling; int dsp; int classification; int anomaly; } ei_impulse_result_timing_t;
typedef struct {
  ei_impulse_result_classification_t classification[EI_CLASSIFIER_LABEL_COUNT];
  float anomaly;
  ei_impulse_result_timing_t timing;
} ei_impulse_result_t;
typedef enum { EI_IMPULSE_OK = 0, EI_IMPULSE_DSP_ERROR = -5 } EI_IMPULSE_ERROR;
static const float fake_values[] = {FAKE_VALUES};
static double fake_sums[64];
static int fake_calls = 0;
inline EI_IMPULSE_ERROR run_classifier(signal_t* signal, ei_impulse_result_t* result, bool) {
  if (signal->total_length != EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE) return EI_IMPULSE_DSP_ERROR;
  float slice[5];
  double sum = 0;
  for (size_t off = 0; off < signal->total_length; off += 5) {
    size_t len = signal->total_length - off < 5 ? signal->total_length - off : 5;
    if (signal->get_data(off, len, slice) != 0) return EI_IMPULSE_DSP_ERROR;
    for (size_t i = 0; i < len; i++) sum += slice[i];
  }
  fake_sums[fake_calls % 64] = sum;
  result->classification[0].label = "value";
  result->classification[0].value = fake_values[fake_calls % (sizeof(fake_values) / sizeof(fake_values[0]))];
  result->timing.dsp = 0;
  result->timing.classification = 7;
  result->timing.anomaly = 0;
  fake_calls++;
  return EI_IMPULSE_OK;
}
"""

MAIN_CPP = r"""
void setup();
void loop();
int main() {
  setup();
  loop();
  return 0;
}
"""


def _compile(sketch_dir: Path, inc: Path, frame: int, values: list[float], out: Path) -> subprocess.CompletedProcess:
    ino = sketch_dir / f"{es.SKETCH}.ino"
    # The sums are printed by a tail appended to the sketch's translation unit (the fake's statics live there).
    tail = out.parent / "tail.cpp"
    tail.write_text('#include <stdio.h>\nstruct PrintSums { ~PrintSums() { for (int k = 0; k < fake_calls; k++) '
                    'printf("fake sum %d %.9g\\n", k, fake_sums[k]); } } print_sums;\n')
    unit = out.parent / "unit.cpp"
    unit.write_text(f'#include "{ino}"\n#include "{tail}"\n')
    (out.parent / "main.cpp").write_text(MAIN_CPP)
    cmd = ["g++", "-std=gnu++17", "-Wall", "-Werror", "-include", str(inc / "Arduino.h"), f"-I{inc}", f"-I{sketch_dir}",
           f"-DFAKE_FRAME={frame}", f"-DFAKE_VALUES={','.join(f'{v:.9g}f' for v in values)}",
           str(unit), str(out.parent / "main.cpp"), "-o", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_sketch_compiles_with_gxx_and_its_output_is_matched_by_the_device_step(tmp_path):
    window, features = 24, 3
    exp = fake_export(tmp_path / "exp", window, features)
    path = es.write_package(exp, library_zip(PROJECT, window * features, "float32"))
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "pkg")
    sketch = tmp_path / "pkg" / "forecast_studio_edge_impulse" / es.SKETCH
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "Arduino.h").write_text(ARDUINO_H)
    (inc / f"{PROJECT}_inferencing.h").write_text(FAKE_LIBRARY_H)
    entry = json.loads((exp / "report.json").read_text())["edge_impulse"]
    build = tmp_path / "build"
    build.mkdir()
    done = _compile(sketch, inc, window * features, entry["host_predictions_scaled"], build / "sketch")
    assert done.returncode == 0, done.stderr
    out = subprocess.run([str(build / "sketch")], capture_output=True, text=True, timeout=30).stdout
    lines = out.splitlines()
    assert lines[0].startswith("Forecast Studio: Edge Impulse static-buffer check (LSTM(8), 4 window(s))")
    assert lines[1:7] == ["Window 1 of 4 (studio test window 0)", f"Host: temperature={entry['host_predictions'][0]:.7g}",
                          "run_classifier returned: 0", "Timing: DSP 0 ms, inference 7 ms, anomaly 0 ms", "Predictions:",
                          f"  value: {entry['host_predictions_scaled'][0]:.5f}"]
    # The library was fed each embedded window whole, in order.
    with np.load(exp / "windows.npz") as z:
        X = z["X"]
    sums = [float(m.group(1)) for m in re.finditer(r"fake sum \d+ (\S+)", out)]
    np.testing.assert_allclose(sums, X[entry["windows"]].astype(np.float64).sum(axis=(1, 2)), rtol=1e-6, atol=1e-5)
    cmp = compare_ei(ei_readings(parse_transcript(out)), load_reference(exp))
    assert cmp.agree, cmp.problems
    assert [r.window for r in cmp.rows] == entry["windows"]
    # A library built for another input length stops the build with the sketch's own message.
    bad = _compile(sketch, inc, window * features + 1, [0.0], build / "bad")
    assert bad.returncode != 0 and "different length than EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE" in bad.stderr


# ------------------------------------------------------------------------------------------ emulator


def _wait(pred, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_emulator_replays_the_sketch_windows_and_the_device_step_matches_them(tmp_path):
    emulator = pytest.importorskip("core.board.emulator")
    exp = tmp_path / "exp"
    shutil.copytree(SLICE1, exp)
    es.write_package(exp, library_zip(PROJECT, 6, "float32"))
    entry = json.loads((exp / "report.json").read_text())["edge_impulse"]
    ref = load_reference(exp)
    emu = emulator.Emulator(exp, dtype="float32", mode="edge-impulse", ei_interval_s=0.05)
    board = None
    try:
        board = Board(emu.start())
        assert _wait(lambda: len(ei_readings(board.records())) >= 2 * len(entry["windows"]))
        readings = ei_readings(board.records())
    finally:
        if board is not None:
            board.close()
        emu.stop()
    cmp = compare_ei(readings, ref)
    assert cmp.agree, cmp.problems
    assert {r.window for r in cmp.rows} == set(entry["windows"])
    for r in cmp.rows:
        assert r.board == pytest.approx(entry["host_predictions"][entry["windows"].index(r.window)], abs=1e-4)


# ------------------------------------------------------------------------------------------ end to end


def page_export(out: Path, window: int, features: int) -> Path:
    """fake_export plus what the Export page draws from report.json (sizes, errors, budget, the model file)."""
    exp = fake_export(out, window, features)
    report = json.loads((exp / "report.json").read_text())
    entry = {"path": "model_float32.tflite", "bytes": 4096, "ops": ["UNIDIRECTIONAL_SEQUENCE_LSTM", "FULLY_CONNECTED"],
             "arena_bytes": 8192, "arena_measured_bytes": 7400, "arena_margin_bytes": 792,
             "max_abs_err": 1e-6, "mean_abs_err": 1e-7}
    report.update(out_dir=str(exp), dtypes={"float32": entry}, float32=entry, budget={})
    (exp / "report.json").write_text(json.dumps(report))
    (exp / "model_float32.tflite").write_bytes(b"\0" * 4096)
    return exp


@pytest.mark.slow  # builds a Keras model for the page's run
def test_export_page_offers_library_and_sketch_once_deployed(tmp_path, monkeypatch):
    # The deploy itself (SDK against the stand-in, then write_package) is the CLI test's; here the page shows
    # what write_package left in the export folder.
    from streamlit.testing.v1 import AppTest

    from tests.export_helpers import make_run

    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))
    monkeypatch.delenv("EI_API_KEY", raising=False)
    run = make_run(tmp_path / "run", kind="lstm", window=12, n_features=3, units=8)
    exp = page_export(tmp_path / "exp", 12, 3)
    at = AppTest.from_file(str(ROOT / "pages" / "6_export.py"), default_timeout=120)
    at.session_state["fs.run"] = run
    at.session_state["fs.export_dir"] = exp
    at.run()
    assert not at.exception, at.exception
    assert not [b for b in at.get("download_button") if "sketch" in b.proto.label]
    es.write_package(exp, library_zip(PROJECT, 36, "float32"))
    at.run()
    assert not at.exception, at.exception
    # The fake export's model file is zeros: the offline bundle section says it does not load (a message, not a
    # crash); the Edge Impulse section has nothing to complain about.
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "does not load on the TFLM runtime" in errors[0], errors
    (button,) = [b for b in at.get("download_button") if "static-buffer sketch" in b.proto.label]
    assert button.proto.id.endswith("export.dl.ei_package") and button.proto.type == "primary"
    captions = " ".join(c.value for c in at.caption)
    assert "Add .ZIP Library" in captions and "XIAO_ESP32S3" in captions and "temperature" in captions


@pytest.mark.slow
def test_trained_run_deployed_through_the_standin_gives_sketch_and_library(tmp_path):
    from tests.ei_standin import StandIn
    from tests.export_helpers import make_run

    make_run(tmp_path / "run", kind="lstm", window=12, n_features=3, units=8)
    with StandIn(key=KEY) as server:
        env = dict(os.environ, EI_API_ENDPOINT=server.url, EI_API_KEY=KEY)
        done = subprocess.run([sys.executable, "-m", "studio", "export", str(tmp_path / "run"), "--no-int8", "--ei",
                               "--out", str(tmp_path / "exp")], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    exp = tmp_path / "exp"
    package = exp / es.PACKAGE_ZIP
    assert f"wrote {package}" in done.stdout
    files = _zip_files(package)
    root = "forecast_studio_edge_impulse"
    library = files[f"{root}/{PROJECT}_inferencing.zip"]
    with zipfile.ZipFile(io.BytesIO(library)) as z:
        assert f"{PROJECT}_inferencing/src/{PROJECT}_inferencing.h" in z.namelist()
    ino = files[f"{root}/{es.SKETCH}/{es.SKETCH}.ino"].decode()
    header = files[f"{root}/{es.SKETCH}/fs_ei_windows.h"].decode()
    assert f"#include <{PROJECT}_inferencing.h>" in ino and "#define FS_EI_WINDOW_VALUES 36" in header
    entry = json.loads((exp / "report.json").read_text())["edge_impulse"]
    assert len(_floats_in_features(header)) == 36 * len(entry["windows"])
    assert KEY not in json.dumps(entry) and all(KEY.encode() not in b for b in files.values())
    # The sketch holds the windows the offline bundle embeds, so either board is matched against one list.
    bundle = next(p for p in exp.glob("forecast_studio_*.zip") if p.name != es.PACKAGE_ZIP)
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read(next(n for n in z.namelist() if n.endswith("/bundle.json"))))
    assert manifest["test_indices"] == entry["windows"]
    transcript = "".join(f"Timing: DSP 0 ms, inference 3 ms, anomaly 0 ms\nPredictions:\n  value: {v:.5f}\n"
                         for v in entry["host_predictions_scaled"])
    cmp = compare_ei(ei_readings(parse_transcript(transcript)), load_reference(exp))
    assert cmp.agree, cmp.problems
    np.testing.assert_allclose([r.host for r in cmp.rows], entry["host_predictions"], rtol=1e-6)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_sketch_prints_the_calibrated_band_and_old_runs_still_build(tmp_path):
    window, features = 12, 1
    exp = fake_export(tmp_path / "exp", window, features, target="T (°C)")
    (exp / "intervals.json").write_text(json.dumps({"targets": ["T (°C)"], "horizon": 1, "levels": [80.0, 95.0], "bands": {
        "80": {"level": 80.0, "half_width": [[0.75]]}, "95": {"level": 95.0, "half_width": [[1.5]]}}}))
    library = library_zip(PROJECT, window * features, "float32")
    spec = es.load_sketch_spec(exp, es.inspect_library(library))
    assert spec.band_levels == ("80", "95") and spec.band_half_width == (0.75, 1.5)
    path = es.write_package(exp, library)
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "pkg")
    sketch = tmp_path / "pkg" / "forecast_studio_edge_impulse" / es.SKETCH
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "Arduino.h").write_text(ARDUINO_H)
    (inc / f"{PROJECT}_inferencing.h").write_text(FAKE_LIBRARY_H)
    build = tmp_path / "build"
    build.mkdir()
    values = [float(v) for v in spec.host_scaled]
    done = _compile(sketch, inc, window * features, values, build / "sketch")
    assert done.returncode == 0, done.stderr
    out = subprocess.run([str(build / "sketch")], capture_output=True, timeout=30).stdout.decode("utf-8").splitlines()
    bands = [line for line in out if line.startswith("Band ")]
    assert bands[:2] == [es.band_text(spec, values[0], 0), es.band_text(spec, values[0], 1)]
    lo, hi = (float(v) for v in bands[0].split(": ")[1].split(" (")[0].split(" .. "))
    assert hi - lo == pytest.approx(1.5, abs=1e-4) and (lo + hi) / 2 == pytest.approx(spec.host_units[0], abs=1e-4)
    assert bands[0].endswith("(T (°C))") and len(bands) == 2 * spec.count
    # the Device step still reads the block around the band lines
    cmp = compare_ei(ei_readings(parse_transcript("\n".join(out))), load_reference(exp))
    assert cmp.agree, cmp.problems
    # an export without intervals.json: the sketch builds and prints no band
    (exp / "intervals.json").unlink()
    assert es.load_sketch_spec(exp, es.inspect_library(library)).band_levels == ()
