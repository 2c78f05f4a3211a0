"""Model step: architecture and backend, its size and the on-board estimate, and the training settings."""
from __future__ import annotations


import streamlit as st

from core import budget, jobs, models
from core.config import DEFAULTS, HELP
from core.defaults import choose_relative, choose_training, default_config, target_seasonality
from core.errors import StudioError
from core.quickcheck import as_rows, quick_check
from core.search import BUDGET_FACTOR
from core.training import TrainConfig
from studio import rewindow, state, ui

M, T = DEFAULTS["model"], DEFAULTS["train"]
K = "model."  # prefix of this page's widget keys
CUSTOM = "Custom"
ARCH = ("kind", "units", "layers", "dropout", "head_units")
TRAINING = ("epochs", "batch_size", "learning_rate", "patience", "seed")
# Kept when new windows re-seed the widgets: the search's result says itself whether it still applies.
KEEP = (K + "search_job", K + "search_apply_error")
ss = st.session_state

st.title("Model")
st.caption("Choose the network, see what it costs on the board, and set how it trains.")

windows = ui.require(state.get("windows"), "No windows yet. Choose targets, inputs and the window on the **Features** "
                     "step first.", "features")

wspec = windows.spec
residual_possible = all(i is not None for i in wspec.target_input_index)
dataset = state.get("dataset")


@st.cache_data(show_spinner=False, max_entries=32)
def _season(fingerprint: str, target: str, split_key: str, _dataset) -> int:
    """The first target's period on the training part (cached by content: detection reads the whole column)."""
    return int(target_seasonality(_dataset, target, windows.split).period or 0)


@st.cache_data(show_spinner=False, max_entries=32)
def _relative(fingerprint: str, targets: tuple, split_key: str, _dataset) -> bool:
    """Whether the defaults read inputs relative to the last value here (core.defaults.choose_relative)."""
    return choose_relative(_dataset, tuple(targets), windows.split) is not None


season = (_season(dataset.fingerprint or str(id(dataset)), wspec.targets[0], repr(windows.split), dataset)
          if dataset is not None else 0)
job = state.get("job")
busy = job is not None and job.status in ("queued", "running")


def _init_widgets() -> None:
    """Seed the widgets from the stored spec (or the defaults) once per set of windows."""
    key = str(id(windows))
    if ss.get(K + "windows") == key:
        return
    for k in [k for k in ss if isinstance(k, str) and k.startswith(K) and k not in KEEP]:
        del ss[k]
    ss[K + "windows"] = key
    spec = state.get("model_spec")
    if spec is not None:  # this set of windows already has a model (a project or a sweep put it there)
        base = spec.to_dict()
    else:
        # New windows dropped the old spec; the architecture chosen here last does not depend on the window's
        # shape, so it carries over (a user back from Features with a shorter window keeps GRU, 13 units).
        base = {**M, "residual": residual_possible and M["residual"] in ("auto", True), **state.get("model_choice", {})}
    for name in ARCH + ("backend",):
        ss[K + name] = base[name]
    form = base.get("target_form") or ("change_last" if base.get("residual") in ("auto", True) else "level")
    # the selectbox's choice: exponential smoothing is a change_linear spec with linear_base "smooth"
    ss[K + "target_form"] = models.form_choice(form, base.get("linear_base", "")) if residual_possible else "level"
    # Relative inputs (issue 34): as the model had them, else on where the level leaves the training range.
    ss[K + "relative"] = bool(base["relative"] if "relative" in base else residual_possible and dataset is not None
                              and _relative(dataset.fingerprint or str(id(dataset)), wspec.targets, repr(windows.split),
                                            dataset))
    ss[K + "preset"] = next((name for name, p in models.PRESETS.items()
                             if all(p[a] == base[a] for a in ARCH)), CUSTOM)
    # The studio's default training for this many windows (core/defaults.py): more epochs on short series.
    # Settings the user typed in themselves ("train_choice", a preference like "model_choice") win over it.
    cfg = state.get("train_config")
    ss[K + "train_why"] = None
    if cfg is None:
        cfg, why = choose_training(windows.count("train"))
        hand = state.get("train_choice", {})
        auto = [n for n in TRAINING if n not in hand]
        if auto:
            ss[K + "train_why"] = f"Preselected for {windows.count('train'):,} training windows: {why}"
        for name in TRAINING:
            ss[K + name] = hand.get(name, getattr(cfg, name))
        if hand:
            ss[K + "train_why"] = ((ss[K + "train_why"] + " ") if auto else "") + "Kept as you set them: " + \
                ", ".join(f"{n.replace('_', ' ')} {hand[n]:g}" for n in TRAINING if n in hand) + "."
    else:
        for name in TRAINING:
            ss[K + name] = getattr(cfg, name)


