"""A sweep: several configurations (window sizes, layer kinds, units) trained as queued jobs and
compared in one table, with the board budget as a filter.

``core.sweep_plan`` (re-exported here) plans it: ``plan(grid)`` turns ``{"window": [...], "kind": [...], "units":
[...]}`` into trials, each the Model step's configuration (``model_options``: target form, backend, dropout...) with
only those axes varied; ``estimate(...)`` gives each trial's parameter count and board estimates before anything trains;
``submit(...)`` puts one job per trial on the process-wide job pool (``core.jobs``), each training
into its own run directory under the owner's session directory; ``table(jobs)`` is the comparison.

Ray: a trial is a module-level function with plain arguments, so a Ray worker imports and runs it
like a local thread does. A Ray worker is a separate process and may sit on another machine, so by
default it trains into its own temporary directory and returns the run directory as zip bytes,
which ``collect(job)`` unpacks into the owner's session directory on the studio's side. On a local
Ray (or a cluster with a shared filesystem at the same path) set ``FS_RAY_SHARED_FS=1`` and workers
write the run directory in place instead.
"""
from __future__ import annotations

import io
import itertools
import json
import math
import os
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from core import jobs as jobs_mod
from core.config import DEFAULTS
from core.errors import StudioError
from core.files import atomic_dir
from core.models import ModelSpec
from core.sweep_plan import (ESTIMATE_HEADERS, FROM_MODEL, Trial, estimate, model_options, plan, settings_words,
                             split_by_budget, trial_spec, unfit, within_budget)

__all__ = ["ESTIMATE_HEADERS", "FROM_MODEL", "Trial", "estimate", "model_options", "plan", "settings_words", "split_by_budget",
           "trial_spec", "unfit", "within_budget", "run_trial", "submit", "collect", "load", "finite", "band_summary",
           "table", "best", "summary_json"]
_CFG = DEFAULTS["sweep"]
JOB_KIND = "sweep"
RUN_FILES = ("run.json", "weights.npz", "model.weights.h5", "model.torch.npz", "history.json", "metrics.json",
             "samples.npz", "intervals.json")
_IDS = itertools.count(1)


# ----------------------------------------------------------------------------- the job itself

