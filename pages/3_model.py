"""Model step: architecture and backend, its size and the on-board estimate, and the training settings."""
from __future__ import annotations


import streamlit as st

from core import budget, models
from core.config import DEFAULTS, HELP
from core.defaults import choose_training
from core.errors import StudioError
from core.quickcheck import as_rows, quick_check
from core.training import TrainConfig
from studio import state, ui

M, T = DEFAULTS["model"], DEFAULTS["train"]
K = "model."  # prefix of this page's widget keys
CUSTOM = "Custom"
ARCH = ("kind", "units", "layers", "dropout", "head_units")
TRAINING = ("epochs", "batch_size", "learning_rate", "patience", "seed")
ss = st.session_state

st.title("Model")
st.caption("Choose the network, see what it costs on the board, and set how it trains.")

windows = ui.require(state.get("windows"), "No windows yet. Choose targets, inputs and the window on the **Features** "
                     "step first.", "features")

wspec = windows.spec
residual_possible = all(i is not None for i in wspec.target_input_index)
job = state.get("job")
busy = job is not None and job.status in ("queued", "running")


def _init_widgets() -> None:
    """Seed the widgets from the stored spec (or the defaults) once per set of windows."""
    key = str(id(windows))
    if ss.get(K + "windows") == key:
        return
    for k in [k for k in ss if isinstance(k, str) and k.startswith(K)]:
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
    ss[K + "residual"] = bool(base["residual"]) and residual_possible
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
c3.toggle("Change from last value", key=K + "residual", persist_state="session", disabled=busy or not residual_possible,
          help=HELP.get("model.residual"))
if residual_possible:
    st.caption("**Change from last value**: the network learns how far each target moves from its last observed "
               "value and the model adds that value back, so every forecast, chart, export and board output is a level. "
               "It usually beats the 'tomorrow = today' forecast.")
else:
    st.caption("**Change from last value** needs every target among the input features; add the targets as inputs "
               "on the Features step to use it.")

try:
    spec = models.ModelSpec.for_windows(wspec, backend=ss[K + "backend"], residual=bool(ss[K + "residual"]),
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
st.dataframe(est.rows(), hide_index=True, width="stretch")
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
                         seed=int(ss[K + "seed"])).validate()
except StudioError as e:
    ui.show_error(e)
    st.stop()
if ss.get(K + "train_why"):
    st.caption(ss[K + "train_why"])
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
    state.put("model_choice", {name: getattr(spec, name) for name in ARCH + ("backend", "residual")})
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
    st.dataframe(as_rows(qc), hide_index=True, width="content")
    for rec in qc.recommendations:
        st.markdown(f"- {rec.text}")
elif stored is not None:
    st.caption("The model or its settings changed since the last quick check; run it again to see the new numbers.")

st.success(f"Model ready: {spec.label}. Next: **Train**.")
ui.link_to("train", quiet=True)
