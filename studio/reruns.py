"""What Streamlit does after every script run that a training studio must not pay for (issue T).

After each run of the script (and each run of a polling fragment: the Train page's live progress
reruns every second while a training runs) Streamlit:
- calls ``keras.backend.clear_session()`` whenever Keras is imported (``_clean_problem_modules``),
  which on the TensorFlow backend resets the default graph, clears TensorFlow's kernel cache and runs a
  full garbage collection, while a training in the job pool is using that very state;
- runs ``gc.collect(2)`` (``runner.postScriptGC``) over a heap that holds TensorFlow and PyTorch.
Sampled with py-spy during a browser training of the bundled sample's default configuration, the
script thread spent about 85% of its samples in those two calls, and the training that takes 7 s in
a plain process ran for minutes (BENCHMARKS.md). The studio keeps no Keras state between reruns that
would need clearing (every model is built from its spec), so both are switched off once per server:
``runner.postScriptGC = false`` in .streamlit/config.toml (and here, for servers started elsewhere),
and the Keras clean-up is replaced by one that keeps Streamlit's other clean-up (matplotlib figures).
"""
from __future__ import annotations

import sys
from typing import Any, cast


def _clean_problem_modules_but_keras() -> None:
    """Streamlit's post-run clean-up without the Keras session reset (matplotlib's figures still close)."""
    if "matplotlib.pyplot" in sys.modules:
        try:
            cast("Any", sys.modules["matplotlib.pyplot"]).close("all")
        except Exception:  # noqa: S110 - as Streamlit's own: a failed close must not end the app
            pass


# Streamlit's own clean-up, kept for the test that shows what it did.
streamlit_clean_up: Any = None


def keep_frameworks_between_reruns() -> bool:
    """Switch off the post-run Keras reset and full GC; True when both are off. Safe to call every run."""
    global streamlit_clean_up
    done = True
    try:
        from streamlit.runtime.scriptrunner import script_runner

        current = getattr(script_runner, "_clean_problem_modules", None)
        # A Streamlit without the function has nothing to switch off.
        if current is not None and current is not _clean_problem_modules_but_keras:
            streamlit_clean_up = current
            script_runner._clean_problem_modules = _clean_problem_modules_but_keras
    except ImportError:
        done = False
    try:
        from streamlit import config

        if config.get_option("runner.postScriptGC"):
            config.set_option("runner.postScriptGC", False)
    except Exception:  # an option Streamlit renamed or removed: nothing to switch off
        done = False
    return done
