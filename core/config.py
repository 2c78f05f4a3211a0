"""Defaults and help texts in one place (the streamlit_prophet habit), read by pages and the CLI.

Each stage adds its own section; keep literals out of pages.
"""
from __future__ import annotations

import os

# Upload limit in MB; Streamlit's own server.maxUploadSize is set from the same number.
MAX_UPLOAD_MB = int(os.environ.get("FS_MAX_UPLOAD_MB", "200"))

DEFAULTS: dict[str, dict] = {
    "data": {
        "sample": "weather",  # loaded when the studio opens with no dataset, so there is data to click through
        "duplicates": "first", "resample_how": "mean", "fill": "interpolate",
        # Below this many rows after cleaning there is no series to learn from.
        "min_rows": 10,
        # Resampling choices offered on the page (pandas aliases); None keeps the file's own step.
        "resample_choices": [None, "1min", "5min", "15min", "30min", "h", "3h", "6h", "D", "W", "MS"],
        # Each chart line draws at most this many points (min-max downsampled), however long the series.
        "chart_points": 4000,
        "chart_columns": 3,
    },
    "features": {
        # The contract's default: one day of hourly data -> the next hour; small enough for the board.
        "window": 24, "horizon": 1, "offset": 0, "stride": 1,
        # Chronological split; the test part gets the rest.
        "train": 0.7, "val": 0.15,
        "scaler": "minmax",  # [0, 1], the seed project's choice
        # Sizes beyond these are mistakes (a recurrent model on the board cannot use them).
        "max_window": 5000, "max_horizon": 1000, "max_offset": 5000,
        # The window picture draws a neighbourhood of the window, at most this many points per line.
        "picture_points": 1500,
    },
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
        # Validation windows kept for int8 calibration (data past the training range, core/export.py).
        "val_windows": 64,
        # Test windows kept for scoring the exported models on TFLM (all of them up to this; evenly
        # spread beyond): 4,096 windows of 168 x 9 cost 6 MB as rows, and about 2 s per dtype on TFLM.
        "score_windows": 4096,
        # Speed (issue 24, measured in BENCHMARKS.md). "auto": a Keras LSTM or SimpleRNN trains on its
        # exact PyTorch twin (oneDNN's fused LSTM kernel; same initial weights, optimiser and loss) and
        # the trained weights go back into the Keras model; "keras" keeps TensorFlow's own loop.
        "keras_engine": "auto",
        # bfloat16 autocast for LSTM/GRU layers of at least this many units, only on a CPU with native
        # bfloat16 (avx512_bf16 or amx_bf16); weights, validation and the saved model stay float32.
        # "off" (or FS_BF16=0) turns it off.
        "bf16": "auto", "bf16_min_units": 64,
        # Torch's CPU threads: "auto" measures all cores against one each epoch and keeps the faster
        # (all cores lose badly when another process wants one); anything else leaves torch's default.
        "threads": "auto",
    },
    "export": {},
    "device": {
        "baud": 115200,
        "bauds": [115200, 9600, 57600, 230400, 460800, 921600],
        # Reads return at least this often, so close() and a vanished port are noticed quickly.
        "read_poll_s": 0.05,
        "write_timeout_s": 2.0,
        # The board boots in about a second; a USB open can reset it, so I is re-sent until the deadline.
        "ready_timeout_s": 5.0,
        "ready_resend_s": 1.0,
        # Longest silence between two answer lines; the seed project's LSTM(128) took 2 s per window.
        "answer_timeout_s": 10.0,
        "log_lines": 2000,
        "max_line_bytes": 16384,
        # Wrong-baud detection: share of non-text bytes over the last span of bytes.
        "health_span_bytes": 256,
        "unreadable_ratio": 0.3,
        # Board vs the host's run of the same model file (kernel fidelity), never widened by the export's
        # own error: float32 within this share of each target's scale; int8 within int8_steps output
        # quantisation steps (the board's kernels may round one step differently). The int8 share is only
        # for a report that lacks the output quantisation (written before it was recorded).
        "tolerance_floor": {"float32": 1e-3, "int8": 0.05},
        "int8_steps": 2,
        "windows": 5,
        "poll_s": 0.5,
        # bundle.json (windows and host forecasts as text) is small; a bigger one is not ours.
        "max_bundle_json_bytes": 50_000_000,
        # A board held by the participant's browser (Web Serial, core/board/weblink.py): how long the page waits
        # for the browser's relay to attach, and how far the reader may fall behind a flooding board.
        "browser_attach_s": 5.0,
        "browser_rx_cap_bytes": 4 * 1024 * 1024,
    },
}

