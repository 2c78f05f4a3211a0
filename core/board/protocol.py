"""The serial protocol between the studio and its firmware (SPEC: "Serial protocol"), as typed records.

Parsing never raises: a line that matches nothing (boot chatter, a half line, garbage) comes back as
``Other`` so it can be shown in the log and otherwise ignored. The same goes for the Edge Impulse
static-buffer example's output, which the board prints in its own format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

import numpy as np

from core.errors import StudioError

DTYPES = ("float32", "int8")
ERROR_CODES = ("BADLEN", "PARSE", "ALLOC", "INVOKE", "UNKNOWN", "NEED")


@dataclass(frozen=True)
class Ready:
    model: str
    window: int
    features: int
    horizon: int
    targets: int
    dtype: str
    arena: int

    def mismatches(self, expected: "Expected") -> list[str]:
        """Each field that differs from the current export, worded for the user ("window 24 vs 48")."""
        out = []
        for name in ("model", "window", "features", "horizon", "targets", "dtype"):
            want = getattr(expected, name)
            got = getattr(self, name)
            if want is not None and str(want) != str(got):
                out.append(f"{name}: board {got}, export {want}")
        return out


@dataclass(frozen=True)
class Expected:
    """What the current export says the board should be running; ``None`` means "don't check"."""
    model: str | None = None
    window: int | None = None
    features: int | None = None
    horizon: int | None = None
    targets: int | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class Result:
    k: int
    us: int
    y: tuple[float, ...]
    # Prediction bands the board printed after y= (issue N): (level, lower bounds, upper bounds), narrowest
    # level first; () from a board whose bundle has none (or firmware from before bands).
    bands: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = ()

    def band(self, level: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(lower, upper) bounds at ``level`` ("80"), or None when the board did not print that band."""
        for name, lo, hi in self.bands:
            if name == level:
                return lo, hi
        return None


@dataclass(frozen=True)
class Done:
    n: int


@dataclass(frozen=True)
class Err:
    code: str
    message: str


@dataclass(frozen=True)
class EiTiming:
    dsp_ms: float
    inference_ms: float
    anomaly_ms: float


@dataclass(frozen=True)
class EiPredictionsHeader:
    pass


@dataclass(frozen=True)
class EiPrediction:
    label: str
    value: float


@dataclass(frozen=True)
class Alert:
    """``FS ALERT k=<k> ...`` (issue 33, core.alarms): reading k fell outside its band (kind "band": y, lo, hi,
    level), one value stuck past the training's longest run (kind "stuck": y, run, limit), or readings stopped
    (kind "gap": ms, limit). Fields this host does not know are kept in ``extra``."""
    k: int
    kind: str
    target: int | None = None
    y: float | None = None
    lo: float | None = None
    hi: float | None = None
    level: str | None = None
    run: int | None = None
    ms: int | None = None
    limit: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def words(self) -> str:
        who = f" (target {self.target})" if self.target else ""
        if self.kind == "band":
            return (f"reading {self.k}{who}: {self.y:.7g} outside the alarm band {self.lo:.7g} .. {self.hi:.7g} "
                    f"({self.level}% band)")
        if self.kind == "stuck":
            return f"reading {self.k}{who}: stuck at {self.y:.7g} for {self.run} readings (training's longest: {self.limit})"
        if self.kind == "drift":
            ex = dict(self.extra)
            return (f"reading {self.k}{who}: {self.y:.7g}, a slow drift {ex.get('dir', '')} (the sum of its standardized "
                    f"errors {ex.get('cusum', '?')} passed {ex.get('h', '?')})")
        if self.kind == "gap":
            return f"no reading for {self.ms} ms (limit {self.limit} ms) after reading {self.k - 1}"
        return f"reading {self.k}: {self.kind}"


@dataclass(frozen=True)
class Pace:
    """``FS PACE ms=<ms> limit=<limit>``: the board took the host's pace (``W <ms>``); its gap limit in ms."""
    ms: int
    limit: int


@dataclass(frozen=True)
class Other:
    text: str


Record = Union[Ready, Result, Done, Err, Alert, Pace, EiTiming, EiPredictionsHeader, EiPrediction, Other]

