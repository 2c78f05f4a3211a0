"""One training of the bundled sample's default configuration, through the browser, before and now (issue T).

What it measures: the wall time a person waits on the Train page, from the click on *Start training*
until the page shows the finished run (the caption "Best epoch B of E ...; status done", drawn with
the results table and the verdict), for the bundled weather sample with every default left as it is:
the Data page's default sample, the Features page's defaults, the Model page's defaults (the candidate
search is not run, no setting is touched). The whole walk is real: `streamlit run studio/app.py` for
the checkout, headless Debian Chromium driven by Selenium through Debian's chromedriver, as
tests/test_browser_flow.py does it.

How: two checkouts side by side in one run, interleaved (before, now, before, now, ...):
- BEFORE: ``FS_BENCH_BEFORE`` (default /work/wt/before, a worktree at ad72c30, before the training
  speed work; it shares this checkout's .venv),
- NOW: this checkout (``FS_BENCH_NOW`` to point elsewhere).
Each measurement gets its own studio server on a free port (with its own FS_WORKDIR_ROOT temp dir, and
no FS_* setting inherited from the caller's environment, so both sides run their defaults) and its own
browser profile, so nothing a previous training left behind (a job pool, a warm import, a session)
helps or slows the next one. The server's start and the walk to the Train page are timed too but are
not the result. Waits poll the page for the element or text that should appear (never a fixed sleep
as the only synchronisation), bounded by generous timeouts.

Reported per measurement: seconds from the click to the finished page, the training's own seconds as
its run.json records them (``info.seconds``: train() without the page's polling), epochs run, the test
MAE the page's verdict states, and the configuration line the Train page shows (so a reader can see
both sides did the same work). Then the median per side, the ratio now / before of the medians, and the
load average at the start and the end. It is a report, not a gate: exit 0 unless a walk broke.

`python -m bench.bench_browser_train` (also listed by `make bench`); ``FS_BENCH_REPEAT`` (default 2)
measurements per side; ``FS_BENCH_SIDES=before,now`` to run only one side while debugging.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

REPEAT = int(os.environ.get("FS_BENCH_REPEAT", "2"))
CHECKOUTS = {"before": Path(os.environ.get("FS_BENCH_BEFORE", "/work/wt/before")),
             "now": Path(os.environ.get("FS_BENCH_NOW", str(ROOT)))}
SIDES = [s for s in os.environ.get("FS_BENCH_SIDES", "before,now").split(",") if s in CHECKOUTS]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
KEEP_LOGS = ROOT / "bench" / "results" / "browser_train"  # server logs and failure screenshots

# Streamlit is busy while any of these is on the page (tests/test_browser_flow.py's RUNNING).
RUNNING = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSpinner"], [data-stale="true"]'
# When the page last changed (browser clock), so "idle" means "not redrawn for a while".
OBSERVER = """
if (!window.__fsObs) {
  window.__fsLast = performance.now();
  window.__fsObs = new MutationObserver(() => { window.__fsLast = performance.now(); });
  window.__fsObs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}
