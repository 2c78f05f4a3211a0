"""Train a forecaster from a CSV and write its run directory (spec, weights, scaler, history, metrics).

Options left out take the studio's default configuration for this data (core/defaults.py: a window
covering the detected seasonal period, calendar features for a strong cycle, epochs sized to the
series), the same the Features and Model pages preselect; then the target form (level, change from
last value, change from last season) and the window (one or two periods) are chosen on the validation
part by a few short trainings (core/search.py; ``--no-search`` skips it, and a form or window given
on the command line is kept). Progress goes to stderr, one line per epoch; the metrics against the baselines and the
verdict go to stdout.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import display
from core.config import DEFAULTS, HELP
from core.errors import StudioError
from core.models import FORM_CHOICES, MAX_LAYERS, choice_options
from core.numbers import positive_float, positive_int
from studio.csv_args import add_csv_arguments, csv_options

MODEL_OPTIONS = ("units", "layers", "dropout", "head_units", "backend", "residual", "relative")


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _shares(text: str) -> tuple[float, float]:
    try:
        train, val = (float(t) for t in text.split(","))
    except ValueError:
        raise StudioError(f"--split {text!r} is not two shares.",
                          "Give the training and validation shares, e.g. --split 0.7,0.15 (the test part gets the rest).") from None
    return train, val


def add_arguments(p: argparse.ArgumentParser) -> None:
    f, t = DEFAULTS["features"], DEFAULTS["train"]
    max_window, max_horizon, max_units = int(f["max_window"]), int(f["max_horizon"]), int(DEFAULTS["model"]["max_units"])
    p.add_argument("--csv", required=True, metavar="FILE", help="the CSV file to learn from")
    p.add_argument("--target", action="append", required=True, metavar="COL",
                   help="column to forecast; repeat for several targets")
    p.add_argument("--features", type=_columns, default=None, metavar="A,B,...",
                   help="input columns besides the targets (the targets are always inputs); "
                        "default: every numeric column that varies")
    add_csv_arguments(p)  # --delimiter, --thousands, --skip-rows, --time-col(s) ...: as `studio inspect`
    p.add_argument("--window", type=positive_int("--window", max_window), default=None,
                   help="look-back steps per forecast (default: covers the seasonal period the data shows)")
    p.add_argument("--horizon", type=positive_int("--horizon", max_horizon), default=f["horizon"], help=f"steps forecast at once (default {f['horizon']})")
    p.add_argument("--calendar", type=_columns, default=None, metavar="hour,dow,doy",
                   help="calendar features (sin/cos of hour of day, day of week, day of year); 'none' for none "
                        "(default: the cycle of a strong seasonal period)")
    p.add_argument("--scaler", choices=("minmax", "standard"), default=f["scaler"], help="input scaling")
    p.add_argument("--split", default=None, metavar="TRAIN,VAL",
                   help=f"training and validation shares, oldest rows first; the test part gets the rest "
                        f"(default {f['train']:g},{f['val']:g})")
    # Model options default to None: None means "the studio's default", resolved in one place.
    p.add_argument("--model", dest="kind", choices=("lstm", "gru", "rnn", "dense"), default=None, help=HELP.get("model.kind"))
    p.add_argument("--units", type=positive_int("--units", max_units), default=None, help=HELP.get("model.units"))
    p.add_argument("--layers", type=positive_int("--layers", MAX_LAYERS), default=None, help=HELP.get("model.layers"))
    # ModelSpec.validate refuses NaN and anything outside [0, 1), with its own message.
    p.add_argument("--dropout", type=float, default=None, help=HELP.get("model.dropout"))
    p.add_argument("--head-units", type=positive_int("--head-units", max_units, minimum=0), default=None, help=HELP.get("model.head_units"))
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="predict the change from the last value (the older switch; --target-form says more)")
    p.add_argument("--target-form", choices=FORM_CHOICES, default=None,
                   help="what the network predicts before the model adds a reference back: the level, the change "
                        "from the last value, from the value one season earlier, from both, from a linear forecast "
                        "(a ridge autoregression over the window, fitted when training starts), or from exponential "
                        "smoothing (change_smooth: Holt-Winters over the window, fitted on the training part) "
                        "(default: chosen on the validation part)")
    p.add_argument("--relative", action=argparse.BooleanOptionalAction, default=None,
                   help="the network reads each window minus its last value (default: on where the level leaves the "
                        "training range or wanders like a random walk; needs a change target form)")
    p.add_argument("--log-target", action=argparse.BooleanOptionalAction, default=None,
                   help=HELP.get("model.log"))
    p.add_argument("--no-search", action="store_true",
                   help="skip the short trainings that choose the target form and window on the validation part; "
                        "use the rule-based default (change from last value, a window of one period)")
    p.add_argument("--search-budget", type=float, default=None, metavar="SECONDS",
                   help="the candidate search's safety stop on the clock (default 120 s); each trial is bounded by epochs, "
                        "so the clock decides the model only when it stops the search, which the result then says")
    p.add_argument("--backend", choices=("keras", "torch"), default=None, help=HELP.get("model.backend"))
    p.add_argument("--epochs", type=positive_int("--epochs", int(t.get("max_epochs", 1000))), default=None,
                   help=f"{HELP.get('train.epochs')} Default {t['epochs']}, more on short series.")
    p.add_argument("--batch-size", type=positive_int("--batch-size", int(t.get("max_batch_size", 4096))),
                   default=None, help=HELP.get("train.batch_size") + f" Default {t['batch_size']}, all the training "
                   "windows where there are fewer.")
    p.add_argument("--lr", type=positive_float("--lr", 10.0), default=t["learning_rate"], help=HELP.get("train.learning_rate"))
    p.add_argument("--patience", type=positive_int("--patience", 10_000, minimum=0), default=None, help=HELP.get("train.patience"))
    p.add_argument("--seed", type=positive_int("--seed", 2**31 - 1, minimum=0), default=t["seed"], help=HELP.get("train.seed"))
    p.add_argument("--interval-levels", default=None, metavar="80,95",
                   help="prediction band levels in percent, each between 1 and 99.9 with at most 2 decimals (default "
                        f"{','.join(str(v) for v in DEFAULTS['intervals']['levels'])})")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="directory to write the run into (replaced if it is an earlier run; refused if it holds anything else)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it is a file or a folder holding files that are not a run")


def metrics_table(metrics: dict) -> str:
    """``core.forecast.metrics_table`` as text: the model and each baseline, one line each, on the test part
    in the targets' units."""
    from core.forecast import metrics_table as table_of

    names = ["forecaster", "mae", "rmse", "smape", "mase"]
    rows = table_of(metrics).to_dict("records")  # the references (ETS, Theta) ride along from metrics.json
    # The same cells and headers the Train and Forecast pages show (core.display).
    return display.text_table([{n: r.get(n) for n in names} for r in rows], display.METRIC_HEADERS)


