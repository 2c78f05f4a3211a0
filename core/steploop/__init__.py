"""The step-loop form: a recurrent network exported as ONE time step, run in a loop by the firmware.

TFLite Micro has a fused LSTM kernel and nothing for GRU or SimpleRNN, which therefore export unrolled
(one copy of the cell per time step: export time, flatbuffer and arena all grow with the window). Here
the cell is exported as a one-step model instead:

    inputs:  x  (1, n_inputs)   this step's scaled inputs
             state (1, S)       every layer's state side by side (LSTM: h then c per layer), float
    outputs: state' (1, S)      the new states
             y  (1, horizon, n_targets)  the output head applied to the top layer's new h

The head runs on every step (a few hundred multiply-adds against the cell's thousands); the loop keeps
the last step's ``y``. The firmware (``fs_steploop.cpp``), the emulator and the export's TFLM check all
run the same loop: state = 0; for each step: state, y = step(x_t, state). The state lives in the
caller's float buffers between steps; in the int8 model the state tensors are int8 at the graph edge and
the loop dequantizes/requantizes them in float (``run_loop``). Measured drift: ``bench/bench_steploop.py``.

The graph is written directly from the canonical weights with TensorFlow ops (the same equations as the
Keras cells: SimpleRNN tanh, GRU ``reset_after=True`` with gates z, r, h, LSTM gates i, f, c, o), so both
backends' runs (PyTorch mapped to the canonical layout by ``core.models``) export the same way.

Read top-down: ``graph`` (the form, the one-step graph), ``loop`` (the loop on a runtime, the
conversion), ``forms`` (verification, the forms compared, the bundle's and emulator's needs).
"""
from core.steploop.graph import (FORMS, STEP_KINDS, convert_step, loop_numpy, numpy_forecast, numpy_states,
                                 representative_steps, state_size, step_function, tensor_layout)
from core.steploop.loop import (LoopStats, drift, run_loop, worker_convert)
from core.steploop.forms import (STEP_INVOKE_OVERHEAD_MS, StepRunner, TRACE_WINDOWS, bundle_shapes, choose_form,
                                 compare_forms, estimate_step_arena, estimate_step_flash, form_report, form_rows,
                                 resolve_form, verify)

__all__ = [
    "FORMS", "LoopStats", "STEP_INVOKE_OVERHEAD_MS", "STEP_KINDS", "StepRunner", "TRACE_WINDOWS", "bundle_shapes",
    "choose_form", "compare_forms", "convert_step", "drift", "estimate_step_arena", "estimate_step_flash",
    "form_report", "form_rows", "loop_numpy", "numpy_forecast", "numpy_states", "representative_steps",
    "resolve_form", "run_loop", "state_size", "step_function", "tensor_layout", "verify", "worker_convert"
]