def _naive_margin(spec) -> float | None:
    """The naive margin the search's Use button set (the naive-equivalent default, issue 34), while the model is
    still that form at that window; any other form or window trains without it."""
    choice = state.get("naive_choice") or {}
    if choice.get("target_form") == spec.target_form and choice.get("window") == spec.window:
        return float(choice["margin"])
    return None


def _naive_backtest(spec) -> str | None:
    """The words of a backtest that overruled validation (core.backtest), carried with the margin above."""
    return (state.get("naive_choice") or {}).get("backtest") if _naive_margin(spec) is not None else None


def _hand_set(name: str) -> None:
    """A training setting typed in by hand: remembered, so new windows do not put the default back."""
    state.put("train_choice", {**state.get("train_choice", {}), name: ss[K + name]})


def _apply_preset() -> None:
    preset = models.PRESETS.get(ss[K + "preset"])
    if preset:
        for name in ARCH:
            ss[K + name] = preset[name]


def _mark_custom() -> None:
    # Editing any size by hand makes the choice no longer a preset.
    current = {a: ss[K + a] for a in ARCH}
    ss[K + "preset"] = next((n for n, p in models.PRESETS.items() if all(p[a] == current[a] for a in ARCH)), CUSTOM)


_init_widgets()
if busy:
    st.warning("A training is running. Stop it on the **Train** step (or let it finish) to change the model.")

# ------------------------------------------------------------------------------------- architecture
st.subheader("Architecture")
st.selectbox("Preset", list(models.PRESETS) + [CUSTOM], key=K + "preset", persist_state="session", on_change=_apply_preset,
             help=HELP.get("model.preset"), disabled=busy)
c1, c2, c3, c4 = st.columns(4)
c1.selectbox("Layer type", models.KINDS, key=K + "kind", persist_state="session",
             format_func=lambda k: models.KIND_LABELS[k],
             on_change=_mark_custom, help=HELP.get("model.kind"), disabled=busy)
c2.number_input("Units per layer", min_value=1, max_value=int(M["max_units"]), step=8,
                key=K + "units", persist_state="session",
                on_change=_mark_custom, help=HELP.get("model.units"), disabled=busy)
c3.number_input("Layers", min_value=1, max_value=models.MAX_LAYERS, step=1, key=K + "layers", persist_state="session",
                on_change=_mark_custom, help=HELP.get("model.layers"), disabled=busy)
c4.number_input("Dense head units", min_value=0, max_value=int(M["max_units"]), step=8,
                key=K + "head_units", persist_state="session",
                on_change=_mark_custom, help=HELP.get("model.head_units"), disabled=busy)
c1, c2, c3 = st.columns(3)
c1.slider("Dropout", min_value=0.0, max_value=0.9, step=0.05, key=K + "dropout", persist_state="session",
          on_change=_mark_custom,
          help=HELP.get("model.dropout"), disabled=busy)
c2.radio("Backend", models.BACKENDS, key=K + "backend", persist_state="session", horizontal=True,
         format_func=lambda b: {"keras": "Keras (TensorFlow)", "torch": "PyTorch"}[b],
         help=HELP.get("model.backend"), disabled=busy)
forms = models.FORM_CHOICES if residual_possible else ("level",)
c3.selectbox("The network predicts", forms, key=K + "target_form", persist_state="session", disabled=busy,
             format_func=lambda f: models.choice_label(f) + (f" ({season} steps)" if f in models.SEASONAL_FORMS else ""),
             help=HELP.get("model.residual"))
c3.checkbox("Inputs relative to the last value", key=K + "relative", persist_state="session",
            disabled=busy or ss[K + "target_form"] == "level", help=HELP.get("model.relative"))


