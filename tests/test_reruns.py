"""Streamlit's post-run Keras reset and full GC are off in the studio's server (studio/reruns.py, issue T)."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_post_run_clean_up_no_longer_resets_keras(monkeypatch):
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    from studio import reruns

    assert reruns.keep_frameworks_between_reruns()
    assert reruns.keep_frameworks_between_reruns()  # again, as every rerun of app.py calls it: still ours
    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    # Streamlit's own clean-up resets the Keras session (what made a browser training minutes long) ...
    reruns.streamlit_clean_up()
    assert calls == [1]
    # ... the one its script runner now calls does not.
    script_runner._clean_problem_modules()
    assert calls == [1]
    assert script_runner._clean_problem_modules is reruns._clean_problem_modules_but_keras


def test_no_full_garbage_collection_after_each_run():
    from streamlit import config

    from studio import reruns

    reruns.keep_frameworks_between_reruns()
    assert config.get_option("runner.postScriptGC") is False
    # and in the server's own config, for `streamlit run` from the repository root
    toml = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert toml["runner"]["postScriptGC"] is False
