"""Training: one ``train()`` for both backends, and ``TrainingJob`` that runs it off the UI thread.

How each backend's epochs run (the loops, the Keras model's PyTorch twin, bfloat16 and the thread
planner, issue 24) lives in ``core.training_engines``; this module checks a training before it
starts, picks the engine, scores and saves the run, and runs it as a background job.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core import jobs
from core.config import DEFAULTS
from core.errors import StudioError, from_interrupt
from core.models import ModelSpec
from core.runs import PREDICT_BATCH, PREDICT_CHUNK, Run
from core.train_config import TrainConfig
from core.training_engines import (BatchCallback, EpochCallback, Threads, keras_engine, torch_device, train_keras,
                                   train_keras_on_torch, train_torch)

# ---------------------------------------------------------------- checks before training

def available_memory_bytes() -> int | None:
    """Memory the OS can still give this process (Linux MemAvailable; page counts elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_estimate(windows: Any, spec: ModelSpec, config: TrainConfig) -> dict[str, int]:
    """Bytes training will hold, by part. Windows are gathered batch by batch from the scaled
    series (never all materialised), so the series copies and the per-batch tensors dominate."""

    ws = windows.spec
    rows = int(len(windows.inputs))
    series = rows * (ws.n_inputs + ws.n_targets) * 4
    gates = {"lstm": 4, "gru": 3, "rnn": 1}.get(spec.kind, 1)
    # Per window: its inputs, and for backprop every step's gate activations in every layer.
    per_window = ws.window * (ws.n_inputs + spec.layers * (gates + 1) * spec.units) * 4
    return {
        "series": 3 * series,  # numpy, plus the TF constant or torch tensor, plus scaling temporaries
        "batch": 3 * config.batch_size * per_window,  # forward, backward, optimiser copies
        # Scoring copies a chunk of windows out of the strided view, then runs it batch by batch.
        "predict": min(PREDICT_CHUNK, max(windows.count("test"), windows.count("val"))) * ws.window * ws.n_inputs * 4
        + PREDICT_BATCH * per_window,
    }


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_trainable(windows: Any, spec: ModelSpec, config: TrainConfig) -> None:
    """Refuse, with numbers, what cannot train: too few windows, too much memory, mismatched shapes."""
    config.validate()
    spec.validate()
    ws = windows.spec
    if (spec.window, spec.n_inputs, spec.horizon, spec.n_targets) != (ws.window, ws.n_inputs, ws.horizon, ws.n_targets):
        raise StudioError(
            f"The model expects windows of {spec.window} x {spec.n_inputs} -> {spec.horizon} x {spec.n_targets}, "
            f"but the features give {ws.window} x {ws.n_inputs} -> {ws.horizon} x {ws.n_targets}.",
            "Open the Model page again so the model takes the current window settings.")
    n_train = windows.count("train")
    if n_train < config.batch_size:
        raise StudioError(
            f"The training part has {n_train} window(s), fewer than one batch of {config.batch_size}.",
            "Use a smaller batch size, a shorter window or horizon, a larger training share, or more data.")
    if windows.count("test") < 1:
        raise StudioError("The test part has no complete window, so the model could not be scored.",
                          "Give the test part a larger share, or shorten the window or horizon.")
    parts = memory_estimate(windows, spec, config)
    need, have = sum(parts.values()), available_memory_bytes()
    fraction = DEFAULTS["train"]["max_memory_fraction"]
    if have is not None and need > fraction * have:
        raise StudioError(
            f"Training would need about {_gb(need)} of memory (the scaled series {_gb(parts['series'])}, "
            f"one batch of {config.batch_size} windows of {ws.window} x {ws.n_inputs} through {spec.layers} x {spec.units} "
            f"units {_gb(parts['batch'])}, prediction {_gb(parts['predict'])}), more than {fraction:.0%} "
            f"of the {_gb(have)} available.",
            "Use a shorter window, a smaller batch, fewer units or layers, or fewer rows (resample on the Data step).")


# ---------------------------------------------------------------- training and saving the run

def train(windows: Any, model_spec: ModelSpec, config: TrainConfig, run_dir: str | Path,
          on_epoch: EpochCallback | None = None, should_stop: Callable[[], bool] | None = None,
          on_batch: BatchCallback | None = None, dataset: Any = None, interval_levels: Any = None,
          references: bool = True, score: bool = True):
    """Train ``model_spec`` on ``windows`` and save the run to ``run_dir``; returns the ``Run``.

    ``on_epoch(record)`` gets ``{epoch, loss, val_loss, seconds}`` after each epoch, ``on_batch(epoch,
    fraction)`` the progress through the current epoch; ``should_stop()`` is checked every batch and
    a stop keeps the best weights so far (the run's status is then "stopped"). ``dataset`` (the
    ``core.dataset.Dataset`` the windows came from) only adds its name and fingerprint to run.json.
    ``interval_levels``: the prediction bands' levels in percent (default ``DEFAULTS["intervals"]``),
    checked before training starts.
    ``references=False`` leaves the statistical references (ETS, Theta: seconds) out of metrics.json, for
    the quick check's and the candidate search's short trainings, which never read the test part.
    ``score=False`` (the quick check) returns the trained ``Run`` unscored and unsaved: no test or validation
    predictions, bands, samples or files; the caller scores what it needs (on 17,520 rows a search saved 0.6 s a
    candidate, three Keras predictions and a save it never read).
    NaN/inf loss, too few windows, too much memory, and framework errors raise ``StudioError``.
    """
    check_trainable(windows, model_spec, config)
    model_spec, linear_info = fit_linear_reference(windows, model_spec)
    if model_spec.target_form == "change_linear" and config.naive_margin is None:
        # The linear forecast is epoch 0 (output at zero) and an epoch replaces it only by beating it on validation:
        # on a short series the network often has nothing to add, and early stopping then keeps the linear forecast.
        config = dataclasses.replace(config, naive_margin=0.0)
    if interval_levels is not None:
        from core.intervals import check_levels

        check_levels(interval_levels)  # refused before a minute of training, not after
    if model_spec.backend == "torch":
        fit, engine = train_torch, "torch"
    else:
        engine = keras_engine(model_spec)
        fit = train_keras_on_torch if engine == "torch" else train_keras
    t0 = time.perf_counter()
    # Entered here rather than in the loop, so the scoring after training keeps the measured thread count.
    threads = Threads(torch_device().type) if engine == "torch" else contextlib.nullcontext()
    with threads:
        return _train_and_score(windows, model_spec, config, run_dir, on_epoch, should_stop, on_batch, dataset,
                                fit, engine, threads if engine == "torch" else None, t0, interval_levels, references,
                                linear_info, score)


# Values (windows x window rows x targets) the linear reference is fitted on at most: the newest training windows
# up to this (a ridge over one window's rows needs thousands of windows, not millions; it stays well under a GB).
LINEAR_FIT_MAX_VALUES = 20_000_000


def fit_linear_reference(windows: Any, spec: ModelSpec) -> tuple[ModelSpec, dict | None]:
    """("change_linear", weights not yet fitted) the spec with its linear reference fitted on the training windows,
    the base and penalty chosen on the validation windows (core.linear_reference), and a note for run.info;
    any other spec comes back unchanged. The fit needs the windows in memory, so it reads the newest ones up to
    ``LINEAR_FIT_MAX_VALUES``."""
    if spec.target_form != "change_linear" or spec.linear_weights:
        return spec, None
    from core import linear_reference

    per_window = int(spec.window) * int(spec.n_targets)
    keep = LINEAR_FIT_MAX_VALUES // max(per_window, 1)
    if keep < linear_reference.MIN_WINDOWS:
        raise StudioError(f"A window of {spec.window} rows is too long to fit the linear reference over "
                          f"({per_window:,} values per window; at most {LINEAR_FIT_MAX_VALUES:,} are held).",
                          "Use a shorter window, or another target form.")
    n_train, n_val = windows.count("train"), windows.count("val")
    idx = spec.target_input_index
    # Only the target columns: windows.X is a strided view, and slicing it before the copy keeps the copy small.
    X = np.asarray(windows.X("train")[-keep:][:, :, list(idx)])
    Y = np.asarray(windows.y("train")[-keep:])
    Xv = np.asarray(windows.X("val")[-keep:][:, :, list(idx)]) if n_val else None
    Yv = np.asarray(windows.y("val")[-keep:]) if n_val else None
    lo, hi = windows.parts["train"]
    ref = linear_reference.fit(X, Y, range(len(idx)), spec.season_period, Xv, Yv,
                               series=np.asarray(windows.target_values[lo:hi]), base=spec.linear_base)
    weights, bias = ref.to_lists()
    info = {"bases": list(ref.bases), "penalties": list(ref.penalties), "words": ref.describe(windows.spec.targets),
            "season_period": spec.season_period,
            "train_windows": int(min(n_train, keep)), "val_windows": int(min(n_val, keep)),
            "chosen_on": "validation windows" if n_val else "the newest fifth of the training windows"}
    return spec.with_options(linear_weights=weights, linear_bias=bias), info


def _train_and_score(windows, model_spec, config, run_dir, on_epoch, should_stop, on_batch, dataset, fit, engine,
                     threads, t0, interval_levels, references=True, linear_info=None, score=True):
    try:
        model, tracker = fit(windows, model_spec, config, on_epoch, on_batch, should_stop, threads=threads)
    except StudioError:
        raise
    except MemoryError as e:
        raise StudioError(f"Training ran out of memory ({e}).",
                          "Use fewer units or layers, a smaller batch, or a shorter window.") from e
    except Exception as e:  # a TF/torch failure mid-training: say what it was, leave nothing behind
        if from_interrupt(e):  # Ctrl+C while a framework loaded: an interruption, not a failed training
            raise KeyboardInterrupt from e
        detail = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]
        raise StudioError(f"Training failed inside {'PyTorch' if engine == 'torch' else 'TensorFlow'}: {detail[:400]}",
                          "Nothing was saved. Check the model and training settings (a smaller model or batch often helps) and start again.") from e
    if not tracker.history:
        raise StudioError("Training was stopped before the first epoch finished, so there is no model to keep.",
                          "Start the training again and let at least one epoch finish.")
    departure = _check_departure(windows, model_spec, config, model, tracker)
    status = "stopped" if tracker.stopped else "done"
    info = {"status": status, "best_epoch": tracker.best_epoch, "epochs_run": tracker.epoch,
            "early_stopped": tracker.early, "seconds": time.perf_counter() - t0,
            "device": str(torch_device()) if engine == "torch" else "cpu",
            "engine": engine, "precision": tracker.precision}
    if tracker.threads:
        info["threads"] = tracker.threads
    if linear_info is not None:
        info["linear_reference"] = linear_info
    if tracker.naive_loss is not None:  # started at the naive forecast (issue 34): did training leave it?
        info["naive_start"] = {"val_loss": tracker.naive_loss, "margin": float(config.naive_margin or 0.0),
                               "kept": tracker.kept_naive}
        if departure is not None:
            info["naive_start"]["departure"] = departure
        # A change_linear model kept at its start is the linear forecast, not a naive one (metrics.linear_note).
        linear = model_spec.target_form == "change_linear"
        info["naive_equivalent"] = tracker.kept_naive and not linear
        if linear:
            info["linear_equivalent"] = tracker.kept_naive
    return Run.from_training(windows, model_spec, config, model, tracker.history, info, run_dir, dataset=dataset,
                             interval_levels=interval_levels, references=references, score=score)


