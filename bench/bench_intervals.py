"""Prediction bands (issue N): what they add to a training, and to the Forecast page.

Targets:
- calibrating the bands (``core.intervals.from_windows`` on the validation and test predictions the run
  already made, and writing ``intervals.json``) adds at most 5% to ``train()``'s wall time; measured beside a
  1-epoch training of the default model on the bundled weather sample (the shortest training, so the
  largest share), and at a 12-step horizon on the same windows;
- the Forecast page's data prep and figures (bench_forecast's ``page_data``) take no measurably longer with
  bands than the same run without them (interleaved, best of several each; target: within 5%);
- coverage on real series: the five public series of bench_quality (sample_data/quality/, one per sampling
  frequency), the default configuration at horizons 1 and 12, trained once each; the test coverage of the 80%
  and 95% bands against nominal (goal: within 5 points on most), their mean width in the series' units, the
  widths at step 1 and step 12, and the bands' share of each training's wall time.

Run: python -m bench.bench_intervals   (FS_INTERVALS_ONLY=co2,nino runs a subset of the series;
FS_INTERVALS_HORIZONS=1 a subset of the horizons)
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_forecast import page_data
from bench.bench_quality import QUALITY, SERIES
from bench.common import best_of, write_section
from core import intervals
from core.data import SAMPLES, load_dataset
from core.defaults import default_config
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


TOLERANCE_PP = 5.0
HORIZONS = (1, 12)


def coverage_one(name: str, horizon: int) -> dict:
    """One real series at one horizon: the default configuration trained once, its bands as calibrated."""
    file, target, _ = SERIES[name]
    ds = load_dataset(QUALITY / file, name=file)
    cfg = default_config(ds, target, horizon=horizon)
    windows = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    spec = cfg.model_spec()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = train(windows, spec, cfg.train_config, Path(tmp) / "run", dataset=ds)
        train_s = time.perf_counter() - t0
    y_val, y_test = run.predict(windows.X("val")), run.predict(windows.X("test"))
    cal_s, _ = best_of(lambda: _calibrate(windows, y_val, y_test), repeat=5)
    rec = run.intervals
    row = {"name": name, "freq": ds.freq, "horizon": horizon, "n_val": windows.count("val"),
           "n_test": windows.count("test"), "epochs": run.info["epochs_run"], "train_s": train_s, "cal_s": cal_s,
           "mae": run.metrics["model"]["mae"], "levels": {}, "skipped": [s["reason"] for s in rec.get("skipped", [])]}
    for key in ("80", "95"):
        band = rec["bands"].get(key)
        if band is None:
            continue
        widths = np.asarray(band["width_per_step"], dtype=np.float64)[:, 0]
        cover = np.asarray(band["coverage_per_step"], dtype=np.float64)[:, 0]
        row["levels"][key] = {"coverage": band["coverage"], "width": float(band["mean_width"][0]),
                              "width_first": float(widths[0]), "width_last": float(widths[-1]),
                              "cover_first": float(cover[0]), "cover_last": float(cover[-1])}
    print(f"{name} h={horizon}: " + ", ".join(f"{k}% band {v['coverage']:.1f}% inside, width {v['width']:.4g}"
                                               for k, v in row["levels"].items())
          + f"; bands {cal_s * 1000:.1f} ms of {train_s:.1f} s training", flush=True)
    return row


def coverage_section(rows: list[dict]) -> tuple[str, list[str]]:
    cells = [(r, k) for r in rows for k in ("80", "95")]
    near = [(r, k) for r, k in cells if k in r["levels"] and abs(r["levels"][k]["coverage"] - float(k)) <= TOLERANCE_PP]
    lines = ["| series | step | horizon | val / test windows | epochs | test MAE | 80% inside | 80% mean width "
             "| 95% inside | 95% mean width | 80% width step 1 -> last | bands ms / training s (share) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b80, b95 = r["levels"].get("80"), r["levels"].get("95")

        def cov(b, k):
            if b is None:
                return "none"
            mark = "" if abs(b["coverage"] - float(k)) <= TOLERANCE_PP else " **(off)**"
            return f"{b['coverage']:.1f}%{mark}"

        steps = (f"{b80['width_first']:.4g} -> {b80['width_last']:.4g}" if b80 and r["horizon"] > 1 else "-")
        lines.append(f"| {r['name']} | {r['freq']} | {r['horizon']} | {r['n_val']:,} / {r['n_test']:,} | {r['epochs']} "
                     f"| {r['mae']:.4g} | {cov(b80, '80')} | {b80['width'] if b80 else float('nan'):.4g} "
                     f"| {cov(b95, '95')} | {b95['width'] if b95 else float('nan'):.4g} | {steps} "
                     f"| {r['cal_s'] * 1000:.1f} / {r['train_s']:.1f} ({r['cal_s'] / r['train_s']:.3%}) |")
    multi = [r for r in rows if r["horizon"] > 1 and "80" in r["levels"]]
    wider = [r for r in multi if r["levels"]["80"]["width_last"] > r["levels"]["80"]["width_first"]]
    share = max((r["cal_s"] / r["train_s"] for r in rows), default=0.0)
    text = ("\n".join(lines) + "\n\n"
            f"Within {TOLERANCE_PP:g} points of nominal: {len(near)} of {len(cells)} (series x horizon x level). "
            f"80% band wider at the last step than at step 1: {len(wider)} of {len(multi)} multi-step runs. "
            f"Largest share of a training's wall time spent on the bands: {share:.3%}.")
    skipped = sorted({f"{r['name']} h={r['horizon']}: {s}" for r in rows for s in r["skipped"]})
    if skipped:
        text += "\n\nLevels left out: " + "; ".join(skipped) + "."
    missed = [] if len(near) * 2 > len(cells) else [f"coverage within {TOLERANCE_PP:g} points on only "
                                                     f"{len(near)} of {len(cells)}"]
    return text, missed


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
    only = [n for n in os.environ.get("FS_INTERVALS_ONLY", "").split(",") if n] or list(SERIES)
    horizons = [int(h) for h in os.environ.get("FS_INTERVALS_HORIZONS", "").split(",") if h] or list(HORIZONS)
    t_cov = time.perf_counter()
    rows = [coverage_one(n, h) for h in horizons for n in only]
    cov_total = time.perf_counter() - t_cov
    cov_md, cov_missed = coverage_section(rows)
    missed += cov_missed
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
extra model call.

### Coverage on real series

The five public series of bench_quality (`sample_data/quality/`), the default configuration
(`core.defaults.default_config`, LSTM(32) change from last value, early stopping) at horizons 1 and 12, one
training each, seed 0. Bands calibrated on the validation part, coverage measured on the test part (newest
15%), over every step; widths in the series' own units (mean over steps; the 80% band's width at step 1 and
at the last step). {cov_total:.0f} s for these trainings.

{cov_md}

Result: {"all targets met" if not missed else "MISSED: " + "; ".join(missed)}.
"""
    write_section("bench_intervals", md)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