class _Every:
    """Calls through at most once per ``seconds``; the last value in between is dropped, not queued."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self._last = seconds, 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(path.iterdir()):
            if f.is_file() and not f.name.startswith("."):  # the owner marker is written again on unpacking
                zf.write(f, f.name)
    return buf.getvalue()


def run_trial(ctx: Any, dataset: Any, window_spec: dict, split: dict, scaler_kind: str, model_spec: dict,
              train_config: dict, run_dir: str, ship: bool) -> dict:
    """One trial as a pool job: windows for its look-back, ``core.training.train`` into ``run_dir``
    (or, when ``ship``, into a private temp directory whose files come back as zip bytes).

    Returns a small JSON-able summary (and ``run_zip`` bytes when shipping), never the model: a Ray
    worker's result travels between processes.
    """
    from core.training import TrainConfig, train
    from core.windows import SplitSpec, WindowSpec, make_windows

    ctx.report(phase="windows")
    windows = make_windows(dataset, WindowSpec.from_dict(window_spec), SplitSpec.from_dict(split), scaler_kind)
    spec = ModelSpec.from_dict(model_spec)
    config = TrainConfig.from_dict(train_config)
    ctx.report(phase="training", epoch=0, epochs=config.epochs, fraction=0.0,
               windows={"train": windows.count("train"), "val": windows.count("val"), "test": windows.count("test")})
    reporting, checking = _Every(float(_CFG["report_every_s"])), _Every(float(_CFG["stop_check_every_s"]))
    stop_seen = [False]

    def should_stop() -> bool:
        if not stop_seen[0] and checking.due():
            stop_seen[0] = bool(ctx.should_stop())
        return stop_seen[0]

    def on_epoch(record: dict) -> None:
        ctx.report(epoch=int(record["epoch"]), loss=record["loss"], val_loss=record.get("val_loss"), fraction=0.0)

    def on_batch(epoch: int, fraction: float) -> None:
        if reporting.due():
            ctx.report(fraction=float(fraction))

    target = Path(tempfile.mkdtemp(prefix="fs-sweep-")) / "run" if ship else Path(run_dir)
    try:
        try:
            run = train(windows, spec, config, target, on_epoch=on_epoch, should_stop=should_stop,
                        on_batch=on_batch, dataset=dataset)
        except StudioError:
            if stop_seen[0]:  # stopped before the first epoch ended: nothing to keep, and not a failure
                raise jobs_mod.JobStopped() from None
            raise
        metrics = run.metrics
        summary = {"run_dir": str(run_dir), "status": run.status,
                   "mae": (metrics.get("model") or {}).get("mae"), "rmse": (metrics.get("model") or {}).get("rmse"),
                   "best_baseline": metrics.get("best_baseline"),
                   "best_baseline_mae": ((metrics.get("baselines") or {}).get(metrics.get("best_baseline")) or {}).get("mae"),
                   "improvement_pct": metrics.get("improvement_pct"),
                   "epochs_run": run.info.get("epochs_run"), "seconds": run.info.get("seconds"),
                   **band_summary(run.intervals)}
        if ship:
            summary["run_zip"] = _zip_dir(target)
        ctx.report(phase="done", fraction=1.0)
        return summary
    finally:
        if ship:
            shutil.rmtree(target.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- submitting

def _ship_default(pool: Any) -> bool:
    """Ray workers ship the run back as bytes unless the host says the filesystem is shared."""
    if getattr(pool, "name", "local") != "ray":
        return False
    return os.environ.get("FS_RAY_SHARED_FS", "").strip().lower() not in ("1", "true", "yes")


def submit(dataset: Any, window_spec: Any, split: Any, scaler_kind: str, grid: dict | Iterable[Trial],
           train_config: Any, root_dir: str | Path, owner: str, pool: Any = None,
           model_options: dict | None = None, ship: bool | None = None) -> list[jobs_mod.Job]:
    """Queue one training job per trial; returns the jobs in trial order.

    ``root_dir`` is the owner's session directory: runs go to ``root_dir/sweeps/<sweep id>/<trial>``.
    ``grid`` is a dict for ``plan`` or a list of trials (e.g. already filtered by budget).
    ``model_options`` (backend, dropout, residual, ...) apply to every trial. Every trial's windows are
    checked first, so a look-back too long for the data is refused before anything is queued.
    """
    from core.windows import check

    trials = plan(grid) if isinstance(grid, dict) else list(grid)
    if not trials:
        raise StudioError("No configuration is left to train.", "Relax the budget limits or pick more options.")
    train_config.validate()
    options = dict(model_options or {})
    specs = []
    for t in trials:
        ws, spec = trial_spec(window_spec, t, **options)
        try:
            check(dataset, ws, split, scaler_kind)
        except StudioError as e:
            raise StudioError(f"Window {t.window} does not work with this data: {e.problem}", e.fix) from None
        specs.append((t, ws, spec))
    pool = pool or jobs_mod.pool()
    ship = _ship_default(pool) if ship is None else bool(ship)
    sweep_id = time.strftime("sweep-%Y%m%d-%H%M%S") + f"-{next(_IDS)}"
    base = Path(root_dir) / "sweeps" / sweep_id
    base.mkdir(parents=True, exist_ok=True)
    # A Ray task gets its arguments copied into the object store; put the dataset there once, not per trial.
    data_arg = pool.put(dataset) if getattr(pool, "name", "") == "ray" else dataset
    split_d, config_d = split.to_dict(), train_config.to_dict()
    submitted: list[jobs_mod.Job] = []
    try:
        for t, ws, spec in specs:
            run_dir = base / t.key
            job = pool.submit(owner, JOB_KIND, run_trial, data_arg, ws.to_dict(), split_d, scaler_kind,
                              spec.to_dict(), config_d, str(run_dir), ship, label=t.label)
            jobs_mod.JobContext(job).report(sweep=sweep_id, trial=t.to_dict(), run_dir=str(run_dir),
                                            estimate=estimate(window_spec, t, **options), epochs=train_config.epochs,
                                            from_model=settings_words(options, train_config))
            submitted.append(job)
    except StudioError:
        for job in submitted:  # a full queue part-way: take back this sweep's jobs, not half a sweep
            job.stop()
        raise
    return submitted


# ----------------------------------------------------------------------------- results

_COLLECT_LOCK = threading.Lock()


def collect(job: jobs_mod.Job) -> Path | None:
    """The job's run directory once it finished with a model; unpacks a shipped run first (once)."""
    if not job.finished_ok or not isinstance(job.result, dict):
        return None
    with _COLLECT_LOCK:
        result = job.result
        run_dir = Path(result["run_dir"])
        data = result.get("run_zip")
        if data is not None:
            _unpack(data, run_dir)
            job.result = {k: v for k, v in result.items() if k != "run_zip"}  # the bytes are on disk now
    return run_dir if (run_dir / "run.json").exists() else None