def _check_departure(windows, model_spec, config, model, tracker) -> dict | None:
    """A naive-equivalent model that training moved off the naive start keeps its epoch only when it also beats the
    naive forecast by the search's one rule on validation (core.naive_default.departure_check); otherwise its output
    layer goes back to zero, the naive forecast exactly. Returns the check's figures, or None when nothing moved."""
    from core.naive_default import FORM_BASELINES, departure_check

    if tracker.naive_loss is None or tracker.kept_naive or model_spec.target_form not in FORM_BASELINES:
        return None
    probe = Run.from_training(windows, model_spec, config, model, tracker.history, {}, "", score=False)
    check = departure_check(windows, probe.predict(windows.X("val")), model_spec.target_form)
    if check is not None and not check["beats"]:
        from core.models import canonical_weights, load_canonical
        from core.training_engines import zero_output

        load_canonical(model, zero_output(canonical_weights(model)))
        tracker.best_epoch = 0  # the naive start is the model again (Tracker.kept_naive)
    return check


# ---------------------------------------------------------------- background job

class TrainingJob:
    """``train()`` as a job on the shared pool (``core.jobs``), polled by the Train page with ``snapshot()``.

    One running job per ``owner`` (a session id): a second ``start()`` while one runs is refused.
    ``stop()`` ends at the next batch and keeps the best weights (status "stopped", ``result`` usable).
    """

    _active: dict[str, "TrainingJob"] = {}
    _active_lock = threading.Lock()

    def __init__(self, windows: Any, model_spec: ModelSpec, config: TrainConfig, run_dir: str | Path,
                 owner: str = "local", dataset: Any = None) -> None:
        self.windows, self.model_spec, self.config = windows, model_spec, config
        self.run_dir, self.owner, self.dataset = Path(run_dir), owner, dataset
        self.result = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._job: jobs.Job | None = None
        self._status = "queued"
        self._error: str | None = None
        self._history: list[dict] = []
        self._epoch = 0
        self._fraction = 0.0
        self._started: float | None = None
        self._epoch_started: float | None = None

    # -- control
    def start(self) -> "TrainingJob":
        """Queue the training on the process-wide job pool (``core.jobs``): a workshop server runs as
        many trainings at once as it has workers, and the rest wait with a visible queue position."""
        with TrainingJob._active_lock:
            other = TrainingJob._active.get(self.owner)
            if other is not None and other is not self and not other.finished:
                raise StudioError("A training is already running in this session.",
                                  "Wait for it to finish or press Stop, then start the new one.")
            if self._job is not None:
                raise StudioError("This training has already been started.", "Start a new training instead.")
            self.config.validate()
            self._job = jobs.pool().submit(self.owner, "train", self._run_job, label=self.model_spec.label)
            TrainingJob._active[self.owner] = self
        return self

    def stop(self) -> None:
        """Stop at the next batch, keeping the best weights; a training still queued is cancelled."""
        self._stop.set()
        if self._job is not None:
            self._job.stop()
            if self._job.status == jobs.CANCELLED:
                self._finish("failed", error="Cancelled while waiting in the queue. Start it again when you are ready.")
                self._release()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def queue_position(self) -> int:
        """1 for the next training to start; 0 once running or finished."""
        return self._job.snapshot()["position"] if self._job is not None and self.status == "queued" else 0

    # -- the worker
    def _on_epoch(self, record: dict) -> None:
        with self._lock:
            self._history.append(record)
            self._epoch = record["epoch"]
            self._fraction = 0.0
            self._epoch_started = time.time()

    def _on_batch(self, epoch: int, fraction: float) -> None:
        # A float store; the GIL makes it atomic and the page tolerates a value one batch old.
        self._fraction = fraction

    def _run_job(self, ctx: Any) -> None:
        self._run()

    def _release(self) -> None:
        # The job keeps only what the page needs; the windows belong to the session.
        self.windows = None
        with TrainingJob._active_lock:
            if TrainingJob._active.get(self.owner) is self:
                del TrainingJob._active[self.owner]

    def _run(self) -> None:
        if self._done.is_set():  # cancelled while queued
            return
        with self._lock:
            self._status, self._started, self._epoch_started = "running", time.time(), time.time()
        try:
            run = train(self.windows, self.model_spec, self.config, self.run_dir, on_epoch=self._on_epoch,
                        should_stop=self._stop.is_set, on_batch=self._on_batch, dataset=self.dataset)
        except StudioError as e:
            self._finish("failed", error=str(e))
        except Exception as e:  # never let the thread die silently: the page must show why
            self._finish("failed", error=f"Training failed: {type(e).__name__}: {e}. Change the settings and start again.")
        else:
            self._finish(run.status, result=run)
        finally:
            self._release()

    def _finish(self, status: str, result: Any = None, error: str | None = None) -> None:
        with self._lock:
            self._status, self.result, self._error = status, result, error
            self._fraction = 0.0 if status == "failed" else self._fraction
        self._done.set()

    # -- what the page polls
    def snapshot(self) -> dict:
        with self._lock:
            history = [dict(h) for h in self._history]
            status, epoch, fraction = self._status, self._epoch, self._fraction
            error, epoch_started = self._error, self._epoch_started
        epochs = self.config.epochs
        done_epochs = [h["seconds"] for h in history]
        spe = float(np.mean(done_epochs)) if done_epochs else None
        if spe is None and status == "running" and fraction > 0 and epoch_started is not None:
            spe = (time.time() - epoch_started) / fraction  # first epoch: extrapolate from its batches
        eta = None
        if status == "running" and spe is not None:
            eta = max(0.0, (epochs - epoch - fraction) * spe)
        elif status in ("done", "stopped", "failed"):
            eta = 0.0
        return {"status": status, "epoch": epoch, "epochs": epochs,
                "batch_fraction": fraction if status == "running" else (1.0 if status == "done" else fraction),
                "history": history, "eta_s": eta, "seconds_per_epoch": spe, "error": error,
                "run_dir": str(self.run_dir), "queue_position": self.queue_position}