# Each pattern is written so no two parts can match the same characters: a board printing a long run of
# digits or spaces must not make parsing slow (backtracking), since the reader thread parses every line.
_FLOAT = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)"
_READY_KEYS = ("model", "window", "features", "horizon", "targets", "dtype", "arena")
# Fields after y= (bands: " lo80=...,... hi80=...,..."; anything newer) are key=value words; a key this
# host does not know is skipped, so a newer board still reads.
_RESULT = re.compile(r"FS RESULT +k=(-?\d+) +us=(\d+) +y=(\S*)((?: +[A-Za-z][A-Za-z0-9_.]*=\S*)*) *$", re.IGNORECASE)
_BAND_KEY = re.compile(r"(lo|hi)(\d+(?:\.\d+)?)", re.IGNORECASE)
_DONE = re.compile(r"FS DONE +n=(\d+)$")
_PACE = re.compile(r"FS PACE +ms=(\d{1,10}) +limit=(\d{1,10})(?: .*)?$")
_ERR = re.compile(r"FS ERR +([A-Z_]+)(?: +(.*))?$")
# The static-buffer example prints integer milliseconds; newer SDKs print fractions, so accept both.
_EI_TIMING = re.compile(rf"Timing: *DSP +({_FLOAT}) *ms, *inference +({_FLOAT}) *ms, *anomaly +({_FLOAT}) *ms",
                        re.IGNORECASE)
# Older SDKs fold the timing into the header: "Predictions (DSP: 0 ms., Classification: 12 ms., Anomaly: 0 ms.):"
_EI_OLD_HEADER = re.compile(rf"Predictions *\(DSP: *({_FLOAT}) *ms\.?, *Classification: *({_FLOAT}) *ms\.?,"
                            rf" *Anomaly: *({_FLOAT}) *ms\.?\) *:?$", re.IGNORECASE)
_EI_HEADER = re.compile(r"Predictions *:?$")
# A transcript pasted from a chat or an issue often loses the line break: "Predictions: value: 0.36065".
_EI_INLINE = re.compile(rf"Predictions *: *([^:\s][^:]*?): *({_FLOAT})$", re.IGNORECASE)
# The static-buffer example's own failures ("ERR: Failed to run classifier (-5)", a wrong features[] size).
_EI_ERR = re.compile(r"(ERR:.*|The size of your 'features' array is not correct.*)$")
# Predictions are indented under the header; the indent is what tells them from "run_classifier returned: 0".
_EI_PRED = re.compile(rf"[ \t]+([^:\s][^:]*?):[ \t]*({_FLOAT})$", re.IGNORECASE)
# No Edge Impulse line is this long; longer ones are noise and go to the log unparsed.
_EI_MAX_LEN = 512


def _ints(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _floats(text: str) -> tuple[float, ...] | None:
    if not text:
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        return None


def _bands(extra: str, n: int) -> tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...]:
    """The lo<level>=/hi<level>= pairs after y=, each with n numbers; a malformed or unpaired band is left out
    (the forecast itself still counts)."""
    lows: dict[str, tuple[float, ...]] = {}
    highs: dict[str, tuple[float, ...]] = {}
    for word in extra.split():
        key, _, value = word.partition("=")
        m = _BAND_KEY.fullmatch(key)
        if not m:
            continue  # a field from a newer board
        values = _floats(value)
        if values is None or len(values) != n:
            continue
        level = f"{float(m.group(2)):g}"
        (lows if m.group(1).lower() == "lo" else highs)[level] = values
    return tuple((level, lows[level], highs[level]) for level in sorted(set(lows) & set(highs), key=float))


def parse_line(line: str) -> Record:
    """One line from the board (with or without its line ending) -> a typed record; never raises."""
    raw = line.rstrip("\r\n")
    text = raw.strip()
    if text.startswith("FS "):
        rec = _parse_fs(text)
        if rec is not None:
            return rec
        return Other(raw)
    if len(text) > _EI_MAX_LEN:
        return Other(raw)
    m = _EI_TIMING.match(text)
    if m:
        return EiTiming(*(float(g) for g in m.groups()))
    m = _EI_OLD_HEADER.match(text)
    if m:
        return EiTiming(*(float(g) for g in m.groups()))
    if _EI_HEADER.match(text):
        return EiPredictionsHeader()
    m = _EI_INLINE.match(text)
    if m:
        return EiPrediction(m.group(1).strip(), float(m.group(2)))
    m = _EI_ERR.match(text)
    if m:
        return Err("EI", m.group(1).strip())
    m = _EI_PRED.match(raw.rstrip())
    if m:
        return EiPrediction(m.group(1).strip(), float(m.group(2)))
    return Other(raw)


_ALERT_FLOATS = ("y", "lo", "hi")
_ALERT_INTS = ("target", "run", "ms", "limit")


def _alert(text: str) -> Alert | None:
    """FS ALERT k=<k> key=value ...: k is required; a band alert without kind= is kind "band"."""
    fields: dict = {}
    extra = []
    for word in text[len("FS ALERT"):].split():
        key, eq, value = word.partition("=")
        if not eq:
            return None
        if key in _ALERT_FLOATS:
            v = _floats(value)
            if v is None or len(v) != 1:
                return None
            fields[key] = v[0]
        elif key in _ALERT_INTS or key == "k":
            n = _ints(value)
            if n is None:
                return None
            fields[key] = n
        elif key in ("kind", "level"):
            fields[key] = value
        else:
            extra.append((key, value))
    if "k" not in fields:
        return None
    fields.setdefault("kind", "band")
    return Alert(extra=tuple(extra), **fields)


