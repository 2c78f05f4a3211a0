"""Sweep step: train several window sizes, layer kinds and widths as queued jobs, compare them in one
table with the board budget as a filter, and continue with the best run."""
from __future__ import annotations


import streamlit as st

from core import jobs, sweep
from core.config import DEFAULTS
from core.errors import StudioError
from core.models import KIND_LABELS, KINDS
from core.training import TrainConfig
from core.windows import largest_window, make_windows
from studio import state, ui

CFG = DEFAULTS["sweep"]
K = "sweep."  # prefix of this page's widget keys
ss = st.session_state

st.title("Sweep")
st.caption("Train several configurations side by side and keep the best one that fits the board. "
           "Trainings wait in the studio's shared queue, so a room full of sweeps cannot overload the machine.")

dataset, windows = state.get("dataset"), state.get("windows")
if dataset is None or windows is None:
    ui.require(None, "No windows yet. Choose targets, inputs and the window on the **Features** step first.", "features")

wspec = windows.spec
owner = state.session_id()
# A trial is the Model step's configuration with only the sweep's axes (window, layer type, units) varied.
model_spec = ui.require(state.get("model_spec"), "The sweep varies the **Model** step's network: choose it there "
                        "first (its target form, training settings and backend are every trial's).", "model")
config: TrainConfig = state.get("train_config") or TrainConfig()
options = sweep.model_options(model_spec)
longest = largest_window(dataset.frame.index, windows.split, wspec.horizon, wspec.offset)
window_choices = sorted({w for w in (12, 24, 48, 96, 168, 336, wspec.window) if 1 <= w <= longest})

# ------------------------------------------------------------------------------------------ the grid
st.subheader("Configurations")
st.caption(f"Every trial is the Model step's configuration ({sweep.settings_words(options, config)}) with only the "
           "window, layer type and units below varied. Change the rest on the **Model** step.")
c1, c2, c3 = st.columns(3)
picked_windows = c1.multiselect("Window sizes (look-back)", window_choices, key=K + "windows", persist_state="session",
                                default=[w for w in CFG["windows"] if w in window_choices] or [wspec.window],
                                help="Each window size is a separate set of training windows over the same split.")
picked_kinds = c2.multiselect("Layer types", list(KINDS), key=K + "kinds", persist_state="session", default=CFG["kinds"],
                              format_func=lambda k: KIND_LABELS[k],
                              help="Dense ignores the order of the steps: it is the baseline a recurrent layer must beat.")
picked_units = c3.multiselect("Units", CFG["unit_choices"], key=K + "units", persist_state="session", default=CFG["units"],
                              help="Width of each layer; cost on the board grows with units squared.")

st.subheader("Board budget")
b1, b2, b3 = st.columns([1, 1, 2])
max_latency = float(b1.number_input("Max latency (ms)", 1.0, 100_000.0, float(CFG["max_latency_ms"]),
                                    key=K + "latency", persist_state="session"))
max_ram = float(b2.number_input("Max RAM (KB)", 1.0, 8192.0, float(CFG["max_ram_kb"]),
                                key=K + "ram", persist_state="session"))
use_budget = b3.checkbox("Train only configurations within the budget", value=True,
                         key=K + "use_budget", persist_state="session",
                         help="Estimated for the XIAO ESP32S3 before training (float32 export): latency from the "
                              "multiply-adds, RAM = tensor arena + sketch. The Export step measures the real model.")
limits = (max_latency, max_ram) if use_budget else (None, None)

trials, plan_error = [], None
try:
    trials = sweep.plan({"window": picked_windows, "kind": picked_kinds, "units": picked_units})
except StudioError as e:
    plan_error = e
if plan_error is not None:
    ui.show_error(plan_error)
    st.stop()

trials, cannot = sweep.unfit(wspec, trials, **options)
for t, why in cannot:
    st.warning(f"{t.label} is left out: {why}")
kept, over = sweep.split_by_budget(wspec, trials, *limits, **options)
preview = [{"configuration": t.label, **sweep.estimate(wspec, t, **options), "train": t in kept} for t in trials]
with st.expander(f"{len(kept)} of {len(trials)} configurations will train"
                 + (f"; {len(over)} are over the budget" if over else ""), expanded=bool(over)):
    ui.table(preview, sweep.ESTIMATE_HEADERS, width="stretch")

if st.button(f"Start sweep ({len(kept)} trainings)", type="primary", disabled=not kept, key=K + "start"):
    try:
        new = sweep.submit(dataset, wspec, windows.split, windows.scaler.kind, kept, config, state.workdir(), owner,
                           model_options=options)
    except StudioError as e:
        ui.show_error(e)
    else:
        state.put("sweep_jobs", (state.get("sweep_jobs") or []) + new)
        st.toast(f"{len(new)} trainings queued")


def _mine() -> list[jobs.Job]:
    """This session's sweep jobs, and only those: the pool is shared by every session."""
    return [j for j in (state.get("sweep_jobs") or []) if j.owner == owner]


