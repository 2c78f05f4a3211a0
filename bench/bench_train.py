"""Training speed: the studio's ``core.training.train`` against plain hand-written scripts (issue 24).

The seed configuration (LSTM 128, window 168 x 7 features, horizon 1, batch 32, 5,000 training
windows, 2 epochs) trains three ways on the same data in this one process:
- the studio (``train()``: checks, seeded build, its engine and precision choice, progress callbacks,
  best-weight tracking, then scoring on the test part and saving the run directory);
- a plain Keras script: ``Sequential`` LSTM + Dense, ``model.fit`` on the numpy arrays, ``predict``;
- a plain PyTorch loop: ``nn.LSTM`` + ``nn.Linear``, ``DataLoader`` over a ``TensorDataset``, Adam, MSE.
The plain scripts also validate each epoch and predict the test windows, as any real script would;
the studio additionally scores baselines and writes files, and that counts against it.
Each side's validation loss (MSE in scaled units; mean and spread over seeds 0..SEEDS-1) is that of the
model it hands on: the plain scripts' last epoch; the studio's best epoch, which ``train()`` loads back
and saves, measured here from the returned run's own predictions. The studio's mean must be within 2%
of the script's or better. The studio's last-epoch loss is reported beside it: at lr 1e-3 both sides'
epoch-to-epoch loss swings 2-5x (seven seeds on a quiet machine, BENCHMARKS.md), so the last epoch alone
is mostly batch-order luck. Target:
studio / plain <= 0.80 for both backends on the seed configuration (median time over the seeds, the
two sides interleaved per seed so load changes hit both alike); GRU and SimpleRNN of the same width
are reported (``OTHER_SEEDS`` seeds, no target). The machine's load average is printed at the start
and the end. Exit 1 when a target is missed.

`python -m bench.bench_train` (also run by `make bench`); ``FS_BENCH_KINDS=lstm`` for the seed row only,
``FS_BENCH_BACKENDS``, ``FS_BENCH_SEEDS``, ``FS_BENCH_EPOCHS``; ``FS_BENCH_JSON=path`` also writes the rows.
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

WINDOW, N_FEATURES, HORIZON, UNITS, BATCH, N_TRAIN = 168, 7, 1, 128, 32, 5000
# Five epochs: after two, the final validation loss still swung 3x between seeds on either side (batch
# order), too noisy to hold a 2% condition against.
EPOCHS = int(os.environ.get("FS_BENCH_EPOCHS", "5"))
TARGET_RATIO = 0.80
LOSS_SLACK = 0.02  # the studio's mean validation loss (of the model it hands on) may be at most 2% above the script's
SEEDS = int(os.environ.get("FS_BENCH_SEEDS", os.environ.get("FS_BENCH_REPEAT", "7")))  # seed configuration (LSTM)
OTHER_SEEDS = int(os.environ.get("FS_BENCH_OTHER_SEEDS", "2"))  # GRU, SimpleRNN
KINDS = tuple(os.environ.get("FS_BENCH_KINDS", "lstm,gru,rnn").split(","))
BACKENDS = tuple(os.environ.get("FS_BENCH_BACKENDS", "keras,torch").split(","))
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


def plain_keras(X, y, Xv, yv, Xt, seed: int, kind: str = "lstm") -> tuple[float, float]:
    """(seconds, final validation loss)."""
    import keras

    t0 = time.perf_counter()
    keras.utils.set_random_seed(seed)
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[kind]
    model = keras.Sequential([keras.Input((WINDOW, N_FEATURES)), cell(UNITS),
                              keras.layers.Dense(HORIZON), keras.layers.Reshape((HORIZON, 1))])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    hist = model.fit(X, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(Xv, yv), verbose=0)
    model.predict(Xt, verbose=0)
    return time.perf_counter() - t0, float(hist.history["val_loss"][-1])


def plain_torch(X, y, Xv, yv, Xt, seed: int, kind: str = "lstm") -> tuple[float, float]:
    import torch
    from torch import nn

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    cell = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cell(N_FEATURES, UNITS, batch_first=True)
            self.out = nn.Linear(UNITS, HORIZON)

        def forward(self, x):
            h, _ = self.rnn(x)
            return self.out(h[:, -1, :]).reshape(-1, HORIZON, 1)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                                         batch_size=BATCH, shuffle=True)
    Xv_t, yv_t = torch.from_numpy(Xv), torch.from_numpy(yv)
    val = float("nan")
    for _ in range(EPOCHS):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model(Xv_t), yv_t))
    with torch.no_grad():
        model(torch.from_numpy(Xt))
    return time.perf_counter() - t0, val


def studio(windows, backend: str, out: Path, seed: int, kind: str = "lstm") -> dict:
    """Total seconds, mean seconds per epoch as train() measured them, validation loss of the model it hands on and of its last epoch, engine."""
    spec = ModelSpec.for_windows(windows.spec, kind=kind, units=UNITS, layers=1, dropout=0.0, head_units=0,
                                 backend=backend, residual=False)
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, learning_rate=1e-3, patience=0, seed=seed)
    t0 = time.perf_counter()
    run = train(windows, spec, config, out)
    total = time.perf_counter() - t0
    # The model the studio hands on is its best epoch's (train() loads those weights back), so its validation
    # loss is measured here from that model's own predictions, not read from the training history: this also
    # fails if the best weights did not reach the saved model.
    pred = run.predict(windows.X("val"))
    handed_on = float(np.mean((pred - np.asarray(windows.y("val"), dtype=np.float32)) ** 2))
    return {"total": total, "per_epoch": float(np.mean([h["seconds"] for h in run.history])),
            "val": handed_on, "val_last_epoch": float(run.history[-1]["val_loss"]),
            "best_epoch": int(run.info.get("best_epoch", 0)), "engine": run.info.get("engine", "?"),
            "precision": run.info.get("precision", "?")}


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _spread(values: list[float]) -> str:
    return f"{np.mean(values):.5f} +/- {np.std(values, ddof=1) if len(values) > 1 else 0.0:.5f}"


def main() -> int:
    import json

    load_start = load_average()
    print(f"load average at start: {load_start}; epochs {EPOCHS}, LSTM seeds {SEEDS}, others {OTHER_SEEDS}", flush=True)
    ds = seed_dataset()
    windows = make_windows(ds, WindowSpec(targets=("f0",), features=tuple(ds.frame.columns), window=WINDOW,
                                          horizon=HORIZON), SPLIT)
    assert windows.count("train") == N_TRAIN, windows.counts()
    # The plain scripts get ready-made contiguous arrays, as a hand-written script would build them.
    arrays = [np.array(a, dtype=np.float32) for a in  # writable copies, as torch.from_numpy wants
              (windows.X("train"), windows.y("train"), windows.X("val"), windows.y("val"), windows.X("test"))]
    plain = {"keras": plain_keras, "torch": plain_torch}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        # One untimed pass each warms imports, kernels and graph tracing caches alike.
        for backend in BACKENDS:
            plain[backend](*[a[:BATCH * 4] for a in arrays[:4]], arrays[4][:8], seed=0)
            studio_warm = make_windows(ds, windows.spec, SplitSpec(train=0.1, val=0.1))
            studio(studio_warm, backend, Path(tmp) / f"warm-{backend}", seed=0)
        for kind in KINDS:
            seeds = SEEDS if kind == "lstm" else OTHER_SEEDS
            for backend in BACKENDS:
                ours, base = [], []
                for seed in range(seeds):
                    # Alternate which side goes first, so a load change hits both alike.
                    first_plain = seed % 2 == 0
                    if first_plain:
                        base.append(plain[backend](*arrays, seed=seed, kind=kind))
                    ours.append(studio(windows, backend, Path(tmp) / f"{kind}-{backend}-{seed}", seed=seed, kind=kind))
                    if not first_plain:
                        base.append(plain[backend](*arrays, seed=seed, kind=kind))
                    print(f"{kind} {backend} seed {seed}: plain {base[-1][0]:.2f} s (val {base[-1][1]:.5f}), studio "
                          f"{ours[-1]['total']:.2f} s (val {ours[-1]['val']:.5f} at epoch {ours[-1]['best_epoch']}, "
                          f"last epoch {ours[-1]['val_last_epoch']:.5f}, {ours[-1]['per_epoch']:.2f} s/epoch, "
                          f"{ours[-1]['engine']}, {ours[-1]['precision']}) load {load_average()}", flush=True)
                plain_s, studio_s = float(np.median([b[0] for b in base])), float(np.median([o["total"] for o in ours]))
                plain_vals, studio_vals = [b[1] for b in base], [o["val"] for o in ours]
                rows.append({"kind": kind, "backend": backend, "plain": plain_s, "studio": studio_s,
                             "ratio": studio_s / plain_s, "plain_val": float(np.mean(plain_vals)),
                             "studio_val": float(np.mean(studio_vals)), "plain_vals": plain_vals,
                             "studio_last_vals": [o["val_last_epoch"] for o in ours],
                             "studio_vals": studio_vals, "plain_times": [b[0] for b in base],
                             "studio_times": [o["total"] for o in ours],
                             "val_ratio": float(np.mean(studio_vals) / np.mean(plain_vals)),
                             "per_epoch": float(np.median([o["per_epoch"] for o in ours])),
                             "engine": ours[0]["engine"], "precision": ours[0]["precision"], "seeds": seeds})
                r = rows[-1]
                print(f"== {kind} {backend}: plain {plain_s:.2f} s, studio {studio_s:.2f} s, ratio {r['ratio']:.3f}; "
                      f"val plain {_spread(plain_vals)}, studio {_spread(studio_vals)}, ratio {r['val_ratio']:.3f}",
                      flush=True)
    load_end = load_average()
    print(f"load average at end: {load_end}", flush=True)
    if os.environ.get("FS_BENCH_JSON"):
        Path(os.environ["FS_BENCH_JSON"]).write_text(json.dumps({"rows": rows, "load_start": load_start,
                                                                 "load_end": load_end, "epochs": EPOCHS}, indent=1))
    seed_rows = [r for r in rows if r["kind"] == "lstm"]
    ok = all(r["ratio"] <= TARGET_RATIO and r["val_ratio"] <= 1 + LOSS_SLACK for r in seed_rows)
    names = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
    lines = [
        "## Training speed (bench/bench_train.py)",
        "",
        f"Seed configuration: {UNITS} units, window {WINDOW} x {N_FEATURES} features, horizon {HORIZON}, batch {BATCH}, "
        f"{N_TRAIN:,} training windows ({windows.count('val'):,} validation, {windows.count('test'):,} test), "
        f"{EPOCHS} epochs, {os.cpu_count()} CPU cores, load average {load_start} at the start and {load_end} at the "
        f"end. LSTM: seeds 0-{SEEDS - 1}, GRU and SimpleRNN: seeds 0-{OTHER_SEEDS - 1}, the two sides interleaved "
        "per seed; times are the median over seeds, validation loss the mean (+/- the standard deviation) of the "
        "MSE in scaled units of the model each side hands on (the script's last epoch, the studio's best epoch, "
        "measured from the returned run's predictions; the studio's last epoch beside it). Plain scripts: `model.fit` on numpy arrays and a `DataLoader` loop, each "
        "validating per epoch and predicting the test windows; the studio's time also includes its checks, "
        "baseline scoring and writing the run directory.",
        "",
        "| model | backend | plain script (s) | studio train() (s) | ratio | target | plain val loss | studio val loss "
        "| val loss ratio | studio last-epoch val loss | studio s/epoch | studio engine, precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] == "lstm":
            good = r["ratio"] <= TARGET_RATIO and r["val_ratio"] <= 1 + LOSS_SLACK
            target = f"<= {TARGET_RATIO}, val <= +{LOSS_SLACK:.0%} ({'ok' if good else 'MISSED'})"
        else:
            target = "reported"
        lines.append(f"| {names[r['kind']]} {UNITS} | {r['backend']} | {r['plain']:.2f} | {r['studio']:.2f} "
                     f"| {r['ratio']:.3f} | {target} | {_spread(r['plain_vals'])} | {_spread(r['studio_vals'])} "
                     f"| {r['val_ratio']:.3f} | {_spread(r['studio_last_vals'])} | {r['per_epoch']:.2f} "
                     f"| {r['engine']}, {r['precision']} |")
    if os.environ.get("FS_BENCH_WRITE", "1") != "0":
        write_section("bench_train", "\n".join(lines))
    else:
        print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
