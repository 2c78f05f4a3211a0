"""Forecast quality of the default configuration on real public series, one per sampling frequency.

For each series in sample_data/quality/ (made by sample_data/make_quality.py) the studio's default
configuration (core.defaults.default_config: the same one `python -m studio train` uses with no model
options, and the pages preselect) trains once, and its test MAE is set against last value and
seasonal naive on the same test windows, in the series' own units. Goal (issue J): beat last value
on every series and the best baseline on most; the table says where it does not, and the notes why.

`python -m bench.bench_quality` (also run by `make bench`); `FS_QUALITY_ONLY=name,name` runs a subset.
Exit 1 when the default loses to last value on any series.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.defaults import default_config  # noqa: E402
from core.training import train  # noqa: E402
from core.windows import make_windows  # noqa: E402

QUALITY = ROOT / "sample_data" / "quality"
# name -> (file, target, what it is)
SERIES = {
    "electricity": ("electricity_half_hourly.csv", "demand_mw",
                    "half-hourly electricity demand, England and Wales, Jun-Aug 2000 (MW)"),
    "seattle": ("seattle_weather_daily.csv", "temp_max", "daily maximum temperature, Seattle 2012-2015 (deg C)"),
    "co2": ("co2_weekly.csv", "co2", "weekly CO2 at Mauna Loa 1958-2001 (ppm)"),
    "nino": ("nino12_monthly.csv", "nino12", "monthly Nino 1+2 sea surface temperature 1950-2010 (deg C)"),
    "macro": ("us_macro_quarterly.csv", "realgdp", "quarterly US real GDP 1959-2009 (billion 2005 USD)"),
}


def run_one(name: str) -> dict:
    file, target, _ = SERIES[name]
    dataset = load_dataset(QUALITY / file, name=file)
    cfg = default_config(dataset, target)
    windows = make_windows(dataset, cfg.window_spec, cfg.split, cfg.scaler_kind)
    spec = cfg.model_spec()
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        run = train(windows, spec, cfg.train_config, Path(tmp) / "run", dataset=dataset)
    # CPU seconds (all threads) as well as wall time: on a shared machine the wall time mostly measures the neighbours.
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = run.metrics
    base = m["baselines"]
    model, lv, sn = m["model"]["mae"], base["last_value"]["mae"], base["seasonal_naive"]["mae"]
    best = min(v["mae"] for k, v in base.items() if k != "naive" and v.get("mae") is not None)
    row = {"name": name, "rows": len(dataset.frame), "freq": dataset.freq, "period": cfg.seasonality.period,
           "strength": cfg.seasonality.strength, "window": cfg.window_spec.window,
           "calendar": ",".join(cfg.window_spec.calendar) or "-", "inputs": cfg.window_spec.n_inputs,
           "residual": spec.residual, "epochs": f"{run.info['epochs_run']}/{cfg.train_config.epochs}",
           "train_windows": windows.count("train"), "model": model, "last_value": lv, "seasonal_naive": sn,
           "best_baseline": m.get("best_baseline"), "vs_last": (lv - model) / lv * 100, "vs_best": (best - model) / best * 100,
           "seconds": seconds, "cpu": cpu, "verdict": m.get("verdict", "")}
    print(f"{name}: model {model:.4g}  last value {lv:.4g}  seasonal naive {sn:.4g}  "
          f"({row['vs_last']:+.0f}% vs last value, {row['vs_best']:+.0f}% vs best) in {seconds:.0f} s", flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = ("| series | rows | step | period (acf) | window | calendar | epochs run | test MAE model | last value "
            "| seasonal naive | vs last value | vs best baseline | train s (CPU s) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['name']} | {r['rows']:,} | {r['freq']} | {r['period']} ({r['strength']:.2f}) | {r['window']} "
             f"| {r['calendar']} | {r['epochs']} | {r['model']:.4g} | {r['last_value']:.4g} | {r['seasonal_naive']:.4g} "
             f"| {r['vs_last']:+.1f}% | {r['vs_best']:+.1f}% | {r['seconds']:.0f} ({r['cpu']:.0f}) |" for r in rows]
    return head + "\n".join(lines)


def main() -> int:
    only = [s for s in os.environ.get("FS_QUALITY_ONLY", "").split(",") if s]
    names = only or list(SERIES)
    t0, c0 = time.perf_counter(), time.process_time()
    rows = [run_one(n) for n in names]
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    lost_last = [r["name"] for r in rows if r["vs_last"] <= 0]
    lost_best = [r["name"] for r in rows if r["vs_best"] <= 0]
    sources = "\n".join(f"- **{n}**: {SERIES[n][2]}, target `{SERIES[n][1]}`, `sample_data/quality/{SERIES[n][0]}`"
                        for n in names)
    verdicts = "\n".join(f"- {r['name']}: {r['verdict']}" for r in rows)
    md = (
        "## Forecast quality of the default configuration (bench_quality)\n\n"
        "The default configuration (`core.defaults.default_config`, what `python -m studio train --csv F --target T` "
        "uses with no model options): LSTM(32), change from last value (residual), window covering one detected "
        "period, calendar features for strong cycles, epochs raised on short series, early stopping on the "
        "validation part. Test part = newest 15%; MAE in the series' own units; one training per series, seed 0, "
        f"2 CPU cores. Whole benchmark: {total:.0f} s wall, {total_cpu:.0f} CPU s.\n\n"
        f"{table(rows)}\n\n"
        f"Beats last value on {len(rows) - len(lost_last)} of {len(rows)} series"
        f"{' (not: ' + ', '.join(lost_last) + ')' if lost_last else ''}; beats the best baseline on "
        f"{len(rows) - len(lost_best)} of {len(rows)}{' (not: ' + ', '.join(lost_best) + ')' if lost_best else ''}.\n\n"
        f"Series:\n{sources}\n\nThe studio's verdicts:\n{verdicts}\n"
    )
    write_section("bench_quality", md)
    return 1 if lost_last else 0


if __name__ == "__main__":
    sys.exit(main())