def _busy() -> bool:
    return any(j.status not in jobs.FINISHED for j in _mine())


def _continue_with(job: jobs.Job) -> None:
    """Make the trial's run the session's run, with the windows and model it was trained on."""
    run = sweep.load(job)
    trained_on = run.dataset.get("fingerprint")
    if trained_on and dataset.fingerprint and trained_on != dataset.fingerprint:
        raise StudioError("This run was trained on another dataset than the one loaded now.",
                          "Load that dataset again on the Data step, or start a new sweep on this one.")
    same_windows = run.window_spec == wspec and run.split == windows.split
    new_windows = windows if same_windows else make_windows(dataset, run.window_spec, run.split, run.scaler.kind)
    state.invalidate("features")  # the old model, run, export and board belong to other settings
    state.put("window_spec", run.window_spec)
    state.put("split", run.split)
    state.put("scaler_kind", run.scaler.kind)
    state.put("windows", new_windows)
    state.put("model_spec", run.model_spec)
    state.put("train_config", run.train_config if isinstance(run.train_config, TrainConfig) else config)
    state.put("run", run)
    # The Features and Model pages seed their widgets once; forget those seeds so they show this run's choices
    # (their keys start "feat." and "model."; left in place, Features put its old window back and dropped the run).
    for key in [k for k in ss if isinstance(k, str) and k.startswith(("feat.", "model."))]:
        del ss[key]


@st.fragment(run_every=1.0 if _busy() else None)
@ui.guarded("Sweep step (results)")  # a fragment reruns alone, outside the page's guard
def results() -> None:
    mine = _mine()
    if not mine:
        st.caption("No sweep yet: pick the configurations and press **Start sweep**.")
        return
    stats = jobs.pool().stats()
    st.caption(f"Job queue ({stats['backend']}): {stats['running']} training of {stats['workers']} at once, "
               f"{stats['queued']} waiting across all sessions. **★**: the lowest test MAE among the finished runs "
               "within the board budget, marked **best** only when it also beats the best baseline. **configuration**: "
               "what the sweep varied; **from the Model step**: everything else each trial kept.")
    only = st.toggle("Show only models within the budget", key=K + "only_budget", persist_state="session", value=False)
    df = sweep.table(mine, *limits, only_within_budget=only)
    ui.table(df.drop(columns=["run dir"]), keep=("job",), width="stretch",
                 column_config={"best": st.column_config.TextColumn(width="medium"),
                                "from the Model step": st.column_config.TextColumn(width="large")})
    waiting = [j for j in mine if j.status not in jobs.FINISHED]
    if waiting:
        c1, c2 = st.columns([3, 1])
        by_id = {j.id: j for j in waiting}  # widgets hold ids: a Job (locks, events) cannot be copied into a widget
        chosen = c1.multiselect("Cancel or stop", list(by_id), key=K + "cancel_pick", persist_state="session",
                                format_func=lambda i: f"#{i} {by_id[i].label} ({by_id[i].status})")
        if c2.button("Cancel selected", disabled=not chosen, key=K + "cancel"):
            for i in chosen:
                by_id[i].stop()
        if c2.button("Cancel all", key=K + "cancel_all"):
            for j in waiting:
                j.stop()
    top = sweep.best(mine, *limits)
    top_loses = sweep.loses(top.result) if top is not None else None
    if top_loses:
        st.warning(f"No trial within the budget beats the best baseline: the lowest test error, #{top.id} "
                   f"{top.label}, {top_loses}. Do not ship it as it is: on the **Model** step try another target "
                   "form (Choose on validation) or more epochs, then sweep again.")
    finished = [j for j in mine if j.finished_ok and isinstance(j.result, dict)]
    if finished:
        st.subheader("Continue with a run")
        done = {j.id: j for j in finished}
        ids = list(done)
        pick_id = st.selectbox("Run", ids, index=ids.index(top.id) if top is not None and top.id in done else 0,
                               key=K + "pick", persist_state="session",
                                   format_func=lambda i: f"#{i} {done[i].label}: test MAE "
                               f"{sweep.finite(done[i].result.get('mae')) or float('nan'):.4g}"
                               + (("  (best within budget)" if not top_loses else
                                   f"  (lowest error within budget, but {top_loses})")
                                  if top is not None and i == top.id else ""))
        pick = done[pick_id]
        if st.button("Use this run", type="primary", key=K + "use"):
            try:
                _continue_with(pick)
            except StudioError as e:
                ui.show_error(e)
            else:
                st.success(f"{pick.label} is now the session's run: see **Forecast** and **Export**.")
    elif top is None and not waiting:
        st.warning("No trial finished with a model. Check the errors in the table.")
    if not _busy() and ss.get(K + "polling"):
        ss[K + "polling"] = False
        st.rerun()  # the whole page, once: stops the polling now that everything finished


ss[K + "polling"] = _busy()
results()
