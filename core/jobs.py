"""One job interface for training and export: a bounded local worker pool, or Ray tasks.

A workshop of 30 people must not start 30 trainings on a 2-core machine: jobs wait in a queue
whose position each owner sees, and may be cancelled while queued or stopped while running.
With ``RAY_ADDRESS`` set (or ``pool(ray=True)``) the same jobs run as Ray tasks on that cluster
and stream their progress back through a small actor.

A job function has the signature ``fn(ctx: JobContext, *args) -> result``; it reports progress
with ``ctx.report(**fields)`` and checks ``ctx.should_stop()`` between units of work.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from core.errors import StudioError

QUEUED, RUNNING, DONE, STOPPED, FAILED, CANCELLED = "queued", "running", "done", "stopped", "failed", "cancelled"
FINISHED = (DONE, STOPPED, FAILED, CANCELLED)


class JobStopped(Exception):
    """Raised inside a job function to end it early on request (its partial result is kept)."""


class JobContext:
    """What a running job sees: a progress sink and the stop flag."""

    def __init__(self, job: "Job") -> None:
        self._job = job

    def report(self, **fields: Any) -> None:
        with self._job._lock:
            self._job.progress.update(fields)

    def should_stop(self) -> bool:
        return self._job._stop.is_set()


@dataclass
class Job:
    id: int
    owner: str
    kind: str
    label: str
    status: str = QUEUED
    progress: dict = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _pool: Any = field(default=None, repr=False)

    def stop(self) -> None:
        """Cancel while queued; ask a running job to stop at its next check."""
        self._stop.set()
        if self._pool is not None:
            self._pool._cancel_if_queued(self)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def finished_ok(self) -> bool:
        return self.status in (DONE, STOPPED)

    def snapshot(self) -> dict:
        with self._lock:
            snap = {"id": self.id, "owner": self.owner, "kind": self.kind, "label": self.label,
                    "status": self.status, "progress": dict(self.progress), "error": self.error,
                    "queued_s": (self.started or time.time()) - self.submitted,
                    "position": self._pool.position(self) if self._pool is not None else 0}
        return snap


def _finish(job: Job, status: str, result: Any = None, error: str | None = None) -> None:
    with job._lock:
        job.status, job.result, job.error, job.finished = status, result, error, time.time()
    job._done.set()


def _run_inline(job: Job, fn: Callable, args: tuple) -> None:
    with job._lock:
        job.status, job.started = RUNNING, time.time()
    try:
        result = fn(JobContext(job), *args)
    except JobStopped:
        _finish(job, STOPPED, job.result)
    except StudioError as err:
        _finish(job, FAILED, error=str(err))
    except Exception as err:  # a TF/torch error mid-job: the job fails, the pool and the page live on
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        _finish(job, FAILED, error=f"{detail}. The job stopped; change the settings and start it again.")
    else:
        _finish(job, STOPPED if job._stop.is_set() else DONE, result)


class LocalPool:
    """A fixed number of worker threads (default: one per core) and a FIFO queue in front of them.

    Threads, not processes: TensorFlow and PyTorch release the GIL in their kernels, and the
    trained model stays in this process for the pages to use.
    """

    def __init__(self, workers: int | None = None, max_queued: int = 200) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_queued = max_queued
        self._queue: deque[tuple[Job, Callable, tuple]] = deque()
        self._running: set[int] = set()
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._worker, name=f"fs-job-{i}", daemon=True)
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()

    name = "local"

    def submit(self, owner: str, kind: str, fn: Callable, *args: Any, label: str = "") -> Job:
        with self._cv:
            if len(self._queue) >= self.max_queued:
                raise StudioError(f"The job queue is full ({self.max_queued} jobs waiting).",
                                  "Wait for some jobs to finish, or cancel one of yours, then try again.")
            job = Job(id=next(self._ids), owner=owner, kind=kind, label=label or kind, _pool=self)
            self._jobs[job.id] = job
            self._queue.append((job, fn, args))
            self._cv.notify()
        return job

    def position(self, job: Job) -> int:
        """1 for the next job to start; 0 once running or finished."""
        with self._cv:
            for i, (queued, _, _) in enumerate(self._queue):
                if queued is job:
                    return i + 1
        return 0

    def jobs(self, owner: str | None = None) -> list[Job]:
        with self._cv:
            return [j for j in self._jobs.values() if owner is None or j.owner == owner]

    def forget(self, owner: str) -> None:
        """Drop an ended session's finished jobs and cancel its queued ones."""
        for job in self.jobs(owner):
            if job.status not in FINISHED:
                job.stop()
        with self._cv:
            for jid in [j.id for j in self._jobs.values() if j.owner == owner and j.status in FINISHED]:
                self._jobs.pop(jid, None)

    def _cancel_if_queued(self, job: Job) -> None:
        with self._cv:
            for item in list(self._queue):
                if item[0] is job:
                    self._queue.remove(item)
                    _finish(job, CANCELLED)
                    return

    def put(self, obj: Any) -> Any:
        """``obj`` in Ray's object store, so every job of a sweep shares one copy (a dataset, say)."""
        return self._ray.put(obj)

    def _worker(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                job, fn, args = self._queue.popleft()
                self._running.add(job.id)
            try:
                _run_inline(job, fn, args)
            finally:
                with self._cv:
                    self._running.discard(job.id)

    def stats(self) -> dict:
        with self._cv:
            return {"backend": self.name, "workers": self.workers, "queued": len(self._queue),
                    "running": len(self._running)}


class RayPool(LocalPool):
    """Jobs as Ray tasks. The queue and positions stay here; a running job's progress and stop flag
    travel through a small Ray actor, so the pages poll a Ray job exactly like a local one."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError as err:  # Ray is optional
            raise StudioError("Ray is not installed, so jobs cannot run on a Ray cluster.",
                              "Install it with `pip install ray==2.60.0`, or unset RAY_ADDRESS to use the local pool.") from err
        if not ray.is_initialized():
            try:
                # Workers import job functions from core/, so they need the project on their path.
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                         log_to_driver=False, ignore_reinit_error=True,
                         runtime_env={"env_vars": {"PYTHONPATH": root}})
            except Exception as err:
                raise StudioError(f"Could not connect to the Ray cluster at {address or os.environ.get('RAY_ADDRESS')!r}: {err}",
                                  "Check RAY_ADDRESS, or unset it to use the local pool.") from err
        self._ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        super().__init__(workers=workers or cpus)

    def _worker(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                job, fn, args = self._queue.popleft()
                self._running.add(job.id)
            try:
                self._run_remote(job, fn, args)
            finally:
                with self._cv:
                    self._running.discard(job.id)

    def _run_remote(self, job: Job, fn: Callable, args: tuple) -> None:
        ray = self._ray
        with job._lock:
            job.status, job.started = RUNNING, time.time()
        channel = _channel_actor(ray).remote()
        task = _remote_runner(ray).remote(fn, channel, *args)
        while True:
            ready, _ = ray.wait([task], timeout=0.5)
            progress, _ = ray.get(channel.read.remote())
            with job._lock:
                job.progress.update(progress)
            if job._stop.is_set():
                channel.stop.remote()
            if ready:
                break
        try:
            status, result, error = ray.get(task)
        except Exception as err:  # the worker died (out of memory, node lost)
            status, result, error = FAILED, None, f"The Ray task failed: {err}"
        _finish(job, status, result, error)


_RAY_CACHE: dict[str, Any] = {}


def _channel_actor(ray):
    if "channel" not in _RAY_CACHE:
        @ray.remote(num_cpus=0)
        class Channel:
            def __init__(self):
                self.progress, self.stopped = {}, False

            def report(self, fields):
                self.progress.update(fields)

            def stop(self):
                self.stopped = True

            def should_stop(self):
                return self.stopped

            def read(self):
                return dict(self.progress), self.stopped

        _RAY_CACHE["channel"] = Channel
    return _RAY_CACHE["channel"]


def _remote_runner(ray):
    if "runner" not in _RAY_CACHE:
        @ray.remote
        def run(fn, channel, *args):
            class RemoteContext:
                def report(self, **fields):
                    channel.report.remote(fields)

                def should_stop(self):
                    return ray.get(channel.should_stop.remote())

            try:
                return DONE, fn(RemoteContext(), *args), None
            except JobStopped:
                return STOPPED, None, None
            except StudioError as err:
                return FAILED, None, str(err)
            except Exception as err:
                return FAILED, None, f"{type(err).__name__}: {err}"

        _RAY_CACHE["runner"] = run
    return _RAY_CACHE["runner"]


_POOL: LocalPool | None = None
_POOL_LOCK = threading.Lock()


def pool(ray: bool | None = None) -> LocalPool:
    """The process-wide pool: Ray when asked for (or RAY_ADDRESS is set), else local threads."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            use_ray = bool(os.environ.get("RAY_ADDRESS")) if ray is None else ray
            workers = int(os.environ["FS_WORKERS"]) if os.environ.get("FS_WORKERS") else None
            _POOL = RayPool(workers=workers) if use_ray else LocalPool(workers=workers)
        return _POOL
