"""`python -m studio [command]`: the same pipeline as the pages, without a browser.

Each command lives in `studio/commands/<name>.py` with `add_arguments(parser)` and `run(args) -> int`.
A `StudioError` becomes one line on stderr and exit status 2; argparse errors also exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

from core.errors import StudioError, from_interrupt
from core.numbers import positive_int

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["inspect", "train", "export", "emulate", "device"]


def _available() -> list[str]:
    return [c for c in COMMANDS if (ROOT / "studio" / "commands" / f"{c}.py").exists()]


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported as the CLI promises: one line on stderr, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m studio", description="Forecast Studio: CSV to a forecaster on a microcontroller.")
    parser.add_argument("--port", type=positive_int("--port", 65535), default=8501, help="port for the browser UI (no command given)")
    parser.add_argument("--address", default="127.0.0.1", help="address for the browser UI; 0.0.0.0 for LAN mode")
    parser.add_argument("--ray", action="store_true",
                        help="run trainings as Ray tasks (RAY_ADDRESS, or a Ray started on this machine)")
    parser.add_argument("--workers", type=positive_int("--workers", 256), default=None,
                        help="trainings at once in the local job pool (FS_WORKERS; default one per core)")
    parser.add_argument("--https", action="store_true",
                        help="serve over HTTPS (needed for boards on participants' laptops in LAN mode); without "
                             "--cert/--key, with a self-signed certificate made for this machine")
    parser.add_argument("--cert", default=None, help="PEM certificate for HTTPS (with --key)")
    parser.add_argument("--key", default=None, help="PEM private key for HTTPS (with --cert)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name participants type to reach the studio, besides this machine's name and "
                             "addresses and localhost (repeatable; adds to FS_ALLOWED_HOSTS); other names are refused")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _available():
        module = importlib.import_module(f"studio.commands.{name}")
        p = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0] if module.__doc__ else None,
                           description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(address: str = "127.0.0.1", port: int = 8501, extra: list[str] | None = None) -> list[str]:
    """The `streamlit run` line. The safe settings are repeated here, not only in .streamlit/config.toml,
    so a user-level Streamlit config cannot turn XSRF protection or the upload limit off."""
    from core.config import MAX_UPLOAD_MB

    # studio/server.py serves studio/app.py plus the browser board relay route (studio/board_relay.py).
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "studio" / "server.py"),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
            "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--client.showErrorDetails", "none",
            "--browser.gatherUsageStats", "false",
            # no full GC after every rerun: it slowed a running training many times over (studio/reruns.py)
            "--runner.postScriptGC", "false", *(extra or [])]


def lan_warning(address: str, port: int = 8501) -> str | None:
    """What the host must know before serving beyond this machine (None on loopback)."""
    if address in LOOPBACK or address.startswith("127."):
        return None
    return (f"LAN mode: the studio on {address}:{port} is open to everyone who can reach this machine, with no login. "
            "Each browser session gets its own private working directory, but run this only on a network you trust "
            "(a workshop room), and stop it afterwards. See docs/WORKSHOP.md.")


def https_flags(address: str, port: int, https: bool, cert: str | None, key: str | None) -> list[str]:
    """Streamlit's certificate options for --https / --cert / --key, and what the host should tell the room."""
    from studio import certs

    if (cert is None) != (key is None):
        raise StudioError("--cert and --key go together.", "Pass both (PEM files), or --https alone for a self-signed certificate.")
    if cert is not None:
        cert_path, key_path = certs.check_pair(cert, key)
        print(f"HTTPS with {cert_path}: participants open https://<this machine's name>:{port}", file=sys.stderr)
    elif https:
        made = certs.self_signed(certs.lan_names(address))
        cert_path, key_path = made.cert, made.key
        urls = ", ".join(f"https://{n}:{port}" for n in made.names if n not in ("localhost", "127.0.0.1"))
        if made.renewed:
            print(f"The certificate kept before was not reused ({made.renewed}): a new one was made.", file=sys.stderr)
        print(f"HTTPS with a self-signed certificate ({'reused' if made.reused else 'made'} in {made.cert.parent}) "
              f"for {', '.join(made.names)}.\n"
              f"  Participants open {urls or f'https://localhost:{port}'}; the browser warns once that the connection "
              "is not private: check this fingerprint under the warning's certificate details, then choose "
              f"Advanced -> Proceed.\n  SHA-256 fingerprint: {made.fingerprint}", file=sys.stderr)
    else:
        if lan_warning(address, port):
            print("note: over plain http:// from another computer, browsers do not let the page use the participant's "
                  "USB boards (Web Serial needs HTTPS). Add --https for that.", file=sys.stderr)
        return []
    return ["--server.sslCertFile", str(cert_path), "--server.sslKeyFile", str(key_path)]