def run(args: argparse.Namespace) -> int:
    from core.data import load_dataset
    from core.defaults import default_config
    from core.training import TrainConfig, train
    from core.windows import SplitSpec, make_windows

    from core.files import prepare_out_dir

    if args.interval_levels is not None:
        from core.intervals import check_levels

        # The text as typed ("80,,95" is a mistake), refused before --out is touched or a minute of training.
        args.interval_levels = list(check_levels(args.interval_levels))
    # Checked before the data is read or a model trained: a folder that cannot take the run is refused now.
    out = prepare_out_dir(args.out, ("run",), force=args.force)
    csv = Path(args.csv)
    if not csv.is_file():
        raise StudioError(f"There is no file at {csv}.", "Check the path given to --csv.")
    dataset = load_dataset(csv, name=csv.name, csv=csv_options(args))
    for msg in dataset.report.get("problems", []) + dataset.report.get("blocking", []):
        print(f"warning: {msg}", file=sys.stderr, flush=True)  # rows dropped or filled in, readings assumed
    targets = tuple(dict.fromkeys(args.target))
    missing = [c for c in targets + tuple(args.features or ()) if c not in dataset.numeric_columns]
    if missing:
        raise StudioError(f"Column(s) {', '.join(map(repr, missing))} are not numeric columns of {csv.name}.",
                          f"Use one of: {', '.join(dataset.numeric_columns)}.")
    calendar = None if args.calendar is None else tuple(c for c in args.calendar if c.lower() != "none")
    split = SplitSpec(*_shares(args.split)) if getattr(args, "split", None) else None
    defaults = default_config(dataset, targets, features=args.features, window=args.window, horizon=args.horizon,
                              calendar=calendar, split=split, scaler_kind=args.scaler, log=bool(args.log_target))
    given = {k: getattr(args, k) for k in ("kind",) + MODEL_OPTIONS if getattr(args, k) is not None}
    if args.target_form is not None:
        given.update(choice_options(args.target_form))  # change_smooth: change_linear from exponential smoothing
        given.pop("residual", None)
    if args.search_budget is not None and not args.search_budget > 0:
        raise StudioError(f"--search-budget must be a positive number of seconds; got {args.search_budget}.",
                          "Give e.g. --search-budget 45, or --no-search to skip the search.")
    # Refuse bad options before any search training: a wrong batch size must not cost the search's budget first.
    defaults.model_spec(**given)
    TrainConfig(epochs=defaults.train_config.epochs if args.epochs is None else args.epochs,
                batch_size=args.batch_size or defaults.train_config.batch_size,
                learning_rate=args.lr, patience=defaults.train_config.patience if args.patience is None else args.patience,
                seed=args.seed).validate()
    if args.log_target:  # a value <= 0 is refused now, with its row, not after every search trial fails on it
        from core.windows import check

        check(dataset, defaults.window_spec, defaults.split, defaults.scaler_kind)
    search = None
    forms = ((args.target_form,) if args.target_form else
             ("change_last",) if args.residual else ("level",) if args.residual is False else None)
    if not args.no_search and not (forms and args.window is not None):
        from core.search import FORMS, search_default

        print("default: choosing the target form and window on the validation part (short trainings; "
              "--no-search skips this)", file=sys.stderr, flush=True)
        search = search_default(
            dataset, defaults, model_options={k: v for k, v in given.items()
                                              if k not in ("residual", "target_form", "linear_base")},
            forms=forms or FORMS, windows=(defaults.window_spec.window,) if args.window is not None else None,
            budget_s=args.search_budget, log=args.log_target,
            progress=lambda f, m: print(f"search {f:.0%}: {m}", file=sys.stderr, flush=True))
        defaults = search.config
        if forms and search.best is not None:  # the user's form is what was searched; the window came from the search
            for key in ("target_form", "linear_base", "residual"):
                given.pop(key, None)
    spec = defaults.window_spec
    windows = make_windows(dataset, spec, defaults.split, scaler_kind=defaults.scaler_kind)
    model_spec = defaults.model_spec(**given)
    d = defaults.train_config
    config = TrainConfig(epochs=d.epochs if args.epochs is None else args.epochs, batch_size=args.batch_size or d.batch_size,
                         learning_rate=args.lr, patience=d.patience if args.patience is None else args.patience,
                         seed=args.seed, naive_margin=d.naive_margin, naive_backtest=d.naive_backtest).validate()
    for key in ("features", "window", "calendar", "training", "search"):
        if key in defaults.reasons and not defaults.reasons[key].endswith("as chosen."):
            print(f"default: {defaults.reasons[key]}", file=sys.stderr, flush=True)

    counts = windows.counts()
    print(f"{dataset.name}: {len(dataset.frame):,} rows; windows train {counts['train']:,}, "
          f"val {counts['val']:,}, test {counts['test']:,}; model {model_spec.label}", file=sys.stderr, flush=True)

    def on_epoch(rec: dict) -> None:
        val = f"  val_loss {rec['val_loss']:.5g}" if rec["val_loss"] is not None else ""
        print(f"epoch {rec['epoch']}/{config.epochs}  loss {rec['loss']:.5g}{val}  {display.duration(rec['seconds'])}",
              file=sys.stderr, flush=True)

    result = train(windows, model_spec, config, out, on_epoch=on_epoch, dataset=dataset,
                   interval_levels=args.interval_levels)
    if search is not None:
        result.info["search"] = search.to_dict()  # what was tried and why it won, kept with the run
        result.save()
    info = result.info
    ended = " (early stopping)" if info.get("early_stopped") else ""
    print(f"best epoch {info.get('best_epoch')} of {info.get('epochs_run')}{ended}; run written to {result.run_dir}",
          file=sys.stderr, flush=True)
    lin = info.get("linear_reference")
    if lin:  # change_linear: what the fitted reference shrinks toward, and how hard
        how = (lin["words"] + ", fitted on the training part" if None in lin["penalties"] else
               f"ridge autoregression {lin['words']}, fitted on {lin['train_windows']:,} training windows, chosen on "
               f"the {lin['chosen_on']}")
        print(f"linear reference: {how}", file=sys.stderr, flush=True)
    # The Train page's words: windows (one forecast each) and the time points they forecast.
    print(f"Test metrics on {display.readable(result.metrics.get('n_windows', counts['test']))} test windows forecasting "
          f"{display.readable(result.metrics.get('points'))} time points, in {', '.join(targets)}'s units:")
    print(metrics_table(result.metrics))
    if result.metrics.get("verdict"):
        print(result.metrics["verdict"])
    if result.metrics.get("references_note"):
        print(result.metrics["references_note"])
    from core.intervals import summary_lines

    for line in summary_lines(result.intervals):
        print(line)
    if result.metrics.get("weak"):
        train_share, val_share = defaults.split.train, defaults.split.val
        bigger = max(round(train_share - 0.1, 2), 0.05)
        print(f"{result.metrics['weak']} Here: --split {bigger:g},{val_share:g} gives the test part "
              f"{1 - bigger - val_share:.0%} of the rows; add a smaller --window if training runs short.")
    return 0
