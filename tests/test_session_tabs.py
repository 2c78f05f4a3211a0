"""Two tabs on one session address: each keeps the other's choices, and a tab shown a choice made in the
other says so once, instead of the last tab to run silently undoing the other's (issue W, item 8).

Each ``session_app`` is a browser tab with a Streamlit session id of its own; both carry the same
``?session=<token>``, as a second tab opened on a copied address does.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from core import sessions
from tests.apptest_sessions import session_app

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")
PAGE = {name: str(ROOT / "pages" / f) for name, f in
        (("data", "1_data.py"), ("features", "2_features.py"), ("model", "3_model.py"))}
NOTE = "These settings were changed in another tab; showing them now."


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("FS_WORKDIR_ROOT", str(tmp_path / "sessions"))


def run(at_or_widget):
    at = at_or_widget.run()  # a widget's run() runs its app and returns it
    assert not at.exception, at.exception
    return at


def tab(name: str, token: str | None = None, page: str = "features"):
    at = session_app(APP, f"tab-{name}")
    if token is not None:
        at.query_params["session"] = token
    at.switch_page(PAGE[page])
    return run(at)


def sidebar(at) -> str:
    return " ".join(str(e.value) for kind in ("success", "warning", "info") for e in getattr(at.sidebar, kind))


def number(at, key: str):
    return at.number_input(key=key).value


@pytest.fixture
def two_tabs():
    a = tab("a")
    token = a.session_state["fs.token"]
    b = tab("b", token)
    assert b.session_state["fs.key"] == a.session_state["fs.key"]
    return a, b, token


def test_each_tab_takes_the_others_choice_instead_of_undoing_it(two_tabs):
    a, b, token = two_tabs
    run(a.number_input(key="feat.stride").set_value(5))
    run(b.number_input(key="feat.window").set_value(12))
    # B shows A's stride with its own window, and says where the stride came from
    assert number(b, "feat.stride") == 5 and number(b, "feat.window") == 12
    assert NOTE in sidebar(b)
    run(a)  # A's next run: B's window, its own stride, and the same note
    assert number(a, "feat.stride") == 5 and number(a, "feat.window") == 12
    assert NOTE in sidebar(a)
    run(a)
    assert NOTE not in sidebar(a)  # once, not on every run
    spec = a.session_state["fs.window_spec"]
    assert (spec.window, spec.stride) == (12, 5)
    again = tab("reload", token)  # the session holds both choices, as a reload finds them
    assert number(again, "feat.stride") == 5 and number(again, "feat.window") == 12


def test_where_both_tabs_change_one_choice_the_first_stays_and_the_second_is_told(two_tabs):
    a, b, _ = two_tabs
    run(a.number_input(key="feat.stride").set_value(5))
    run(b.number_input(key="feat.stride").set_value(7))  # B had not seen A's 5
    assert number(b, "feat.stride") == 5 and NOTE in sidebar(b)
    assert b.session_state["fs.window_spec"].stride == 5
    run(b.number_input(key="feat.stride").set_value(7))  # now B has seen it: a change like any other
    assert number(b, "feat.stride") == 7 and NOTE not in sidebar(b)
    run(a)
    assert number(a, "feat.stride") == 7 and NOTE in sidebar(a)


def test_tabs_that_only_rerun_or_look_at_other_pages_change_nothing_and_say_nothing(two_tabs):
    a, b, _ = two_tabs
    run(a.number_input(key="feat.stride").set_value(5))
    run(b)
    assert number(b, "feat.stride") == 5
    for _ in range(2):
        b.switch_page(PAGE["model"])
        run(b)
        b.switch_page(PAGE["data"])
        run(b)
        run(a)
        assert number(a, "feat.stride") == 5 and NOTE not in sidebar(a)
    b.switch_page(PAGE["features"])
    run(b)
    assert number(b, "feat.stride") == 5 and NOTE not in sidebar(b)


def test_a_new_dataset_in_one_tab_reaches_the_other(two_tabs):
    a, b, _ = two_tabs
    a.switch_page(PAGE["data"])
    run(a)
    run(a.selectbox(key="data.sample").select("co2"))
    assert a.session_state["fs.dataset"].name == "co2.csv"
    run(b)
    assert b.session_state["fs.dataset"].name == "co2.csv" and NOTE in sidebar(b)
    columns = set(b.session_state["fs.dataset"].frame.columns)
    assert set(b.session_state["fs.window_spec"].targets) <= columns  # B's Features page built on co2


def test_the_entry_merges_key_by_key():
    entry = sessions.Entry("k")
    a = entry.sync("a", 0, {}, {"x": 1, "y": 1})
    b = entry.sync("b", 0, {}, {})
    assert b.taken == {"x": 1, "y": 1} and not b.overruled
    a2 = entry.sync("a", a.revision, a.base, {"x": 2, "y": 1})  # A changes x
    b2 = entry.sync("b", b.revision, b.base, {"x": 1, "y": 3})  # B changes y, not having seen x
    assert b2.taken == {"x": 2} and not b2.overruled and entry.values == {"x": 2, "y": 3}
    b3 = entry.sync("b", b2.revision, b2.base, {"x": 2})  # B removes y
    a3 = entry.sync("a", a2.revision, a2.base, {"x": 5, "y": 1})  # A changes x, and still holds y
    assert a3.dropped == ["y"] and a3.taken == {} and entry.values == {"x": 5}
    clash = entry.sync("b", b3.revision, b3.base, {"x": 9}, take=False)  # B writes x after A did: refused
    assert clash.overruled == ["x"] and entry.values == {"x": 5}
    assert entry.sync("b", b3.revision, clash.base, {"x": 9}).taken == {"x": 5}


def test_what_a_tabs_own_browser_said_stays_with_that_tab():
    entry = sessions.Entry("k")
    own = ("device.link_token",)
    a = entry.sync("a", 0, {}, {"device.link_token": "A", "x": 1}, own=own)
    b = entry.sync("b", 0, {}, {"device.link_token": "B"}, own=own)
    assert b.taken == {"x": 1} and not b.overruled  # B keeps its own link, takes the shared choice
    assert entry.sync("a", a.revision, a.base, {"device.link_token": "A", "x": 1}, own=own).taken == {}
    assert entry.values["device.link_token"] == "B"  # a reload takes the session's latest
