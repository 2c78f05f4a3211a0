"""A local stand-in for the Edge Impulse API: a real HTTP server on 127.0.0.1 in a thread.

It answers the calls ``edgeimpulse.model.deploy`` and ``edgeimpulse.model.profile`` (SDK 1.0.20)
make, in the order and JSON shapes of the service (read from the SDK's ``edgeimpulse_api`` models):
list projects, project info (profile devices), upload a pretrained model (multipart), job status and
logs, pretrained-model info, save parameters, profile, deployment targets, build job, download.
It inspects the uploaded SavedModel's serving signature for the input and output shapes, as the
service does, and serves an Arduino library zip sized to the input.

Every request is recorded (method, path, query, API key header, JSON body, multipart fields and
files) so tests check what the SDK sent. Failure modes: ``key`` (401 for any other key),
``forbidden`` (403), ``fail`` ({path_substring: status}), ``never_finish`` (jobs never end),
``hang`` ({path_substring}: the request is held open until the server stops).
"""
from __future__ import annotations

import datetime as _dt
import email.parser
import email.policy
import io
import json
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

PROJECT_ID = 4242
PROJECT_NAME = "forecast-studio-test"
DEVICES = ["espressif-esp32", "cortex-m4f-80mhz", "raspberry-pi-4"]
TARGETS = ["zip", "arduino", "wasm"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _signature_shapes(zip_bytes: bytes) -> tuple[list[list[int]], list[list[int]]]:
    """Input and output shapes of the uploaded SavedModel's serving_default signature."""
    from tensorflow.core.protobuf import saved_model_pb2

    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        pb = z.read("saved_model/saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb)
    sig = sm.meta_graphs[0].signature_def["serving_default"]

    def shapes(m) -> list[list[int]]:
        return [[int(d.size) for d in t.tensor_shape.dim] for _, t in sorted(m.items())]

    return shapes(sig.inputs), shapes(sig.outputs)


def library_zip(name: str, frame_size: int, model_type: str) -> bytes:
    """An Arduino library laid out as Edge Impulse builds it (headers, metadata, static_buffer example)."""
    lib = f"{name}_inferencing"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{lib}/library.properties", f"name={name.title()} Inferencing\nversion=1.0.1\n"
                                                f"includes={lib}.h\narchitectures=*\n")
        z.writestr(f"{lib}/src/{lib}.h", "#pragma once\n#include \"edge-impulse-sdk/classifier/ei_run_classifier.h\"\n")
        z.writestr(f"{lib}/src/model-parameters/model_metadata.h",
                   f"#define EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE {frame_size}\n"
                   f"#define EI_CLASSIFIER_LABEL_COUNT 1\n#define EI_CLASSIFIER_TFLITE_INPUT_QUANTIZED "
                   f"{1 if model_type == 'int8' else 0}\n")
        z.writestr(f"{lib}/examples/static_buffer/static_buffer.ino",
                   f"#include <{lib}.h>\nstatic const float features[] = {{}};\nvoid setup() {{}}\nvoid loop() {{}}\n")
    return buf.getvalue()


class StandIn:
    def __init__(self, key: str = "ei_test_key", forbidden: bool = False, fail: dict[str, int] | None = None,
                 never_finish: bool = False, hang: set[str] | None = None, job_polls: int = 2) -> None:
        self.key, self.forbidden = key, forbidden
        self.fail = dict(fail or {})
        self.never_finish, self.hang = never_finish, set(hang or ())
        self.job_polls = job_polls
        self.requests: list[dict] = []
        self.jobs: dict[int, dict] = {}
        self.model: dict | None = None
        self.saved_parameters: dict | None = None
        self._next_job = 100
        self._lock = threading.Lock()
        self._stop = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "StandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]

    def find(self, method: str, suffix: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"].endswith(suffix)]

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        u = urlparse(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = {"method": method, "path": u.path, "query": {k: v[0] for k, v in parse_qs(u.query).items()},
               "api_key": h.headers.get("x-api-key"), "user_agent": h.headers.get("User-Agent", ""),
               "json": None, "fields": {}, "files": {}}
        ctype = h.headers.get("Content-Type", "")
        if body and "json" in ctype:
            rec["json"] = json.loads(body)
        elif body and ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename():
                    rec["files"][name] = {"filename": part.get_filename(), "data": data}
                else:
                    rec["fields"][name] = data.decode()
        with self._lock:
            self.requests.append(rec)
        for frag in self.hang:
            if frag in u.path:
                self._stop.wait()  # hold the request open, like a server that never answers
                return
        for frag, status in self.fail.items():
            if frag in u.path:
                return self._send(h, status, {"success": False, "error": f"stand-in failure {status}"})
        if rec["api_key"] != self.key:
            return self._send(h, 401, {"success": False, "error": "Invalid API key"})
        if self.forbidden:
            return self._send(h, 403, {"success": False, "error": "This key has no access to the project"})
        try:
            status, payload = self._route(method, u.path, rec)
        except Exception as e:  # a stand-in bug must show up as a 500 the test sees, not a hung client
            status, payload = 500, {"success": False, "error": f"stand-in error {type(e).__name__}: {e}"}
        if isinstance(payload, tuple):  # (bytes, filename): a download
            data, filename = payload
            h.send_response(status)
            h.send_header("Content-Type", "application/zip")
            h.send_header("Content-Disposition", f"attachment; filename={filename}")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        self._send(h, status, payload)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    # ------------------------------------------------------------------ the API
    def _job(self, category: str) -> int:
        with self._lock:
            self._next_job += 1
            job_id = self._next_job
            self.jobs[job_id] = {"category": category, "polls": 0}
        return job_id

    def _route(self, method: str, path: str, rec: dict):
        p = path[len("/v1"):] if path.startswith("/v1") else path
        if method == "GET" and p == "/api/projects":
            return 200, {"success": True, "projects": [self._project()]}
        m = re.fullmatch(r"/api/(\d+)(/.*)?", p)
        if not m or int(m.group(1)) != PROJECT_ID:
            return 404, {"success": False, "error": "Project not found"}
        rest = m.group(2) or ""
        if method == "GET" and rest == "":
            return 200, self._project_info()
        if method == "POST" and rest == "/pretrained-model/upload":
            return self._upload(rec)
        jm = re.fullmatch(r"/jobs/(\d+)/(status|stdout|cancel)", rest)
        if jm:
            return self._job_call(int(jm.group(1)), jm.group(2))
        if method == "GET" and rest == "/pretrained-model":
            return 200, self._pretrained()
        if method == "POST" and rest == "/pretrained-model/save":
            self.saved_parameters = rec["json"]
            return 200, {"success": True}
        if method == "POST" and rest == "/pretrained-model/profile":
            if self.model is None:
                return 200, {"success": False, "error": "No pretrained model uploaded"}
            self.model["profiled"] = True
            return 200, {"success": True, "id": self._job("profile")}
        if method == "GET" and rest == "/deployment/targets/data-sources":
            return 200, {"success": True, "targets": [self._target(f) for f in TARGETS]}
        if method == "POST" and rest == "/jobs/build-ondevice-model":
            return 200, {"success": True, "id": self._job("build"), "deploymentVersion": 1}
        if method == "GET" and rest == "/deployment/download":
            if self.model is None:
                return 200, {"success": False, "error": "Nothing was built"}
            frame = int(np.prod(self.model["inputs"][0][1:]))
            kind = rec["query"].get("modelType", "float32")
            return 200, (library_zip(PROJECT_NAME.replace("-", "_"), frame, kind), f"{PROJECT_NAME}-arduino-v1.zip")
        return 404, {"success": False, "error": f"No route {method} {p}"}

    def _upload(self, rec: dict):
        files = rec["files"]
        if "modelFile" not in files:
            return 400, {"success": False, "error": "modelFile is required"}
        f = files["modelFile"]
        inputs, outputs = ([[1, 1]], [[1, 1]])
        if rec["fields"].get("modelFileType") == "saved_model":
            inputs, outputs = _signature_shapes(f["data"])
            # The serving signature has a free batch; the service reports it as 1.
            inputs = [[1] + s[1:] for s in inputs]
            outputs = [[1] + s[1:] for s in outputs]
        rep = None
        if "representativeFeatures" in files:
            rep = np.load(io.BytesIO(files["representativeFeatures"]["data"]), allow_pickle=False)
        self.model = {"fileName": f["filename"], "type": rec["fields"].get("modelFileType"), "inputs": inputs,
                      "outputs": outputs, "rep_shape": None if rep is None else list(rep.shape),
                      "device": rec["fields"].get("device"), "profiled": False}
        return 200, {"success": True, "id": self._job("upload")}

    def _job_call(self, job_id: int, what: str):
        job = self.jobs.get(job_id)
        if job is None:
            return 200, {"success": False, "error": f"Unknown job ID {job_id}"}
        if what == "cancel":
            job["cancelled"] = True
            return 200, {"success": True}
        if what == "stdout":
            return 200, {"success": True, "stdout": [{"created": _now(), "data": f"{job['category']} done\n"}],
                         "totalCount": 1}
        job["polls"] += 1
        done = not self.never_finish and not job.get("cancelled") and job["polls"] >= self.job_polls
        return 200, {"success": True, "job": {
            "id": job_id, "category": job["category"], "categoryKey": job["category"], "key": f"job-{job_id}",
            "created": _now(), "started": _now(), "finished": _now() if done else None,
            "finishedSuccessful": True if done else None, "jobNotificationUids": []}}

    def _pretrained(self) -> dict:
        if self.model is None:
            return {"success": False, "error": "No pretrained model", "specificDeviceSelected": False,
                    "availableModelTypes": []}
        types = ["float32"] + (["int8"] if self.model["rep_shape"] else [])
        model = {
            "fileName": self.model["fileName"],
            "inputs": [{"dataType": "float32", "name": "window", "shape": s} for s in self.model["inputs"]],
            "outputs": [{"dataType": "float32", "name": "value", "shape": s} for s in self.model["outputs"]],
            "supportsTFLite": True,
        }
        if self.model["profiled"]:
            model["profileJobId"] = max(self.jobs)
            model["profileJobFailed"] = False
            model["profileInfo"] = {"float32": self._profile_entry("float32", 2024, 61_000, 290_000),
                                    "int8": self._profile_entry("int8", 1100, 30_000, 80_000),
                                    "table": self._table()}
        return {"success": True, "specificDeviceSelected": bool(self.model["device"]), "availableModelTypes": types,
                "model": model}

    def _profile_entry(self, variant: str, ms: int, ram: int, rom: int) -> dict:
        mem = {"ram": ram, "rom": rom, "arenaSize": ram - 4_000}
        return {"variant": variant, "device": self.model["device"] or "cortex-m4f-80mhz",
                "tfliteFileSizeBytes": rom - 20_000, "isSupportedOnMcu": True, "memory": {"tflite": mem, "eon": mem},
                "timePerInferenceMs": ms, "customMetrics": [], "hasPerformance": True}

    @staticmethod
    def _table() -> dict:
        mcu = {"description": "MCU", "timePerInferenceMs": 2000, "memory": {"tflite": {"ram": 61_000, "rom": 290_000,
                                                                                        "arenaSize": 57_000}},
               "supported": True}
        mpu = {"description": "MPU", "timePerInferenceMs": 5, "rom": 290_000, "supported": True}
        return {"variant": "float32", "lowEndMcu": mcu, "highEndMcu": mcu, "highEndMcuPlusAccelerator": mcu,
                "mpu": mpu, "gpuOrMpuAccelerator": mpu}

    @staticmethod
    def _project() -> dict:
        return {"id": PROJECT_ID, "name": PROJECT_NAME, "description": "", "created": _now(), "owner": "Test User",
                "ownerIsDeveloperProfile": True, "labelingMethod": "single_label", "metadata": {},
                "isEnterpriseProject": False, "whitelabelId": None, "hasPublicVersion": False, "isPublic": False,
                "allowsLivePublicAccess": False, "indPauseProcessingSamples": False, "publicProjectListed": False,
                "collaborators": [], "tier": "free"}

    @staticmethod
    def _project_info() -> dict:
        return {"success": True, "project": StandIn._project(), "studioUrl": "http://127.0.0.1/",
                "latencyDevices": [{"mcu": d, "name": d, "selected": d == DEVICES[0], "int8Latency": 1.0,
                                    "int8ConvLatency": 1.0, "float32Latency": 2.0, "float32ConvLatency": 2.0,
                                    "helpText": ""} for d in DEVICES]}

    @staticmethod
    def _target(fmt: str) -> dict:
        return {"name": fmt.title(), "description": f"{fmt} library", "image": "", "imageClasses": "", "format": fmt,
                "hasEonCompiler": True, "hasTensorRT": False, "hasTensaiFlow": False, "hasDRPAI": False,
                "hasTIDL": False, "hasAkida": False, "hasMemryx": False, "hasStAton": False, "hasCevaNpn": False,
                "hasNordicAxon": False, "hasQaic": False, "hideOptimizations": False, "uiSection": "library",
                "supportedEngines": ["tflite", "tflite-eon"], "preferredEngine": "tflite", "docsUrl": "",
                "modelVariants": [{"variant": "float32", "supported": True}, {"variant": "int8", "supported": True}],
                "parameters": []}