def _set_log() -> None:
    """The log checkbox's callback: the windows laid out again with the targets read as log(value) (or not)."""
    try:
        rewindow.use_window(dataset, windows, wspec.window, log=bool(ss[K + "log"]))
    except StudioError as e:
        ss[K + "log_error"] = str(e)


ss[K + "log"] = bool(wspec.log)  # the windows' own form: a refused switch shows unticked again
c3.checkbox("Multiplicative (log) target", key=K + "log", disabled=busy or dataset is None, on_change=_set_log,
            help=HELP.get("model.log"))
if ss.get(K + "log_error"):
    st.error(ss.pop(K + "log_error"))
if residual_possible:
    st.caption("**Change from last value** / **last season**: the network learns how far each target moves from its last "
               "observed value, or from its value one season earlier at each forecast step; **last value and last season**: "
               "from the last value plus what followed it one season earlier; **a linear forecast**: from a ridge autoregression "
               "over the window, fitted when training starts (the network starts at it and keeps it unless training "
               "beats it on validation); **exponential smoothing**: from Holt-Winters run over the window, its "
               "parameters fitted on the training part (a window of three or four seasons suits it). The model adds "
               "that reference back, so every "
               "forecast, chart, export and board output is a level. **Choose on validation** below tries them all.")
else:
    st.caption("**Change from last value** needs every target among the input features; add the targets as inputs "
               "on the Features step to use it.")

try:
    chosen_form = models.choice_options(ss[K + "target_form"])
    form = chosen_form["target_form"]
    spec = models.ModelSpec.for_windows(wspec, backend=ss[K + "backend"], **chosen_form,
                                        season_period=season if form in models.PERIOD_FORMS else 0,
                                        relative=bool(ss[K + "relative"]) and form != "level",
                                        **{a: ss[K + a] for a in ARCH})
except StudioError as e:
    ui.show_error(e)
    st.stop()

# ----------------------------------------------------------------------------------------- the cost
st.subheader("Size and on-board estimate")
est = budget.estimate(spec, dtype=None)  # float32 and int8 side by side
c1, c2, c3, c4 = st.columns(4)
c1.metric("Parameters", f"{models.count_params(spec):,}")
c2.metric("Weights, float32", f"{models.model_size_bytes(spec, 'float32') / 1024:,.1f} KB")
c3.metric("Weights, int8", f"{models.model_size_bytes(spec, 'int8') / 1024:,.1f} KB")
c4.metric("Multiply-adds per forecast", f"{models.count_macs(spec):,}")
ui.table(est.rows(), {"dtype": "model"}, width="stretch")
for line in est.warnings:
    st.warning(line)
for line in est.advice:
    st.caption(f"Tip: {line}")
# est.basis already ends with the latency basis and its full stop: say each once.
st.caption(f"Sizes: {est.basis} {HELP.get('model.budget', '')}".strip())

# ---------------------------------------------------------------------------------------- training
st.subheader("Training settings")
c1, c2, c3, c4, c5 = st.columns(5)
c1.number_input("Epochs", min_value=1, max_value=int(T["max_epochs"]), step=1, key=K + "epochs", persist_state="session",
                help=HELP["train.epochs"], disabled=busy, on_change=_hand_set, args=("epochs",))
c2.number_input("Batch size", min_value=1, max_value=int(T["max_batch_size"]), step=8,
                key=K + "batch_size", persist_state="session",
                help=HELP["train.batch_size"], disabled=busy, on_change=_hand_set, args=("batch_size",))
c3.number_input("Learning rate", min_value=1e-6, max_value=1.0, step=1e-4, format="%.5f",
                key=K + "learning_rate", persist_state="session",
                help=HELP["train.learning_rate"], disabled=busy, on_change=_hand_set, args=("learning_rate",))
c4.number_input("Patience (epochs)", min_value=0, max_value=int(T["max_epochs"]), step=1,
                key=K + "patience", persist_state="session",
                help=HELP["train.patience"], disabled=busy, on_change=_hand_set, args=("patience",))
c5.number_input("Seed", min_value=0, max_value=2 ** 31 - 1, step=1, key=K + "seed", persist_state="session",
                help=HELP["train.seed"],
                disabled=busy, on_change=_hand_set, args=("seed",))