def _parse_fs(text: str) -> Record | None:
    if text.startswith("FS ALERT"):
        return _alert(text)
    if text.startswith("FS READY"):
        fields = dict(part.split("=", 1) for part in text[len("FS READY"):].split() if "=" in part)
        if not all(k in fields for k in _READY_KEYS):
            return None
        nums = {k: _ints(fields[k]) for k in ("window", "features", "horizon", "targets", "arena")}
        if any(v is None for v in nums.values()):
            return None
        return Ready(model=fields["model"], dtype=fields["dtype"], **nums)
    m = _RESULT.match(text)
    if m:
        y = _floats(m.group(3))
        return None if y is None else Result(int(m.group(1)), int(m.group(2)), y, _bands(m.group(4), len(y)))
    m = _DONE.match(text)
    if m:
        return Done(int(m.group(1)))
    m = _PACE.match(text)
    if m:
        return Pace(int(m.group(1)), int(m.group(2)))
    m = _ERR.match(text)
    if m:
        return Err(m.group(1), (m.group(2) or "").strip())
    return None


def format_value(value: float) -> str:
    """The shortest text that reads back (strtof / float32) as the same float32."""
    f = np.float32(value)
    if not np.isfinite(f):
        raise StudioError(f"A window value is {value}, which the board cannot take.",
                          "Send windows without missing or infinite values (fill gaps on the Data step).")
    pos = np.format_float_positional(f, unique=True, trim="-")
    sci = np.format_float_scientific(f, unique=True, trim="-", exp_digits=1)
    return pos if len(pos) <= len(sci) else sci


def format_p_command(window_values: Sequence[Sequence[float]] | np.ndarray) -> str:
    """``P v1,v2,...\\n`` for a (window, features) array in the data's own units, time-major."""
    arr = np.asarray(window_values, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise StudioError(f"A window must be a table of steps x features; got shape {arr.shape}.",
                          "Pick a test window from the current run.")
    return "P " + ",".join(format_value(v) for v in arr.reshape(-1)) + "\n"


def format_r_command(reading: Sequence[float] | np.ndarray) -> str:
    """``R v1,...,vF\n``: one reading (all features of one time step, data units) for the board's ring buffer."""
    arr = np.asarray(reading, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise StudioError("A reading needs one value per input feature; got none.", "Send all features of one time step.")
    return "R " + ",".join(format_value(v) for v in arr) + "\n"


def parse_p_command(line: str) -> np.ndarray:
    """The values of a ``P`` line as float32 (what the board reads); used by tests and scripted boards."""
    text = line.strip()
    if not text.startswith("P "):
        raise ValueError("not a P command")
    return np.array([float(v) for v in text[2:].split(",")], dtype=np.float32)


# --- bytes from the wire --------------------------------------------------------------------------

_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def decode_bytes(raw: bytes) -> str:
    """Bytes -> printable text for the log; never raises.

    UTF-8 is kept (a sketch may print a degree sign); anything else, and control bytes, become ``\\xNN``
    so garbage is visible rather than silently dropped or able to mangle the log display.
    """
    text = raw.decode("utf-8", errors="backslashreplace")
    if all(c.isprintable() or c in "\t\r\n" for c in text):
        return text
    return "".join(c if (c.isprintable() or c in "\t\r\n") else f"\\x{ord(c):02x}" for c in text)


def unreadable_ratio(raw: bytes | bytearray | Iterable[int]) -> float:
    """Share of bytes that are neither printable ASCII nor line endings."""
    data = bytes(raw)
    if not data:
        return 0.0
    bad = sum(1 for b in data if b not in _TEXT_BYTES)
    return bad / len(data)


@dataclass
class TextHealth:
    """Keeps the last ``span`` received bytes and says whether they look like text.

    A wrong baud rate turns every character into a few bytes with the high bit set, framing junk and NULs;
    our protocol is plain ASCII, so a high share of such bytes over recent traffic names the cause.
    A short burst (the ESP32 boot ROM, a cable wiggle) does not trip it: ``min_bytes`` must be seen first.
    """
    span: int = 256
    threshold: float = 0.3
    min_bytes: int = 16
    _recent: bytearray = field(default_factory=bytearray)

    def feed(self, raw: bytes) -> None:
        self._recent += raw
        if len(self._recent) > self.span:
            del self._recent[: len(self._recent) - self.span]

    @property
    def ratio(self) -> float:
        return unreadable_ratio(self._recent)

    @property
    def unreadable(self) -> bool:
        return len(self._recent) >= self.min_bytes and self.ratio > self.threshold

    def reset(self) -> None:
        self._recent.clear()

