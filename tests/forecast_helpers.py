"""Small real datasets and runs for the Forecast-step tests (core.forecast, core.project, the page).

``make_run(..., train=True)`` trains through ``core.training.train`` (1 epoch, a 4-unit LSTM); with
``train=False`` it saves a freshly initialised model through the same ``Run.from_training`` path,
which is enough where only the arithmetic around the model is under test, and takes no training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import Dataset
from core.windows import SplitSpec, WindowSpec, make_windows


def synthetic(n: int = 600, freq: str | None = "h", name: str = "syn.csv", target: str = "temp",
              range_index: bool = False, seed: int = 0) -> Dataset:
    """A daily-cycle series plus one unrelated feature, hourly by default."""
    t = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = {target: 10 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n),
              "hum": 50 + 10 * np.cos(t / 50) + rng.normal(0, 1, n)}
    if range_index:
        index = pd.RangeIndex(n, name="step")
        time_col, freq = None, None
    else:
        index = pd.date_range("2024-01-01", periods=n, freq=freq or "h", name="time")
        time_col = "time"
        if freq is None:  # irregular: drop a few rows so no frequency holds
            keep = np.ones(n, dtype=bool)
            keep[[5, 17, 40]] = False
            index, values = index[keep], {k: v[keep] for k, v in values.items()}
    frame = pd.DataFrame(values, index=index)
    return Dataset(name=name, frame=frame, freq=freq, time_col=time_col, fingerprint=f"test-{name}-{n}-{seed}")


def make_run(run_dir: Path, dataset: Dataset, spec: WindowSpec, backend: str = "keras", train: bool = False,
             units: int = 4, split: SplitSpec = SplitSpec(train=0.6, val=0.2), scaler_kind: str = "minmax"):
    """(windows, model_spec, train_config, run) for ``spec`` on ``dataset``."""
    from core.models import ModelSpec
    from core.training import TrainConfig

    windows = make_windows(dataset, spec, split, scaler_kind)
    model_spec = ModelSpec.for_windows(spec, units=units, backend=backend)
    config = TrainConfig(epochs=1, batch_size=32, patience=0, seed=0)
    if train:
        from core.training import train as train_fn

        run = train_fn(windows, model_spec, config, run_dir, dataset=dataset)
    else:
        from core.runs import Run

        if backend == "torch":
            import torch

            from core.models import build_torch

            torch.manual_seed(0)
            model = build_torch(model_spec).eval()
        else:
            import keras

            from core.models import build_keras

            keras.utils.set_random_seed(0)
            model = build_keras(model_spec)
        run = Run.from_training(windows, model_spec, config, model, [{"epoch": 1, "loss": 1.0, "val_loss": 1.0, "seconds": 0.0}],
                                {"status": "done", "best_epoch": 1, "epochs_run": 1}, run_dir, dataset=dataset)
    return windows, model_spec, config, run
