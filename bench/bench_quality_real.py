"""Issue 34's check on real series nobody on the project tuned on: the default against the naive forecasts and
ETS / Theta, with the seconds each took.

The files are not in the repository (licences, provenance): ``FS_QUALITY_DIR`` names the folder that holds them
(the benchmark skips, exit 0, when it is unset or missing, and skips any file not there). The second set (R's
series) is written by ``bench/make_real_series.py``; the two sets can share a folder. Each file is read by the
studio's own loader (``core.data.load_dataset``, the options `studio train` would need, listed in REAL), then the
default runs exactly as in bench_quality_shapes (``default_config``, ``search_default``, ``train``: what
`python -m studio train --csv F --target T --seed 0` does), at h=1 and h=one season (12 monthly, 4 quarterly,
48 half-hourly = a day, 10 for Lynx's ten-year cycle, 11 for sunspots' cycle; Nile, no season: h=5).

`FS_QUALITY_DIR=/work/realdata python -m bench.bench_quality_real`; `FS_QUALITY_ONLY=Airline,nile@5` runs a
subset. Rows accumulate in bench/results/bench_quality_real_<FS_QUALITY_TAG>.json (tag default "run"), so the
series can run one at a time; every call rewrites the table from all rows of its tag. Exit 1 when the default is
worse than the best of last value and seasonal naive on any row of the tag.

Below the table the same check on the references themselves (``references_against_check``): ETS alone, Theta
alone, the best of ETS, Theta and the naive forecasts picked on validation, and the default with ETS and Theta
as candidates (``with_statistical_candidates``), so a reader sees how far the check is reachable at all.
`FS_QUALITY_ONLY=none` rewrites the table from the tag's saved rows without running any.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_quality_shapes import _f, best_reference, run_dataset  # noqa: E402
from bench.common import RESULTS, write_section  # noqa: E402
from core.data import CsvOptions, load_dataset  # noqa: E402
from core.errors import StudioError  # noqa: E402

# file stem: (target column, season horizon, CSV options `studio train` needs, what the series is)
REAL = {
    "Airline": ("Passengers", 12, {}, "monthly airline passengers 1949-60, multiplicative season"),
    "ShampooSales": ("Sales", 12, {}, "36 monthly shampoo sales, trend"),
    "PBS_dataset": ("Scripts", 12, {}, "monthly scripts 1991-2008, '1991 Jul' dates"),
    "seatbelts": ("KSI", 12, {}, "monthly road deaths 1969-84, unnamed date column"),
    "elnino": ("sst", 12, {}, "monthly sea temperature 1950-2010, near-pure season"),
    "Uschange": ("Consumption", 4, {}, "quarterly % change of US consumption"),
    "solar": ("solar_gen", 48, {}, "half-hourly solar generation, six days"),
    "Lynx": ("0", 10, {}, "yearly lynx trappings 1821-1934, ~10-year cycle; header ',0'"),
    "sunspots": ("sunactivity", 11, {}, "yearly sunspots 1700-2008, ~11-year cycle"),
    "nile": ("volume", 5, {}, "yearly Nile flow 1871-1970, no season"),
    # The second set: R's datasets / fpp2 / fpp3 series, written by bench/make_real_series.py (its docstring says
    # how), measured first on 2026-12-07 (none of them was looked at before the default was built).
    "ldeaths": ("value", 12, {}, "72 monthly UK lung-disease deaths"),
    "USAccDeaths": ("value", 12, {}, "72 monthly US accidental deaths"),
    "JohnsonJohnson": ("value", 4, {}, "84 quarterly earnings, multiplicative"),
    "LakeHuron": ("value", 5, {}, "98 yearly lake levels, no season"),
    "WWWusage": ("value", 5, {}, "100 per-minute server users, no season"),
    "h02": ("value", 12, {}, "204 monthly corticosteroid sales, multiplicative"),
    "elecequip": ("value", 12, {}, "195 monthly electrical equipment orders, 2008 drop"),
    "usmelec": ("value", 12, {}, "486 monthly US electricity generation, two seasons a year"),
    "auscafe": ("value", 12, {}, "426 monthly eating-out spending, trend"),
    "hyndsight": ("value", 7, {}, "365 daily page views, weekly cycle"),
    "debitcards": ("value", 12, {}, "164 monthly debit card use, multiplicative"),
    "euretail": ("value", 4, {}, "64 quarterly retail index, adjusted"),
    "ausbeer": ("value", 4, {}, "218 quarterly beer production"),
    "qcement": ("value", 4, {}, "233 quarterly cement production"),
    "austourists": ("value", 4, {}, "68 quarterly tourist nights"),
    "goog200": ("value", 5, {}, "200 daily closes, a random walk"),
    "wmurders": ("value", 5, {}, "55 yearly murder rates, no season"),
    "BJsales": ("value", 5, {}, "150 sales, trend, no season"),
    "nottem": ("value", 12, {}, "240 monthly temperatures, a pure season"),
    "UKgas": ("value", 4, {}, "108 quarterly gas use, multiplicative"),
    "souvenirs": ("value", 12, {}, "84 monthly souvenir sales, multiplicative (the issue's own)"),
    "a10": ("value", 12, {}, "204 monthly drug subsidies, multiplicative (the issue's own)"),
}


def _rows_path(tag: str) -> Path:
    return RESULTS / f"bench_quality_real_{tag}.json"


def run_file(folder: Path, stem: str, horizon: int) -> dict:
    target, _, options, _ = REAL[stem]
    path = folder / f"{stem}.csv"
    ds = load_dataset(path, name=path.name, csv=CsvOptions(**options))
    if target not in ds.numeric_columns:  # what `studio train` refuses: a finding, not a crash of the benchmark
        return {"name": stem, "horizon": horizon, "rows": len(ds.frame),
                "refused": f"{target!r} is not a numeric column; the studio read {ds.numeric_columns}"}
    try:
        row = run_dataset(ds, target, stem, horizon)
    except StudioError as e:  # a refusal with its words (too short for the horizon): a finding, not a crash
        return {"name": stem, "horizon": horizon, "rows": len(ds.frame), "refused": e.problem}
    row["freq"] = ds.freq
    return row


def _ratio(a: float, b: float) -> str:
    return format(a / b, ".2f") if b > 0 else ("1.00" if a <= 1e-12 else "inf (naive 0)")


def _check(rows: list[dict], key: str) -> tuple[int, int, int]:
    """(within 10% of the best reference, at or below the best naive, rows scored) for the forecast ``key``."""
    within = beat = n = 0
    for r in rows:
        v, ref = r.get(key), best_reference(r)
        if v is None or ref is None:
            continue
        n += 1
        within += v <= 1.10 * ref
        beat += v <= min(r["last_value"], r["seasonal_naive"]) * (1 + 1e-6) + 1e-12
    return within, beat, n


STATS_NAIVE_SHARE = 0.9  # where the default is the naive forecast, ETS / Theta must beat it by 10% on validation


def with_statistical_candidates(r: dict) -> float | None:
    """The test MAE the default would have with ETS and Theta among its candidates, from the row alone: the better
    of the two on validation replaces the search's choice where it scored below the search's best trial on
    validation, or, where the search fell back to the naive forecast, where it beat that naive by a tenth
    (``STATS_NAIVE_SHARE``). What the board cannot run yet (full-history ETS / Theta; bench_smoothing_window),
    measured before it is built."""
    val = r.get("chosen_ref_val") or {}
    stats = {k: val[k] for k in ("ets", "theta") if k in val and r.get(k) is not None}
    if not stats:
        return r["model"]
    pick = min(stats, key=stats.get)
    if r["naive"]:
        naive = min(val.get("last_value", np.inf), val.get("seasonal_naive", np.inf))
        return r[pick] if stats[pick] < STATS_NAIVE_SHARE * naive else r["model"]
    best_trial = min((t[1] for t in r["trials"] if t[1] is not None), default=np.inf)
    return r[pick] if stats[pick] < best_trial else r["model"]


def references_against_check(rows: list[dict]) -> str:
    """The issue's check applied to the references themselves, beside the default: how far the check is
    reachable at all. The "best reference" is picked on the test part; "chosen on validation" is a reference
    picked the way the default must pick (bench_quality_shapes._chosen_reference)."""
    parts = []
    for key, label in (("model", "the default"), ("ets", "ETS alone"), ("theta", "Theta alone"),
                       ("chosen_ref_mae", "the best of ETS, Theta, last value and seasonal naive on validation"),
                       ("with_stats", "the default with ETS and Theta as candidates (with_statistical_candidates)")):
        if key == "with_stats":
            rows = [{**r, "with_stats": with_statistical_candidates(r)} if "chosen_ref_val" in r else r for r in rows]
        within, beat, n = _check(rows, key)
        if n:
            parts.append(f"{label}: within 10% on {within} of {n}, at or below the best naive on {beat} of {n}")
    return "The same check on the references themselves: " + "; ".join(parts) + "."


def table(rows: list[dict], load: str) -> str:
    lines, within, beat, worse, refused = [], 0, 0, [], []
    for r in rows:
        if r.get("refused"):
            refused.append(f"{r['name']}@{r['horizon']}: {r['refused']}")
            continue
        naive = min(r["last_value"], r["seasonal_naive"])
        ref = best_reference(r)
        ok = ref is not None and r["model"] <= 1.10 * ref
        within += ok
        if r["model"] > naive * (1 + 1e-6) + 1e-12:
            worse.append(f"{r['name']}@{r['horizon']}")
        else:
            beat += 1
        lines.append(f"| {r['name']} | {r['horizon']} | {r['rows']} | {r['form']}{' (naive)' if r['naive'] else ''}, "
                     f"window {r['window']} | {r['backtest'] or '-'} | {r['model']:.4g} | {r['last_value']:.4g} "
                     f"| {r['seasonal_naive']:.4g} | {_f(r['ets'])} ({_f(r['ets_s'], '.1f')}) "
                     f"| {_f(r['theta'])} ({_f(r['theta_s'], '.1f')}) | {_f(r.get('ets_raw'))} / {_f(r.get('theta_raw'))} "
                     f"| {_ratio(r['model'], naive)} "
                     f"| {_f(ref and r['model'] / ref, '.2f')} | {'yes' if ok else 'no'} "
                     f"| {r['search_s']:.0f} | {r['train_s']:.0f} ({r['epochs']}) |")
    n = len(lines)
    scored = [r for r in rows if not r.get("refused")]
    return ("| series | h | rows | default (form, window) | backtest | default | last value | seasonal naive "
            "| ETS (fit s) | Theta (fit s) | ETS / Theta on raw values | / best naive | / best reference | within 10% | search s | train s (epochs) |\n"
            "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|\n" + "\n".join(lines) +
            f"\n\n{load}. At or below the best naive forecast: {beat} of {n}"
            f"{' (worse: ' + ', '.join(worse) + ')' if worse else ''}. Within 10% of the best reference: "
            f"{within} of {n}.\n\n" + references_against_check(scored) + ("\n\nRefused by the studio's reading: " + "; ".join(refused) if refused else "") +
            "\n\nThe studio's verdicts:\n" + "\n".join(f"- {r['name']} h={r['horizon']}: {r['verdict']}"
                                                      for r in rows if not r.get("refused")) + "\n")


def main() -> int:
    folder = Path(os.environ.get("FS_QUALITY_DIR", ""))
    if not os.environ.get("FS_QUALITY_DIR") or not folder.is_dir():
        print("bench_quality_real: FS_QUALITY_DIR is unset or not a folder; skipped")
        return 0
    only = [s for s in os.environ.get("FS_QUALITY_ONLY", "").split(",") if s]
    runs = [(n, h) for n, (_, season, _, _) in REAL.items() for h in (1, season)
            if (folder / f"{n}.csv").is_file() and (not only or n in only or f"{n}@{h}" in only)]
    tag = os.environ.get("FS_QUALITY_TAG", "run")
    path = _rows_path(tag)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    for n, h in runs:
        load = os.getloadavg()[0]
        row = run_file(folder, n, h)
        row["load"] = load
        saved[f"{n}@{h}"] = row
        path.write_text(json.dumps(saved, indent=1, default=str))
    order = [f"{n}@{h}" for n, (_, season, _, _) in REAL.items() for h in (1, season)]
    rows = [saved[k] for k in order if k in saved]
    loads = [r["load"] for r in rows if "load" in r]
    md = (f"### Real series, tag {tag} ({time.strftime('%Y-%m-%d')})\n\n" +
          table(rows, f"Load average (1 min) at each run's start {min(loads, default=0):.1f} to "
                      f"{max(loads, default=0):.1f}, 2 shared CPU cores"))
    write_section(f"bench_quality_real_{tag}", md)
    return 1 if any(not r.get("refused") and r["model"] > min(r["last_value"], r["seasonal_naive"]) * (1 + 1e-6) + 1e-12
                    for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
