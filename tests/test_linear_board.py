"""Issue 34, "change_linear" on the board: the network outputs only the change, and the firmware adds the fitted
linear reference (core.linear_reference.reference_values: the bias, then each row's product in row order, summed in
double, rounded once to float). model_config.h must hold the weights exactly, the g++-compiled fs_protocol.cpp must
print what the emulator prints, and a changed weight or a float accumulation must print something else."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.board.emulator import Emulator, ProtocolEngine, add_last_outside
from core.errors import StudioError
from core.firmware import load_bundle_spec, render_bundle
from core.linear_reference import LinearReference, reference_values
from tests.firmware_support import SLICE1_EXPORT, SLICE_CENTER, SLICE_EXPORT, SLICE_SCALE

HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"
GXX = shutil.which("g++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed: the firmware protocol cannot be compiled here")

WINDOW = [[11.0, -4.0], [12.5, -6.0], [9.0, -1.0]]  # data units, 3 rows x (temp, hum)
# Weights whose products cancel: summed in float the big partial sums lose the low bits the double sum keeps, so a
# float accumulation prints another forecast (checked in test_the_weights_tell_double_from_float).
WEIGHTS = {
    # 2 targets (temp, hum), horizon 1: (targets, horizon, window) flat, target-major
    "t2h1": ([30000.123, -12000.05, 0.33333334, 0.1, 0.7, 0.2], [0.012345679, -0.3]),
    # 1 target (temp), horizon 2: step 0 then step 1, so a step/target index mix-up shows
    "t1h2": ([30000.123, -12000.05, 0.33333334, -0.25, 0.5, 0.75], [0.012345679, 1.5]),
}


def _linear_export(tmp_path: Path, case: str, weights=None, bias=None) -> Path:
    """The slice export (its model copies the last step) marked as a "change_linear" model whose float32 graph
    outputs the change and whose report's model holds the fitted reference. "t1h2": the same two outputs read as
    one target over a horizon of 2."""
    export = tmp_path / f"export_{case}"
    shutil.copytree(SLICE_EXPORT, export)
    w, b = WEIGHTS[case]
    report = json.loads((export / "report.json").read_text())
    targets = [0, 1] if case == "t2h1" else [0]
    report["model"] = {"name": "slice", "target_input_index": targets, "target_form": "change_linear",
                       "linear_weights": list(w if weights is None else weights),
                       "linear_bias": list(b if bias is None else bias)}
    report["residual"] = True
    report["float32"].update(residual_outside=True, reference="linear")
    if case == "t1h2":
        report["horizon"] = 2
        report["targets"] = ["temp"]
    (export / "report.json").write_text(json.dumps(report))
    return export


def _p_line() -> bytes:
    return ("P " + ",".join(f"{v:g}" for row in WINDOW for v in row) + "\n").encode()


def _scaled() -> np.ndarray:
    return ((np.array(WINDOW, np.float32) - SLICE_CENTER) / SLICE_SCALE).astype(np.float32)


def _last_step_model(spec):
    """tests/firmware_host/main.cpp's LastStepModel in Python: step h of target t is column t, h rows before the last."""
    def run(scaled: np.ndarray):
        x = np.asarray(scaled, np.float32).reshape(spec.window, spec.features)
        y = np.array([x[spec.window - 1 - h, t % spec.features] for h in range(spec.horizon)
                      for t in range(spec.targets)], np.float32)
        return y, 7
    return run


def _emulated(spec) -> str:
    return ProtocolEngine(spec, _last_step_model(spec)).feed(_p_line())[0]


