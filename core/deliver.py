"""Delivery: a trained run -> the export folder -> the firmware bundle -> the Edge Impulse library and
sketch, the one sequence ``studio export`` runs whole and the Export page runs a step per click."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import StudioError
from core.export import ExportReport, export_run, loses_to_last_value

Say = Callable[[str], None]


@dataclass
class Delivery:
    report: ExportReport
    files: list[Path] = field(default_factory=list)
    bundle_dtype: str = ""
    bundle_reason: str = ""


def check_edge_impulse(run: Any, api_key: str | None, say: Say | None = None) -> None:
    """Before the export's minute of work: refuse a model Edge Impulse cannot take, no connection, or a
    refused key."""
    from core.edge_impulse import client

    client.check_single_output(run.model_spec, run.scaler)
    if say is not None:
        say("Checking the Edge Impulse key and connection")
    client.check_access(api_key)


def bundle_dtype(report: ExportReport, asked: str = "auto", how: str = "with --bundle-dtype") -> tuple[str, str]:
    """(dtype, reason) the firmware bundle ships: the export's recommendation, or ``asked`` with the
    recommendation said beside it (``how``: where it was chosen)."""
    dtype, reason = report.recommended()
    return chosen(dtype, reason, asked, how)


def chosen(recommended: str, reason: str, asked: str = "auto", how: str = "with --bundle-dtype") -> tuple[str, str]:
    """(dtype, reason) for a person's pick ``asked`` against the studio's ``recommended``: the same words on
    the command line and the Export page."""
    if asked in ("auto", recommended):
        return recommended, reason
    return asked, f"chosen {how}; the studio would ship {recommended}: {reason}"


def record_bundle(export_dir: str | Path, dtype: str, reason: str) -> None:
    """Write the type the bundle ships into report.json, so the report, the CLI and the pages name the same."""
    from core.export import ExportFolder

    ExportFolder.open(export_dir).record_bundle(dtype, reason)


def bundle(export_dir: str | Path, dtype: str, say: Say | None = None, reason: str | None = None) -> Path:
    """The firmware bundle zip for ``dtype``, with a warning said when that model loses to the last value;
    with ``reason``, report.json records that this is the type the bundle ships."""
    from core.export import bundle_choice
    from core.firmware import render_bundle

    accuracy = bundle_choice(export_dir)[2]
    if say is not None and loses_to_last_value(accuracy, dtype):
        say(f"warning: the bundle's {dtype} model forecasts the test windows worse than repeating the last value; "
            "it is shipped because it was asked for.")
    path = render_bundle(export_dir, dtype=dtype)
    if reason is not None:
        record_bundle(export_dir, dtype, reason)
    return path


def edge_impulse(run: Any, export_dir: str | Path, api_key: str | None, int8: bool,
                 say: Say | None = None) -> tuple[Path, Path]:
    """Deploy through Edge Impulse and keep, beside the export, its Arduino library and a static-buffer
    sketch holding real test windows (one zip). Returns (library, package)."""
    from core.edge_impulse import client, sketch

    data = client.deploy(run, api_key=api_key, int8=int8, progress=say or (lambda m: None))
    package = sketch.write_package(export_dir, data, dtype="int8" if int8 else "float32")
    return Path(export_dir) / client.LIBRARY_ZIP, package


def deliver(run: Any, out: str | Path, *, int8: bool = True, bundle_as: str | None = "auto",
            api_key: str | None = None, to_edge_impulse: bool = False, force: bool = False,
            progress: Callable[[float, str], None] | None = None, say: Say | None = None,
            form: str = "auto") -> Delivery:
    """Export ``run`` to ``out`` (verified on TFLM), then the firmware bundle (``bundle_as``: auto, int8 or
    float32; None for none), then, with ``to_edge_impulse``, the Edge Impulse library and sketch. ``form``: how
    the recurrent network reaches the board (core.steploop: auto, step, unrolled, fused)."""
    if bundle_as == "int8" and not int8:
        raise StudioError("--bundle-dtype int8 needs an int8 model, but --no-int8 was given.",
                          "Drop --no-int8, or leave --bundle-dtype at auto.")
    if to_edge_impulse:
        check_edge_impulse(run, api_key, say)
    report = export_run(run, out, int8=int8, progress=progress, force=force, form=form)
    done = Delivery(report, [report.path(d) for d in report.dtypes])
    if bundle_as is not None:
        done.bundle_dtype, done.bundle_reason = bundle_dtype(report, bundle_as)
        if say is not None:
            say(f"Rendering the firmware bundle: {done.bundle_dtype} ({done.bundle_reason})")
        done.files.append(bundle(out, done.bundle_dtype, say, reason=done.bundle_reason))
        done.report.bundle_dtype, done.report.bundle_reason = done.bundle_dtype, done.bundle_reason
    if to_edge_impulse:
        done.files += list(edge_impulse(run, out, api_key, int8, say))
    return done
