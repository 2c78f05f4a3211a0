"""Load: many simulated participants on one studio process, as in a workshop.

Each of ``FS_BENCH_SESSIONS`` (default 20) sessions runs in its own thread as Streamlit AppTest
sessions with its own session id (what a browser tab gets from a real server): it opens the Data page
(which loads a bundled sample; odd sessions switch to the other sample), takes its own slice of a few
hundred rows, starts a one-trial sweep (GRU 8 units, window 24, 2 epochs, torch) from the Sweep page,
polls that page like a participant watching the table, and, once trained, exports the run (float32,
checked on TFLM) as a job on the same pool. Everything goes through the one process-wide job pool
(``core.jobs.pool()``: as many at once as cores; the rest queue).

Measured: the time of one page interaction (a full AppTest rerun of the Sweep page, the page a
participant watches) with no training running (baseline: the same sessions polling, nothing queued)
and while trainings run; the p95 of the latter must stay under 2 s. AppTest runs cannot overlap in
one process (they swap process-wide Streamlit objects), so the sessions' reruns take turns on a lock
(tests/apptest_sessions.py): an interaction's time includes waiting for its turn, which a real server's
parallel script threads would partly overlap; the wait is reported separately. Peak RSS of the studio process
(sampled) and of the largest child (the export converters). Isolation: each session's run and export
lie in its own session directory, its table lists only its own jobs, and its run was trained on its
own slice.
"""
from __future__ import annotations

import hashlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("FS_WORKDIR_ROOT", tempfile.mkdtemp(prefix="fs-bench-load-"))

from bench.common import write_section  # noqa: E402
from core import jobs, sessions  # noqa: E402
from core.dataset import Dataset  # noqa: E402
from core.windows import SplitSpec, WindowSpec, make_windows  # noqa: E402
from tests.apptest_sessions import session_app  # noqa: E402