def _values(line: str) -> list[str]:
    return line.split(" y=")[1].split(" ")[0].split(",")


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def _expected(spec, accumulate=np.float64) -> list[str]:
    """The FS RESULT values worked out here: the model's change plus the reference summed in ``accumulate``."""
    x = _scaled()
    y = _last_step_model(spec)(x)[0]
    w = np.asarray(spec.linear_weights, np.float32).reshape(spec.targets, spec.horizon, spec.window)
    b = np.asarray(spec.linear_bias, np.float32).reshape(spec.targets, spec.horizon)
    out = []
    for i in range(spec.horizon * spec.targets):
        k, j = i // spec.targets, i % spec.targets
        acc = accumulate(b[j, k])
        for r in range(spec.window):
            acc = accumulate(acc + accumulate(w[j, k, r]) * accumulate(x[r, spec.target_input[j]]))
        level = np.float32(y[i] + np.float32(acc))
        t = j
        out.append("%.7g" % float(np.float32(level * SLICE_SCALE[t] + SLICE_CENTER[t])))
    return out


@pytest.mark.parametrize("case", sorted(WEIGHTS))
def test_the_bundle_spec_reads_the_reference(tmp_path, case):
    spec = load_bundle_spec(_linear_export(tmp_path, case), "float32")
    assert spec.residual_outside and spec.linear_weights == tuple(float(np.float32(v)) for v in WEIGHTS[case][0])
    assert spec.linear_bias == tuple(float(np.float32(v)) for v in WEIGHTS[case][1])
    assert (spec.horizon, spec.targets) == ((1, 2) if case == "t2h1" else (2, 1))


@pytest.mark.parametrize("case", sorted(WEIGHTS))
def test_the_emulator_adds_reference_values(tmp_path, case):
    """The emulator's add-back is core.linear_reference.reference_values itself, then a float32 add."""
    spec = load_bundle_spec(_linear_export(tmp_path, case), "float32")
    x = _scaled()
    change = np.arange(spec.horizon * spec.targets, dtype=np.float32) * np.float32(0.125) - np.float32(0.3)
    ref = LinearReference.from_lists(spec.linear_weights, spec.linear_bias, spec.targets, spec.horizon, spec.window)
    want = (change + reference_values(ref, x[None], spec.target_input).reshape(-1)).astype(np.float32)
    got = add_last_outside(spec, change.copy(), x.reshape(-1))
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert _values(_emulated(spec)) == _expected(spec)


def test_the_weights_tell_double_from_float(tmp_path):
    """The test weights are chosen so that a float accumulation prints another forecast: the compiled check below
    would catch it."""
    for case in WEIGHTS:
        spec = load_bundle_spec(_linear_export(tmp_path, case), "float32")
        assert _expected(spec, np.float32) != _expected(spec), case


@pytest.mark.parametrize("weights, bias", [([1.0] * 5, [0.0, 0.0]), ([1.0] * 6, [0.0]),
                                           ([1.0] * 5 + [float("nan")], [0.0, 0.0])], ids=["short", "no-bias", "nan"])
def test_a_reference_that_does_not_fit_is_refused(tmp_path, weights, bias):
    with pytest.raises(StudioError, match="linear weights"):
        load_bundle_spec(_linear_export(tmp_path, "t2h1", weights, bias), "float32")


def _float_literals(header: str, name: str) -> np.ndarray:
    body = re.search(name + r"\[[^\]]*\] = \{(.*?)\};", header, re.S).group(1)
    return np.array([np.float32(v.strip().rstrip("f")) for v in body.split(",") if v.strip()], np.float32)


def _sketch(export: Path, tmp_path: Path) -> Path:
    zpath = render_bundle(export, "float32", out=tmp_path / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "b")
    return next((tmp_path / "b").glob("*/forecast_studio"))


@pytest.mark.parametrize("case", sorted(WEIGHTS))
def test_model_config_holds_the_weights_exactly(tmp_path, case):
    export = _linear_export(tmp_path, case)
    header = (_sketch(export, tmp_path) / "model_config.h").read_text()
    assert "#define FS_RESIDUAL_OUTSIDE 1" in header and "#define FS_LINEAR_REFERENCE 1" in header
    assert "kLinearWeight[FS_TARGETS * FS_HORIZON * FS_WINDOW]" in header
    assert "kLinearBias[FS_TARGETS * FS_HORIZON]" in header
    w, b = (np.asarray(v, np.float32) for v in WEIGHTS[case])
    got_w, got_b = _float_literals(header, "kLinearWeight"), _float_literals(header, "kLinearBias")
    assert got_w.tobytes() == w.tobytes() and got_b.tobytes() == b.tobytes()  # bit for bit
    assert "24 bytes of flash" in header or "32 bytes of flash" in header