try:
    config = TrainConfig(epochs=int(ss[K + "epochs"]), batch_size=int(ss[K + "batch_size"]),
                         learning_rate=float(ss[K + "learning_rate"]), patience=int(ss[K + "patience"]),
                         seed=int(ss[K + "seed"]), naive_margin=_naive_margin(spec),
                         naive_backtest=_naive_backtest(spec)).validate()
except StudioError as e:
    ui.show_error(e)
    st.stop()
if ss.get(K + "train_why"):
    st.caption(ss[K + "train_why"])
if config.naive_margin is not None:
    st.caption(f"The search's naive-equivalent default: training starts at the naive forecast (zero change) and "
               f"replaces it only with an epoch that beats it on validation by {config.naive_margin:.0%}."
               + (" A backtest overruled the validation part, so the margin holds it there." if config.naive_backtest
                  else ""))
n_train = windows.count("train")
st.caption(f"{n_train:,} training windows: {-(-n_train // config.batch_size):,} batches per epoch.")
if n_train < config.batch_size:
    st.warning(f"Only {n_train} training windows, fewer than one batch of {config.batch_size}: lower the batch size.")

# A changed model or setting makes any earlier training stale; a running one is left alone (the
# widgets are disabled while it runs, so nothing here can change under it).
if not busy and (spec != state.get("model_spec") or config != state.get("train_config")):
    state.put("model_spec", spec)
    state.put("train_config", config)
    # a preference, not a stage object: it outlives new windows (see _init_widgets)
    state.put("model_choice", {name: getattr(spec, name) for name in ARCH + ("backend", "target_form", "relative",
                                                                             "linear_base")})
    state.invalidate("model")

# --------------------------------------------------------------------------------------- quick check
st.subheader("Quick check")
st.caption(HELP["quickcheck.run"])
qc_key = (id(windows), spec, config)
if st.button(f"Quick check (about {DEFAULTS['quickcheck']['budget_s']:.0f} s)", key=K + "qc_run", disabled=busy,
             help=HELP["quickcheck.run"]):
    with st.spinner("Training briefly and comparing with the baselines on the validation part..."):
        try:
            ss[K + "qc"] = (qc_key, quick_check(windows, spec, config))
        except StudioError as e:
            ui.show_error(e)
stored = ss.get(K + "qc")
if stored is not None and stored[0] == qc_key:
    qc = stored[1]
    (st.success if qc.beats_best else st.info if qc.beats_last_value else st.warning)(qc.summary)
    ui.table(as_rows(qc), width="content")
    for rec in qc.recommendations:
        st.markdown(f"- {rec.text}")
elif stored is not None:
    st.caption("The model or its settings changed since the last quick check; run it again to see the new numbers.")

# ------------------------------------------------------------------------------ choose on validation
st.subheader("Choose on validation")
st.caption(HELP["search.run"])


def _search_job(ctx, ds, base, options):
    from core.search import search_default

    # Runs on a worker thread: it reads only its arguments, never the session state.
    return search_default(ds, base, model_options=options, progress=lambda f, m: ctx.report(fraction=f, message=m),
                          should_stop=ctx.should_stop)


# What the search's result depends on, the window aside: the search chooses the window too, so its result
# outlives new windows (its Use button lays them out) and applies as long as the rest is the same.
search_key = (dataset.fingerprint or str(id(dataset)) if dataset is not None else None, wspec.targets, wspec.features,
              wspec.calendar, wspec.horizon, wspec.offset, wspec.stride, repr(windows.split), windows.scaler.kind,
              tuple((a, ss[K + a]) for a in ARCH + ("backend",)))
search_job = ss.get(K + "search_job")
if dataset is None:
    st.caption("The candidate search needs the dataset from the **Data** step.")
elif st.button("Choose target and window on validation (short trainings in the background, at most "
               f"{BUDGET_FACTOR * DEFAULTS['quickcheck']['budget_s']:.0f} s)", key=K + "search_run",
               disabled=busy or (search_job is not None and search_job[1].status in ("queued", "running"))):
    try:
        base = default_config(dataset, wspec.targets, features=tuple(c for c in wspec.features if c not in wspec.targets),
                              window=wspec.window, horizon=wspec.horizon, calendar=wspec.calendar, split=windows.split,
                              scaler_kind=state.get("scaler_kind"))
        job_ = jobs.pool().submit(state.session_id(), "search", _search_job, dataset, base,
                                  {a: ss[K + a] for a in ARCH + ("backend",)}, label="candidate search")
        ss[K + "search_job"] = (search_key, job_)
        st.rerun()
    except StudioError as e:
        ui.show_error(e)