def _unpack(data: bytes, run_dir: Path) -> None:
    """Write a shipped run directory: only the run's own flat file names, size-capped, atomically."""
    limit = int(_CFG["max_run_zip_mb"]) * 1024 * 1024
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if any(n not in RUN_FILES for n in names) or sum(i.file_size for i in infos) > limit:
                raise StudioError("A sweep worker sent back files that are not a run directory.",
                                  "Run the sweep again; if it repeats, check the Ray workers' studio version.")
            with atomic_dir(run_dir, "run") as tmp:
                for info in infos:
                    (tmp / info.filename).write_bytes(zf.read(info))
    except zipfile.BadZipFile as e:
        raise StudioError(f"A sweep worker's run could not be read ({e}).", "Run that trial again.") from e


def load(job: jobs_mod.Job):
    """The trained ``core.runs.Run`` of a finished job (checksums verified by ``load_run``)."""
    from core.runs import load_run

    path = collect(job)
    if path is None:
        raise StudioError(f"'{job.label}' has no trained model ({job.status}).", "Pick a trial that finished.")
    return load_run(path)


def finite(v: Any) -> float | None:
    """A finite float, or None (metrics.json writes NaN as null)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def band_summary(intervals: dict | None) -> dict:
    """The narrowest calibrated band's mean width (over targets and steps, targets' units) and its test
    coverage: a smaller model that is less sure shows a wider band."""
    bands = (intervals or {}).get("bands") or {}
    if not bands:
        return {"band_level": None, "band_width": None, "band_coverage": None}
    key = min(bands, key=lambda k: float(bands[k].get("level", k)))
    widths = [w for w in bands[key].get("mean_width") or [] if w is not None]
    return {"band_level": float(bands[key].get("level", key)),
            "band_width": float(sum(widths) / len(widths)) if widths else None,
            "band_coverage": bands[key].get("coverage")}


COLUMNS = ["job", "best", "configuration", "window", "kind", "units", "from the Model step", "status", "queue",
           "progress", "test MAE", "best baseline MAE", "vs best baseline %", "band", "band width", "band coverage %",
           "params", "latency ms (est.)", "RAM KB (est.)", "flash KB (est.)", "within budget", "run dir"]


def loses(result: dict | None) -> str | None:
    """None when a finished trial beats its best baseline on the test part; else the words that say it does not
    ("loses to seasonal naive by 19%"), so no mark or choice crowns it silently."""
    from core.metrics import BASELINE_LABELS

    result = result or {}
    pct = finite(result.get("improvement_pct"))
    if pct is not None and pct > 0:
        return None
    name = BASELINE_LABELS.get(result.get("best_baseline"), result.get("best_baseline") or "the best baseline")
    if pct is None:
        return "not compared with the baselines"
    return f"ties with {name}" if pct == 0 else f"loses to {name} by {-pct:.0f}%"


def best_mark(job: jobs_mod.Job) -> str:
    """The table's mark for the trial ``best`` picks: a plain star only when it beats the best baseline."""
    why = loses(job.result if isinstance(job.result, dict) else None)
    return "★ best" if why is None else f"★ lowest error, but {why}"