def serve(address: str = "127.0.0.1", port: int = 8501, extra: list[str] | None = None, ray: bool = False,
          workers: int | None = None, https: bool = False, cert: str | None = None, key: str | None = None,
          allow_hosts: list[str] | None = None) -> int:
    warning = lan_warning(address, port)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        extra = [*(extra or []), *https_flags(address, port, https, cert, key)]
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if ray and not env.get("RAY_ADDRESS"):
        env["RAY_ADDRESS"] = "local"  # ray.init starts a Ray on this machine; core.jobs picks the Ray pool
    if workers is not None:
        if workers < 1:
            print("error: --workers must be 1 or more. Use the number of trainings the machine can run at once.",
                  file=sys.stderr)
            return 2
        env["FS_WORKERS"] = str(workers)
    if allow_hosts:
        from studio.hosts import ENV as HOSTS_ENV

        env[HOSTS_ENV] = ",".join([*filter(None, [env.get(HOSTS_ENV, "")]), *allow_hosts])
    return _run_forwarding_signals(serve_command(address, port, extra), cwd=ROOT, env=env)


def _run_forwarding_signals(cmd: list[str], **popen) -> int:
    """Run the Streamlit child and pass SIGTERM/SIGINT/SIGHUP on to it, then wait for it: a service manager or
    a workshop script that stops this process must stop the server too, not leave it listening."""
    import signal

    child = subprocess.Popen(cmd, **popen)
    forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    for sig in forwarded:
        signal.signal(sig, forward)
    try:
        while True:
            try:
                code = child.wait()
                return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N
            except KeyboardInterrupt:  # a handler set elsewhere raised it; the child got the signal already
                continue
    finally:
        for sig, old in forwarded.items():
            signal.signal(sig, old)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


INTERRUPTED = "error: interrupted. Nothing was left half-written; run the command again."
_interrupted = False


def _on_interrupt(signum, frame):
    """Python's own Ctrl+C handler, remembering that it fired: a framework whose native start-up is cut short
    turns the KeyboardInterrupt into its own error (pybind11: ImportError "initialization failed")."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _watch_interrupts() -> None:
    import signal

    # Only over Python's default: a background job's ignored SIGINT stays ignored.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)


def main(argv: list[str] | None = None) -> int:
    global _interrupted
    _interrupted = False
    _watch_interrupts()
    try:
        return _main(argv)
    except (KeyboardInterrupt, Exception) as err:
        # Ctrl+C at any moment (the parser's imports, TensorFlow or PyTorch loading, a training) is one line and
        # the shell's 130; what the interrupt broke on its way out is not the user's problem to read.
        if _interrupted or from_interrupt(err):
            print(INTERRUPTED, file=sys.stderr)
            return 130
        raise


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a bad option (2, one line already printed)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    if args.command is None:
        return serve(args.address, args.port, ray=args.ray, workers=args.workers, https=args.https,
                     cert=args.cert, key=args.key, allow_hosts=args.allow_host)
    from core.data import read

    read.use_arrow_threads(False)  # a one-shot process: no Arrow pool left to race the exit (core/data/read.py)
    try:
        return int(args._module.run(args) or 0)
    except StudioError as err:
        if _interrupted or from_interrupt(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, RecursionError, OSError, ValueError, TypeError, KeyError, OverflowError) as err:
        if _interrupted:
            raise
        # Whatever a hostile file or option still gets past the checks ends as the one promised line, not a
        # traceback; the type is named so the report says where to look.
        detail = " ".join(str(err).split())[:300] or "no detail"
        print(f"error: {type(err).__name__}: {detail}. Check the files and options given; if they are right, "
              "report this with the command line.", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    os.chdir(ROOT)
    sys.exit(main())