"""
FINISHED = re.compile(r"Best epoch (\d+) of (\d+)")  # the Train page's caption under a finished run's results
MAIN_TEXT = 'const m = document.querySelector(\'[data-testid="stMain"]\'); return m ? m.textContent : "";'
MAE = re.compile(r"test MAE(?: for [^\s,]+)? is (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def commit_of(checkout: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h"], capture_output=True,
                             text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run studio/app.py` of one checkout, headless on 127.0.0.1, with a workdir of its own
    (tests/conftest.py's _serve_studio, with the checkout's own venv and files)."""

    def __init__(self, checkout: Path, log_path: Path):
        self.checkout = checkout
        self.workdir = Path(tempfile.mkdtemp(prefix="fs-bench-browser-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = checkout / ".venv" / "bin" / "python"
        python = python if python.exists() else Path(sys.executable)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FS_")}
        env.update(PYTHONUNBUFFERED="1", FS_WORKDIR_ROOT=str(self.workdir))
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [str(python), "-m", "streamlit", "run", str(checkout / "studio" / "app.py"),
             "--server.address", "127.0.0.1", "--server.port", str(self.port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=checkout, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; log at {self.log_path}")
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"streamlit did not become healthy in {timeout:.0f} s; log at {self.log_path}")

    def run_info(self) -> dict:
        """run.json's ``info`` and metrics.json's model MAE of the (one) run this server trained."""
        found = sorted(self.workdir.rglob("run.json"))
        if not found:
            return {}
        info = json.loads(found[-1].read_text()).get("info", {})
        metrics_path = found[-1].parent / "metrics.json"
        if metrics_path.exists():
            try:
                info["mae_file"] = json.loads(metrics_path.read_text())["model"]["mae"]
            except (KeyError, TypeError, ValueError):
                pass
        return info

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        if not os.environ.get("FS_BENCH_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


def browser():
    """Headless Debian Chromium through Debian's chromedriver (tests/conftest.py's fixture)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-bench-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    driver.profile_dir = profile
    return driver


class Walk:
    """The parts of tests/test_browser_flow.py's Walk this needs: poll the page until it says what it
    should and Streamlit is idle; on a failure, keep a screenshot and the page text."""

    def __init__(self, driver, label: str):
        self.d, self.label, self.page = driver, label, "Data"
        self.t0 = time.perf_counter()

    def say(self, what: str) -> None:
        print(f"   {time.perf_counter() - self.t0:7.1f} s  {what}", flush=True)

    def text(self) -> str:
        return self.d.find_element("css selector", "body").text

    def main_text(self) -> str:
        found = self.d.find_elements("css selector", '[data-testid="stMain"]')
        return found[0].text if found else self.text()

    def busy(self) -> bool:
        return bool(self.d.find_elements("css selector", RUNNING))

    def wait(self, predicate, timeout: float, what: str, poll: float = 0.1):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                result = predicate()
                if result:
                    return result
            except Exception:  # elements come and go while Streamlit redraws
                pass
            time.sleep(poll)
        self.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_text(self, *needles: str, timeout: float = 120.0) -> str:
        def ready():
            text = self.text()
            return text if all(n in text for n in needles) else None
        return self.wait(ready, timeout, f"text {needles!r}")

    def idle(self, timeout: float = 120.0, settle_ms: float = 500.0) -> None:
        """Nothing running, and the page not redrawn for ``settle_ms`` (browser clock)."""
        def settled():
            if self.busy():
                return False
            now, last = self.d.execute_script(OBSERVER + "return [performance.now(), window.__fsLast];")
            return now - last >= settle_ms
        self.wait(settled, timeout, "Streamlit to be idle", poll=0.05)

    def no_traceback(self) -> None:
        if self.d.find_elements("css selector", '[data-testid="stException"]') or "Traceback" in self.text():
            self.fail("the page shows an exception")

    def go(self, page: str, *needles: str, timeout: float = 180.0) -> None:
        xpath = f'//a[@data-testid="stSidebarNavLink"][.//span[normalize-space()="{page}"]]'
        link = self.wait(lambda: self.d.find_element("xpath", xpath), 60, f"the {page} link")
        self.page = page

        def on_page():
            h1 = self.d.find_elements("css selector", '[data-testid="stMain"] h1')
            return h1 and h1[0].text.strip().startswith(page)
        link.click()
        self.wait(on_page, timeout, f"the {page} page's title")
        if needles:
            self.wait_text(*needles, timeout=timeout)
        self.idle(timeout=timeout)
        self.no_traceback()

    def click_button(self, label: str) -> float:
        """Click the enabled button labelled ``label``; returns time.perf_counter() right before the click
        that landed (a tooltip or a redraw can intercept one: then move onto it and click again)."""
        from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
        from selenium.webdriver.common.action_chains import ActionChains

        xpath = (f'//div[@data-testid="stButton"]//button[.//p[normalize-space()="{label}"] '
                 f'or normalize-space()="{label}"]')
        deadline = time.perf_counter() + 10
        tries = 0
        while True:
            btn = self.wait(lambda: [b for b in self.d.find_elements("xpath", xpath) if b.is_enabled()], 60,
                            f"the {label!r} button")[0]
            try:
                self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", btn)
                t0 = time.perf_counter()
                if tries:
                    ActionChains(self.d).move_to_element(btn).pause(0.2).click().perform()
                else:
                    btn.click()
                return t0
            except (ElementClickInterceptedException, StaleElementReferenceException) as err:
                tries += 1
                if time.perf_counter() > deadline:
                    self.fail(f"the {label!r} button stayed covered or kept being redrawn: {err.msg}")
                time.sleep(0.2)

    def fail(self, message: str):
        stamp = KEEP_LOGS / f"failure_{self.label}_{self.page.lower()}_{int(time.time())}"
        text = ""
        try:
            KEEP_LOGS.mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(f"{stamp}.png")
            text = self.main_text()
            Path(f"{stamp}.txt").write_text(f"{message}\n\n{self.text()}", encoding="utf-8")
        except Exception:  # the browser itself may be gone; the message still matters
            pass
        raise RuntimeError(f"{message} (on {self.page}; screenshot and text: {stamp}.*)\npage text: {text[:1500]}")


def measure(side: str, n: int) -> dict:
    """One fresh server + fresh browser: walk to Train with every default, train once, time it."""
    checkout = CHECKOUTS[side]
    KEEP_LOGS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    server = Server(checkout, KEEP_LOGS / f"streamlit_{side}_{n}.log")
    driver = None
    try:
        server.wait_healthy()
        t_healthy = time.perf_counter()
        driver = browser()
        walk = Walk(driver, f"{side}{n}")
        walk.say(f"server healthy after {t_healthy - t_start:.1f} s, browser up")
        # Data: every new session starts on the default sample (weather.csv), its chart drawn.
        driver.get(server.url)
        walk.wait(lambda: "weather.csv" in walk.text() and
                  driver.find_elements("css selector", ".js-plotly-plot .scatterlayer .trace"), 240,
                  "the weather sample and its chart")
        walk.idle()
        walk.no_traceback()
        walk.say("Data page: weather sample and chart drawn")
        # Features and Model: open each page and let it settle on its defaults (this is what builds the
        # windows, the model spec and the training settings the Train page reads).
        walk.go("Features", "Ready:")
        walk.say("Features page settled on its defaults")
        walk.go("Model", "Model ready")
        walk.say("Model page settled on its defaults")
        walk.go("Train", "Start training")
        header = walk.wait(lambda: [line for line in walk.main_text().splitlines() if " epochs, batch " in line],
                           60, "the Train page's configuration line")[0]
        t_walk = time.perf_counter()
        # Train: the click until the finished run's results are on the page.
        walk.say(f"Train page: {header.strip()}")
        t_click = walk.click_button("Start training")
        walk.say("clicked Start training")
        # The finished run's caption "Best epoch B of E (...); status done; ..." is drawn with the results
        # (table, verdict) once the job is done. Polled with textContent, which needs no layout: reading
        # innerText ten times a second kept Chromium's renderer at ~40% of a core, taken from the training.
        walk.wait(lambda: FINISHED.search(walk.d.execute_script(MAIN_TEXT)), 1800,
                  "the finished run's caption (Best epoch ... of ...)", poll=0.2)
        seconds = time.perf_counter() - t_click
        walk.say(f"finished run on the page, {seconds:.2f} s after the click")
        walk.no_traceback()
        # The verdict (an alert under the results table) may be drawn a moment after the caption.
        try:
            walk.idle(timeout=60)
        except RuntimeError:
            pass
        text = walk.main_text()
        best, epochs = FINISHED.search(text).groups()
        if "Test results" not in text:  # seen once on a finished page: table, verdict, caption, no heading
            print("   note: the finished page shows no \"Test results\" heading", flush=True)
        mae = MAE.search(text)
        info = server.run_info()
        return {"side": side, "n": n, "seconds": seconds, "epochs": int(epochs), "best_epoch": int(best),
                "mae": float(mae.group(1)) if mae else None, "header": header.strip(),
                "train_s": info.get("seconds"), "mae_file": info.get("mae_file"),
                "engine": " ".join(str(info[k]) for k in ("engine", "precision") if info.get(k)) or "-",
                "heading": "Test results" in text, "server_s": t_healthy - t_start, "walk_s": t_walk - t_healthy,
                "load": loadavg()}
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
            shutil.rmtree(getattr(driver, "profile_dir", ""), ignore_errors=True)
        server.close()


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> int:
    # A SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so every server and browser is closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    missing += [str(CHECKOUTS[s] / "studio" / "app.py") for s in SIDES
                if not (CHECKOUTS[s] / "studio" / "app.py").exists()]
    if missing:
        write_section("bench_browser_train", "## Browser training of the bundled sample's defaults (issue T)\n\n"
                      f"Not run: missing {', '.join(missing)}. The 'before' side is a worktree of the commit before "
                      "the training speed work: `git worktree add /work/wt/before ad72c30` (or set FS_BENCH_BEFORE).\n")
        return 0
    commits = {s: commit_of(CHECKOUTS[s]) for s in SIDES}
    load_start, started = loadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"load average at start: {load_start}; {REPEAT} x {'/'.join(SIDES)} interleaved", flush=True)
    rows, broken = [], []
    for n in range(REPEAT):
        for side in SIDES:
            print(f"-- {side} #{n + 1} ({CHECKOUTS[side]}, {commits[side]})", flush=True)
            try:
                row = measure(side, n + 1)
            except Exception as e:  # report what broke, keep measuring the rest
                broken.append(f"{side} #{n + 1}: {str(e).splitlines()[0]}")
                print(f"   broke: {e}", flush=True)
                continue
            rows.append(row)
            print(f"   {row['seconds']:.2f} s click to finished (train() {_fmt(row['train_s'])} s), "
                  f"{row['epochs']} epochs, test MAE {_fmt(row['mae'], '.4g')} (page) / {_fmt(row['mae_file'], '.4f')} "
                  f"(metrics.json); server start {row['server_s']:.1f} s, "
                  f"walk to Train {row['walk_s']:.1f} s; load {row['load']}", flush=True)
    load_end = loadavg()

    medians = {s: statistics.median([r["seconds"] for r in rows if r["side"] == s])
               for s in SIDES if any(r["side"] == s for r in rows)}
    ratio = medians["now"] / medians["before"] if {"now", "before"} <= medians.keys() else None
    lines = [
        "## Browser training of the bundled sample's defaults (issue T)",
        "",
        "`python -m bench.bench_browser_train`: headless Chromium (Selenium, Debian's chromedriver) against "
        "`streamlit run studio/app.py` of each checkout, a fresh server, workdir and browser per measurement, the "
        "two checkouts interleaved. The walk: default sample on Data, Features and Model pages left at their "
        "defaults (no candidate search), Train, *Start training*; the time runs from the click until the page "
        "shows the finished run (the caption \"Best epoch B of E ...\" under the results). train() s is the "
        "training's own time from its run.json (without the page's 1 s polling); engine and precision as run.json "
        "records them (- where it does not: before the speed work, always Keras as configured).",
        "",
        f"Run {started}, {REPEAT} per checkout. Load average (1, 5, 15 min) at the start **{load_start}**, at the "
        f"end **{load_end}**, on {os.cpu_count()} cores.",
        "",
        "| checkout | commit | repeat | click to finished (s) | train() (s) | epochs (best) "
        "| test MAE (page / metrics.json) | engine | load at end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['side']} | {commits[r['side']]} | {r['n']} | {r['seconds']:.2f} | {_fmt(r['train_s'])} | "
                     f"{r['epochs']} ({r['best_epoch']}) | {_fmt(r['mae'], '.4g')} / {_fmt(r['mae_file'], '.4f')} | "
                     f"{r['engine']} | {r['load']} |")
    lines += ["", "| checkout | commit | seconds per repeat | median (s) |", "|---|---|---|---|"]
    for s in medians:
        per = ", ".join(f"{r['seconds']:.2f}" for r in rows if r["side"] == s)
        lines.append(f"| {s} | {commits[s]} | {per} | **{medians[s]:.2f}** |")
    lines.append("")
    if ratio is not None:
        lines.append(f"Ratio now / before (medians): **{ratio:.3f}**.")
        lines.append("")
    configs = {s: sorted({r["header"] for r in rows if r["side"] == s}) for s in medians}
    for s, headers in configs.items():
        lines.append(f"Train page's configuration line, {s}: " + " / ".join(f"\"{h}\"" for h in headers))
    no_heading = [f"{r['side']} #{r['n']}" for r in rows if not r["heading"]]
    if no_heading:
        lines += ["", "The finished page showed no \"Test results\" heading (table, verdict and caption were there): "
                  + ", ".join(no_heading) + "."]
    if broken:
        lines += ["", "Broken measurements: " + "; ".join(broken)]
    write_section("bench_browser_train", "\n".join(lines) + "\n")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