def test_other_forms_have_no_linear_reference(tmp_path):
    header = (_sketch(SLICE_EXPORT, tmp_path) / "model_config.h").read_text()
    assert "#define FS_LINEAR_REFERENCE 0" in header and "#define FS_LINEAR_WEIGHT nullptr" in header


def _compile(sketch: Path, exe: Path, protocol: Path | None = None) -> Path:
    proc = subprocess.run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}",
                           str(protocol or sketch / "fs_protocol.cpp"), str(HOST_MAIN), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return exe


def _board(exe: Path) -> str:
    out = subprocess.run([str(exe)], input=_p_line(), capture_output=True, timeout=30).stdout.decode().splitlines()
    return next(line for line in out if line.startswith("FS RESULT"))


# 2 targets over a horizon of 2: the only shape here where a step-major weight layout would read other weights than
# the target-major one. No .tflite has that shape, so its bundle spec is the "t2h1" one widened and rendered directly.
T2H2 = ([30000.123, -12000.05, 0.33333334, -0.25, 0.5, 0.75, 0.1, 0.7, 0.2, -1.5, 2.25, 0.125],
        [0.012345679, 1.5, -0.3, 0.0625])


def _t2h2_spec(tmp_path: Path):
    import dataclasses

    base = load_bundle_spec(_linear_export(tmp_path, "t2h1"), "float32")
    host = np.repeat(base.host_predictions, 2, axis=1).astype(np.float32)
    return dataclasses.replace(base, horizon=2, host_predictions=host,
                               linear_weights=tuple(float(np.float32(v)) for v in T2H2[0]),
                               linear_bias=tuple(float(np.float32(v)) for v in T2H2[1]))


def _case(tmp_path: Path, case: str):
    """(bundle spec, sketch folder): the rendered bundle of the case's export, or for "t2h2" the widened spec's files."""
    if case != "t2h2":
        export = _linear_export(tmp_path, case)
        return load_bundle_spec(export, "float32"), _sketch(export, tmp_path)
    from core.firmware.render import render_files

    spec = _t2h2_spec(tmp_path)
    sketch = tmp_path / "t2h2" / "forecast_studio"
    sketch.mkdir(parents=True)
    for name, text in render_files(spec).items():
        (sketch / name).write_text(text)
    return spec, sketch


@needs_gxx
@pytest.mark.parametrize("case", sorted(WEIGHTS) + ["t2h2"])
def test_the_compiled_firmware_prints_the_emulators_values(tmp_path, case):
    """Byte for byte, and a mutated firmware does not: one weight in model_config.h moved by one float step, or the
    sum accumulated in float instead of double."""
    spec, sketch = _case(tmp_path, case)
    if case == "t2h2":  # the layout check: read step-major, the same weights give another forecast
        swapped = np.asarray(spec.linear_weights).reshape(2, 2, 3).transpose(1, 0, 2).reshape(-1)
        assert _expected(dataclasses_replace(spec, linear_weights=tuple(swapped))) != _expected(spec)
    emulated = _values(_emulated(spec))
    assert _values(_board(_compile(sketch, tmp_path / "fs_host"))) == emulated == _expected(spec)

    # Mutant 1: the first weight (step 0, target 0, the oldest row) moved by one float step.
    header = (sketch / "model_config.h").read_text()
    w = np.asarray(spec.linear_weights, np.float32)
    moved = np.nextafter(w[0], np.float32(np.inf))
    mutant = header.replace("%.9gf" % w[0], "%.9gf" % moved, 1)
    assert mutant != header
    (sketch / "model_config.h").write_text(mutant)
    assert _values(_board(_compile(sketch, tmp_path / "fs_weight"))) != emulated
    (sketch / "model_config.h").write_text(header)

    # Mutant 2: fs_protocol.cpp's accumulator in float.
    source = (sketch / "fs_protocol.cpp").read_text()
    assert source.count("double acc = static_cast<double>(info_.linear_bias[at]);") == 1
    floated = (source.replace("double acc = static_cast<double>(info_.linear_bias[at]);", "float acc = info_.linear_bias[at];")
               .replace("acc += static_cast<double>(weight[r]) * static_cast<double>(buf_.scaled[r * info_.features + column]);",
                        "acc += weight[r] * buf_.scaled[r * info_.features + column];"))
    assert floated.count("float acc") == 1 and "static_cast<double>(weight[r])" not in floated
    mutant_cpp = sketch / "fs_protocol_float.cpp"
    mutant_cpp.write_text(floated)
    got = _values(_board(_compile(sketch, tmp_path / "fs_float", mutant_cpp)))
    assert got != emulated and got == _expected(spec, np.float32)


