"""The linear reference (issue 34): a ridge autoregression over each target's own window rows that the
"change_linear" target form adds back, so the network learns only what a linear forecast misses.

Why: on short series no network beat the naive forecasts on validation, so the default fell back to them, while
exponential smoothing and Theta, which are linear filters of the past values, were 1.2-2x better (ShampooSales,
seatbelts, the Nile, daily births). A least-squares forecast over the window is the same kind of filter, fitted
directly; the network starts from it (its output layer at zero) and early stopping keeps it there when it has
nothing to add.

The fit is in the scaled (and, for a multiplicative target, log) units the network sees: for target j and forecast
step k, ``reference = bias[j, k] + sum_r weight[j, k, r] * x[r, column_j]`` over the window rows r. The weights sum
to 1 for every step (a series shifted by a constant gets the same forecast shifted), because the regression is on
changes: the features are each row minus the last row, the label the step's value minus a base forecast (the last
value, the same phase last season, or, on a short series, exponential smoothing run over the window
(core.smoothing_filter), whichever scores better), and the ridge penalty pulls toward that base, so heavy shrinkage
gives the base forecast back. The base and penalty are chosen on the validation windows (what the
search and early stopping use too; ``core.naive_default.LINEAR_Z`` asks more of this form for that reason), or, with
no validation part, on the newest fifth of the training windows; the fit itself uses the training windows only.

One arithmetic everywhere: ``reference_values`` sums the products in double in row order and rounds once to
float32, as fs_protocol.cpp does (a float multiply-add may be fused on the board and not on the host; in double the
product of two floats is exact, so fusing cannot change it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import StudioError

# Ridge penalties tried, per window and per unit of mean squared feature (so the grid means the same at any scale).
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
INNER_SHARE = 0.2   # newest share of the training windows the penalty is chosen on
BASE_WORDS = {"last": "the last value", "season": "the same phase last season",
              "smooth": "exponential smoothing (Holt-Winters) over the window"}
# The exponential smoothing base (core.smoothing_filter) on training parts of at most this many rows: the short
# series it is for; on long ones the ridge has windows enough, and the search keeps its time (the weather sample).
SMOOTH_MAX_ROWS = 2000
MIN_WINDOWS = 8     # fewer training windows than this: not enough to fit a line through a window


@dataclass(frozen=True)
class LinearReference:
    """Fitted weights (n_targets, horizon, window) and biases (n_targets, horizon), float32, scaled units."""

    weights: np.ndarray
    bias: np.ndarray
    bases: tuple = ("last",)    # per target, what the ridge shrinks toward: "last" value, "season" or "smooth"
    penalties: tuple = (0.0,)   # per target, the ridge penalty chosen; None: the base itself (``fit(base="smooth")``)

    def describe(self, targets=None) -> str:
        """In words, per target: what the fit shrinks toward and how hard (the command line and run.info say it)."""
        names = list(targets) if targets is not None else [f"target {j + 1}" for j in range(len(self.bases))]
        parts = [f"{BASE_WORDS.get(b, b)} itself, no ridge" if p is None else f"toward {BASE_WORDS.get(b, b)}, penalty {p:g}"
                 for b, p in zip(self.bases, self.penalties)]
        return parts[0] if len(parts) == 1 else "; ".join(f"{n}: {w}" for n, w in zip(names, parts))

    def to_lists(self) -> tuple[tuple, tuple]:
        """Flat tuples (target-major, then step, then row), what ModelSpec keeps and model_config.h prints."""
        return (tuple(float(v) for v in np.asarray(self.weights, np.float32).ravel()),
                tuple(float(v) for v in np.asarray(self.bias, np.float32).ravel()))

    @classmethod
    def from_lists(cls, weights, bias, n_targets: int, horizon: int, window: int) -> "LinearReference":
        w = np.asarray(weights, np.float32)
        b = np.asarray(bias, np.float32)
        if w.size != n_targets * horizon * window or b.size != n_targets * horizon:
            raise StudioError(f"The linear reference holds {w.size} weights and {b.size} biases, not the "
                              f"{n_targets * horizon * window} and {n_targets * horizon} a {window}-row window, "
                              f"horizon {horizon}, {n_targets} target(s) need.",
                              "Train the model again: its saved reference does not match its shapes.")
        return cls(w.reshape(n_targets, horizon, window), b.reshape(n_targets, horizon))


def _base_matrix(window: int, horizon: int, base: str, season_period: int, smooth=None) -> np.ndarray:
    """(horizon, window): each step's base forecast as weights on the window rows: the last row, the same phase
    one season back, or exponential smoothing's weights (``smooth``, core.smoothing_filter)."""
    if base == "smooth":
        return np.asarray(smooth, np.float64)
    if base == "season" and season_period >= 1:
        p = season_period
        rows = np.array([window - p + (k % p) for k in range(horizon)], np.int64)
    else:
        rows = np.full(horizon, window - 1, np.int64)
    out = np.zeros((horizon, window))
    out[np.arange(horizon), rows] = 1.0
    return out


