"""The board's alarms and adaptive bands with a trained, exported network on the emulated board (issue 33's check).

    python -m bench.bench_alarms_trained [--data DIR] [--runs DIR] [--quick] [--only NAME ...]

bench_alarms measures the watch with a ridge-AR stand-in forecaster; this one takes the real path. For each
series: ``python -m studio train --csv F --target T --seed 0`` (the default model, with its search; ``--quick``:
``--no-search --epochs 30``), ``python -m studio export RUN --int8 --no-bundle``, then the export's test part
(core.board.reference.load_reference's test windows joined back into readings, what the Device step streams) is
sent reading by reading as ``R`` lines, after ``W 1000`` (a live stream at one reading a second, the clock moved
1,000 ms a reading), to core.board.emulator.ProtocolEngine running the int8 model on the tflite-micro runtime
(the emulated board: fs_protocol.cpp's arithmetic, the same golden transcripts).

Anomalies are core.livestream.inject's, sized like bench_alarms' in the one-step validation error's sd (the
exported 95% step-1 half-width over 1.96): spike 6 sd, shift 5 sd for 20 readings, drift to 10 sd over 20,
stuck 20 readings, dropped 5 readings; one every EVERY readings from an offset, over OFFSETS offsets and signs so a
short test part still gets several (each stream is a fresh board). Per series and kind: anomalies detected
within 3 and 10 readings of their start (an alarm at most 3 or 10 readings after it), the median delay, and the alarms away from every anomaly per 1,000
readings; on the clean stream every alarm is false. The board's adaptive band: the share of readings inside the
step-1 band printed with the forecast before them (anomalous readings counted), at every level, beside the
static (exported) band over the same stream and the run's own walk-forward adaptive coverage (intervals.json).

The board's numbers against the host's, on the clean stream: the board's forecasts against the export's own TFLM
forecasts for the same windows (windows.npz y_int8, made on the host at export) and the host model's (y_host,
Keras); and core.alarms.Watch (the host's float32 watch) fed the host's TFLM forecasts: its band bounds and alarms
against the board's printed ones.

Series: real ones outside bench_alarms' tuning set, read from ``--data`` (or FS_REALDATA_DIR; skipped when absent,
and never copied into the repository), plus sample_data/weather.csv columns (a generated series). Trained runs and
exports are kept under ``--runs`` (default bench/results/trained_runs, ignored by git) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench" / "results" / "trained_runs"
# name, file, target, where ("data": --data's folder, "repo": the repository)
SERIES = [("elnino", "elnino.csv", "sst", "data"), ("sunspots", "sunspots.csv", "sunactivity", "data"),
          ("seatbelts", "seatbelts.csv", "KSI", "data"), ("solar", "solar.csv", "solar_gen", "data"),
          ("airline", "Airline.csv", "Passengers", "data"), ("weather_humidity", "sample_data/weather.csv", "humidity", "repo")]
SIZES = {"spike": 6.0, "shift": 5.0, "drift": 10.0, "stuck": 0.0, "dropped": 0.0}  # in sd, bench_alarms' sizes
LENGTH = {"spike": 1, "shift": 20, "drift": 20, "stuck": 20, "dropped": 5}
EVERY = 60
OFFSETS = 4  # offsets (and signs) of the anomaly train per kind: a short test part gets OFFSETS anomalies at least
CATCH = (3, 10)
PACE_MS = 1000


def _python() -> str:
    return sys.executable


def prepare(name: str, csv: Path, target: str, runs: Path, quick: bool) -> tuple[Path, Path, float]:
    """Train and export (or reuse): (run dir, export dir, seconds spent)."""
    run, export = runs / name / "run", runs / name / "export"
    t0 = time.perf_counter()
    if not (run / "run.json").is_file():
        cmd = [_python(), "-m", "studio", "train", "--csv", str(csv), "--target", target, "--seed", "0", "--out", str(run),
               "--force"]
        if quick:
            cmd += ["--no-search", "--epochs", "30"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not (export / "report.json").is_file():
        subprocess.run([_python(), "-m", "studio", "export", str(run), "--int8", "--no-bundle", "--out", str(export),
                        "--force"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run, export, time.perf_counter() - t0


class Streamer:
    """One export on the emulated board: readings in, every answer line kept per reading."""

    def __init__(self, export: Path, run: Path) -> None:
        from core.board.emulator import make_runner
        from core.board.reference import load_reference
        from core.firmware import load_bundle_spec
        from core.livestream import readings_from_windows
        from core.logscale import to_units

        self.spec = load_bundle_spec(export, "int8", run_dir=run)
        self.runner = make_runner(self.spec)
        self.ref = load_reference(export)
        r = self.ref
        # The whole test part the run kept (samples.npz test_rows, scaled): the export's windows.npz holds at most 64
        # test windows, evenly spread, which join back into only the first window's readings on a longer test part.
        with np.load(run / "samples.npz") as s:
            rows, starts = np.asarray(s["test_rows"], np.float64), np.asarray(s["test_starts"])
            self.host_keras = np.asarray(s["score_y_host"], np.float64) if "score_y_host" in s else None
        # test_rows is the test part's contiguous stretch; past score_windows its windows are spread over it: the
        # reading that closes each window with a host forecast (score_y_host).
        self.host_at = {int(st) + r.X.shape[1] - 1: j for j, st in enumerate(starts)}
        self.readings = to_units(rows, r.in_center, r.in_scale, r.in_log if r.in_log is not None else False)
        X = to_units(r.X, r.in_center, r.in_scale, r.in_log if r.in_log is not None else False)
        # What the Device step streamed from the export (its windows joined back), and streams now (test_rows).
        self.export_joined = f"{len(readings_from_windows(X))} -> {len(r.test_rows) if r.test_rows is not None else '-'}"
        # Each export window's place in the stream (the reading that closes it), by its scaled values.
        W = r.X.shape[1]
        self.export_at = {}
        for j in range(len(r.X)):
            for i in range(len(rows) - W + 1):
                if np.allclose(rows[i:i + W], r.X[j], rtol=0, atol=1e-6):
                    self.export_at[j] = i + W - 1
                    break
        self.window = self.spec.window
        self.col = self.spec.watch.columns[0]
        self.levels = self.spec.watch.levels
        hw = np.asarray(self.spec.watch.half_width, np.float64)  # (levels, horizon, targets)
        self.static = hw[:, 0, 0]
        self.sd = float(hw[self.levels.index("95"), 0, 0] / 1.96) if "95" in self.levels else float(hw[-1, 0, 0] / 1.96)

    def run(self, values: np.ndarray, keep: np.ndarray, restart: bool = False) -> dict:
        """The stream through a fresh board: per reading its lines (none when dropped); the bytes sent (with the
        transcripts' "@ <ms>" clock lines) and the model's outputs, for the g++ replay."""
        from core.board.emulator import ProtocolEngine
        from core.board.protocol import format_r_command

        outputs: list[np.ndarray] = []

        def model(x):
            y, us = self.runner(x)
            outputs.append(np.array(y, np.float32))
            return y, us

        eng = ProtocolEngine(self.spec, model)
        clock = 0
        sent = [b"@ 0\n", f"W {PACE_MS}\n".encode()]
        eng.tick(clock)
        head = eng.feed(sent[-1])
        lines: list[list[str]] = []
        for i, row in enumerate(values):
            clock += PACE_MS
            sent.append(f"@ {clock}\n".encode())
            out = eng.tick(clock)
            if restart and any("kind=gap" in line for line in out):
                # The variant the board does not run: after the gap alarm the window starts again (its readings are
                # no longer consecutive), so no forecast is made from a window with readings missing.
                eng._ring_count = eng._ring_next = 0
                eng.watch.no_forecast()
            if keep[i]:
                sent.append(format_r_command(row).encode())
                out += eng.feed(sent[-1])
            lines.append(out)
        return {"lines": lines, "head": head, "sent": sent, "outputs": outputs}


def build_replay(export: Path, run: Path, work: Path) -> Path | None:
    """fs_protocol.cpp of the export's int8 bundle with the tests' host driver (tests/firmware_host/main.cpp, g++), which
    replays a file of model outputs when given one; None without g++."""
    import shutil
    import zipfile

    from core.firmware import render_bundle

    gxx = shutil.which("g++")
    if gxx is None:
        return None
    with zipfile.ZipFile(render_bundle(export, "int8", run_dir=run, out=work / "bundle.zip")) as zf:
        zf.extractall(work)
    sketch = next(work.glob("*/forecast_studio"))
    exe = work / "replay"
    subprocess.run([gxx, "-std=c++17", "-O1", f"-I{sketch}", str(sketch / "fs_protocol.cpp"),
                    str(Path(__file__).resolve().parent.parent / "tests" / "firmware_host" / "main.cpp"), "-o", str(exe)],
                   check=True, capture_output=True, text=True, timeout=600)
    return exe


def replay_equal(exe: Path, got: dict, work: Path) -> tuple[bool, int]:
    """The g++ board's lines for the same bytes and model outputs against the emulated board's (the inference time
    aside, and the ready line it prints at boot): (equal, lines compared)."""
    out = work / "outputs.txt"
    out.write_text("".join(" ".join(float(v).hex() for v in y) + "\n" for y in got["outputs"]))
    proc = subprocess.run([str(exe), str(out)], input=b"".join(got["sent"]), capture_output=True, timeout=120)
    strip = lambda line: line.split(" us=")[0] + " " + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line  # noqa: E731
    board = [strip(x) for x in proc.stdout.decode("ascii").splitlines() if not x.startswith("FS READY")]
    emu = [strip(x) for x in got["head"] + [x for out in got["lines"] for x in out]]
    return proc.returncode == 0 and board == emu, len(emu)


def parse(lines: list[list[str]]):
    """(alerts as (reading index, Alert), results as {reading index: Result})."""
    from core.board.protocol import Alert, Result, parse_line

    alerts, results = [], {}
    for i, out in enumerate(lines):
        for line in out:
            rec = parse_line(line)
            if isinstance(rec, Alert):
                alerts.append((i, rec))
            elif isinstance(rec, Result):
                results[i] = rec
    return alerts, results


def band_coverage(s: Streamer, values, keep, results, skip=None) -> dict:
    """Step-1 coverage of the board's printed bands (adaptive) and of the exported ones (static), per level: each sent
    reading against the forecast printed at the last sent reading before it (the band the board alarms on); readings
    where ``skip`` is True (the anomalous ones) left out."""
    inside = {lv: [] for lv in s.levels}
    static = {lv: [] for lv in s.levels}
    last = None
    for i in range(len(values)):
        if not keep[i]:
            continue
        if last is not None and last in results and (skip is None or not skip[i]):
            res, x = results[last], np.float32(values[i, s.col])
            for li, lv in enumerate(s.levels):
                lo, hi = res.band(lv)
                inside[lv].append(lo[0] <= x <= hi[0])
                static[lv].append(abs(float(x) - res.y[0]) <= s.static[li])
        last = i
    return {lv: (100.0 * np.mean(inside[lv]), 100.0 * np.mean(static[lv]), len(inside[lv])) for lv in s.levels}


def detection(alerts, starts, n, window, span) -> dict:
    first = [i for i, _ in alerts]
    near = np.zeros(n, bool)
    out = {c: 0 for c in CATCH}
    delays = []
    for s0 in starts:
        near[s0:s0 + span + window + 3] = True
        hits = [a - s0 for a in first if s0 <= a <= s0 + max(CATCH)]
        for c in CATCH:
            out[c] += any(h <= c for h in hits)
        if hits:
            delays.append(min(hits))
    away = [a for a in first if a >= window and not near[a]]
    clean = max(1, int((~near[window:]).sum()))
    by = {}
    for i, a in alerts:
        if any(s0 <= i <= s0 + max(CATCH) for s0 in starts):
            by[a.kind] = by.get(a.kind, 0) + 1
    return {"caught": out, "delays": delays, "false": len(away), "clean_n": clean, "by": by}


def host_equality(s: Streamer, results, values) -> dict:
    """The board's forecasts on the clean stream against the export's host TFLM ones (windows.npz y_int8, the windows
    it kept) and the host model's (samples.npz score_y_host, every test window); and the host's float32 watch
    (core.alarms.Watch) fed the host model's forecasts: its printed bands and alarms against the board's."""
    from core.alarms import Watch
    from core.logscale import to_units

    r, W = s.ref, s.window
    hs = s.spec.horizon * s.spec.targets
    out = {"forecasts": len(results)}
    tflm = r.y_tflm.get("int8")
    if tflm is not None:
        tf_units = np.asarray(tflm).reshape(len(tflm), -1)  # windows.npz y_int8: data units, float32 values
        pairs = [(np.asarray(results[i].y, np.float32), tf_units[j].astype(np.float32))
                 for j, i in s.export_at.items() if i in results]
        out["tflm_n"] = len(pairs) * hs
        out["tflm_equal"] = int(sum(np.sum(a.view(np.int32) == b.view(np.int32)) for a, b in pairs))
        out["tflm_max_abs"] = float(max((np.max(np.abs(a - b)) for a, b in pairs), default=float("nan")))
    out["keras_tol"] = float(np.nanmax(r.report_err.get("int8", np.array([np.nan]))))
    if s.host_keras is None:
        return out
    host = s.host_keras.reshape(len(s.host_keras), -1)
    diffs = [np.max(np.abs(np.asarray(results[i].y, np.float64) - host[j])) for i, j in s.host_at.items() if i in results]
    out["keras_max_abs"] = float(max(diffs, default=float("nan")))
    w = Watch(s.spec.watch)
    host_alerts, lo_diff, inside = [], [], {lv: [] for lv in s.levels}
    prev = None
    for i in range(len(values)):
        x = np.asarray(values[i], np.float32)
        if prev is not None:
            for li, lv in enumerate(s.levels):
                q = w.half_widths()[li, 0, 0]
                inside[lv].append(abs(float(np.float32(x[s.col] - prev))) <= q)
        host_alerts += [(i, a.split(" kind=")[-1].split()[0]) for a in w.reading(x) if " kind=" in a]
        j = s.host_at.get(i)
        if j is not None:
            y = host[j].astype(np.float32)
            w.forecast(y)
            prev = y[0]
            if i in results:
                lo, _ = results[i].band(s.levels[-1])
                lo_diff.append(abs(float(lo[0]) - float(np.float32(y[0] - w.half_widths()[-1, 0, 0]))))
        else:
            w.no_forecast()
            prev = None
    out["host_alerts"] = host_alerts
    out["host_lo_max_diff"] = float(max(lo_diff, default=float("nan")))
    out["host_coverage"] = {lv: 100.0 * float(np.mean(v)) for lv, v in inside.items() if v}
    return out


def measure(s: Streamer, exe: Path | None = None, work: Path | None = None, seed: int = 0) -> dict:
    from core.livestream import inject

    replays = [0, 0, 0]  # streams equal on g++, streams compared, lines compared

    def check(got):
        if exe is not None:
            same, n_lines = replay_equal(exe, got, work)
            replays[0] += same
            replays[1] += 1
            replays[2] += n_lines

    n = len(s.readings)
    rng = np.random.default_rng(seed)
    clean_keep = np.ones(n, bool)
    clean = s.run(s.readings, clean_keep)
    check(clean)
    c_alerts, c_results = parse(clean["lines"])
    c_alerts = [(i, a) for i, a in c_alerts if i >= s.window]
    row = {"n": n, "window": s.window, "sd": s.sd, "export_joined": s.export_joined,
           "clean_false_per_1000": 1000.0 * len(c_alerts) / max(1, n - s.window),
           "clean_alerts": [(i, a.kind) for i, a in c_alerts],
           "coverage": {"clean": band_coverage(s, s.readings, clean_keep, c_results)},
           "host": host_equality(s, c_results, s.readings), "kinds": {}}
    first = s.window + 1
    step = max(1, (min(EVERY, n - first - 20)) // OFFSETS) if n - first - 20 > 0 else 1
    for kind in tuple(SIZES) + ("dropped, restart",):
        restart = kind == "dropped, restart"
        kind, label = ("dropped", "dropped, restart") if restart else (kind, kind)
        # A test part too short for a 20-reading anomaly (airline: 21 readings) gets one of half its readings.
        length = min(LENGTH[kind], max(1, (n - first) // 2))
        agg = {"injected": 0, "caught": {c: 0 for c in CATCH}, "delays": [], "false": 0, "clean_n": 0, "by": {}}
        cover = {lv: [0.0, 0.0, 0] for lv in s.levels}
        ordinary = {lv: [0.0, 0.0, 0] for lv in s.levels}
        for o in range(OFFSETS):
            starts = list(range(first + o * step, n - length, EVERY))
            if not starts:
                continue
            values = s.readings.copy()
            keep = np.ones(n, bool)
            col = values[:, s.col].copy()
            for s0 in starts:
                sign = rng.choice([-1.0, 1.0])
                keep &= inject(col, kind, s0, sign * SIZES[kind] * s.sd, length)
            values[:, s.col] = col
            got = s.run(values, keep, restart)
            if not restart:
                check(got)
            alerts, results = parse(got["lines"])
            d = detection(alerts, starts, n, s.window, length)
            agg["injected"] += len(starts)
            for c in CATCH:
                agg["caught"][c] += d["caught"][c]
            agg["delays"] += d["delays"]
            agg["false"] += d["false"]
            agg["clean_n"] += d["clean_n"]
            for k, v in d["by"].items():
                agg["by"][k] = agg["by"].get(k, 0) + v
            anomalous = np.zeros(n, bool)
            for s0 in starts:
                anomalous[s0:s0 + length] = True
            for acc, skip in ((cover, None), (ordinary, anomalous)):
                for lv, (ad, st, m) in band_coverage(s, values, keep, results, skip).items():
                    acc[lv][0] += ad * m
                    acc[lv][1] += st * m
                    acc[lv][2] += m
        agg["length"] = length
        row["kinds"][label] = agg
        row["coverage"][label] = {lv: (a / max(1, m), b / max(1, m), m) for lv, (a, b, m) in cover.items()}
        row["coverage"][label + " (ordinary readings)"] = {lv: (a / max(1, m), b / max(1, m), m)
                                                         for lv, (a, b, m) in ordinary.items()}
    row["replay"] = replays
    return row


def walk_forward_coverage(run: Path) -> dict:
    try:
        rec = json.loads((run / "intervals.json").read_text())
    except (OSError, ValueError):
        return {}
    bands = rec.get("bands", {})
    adaptive = (rec.get("adaptive") or {}).get("levels", {})
    return {k: (bands[k].get("coverage"), adaptive.get(k, {}).get("coverage")) for k in bands}


def _cov(c: dict) -> str:
    return " / ".join(f"{c[lv][0]:.1f}" for lv in c)


def report(rows: dict, levels=("80", "95")) -> list[str]:
    lines = ["| series | test readings (W; the Device step's export stream, before -> now) | clean alarms per 1,000 (kinds) | "
             + " | ".join(f"{k}: within 3 / 10 of n (delay)" for k in SIZES) + " | false per 1,000 with anomalies |",
             "|---|---|---|" + "---|" * len(SIZES) + "---|"]
    for name, r in rows.items():
        kinds = {}
        for _, k in r["clean_alerts"]:
            kinds[k] = kinds.get(k, 0) + 1
        cells = []
        fa, fn = 0, 0
        for k in SIZES:
            a = r["kinds"][k]
            med = f"{np.median(a['delays']):g}" if a["delays"] else "-"
            cells.append(f"{a['caught'][3]} / {a['caught'][10]} of {a['injected']} ({med})")
            fa += a["false"]
            fn += a["clean_n"]
        lines.append(f"| {name} | {r['n'] - r['window']} ({r['window']}; {r['export_joined']}) | {r['clean_false_per_1000']:.1f} "
                     f"({', '.join(f'{k} {v}' for k, v in kinds.items()) or 'none'}) | " + " | ".join(cells)
                     + f" | {1000.0 * fa / max(1, fn):.1f} |")
    lines += ["", "The board's step-1 band coverage over the stream (%), adaptive -> static (exported) at "
              + " / ".join(levels) + "; the run's walk-forward coverage of all steps (intervals.json) static -> adaptive:", "",
              "| series | clean | " + " | ".join(SIZES) + " | run's walk-forward |", "|---|---|" + "---|" * len(SIZES) + "---|"]
    for name, r in rows.items():
        cells = []
        for k in ("clean",) + tuple(SIZES):
            c = r["coverage"][k]
            cells.append(" / ".join(f"{c[lv][0]:.1f}" for lv in c) + " -> " + " / ".join(f"{c[lv][1]:.1f}" for lv in c))
        wf = r.get("walk", {})
        wfs = " / ".join(f"{v[0]:.1f}" for v in wf.values() if v[0] is not None) + " -> " + \
            " / ".join(f"{v[1]:.1f}" for v in wf.values() if v[1] is not None)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {wfs} |")
    lines += ["", "The same streams, the anomalous readings themselves left out (does the band come back?): adaptive "
              "-> static, " + " / ".join(levels), "", "| series | " + " | ".join(SIZES) + " |", "|---|" + "---|" * len(SIZES)]
    for name, r in rows.items():
        cells = []
        for k in SIZES:
            c = r["coverage"][k + " (ordinary readings)"]
            cells.append(" / ".join(f"{c[lv][0]:.1f}" for lv in c) + " -> " + " / ".join(f"{c[lv][1]:.1f}" for lv in c))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Dropped readings: the board as it is (its window splices the readings on each side of the gap, so the "
              "next W forecasts are made from windows with readings missing) against a variant it does not run, the "
              "window started again after the gap alarm (no forecast, so no band and no band alarm, until W readings "
              "have come): step-1 coverage adaptive " + " / ".join(levels) + ", gaps caught within 3 readings, alarms "
              "away from the gaps per 1,000 readings, readings with a band:", "",
              "| series | board: coverage | caught | false per 1,000 | readings banded | restart: coverage | caught | false per 1,000 | readings banded |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        cells = []
        for k in ("dropped", "dropped, restart"):
            a, c = r["kinds"][k], r["coverage"][k]
            cells.append(" / ".join(f"{c[lv][0]:.1f}" for lv in c) + f" | {a['caught'][3]} of {a['injected']} | "
                         f"{1000.0 * a['false'] / max(1, a['clean_n']):.1f} | {next(iter(c.values()))[2]}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "The board's numbers against the host's, clean stream: forecasts bit-equal to the export's host TFLM "
              "int8 ones for the windows it kept (and the largest difference), largest difference from the host "
              "model's (Keras) forecasts of every test window against the export's int8 tolerance, and core.alarms.Watch "
              "(float32) fed the host model's forecasts: the largest difference of its widest band's lower bound from the "
              "board's, its step-1 coverage, and its alarms against the board's:", "",
              "| series | forecasts bit-equal to host TFLM (max diff) | vs host Keras (int8 tolerance) | host watch: lower bound diff | host watch coverage | alarms board / host watch |",
              "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        h = r["host"]
        hk = [(i, k) for i, k in h.get("host_alerts", []) if i >= r["window"]]
        hc = " / ".join(f"{v:.1f}" for v in h.get("host_coverage", {}).values())
        lines.append(f"| {name} | {h.get('tflm_equal', '-')} of {h.get('tflm_n', '-')} ({h.get('tflm_max_abs', float('nan')):.3g}) | "
                     f"{h.get('keras_max_abs', float('nan')):.3g} ({h['keras_tol']:.3g}) | {h.get('host_lo_max_diff', float('nan')):.3g} | "
                     f"{hc} | {len(r['clean_alerts'])} / {len(hk)}{' (same readings and kinds)' if hk == r['clean_alerts'] else ''} |")
    lines += ["", "fs_protocol.cpp compiled with g++ (tests/firmware_host/main.cpp replaying outputs), fed the same bytes with its model replaying the "
              "emulated board's TFLM outputs: streams whose every line (inference time aside) equals the emulated board's: "
              + ", ".join(f"{name} {r['replay'][0]} of {r['replay'][1]} ({r['replay'][2]} lines)" for name, r in rows.items())]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FS_REALDATA_DIR"),
                        help="folder with the real series' CSVs (elnino.csv, ...); default $FS_REALDATA_DIR; absent: skipped")
    parser.add_argument("--runs", default=str(RUNS), help="where trained runs and exports are kept and reused")
    parser.add_argument("--quick", action="store_true", help="train with --no-search --epochs 30")
    parser.add_argument("--only", action="append", default=None)
    parser.add_argument("--no-gxx", action="store_true", help="skip the g++ replay of fs_protocol.cpp")
    parser.add_argument("--json", default=None, help="write the raw rows here")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else None
    rows, timing, skipped = {}, {}, []
    for name, file, target, where in SERIES:
        if args.only and name not in args.only:
            continue
        csv = (ROOT / file) if where == "repo" else (data / file if data else None)
        if csv is None or not csv.is_file():
            skipped.append(name)
            continue
        run, export, spent = prepare(name, csv, target, Path(args.runs), args.quick)
        t0 = time.perf_counter()
        s = Streamer(export, run)
        with tempfile.TemporaryDirectory() as tmp:
            exe = None if args.no_gxx else build_replay(export, run, Path(tmp))
            row = measure(s, exe, Path(tmp))
        row["walk"] = walk_forward_coverage(run)
        row["hs"] = s.spec.horizon * s.spec.targets
        timing[name] = (spent, time.perf_counter() - t0)
        rows[name] = row
        print(f"{name}: prepared in {spent:.0f} s, streamed in {timing[name][1]:.0f} s", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f}"
             + (f"; skipped (no data): {', '.join(skipped)}" if skipped else ""), ""] + report(rows)
    from bench.common import write_section

    if not args.only:  # make bench: the section BENCHMARKS.md collects (bench/results/bench_alarms_trained.md)
        write_section("bench_alarms_trained", "## bench_alarms_trained: the watch with trained, exported networks on the "
                      "emulated board (issue 33)\n\n" + "\n".join(lines))
    else:
        print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, default=lambda o: o.item() if hasattr(o, "item") else str(o), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
