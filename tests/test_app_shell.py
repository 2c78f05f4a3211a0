"""The app shell: every step is reachable, and a new session starts on the bundled sample."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "studio" / "app.py")


def test_new_session_starts_on_the_sample_on_any_step():
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    assert not at.exception
    ds = at.session_state["fs.dataset"]
    assert ds.name == "weather.csv" and len(ds.frame) > 8000
    # the Features page works on it without a visit to the Data page first
    assert "no dataset" not in " ".join(i.value for i in at.info).lower()


def test_sidebar_names_the_dataset():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert "weather.csv" in " ".join(m.value for m in at.sidebar.markdown)


def test_sidebar_shows_the_choice_made_on_this_click():
    """The summary is drawn after the page, so a change on a page is in the sidebar at once, not one click late."""
    at = AppTest.from_file(APP, default_timeout=120)
    for page in ("2_features.py", "3_model.py"):  # the Model page takes the windows the Features page made
        at.switch_page(str(ROOT / "pages" / page))
        at.run()
        assert not at.exception
    at.number_input(key="model.units").set_value(13).run()
    assert not at.exception
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "13 ×" in sidebar and "weather.csv" in sidebar


def test_choices_survive_a_visit_to_another_step():
    """Streamlit forgets a widget's value once a run does not draw it; the studio's choices must not reset to
    each field's minimum (window 1, units 1, batch 1, learning rate 1e-6) when a user goes to Train and back."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    at.number_input(key="feat.stride").set_value(5).run()
    window = at.number_input(key="feat.window").value
    at.switch_page(str(ROOT / "pages" / "3_model.py"))
    at.run()
    at.number_input(key="model.units").set_value(13).run()
    defaults = {k: at.number_input(key=f"model.{k}").value for k in ("epochs", "batch_size", "learning_rate", "patience")}
    for page in ("4_train.py", "2_features.py", "3_model.py"):
        at.switch_page(str(ROOT / "pages" / page))
        at.run()
        assert not at.exception
        if page == "2_features.py":
            assert at.number_input(key="feat.window").value == window
            assert at.number_input(key="feat.stride").value == 5
    assert at.number_input(key="model.units").value == 13
    assert {k: at.number_input(key=f"model.{k}").value for k in defaults} == defaults
    spec, config = at.session_state["fs.model_spec"], at.session_state["fs.train_config"]
    assert spec.units == 13 and config.batch_size == defaults["batch_size"] and config.epochs == defaults["epochs"]


def test_model_choices_outlive_a_change_of_window():
    """The architecture (layer type, units, backend) does not depend on the window's length: going back to
    Features for a shorter window must not put the Model page back on the defaults."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    window = at.number_input(key="feat.window").value
    at.switch_page(str(ROOT / "pages" / "3_model.py"))
    at.run()
    at.selectbox(key="model.kind").select("gru").run()
    at.number_input(key="model.units").set_value(13).run()
    at.radio(key="model.backend").set_value("torch").run()
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    at.number_input(key="feat.window").set_value(window // 2).run()
    assert not at.exception
    at.switch_page(str(ROOT / "pages" / "3_model.py"))
    at.run()
    assert not at.exception
    assert at.selectbox(key="model.kind").value == "gru" and at.number_input(key="model.units").value == 13
    assert at.radio(key="model.backend").value == "torch"
    spec = at.session_state["fs.model_spec"]
    assert (spec.kind, spec.units, spec.backend, spec.window) == ("gru", 13, "torch", window // 2)


def test_hand_set_training_settings_survive_a_new_horizon():
    """Issue 18 item 5: changing the horizon put Epochs back from 15 to the default without a word."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    at.switch_page(str(ROOT / "pages" / "3_model.py"))
    at.run()
    default_epochs = at.number_input(key="model.epochs").value
    hand = 15 if default_epochs != 15 else 16
    at.number_input(key="model.epochs").set_value(hand).run()
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    at.number_input(key="feat.horizon").set_value(at.number_input(key="feat.horizon").value + 1).run()
    assert not at.exception
    at.switch_page(str(ROOT / "pages" / "3_model.py"))
    at.run()
    assert not at.exception
    assert at.number_input(key="model.epochs").value == hand
    assert at.session_state["fs.train_config"].epochs == hand
    assert any(f"epochs {hand}" in c.value for c in at.caption)  # and it says so


def test_the_model_page_size_caption_says_each_thing_once():
    """Issue 18 item 9: the caption repeated its latency sentence and ended "PSRAM.."."""
    at = AppTest.from_file(APP, default_timeout=120)
    for page in ("2_features.py", "3_model.py"):
        at.switch_page(str(ROOT / "pages" / page))
        at.run()
    caption = next(c.value for c in at.caption if c.value.startswith("Sizes:"))
    assert caption.count("calibrated on SPEC") == 1 and ".." not in caption


def test_ordinals_and_the_stride_caption():
    """Issue 18 item 9: "every 2th window"."""
    from core.dataset import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 112)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "112th"]
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(str(ROOT / "pages" / "2_features.py"))
    at.run()
    at.number_input(key="feat.stride").set_value(2).run()
    assert any("every 2nd window" in c.value for c in at.caption)


def test_chart_toolbar_stays_off_the_titles():
    """Issue 18 item 9: Plotly's toolbar, drawn across the top right, covered the residual charts' titles."""
    import pandas as pd

    from studio import forecast_view as fv

    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=5, freq="h"), "target": ["t"] * 5,
                          "step": [1] * 5, "prediction": [1.0, 2, 3, 4, 5], "actual": [1.5, 2, 2.5, 4, 6],
                          "residual": [0.5, 0, -0.5, 0, 1]})
    for fig in fv.residual_figures(frame, "t", 1):
        assert fig.layout.modebar.orientation == "v" and fig.layout.title.xanchor == "left"
