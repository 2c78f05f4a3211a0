"""The default's time on a long series (issue 34's speed target): search + training on the bundled weather sample.

Issue 34 asks that the default's search and training on a long series (17,520 rows) be no slower than when it was
filed, while it adds candidates. This runs `studio train`'s path (``default_config``, ``search_default``, ``train``:
the statistical references and the saved run included) on sample_data/weather.csv, target ``temperature``, at
horizons 1 and 24, each measurement in a fresh process (the frameworks' start-up counts, as it does for a user),
and the same measurement on a baseline checkout, interleaved (A B A B) so load changes hit both alike. The baseline
is a temporary ``git worktree`` of ``FS_SPEED_BASELINE`` (default 54d12bd, the commit issue 34 was filed at), run
with this interpreter; without git history it is left out and the section says so. Reported per side: the form and
window chosen, the test MAE, search and training seconds (median over ``FS_SPEED_REPEATS``, default 2), and the
ratio this / baseline of the medians. Target: the ratio of search + training at most 1.0 at both horizons, with a
test MAE no worse. Exit 1 when missed.

`python -m bench.bench_default_speed` (also run by `make bench`).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

HORIZONS = (1, 24)
BASELINE = os.environ.get("FS_SPEED_BASELINE", "54d12bd")
REPEATS = int(os.environ.get("FS_SPEED_REPEATS", "2"))


def one(root: str, horizon: int) -> dict:
    """One measurement in this process, on the checkout at ``root`` (its own core/ first on the path)."""
    import time

    sys.path.insert(0, root)
    from core.data import load_dataset
    from core.defaults import default_config
    from core.search import search_default
    from core.training import train
    from core.windows import make_windows

    dataset = load_dataset(Path(root) / "sample_data" / "weather.csv", name="weather.csv")
    t0 = time.perf_counter()
    cfg = default_config(dataset, "temperature", horizon=horizon)
    cfg = search_default(dataset, cfg).config
    search_s = time.perf_counter() - t0
    windows = make_windows(dataset, cfg.window_spec, cfg.split, cfg.scaler_kind)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = train(windows, cfg.model_spec(), cfg.train_config, Path(tmp) / "run", dataset=dataset)
    return {"form": cfg.model_spec().target_form, "window": cfg.window_spec.window, "mae": run.metrics["model"]["mae"],
            "search_s": search_s, "train_s": time.perf_counter() - t1,
            "epochs": f"{run.info['epochs_run']}/{cfg.train_config.epochs}"}


def measure(root: Path, horizon: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(root), str(horizon)], capture_output=True,
                         text=True, cwd=root, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{root} h={horizon} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_checkout(tmp: str) -> Path | None:
    dest = Path(tmp) / "baseline"
    made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), BASELINE],
                          capture_output=True, text=True)
    return dest if made.returncode == 0 else None


def summary(rows: list[dict]) -> dict:
    med = {k: statistics.median(r[k] for r in rows) for k in ("search_s", "train_s", "mae")}
    return {**rows[-1], **med, "total_s": med["search_s"] + med["train_s"], "n": len(rows)}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fs-speed-") as tmp:
        base_root = baseline_checkout(tmp)
        try:
            results: dict[tuple[str, int], list[dict]] = {}
            for h in HORIZONS:
                for _ in range(REPEATS):
                    for side, root in (("this", ROOT), ("baseline", base_root)):
                        if root is not None:
                            results.setdefault((side, h), []).append(measure(root, h))
                            r = results[side, h][-1]
                            print(f"{side} h={h}: {r['form']} w{r['window']} MAE {r['mae']:.4f} "
                                  f"search {r['search_s']:.1f} s train {r['train_s']:.1f} s", flush=True)
        finally:
            if base_root is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_root)],
                               capture_output=True)
    lines = ["## The default's time on a long series (bench_default_speed)", "",
             f"Weather sample, 17,520 hourly rows, `temperature`: search + training in a fresh process each, median of "
             f"{REPEATS} interleaved runs; baseline: {BASELINE} (" +
             ("a git worktree, same interpreter)." if base_root is not None else "not available: no git history).") +
             " Target: this / baseline <= 1.0 with a test MAE no worse.", "",
             "| h | this: form, window, epochs | MAE | search + train s | baseline: form, window, epochs | MAE | "
             "search + train s | time ratio | MAE ratio |", "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    ok = True
    for h in HORIZONS:
        a = summary(results["this", h])
        b = summary(results["baseline", h]) if ("baseline", h) in results else None
        row = (f"| {h} | {a['form']}, {a['window']}, {a['epochs']} | {a['mae']:.4f} | "
               f"{a['search_s']:.1f} + {a['train_s']:.1f} |")
        if b is None:
            row += " - | - | - | - | - |"
        else:
            tr, mr = a["total_s"] / b["total_s"], a["mae"] / b["mae"]
            ok = ok and tr <= 1.0 and mr <= 1.0
            row += (f" {b['form']}, {b['window']}, {b['epochs']} | {b['mae']:.4f} | {b['search_s']:.1f} + "
                    f"{b['train_s']:.1f} | {tr:.2f} | {mr:.3f} |")
        lines.append(row)
    lines += ["", f"Target {'met' if ok else 'MISSED'}."]
    write_section("bench_default_speed", "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        import logging

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        logging.disable(logging.WARNING)
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]))))
        sys.exit(0)
    sys.exit(main())
