"""Ctrl+C while the CLI loads (issue 35, item 8): one line on stderr and exit 130, never a traceback.

A real SIGINT reaches a real `python -m studio` process at the moment it imports a module: an import hook stops
that import, says "loading" on stdout and waits for the signal, so the test sends it exactly then, with no
sleeping. "pybind11" mode answers the interrupt as TensorFlow's and PyTorch's native modules do when Ctrl+C
cuts their start-up short: ImportError("initialization failed") raised from the KeyboardInterrupt.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STALL = r'''
import importlib.abc, os, runpy, signal, sys

NAME, MODE = sys.argv[1], sys.argv[2]


class Stall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != NAME:
            return None
        sys.meta_path.remove(self)
        os.write(1, b"loading\n")
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt as err:
            if MODE == "pybind11":
                raise ImportError("initialization failed") from err
            raise


sys.meta_path.insert(0, Stall())
sys.argv = ["studio", *sys.argv[3:]]
runpy.run_module("studio", run_name="__main__", alter_sys=True)
'''


def _interrupt_while_importing(module: str, mode: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-c", STALL, module, mode, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            # Python keeps an inherited "ignore SIGINT"; a terminal's Ctrl+C finds the default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        if line != "loading\n":
            proc.wait(120)
            pytest.fail(f"{module} was never imported: {line!r} {proc.stderr.read()[-2000:]}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _assert_clean_interrupt(res: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode == 130, res.stderr[-3000:]
    assert res.stderr.strip().splitlines()[-1].startswith("error: interrupted."), res.stderr[-3000:]
    assert res.stderr.count("error:") == 1


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "tiny.csv"
    path.write_text("t,y\n" + "".join(f"2024-01-01 {h:02d}:00,{h % 7}\n" for h in range(24)))
    return path


@pytest.mark.parametrize("mode", ["keyboard", "pybind11"])
@pytest.mark.parametrize("framework,backend", [("tensorflow", "keras"), ("torch", "torch")])
def test_ctrl_c_while_a_framework_loads_in_train(tmp_path, tiny_csv, mode, framework, backend):
    res = _interrupt_while_importing(framework, mode, "train", "--csv", str(tiny_csv), "--target", "y",
                                     "--backend", backend, "--no-search", "--epochs", "1", "--window", "3", "--batch-size", "4",
                                     "--out", str(tmp_path / "run"))
    _assert_clean_interrupt(res)


def test_ctrl_c_while_the_cli_itself_loads():
    # numpy comes in with the command line's own modules, before any command runs
    _assert_clean_interrupt(_interrupt_while_importing("numpy", "keyboard", "inspect", "sample_data/weather.csv"))
