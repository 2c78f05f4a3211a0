"""The Edge Impulse SDK calls, in a child process started by ``core.edge_impulse.client``.

Why a child: the SDK sets no timeout on its HTTP requests and retries a refused connection ten times
with growing back-off, so a silent or unreachable server could hold the studio for minutes; a
child can be stopped at a deadline. The request (API key included) arrives as JSON on stdin; the key
is set on ``edgeimpulse.API_KEY`` in this process's memory only and never written anywhere.
The answer is a JSON file in the private job folder, with the library zip beside it.

The model uploaded is a TensorFlow SavedModel of the run's batch-1 Keras 2 graph (the same graph the
studio exports, so an LSTM stays fusable) with its (1, 1, 1) output flattened to (1, 1): Edge Impulse's
Regression type needs a single output of shape [1, 1].
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np


def _saved_model(req: dict, jobdir: Path) -> str:
    import tensorflow as tf

    from core import models

    spec = models.ModelSpec.from_dict(req["spec"])
    with np.load(jobdir / "weights.npz", allow_pickle=False) as z:
        weights = [z[f"w{i}"] for i in range(len(z.files))]
    model = models.load_canonical(models.build_tf_keras(spec, batch_size=1), weights)
    flat = tf.keras.layers.Reshape((spec.horizon * spec.n_targets,), name="value")(model.output)
    wrapped = tf.keras.Model(model.input, flat, name="forecast_regression")
    path = jobdir / "saved_model"
    wrapped.save(str(path), save_format="tf", include_optimizer=False)
    return str(path)


def _classify(e: BaseException) -> dict:
    """The error's kind and HTTP status, for the parent's message (the key never appears in either)."""
    from edgeimpulse import exceptions as eix
    from edgeimpulse_api import exceptions as apix

    status = getattr(e, "status", None)
    if isinstance(e, (apix.UnauthorizedException, apix.ForbiddenException)) or status in (401, 403):
        kind = "auth"
    elif isinstance(e, apix.ServiceException) or (isinstance(status, int) and status >= 500):
        kind = "server"
    elif isinstance(e, eix.TimeoutException):
        kind = "timeout"
    elif isinstance(e, eix.MissingApiKeyException):
        kind = "auth"
    elif isinstance(e, (eix.InvalidModelException, eix.InvalidDeployParameterException)):
        kind = "model"
    elif isinstance(e, eix.InvalidTargetException):
        kind = "target"
    elif isinstance(e, eix.UnsuccessfulRequestException):
        kind = "refused"
    elif isinstance(e, (ConnectionError, OSError)) or type(e).__module__.startswith("urllib3"):
        kind = "network"
    else:
        kind = "other"
    reason = getattr(e, "reason", None)
    body = getattr(e, "body", None)
    detail = str(reason or e)
    if body:
        try:
            detail = json.loads(body).get("error") or detail
        except (ValueError, AttributeError, TypeError):
            detail = f"{detail}: {str(body)[:200]}"
    return {"kind": kind, "status": status, "detail": f"{type(e).__name__}: {detail}"[:600]}


def main() -> int:
    req = json.loads(sys.stdin.read())
    jobdir = Path(req["jobdir"])
    key = req.pop("api_key")
    result: dict = {"ok": False}
    try:
        import edgeimpulse as ei
        from edgeimpulse.util import configure_generic_client, default_project_id_for

        ei.API_KEY = key
        ei.API_ENDPOINT = req["endpoint"]
        # The key is checked first (the SDK's own first call), so a wrong key is reported in seconds,
        # before the SavedModel is written.
        default_project_id_for(configure_generic_client(key=key, host=ei.API_ENDPOINT))
        model = _saved_model(req, jobdir)
        # The parent's deadline for the upload, the server's jobs and the download starts now.
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        if req["action"] == "deploy":
            rep = np.load(jobdir / "rep.npy", allow_pickle=False) if req.get("int8") else None
            out = ei.model.deploy(
                model=model,
                model_output_type=ei.model.output_type.Regression(),
                model_input_type=ei.model.input_type.OtherInput(),
                representative_data_for_quantization=rep,
                deploy_model_type="int8" if req.get("int8") else "float32",
                engine="tflite",
                deploy_target=req.get("target", "arduino"),
                timeout_sec=req["timeout"],
            )
            data = out.getvalue() if hasattr(out, "getvalue") else bytes(out)
            (jobdir / "library.zip").write_bytes(data)
            result = {"ok": True, "bytes": len(data)}
        elif req["action"] == "profile":
            res = ei.model.profile(model=model, device=req.get("device") or None, timeout_sec=req["timeout"])
            result = {"ok": True, "profile": json.loads(json.dumps(res.to_dict(), default=str))}
        else:
            result = {"ok": False, "kind": "other", "detail": f"unknown action {req['action']}"}
    except BaseException as e:  # everything becomes an answer; the parent words it for the user
        result = {"ok": False, **_classify(e)}
        if result["kind"] == "other":
            result["trace"] = traceback.format_exc()[-2000:]
    text = json.dumps(result, default=str).replace(key, "***") if key else json.dumps(result, default=str)
    tmp = jobdir / "result.json.part"
    tmp.write_text(text)
    os.replace(tmp, jobdir / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
