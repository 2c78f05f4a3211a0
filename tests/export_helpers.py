"""Small trained-run directories for the export tests and the export benchmark.

A run here is a real ``core.runs.Run`` (saved and re-read through ``load_run``) whose weights are the
backend's own seeded initialisation, or a few quick epochs when ``fit_epochs`` is given: export has
to reproduce whatever the host model computes, trained or not, so random weights test it as hard.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def series(n: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Smooth, varied columns (daily-like cycle, trend, noise) in data units far from [0, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    cols = []
    for j in range(n_features):
        cols.append(20 + 8 * j + (5 + j) * np.sin(2 * np.pi * t / (24 + 5 * j)) + 0.01 * t + rng.normal(0, 0.3, n))
    return np.stack(cols, axis=1)


def make_run(run_dir: Path, kind: str = "lstm", backend: str = "keras", window: int = 12, n_features: int = 3,
             units: int = 8, horizon: int = 1, n_targets: int = 1, residual: bool = False, layers: int = 1,
             seed: int = 0, rows: int = 600, constant: bool = False, fit_epochs: int = 0, n_rep: int = 64,
             n_test: int = 24, whole_test: bool = False, data: np.ndarray | None = None,
             target_form: str | None = None, season_period: int = 0, weights: list | None = None,
             relative: bool = False):
    """Write a run directory and return the re-loaded ``Run``. ``weights``: canonical weights to use instead
    of the model's own (another run's, e.g. the same network on another window length)."""
    from core.models import ModelSpec, build_keras, build_torch, canonical_weights
    from core.runs import Run, load_run
    from core.training import TrainConfig
    from core.windows import Scaler, SplitSpec, WindowSpec

    names = [f"c{j}" for j in range(n_features)]
    if data is not None:
        rows, n_features = data.shape
        names = [f"c{j}" for j in range(n_features)]
    else:
        data = np.full((rows, n_features), 3.5) if constant else series(rows, n_features, seed)
    targets = tuple(names[:n_targets])
    wspec = WindowSpec(targets=targets, features=tuple(names), window=window, horizon=horizon)
    train_rows = int(rows * 0.7)
    scaler = Scaler.fit({c: data[:train_rows, j] for j, c in enumerate(names)}, kind="minmax")
    scaled = scaler.transform(data, names).astype(np.float32)
    tgt = scaled[:, :n_targets]
    starts = np.arange(rows - window - horizon + 1)
    X = np.stack([scaled[s:s + window] for s in starts])
    Y = np.stack([tgt[s + window:s + window + horizon] for s in starts])
    cut = train_rows - window - horizon
    X_train, Y_train = X[:cut], Y[:cut]
    X_test, Y_test = X[train_rows:], Y[train_rows:]
    if whole_test:
        # A validation part between training and test, as a real split has (15% / 15%).
        test_rows = train_rows + (rows - train_rows) // 2
        X_val = X[train_rows:test_rows - window - horizon + 1]
        X_test, Y_test = X[test_rows:], Y[test_rows:]

    form = {"target_form": target_form, "season_period": season_period} if target_form else {"residual": residual}
    spec = ModelSpec(kind=kind, units=units, layers=layers, backend=backend, **form, window=window, relative=relative,
                     n_inputs=n_features, horizon=horizon, n_targets=n_targets,
                     target_input_index=wspec.target_input_index).validate()
    if backend == "torch":
        import torch

        torch.manual_seed(seed)
        model = build_torch(spec)
        if fit_epochs:
            opt = torch.optim.Adam(model.parameters(), 1e-2)
            xb, yb = torch.from_numpy(X_train), torch.from_numpy(Y_train)
            for _ in range(fit_epochs):
                opt.zero_grad()
                loss = torch.mean((model(xb) - yb) ** 2)
                loss.backward()
                opt.step()
    else:
        import keras

        keras.utils.set_random_seed(seed)
        model = build_keras(spec)
        if fit_epochs:
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
            model.fit(X_train, Y_train, epochs=fit_epochs, batch_size=64, verbose=0)
    if weights is not None:
        from core.models import load_canonical

        load_canonical(model, weights)
    weights = canonical_weights(model)
    rep = np.linspace(0, len(X_train) - 1, min(n_rep, len(X_train))).round().astype(int)
    test = np.linspace(0, len(X_test) - 1, min(n_test, len(X_test))).round().astype(int)
    run = Run(run_dir=Path(run_dir), dataset={"name": "synthetic"}, window_spec=wspec, split=SplitSpec(),
              scaler=scaler, model_spec=spec, train_config=TrainConfig(epochs=max(1, fit_epochs)), weights=weights,
              history=[], metrics={}, samples={}, info={"status": "done"})
    run.samples = {"X_rep": np.ascontiguousarray(X_train[rep]), "X_test": np.ascontiguousarray(X_test[test]),
                   "y_test": np.ascontiguousarray(Y_test[test])}
    run.samples["y_host"] = run.predict(run.samples["X_test"])
    if whole_test:
        # What a trained run keeps (core.run_record.test_part): every test window, its actuals, host forecasts
        # and baselines, so export scores against the truth as it does for a real run.
        from core.metrics import last_value_forecast, naive_scale, seasonal_naive_forecast

        units = data[:, :n_targets]
        starts = np.arange(test_rows, rows - window - horizon + 1)
        origins = starts + window - 1
        labels = origins[:, None] + 1 + np.arange(horizon)
        first = int(starts[0])
        run.samples.update({
            "X_val": np.ascontiguousarray(X_val[np.linspace(0, len(X_val) - 1, min(64, len(X_val))).round().astype(int)]),
            "test_rows": np.ascontiguousarray(scaled[first:]), "test_starts": starts - first,
            "score_y_true": units[labels], "score_y_host": scaler.inverse(run.predict(X_test).astype(np.float64), targets),
            "score_base_last_value": last_value_forecast(units, origins, horizon),
            "score_base_seasonal_naive": seasonal_naive_forecast(units, origins, labels, [24] * n_targets),
            "score_mase_scale": naive_scale(units[:train_rows]), "score_total": np.asarray(len(starts)),
        })
    run.save(run_dir)
    return load_run(run_dir)
