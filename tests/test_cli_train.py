"""`python -m studio train`: a real subprocess on a generated CSV; bad input exits 2 with one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    n = 500
    t = np.arange(n)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2023-03-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"),
        "temp": np.round(15 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n), 2),
        "pressure": np.round(1010 + np.cumsum(rng.normal(0, 0.2, n)), 1),
    })
    path = tmp_path_factory.mktemp("cli") / "readings.csv"
    frame.to_csv(path, index=False)
    return path


def studio(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "studio", "train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("backend,model", [("keras", "lstm"), ("torch", "gru")])
def test_train_writes_a_run_and_prints_the_verdict(csv_file, tmp_path, backend, model):
    out = tmp_path / "run"
    proc = studio("--csv", str(csv_file), "--target", "temp", "--window", "24", "--horizon", "2",
                  "--model", model, "--units", "8", "--backend", backend, "--epochs", "2", "--seed", "3",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 1/2" in proc.stderr and "epoch 2/2" in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"mae", "rmse", "smape", "mase"} <= set(metrics["model"])
    assert {"naive", "last_value", "seasonal_naive", "mean"} <= set(metrics["baselines"])
    assert len(metrics["per_step"]) == 2
    assert "Test metrics" in proc.stdout and metrics["verdict"] in proc.stdout
    # The Train page's words and cells (issue 32): windows and time points, MAE not mae, no exponent.
    assert f"on {metrics['n_windows']:,} test windows forecasting {metrics['points']:,} time points" in proc.stdout
    assert "MAE" in proc.stdout and "sMAPE (%)" in proc.stdout and "e+0" not in proc.stdout
    bands = json.loads((out / "intervals.json").read_text())
    assert bands["levels"] == [80.0, 95.0] and metrics["intervals"] == bands
    assert np.asarray(bands["bands"]["80"]["half_width"]).shape == (2, 1)
    assert "80% band: " in proc.stdout and "% of test values inside; adaptive on the board, walking forward: " in proc.stdout
    assert "mean width " in proc.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["model_spec"]["kind"] == model and run["model_spec"]["backend"] == backend
    assert run["window_spec"]["targets"] == ["temp"] and run["dataset"]["name"] == "readings.csv"
    assert run["train_config"]["epochs"] == 2 and run["train_config"]["seed"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("args,words", [
    (["--target", "nope"], "'nope'"),
    (["--target", "temp", "--dropout", "1.0"], "Dropout"),
    (["--target", "temp", "--units", "0"], "unit"),
    (["--target", "temp", "--batch-size", "100000"], "--batch-size"),
    (["--target", "temp", "--split", "0.7,0.3"], "leave no room"),
    (["--target", "temp", "--split", "0.7"], "--split"),
    (["--target", "temp", "--interval-levels", "80,100"], "between 1 and 99.9 percent"),
    (["--target", "temp", "--interval-levels", "0"], "between 1 and 99.9 percent"),
    (["--target", "temp", "--interval-levels", "150"], "150%"),
    (["--target", "temp", "--interval-levels", "99.9999999"], "at most 2 decimals"),
    (["--target", "temp", "--interval-levels", "80,,95"], "empty entry"),
])
def test_bad_input_exits_2_with_one_line(csv_file, tmp_path, args, words):
    proc = studio("--csv", str(csv_file), *args, "--epochs", "1", "--out", str(tmp_path / "run"), timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_missing_file_exits_2(tmp_path):
    proc = studio("--csv", str(tmp_path / "absent.csv"), "--target", "x", "--out", str(tmp_path / "run"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: There is no file at")


@pytest.mark.slow
def test_a_short_series_says_its_verdict_rests_on_few_test_points(tmp_path):
    # 60 quarters: 9 test rows. Every one is forecast (no gap before the test part), and that is still few.
    n = 60
    path = tmp_path / "quarters.csv"
    pd.DataFrame({"date": pd.date_range("1990-01-01", periods=n, freq="QS").strftime("%Y-%m-%d"),
                  "gdp": np.round(1000 + 12 * np.arange(n) + 8 * np.sin(np.arange(n)), 1)}).to_csv(path, index=False)
    out = tmp_path / "run"
    proc = studio("--csv", str(path), "--target", "gdp", "--window", "8", "--units", "4", "--epochs", "1",
                  "--backend", "torch", "--interval-levels", "50,99", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["points"] == n - round(n * 0.85) == 9 and metrics["n_windows"] == 9
    # A validation part of a few windows cannot hold a 99% band: it says how many it needs and keeps 50%
    bands = json.loads((out / "intervals.json").read_text())
    assert bands["levels_asked"] == [50.0, 99.0] and bands["levels"] == [50.0]
    assert "a 99% band needs at least 99 validation windows" in proc.stdout and "Bands kept: 50%" in proc.stdout
    assert "50% band: " in proc.stdout
    assert "over 9 test points" in metrics["verdict"] and metrics["verdict"] in proc.stdout
    assert "This comparison is weak: it rests on only 9 test points (fewer than 20)" in proc.stdout
    assert "--split 0.6,0.15" in proc.stdout and "smaller --window" in proc.stdout


@pytest.mark.slow
def test_log_target_trains_a_multiplicative_run_and_refuses_a_zero(tmp_path):
    """Issue 34 item 2: --log-target reads the target as log(value) (the run's scaler says so); a 0 in the target
    is refused before any training, naming the column and the row."""
    n = 120
    t = np.arange(n)
    y = 100 * np.exp(0.01 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    path = tmp_path / "sales.csv"
    pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
                  "sales": np.round(y, 2)}).to_csv(path, index=False)
    out = tmp_path / "run"
    proc = studio("--csv", str(path), "--target", "sales", "--log-target", "--no-search", "--epochs", "2",
                  "--units", "4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["window_spec"]["log"] is True and run["scaler"]["log"] == ["sales"]
    frame = pd.read_csv(path)
    frame.loc[40, "sales"] = 0
    frame.to_csv(path, index=False)
    proc = studio("--csv", str(path), "--target", "sales", "--log-target", "--out", str(tmp_path / "run2"))
    assert proc.returncode == 2
    assert "'sales' above 0, and row 41" in proc.stderr and "--no-log-target" in proc.stderr


def test_a_series_shorter_than_one_batch_trains_on_all_its_windows(tmp_path):
    # 36 months at window 12: a dozen training windows, fewer than the default batch of 32, which refused to train
    # after a whole search had chosen that window (sktime's ShampooSales.csv).
    n = 36
    path = tmp_path / "shampoo.csv"
    pd.DataFrame({"month": pd.date_range("1991-01-01", periods=n, freq="MS").strftime("%Y-%m"),
                  "sales": np.round(150 + 8 * np.arange(n) + 30 * np.sin(np.arange(n)), 1)}).to_csv(path, index=False)
    out = tmp_path / "run"
    proc = studio("--csv", str(path), "--target", "sales", "--window", "12", "--no-search", "--units", "4",
                  "--epochs", "1", "--backend", "torch", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    import re

    n_train = int(re.search(r"windows train (\d+),", proc.stderr).group(1))
    assert n_train < 32 and json.loads((out / "run.json").read_text())["train_config"]["batch_size"] == n_train


def test_target_form_change_linear_trains_and_saves_its_reference(csv_file, tmp_path):
    out = tmp_path / "run"
    proc = studio("--csv", str(csv_file), "--target", "temp", "--window", "24", "--target-form", "change_linear",
                  "--no-search", "--units", "4", "--epochs", "1", "--backend", "torch", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "change from a linear forecast" in proc.stderr and "linear reference: ridge autoregression toward the " in proc.stderr
    run = json.loads((out / "run.json").read_text())
    spec = run["model_spec"]
    assert spec["target_form"] == "change_linear" and len(spec["linear_weights"]) == 24 and spec["season_period"] == 24
    assert run["info"]["linear_reference"]["penalties"][0] > 0


def test_target_form_change_smooth_trains_exponential_smoothing_as_its_reference(csv_file, tmp_path):
    """``--target-form change_smooth``: a change_linear run whose reference is Holt-Winters over the window (issue 34),
    said in words; a window under two seasons is refused with the reason, before any training."""
    out = tmp_path / "run"
    proc = studio("--csv", str(csv_file), "--target", "temp", "--window", "72", "--target-form", "change_smooth",
                  "--no-search", "--units", "4", "--epochs", "1", "--backend", "torch", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "change from exponential smoothing" in proc.stderr
    assert "linear reference: exponential smoothing (Holt-Winters) over the window itself, no ridge, fitted on the" in proc.stderr
    run = json.loads((out / "run.json").read_text())
    spec = run["model_spec"]
    assert (spec["target_form"], spec["linear_base"], len(spec["linear_weights"])) == ("change_linear", "smooth", 72)
    assert run["info"]["linear_reference"]["penalties"] == [None] and not any(spec["linear_bias"])
    short = studio("--csv", str(csv_file), "--target", "temp", "--window", "36", "--target-form", "change_smooth",
                   "--no-search", "--units", "4", "--epochs", "1", "--backend", "torch", "--out", str(tmp_path / "no"))
    assert short.returncode != 0 and "Traceback" not in short.stderr
    assert "at least two seasons (48 steps)" in short.stderr and not (tmp_path / "no").exists()