SESSIONS = int(os.environ.get("FS_BENCH_SESSIONS", "20"))
ROWS = 600             # a few hundred training windows at window 24
THINK_S = 2.0          # a participant's pace: one interaction every couple of seconds
BASELINE_ROUNDS = 4
P95_LIMIT_S = 2.0
DEADLINE_S = int(os.environ.get("FS_BENCH_DEADLINE_S", "540"))  # the whole bench stays under ~10 minutes on 2 cores
DATA_PAGE = str(ROOT / "pages" / "1_data.py")
SWEEP_PAGE = str(ROOT / "pages" / "8_sweep.py")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Monitor(threading.Thread):
    """Samples this process's resident memory and whether any training is running."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.samples.append((time.time(), _rss_bytes()))
            self.stop_event.wait(0.5)


def _export_job(ctx, run_dir: str, out_dir: str) -> str:
    from core.export import export_run

    export_run(run_dir, out_dir, int8=False, progress=lambda f, m: ctx.report(fraction=f, message=m))
    return out_dir


class Participant(threading.Thread):
    def __init__(self, i: int, start_gate: threading.Barrier, load_gate: threading.Barrier, record) -> None:
        super().__init__(name=f"participant-{i}", daemon=True)
        self.i, self.start_gate, self.load_gate, self.record = i, start_gate, load_gate, record
        self.sid = f"load-session-{i:02d}"
        self.error: str | None = None
        self.result: dict = {}

    def timed_run(self, at, phase: str):
        t0 = time.perf_counter()
        at.run()
        self.record(phase, time.perf_counter() - t0, self.sid)
        self.record(phase + "-wait", at.last_wait_s, self.sid)
        self.record(phase + "-run", time.perf_counter() - t0 - at.last_wait_s, self.sid)
        if at.exception:
            raise RuntimeError(f"{self.sid}: page raised {at.exception[0].value}")
        return at

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            self.error = traceback.format_exc()
            for gate in (self.start_gate, self.load_gate):
                gate.abort()

    def _run(self) -> None:
        # 1. The Data page loads a bundled sample; odd sessions switch to the other one.
        data = session_app(DATA_PAGE, self.sid)
        self.timed_run(data, "data")
        if self.i % 2:
            data.selectbox(key="data.sample").select("co2")
            self.timed_run(data, "data")
        ds = data.session_state["fs.dataset"]
        # Its own few hundred rows: a different slice for every session, so a mix-up would show.
        offset = (self.i * 37) % max(1, len(ds.frame) - ROWS)
        frame = ds.frame.iloc[offset:offset + ROWS].copy()
        name = f"{ds.name} rows {offset}-{offset + ROWS}"
        own = Dataset(name=name, frame=frame, freq=ds.freq, time_col=ds.time_col,
                      fingerprint=hashlib.sha256(f"{ds.fingerprint}:{offset}".encode()).hexdigest())
        target = ds.numeric_columns[0]
        windows = make_windows(own, WindowSpec(targets=(target,), features=(target,), window=24, horizon=1), SplitSpec())
        # 2. The Sweep page with this session's state, set to a one-trial sweep.
        page = session_app(SWEEP_PAGE, self.sid)
        page.session_state["fs.dataset"] = own
        page.session_state["fs.windows"] = windows
        self.timed_run(page, "setup")
        page.multiselect(key="sweep.windows").set_value([24])
        page.multiselect(key="sweep.kinds").set_value(["gru"])
        page.multiselect(key="sweep.units").set_value([8])
        page.radio(key="sweep.backend").set_value("torch")
        page.number_input(key="sweep.epochs").set_value(2)
        self.timed_run(page, "setup")
        # 3. Baseline: everyone polls, nothing trains.
        self.start_gate.wait(timeout=300)
        for _ in range(BASELINE_ROUNDS):
            self.timed_run(page, "baseline")
            time.sleep(THINK_S)
        self.load_gate.wait(timeout=300)
        # 4. Start the sweep from the page, then watch it like a participant.
        page.button(key="sweep.start").click()
        self.timed_run(page, "submit")
        [job] = page.session_state["fs.sweep_jobs"]
        while job.status not in jobs.FINISHED:
            time.sleep(THINK_S)
            self.timed_run(page, "poll")
        if job.status != jobs.DONE:
            raise RuntimeError(f"{self.sid}: training {job.status}: {job.error}")
        # 5. Export the run through the same pool.
        from core import sweep

        run_dir = sweep.collect(job)
        out_dir = sessions.session_dir(self.sid) / "exports" / run_dir.name
        export = jobs.pool().submit(self.sid, "export", _export_job, str(run_dir), str(out_dir), label="export")
        while export.status not in jobs.FINISHED:
            time.sleep(THINK_S)
            self.timed_run(page, "poll-export")
        if export.status != jobs.DONE:
            raise RuntimeError(f"{self.sid}: export {export.status}: {export.error}")
        self.result = {"job": job, "export": export, "run_dir": run_dir, "out_dir": out_dir, "dataset": name,
                       "table": page.dataframe[-1].value if page.dataframe else None,
                       "workdir": Path(page.session_state["fs.workdir"]) if "fs.workdir" in page.session_state
                       else sessions.session_dir(self.sid)}


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _isolation(parts: list[Participant]) -> list[str]:
    """Every way one session could see another's data, checked; returns the problems found."""
    from core.runs import load_run

    problems = []
    root = sessions.root()
    for p in parts:
        r = p.result
        own_dir = sessions.session_dir(p.sid)
        if not (r["run_dir"].is_relative_to(own_dir) and r["out_dir"].is_relative_to(own_dir)):
            problems.append(f"{p.sid}: run or export outside its session directory")
        run = load_run(r["run_dir"])
        if run.dataset.get("name") != r["dataset"]:
            problems.append(f"{p.sid}: run trained on {run.dataset.get('name')!r}, not its own {r['dataset']!r}")
        if not (r["out_dir"] / "report.json").exists():
            problems.append(f"{p.sid}: no export report")
        table = r["table"]
        if table is None or list(table["job"]) != [r["job"].id]:
            problems.append(f"{p.sid}: its table lists {None if table is None else list(table['job'])}")
        if {j.owner for j in jobs.pool().jobs(p.sid)} - {p.sid}:
            problems.append(f"{p.sid}: the pool answered with another owner's jobs")
        others = [o for o in parts if o is not p]
        for o in others:
            if any(str(o.result["run_dir"]) in str(f) for f in own_dir.rglob("*")):
                problems.append(f"{p.sid}: holds {o.sid}'s files")
    dirs = sorted(d.name for d in root.iterdir() if d.is_dir())
    if len(set(dirs) & {p.sid for p in parts}) != len(parts):
        problems.append(f"expected one directory per session, found {dirs}")
    return problems