def _design(X: np.ndarray) -> np.ndarray:
    """(n, window) target rows -> (n, window) features: each row minus the last row (the last is 0: dropped
    below), then a column of ones for the bias."""
    Z = X[:, :-1] - X[:, -1:]
    return np.hstack([Z, np.ones((len(X), 1))])


def _solve(Z: np.ndarray, T: np.ndarray, penalty: float) -> np.ndarray:
    n, d = Z.shape
    scale = float(np.mean(Z[:, :-1] ** 2)) if d > 1 else 1.0
    reg = np.full(d, penalty * n * max(scale, 1e-12))
    reg[-1] = 0.0  # the bias is not shrunk
    A = Z.T @ Z + np.diag(reg)
    try:
        return np.linalg.solve(A, Z.T @ T)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, Z.T @ T, rcond=None)[0]


def _weights(beta: np.ndarray, window: int, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients on (row - last row) and the bias -> weights on the rows themselves, plus each step's base."""
    h = beta.shape[1]
    w = np.zeros((h, window))
    w[:, :-1] = beta[:-1].T
    w[:, -1] = -beta[:-1].sum(axis=0)
    return w + base, beta[-1]


def fit_target(X: np.ndarray, Y: np.ndarray, season_period: int = 0, Xv=None, Yv=None, smooth=None) -> LinearReference:
    """Fit one target: ``X`` (n, window) its scaled input rows, ``Y`` (n, horizon) its scaled labels, oldest first.
    With ``Xv``, ``Yv`` (validation windows) the base and penalty are chosen there, else on the newest training fifth.
    ``smooth`` (horizon, window): exponential smoothing's weights, a third base to shrink toward."""
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    n, window = X.shape
    horizon = Y.shape[1]
    if n < MIN_WINDOWS:
        raise StudioError(f"The linear reference needs at least {MIN_WINDOWS} training windows; there are {n}.",
                          "Use another target form, a shorter window or horizon, or more data.")
    bases = ["last"] + (["season"] if 1 <= season_period <= window else []) + (["smooth"] if smooth is not None else [])
    Z = _design(X)
    if Xv is not None and len(Xv):
        Xv, Yv = np.asarray(Xv, np.float64), np.asarray(Yv, np.float64)
        cut, Zc, Xc, Yc = n, _design(Xv), Xv, Yv
    else:
        cut = n - max(2, int(round(INNER_SHARE * n)))
        Zc, Xc, Yc = Z[cut:], X[cut:], Y[cut:]
    best = None
    for base in bases:
        B = _base_matrix(window, horizon, base, season_period, smooth)
        T = Y - X @ B.T
        Tc = Yc - Xc @ B.T
        for penalty in PENALTIES:
            beta = _solve(Z[:cut], T[:cut], penalty)
            err = float(np.mean(np.abs(Zc @ beta - Tc)))
            if best is None or err < best[0] - 1e-12:
                best = (err, base, penalty)
    _, base, penalty = best
    B = _base_matrix(window, horizon, base, season_period, smooth)
    beta = _solve(Z, Y - X @ B.T, penalty)
    w, b = _weights(beta, window, B)
    return LinearReference(w[None].astype(np.float32), np.asarray(b, np.float32)[None], (base,), (float(penalty),))


_SMOOTHINGS: dict = {}   # (values' bytes hash, rows, period) -> Smoothing or None: a search fits each series once
_UNFITTED = object()


def smoothing_weights(values, season_period: int, window: int, horizon: int) -> np.ndarray | None:
    """(horizon, window) exponential smoothing weights for one target, its model fitted on ``values`` (the training
    part, scaled units); None on a series too long (``SMOOTH_MAX_ROWS``) or too short for it, or that does not fit."""
    from core.references import ReferenceUnavailable, fit_smoothing
    from core.smoothing_filter import holt_winters_rows

    v = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if len(v) > SMOOTH_MAX_ROWS or len(v) < 2 * int(window):
        return None
    key = (hash(v.tobytes()), len(v), int(season_period or 0))
    fitted = _SMOOTHINGS.get(key, _UNFITTED)  # one read: another session's search may clear the cache meanwhile
    if fitted is _UNFITTED:
        try:
            fitted = fit_smoothing(v, int(season_period or 0))
        except ReferenceUnavailable:
            fitted = None
        if len(_SMOOTHINGS) > 32:
            _SMOOTHINGS.clear()
        _SMOOTHINGS[key] = fitted
    return None if fitted is None else holt_winters_rows(fitted, window, horizon)


def fit(X: np.ndarray, Y: np.ndarray, target_input_index, season_period: int = 0, Xv=None, Yv=None,
        series=None, base: str = "") -> LinearReference:
    """Every target's reference from the training windows: ``X`` (n, window, inputs), ``Y`` (n, horizon, targets),
    both scaled, oldest first; ``Xv``, ``Yv`` the validation windows the base and penalty are chosen on; ``series``
    (rows, targets) the training part's target values, scaled, that exponential smoothing is fitted on (a third
    base; none without it). ``base`` "smooth": exponential smoothing itself for every target, no ridge and nothing
    chosen on validation (``ModelSpec.linear_base``)."""
    X = np.asarray(X)
    Y = np.asarray(Y)
    window, horizon = X.shape[1], Y.shape[1]
    smooth = [None if series is None else smoothing_weights(np.asarray(series)[:, j], season_period, window, horizon)
              for j in range(len(list(target_input_index)))]
    if base == "smooth":
        return _smoothing_itself(smooth, None if series is None else len(series), window, season_period, horizon)
    parts = [fit_target(X[:, :, int(c)], Y[:, :, j], season_period,
                        None if Xv is None else np.asarray(Xv)[:, :, int(c)],
                        None if Yv is None else np.asarray(Yv)[:, :, j], smooth[j])
             for j, c in enumerate(target_input_index)]
    return LinearReference(np.concatenate([p.weights for p in parts]), np.concatenate([p.bias for p in parts]),
                           tuple(p.bases[0] for p in parts), tuple(p.penalties[0] for p in parts))


def _smoothing_itself(smooth: list, rows: int | None, window: int, season_period: int, horizon: int) -> LinearReference:
    """Exponential smoothing's window weights as the reference of every target, or StudioError saying why it cannot
    run here (too long or too short a training part, a window under two seasons, a model that does not fit)."""
    if any(w is None for w in smooth):
        m = int(season_period or 0)
        why = ("no training values were given to fit it on" if rows is None else
               f"the training part has {rows:,} rows, more than the {SMOOTH_MAX_ROWS:,} it is fitted on" if rows > SMOOTH_MAX_ROWS
               else f"the window ({window} steps) holds less than two seasons ({m} steps each)" if m >= 2 and window < 2 * m
               else f"the training part ({rows:,} rows) is shorter than two windows, or the model did not fit on it")
        raise StudioError(f"Exponential smoothing cannot be the linear reference here: {why}.",
                          "Use the ridge linear forecast (change from a linear forecast) or another target form.")
    weights = np.stack([np.asarray(w, np.float32) for w in smooth])
    return LinearReference(weights, np.zeros((len(smooth), horizon), np.float32), ("smooth",) * len(smooth),
                           (None,) * len(smooth))


def reference_values(ref: LinearReference, X_scaled: np.ndarray, target_input_index) -> np.ndarray:
    """(n, horizon, targets) float32: each step's reference, summed as the firmware sums it (bias first, then the
    products in row order, in double, rounded once to float32)."""
    X = np.asarray(X_scaled, np.float32)
    w = np.asarray(ref.weights, np.float32).astype(np.float64)
    b = np.asarray(ref.bias, np.float32).astype(np.float64)
    n = X.shape[0]
    t, h, window = w.shape
    out = np.empty((n, h, t), np.float32)
    for j, c in enumerate(target_input_index):
        acc = np.broadcast_to(b[j], (n, h)).copy()
        col = X[:, :, int(c)].astype(np.float64)
        for r in range(window):  # row order, one add at a time: the firmware's order
            acc = acc + col[:, r:r + 1] * w[j, :, r][None, :]
        out[:, :, j] = acc.astype(np.float32)
    return out


def from_report(model: dict, targets: int, horizon: int, window: int) -> tuple[tuple, tuple]:
    """An export report's model entry -> its flat weights and biases as float32 values, refused unless there are
    exactly targets x horizon x window weights and targets x horizon biases, all finite (what the bundle prints)."""
    try:
        w = np.asarray(model.get("linear_weights") or (), np.float64).reshape(-1)
        b = np.asarray(model.get("linear_bias") or (), np.float64).reshape(-1)
    except (TypeError, ValueError):
        w = b = np.zeros(0)
    if w.size != targets * horizon * window or b.size != targets * horizon or not (np.all(np.isfinite(w))
                                                                                 and np.all(np.isfinite(b))):
        raise StudioError("The export's model adds a linear reference outside the network, but the report's linear "
                          f"weights ({w.size}) and biases ({b.size}) are not the {targets * horizon * window} and "
                          f"{targets * horizon} finite numbers its targets, horizon ({horizon}) and window ({window}) "
                          "need.", "Export the run again.")
    return tuple(float(v) for v in w.astype(np.float32)), tuple(float(v) for v in b.astype(np.float32))


# The newest training windows (and the oldest validation windows) a window-length screen fits and scores on
# (core.search_rules.linear_stretch): plenty for a ridge over a few hundred rows, a fraction of a second on 17,520 rows.
SCREEN_WINDOWS = 2000


def screen_error(windows, season_period: int = 0) -> float | None:
    """The linear reference alone at ``windows``' length: fitted on the newest ``SCREEN_WINDOWS`` training windows
    (base and penalty chosen on validation, as ``fit``), its mean absolute validation error in scaled units over
    every target; None without enough windows. A ridge, not a training: what a longer window gives the linear
    forecast, cheaply enough to decide whether a search trial at that window is worth its time."""
    idx = [int(i) for i in windows.spec.target_input_index if i is not None]
    if len(idx) != len(windows.spec.targets) or windows.count("train") < MIN_WINDOWS or not windows.count("val"):
        return None
    X = np.asarray(windows.X("train")[-SCREEN_WINDOWS:][:, :, idx])
    Y = np.asarray(windows.y("train")[-SCREEN_WINDOWS:])
    Xv = np.asarray(windows.X("val")[:SCREEN_WINDOWS][:, :, idx])
    Yv = np.asarray(windows.y("val")[:SCREEN_WINDOWS])
    lo, hi = windows.parts["train"]
    ref = fit(X, Y, range(len(idx)), season_period, Xv, Yv, series=np.asarray(windows.target_values[lo:hi]))
    return float(np.mean(np.abs(reference_values(ref, Xv, range(len(idx))).astype(np.float64) - Yv)))