def _apply_search(form: str, window: int, margin: float | None = None, relative: bool = False, log: bool = False,
                  backtest: str | None = None) -> None:
    """The Use button's callback: runs before the next full run draws the widgets, so they show what it set.
    ``margin``: the naive-equivalent default's ``naive_margin`` (issue 34), kept for that form and window;
    ``backtest``: its ``naive_backtest`` words when a backtest overruled validation."""
    state.put("naive_choice", {"target_form": form, "window": int(window), "margin": margin, "backtest": backtest}
              if margin else None)
    if window != wspec.window or log != wspec.log:
        try:
            rewindow.use_window(dataset, windows, window, log=log)
        except StudioError as e:
            ss[K + "search_apply_error"] = str(e)
            return
        # New windows re-seed this page's widgets (_init_widgets) from the architecture chosen last: the form too.
        state.put("model_choice", {**state.get("model_choice", {}), **models.choice_options(form), "relative": relative})
    else:
        ss[K + "target_form"] = form
        ss[K + "relative"] = relative


def _search_running() -> bool:
    j = ss.get(K + "search_job")
    return j is not None and j[1].status in ("queued", "running")


@st.fragment(run_every=0.5 if _search_running() else None)
def search_progress() -> None:
    """The running search's progress; once it ends, one full run draws its result (below, outside the fragment:
    a button in a fragment reruns only the fragment, which cannot redraw the target-form control above)."""
    held = ss.get(K + "search_job")
    if held is None:
        return
    j = held[1]
    if j.status in ("queued", "running"):
        p = dict(j.progress)
        st.progress(float(p.get("fraction", 0.0)), text=p.get("message", "Waiting for a free worker..."))
        if st.button("Stop the search", key=K + "search_stop"):
            j.stop()
        return
    if ss.get(K + "search_polling"):
        ss[K + "search_polling"] = False
        st.rerun(scope="app")


def search_result() -> None:
    held = ss.get(K + "search_job")
    if held is None or held[1].status in ("queued", "running"):
        return
    key, j = held
    if j.status == "failed":
        st.error(j.error or "The candidate search failed.")
        return
    result = j.result
    if result is None:
        st.caption("The search was stopped before any candidate finished.")
        return
    ui.table(result.rows(), width="content")
    st.markdown(result.config.reasons.get("search", ""))
    if ss.get(K + "search_apply_error"):
        st.error(ss.pop(K + "search_apply_error"))
    best = result.best
    if best is None:
        return
    if key != search_key:
        st.caption("The targets, inputs, horizon, split or architecture changed since this search; run it again for "
                   "current numbers.")
        return
    choice = models.form_choice(best.target_form, "smooth" if best.smooth else "")
    label = models.choice_label(choice)
    margin = result.config.train_config.naive_margin if result.naive is not None else None
    relative = bool(result.config.model_options.get("relative")) and best.target_form != "level"
    if choice == ss[K + "target_form"] and best.window == wspec.window and margin == _naive_margin(spec) \
            and relative == spec.relative and best.log == wspec.log:
        st.caption(f"In use: {label.lower()} with a window of {best.window} steps, the search's choice.")
        return
    what = label if best.window == wspec.window else f"{label} and a window of {best.window} steps"
    if best.log != wspec.log:
        what += ", multiplicative (log)" if best.log else ", additive (no log)"
    if best.window != wspec.window:
        st.info(f"A window of {best.window} steps won (this model reads {wspec.window}). The button below sets it "
                "on the **Features** step too and lays the windows out again; a model trained on the old windows "
                "is set aside.")
    st.button(f"Use {what[0].lower() + what[1:]}", key=K + "search_apply", disabled=busy, on_click=_apply_search,
              args=(choice, best.window, margin, relative, best.log,
                    result.config.train_config.naive_backtest if margin else None))


ss[K + "search_polling"] = _search_running()
search_progress()
search_result()

st.success(f"Model ready: {spec.label}. Next: **Train**.")
ui.link_to("train", quiet=True)