def test_edge_impulse_refuses_change_linear(tmp_path):
    """Edge Impulse runs the graph alone (its sketch feeds scaled windows, any add-back inside the int8 graph), so
    the linear form is refused on every part of that path, pointing at the offline bundle."""
    from core.edge_impulse.client import check_single_output
    from core.edge_impulse.sketch import EiLibrary, load_sketch_spec
    from core.models import ModelSpec

    spec = ModelSpec(kind="gru", window=3, n_inputs=1, horizon=1, n_targets=1, units=4,
                     target_input_index=(0,), target_form="change_linear")
    with pytest.raises(StudioError, match="change from a linear forecast") as e:
        check_single_output(spec)
    assert "offline firmware bundle" in e.value.fix
    check_single_output(ModelSpec(kind="gru", window=3, n_inputs=1, horizon=1, n_targets=1, units=4,
                                  target_input_index=(0,), target_form="change_last"))
    export = _linear_export(tmp_path, "t1h2")
    with pytest.raises(StudioError, match="change from a linear forecast"):
        Emulator(export, "float32", mode="edge-impulse")
    # The sketch's own reader, on a one-value export (horizon 1, one target) that it would otherwise take.
    one = tmp_path / "one"
    shutil.copytree(SLICE1_EXPORT, one)
    report = json.loads((one / "report.json").read_text())
    load_sketch_spec(one, EiLibrary("x_inferencing.h", "x", None, "x.zip"), "float32")
    report["model"] = {"name": "slice", "target_input_index": [0], "target_form": "change_linear",
                       "linear_weights": [0.0, 0.0, 1.0], "linear_bias": [0.0]}
    (one / "report.json").write_text(json.dumps(report))
    with pytest.raises(StudioError, match="change from a linear forecast"):
        load_sketch_spec(one, EiLibrary("x_inferencing.h", "x", None, "x.zip"), "float32")


# ------------------------------------------------------------------------------ a real exported change_linear run


def _linear_run(run_dir: Path, kind: str):
    """A run whose network is a random change-only (level) network over 2 targets and a horizon of 3, made a
    "change_linear" run with a reference fitted on its test windows; its host forecasts are the host's reference path:
    the network's change plus core.linear_reference.reference_values."""
    import dataclasses

    from core.linear_reference import fit
    from core.runs import load_run
    from tests.export_helpers import make_run

    run = make_run(run_dir, kind=kind, window=12, n_features=3, units=8, horizon=3, n_targets=2, rows=400)
    spec = run.model_spec
    idx = list(spec.target_input_index)
    ref = fit(run.samples["X_test"], run.samples["y_test"], idx)
    change = run.predict(run.samples["X_test"])  # the level network: the change the graph outputs
    w, b = ref.to_lists()
    run.model_spec = dataclasses.replace(spec, target_form="change_linear", linear_weights=w, linear_bias=b).validate()
    run.samples["y_host"] = (change + reference_values(ref, run.samples["X_test"], idx)).astype(np.float32)
    run.save(run_dir)
    return load_run(run_dir)


