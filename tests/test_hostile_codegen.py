"""Hostile class 1: a user's text in generated code. Column names, a model label, a file name: each reaches
the firmware bundle (C/C++, INI, Markdown) and the Edge Impulse sketch only through core/escape.py, so the
generated firmware compiles with g++ and holds no user text outside string literals and comments."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from core.edge_impulse import sketch as es
from core import escape
from core.firmware import render_bundle
from tests.ei_standin import library_zip
from tests.firmware_support import SLICE1_EXPORT, SLICE_EXPORT
from tests.test_ei_sketch import ARDUINO_H, FAKE_LIBRARY_H, PROJECT, _compile, fake_export

GXX = shutil.which("g++")
HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"

# Each holds a way out of a comment or a string: a newline, a trailing backslash (line splice), */,
# a quote, a trigraph, a Unicode line separator, a NUL. The INJECTED marker must never reach code.
HOSTILE = [
    'temp"\n#define INJECTED_A 1\nint INJECTED_B = 0; /* ',
    "hum ??/\n INJECTED_C */ INJECTED_D \\",
    "x\r\nstatic int INJECTED_E;\u2028 INJECTED_F \x00 \\\n#error INJECTED_G",
]


def _code_only(source: str) -> str:
    """C/C++ source with comments and string/char literals removed, after the preprocessor's first two
    phases (trigraphs, as g++ -trigraphs reads them, and backslash-newline splices)."""
    source = source.replace("??/", "\\").replace("??=", "#").replace("??'", "^")
    source = re.sub(r"\\\r?\n", "", source)
    out, i, n = [], 0, len(source)
    while i < n:
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            assert j >= 0, "unterminated comment"
            i = j + 2
        elif source[i] in "\"'":
            q, j = source[i], i + 1
            while source[j] != q:
                assert source[j] != "\n", f"newline inside a literal near {source[i:i + 40]!r}"
                j += 2 if source[j] == "\\" else 1
            out.append(" ")
            i = j + 1
        else:
            out.append(source[i])
            i += 1
    return "".join(out)


def _hostile_export(tmp_path: Path, base: Path) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(base, dst)
    report = json.loads((dst / "report.json").read_text())
    names = HOSTILE[: len(report["features"])]
    n_targets = len(report["targets"])
    report["features"] = names
    report["targets"] = names[:n_targets]
    report["scaler"]["columns"] = names
    report["scaler"]["kind"] = "standard\n#define INJECTED_KIND 1"
    report["model_label"] = 'LSTM"); INJECTED_LABEL(); //'
    # The model file's name is a file name on disk, so it may hold a newline too.
    odd = "model\n#define INJECTED_FILE 1\n.tflite"
    (dst / "model_float32.tflite").rename(dst / odd)
    report["float32"]["path"] = odd
    (dst / "report.json").write_text(json.dumps(report))
    return dst


def test_escape_functions_keep_every_hostile_string_inside_its_context():
    for text in HOSTILE:
        lit = escape.c_string(text)
        assert "\n" not in lit and "??" not in lit and _code_only(f"const char* s = {lit};") == "const char* s =  ;"
        com = escape.c_comment(text)
        assert _code_only(f"// {com}\nint ok;") == "\nint ok;"
        assert _code_only(f"/* {com} */int ok;") == "int ok;"
        assert "\n" not in escape.ini_comment(text) and "\r" not in escape.ini_comment(text)
        md = escape.markdown(text)
        assert md.isprintable() and "\n" not in md
        assert not re.search(r"(?<!\\)[*_`<>#\[\]]", md)
        assert escape.serial_text(text).isprintable()


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
def test_bundle_from_hostile_column_names_compiles_and_holds_them_only_in_comments(tmp_path):
    export = _hostile_export(tmp_path, SLICE_EXPORT)
    zpath = render_bundle(export, "float32", out=tmp_path / "bundle.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(tmp_path / "b")
        names = zf.namelist()
    for name in names:
        text = (tmp_path / "b" / name).read_text(encoding="utf-8")
        if name.endswith((".h", ".cpp", ".ino")):
            code = _code_only(text)
            assert "INJECTED" not in code, f"user text outside a comment or literal in {name}"
        elif name.endswith(".ini"):
            assert all(not line.strip() or line.lstrip().startswith(";") or "INJECTED" not in line
                       for line in text.splitlines()), name
        elif name.endswith(".md"):
            # No line of the README starts with markup that came from a user's string.
            for line in text.splitlines():
                assert not re.match(r"\s*(#define|#error|static int|int INJECTED|INJECTED)", line), (name, line)
            assert "INJECTED_A 1\n" not in text
    sketch = next((tmp_path / "b").glob("*/forecast_studio"))
    exe = tmp_path / "fs_host"
    # -trigraphs: a ??/ in a name must not become a line splice even for a compiler that reads trigraphs.
    proc = subprocess.run([GXX, "-std=c++17", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           "-Wno-trigraphs", f"-I{sketch}", str(sketch / "fs_protocol.cpp"), str(HOST_MAIN),
                           "-o", str(exe)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], input=b"I\n", capture_output=True, timeout=30)
    lines = run.stdout.decode("ascii").splitlines()
    assert lines[0].startswith("FS READY model=slice window=3 features=2 horizon=1 targets=2 dtype=float32")


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
def test_edge_impulse_sketch_from_hostile_names_compiles_and_prints_one_line_per_field(tmp_path):
    window, features = 4, 3
    exp = fake_export(tmp_path / "exp", window, features, target=HOSTILE[0])
    report = json.loads((exp / "report.json").read_text())
    report["model_label"] = 'LSTM"); INJECTED_LABEL(); //\n#define INJECTED_L 1'
    report["scaler"]["kind"] = "minmax */ INJECTED_K /*"
    (exp / "report.json").write_text(json.dumps(report))
    path = es.write_package(exp, library_zip(PROJECT, window * features, "float32"))
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "pkg")
        names = z.namelist()
    root = tmp_path / "pkg" / "forecast_studio_edge_impulse"
    sketch = root / es.SKETCH
    for f in sketch.iterdir():
        assert "INJECTED" not in _code_only(f.read_text(encoding="utf-8")), f.name
    readme = (root / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():
        assert not re.match(r"\s*(#define|int INJECTED|INJECTED)", line), line
    assert any(n.endswith("README.md") for n in names)
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "Arduino.h").write_text(ARDUINO_H)
    (inc / f"{PROJECT}_inferencing.h").write_text(FAKE_LIBRARY_H)
    build = tmp_path / "build"
    build.mkdir()
    entry = json.loads((exp / "report.json").read_text())["edge_impulse"]
    done = _compile(sketch, inc, window * features, entry["host_predictions_scaled"], build / "sketch")
    assert done.returncode == 0, done.stderr
    out = subprocess.run([str(build / "sketch")], capture_output=True, timeout=30).stdout.decode("utf-8")
    lines = out.splitlines()
    # The names the board prints stay on their own line: nothing a name holds can start a protocol line.
    assert lines[0].startswith("Forecast Studio: Edge Impulse static-buffer check (LSTM\"); INJECTED_LABEL(); //")
    host = [ln for ln in lines if ln.startswith("Host: ")]
    assert len(host) == len(entry["windows"])
    assert not any(ln.startswith(("#define", "int INJECTED", "FS ")) for ln in lines)
