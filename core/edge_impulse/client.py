"""Edge Impulse: deploy a trained run as an Arduino library, and profile it, through the ``edgeimpulse`` SDK.

``deploy(run, api_key, int8=False)`` returns the library zip as bytes (Regression model, target
"arduino", int8 quantised by Edge Impulse from the run's calibration windows when asked);
``profile(run, api_key, device=...)`` returns Edge Impulse's RAM/ROM/latency estimates as a dict.

The SDK runs in a child process (``core.edge_impulse.worker``) that is stopped at a deadline, because the SDK
itself has no request timeout and retries refused connections for minutes. The API key goes to the
child on a pipe and is set on ``edgeimpulse.API_KEY`` there, in memory only: it is never written to a
file, a log, a bundle or a saved project, and never appears in a message. ``EI_API_ENDPOINT`` (or
``endpoint=``) points the SDK at another server, which is how the tests reach a local stand-in.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np

from core.config import BUNDLE_SECTION, DEFAULTS
from core.errors import StudioError
from core.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent.parent
LIBRARY_ZIP = "ei_library.zip"
OFFLINE_HINT = (f"Use the offline firmware bundle instead (\"{BUNDLE_SECTION}\" on the Export step, or `python -m studio "
                "export`): it runs any horizon and number of targets.")


def _cfg(key: str) -> Any:
    return DEFAULTS["export"][key]


def endpoint() -> str:
    """The API base URL: EI_API_ENDPOINT when set (read at each call, not at import), else the service."""
    return os.environ.get("EI_API_ENDPOINT") or str(_cfg("ei_endpoint"))


def check_single_output(spec: Any, scaler: Any = None) -> None:
    """Edge Impulse's Regression type takes one output value; say so before any upload. With the run's ``scaler``:
    a multiplicative (log) model is refused too, since the Edge Impulse sketch carries only the affine scaling."""
    if scaler is not None and getattr(scaler, "log", ()):
        raise StudioError(
            "This model reads its target as log(value) (the multiplicative form), and the Edge Impulse sketch only "
            "scales values linearly, so its numbers would be the log of the forecast.",
            f"Train without the multiplicative (log) target for Edge Impulse (--no-log-target). {OFFLINE_HINT}")
    check_not_linear(getattr(spec, "target_form", ""))
    n = int(spec.horizon) * int(spec.n_targets)
    if n != 1:
        raise StudioError(
            f"Edge Impulse can deploy this model only as a Regression model with one output value, and this model "
            f"gives {n} ({spec.horizon} step(s) x {spec.n_targets} target(s)).",
            f"Train a model with horizon 1 and one target for Edge Impulse. {OFFLINE_HINT}")


LINEAR_PROBLEM = ("This model forecasts the change from a linear forecast (target form \"change_linear\"), whose "
                  "reference the offline firmware adds after the network, summed in double; the Edge Impulse library "
                  "runs the int8 graph alone, so its number would be only the change.")


def check_not_linear(target_form: str) -> None:
    """The Edge Impulse path (deploy, library, sketch, emulator) refuses "change_linear": Edge Impulse runs the graph
    alone and feeds it windows already scaled, with any add-back inside the graph, where an int8 output spanning the
    whole level range would coarsen the linear forecast to one int8 step (core.export.calibration.outside)."""
    if target_form == "change_linear":
        raise StudioError(LINEAR_PROBLEM, "Train with another target form for Edge Impulse (the change from the last "
                                          f"value, or level). {OFFLINE_HINT}")


def _key(api_key: str | None) -> str:
    key = (api_key or os.environ.get("EI_API_KEY") or "").strip()
    if not key:
        raise StudioError("No Edge Impulse API key was given.",
                          "Paste your project's API key (Edge Impulse Dashboard -> Keys), or set EI_API_KEY.")
    if any(c.isspace() for c in key) or not key.isascii():
        raise StudioError("The Edge Impulse API key contains spaces or unusual characters.",
                          "Copy the key again from the Dashboard -> Keys page (it starts with ei_).")
    return key


def _reachable(url: str, timeout: float = 5.0) -> None:
    """A quick TCP connect, so an unreachable server is named at once instead of after the SDK's retries."""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise StudioError(f"The Edge Impulse endpoint {url!r} is not an http(s) URL.",
                          "Unset EI_API_ENDPOINT, or set it to e.g. https://studio.edgeimpulse.com/v1.")
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        raise StudioError(f"Cannot reach Edge Impulse at {u.hostname}:{port} ({e.strerror or e}).",
                          f"Check the network connection (or proxy) and try again. {OFFLINE_HINT}") from None


