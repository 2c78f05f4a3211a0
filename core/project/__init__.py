"""Save and open a whole project as one zip file: every step's settings, the trained run, and the data
(embedded, or only its fingerprint when the user keeps the data to themselves).

A project file may come from someone else, so opening one never runs code from it: only JSON, CSV
and weight files (``.npz`` read with ``allow_pickle=False``, ``.h5``) are accepted, entries are read
into memory with hard size limits before anything touches the disk, and no entry can escape the
folder it is unpacked into.

Layout of the zip::

    manifest.json        format, app version, created, dataset identity, settings of every step,
                         and the sha256 and size of every other entry
    dataset.csv          the cleaned dataset (only when included)
    run/<files>          the run directory: run.json, weights.npz (canonical Keras layout), the
                         backend's own weights, history.json, metrics.json, samples.npz
"""
from core.project.open import Project, open_project
from core.project.save import (FORMAT_VERSION, check_saveable, default_filename, describe, frame_hash, project_bytes,
                               save_project)

__all__ = ["FORMAT_VERSION", "Project", "describe", "default_filename", "frame_hash", "open_project",
           "project_bytes", "save_project", "check_saveable"]