def main() -> int:
    t_start = time.time()
    times: dict[str, list[float]] = {}
    lock = threading.Lock()

    def record(phase: str, seconds: float, sid: str) -> None:
        with lock:
            times.setdefault(phase, []).append(seconds)

    pool = jobs.pool()
    monitor = Monitor()
    monitor.start()
    rss_before = _rss_bytes()
    start_gate = threading.Barrier(SESSIONS)
    load_gate = threading.Barrier(SESSIONS)
    parts = [Participant(i, start_gate, load_gate, record) for i in range(SESSIONS)]
    for p in parts:
        p.start()
    for p in parts:
        p.join(timeout=max(1.0, DEADLINE_S - (time.time() - t_start)))
    monitor.stop_event.set()
    wall = time.time() - t_start
    stuck = [p.sid for p in parts if p.is_alive()]
    failed = [p for p in parts if p.error]
    finished = [p for p in parts if p.result and not p.error]
    problems = _isolation(finished) if finished else ["no session finished"]
    peak = max(s for _, s in monitor.samples) if monitor.samples else _rss_bytes()
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    base, load = times.get("baseline", []), times.get("poll", [])
    base_p95, load_p95 = _p(base, 0.95), _p(load, 0.95)
    ok = not stuck and not failed and not problems and len(finished) == SESSIONS and load_p95 < P95_LIMIT_S
    train_s = [p.result["job"].finished - p.result["job"].started for p in finished]
    queued_s = [p.result["job"].started - p.result["job"].submitted for p in finished]
    export_s = [p.result["export"].finished - p.result["export"].started for p in finished]
    cores = os.cpu_count()
    lines = [
        "## bench_load: a workshop on one studio process",
        "",
        f"{SESSIONS} simulated sessions (Streamlit AppTest sessions in threads, each with its own session id), "
        f"each: Data page loads a bundled sample (weather or co2), its own {ROWS}-row slice, a one-trial sweep "
        f"(GRU 8 units, window 24, 2 epochs, torch) started from the Sweep page, polled every {THINK_S:g} s, then a "
        f"float32 export checked on TFLM. One job pool, {pool.stats()['workers']} at once ({pool.name}), on "
        f"{cores} cores. Interaction = one full rerun of the Sweep page.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sessions finished (trained + exported) | {len(finished)} / {SESSIONS} |",
        f"| isolation problems | {len(problems)} |",
        f"| interaction, no training (baseline): median / p95 | {_p(base, 0.5):.3f} s / {base_p95:.3f} s (n={len(base)}) |",
        f"| interaction while trainings run: median / p95 / max | {_p(load, 0.5):.3f} s / {load_p95:.3f} s / "
        f"{max(load) if load else float('nan'):.3f} s (n={len(load)}) |",
        f"| p95 ratio loaded / baseline | {load_p95 / base_p95 if base and base_p95 > 0 else float('nan'):.2f}x |",
        f"| of which waiting for another session's rerun (while training): median / p95 | "
        f"{_p(times.get('poll-wait', []), 0.5):.3f} s / {_p(times.get('poll-wait', []), 0.95):.3f} s |",
        f"| the rerun itself, without that wait (while training): median / p95 | "
        f"{_p(times.get('poll-run', []), 0.5):.3f} s / {_p(times.get('poll-run', []), 0.95):.3f} s |",
        f"| machine load average (1 min) at the end | {os.getloadavg()[0]:.1f} on {cores} cores |",
        f"| interaction while exports run: median / p95 | {_p(times.get('poll-export', []), 0.5):.3f} s / "
        f"{_p(times.get('poll-export', []), 0.95):.3f} s |",
        f"| Data page load: median / p95 | {_p(times.get('data', []), 0.5):.3f} s / {_p(times.get('data', []), 0.95):.3f} s |",
        f"| training: median time queued / running | {statistics.median(queued_s) if queued_s else float('nan'):.1f} s / "
        f"{statistics.median(train_s) if train_s else float('nan'):.1f} s |",
        f"| export (child converter + TFLM check): median | {statistics.median(export_s) if export_s else float('nan'):.1f} s |",
        f"| studio process RSS: start / peak | {rss_before / 2**20:.0f} MB / {peak / 2**20:.0f} MB |",
        f"| largest child process (converter) peak RSS | {child_peak / 2**20:.0f} MB |",
        f"| wall time | {wall:.0f} s |",
        f"| p95 under {P95_LIMIT_S:g} s while training | {'yes' if load_p95 < P95_LIMIT_S else 'NO'} |",
        "",
    ]
    if problems:
        lines += ["Isolation problems:", ""] + [f"- {p}" for p in problems[:20]] + [""]
    if stuck:
        lines += [f"Sessions still running at the deadline: {', '.join(stuck)}", ""]
    for p in failed[:3]:
        lines += [f"Session {p.sid} failed:", "", "```", p.error.strip()[-1500:], "```", ""]
    write_section("bench_load", "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # the pool's worker threads and Ray/TF threads are daemons; do not wait on their teardown
