"""Training overhead: the studio's ``core.training.train`` against plain hand-written scripts.

The seed configuration (LSTM 128, window 168 x 7 features, horizon 1, batch 32, 5,000 training
windows, 2 epochs) trains three ways on the same data in this one process:
- the studio (``train()``: checks, seeded build, tf.data / gathered batches, progress callbacks,
  best-weight tracking, then scoring on the test part and saving the run directory);
- a plain Keras script: ``Sequential`` LSTM + Dense, ``model.fit`` on the numpy arrays, ``predict``;
- a plain PyTorch loop: ``nn.LSTM`` + ``nn.Linear``, ``DataLoader`` over a ``TensorDataset``, Adam, MSE.
The plain scripts also validate each epoch and predict the test windows, as any real script would;
the studio additionally scores baselines and writes files, and that counts against it.
Target: studio / plain <= 1.10 for both backends (best of ``REPEAT`` runs each, interleaved so
load changes hit both sides alike). Exit 1 when a target is missed.

`python -m bench.bench_train` (also run by `make bench`).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402
from core.dataset import Dataset  # noqa: E402
from core.models import ModelSpec  # noqa: E402
from core.training import TrainConfig, train  # noqa: E402
from core.windows import SplitSpec, WindowSpec, make_windows  # noqa: E402

WINDOW, N_FEATURES, HORIZON, UNITS, BATCH, EPOCHS, N_TRAIN = 168, 7, 1, 128, 32, 2, 5000
TARGET_RATIO = 1.10
REPEAT = int(os.environ.get("FS_BENCH_REPEAT", "2"))
SPLIT = SplitSpec(train=0.7, val=0.15)


def seed_dataset() -> Dataset:
    """Hourly data with 7 columns, sized so the training part holds exactly N_TRAIN windows."""
    span = WINDOW + HORIZON
    # Training rows = round(0.7 n) and hold rows - span + 1 windows; solve for n, then nudge.
    n = int((N_TRAIN + span - 1) / SPLIT.train)
    while round(n * SPLIT.train) - span + 1 < N_TRAIN:
        n += 1
    rng = np.random.default_rng(0)
    t = np.arange(n)
    cols = {}
    for j in range(N_FEATURES):
        cols[f"f{j}"] = np.sin(2 * np.pi * t / 24 + j) * (1 + j / 7) + 0.1 * np.cumsum(rng.normal(0, 0.1, n))
    frame = pd.DataFrame(cols, index=pd.date_range("2020-01-01", periods=n, freq="h", name="time"))
    return Dataset("bench-seed", frame, freq="h", time_col="time", fingerprint="bench")


def plain_keras(X, y, Xv, yv, Xt, seed: int) -> float:
    import keras

    t0 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((WINDOW, N_FEATURES)), keras.layers.LSTM(UNITS),
                              keras.layers.Dense(HORIZON), keras.layers.Reshape((HORIZON, 1))])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(X, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(Xv, yv), verbose=0)
    model.predict(Xt, verbose=0)
    return time.perf_counter() - t0


def plain_torch(X, y, Xv, yv, Xt, seed: int) -> float:
    import torch
    from torch import nn

    t0 = time.perf_counter()
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_FEATURES, UNITS, batch_first=True)
            self.out = nn.Linear(UNITS, HORIZON)

        def forward(self, x):
            h, _ = self.lstm(x)
            return self.out(h[:, -1, :]).reshape(-1, HORIZON, 1)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                                         batch_size=BATCH, shuffle=True)
    Xv_t, yv_t = torch.from_numpy(Xv), torch.from_numpy(yv)
    for _ in range(EPOCHS):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            float(loss_fn(model(Xv_t), yv_t))
    with torch.no_grad():
        model(torch.from_numpy(Xt))
    return time.perf_counter() - t0


def studio(windows, backend: str, out: Path, seed: int) -> tuple[float, float]:
    """(total seconds, mean seconds per epoch as train() measured them)."""
    spec = ModelSpec.for_windows(windows.spec, kind="lstm", units=UNITS, layers=1, dropout=0.0, head_units=0,
                                 backend=backend, residual=False)
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, learning_rate=1e-3, patience=0, seed=seed)
    t0 = time.perf_counter()
    run = train(windows, spec, config, out)
    total = time.perf_counter() - t0
    return total, float(np.mean([h["seconds"] for h in run.history]))


def main() -> int:
    ds = seed_dataset()
    windows = make_windows(ds, WindowSpec(targets=("f0",), features=tuple(ds.frame.columns), window=WINDOW,
                                          horizon=HORIZON), SPLIT)
    assert windows.count("train") == N_TRAIN, windows.counts()
    # The plain scripts get ready-made contiguous arrays, as a hand-written script would build them.
    arrays = [np.array(a, dtype=np.float32) for a in  # writable copies, as torch.from_numpy wants
              (windows.X("train"), windows.y("train"), windows.X("val"), windows.y("val"), windows.X("test"))]
    plain = {"keras": plain_keras, "torch": plain_torch}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for backend in ("keras", "torch"):
            # One untimed pass each warms imports, kernels and graph tracing caches alike.
            plain[backend](*[a[:BATCH * 4] for a in arrays[:4]], arrays[4][:8], seed=0)
            ours, base, per_epoch = [], [], []
            for rep in range(REPEAT):
                base.append(plain[backend](*arrays, seed=rep))
                total, spe = studio(windows, backend, Path(tmp) / f"{backend}-{rep}", seed=rep)
                ours.append(total)
                per_epoch.append(spe)
                print(f"{backend} rep {rep}: plain {base[-1]:.2f} s, studio {total:.2f} s "
                      f"({spe:.2f} s/epoch)", flush=True)
            results[backend] = {"plain": min(base), "studio": min(ours), "ratio": min(ours) / min(base),
                                "per_epoch": min(per_epoch), "plain_per_epoch": min(base) / EPOCHS}
    ok = all(r["ratio"] <= TARGET_RATIO for r in results.values())
    lines = [
        "## Training overhead (bench/bench_train.py)",
        "",
        f"Seed configuration: LSTM {UNITS}, window {WINDOW} x {N_FEATURES} features, horizon {HORIZON}, batch {BATCH}, "
        f"{N_TRAIN:,} training windows ({windows.count('val'):,} validation, {windows.count('test'):,} test), "
        f"{EPOCHS} epochs; best of {REPEAT}, {os.cpu_count()} CPU cores. Plain scripts: `model.fit` on numpy arrays "
        "and a `DataLoader` loop, each validating per epoch and predicting the test windows; the studio's time also "
        "includes its checks, baseline scoring and writing the run directory.",
        "",
        "| backend | plain script (s) | studio train() (s) | ratio | target | studio s/epoch | plain s/epoch (total/epochs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        mark = "ok" if r["ratio"] <= TARGET_RATIO else "MISSED"
        lines.append(f"| {backend} | {r['plain']:.2f} | {r['studio']:.2f} | {r['ratio']:.3f} | <= {TARGET_RATIO} ({mark}) "
                     f"| {r['per_epoch']:.2f} | {r['plain_per_epoch']:.2f} |")
    write_section("bench_train", "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