def table(jobs: Iterable[jobs_mod.Job], max_latency_ms: float | None = None, max_ram_kb: float | None = None,
          only_within_budget: bool = False) -> pd.DataFrame:
    """One row per trial: configuration, status and queue position, progress, test MAE against the
    best baseline (positive % = better than it), parameters and the board estimates."""
    jobs = list(jobs)
    top = best(jobs, max_latency_ms, max_ram_kb)  # the same pick the page offers, so table and choice agree
    rows = []
    for job in jobs:
        snap = job.snapshot()
        p = snap["progress"]
        trial, est = p.get("trial") or {}, p.get("estimate") or {}
        result = job.result if isinstance(job.result, dict) and job.finished_ok else {}
        status = snap["status"]
        if status == jobs_mod.RUNNING:
            epochs = int(p.get("epochs") or 0)
            done = min(1.0, (int(p.get("epoch") or 0) + float(p.get("fraction") or 0.0)) / epochs) if epochs else 0.0
            progress = f"epoch {min(int(p.get('epoch') or 0) + 1, epochs)}/{epochs} ({done:.0%})"
        elif status == jobs_mod.FAILED:
            progress = (snap["error"] or "")[:200]
        elif status in (jobs_mod.DONE, jobs_mod.STOPPED):
            progress = f"{result.get('epochs_run', '?')} epochs in {finite(result.get('seconds')) or 0:.0f} s"
        else:
            progress = ""
        rows.append({
            "job": snap["id"], "best": best_mark(job) if top is not None and job is top else "",
            "configuration": snap["label"], "window": trial.get("window"),
            "kind": trial.get("kind"), "units": trial.get("units"), "from the Model step": p.get("from_model"),
            "status": status,
            "queue": snap["position"] or None, "progress": progress,
            "test MAE": finite(result.get("mae")), "best baseline MAE": finite(result.get("best_baseline_mae")),
            "vs best baseline %": finite(result.get("improvement_pct")),
            "band": f"{finite(result.get('band_level')):g}%" if finite(result.get("band_level")) else None,
            "band width": finite(result.get("band_width")), "band coverage %": finite(result.get("band_coverage")),
            "params": est.get("params"),
            "latency ms (est.)": est.get("latency_ms"), "RAM KB (est.)": est.get("ram_kb"),
            "flash KB (est.)": est.get("flash_kb"),
            "within budget": within_budget(est, max_latency_ms, max_ram_kb) if est else None,
            "run dir": result.get("run_dir") or p.get("run_dir"),
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["queue"] = df["queue"].astype("Int64")  # a position, or empty once the trial left the queue
    if only_within_budget and len(df):
        df = df[df["within budget"].fillna(False).astype(bool)].reset_index(drop=True)
    return df


def best(jobs: Iterable[jobs_mod.Job], max_latency_ms: float | None = None,
         max_ram_kb: float | None = None) -> jobs_mod.Job | None:
    """The finished trial with the lowest test MAE among those within the budget (None if none)."""
    candidates = []
    for job in jobs:
        if not job.finished_ok or not isinstance(job.result, dict):
            continue
        est = job.snapshot()["progress"].get("estimate") or {}
        mae = finite(job.result.get("mae"))
        if mae is not None and within_budget(est, max_latency_ms, max_ram_kb):
            candidates.append((mae, job.id, job))
    return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


def summary_json(jobs: Iterable[jobs_mod.Job]) -> str:
    """The table as JSON (for a download or the command line)."""
    return json.dumps(table(jobs).to_dict(orient="records"), indent=2, default=str)