def check_access(api_key: str | None = None, endpoint_url: str | None = None, timeout: float = 15.0) -> None:
    """Before a long export: Edge Impulse answers, and takes this key (one GET of the key's projects).
    StudioError (auth or network) otherwise; the key never appears in the message."""
    import urllib.error
    import urllib.request

    key = _key(api_key)
    url = (endpoint_url or endpoint()).rstrip("/")
    _reachable(url)
    req = urllib.request.Request(f"{url}/api/projects", headers={"x-api-key": key, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read(1 << 20)
    except urllib.error.HTTPError as err:
        kind = "auth" if err.code in (401, 403) else ("server" if err.code >= 500 else "refused")
        raise _message({"kind": kind, "status": err.code, "detail": f"HTTP {err.code}"}, "deploy", timeout) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise _message({"kind": "network", "status": None, "detail": str(reason)[:200]}, "deploy", timeout) from None


def _load(run: Any):
    from core.runs import Run, load_run

    if isinstance(run, (str, Path)):
        return load_run(run)
    if not isinstance(run, Run):
        raise StudioError("There is no trained run to send to Edge Impulse.", "Train a model first.")
    return run


def _message(result: dict, action: str, timeout: float) -> StudioError:
    kind, status, detail = result.get("kind"), result.get("status"), result.get("detail", "")
    what = "deploy" if action == "deploy" else "profile"
    if kind == "auth":
        return StudioError(f"Edge Impulse refused the API key ({status or 'no key'}).",
                           "Copy the API key again from your project's Dashboard -> Keys page; it must belong to "
                           "the project you deploy to and have at least member rights.")
    if kind == "server":
        return StudioError(f"Edge Impulse answered with a server error ({status}) during {what}.",
                           f"This is on Edge Impulse's side; try again in a few minutes. {OFFLINE_HINT}")
    if kind == "timeout":
        return StudioError(f"Edge Impulse did not finish the {what} within {timeout:.0f} s.",
                           f"Try again later, or raise the time limit. {OFFLINE_HINT}")
    if kind == "network":
        return StudioError(f"The connection to Edge Impulse failed during {what} ({detail}).",
                           f"Check the network connection and try again. {OFFLINE_HINT}")
    if kind == "model":
        return StudioError(f"Edge Impulse did not accept the model ({detail}).", OFFLINE_HINT)
    if kind == "target":
        return StudioError(f"Edge Impulse does not offer the Arduino library for this project ({detail}).",
                           "Check the project's deployment options on studio.edgeimpulse.com.")
    if kind == "refused":
        return StudioError(f"Edge Impulse refused the request ({detail}).",
                           "Check the project on studio.edgeimpulse.com, then try again.")
    return StudioError(f"The Edge Impulse {what} failed ({detail}).", f"Try again. {OFFLINE_HINT}")


def _call(action: str, run: Any, api_key: str | None, timeout: float | None, endpoint_url: str | None,
          progress: Callable[[str], None] | None, **extra: Any) -> tuple[dict, Path]:
    """Run one SDK action in the child; returns (result, jobdir). The caller removes jobdir."""
    run = _load(run)
    key = _key(api_key)
    url = endpoint_url or endpoint()
    limit = float(timeout if timeout is not None else _cfg("ei_timeout_s"))
    say = progress or (lambda m: None)
    say(f"Contacting Edge Impulse at {urlparse(url).hostname}")
    _reachable(url)
    jobdir = Path(tempfile.mkdtemp(prefix="fs-ei-"))  # mkdtemp makes it private (0700)
    try:
        np.savez(jobdir / "weights.npz", **{f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(run.weights)})
        if extra.get("int8"):
            from core.export import calibration_windows

            # The same range-covering calibration as the offline int8 export (training + validation
            # windows and shifted copies), so Edge Impulse's int8 does not saturate on a trend either.
            np.save(jobdir / "rep.npy", calibration_windows(run)[0], allow_pickle=False)
        request = {"action": action, "jobdir": str(jobdir), "endpoint": url, "spec": run.model_spec.to_dict(),
                   "timeout": limit, **extra}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["TF_USE_LEGACY_KERAS"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("CUDA_VISIBLE_DEVICES", "")
        # The key travels on the pipe only; a key in the environment would be inherited by the child anyway.
        env.pop("EI_API_KEY", None)
        say("Uploading the model and waiting for Edge Impulse" + (" (int8)" if extra.get("int8") else ""))
        proc = subprocess.Popen([sys.executable, "-m", "core.edge_impulse.worker"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            _supervise(proc, json.dumps({**request, "api_key": key}).encode(), limit)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise
        result_path = jobdir / "result.json"
        if not result_path.exists():
            raise StudioError(f"The Edge Impulse helper process stopped unexpectedly (exit status {proc.returncode}).",
                              f"Try again. {OFFLINE_HINT}")
        result = json.loads(result_path.read_text())
        if not result.get("ok"):
            raise _message(result, action, limit)
        return result, jobdir
    except BaseException:
        shutil.rmtree(jobdir, ignore_errors=True)
        raise


def _supervise(proc: subprocess.Popen, request: bytes, limit: float) -> None:
    """Two deadlines: getting ready (importing TensorFlow and the SDK, checking the key, writing the
    SavedModel) within ``ei_startup_s``; then the upload, the server's jobs and the download within
    ``limit``. The SDK gets the same limit for its job polling, and a little slack here lets its own
    timeout message come first."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(request)
    proc.stdin.close()
    startup = float(_cfg("ei_startup_s"))
    timer = threading.Timer(startup, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    if not line:  # the child ended before reaching the network: its result (or the kill) says why
        proc.wait()
        if proc.returncode < 0:
            raise StudioError(f"Preparing the Edge Impulse upload took longer than {startup:.0f} s "
                              "(starting TensorFlow, checking the key, saving the model).",
                              f"Check the network connection and try again when the computer is less busy. {OFFLINE_HINT}")
        return
    try:
        proc.wait(timeout=limit + float(_cfg("ei_slack_s")))
    except subprocess.TimeoutExpired:
        raise StudioError(f"Edge Impulse did not answer within {limit:.0f} s; the request was stopped.",
                          f"Try again later. {OFFLINE_HINT}") from None


def deploy(run: Any, api_key: str | None = None, int8: bool = False, timeout: float | None = None,
           endpoint_url: str | None = None, progress: Callable[[str], None] | None = None) -> bytes:
    """Build the Edge Impulse Arduino library for ``run`` (a Run or its directory); returns the zip's bytes."""
    run = _load(run)
    check_single_output(run.model_spec, run.scaler)
    if int8 and ("X_rep" not in run.samples or len(run.samples["X_rep"]) == 0):
        raise StudioError("int8 needs the run's calibration windows, and this run has none.",
                          "Deploy as float32, or train the model again.")
    t0 = time.perf_counter()
    _, jobdir = _call("deploy", run, api_key, timeout, endpoint_url, progress, int8=bool(int8), target="arduino")
    try:
        data = (jobdir / "library.zip").read_bytes()
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
    check_library(data)
    if progress:
        progress(f"Library ready ({len(data) / 1024:.0f} KB) in {time.perf_counter() - t0:.0f} s")
    return data


def check_library(data: bytes) -> str:
    """The library's ``<project>_inferencing.h`` path inside the zip; StudioError when it is not one."""
    try:
        with zipfile.ZipFile(_bytes_io(data)) as z:
            headers = [n for n in z.namelist() if n.endswith("_inferencing.h")]
    except zipfile.BadZipFile as e:
        raise StudioError("What Edge Impulse returned is not a zip file.", "Deploy again.") from e
    if not headers:
        raise StudioError("The Edge Impulse download holds no <project>_inferencing.h, so it is not an Arduino library.",
                          "Deploy again with the Arduino target.")
    return sorted(headers, key=len)[0]


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def save_library(export_dir: str | Path, data: bytes) -> Path:
    """Keep the library beside the export (atomically), where the Edge Impulse sketch (issue K) finds it."""
    check_library(data)
    return atomic_write_bytes(Path(export_dir) / LIBRARY_ZIP, data)


def profile(run: Any, api_key: str | None = None, device: str | None = None, timeout: float | None = None,
            endpoint_url: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Edge Impulse's estimate for ``device`` (default an ESP32): RAM, ROM and latency per dtype.

    Returns ``{"device", "float32": {ram, rom, arena, latency_ms, supported, error} | None, "int8": ...,
    "raw": <the SDK's response>}``.
    """
    run = _load(run)
    check_single_output(run.model_spec, run.scaler)
    device = device or str(_cfg("ei_profile_device"))
    result, jobdir = _call("profile", run, api_key, timeout, endpoint_url, progress, device=device)
    shutil.rmtree(jobdir, ignore_errors=True)
    raw = result["profile"]
    info = ((raw.get("model") or {}).get("profileInfo") or {})

    def one(entry: dict | None) -> dict | None:
        if not entry:
            return None
        mem = (entry.get("memory") or {}).get("tflite") or {}
        return {"ram": mem.get("ram"), "rom": mem.get("rom"), "arena": mem.get("arenaSize"),
                "latency_ms": entry.get("timePerInferenceMs"), "supported": entry.get("isSupportedOnMcu"),
                "error": entry.get("mcuSupportError") or entry.get("profilingError")}

    return {"device": device, "float32": one(info.get("float32")), "int8": one(info.get("int8")), "raw": raw}
