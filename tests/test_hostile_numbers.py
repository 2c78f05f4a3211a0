"""Hostile classes 4 and 5: silent acceptance and hangs. Every number a user hands over goes through one
validator (core/numbers.py): zero where zero means nothing, negative, NaN, infinite and huge values are refused
on the command line and in files (run.json, report.json), and every duration and count is finite, positive
and bounded. run.json is inside the run's checksum."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import StudioError
from core.firmware import load_bundle_spec
from core.numbers import check_finite, check_number
from core.runs import load_run, seal
from studio.cli import main
from tests.firmware_support import SLICE_EXPORT
from tests.forecast_helpers import make_run, synthetic

ROOT = Path(__file__).resolve().parent.parent

BAD_OPTIONS = [
    (["train", "--horizon", "0"], "--horizon"),
    (["train", "--horizon", "-3"], "--horizon"),
    (["train", "--window", "nan"], "--window"),
    (["train", "--window", "1e12"], "--window"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "inf"], "--epochs"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--units", "2.5"], "--units"),
    (["train", "--batch-size", "-1"], "--batch-size"),
    (["train", "--patience", "nan"], "--patience"),
    (["train", "--seed", "-1"], "--seed"),
    (["device", "--timeout", "nan"], "--timeout"),
    (["device", "--timeout", "inf"], "--timeout"),
    (["device", "--timeout", "-1"], "--timeout"),
    (["device", "--listen", "nan"], "--listen"),
    (["device", "--listen", "1e300"], "--listen"),
    (["device", "--baud", "99999999999"], "--baud"),
    (["device", "--baud", "0"], "--baud"),
    (["device", "--windows", "-1"], "--windows"),
    (["emulate", "x", "--interval", "nan"], "--interval"),
    (["emulate", "x", "--interval", "0"], "--interval"),
    (["--port", "99999"], "--port"),
    (["--workers", "0"], "--workers"),
]


def _argv(args: list[str]) -> list[str]:
    if args[0] == "train":
        return args[:1] + ["--csv", "x.csv", "--target", "t", "--out", "/tmp/never"] + args[1:]
    if args[0] == "device":
        return args[:1] + ["--port", "loop://"] + args[1:]
    return args


@pytest.mark.parametrize("args,option", BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_numbers_on_the_command_line_are_one_line_errors(args, option, capsys):
    assert main(_argv(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and option in err, err


def test_device_timeout_nan_does_not_hang():
    # Before: --timeout nan spun at 100% CPU forever. A subprocess, so a regression fails instead of hanging.
    proc = subprocess.run([sys.executable, "-m", "studio", "device", "--port", "loop://", "--timeout", "nan"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--timeout" in proc.stderr and "Traceback" not in proc.stderr


def test_the_validator():
    assert check_number("3", "n", integer=True, minimum=1) == 3
    assert check_number(2.0, "n", integer=True, minimum=1) == 2
    for bad in (0, -1, float("nan"), float("inf"), "x", None, True, 1e400, 2.5):
        with pytest.raises(StudioError):
            check_number(bad, "n", integer=True, minimum=1, maximum=100)
    with pytest.raises(StudioError, match="above 0"):
        check_finite([1.0, 0.0], "scale", positive=True)
    with pytest.raises(StudioError, match="NaN"):
        check_finite([1.0, float("nan")], "scale")
    with pytest.raises(StudioError, match="beyond"):
        check_finite([1e308], "scale")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.windows import WindowSpec

    spec = WindowSpec(targets=("temp",), features=("temp", "hum"), window=8, horizon=1)
    _w, _m, _c, run = make_run(tmp_path_factory.mktemp("num_run") / "run", synthetic(n=300), spec)
    return run.run_dir


def _edit(src: Path, dst: Path, change, reseal: bool = True) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "run.json").read_text())
    change(manifest)
    (dst / "run.json").write_text(json.dumps(seal(manifest) if reseal else manifest))
    return dst


@pytest.mark.parametrize("scale", [0.0, 1e308, -1.0, "nan"])
def test_a_run_whose_scaler_scale_is_zero_huge_or_negative_is_refused(run_dir, tmp_path, scale):
    def change(m):
        m["scaler"]["scale"] = [scale] * len(m["scaler"]["scale"])

    with pytest.raises(StudioError, match="scaler scale"):
        load_run(_edit(run_dir, tmp_path / "bad", change))


def test_run_json_is_inside_the_runs_checksum(run_dir, tmp_path):
    def change(m):
        m["window_spec"]["horizon"] = 5

    with pytest.raises(StudioError, match="run.json was changed"):
        load_run(_edit(run_dir, tmp_path / "edited", change, reseal=False))
    assert load_run(run_dir).model_spec.horizon == 1


@pytest.mark.parametrize("field,value,message", [
    ("arena_bytes", "lots", "arena_bytes"),
    ("arena_bytes", 1e300, "arena_bytes"),
    ("arena_bytes", -5, "arena_bytes"),
    ("arena_bytes", 2 ** 36, "tensor arena"),
])
def test_a_report_with_a_bad_arena_is_one_clear_error(tmp_path, field, value, message):
    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    report = json.loads((export / "report.json").read_text())
    report["float32"][field] = value
    (export / "report.json").write_text(json.dumps(report))
    with pytest.raises(StudioError, match=message):
        load_bundle_spec(export, "float32")


@pytest.mark.parametrize("change", [
    lambda r: r["scaler"].update(scale=[float("nan"), 1.0]),
    lambda r: r["scaler"].update(center=[1e308 * 10, 0.0]),
    lambda r: r.update(horizon="two"),
    lambda r: r.update(window=-3),
])
def test_a_report_with_bad_numbers_is_refused(tmp_path, change):
    export = tmp_path / "export"
    shutil.copytree(SLICE_EXPORT, export)
    report = json.loads((export / "report.json").read_text())
    change(report)
    (export / "report.json").write_text(json.dumps(report))
    with pytest.raises(StudioError):
        load_bundle_spec(export, "float32")


def test_cli_help_still_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--horizon" in capsys.readouterr().out


@pytest.mark.parametrize("step", ["0h", "-5min", "0D"])
def test_a_resampling_step_of_zero_or_less_is_refused(step):
    from core.data import CleanOptions

    with pytest.raises(StudioError, match="positive interval"):
        CleanOptions(resample=step)