@pytest.fixture(scope="module")
def linear_exports(tmp_path_factory):
    from core.export import export_run

    base = tmp_path_factory.mktemp("linear_exports")
    return {kind: export_run(_linear_run(base / f"run_{kind}", kind), base / f"export_{kind}")
            for kind in ("lstm", "gru")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_an_exported_change_linear_run_adds_the_reference_outside_every_graph(linear_exports, kind):
    """Fused LSTM and GRU step loop, float32 and int8: every graph outputs the change, the report says the firmware
    adds the linear reference, the export's own TFLM check passed, and what it verified is exactly the tflite-micro
    output of the exported file plus core.linear_reference.reference_values (difference 0); the emulated board prints
    the same numbers."""
    from core.board.emulator import make_runner
    from core.export.folder import ExportFolder
    from core.export.run import _verify_tflm
    from core.models import ModelSpec
    from core.runs import load_run

    rep = linear_exports[kind]
    out = Path(rep.out_dir)
    report = json.loads((out / "report.json").read_text())
    model = ModelSpec.from_dict(report["model"])
    assert model.target_form == "change_linear" and model.linear_reference is not None
    ref = model.linear_reference
    idx = list(model.target_input_index)
    run = load_run(out.parent / f"run_{kind}")
    for dtype in ("float32", "int8"):
        entry = report[dtype]
        assert entry["residual_outside"] is True and entry["reference"] == "linear", dtype
        assert entry["reference_rows"] is None and entry["linear_reference_bytes"] == 4 * (2 * 3 * 12 + 2 * 3)
        assert entry["output_shape"][-2:] == [3, 2]
    assert report["float32"]["max_abs_err"] < 1e-3 * float(np.max(np.abs(run.scaler.scale)))
    assert "linear reference" in report["quantisation"]["residual_add"]
    with np.load(out / "windows.npz") as z:
        X, verified = z["X"].astype(np.float32), z["y_float32"]
    targets = list(run.window_spec.targets)
    if kind == "lstm":  # the window form: one invoke of the file on tflite-micro, the reference added here
        raw = _verify_tflm(out / "model_float32.tflite", X, 120)[0].reshape(len(X), 3, 2).astype(np.float32)
        mine = run.scaler.inverse((raw + reference_values(ref, X, idx)).astype(np.float64), targets).astype(np.float32)
        assert np.array_equal(mine, verified)  # difference 0
        # and without the reference the graph's output is only the change (far from the levels)
        assert not np.allclose(run.scaler.inverse(raw.astype(np.float64), targets), verified, atol=1e-2)
    for dtype in ("float32", "int8"):
        spec = load_bundle_spec(out, dtype)
        assert spec.linear_weights == tuple(model.linear_weights) and spec.form == ("step" if kind == "gru" else "window")
        engine = ProtocolEngine(spec, make_runner(spec))
        lines = engine.feed(b"T\n")
        got = np.array([[float(v) for v in ln.split(" y=")[1].split(" ")[0].split(",")] for ln in lines[:-1]])
        with np.load(out / "windows.npz") as z:
            want = z[f"y_{dtype}"][list(spec.test_indices)].reshape(len(got), -1)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-4), dtype  # the bundle's windows, printed with 7 digits
        header = render_and_read_config(out, dtype)
        assert "#define FS_LINEAR_REFERENCE 1" in header
        assert _float_literals(header, "kLinearWeight").tobytes() == np.asarray(model.linear_weights, np.float32).tobytes()
    assert ExportFolder.open(out).model["target_form"] == "change_linear"


def render_and_read_config(out: Path, dtype: str) -> str:

    from core.firmware import render_bundle as render

    data = render(out, dtype, out=out.parent / f"bundle_{out.name}_{dtype}.zip")
    with zipfile.ZipFile(data) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/model_config.h"))).decode()
