"""Prediction bands (issue N): what they add to a training, and to the Forecast page.

Targets:
- calibrating the bands (``core.intervals.from_windows`` on the validation and test predictions the run
  already made, and writing ``intervals.json``) adds at most 5% to ``train()``'s wall time; measured beside a
  1-epoch training of the default model on the bundled weather sample (the shortest training, so the
  largest share), and at a 12-step horizon on the same windows;
- the Forecast page's data prep and figures (bench_forecast's ``page_data``) take no measurably longer with
  bands than the same run without them (interleaved, best of several each; target: within 5%).

Run: python -m bench.bench_intervals
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_forecast import page_data
from bench.common import best_of, write_section
from core import intervals
from core.data import SAMPLES, load_dataset
from core.models import ModelSpec
from core.runs import _dumps
from core.training import TrainConfig, train
from core.windows import SplitSpec, default_spec, make_windows

TARGET_TRAIN = 0.05
TARGET_PAGE = 1.05
REPEAT = 7


def _calibrate(windows, y_val, y_test) -> int:
    rec = intervals.from_windows(windows, y_val, y_test)
    return len(_dumps(rec))


def main() -> int:
    missed = []
    ds = load_dataset(SAMPLES["weather"])
    spec = default_spec(ds)
    windows = make_windows(ds, spec, SplitSpec())
    model_spec = ModelSpec.for_windows(spec)
    config = TrainConfig(epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = train(windows, model_spec, config, Path(tmp) / "run", dataset=ds)
        train_s = time.perf_counter() - t0
        y_val, y_test = run.predict(windows.X("val")), run.predict(windows.X("test"))
        cal_s, size = best_of(lambda: _calibrate(windows, y_val, y_test), repeat=REPEAT)
        # A 12-step horizon: 12x the errors to sort (predictions stand in: the cost does not depend on them).
        spec12 = dataclasses.replace(spec, horizon=12)
        w12 = make_windows(ds, spec12, SplitSpec())
        rng = np.random.default_rng(0)
        yv12 = w12.y("val") + rng.normal(0, 0.01, w12.y("val").shape)
        yt12 = w12.y("test") + rng.normal(0, 0.01, w12.y("test").shape)
        cal12_s, size12 = best_of(lambda: _calibrate(w12, yv12, yt12), repeat=REPEAT)

        bare = dataclasses.replace(run, intervals={})
        page_data(run, windows, ds.freq)  # warm both paths once (model traced, caches filled)
        page_data(bare, windows, ds.freq)
        with_b, without_b = [], []
        for _ in range(REPEAT):  # interleaved, so load on the machine hits both alike
            with_b.append(best_of(lambda: page_data(run, windows, ds.freq), repeat=1)[0])
            without_b.append(best_of(lambda: page_data(bare, windows, ds.freq), repeat=1)[0])
        page_with, page_without = min(with_b), min(without_b)
    share = cal_s / train_s
    page_ratio = page_with / page_without
    if share > TARGET_TRAIN:
        missed.append(f"bands {share:.1%} of training > {TARGET_TRAIN:.0%}")
    if page_ratio > TARGET_PAGE:
        missed.append(f"Forecast page with bands {page_ratio:.3f}x without > {TARGET_PAGE}x")
    md = f"""## bench_intervals: prediction bands (issue N)

Bundled `weather` sample ({len(ds.frame):,} hourly rows), default features ({spec.window} x {spec.n_inputs} -> {spec.horizon}),
default model ({model_spec.label}), 1 training epoch; {windows.count('val'):,} validation and {windows.count('test'):,} test
windows; levels {', '.join(f'{v:g}%' for v in run.intervals['levels'])}. Best of {REPEAT}.

| what | seconds | share / ratio | target |
|---|---:|---:|---:|
| `train()`, 1 epoch (bands included) | {train_s:.2f} | | |
| bands: calibrate + coverage + JSON ({size:,} bytes), horizon {spec.horizon} | {cal_s * 1000:.1f} ms | {share:.2%} of training | <= {TARGET_TRAIN:.0%} |
| the same at horizon 12 ({size12:,} bytes) | {cal12_s * 1000:.1f} ms | {cal12_s / train_s:.2%} of the 1-epoch training | |
| Forecast page data prep + figures, without bands (baseline) | {page_without:.3f} | | |
| the same with bands (columns, shaded traces) | {page_with:.3f} | {page_ratio:.3f}x | <= {TARGET_PAGE}x |

The bands reuse the validation and test predictions `Run.from_training` already makes for the metrics: no
extra model call. Result: {"all targets met" if not missed else "MISSED: " + "; ".join(missed)}.
"""
    write_section("bench_intervals", md)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
