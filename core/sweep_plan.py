"""A sweep's plan, before anything trains: the trials (window, kind, units, layers), what each takes from the
Model step, and the board estimates that filter them (``core.sweep`` queues and compares them)."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable

from core.config import DEFAULTS
from core.errors import StudioError
from core.models import KIND_LABELS, KINDS, ModelSpec, count_params

# Registered here rather than in core/config.py's literal so this stage's defaults travel with it;
# pages still read them from DEFAULTS["sweep"] like every other stage's.
DEFAULTS.setdefault("sweep", {
    # What the page offers first: two look-backs x the three recurrent kinds x two widths = 12 trials,
    # each a small model that trains in seconds to a minute on a laptop core.
    "windows": [24, 48], "kinds": ["lstm", "gru", "rnn"], "units": [8, 16],
    "unit_choices": [4, 8, 16, 32, 64, 128],
    # More trials than this in one sweep is a typo (or a sweep that takes the whole workshop's cores).
    "max_trials": 48,
    # The example budget: a forecast under 100 ms, and under 200 KB of the board's RAM.
    "max_latency_ms": 100.0, "max_ram_kb": 200.0,
    # Which export the estimates describe; float32 is what the Export step always produces.
    "dtype": "float32",
    # Progress from a running trial at most this often (a Ray report is a message to an actor).
    "report_every_s": 0.25,
    # A Ray worker asks its stop flag over the network, so at most this often.
    "stop_check_every_s": 0.5,
    # A shipped run directory (Ray) bigger than this is not a run: refuse to unpack it.
    "max_run_zip_mb": 512,
})
_CFG = DEFAULTS["sweep"]
@dataclass(frozen=True)
class Trial:
    """One configuration of the sweep; everything else comes from the session's own choices."""

    window: int
    kind: str
    units: int
    layers: int = 1

    @property
    def key(self) -> str:
        """A file-name-safe name, unique within a sweep (its run directory's name)."""
        return f"w{self.window}-{self.kind}{self.units}" + (f"x{self.layers}" if self.layers > 1 else "")

    @property
    def label(self) -> str:
        name = KIND_LABELS.get(self.kind, self.kind).split(" (")[0]
        size = f"{self.layers} x {name}({self.units})" if self.layers > 1 else f"{name}({self.units})"
        return f"{size}, window {self.window}"

    def to_dict(self) -> dict:
        return asdict(self)


def _ints(values: Any, name: str, lo: int, hi: int) -> list[int]:
    if isinstance(values, (int, str)):
        values = [values]
    out = []
    for v in values or []:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise StudioError(f"The sweep's {name} list holds {v!r}, which is not a whole number.",
                              f"Give {name} as whole numbers, e.g. 24, 48.") from None
        if n != float(v) or not lo <= n <= hi:
            raise StudioError(f"The sweep's {name} {v!r} is outside {lo}..{hi}.", f"Choose {name} between {lo} and {hi}.")
        out.append(n)
    return list(dict.fromkeys(out))


def plan(grid: dict[str, Any]) -> list[Trial]:
    """Every combination of the grid's ``window``, ``kind``, ``units`` (and optional ``layers``), in
    the order given, without repeats. Raises StudioError for an empty or oversized grid."""
    unknown = sorted(set(grid) - {"window", "kind", "units", "layers"})
    if unknown:
        raise StudioError(f"The sweep does not know the setting(s) {', '.join(unknown)}.",
                          "Sweep over window, kind, units and layers.")
    windows = _ints(grid.get("window"), "window", 1, int(DEFAULTS["features"]["max_window"]))
    units = _ints(grid.get("units"), "units", 1, int(DEFAULTS["model"]["max_units"]))
    layers = _ints(grid.get("layers", [1]), "layers", 1, 3)
    kinds_in = grid.get("kind")
    kinds = [kinds_in] if isinstance(kinds_in, str) else list(dict.fromkeys(kinds_in or []))
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise StudioError(f"Unknown layer kind(s) in the sweep: {', '.join(map(str, bad))}.",
                          f"Choose from {', '.join(KINDS)}.")
    missing = [n for n, v in (("window", windows), ("kind", kinds), ("units", units)) if not v]
    if missing:
        raise StudioError(f"The sweep needs at least one value for {', '.join(missing)}.",
                          "Pick at least one window size, one layer kind and one width.")
    trials = [Trial(w, k, u, 1 if k == "dense" else n) for w, k, u, n in itertools.product(windows, kinds, units, layers)]
    trials = list(dict.fromkeys(trials))  # dense ignores layers, so two layer counts can collapse
    limit = int(_CFG["max_trials"])
    if len(trials) > limit:
        raise StudioError(f"This grid makes {len(trials)} trainings; a sweep runs at most {limit}.",
                          "Pick fewer window sizes, kinds or widths, and sweep again around the best one.")
    return trials


