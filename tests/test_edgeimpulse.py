"""Edge Impulse deploy and profile through the real `edgeimpulse` SDK, against a local stand-in server.

The SDK is pointed at tests/ei_standin.py (a real HTTP server on 127.0.0.1) with EI_API_ENDPOINT or
``endpoint_url``; the tests check what reached the server (key header, upload, Regression, Arduino,
int8 calibration data) and that failures (401, 403, 500, a job that never ends, a server that never
answers, no server at all) become one clear StudioError each, with the key in none of them.
"""
from __future__ import annotations

import io
import socket
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.edge_impulse import client as ce
from core.config import DEFAULTS
from core.errors import StudioError
from tests.ei_standin import PROJECT_ID, StandIn
from tests.export_helpers import make_run

KEY = "ei_0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("ei") / "run", kind="lstm", window=12, n_features=3, units=8)


def _leftover_jobdirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("fs-ei-*")}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ fast


def test_multi_output_model_is_refused_before_any_upload(tmp_path):
    multi = make_run(tmp_path / "multi", horizon=3, n_targets=2)
    with StandIn(key=KEY) as s:
        with pytest.raises(StudioError) as e:
            ce.deploy(multi, api_key=KEY, endpoint_url=s.url)
        assert s.requests == []
    msg = str(e.value)
    assert "one output value" in msg and "6" in msg and "offline firmware bundle" in msg
    with pytest.raises(StudioError, match="one output value"):
        ce.profile(multi, api_key=KEY, endpoint_url="http://127.0.0.1:9/v1")


def test_missing_key_is_named(run, monkeypatch):
    monkeypatch.delenv("EI_API_KEY", raising=False)
    with pytest.raises(StudioError, match="No Edge Impulse API key"):
        ce.deploy(run, api_key="", endpoint_url="http://127.0.0.1:9/v1")
    with pytest.raises(StudioError, match="spaces"):
        ce.deploy(run, api_key="ei_abc def", endpoint_url="http://127.0.0.1:9/v1")


def test_unreachable_server_is_named_quickly(run):
    t0 = time.perf_counter()
    with pytest.raises(StudioError) as e:
        ce.deploy(run, api_key=KEY, endpoint_url=f"http://127.0.0.1:{_closed_port()}/v1")
    assert time.perf_counter() - t0 < 10
    assert "Cannot reach Edge Impulse at 127.0.0.1" in str(e.value) and KEY not in str(e.value)


def test_endpoint_setting_is_read_at_call_time(monkeypatch):
    monkeypatch.delenv("EI_API_ENDPOINT", raising=False)
    assert ce.endpoint() == DEFAULTS["export"]["ei_endpoint"]
    monkeypatch.setenv("EI_API_ENDPOINT", "http://127.0.0.1:1234/v1")
    assert ce.endpoint() == "http://127.0.0.1:1234/v1"
    with pytest.raises(StudioError, match="not an http"):
        ce._reachable("ftp://example.org/v1")


def test_standin_profile_answer_is_what_the_sdk_validates():
    """The profile path re-validates the whole response with pydantic; the stand-in must pass."""
    from edgeimpulse.model._functions.profile import ProfileResponse
    from edgeimpulse_api import GetPretrainedModelResponse

    s = StandIn()
    s.model = {"fileName": "saved_model.zip", "type": "saved_model", "inputs": [[1, 12, 3]], "outputs": [[1, 1]],
               "rep_shape": None, "device": "espressif-esp32", "profiled": True}
    s.jobs[101] = {"category": "profile", "polls": 3}
    parsed = GetPretrainedModelResponse.from_dict(s._pretrained())
    ProfileResponse.from_dict(parsed.to_dict())
    s.server.server_close()


