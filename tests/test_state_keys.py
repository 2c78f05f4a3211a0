"""Every session key a page keeps is declared in studio/state.py under its stage, and invalidate drops it
(issue M): a page's raw key that nobody declared outlives the data it was built from."""
from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from studio import state

ROOT = Path(__file__).resolve().parent.parent
RAW = re.compile(r"session_state(?:\[|\.get\(|\.pop\(|\.setdefault\()\s*\"([a-z_]+\.[a-z_]+)\"")
WIDGET = re.compile(r"key=\"([a-z_]+\.[a-z_]+)\"")


def _sources() -> dict[Path, str]:
    files = list((ROOT / "pages").glob("*.py")) + list((ROOT / "studio").glob("*.py"))
    return {f: f.read_text(encoding="utf-8") for f in files}


def test_every_raw_page_key_is_declared_under_a_stage():
    declared = {k for keys in state.PAGE_KEYS.values() for k in keys}
    widgets = {k for text in _sources().values() for k in WIDGET.findall(text)}
    internal = {"fs.notice", "fs.start_over", "fs.token", "fs.key"}
    missing = {}
    for path, text in _sources().items():
        for key in RAW.findall(text):
            if key not in declared and key not in widgets and key not in internal:
                missing.setdefault(key, path.name)
    assert not missing, f"session keys kept by pages but not declared in studio/state.PAGE_KEYS: {missing}"
    assert set(state.PAGE_KEYS) <= set(state.STAGES)


def _script():
    import streamlit as st

    from studio import state

    if "seeded" not in st.session_state:
        st.session_state["seeded"] = True
        for keys in state.PAGE_KEYS.values():
            for key in keys:
                st.session_state[key] = "old"
        state.put("export_dir", "somewhere")
        state.invalidate(st.query_params.get("stage", "data"))
    st.text(",".join(sorted(k for keys in state.PAGE_KEYS.values() for k in keys if k in st.session_state)))


def test_invalidate_drops_the_page_keys_of_every_later_stage():
    at = AppTest.from_function(_script)
    at.query_params["stage"] = "export"
    at.run()
    assert not at.exception
    kept = set(at.text[0].value.split(","))
    expected = {k for s in ("train", "export") for k in state.PAGE_KEYS.get(s, ())}
    # stages up to and including "export" keep theirs; the device stage's are gone
    assert kept == expected, kept