def trial_spec(window_spec: Any, trial: Trial, **model_options: Any) -> tuple[Any, ModelSpec]:
    """The trial's window spec (the session's, with the trial's look-back) and its model spec."""
    ws = replace(window_spec, window=int(trial.window))
    options = {k: v for k, v in model_options.items() if k not in ("kind", "units", "layers", "window")}
    return ws, ModelSpec.for_windows(ws, kind=trial.kind, units=trial.units, layers=trial.layers, **options)


# What a trial takes from the Model step's spec: everything but the sweep's axes and the shapes the windows give.
FROM_MODEL = ("backend", "dropout", "head_units", "target_form", "season_period", "relative", "linear_base")


def model_options(model_spec: ModelSpec | None) -> dict:
    """The Model step's choices every trial keeps (target form and its season, backend, dropout, dense head):
    a trial is the Model step's configuration with only the sweep's window, kind, units and layers varied."""
    if model_spec is None:
        return {}
    return {name: getattr(model_spec, name) for name in FROM_MODEL}


def settings_words(options: dict, config: Any) -> str:
    """The settings a sweep's trials take from the Model step, in words (the table's "from the Model step")."""
    from core.models import FORM_CHOICES, choice_label, form_choice

    form = options.get("target_form")
    parts = []
    if form:
        season = int(options.get("season_period") or 0)
        choice = form_choice(form, options.get("linear_base", ""))
        label = choice_label(choice) if choice in FORM_CHOICES else form
        parts.append(label + (f" ({season} steps)" if season else ""))
    if config is not None:
        parts.append(f"{config.epochs} epochs, batch {config.batch_size}, learning rate {config.learning_rate:g}, "
                     f"patience {config.patience}, seed {config.seed}")
    if options.get("backend"):
        parts.append({"keras": "Keras", "torch": "PyTorch"}.get(options["backend"], options["backend"]))
    if options.get("relative"):
        parts.append("inputs relative to the last value")
    if options.get("dropout"):
        parts.append(f"dropout {options['dropout']:g}")
    if options.get("head_units"):
        parts.append(f"dense head {options['head_units']}")
    return "; ".join(parts)


def unfit(window_spec: Any, trials: Iterable[Trial], **model_options: Any) -> tuple[list[Trial], list[tuple[Trial, str]]]:
    """(trials whose model can be built, [(trial, why not)]): a seasonal target form needs a window that
    reaches back a season, so a short window of the sweep cannot take it."""
    ok, out = [], []
    for t in trials:
        try:
            trial_spec(window_spec, t, **model_options)
        except StudioError as e:
            out.append((t, e.problem))
        else:
            ok.append(t)
    return ok, out


def estimate(window_spec: Any, trial: Trial, dtype: str | None = None, **model_options: Any) -> dict:
    """Parameters and board estimates for a trial before it trains (core.budget on its ModelSpec)."""
    from core import budget

    _, spec = trial_spec(window_spec, trial, **model_options)
    b = budget.estimate(spec, dtype=dtype or _CFG["dtype"])
    return {"params": count_params(spec), "latency_ms": round(float(b.latency_ms), 2),
            "ram_kb": round(b.ram_needed_bytes / 1024, 1), "flash_kb": round(b.model_bytes / 1024, 1),
            "arena_in": b.arena_in, "fits": bool(b.fits), "dtype": b.dtype}


# ``estimate``'s keys as a table's headers, in words.
ESTIMATE_HEADERS = {"params": "parameters", "latency_ms": "latency ms (est.)", "ram_kb": "RAM KB (est.)",
                    "flash_kb": "flash KB (est.)", "arena_in": "tensor arena in", "fits": "fits the board",
                    "dtype": "model type", "train": "will train"}


def within_budget(est: dict, max_latency_ms: float | None = None, max_ram_kb: float | None = None) -> bool:
    """True when the estimate fits the board and the user's limits (None = no limit)."""
    if not est.get("fits", True):
        return False
    if max_latency_ms is not None and est["latency_ms"] > float(max_latency_ms):
        return False
    if max_ram_kb is not None and est["ram_kb"] > float(max_ram_kb):
        return False
    return True


def split_by_budget(window_spec: Any, trials: Iterable[Trial], max_latency_ms: float | None = None,
                    max_ram_kb: float | None = None, dtype: str | None = None,
                    **model_options: Any) -> tuple[list[Trial], list[tuple[Trial, dict]]]:
    """(trials within the budget, [(trial, its estimate)] of those over it): no core is spent training
    a model the board cannot run."""
    kept, over = [], []
    for t in trials:
        est = estimate(window_spec, t, dtype, **model_options)
        if within_budget(est, max_latency_ms, max_ram_kb):
            kept.append(t)
        else:
            over.append((t, est))
    return kept, over
