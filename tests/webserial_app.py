"""studio/app.py itself, with every new session holding the export named by FS_TEST_EXPORT, as the Export step
would leave it (training and exporting in the browser first would only make the Web Serial test slower)."""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from studio import state  # noqa: E402

if state.get("export_dir") is None and os.environ.get("FS_TEST_EXPORT"):
    state.put("export_dir", os.environ["FS_TEST_EXPORT"])
runpy.run_path(str(ROOT / "studio" / "app.py"), run_name="__main__")
