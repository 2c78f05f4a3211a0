"""Defaults and help texts in one place (the streamlit_prophet habit), read by pages and the CLI.

Each stage adds its own section; keep literals out of pages.
"""
from __future__ import annotations

import os

# Upload limit in MB; Streamlit's own server.maxUploadSize is set from the same number.
MAX_UPLOAD_MB = int(os.environ.get("FS_MAX_UPLOAD_MB", "200"))

DEFAULTS: dict[str, dict] = {
    "data": {},
    "features": {},
    "model": {
        # One LSTM of 32 units: trains in seconds on a laptop and fits the XIAO ESP32S3 in SRAM.
        "kind": "lstm", "units": 32, "layers": 1, "dropout": 0.0, "head_units": 0, "backend": "keras",
        "residual": "auto",  # on whenever every target is also an input (issue J)
        "max_units": 1024,
        "preset": "Laptop & board (LSTM 32)",
    },
    "train": {
        # Sized for a laptop: LSTM(32) on a few thousand windows runs 20 epochs in a minute or two,
        # and early stopping usually ends it sooner.
        "epochs": 20, "batch_size": 32, "learning_rate": 1e-3, "patience": 5, "seed": 0,
        "max_epochs": 1000, "max_batch_size": 4096,
        # Refuse a training whose window tensors would take more than this share of free memory.
        "max_memory_fraction": 0.5,
        # Windows kept in samples.npz: calibration set for int8, and the test windows the board replays.
        "rep_windows": 256, "test_windows": 64,
    },
    "export": {},
    "device": {"baud": 115200},
}

HELP: dict[str, str] = {}

HELP.update({
    "model.kind": "LSTM and GRU remember longer patterns than a SimpleRNN; Dense ignores order and is a baseline. "
                  "LSTM runs as one fused, fast op on the board; GRU and SimpleRNN are unrolled there (bigger).",
    "model.units": "Width of each recurrent layer. Cost grows with units squared: 32 fits the board's SRAM, 128 is the seed project's size.",
    "model.layers": "Stacked recurrent layers (1-3). One layer is usually enough for a single sensor series.",
    "model.dropout": "Fraction of values dropped between layers while training (0 = off, at most 0.5 is sensible). Helps when validation loss rises while training loss falls.",
    "model.head_units": "An extra Dense layer with ReLU before the output; 0 leaves it out.",
    "model.backend": "Keras (TensorFlow) or PyTorch. Both train the same network and export through the same path.",
    "model.residual": "Change from last value: the network predicts how much each target moves from its last observed value, "
                      "and the model adds that value back, so forecasts are still levels. Usually beats 'tomorrow = today'.",
    "model.preset": "Ready-made sizes. 'Laptop & board' is the default; 'LSTM 128 (seed project)' is the original project's model.",
    "model.budget": "Estimated from the multiply-add count and the weights' bytes, calibrated on one measured board run; the Export step measures the real model.",
})

# The studio's version, written into saved projects so a newer project file can be recognised.
APP_VERSION = "0.1.0"

# Forecast step (issue D): test forecasts, backtest, the future, downloads, projects.
DEFAULTS["forecast"] = {
    "origin_stride": 24,            # backtest: one forecast origin per day of hourly data
    "backtest_max_origins": 2000,   # more origins than this cannot be told apart on a chart
    "backtest_origins_drawn": 8,    # forecast paths drawn on the backtest chart
    "future_steps": 48,             # recursive forecast length offered first
    "max_future_steps": 1000,       # recursive errors compound; beyond this the forecast says nothing
    "max_points": 4000,             # points per chart line before downsampling (keeps drawing fast)
    "histogram_bins": 60,
    "include_data": True,           # saving a project embeds the dataset unless the user says no
    # Guards when opening someone else's project zip (a zip bomb must not fill memory or disk).
    "project_max_entry_mb": 512,
    "project_max_total_mb": 1024,
    "project_max_entries": 200,
}

HELP.update({
    "forecast.target": "Which target to show when the model forecasts several.",
    "forecast.step": "Which step ahead to show: step 1 is the next time point after each window, step h is h points later.",
    "forecast.origin_stride": "How many time points apart the backtest issues its forecasts. Smaller = more origins, slower.",
    "forecast.backtest_steps": "How far ahead each backtest forecast goes. Beyond the model's horizon the predictions are fed back (recursive).",
    "forecast.method": "Direct: the model's own horizon in one call. Recursive: each prediction is fed back as the next input, "
                       "for longer forecasts; possible only when the inputs are the targets and calendar features.",
    "forecast.future_steps": "How many time points past the end of the data to forecast (recursive only).",
    "forecast.include_data": "Embed the dataset in the project file. Without it the file holds only the data's fingerprint, "
                             "and opening it needs the same dataset loaded first.",
    "forecast.open": "A .zip saved with 'Save project'. Opening it restores every step; only settings, data and weights are read, never code.",
})

HELP.update({
    "train.epochs": "Passes over the training windows. Early stopping usually ends training sooner, keeping the best epoch.",
    "train.batch_size": "Windows per weight update. 32 is a good default; larger is faster per epoch but may learn less per pass.",
    "train.learning_rate": "Step size of the Adam optimiser. 0.001 suits most data; lower it (0.0001) if the loss jumps or becomes NaN.",
    "train.patience": "Stop after this many epochs without a better validation loss, and keep the best weights (0 = never stop early).",
    "train.seed": "Fixes the initial weights and the batch order: the same seed and backend give the same model.",
    "train.stop": "Stops after the current batch and keeps the best weights so far; the run is usable.",
})
