"""Train step: a background training the page polls; live loss curves, stop, and the verdict."""
from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from core import display
from core.config import HELP
from core.errors import StudioError
from core.training import TrainingJob
from core.forecast import metrics_table
from studio import forecast_view as fv
from studio import state, ui

POLL_S = 1.0


st.title("Train")
st.caption("Training runs in the background: you can leave this page, reload it, or close the tab and come back "
           "later with this page's address (it holds your session).")

windows, spec, config = state.get("windows"), state.get("model_spec"), state.get("train_config")
if windows is None or spec is None or config is None:
    st.info("Choose the model and its training settings on the **Model** step first.")
    ui.link_to("model")
    st.stop()

job: TrainingJob | None = state.get("job")


def _running(j: TrainingJob | None) -> bool:
    return j is not None and j.status in ("queued", "running")


st.markdown(f"**{spec.label}** · {config.epochs} epochs, batch {config.batch_size}, learning rate "
            f"{config.learning_rate:g}, patience {config.patience}, seed {config.seed} · "
            f"{windows.count('train'):,} training / {windows.count('val'):,} validation windows")



def _start() -> None:
    """Button callback: runs before the page is drawn, so the buttons already show the new state."""
    current = state.get("job")
    if _running(current):
        st.session_state["train.message"] = "A training is already running. Stop it first, or wait for it to finish."
        return
    run_dir = state.workdir() / "runs" / time.strftime("run-%Y%m%d-%H%M%S")
    new = TrainingJob(state.get("windows"), state.get("model_spec"), state.get("train_config"), run_dir,
                      owner=state.session_id(), dataset=state.get("dataset"))
    try:
        new.start()
    except StudioError as e:
        st.session_state["train.message"] = str(e)
        return
    state.invalidate("train")  # the old run and everything exported from it are stale now
    state.pop("run")
    state.put("job", new)


def _stop() -> None:
    current = state.get("job")
    if current is not None:
        current.stop()


c1, c2, _ = st.columns([1, 1, 4])
c1.button("Start training", type="primary", disabled=_running(job), key="train.start", on_click=_start)
c2.button("Stop", disabled=not _running(job), key="train.stop_button", help=HELP["train.stop"], on_click=_stop)
message = st.session_state.pop("train.message", None)
if message:
    st.warning(message)


def _loss_figure(history: list[dict]) -> go.Figure:
    epochs = [h["epoch"] for h in history]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epochs, y=[h["loss"] for h in history], name="training", mode="lines+markers"))
    if any(h.get("val_loss") is not None for h in history):
        fig.add_trace(go.Scatter(x=epochs, y=[h.get("val_loss") for h in history], name="validation",
                                 mode="lines+markers"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch",
                      yaxis_title="loss (MSE, scaled)", legend=dict(orientation="h", y=1.1))
    return fig


@st.fragment(run_every=POLL_S if _running(job) else None)
@ui.guarded("Train step (live progress)")  # a fragment reruns alone, outside the page's guard
def live_progress() -> None:
    current: TrainingJob | None = state.get("job")
    if current is None:
        st.caption("No training yet: press **Start training**.")
        return
    snap = current.snapshot()
    status = snap["status"]
    done_fraction = min(1.0, (snap["epoch"] + (snap["batch_fraction"] if status == "running" else 0)) / snap["epochs"])
    waiting = (f"Waiting for a free worker: position {snap['queue_position']} in the queue"
               if snap.get("queue_position") else "Starting...")
    label = {"queued": waiting, "running": f"Epoch {min(snap['epoch'] + 1, snap['epochs'])} of {snap['epochs']}",
             "done": "Finished", "stopped": "Stopped: the best weights so far are kept",
             "failed": "Failed"}[status]
    st.progress(1.0 if status == "done" else done_fraction, text=label)
    c1, c2, c3 = st.columns(3)
    c1.metric("Epochs done", f"{snap['epoch']} / {snap['epochs']}")
    c2.metric("Time per epoch", display.duration(snap["seconds_per_epoch"]))
    c3.metric("Time left (at most)", display.duration(snap["eta_s"]) if status == "running" else "-")
    if snap["history"]:
        st.plotly_chart(_loss_figure(snap["history"]), key="train.loss_chart")
    if status == "failed":
        st.error(snap["error"])
    if status in ("done", "stopped") and current.result is not None and state.get("run") is not current.result:
        state.put("run", current.result)
    if status in ("done", "stopped", "failed") and st.session_state.get("train.polling"):
        # This page was drawn while the job ran, so it is polling: redraw it whole, once, to stop
        # polling and show the results below.
        st.session_state["train.polling"] = False
        st.rerun()


st.session_state["train.polling"] = _running(job)
live_progress()

run = state.get("run")
if run is not None:
    st.subheader("Test results")
    metrics = run.metrics
    shown = fv.metrics_display(metrics_table(metrics))
    ui.table(shown, keep=tuple(shown.columns), width="stretch")  # formatted by fv.metrics_display
    verdict = metrics.get("verdict", "")
    if verdict:
        (st.success if metrics.get("beats_best") else st.warning)(verdict)
    info = run.info
    st.caption(f"Best epoch {info.get('best_epoch')} of {info.get('epochs_run')}"
               f"{' (early stopping)' if info.get('early_stopped') else ''}; status {run.status}; "
               f"metrics on {display.readable(metrics.get('n_windows'))} test windows forecasting "
               f"{display.readable(metrics.get('points'))} time points, in the targets' own units. Saved in `{run.run_dir}`.")
    ui.link_to("forecast")