HELP: dict[str, str] = {}

HELP.update({
    "model.kind": "LSTM and GRU remember longer patterns than a SimpleRNN; Dense ignores order and is a baseline. "
                  "LSTM runs as one fused, fast op on the board; GRU and SimpleRNN run as a step loop (one cell, looped by the firmware).",
    "model.units": "Width of each recurrent layer. Cost grows with units squared: 32 fits the board's SRAM, 128 is the seed project's size.",
    "model.layers": "Stacked recurrent layers (1-3). One layer is usually enough for a single sensor series.",
    "model.dropout": "Fraction of values dropped between layers while training (0 = off, at most 0.5 is sensible). Helps when validation loss rises while training loss falls.",
    "model.head_units": "An extra Dense layer with ReLU before the output; 0 leaves it out.",
    "model.backend": "Keras (TensorFlow) or PyTorch. Both train the same network and export through the same path.",
    "model.residual": "Change from last value: the network predicts how much each target moves from its last observed value, "
                      "and the model adds that value back, so forecasts are still levels. Usually beats 'tomorrow = today'.",
    "model.relative": "The network reads each window minus its last value (each target input), so a level it never "
                      "saw in training looks like any other; the model still adds the level back. On by default where "
                      "the validation part leaves the training range (a trend, a random walk). Not with the step-loop export.",
    "model.log": "Multiplicative (log) target: the targets (and their inputs) are read as log(value), so a season "
                 "that grows with the level looks the same at every level: the seasonal change becomes a ratio, and "
                 "with relative inputs each window is divided by its own last value. Forecasts come back as levels. "
                 "Every value must be above 0. The search tries it where the season's swing grows with the level.",
    "model.preset": "Ready-made sizes. 'Laptop & board' is the default; 'LSTM 128 (seed project)' is the original project's model.",
    "model.budget": "Estimated from the multiply-add count and the weights' bytes, calibrated on one measured board run; the Export step measures the real model.",
})

# The studio's version, written into saved projects so a newer project file can be recognised.
APP_VERSION = "0.1.0"
# The Export step's bundle section, by the name its heading shows: the Edge Impulse messages point at it by name,
# since they are read on the Export page itself ("on the Export page" said nothing there).
BUNDLE_SECTION = "Firmware bundle for the XIAO ESP32S3"