def test_library_check_and_save(tmp_path):
    from tests.ei_standin import library_zip

    data = library_zip("proj", 36, "int8")
    assert ce.check_library(data).endswith("proj_inferencing.h")
    path = ce.save_library(tmp_path / "export", data)
    assert path.read_bytes() == data
    with pytest.raises(StudioError, match="not a zip"):
        ce.check_library(b"not a zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "x")
    with pytest.raises(StudioError, match="_inferencing.h"):
        ce.check_library(buf.getvalue())


# ------------------------------------------------------------------------------------------ through the SDK


@pytest.mark.slow
def test_deploy_int8_reaches_the_sdk_with_the_right_arguments(run, tmp_path, monkeypatch):
    before = _leftover_jobdirs()
    with StandIn(key=KEY) as s:
        monkeypatch.setenv("EI_API_ENDPOINT", s.url)  # the SDK's endpoint setting, as a user would set it
        monkeypatch.setenv("EI_API_KEY", "ei_wrong_key_from_env")  # an explicit key wins over the env
        messages: list[str] = []
        data = ce.deploy(run, api_key=KEY, int8=True, timeout=120, progress=messages.append)
        reqs = list(s.requests)
        model, saved = s.model, s.saved_parameters
    assert reqs and all(r["api_key"] == KEY for r in reqs)
    assert all("edgeimpulse-sdk/" in r["user_agent"] for r in reqs)
    upload = [r for r in reqs if r["path"].endswith(f"/api/{PROJECT_ID}/pretrained-model/upload")]
    assert len(upload) == 1
    assert upload[0]["fields"]["modelFileType"] == "saved_model"
    assert upload[0]["files"]["modelFile"]["filename"] == "saved_model.zip"
    rep = np.load(io.BytesIO(upload[0]["files"]["representativeFeatures"]["data"]), allow_pickle=False)
    # The same range-covering calibration data as the offline int8 export (issue L), not training windows alone.
    from core.export import calibration_windows

    expected = calibration_windows(run)[0]
    np.testing.assert_array_equal(rep, expected)
    assert rep.max() > np.asarray(run.samples["X_rep"]).max()
    # The service reads the SavedModel's signature: one window in, one value out (Regression's [1, 1]).
    assert model["inputs"] == [[1, 12, 3]] and model["outputs"] == [[1, 1]]
    assert saved == {"input": {"inputType": "other"}, "model": {"modelType": "regression"}}
    build = [r for r in reqs if r["path"].endswith("/jobs/build-ondevice-model")][0]
    assert build["query"]["type"] == "arduino"
    assert build["json"] == {"engine": "tflite", "modelType": "int8"}
    download = [r for r in reqs if r["path"].endswith("/deployment/download")][0]
    assert download["query"] == {"type": "arduino", "modelType": "int8", "engine": "tflite"}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        meta = z.read([n for n in names if n.endswith("model_metadata.h")][0]).decode()
    assert any(n.endswith("_inferencing.h") for n in names)
    assert "EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE 36" in meta
    assert any("Library ready" in m for m in messages)
    # Kept beside the export for the Edge Impulse sketch; the key is in no file and no message.
    path = ce.save_library(tmp_path / "export", data)
    assert KEY.encode() not in path.read_bytes()
    assert not any(KEY in m for m in messages)
    assert _leftover_jobdirs() <= before  # the private job folder (weights, SavedModel) is gone


@pytest.mark.slow
def test_deploy_float32_sends_no_calibration_data(run):
    with StandIn(key=KEY) as s:
        data = ce.deploy(run, api_key=KEY, int8=False, timeout=120, endpoint_url=s.url)
        upload = s.find("POST", "/pretrained-model/upload")[0]
        build = s.find("POST", "/jobs/build-ondevice-model")[0]
    assert "representativeFeatures" not in upload["files"]
    assert build["json"]["modelType"] == "float32"
    assert ce.check_library(data)


@pytest.mark.slow
def test_profile_returns_ram_rom_latency_for_the_esp32(run):
    with StandIn(key=KEY) as s:
        result = ce.profile(run, api_key=KEY, timeout=120, endpoint_url=s.url)
        upload = s.find("POST", "/pretrained-model/upload")[0]
        assert s.find("GET", f"/api/{PROJECT_ID}")  # the SDK checked the device against the project's list
        assert s.find("POST", "/pretrained-model/profile")
    assert upload["fields"]["device"] == DEFAULTS["export"]["ei_profile_device"] == result["device"]
    assert result["float32"] == {"ram": 61_000, "rom": 290_000, "arena": 57_000, "latency_ms": 2024,
                                 "supported": True, "error": None}
    assert result["int8"]["latency_ms"] == 1100


@pytest.mark.slow
@pytest.mark.parametrize("standin, expected", [
    (dict(key="ei_some_other_projects_key"), "refused the API key (401)"),
    (dict(key=KEY, forbidden=True), "refused the API key (403)"),
    (dict(key=KEY, fail={"/pretrained-model/upload": 500}), "server error (500)"),
], ids=["wrong-key-401", "forbidden-403", "server-500"])
def test_service_failures_become_clear_messages(run, standin, expected):
    with StandIn(**standin) as s:
        with pytest.raises(StudioError) as e:
            ce.deploy(run, api_key=KEY, timeout=60, endpoint_url=s.url)
    assert expected in str(e.value)
    assert KEY not in str(e.value)


@pytest.mark.slow
def test_a_job_that_never_finishes_times_out_and_is_cancelled(run):
    with StandIn(key=KEY, never_finish=True) as s:
        t0 = time.perf_counter()
        with pytest.raises(StudioError) as e:
            ce.deploy(run, api_key=KEY, timeout=4, endpoint_url=s.url)
        took = time.perf_counter() - t0
        cancelled = s.find("POST", "/cancel")
    assert "did not finish the deploy within 4 s" in str(e.value)
    assert cancelled and cancelled[0]["query"].get("forceCancel") == "true"
    assert took < 90


@pytest.mark.slow
def test_a_server_that_never_answers_is_stopped_at_the_deadline(run):
    with StandIn(key=KEY, hang={"/pretrained-model/upload"}) as s:
        t0 = time.perf_counter()
        with pytest.raises(StudioError) as e:
            ce.deploy(run, api_key=KEY, timeout=4, endpoint_url=s.url)
        took = time.perf_counter() - t0
    assert "did not answer within 4 s" in str(e.value)
    assert took < 90


_LOAD_SAVED = """
import sys, zipfile, tempfile, numpy as np, tensorflow as tf
z, x, out = sys.argv[1:4]
d = tempfile.mkdtemp()
zipfile.ZipFile(z).extractall(d)
import glob, os
root = os.path.dirname(glob.glob(d + '/**/saved_model.pb', recursive=True)[0])
m = tf.saved_model.load(root)
f = m.signatures['serving_default']
X = np.load(x).astype(np.float32)
ys = [list(f(tf.constant(X[i:i + 1])).values())[0].numpy().reshape(-1) for i in range(len(X))]
np.save(out, np.stack(ys))
"""


@pytest.mark.slow
def test_a_seasonal_change_model_reaches_edge_impulse_as_levels(tmp_path):
    """Issue 21: the model Edge Impulse receives adds the value one season earlier back itself, so its output
    is the host model's level forecast, not a change (checked by loading the uploaded SavedModel)."""
    import os
    import subprocess
    import sys

    seasonal = make_run(tmp_path / "run", kind="lstm", window=12, n_features=3, units=8,
                        target_form="change_season", season_period=6)
    assert seasonal.model_spec.target_form == "change_season"
    with StandIn(key=KEY) as s:
        ce.deploy(seasonal, api_key=KEY, int8=False, timeout=120, endpoint_url=s.url)
        upload = s.find("POST", "/pretrained-model/upload")[0]
    (tmp_path / "saved.zip").write_bytes(upload["files"]["modelFile"]["data"])
    X = np.asarray(seasonal.samples["X_test"], np.float32)[:8]
    np.save(tmp_path / "x.npy", X)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _LOAD_SAVED, str(tmp_path / "saved.zip"), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = np.load(tmp_path / "y.npy").reshape(-1)
    host = np.asarray(seasonal.samples["y_host"], np.float32)[:8].reshape(-1)
    np.testing.assert_allclose(got, host, atol=1e-5)
    # Not the change alone: a graph without the add-back would output host minus the value one season back.
    change = host - X[:, 12 - 6, 0]
    assert np.abs(got - change).max() > 1e-2


def test_the_offline_hint_names_the_bundle_section_it_points_at():
    """Issue 32: read on the Export page, "use the bundle on the Export page instead" pointed nowhere. The hint
    names the section by the heading the Export page shows (studio/bundle_ui.py draws it from the same name)."""
    from core.config import BUNDLE_SECTION

    assert f'"{BUNDLE_SECTION}"' in ce.OFFLINE_HINT and "on the Export page instead" not in ce.OFFLINE_HINT
    ui = (Path(__file__).resolve().parent.parent / "studio" / "bundle_ui.py").read_text(encoding="utf-8")
    assert "st.subheader(BUNDLE_SECTION)" in ui
