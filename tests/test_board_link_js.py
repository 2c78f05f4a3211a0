"""The browser link's JavaScript (studio/components/board_link), unit-tested with node's own test runner.

The framing decides what reaches the studio from a board on a participant's laptop: it must keep every
byte (non-ASCII ones too), join lines split across USB packets, and bound a line that never ends.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_framing_in_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the component's JavaScript unit tests (tests/js) need node 18 or newer")
    done = subprocess.run([node, "--test", str(ROOT / "tests" / "js")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 7" in done.stdout, done.stdout[-2000:]


def test_component_scripts_parse():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: it checks the component's scripts parse")
    for name in ("main.js", "framing.js"):
        path = ROOT / "studio" / "components" / "board_link" / name
        done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