# Forecast step (issue D): test forecasts, backtest, the future, downloads, projects.
DEFAULTS["forecast"] = {
    "origin_stride": 24,            # backtest: one forecast origin per day of hourly data
    "backtest_max_origins": 2000,   # more origins than this cannot be told apart on a chart
    "backtest_origins_drawn": 8,    # forecast paths drawn on the backtest chart
    "future_steps": 48,             # recursive forecast length offered first
    "max_future_steps": 1000,       # recursive errors compound; beyond this the forecast says nothing
    "max_points": 4000,             # points per chart line before downsampling (keeps drawing fast)
    "histogram_bins": 60,
    # A verdict resting on fewer test points than this is called weak (a handful of points can swing it).
    "weak_points": 20,
    "include_data": True,           # saving a project embeds the dataset unless the user says no
    # Guards when opening someone else's project zip (a zip bomb must not fill memory or disk).
    "project_max_entry_mb": 512,
    "project_max_total_mb": 1024,
    "project_max_entries": 200,
    # What opened projects may unpack into one session's folder, all together (memory while reading, disk
    # once unpacked). A workshop host sets FS_PROJECT_MAX_UNPACK_MB; 0 turns project opening off.
    "project_max_unpack_mb": int(os.environ.get("FS_PROJECT_MAX_UNPACK_MB", "256")),
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

# Features step (issue B).
HELP.update({
    "features.targets": "The column(s) the model forecasts. Several targets share one model.",
    "features.features": "Columns the model reads in each window. The targets' own past is usually the most useful input, "
                         "so they are included by default.",
    "features.calendar": "Position in the day, week or year as a sin/cos pair, so the model knows that 23:00 is next to 00:00. "
                         "Offered only when the data has a time column and the cycle can vary at its step.",
    "features.preset": "Ready-made look-back and horizon lengths for this data's frequency.",
    "features.window": "Look-back: how many past steps the model reads for one forecast. Longer sees more history but is slower, "
                       "and on the board costs time and memory.",
    "features.horizon": "How many future steps each forecast gives (1 = the next step only).",
    "features.offset": "Skip this many steps after the window before the forecast starts: offset k predicts t+1+k onwards.",
    "features.stride": "Step between training windows. 1 uses every window; larger trains faster on long series. "
                       "The test part always uses every window.",
    "features.split": "Chronological: the oldest rows train, the next validate (early stopping), the newest test. "
                      "A training window lies wholly in the training part; a validation or test window has its labels "
                      "in its part and reads its inputs from the rows before them, which may belong to an earlier part.",
    "features.scaler": "Min-max maps each column's training range to [0, 1]; standard subtracts the training mean and divides "
                       "by the standard deviation. Fitted on the training part only; the board uses the same numbers.",
    "features.picture": "Move the slider to slide the window through the series: shaded steps go in, marked points are what "
                        "the model must forecast.",
})

HELP.update({
    "device.port": "The board's serial port. A Seeed XIAO ESP32S3 is recognised by its USB ids and listed first. "
                   "Type a path (/dev/ttyACM0, COM3) or a pyserial URL (socket://HOST:PORT, rfc2217://HOST:PORT) for a board behind a network bridge.",
    "device.baud": "Must match the firmware: 115200 for the studio's firmware and the Edge Impulse sketch. Unreadable text usually means a wrong baud rate.",
    "device.browser": "A board plugged into the computer this browser runs on: the browser asks which port to use and "
                      "relays it to the studio (Web Serial; Chrome or Edge, over HTTPS or on localhost).",
    "device.emulated": "An emulated XIAO runs the exported model with the TensorFlow Lite Micro runtime on a pseudo-terminal, "
                       "through the same serial code as a real board; no hardware needed.",
    "device.self_test": "The board runs the test windows built into its firmware and prints each forecast with its inference time.",
    "device.windows": "Send test windows from this run to the board (in the data's own units); the board scales them, runs the model and answers.",
    "device.tolerance": "Board and host agree when every value is within this distance (data units): a small share of the target's range, "
                        "or a few times the error the Export step measured on the microcontroller runtime.",
    "device.transcript": "Paste what the Arduino serial monitor shows for the Edge Impulse static-buffer sketch (Timing / Predictions / value lines); "
                         "the studio converts the value back to the data's units and matches it to a test window.",
})

# Export step (issue E).
DEFAULTS["export"] = {
    "int8": True,
    # How a recurrent network reaches the board (core.steploop): auto = fused op for LSTM, the step loop
    # (one time step, looped by the firmware) for GRU/SimpleRNN; "step", "unrolled" or "fused" on request.
    "form": "auto",
    # Calibration windows for int8 (the run keeps up to DEFAULTS["train"]["rep_windows"]); 128 spans the
    # training range well and keeps calibration of a 168-step LSTM to about a second.
    "rep_windows": 128,
    # Test windows run through TFLM and compared with the host's predictions.
    "verify_windows": 64,
    # Windows the Keras 2 export graph is checked on before conversion.
    "keras2_check_windows": 8,
    # A float32 model that differs from the host by more than this fraction of the target's range fails.
    "float_tolerance": 1e-4,
    # int8 above this fraction of the target's range gets a warning (it still ships).
    "int8_warn_fraction": 0.05,
    # int8 calibration reaches this fraction of the training range past its minimum and maximum (on top of
    # the drift the validation part shows), so a trending series does not clip (core.export.calibration_windows).
    "int8_headroom": 0.25,
    # The bundle ships int8 only when its test error on TFLM is at most this much worse than float32's
    # (and it beats the best baseline); otherwise float32.
    "int8_max_loss": 0.05,
    # A change-from-last-value model's int8 graph outputs the change only; the firmware adds the last value
    # in float (core.export.residual_outside).
    "int8_residual_outside": True,
    # The reported arena is the bisected minimum plus max(bytes, fraction): alignment, ESP-NN scratch.
    "arena_margin_bytes": 1024,
    "arena_margin_fraction": 0.10,
    # The check that the minimum is real: this many bytes below it must fail to allocate.
    "arena_check_below_bytes": 32,
    "max_arena_bytes": 64 * 1024 * 1024,
    "convert_timeout_s": 600,
    "verify_timeout_s": 300,
    # Edge Impulse: the whole deploy/profile (upload, server jobs, download) must end within this.
    "ei_timeout_s": 600,
    # Getting the Edge Impulse upload ready: TensorFlow and SDK imports, key check, SavedModel.
    "ei_startup_s": 180,
    # Slack on top of ei_timeout_s before the helper is stopped, so the SDK's own timeout (which also
    # cancels the server's job) normally ends it first.
    "ei_slack_s": 15,
    "ei_profile_device": "espressif-esp32",
    "ei_endpoint": "https://studio.edgeimpulse.com/v1",
}
HELP.update({
    "export.int8": "Also make a full-integer int8 model: about a third of the float32 size and faster with ESP-NN, "
                   "at some accuracy cost (the report shows how much).",
    "export.run": "Converts the trained model to TensorFlow Lite, then runs the test windows through TensorFlow Lite Micro, "
                  "the runtime on the board, and compares its forecasts with the studio's.",
    "export.form": "How the recurrent network reaches the board. Auto: LSTM as TFLite Micro's fused LSTM op; GRU and "
                   "SimpleRNN as the step loop (one time step exported, the firmware loops it over the window, so "
                   "flash and arena do not grow with the window). Unrolled: one copy of the cell per time step (for "
                   "comparison: larger and slower to export).",
    "export.arena": "Working memory TFLM needs for this model, found by trying smaller and smaller arenas, plus a safety margin.",
    "export.error": "Largest and mean difference between the board runtime's forecasts and the studio's, in the target's own units.",
    "export.latency": "An estimate from the model's multiply-adds, calibrated on a measured LSTM(128) run on this board; "
                      "the real time shows on the Device step.",
    "export.ei_key": "Your Edge Impulse project's API key (Dashboard -> Keys). Kept in this browser session only: never saved, "
                     "logged or put into a download.",
    "export.ei_deploy": "Uploads the model to your Edge Impulse project and builds an Arduino library (Regression, one output).",
    "export.ei_profile": "Asks Edge Impulse for its own RAM, flash and latency estimate on an ESP32.",
})

HELP.update({
    "data.source": "Start from a bundled sample, or upload your own CSV (up to the upload limit). "
                   "Excel files: save them as CSV first.",
    "data.sample": "weather: two years of hourly readings with 7 features and a text summary (generated). "
                   "co2: the weekly Mauna Loa CO2 record, 1958-2001, with real gaps (public domain).",
    "data.delimiter": "The character between fields. Detected from the first rows; change it if the table looks like one wide column.",
    "data.decimal": "',' for files from locales that write 3,14 (usually with ';' as delimiter).",
    "data.encoding": "How the text is stored. UTF-8 is the default; Excel on Windows often writes cp1252 (Latin-1).",
    "data.header": "Whether the first row holds column names.",
    "data.thousands": "The character between groups of thousands: comma (15,611.3), dot (3.234,5), space, narrow space "
                      "or apostrophe (1'234.5); none reads 8,096 as a decimal. Detected from the values.",
    "data.skip_rows": "Lines of notes or titles above the header row, skipped. Detected: the table starts above the "
                      "first rows whose numeric columns hold numbers.",
    "data.time_cols": "Columns that together say the time: a year and a quarter or month column (and a day). "
                      "Detected from names such as Year, Quarter, Month.",
    "data.time_col": "The column with the timestamps. '(row number)' treats rows as evenly spaced steps.",
    "data.dayfirst": "For dates like 03/04/2021: day-first reads 3 April, month-first reads 4 March.",
    "data.time_format": "A strftime pattern such as %d.%m.%Y %H:%M, or epoch_s / epoch_ms for Unix times. Empty = detect.",
    "data.duplicates": "Rows with the same timestamp: keep the first one, or average them.",
    "data.resample": "Put the series on an even grid at this step (e.g. h = hourly, D = daily). None keeps the file's own step.",
    "data.resample_how": "How rows falling in one step are combined: mean for readings, sum for counts or rain, last for levels.",
    "data.fill": "Missing values: interpolate in time, carry the last value forward, or leave them (the later steps then refuse to run).",
    "data.columns": "Columns to draw. Long series are min-max downsampled so peaks stay visible and the chart stays fast.",
    "data.separate": "One panel per column, for columns on very different scales.",
})

# Default configuration chosen from the data (issue J, core/defaults.py) and the quick check (core/quickcheck.py).
DEFAULTS["quality"] = {
    # The window covers at least one detected period, and is never shorter than this: a handful of
    # steps gives the model too little to tell a trend from noise.
    "min_window": 8,
    # A period longer than this many steps (a year of days) is left to the calendar features: such a
    # window would be slow to train and too big for the board.
    "max_window": 400,
    # At most this share of the training rows may go into one window, so there are windows to learn from.
    "max_window_share": 0.25,
    # Weight updates the default training aims for; on a short series this raises the epoch count.
    "target_steps": 3000,
    "max_epochs": 150,
    # ...and on a long series it lowers them: past this many updates the 17,520-row weather sample's validation loss
    # crept down about 1% in five epochs and its test MAE did not move (h=1: 0.327 after 20 epochs, 0.3264 after 10
    # or 11; h=24: 0.5744 either way), while the training took twice as long. Never below "min_epochs", so
    # patience keeps room to work.
    "max_steps": 4000, "min_epochs": 10,
    # Patience grows with the epoch count: a short series' validation loss is noisy.
    "patience_share": 0.15,
    # A yearly calendar feature is offered by default once the training part spans this many years.
    "doy_min_years": 2.0,
    # Below this many training windows the default inputs are the targets alone: on a few hundred
    # windows, extra columns overfit (US macro, quarterly: MAE 101 with 4 inputs, 75 with GDP alone).
    "min_windows_for_extra_inputs": 1000,
    # Long series: the training stride is raised until an epoch reads at most this many window steps
    # (windows x window length), so a year of minute data trains in minutes, not hours, on a laptop.
    "max_epoch_steps": 1_500_000,
}

# Statistical references beside the network (core/references.py, issue 21): ETS and Theta from statsmodels,
# fitted on the training part when a run is trained, scored on the same test points (metrics.json).
DEFAULTS["references"] = {
    "enabled": True,
    # Fit on at most this many of the newest training rows (at least min_fit_seasons seasons when the period
    # asks for more): Holt-Winters' fit grows with the rows, and the newest rows say most.
    "max_fit_rows": 4000,
    "min_fit_seasons": 10,
    # Below this many training rows there is nothing to fit on.
    "min_rows": 8,
    # Our forecast from a filtered state and the library's forecast() at the same row must agree to this
    # (relative to the data's range), or the reference is left out with the reason.
    "check_tolerance": 1e-6,
}

# The quick check on the Model page (core/quickcheck.py).
DEFAULTS["quickcheck"] = {
    # The whole wait from the click (framework start-up, training and scoring), as the button promises.
    "budget_s": 15.0,
    # Kept for scoring after the training stops (whole wait measured under load 9-10: weather 10.0 s Keras,
    # 6.7 s PyTorch, co2 13.7 s cut by the budget; BENCHMARKS.md).
    "reserve_s": 3.5,
    # Training windows the check learns from (the newest ones); enough for a small LSTM to show
    # whether it beats last value, few enough to run several epochs inside the budget.
    "max_train_windows": 2048,
    # The check's own patience, so a budget is not spent on a model that stopped improving.
    "patience": 4,
    # Inputs per training window above which a short series is flagged as having too many inputs.
    "windows_per_input": 100,
}

HELP.update({
    "search.run": "Tries what the network should predict (the level, the change from the last value, the change from "
                  "the value one season earlier, the change from the last value plus what followed it a season earlier) at "
                  "a window of one and of two seasonal periods (and a longer one where the linear forecast alone is 5% better "
                  "there), and exponential smoothing at three or four seasons of window on shorter series, each with a short training scored on the validation part, "
                  "within about two and a half quick checks (38 s); the lowest validation error "
                  "wins. The test part stays unseen.",
    "quickcheck.run": "Takes about 15 seconds in all: trains this model briefly on the newest training windows and compares it with the "
                      "naive forecasts (last value, seasonal naive, training mean) on the validation part, which the full "
                      "training does not learn from either. When it is unlikely to win, it says what to change first.",
})

# Prediction intervals (issue N): split-conformal bands calibrated on the validation part, in percent.
DEFAULTS["intervals"] = {
    "levels": [80, 95],
    # A band whose measured test coverage falls more than this many points under its level is flagged as too narrow
    # (issue 32: a trending series with a growing seasonal swing held 33% of its test values in the "80%" band).
    "under_cover_points": 10.0,
}
# The board's watch over streamed readings (issue 33, core.alarms): the band alarm's level (None: the widest band
# the bundle has), how many half-widths out a reading must fall (bench_alarms measured 1, 1.5, 2), and how long
# without a reading before the gap alarm (three of the sketch's default one-hour sensor periods).
# drift_k / drift_h: the slow-drift CUSUM's allowance and threshold in validation error scales, on the error less its
# slow mean (core.alarms: a bias the forecaster keeps is learned; bench_alarms over six seeds and six series, slow drifts
# caught within 10 readings of 174 / drift alarms per 1,000 clean readings summed over the series: 0.25 / 4.5 119 / 37.0,
# against the plain CUSUM before it at 0.25 / 5 121 / 41.2 (and 102 / 29.1 at its h 5.5); 0.25 / 5 on the new rule
# 106 / 24.6. h 4.5 keeps the drifts the rule before caught, with fewer false alarms, and on a forecaster that keeps a
# 1.5-scale bias 225 alarms per 1,000 instead of 1,174).
# drift_rate: the scale is widened (core.alarms.drift_calibrate) until the run's own validation stream raises at most
# this many drift alarms per 1,000 readings; bench_alarms measured 2 / 5 / 10: fewer false alarms on clean streams
# cost as many caught drifts, so 10 widens only where validation itself shows the rule over-alarming.
DEFAULTS["alarms"] = {"level": None, "margin": 1.5, "timeout_ms": 3 * 3600 * 1000, "drift_k": 0.25, "drift_h": 4.5,
                      "drift_rate": 10.0}
HELP["forecast.band_levels"] = ("Percentages between 1 and 99.9 (at most two decimals), separated by commas, e.g. 80, 95. The bands are "
                               "calibrated again on the validation part (no training) and saved with the run; export "
                               "again for the board to carry them.")
HELP["forecast.bands"] = ("Each band is the forecast plus or minus a width learned from how far off the model was on the "
                          "validation part (split conformal), per target and step ahead. The share of test values inside "
                          "is measured, not assumed: near the level means the band can be trusted.")
