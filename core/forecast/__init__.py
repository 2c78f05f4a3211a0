"""Forecasts from a trained run: the test set against actuals and baselines, errors per horizon step,
a rolling-origin backtest, and forecasts past the end of the data (direct or recursive).

Every function here is a pure function of a run and the windows it was trained on, so the Forecast
page can cache the results per run (its directory and modification time) and redraw in milliseconds.
Everything returned is in the targets' own units; the model works in scaled units internally.

Read top-down: ``tables`` (the tidy test-set table, errors per step, ``metrics_table``, downloads),
``backtest`` (rolling origins over the test part), ``ahead`` (past the end of the data).
"""
from core.forecast.tables import (BASELINE_PREFIX, FLOAT_FORMAT, FORECAST_COLUMNS, LOWER, UPPER, TestReport,
                                  band_levels, baseline_names, csv_bytes, forecasts_csv, metrics_csv, metrics_table,
                                  per_step_errors, predict_part, run_bands, test_forecasts, test_report, tidy_frame,
                                  to_units)
from core.forecast.backtest import (Backtest, backtest, backtest_beaten_by)
from core.forecast.ahead import (future_forecast, future_index, recursive_unavailable_reason, rollout)

__all__ = [
    "BASELINE_PREFIX", "Backtest", "FLOAT_FORMAT", "FORECAST_COLUMNS", "LOWER", "TestReport", "UPPER", "backtest",
    "backtest_beaten_by", "band_levels", "baseline_names", "csv_bytes", "forecasts_csv", "future_forecast",
    "future_index", "metrics_csv", "metrics_table", "per_step_errors", "predict_part",
    "recursive_unavailable_reason", "rollout", "run_bands", "test_forecasts", "test_report", "tidy_frame",
    "to_units"
]
