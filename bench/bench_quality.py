"""Forecast quality of the default configuration on real public series, one per sampling frequency,
and on strongly seasonal hourly and 10-minute series (synthetic, sample_data/make_quality.py).

For each series and horizon the studio's default configuration (core.defaults.default_config, then
the candidate search on the validation part, core.search.search_default: the same path
`python -m studio train` takes with no model options) trains once, and its test MAE is set against
last value and seasonal naive on the same test windows, in the series' own units, with the time the
search and the training took. Goal (issues J, 21): beat the best of last value and seasonal naive.

Beside them the statistical references of metrics.json (core.references: statsmodels' Holt-Winters
ETS and Theta, with the detected season, fitted on the training part, forecasting the same test points)
with their fitting times. statsforecast's AutoETS/AutoTheta (which issue 21 named) are not used: every
statsforecast release checked (1.7.8, 2.0.3, 2.1.0, 2.1.1) pulls pandas 2.3 next to this studio's
pandas 3.1 pin. On the strongly seasonal series the rule-based default before issue 21 (change from last
value, one-period window: `studio train --no-search`) is trained too, as "rule default".

`python -m bench.bench_quality` (also run by `make bench`); `FS_QUALITY_ONLY=name,name@24` runs a
subset (``@h`` picks one horizon). Exit 1 when the default loses to last value on any run.
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
from core.search import search_default  # noqa: E402
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
    "seasonal_hourly": ("synthetic_seasonal_hourly.csv", "temp",
                        "synthetic strongly seasonal hourly temperature, 240 days (make_quality.seasonal_series)"),
    "seasonal_10min": ("synthetic_seasonal_10min.csv", "temp",
                       "synthetic strongly seasonal 10-minute temperature, 40 days (make_quality.seasonal_series)"),
}
# (series, horizon) runs: horizons 1 and 24 on the strongly seasonal sub-daily series (issue 21).
# The strongly seasonal sub-daily ones first.
RUNS = ([(n, h) for n in ("seasonal_hourly", "seasonal_10min", "electricity") for h in (1, 24)]
        + [(n, 1) for n in ("seattle", "co2", "nino", "macro")])


def run_one(name: str, horizon: int = 1) -> dict:
    file, target, _ = SERIES[name]
    dataset = load_dataset(QUALITY / file, name=file)
    cfg = default_config(dataset, target, horizon=horizon)
    s0 = time.perf_counter()
    search = search_default(dataset, cfg)
    search_s = time.perf_counter() - s0
    cfg = search.config
    windows = make_windows(dataset, cfg.window_spec, cfg.split, cfg.scaler_kind)
    spec = cfg.model_spec()
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        run = train(windows, spec, cfg.train_config, Path(tmp) / "run", dataset=dataset)
    # CPU seconds (all threads) as well as wall time: on a shared machine the wall time mostly measures the neighbours.
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = run.metrics
    refs = m.get("references") or {}
    info = m.get("references_info") or {}
    rule = None
    if name.startswith("seasonal") or name == "electricity":
        rcfg = default_config(dataset, target, horizon=horizon)  # the rule-based default, no search
        rwin = make_windows(dataset, rcfg.window_spec, rcfg.split, rcfg.scaler_kind)
        r0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rrun = train(rwin, rcfg.model_spec(), rcfg.train_config, Path(tmp) / "run", dataset=dataset)
        rule = {"mae": rrun.metrics["model"]["mae"], "seconds": time.perf_counter() - r0,
                "form": rcfg.model_spec().target_form}
    base = m["baselines"]
    model, lv, sn = m["model"]["mae"], base["last_value"]["mae"], base["seasonal_naive"]["mae"]
    best = min(v["mae"] for k, v in base.items() if k != "naive" and v.get("mae") is not None)
    row = {"name": name, "horizon": horizon, "form": spec.target_form, "search_s": search_s, "rows": len(dataset.frame), "freq": dataset.freq, "period": cfg.seasonality.period,
           "strength": cfg.seasonality.strength, "window": cfg.window_spec.window,
           "calendar": ",".join(cfg.window_spec.calendar) or "-", "inputs": cfg.window_spec.n_inputs,
           "residual": spec.residual, "epochs": f"{run.info['epochs_run']}/{cfg.train_config.epochs}",
           "train_windows": windows.count("train"), "model": model, "last_value": lv, "seasonal_naive": sn,
           "best_baseline": m.get("best_baseline"), "vs_last": (lv - model) / lv * 100, "vs_best": (best - model) / best * 100,
           "seconds": seconds, "cpu": cpu, "verdict": m.get("verdict", ""),
           "ets": (refs.get("ets") or {}).get("mae"), "theta": (refs.get("theta") or {}).get("mae"),
           "ets_s": (info.get("ets") or {}).get("seconds"), "theta_s": (info.get("theta") or {}).get("seconds"),
           "rule": rule, "search_trials": len([t for t in search.trials if t.score is not None]),
           "refs_note": m.get("references_note") or ""}
    print(f"{name} h={horizon} ({spec.target_form}, window {cfg.window_spec.window}): model {model:.4g}  last value {lv:.4g}  seasonal naive {sn:.4g}  "
          f"({row['vs_last']:+.0f}% vs last value, {row['vs_best']:+.0f}% vs best) search {search_s:.0f} s, train {seconds:.0f} s",
          flush=True)
    return row


def _f(v, fmt=".4g") -> str:
    return "-" if v is None else format(v, fmt)


def references_table(rows: list[dict]) -> str:
    head = ("| series | h | default (form) | rule default (no search) | last value | seasonal naive | ETS (fit s) "
            "| Theta (fit s) | default vs best naive | default vs best reference | search s (trainings) | train s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        naive = min(r["last_value"], r["seasonal_naive"])
        ref = min([v for v in (r["ets"], r["theta"]) if v is not None], default=None)
        rule = r["rule"]
        rule_text = f"{rule['mae']:.4g} ({rule['form']}, {rule['seconds']:.0f} s)" if rule else "-"
        lines.append(
            f"| {r['name']} | {r['horizon']} | {r['model']:.4g} ({r['form']}) "
            f"| {rule_text} "
            f"| {r['last_value']:.4g} | {r['seasonal_naive']:.4g} | {_f(r['ets'])} ({_f(r['ets_s'], '.1f')}) "
            f"| {_f(r['theta'])} ({_f(r['theta_s'], '.1f')}) | {(naive - r['model']) / naive * 100:+.1f}% "
            f"| {_f(ref and (ref - r['model']) / ref * 100, '+.1f')}% | {r['search_s']:.0f} ({r['search_trials']}) "
            f"| {r['seconds']:.0f} |")
    return head + "\n".join(lines)


def table(rows: list[dict]) -> str:
    head = ("| series | h | rows | step | period (acf) | target form | window | calendar | epochs run | test MAE model "
            "| last value | seasonal naive | vs last value | vs best baseline | search s | train s (CPU s) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['name']} | {r['horizon']} | {r['rows']:,} | {r['freq']} | {r['period']} ({r['strength']:.2f}) "
             f"| {r['form']} | {r['window']} "
             f"| {r['calendar']} | {r['epochs']} | {r['model']:.4g} | {r['last_value']:.4g} | {r['seasonal_naive']:.4g} "
             f"| {r['vs_last']:+.1f}% | {r['vs_best']:+.1f}% | {r['search_s']:.0f} | {r['seconds']:.0f} ({r['cpu']:.0f}) |"
             for r in rows]
    return head + "\n".join(lines)


def main() -> int:
    only = [s for s in os.environ.get("FS_QUALITY_ONLY", "").split(",") if s]
    runs = [(n, h) for n, h in RUNS if not only or n in only or f"{n}@{h}" in only]
    names = list(dict.fromkeys(n for n, _ in runs))
    t0, c0 = time.perf_counter(), time.process_time()
    rows = [run_one(n, h) for n, h in runs]
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    lost_last = [f"{r['name']}@{r['horizon']}" for r in rows if r["vs_last"] <= 0]
    lost_best = [f"{r['name']}@{r['horizon']}" for r in rows if r["vs_best"] <= 0]
    sources = "\n".join(f"- **{n}**: {SERIES[n][2]}, target `{SERIES[n][1]}`, `sample_data/quality/{SERIES[n][0]}`"
                        for n in names)
    verdicts = "\n".join(f"- {r['name']} h={r['horizon']}: {r['verdict']}" for r in rows)
    md = (
        "## Forecast quality of the default configuration (bench_quality)\n\n"
        "The default configuration (`core.defaults.default_config` then `core.search.search_default`, what "
        "`python -m studio train --csv F --target T` uses with no model options): LSTM(32), the target form (level, "
        "change from last value, change from last value and last season, change from last season) and window (one or two periods) chosen by short trainings "
        "on the validation part, calendar features for strong cycles, epochs raised on short series, early stopping "
        "on the validation part. Test part = newest 15%; MAE in the series' own units; one training per run, seed 0, "
        f"2 CPU cores. Whole benchmark: {total:.0f} s wall, {total_cpu:.0f} CPU s.\n\n"
        f"{table(rows)}\n\n"
        f"Beats last value on {len(rows) - len(lost_last)} of {len(rows)} series"
        f"{' (not: ' + ', '.join(lost_last) + ')' if lost_last else ''}; beats the best baseline on "
        f"{len(rows) - len(lost_best)} of {len(rows)}{' (not: ' + ', '.join(lost_best) + ')' if lost_best else ''}.\n\n"
        "Against the statistical references (statsmodels Holt-Winters ETS and Theta, season detected on the "
        "training part, fitted there, forecasting the same test points; statsforecast is not used: every release "
        "needs pandas < 3). 'vs' columns: positive means the default's MAE is lower. 'rule default' is the "
        "configuration before issue 21 (change from last value, one-period window, no search):\n\n"
        f"{references_table(rows)}\n\n"
        f"Series:\n{sources}\n\n"
        f"The studio's verdicts:\n{verdicts}\n"
    )
    write_section("bench_quality", md)
    return 1 if lost_last else 0


if __name__ == "__main__":
    sys.exit(main())
