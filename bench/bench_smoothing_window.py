"""Exponential smoothing over a window against exponential smoothing over the whole history (issue 34).

Why: bench_quality_real's "with ETS and Theta as candidates" row says the default would come within 10% of the
best reference far more often if full-history ETS / Theta were among its candidates. The board adds back linear
forecasts over the window (core.smoothing_filter.holt_winters_rows: Holt-Winters from a starting state read off
the window), not a filter run over every reading since it started. This measures how far the window version is
from the full one, the same fitted parameters (``references.fit_smoothing`` on the training part), the same
validation and test label rows, in the data's units, at windows of 2, 3 and 4 seasons and 48 rows.

`FS_QUALITY_DIR=/folder python -m bench.bench_smoothing_window` (bench_quality_real's files; skipped without it);
``FS_QUALITY_ONLY`` as there.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_quality_real import REAL  # noqa: E402
from bench.common import write_section  # noqa: E402
from core.data import CsvOptions, load_dataset  # noqa: E402
from core.defaults import default_config  # noqa: E402
from core.errors import StudioError  # noqa: E402
from core.metrics import part_rows  # noqa: E402
from core.references import ReferenceUnavailable, fit_smoothing, forecast_references  # noqa: E402
from core.smoothing_filter import holt_winters_rows  # noqa: E402
from core.windows import make_windows  # noqa: E402

SPANS = ("2 seasons", "3 seasons", "4 seasons", "48 rows")


def _windows_for(period: int) -> dict[str, int]:
    m = period if period >= 2 else 8  # no season: 16, 24, 32 rows
    return {"2 seasons": max(8, 2 * m), "3 seasons": 3 * m, "4 seasons": 4 * m, "48 rows": 48}


def run_row(ds, target: str, horizon: int) -> dict:
    """Test and validation MAE of the windowed Holt-Winters at each span, and of the full-history one."""
    cfg = default_config(ds, target, horizon=horizon)
    period = int(cfg.seasonality.period or 0)
    raw = ds.frame[target].to_numpy(np.float64)
    out = {"period": period}
    for span, w in _windows_for(period).items():
        try:
            win = make_windows(ds, dataclasses.replace(cfg.window_spec, window=w), cfg.split, cfg.scaler_kind)
            lo, hi = win.parts["train"]
            weights = holt_winters_rows(fit_smoothing(raw[lo:hi], period), w, horizon)
        except (StudioError, ReferenceUnavailable):
            weights = None
        if weights is None:
            out[span] = None
            continue
        scores = {}
        for part in ("val", "test"):
            origins, labels = part_rows(win, part)
            rows = np.stack([raw[o - w + 1:o + 1] for o in origins])
            full = forecast_references(raw[:, None], hi, origins, labels, [period], names=("ets",))["forecasts"]
            if "ets" not in full:
                break
            scores[part] = (float(np.mean(np.abs(rows @ weights.T - raw[labels]))),
                            float(np.mean(np.abs(full["ets"][..., 0] - raw[labels]))))
        out[span] = {"window": w, **scores} if len(scores) == 2 else None
    return out


def main() -> int:
    folder = Path(os.environ.get("FS_QUALITY_DIR", ""))
    if not os.environ.get("FS_QUALITY_DIR") or not folder.is_dir():
        print("bench_smoothing_window: FS_QUALITY_DIR is unset or not a folder; skipped")
        return 0
    only = [s for s in os.environ.get("FS_QUALITY_ONLY", "").split(",") if s]
    lines, ratios = [], {s: [] for s in SPANS}
    for stem, (target, season, options, _) in REAL.items():
        path = folder / f"{stem}.csv"
        if not path.is_file():
            continue
        ds = load_dataset(path, name=path.name, csv=CsvOptions(**options))
        for h in (1, season):
            if only and stem not in only and f"{stem}@{h}" not in only:
                continue
            row = run_row(ds, target, h)
            cells = []
            for span in SPANS:
                got = row[span]
                if got is None or got["test"][1] <= 0:
                    cells.append("-")
                    continue
                ratios[span].append(got["test"][0] / got["test"][1])
                cells.append(f"{got['window']}: {got['test'][0]:.4g} / {got['test'][1]:.4g}")
            lines.append(f"| {stem} | {h} | {row['period'] or '-'} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    summary = "; ".join(f"{s}: median {np.median(r):.2f}, within 10% on {sum(v <= 1.10 for v in r)} of {len(r)}"
                        for s, r in ratios.items() if r)
    md = ("### Exponential smoothing over a window against the whole history (bench_smoothing_window)\n\n"
          f"Files from {folder.name}. Each cell: window rows: test MAE over the window / over the whole history.\n\n"
          "| series | h | period | " + " | ".join(SPANS) + " |\n|---|---|---|" + "---|" * len(SPANS) + "\n"
          + "\n".join(lines) + f"\n\nWindow over whole history, test MAE: {summary}.\n")
    write_section(f"bench_smoothing_window_{folder.name}", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
