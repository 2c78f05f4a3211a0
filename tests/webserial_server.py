"""The studio's server (studio/server.py: Streamlit plus the browser board relay) for the Web Serial browser
test, serving tests/webserial_app.py: the real studio whose sessions start where the Export step leaves them.

One addition, for the test only: the link component's index.html is served with the Web Serial stand-in
(tests/js/webserial_shim.js, talking to the bridge at FS_TEST_BRIDGE) as its first script, as a browser
extension would add it. The component's own files are otherwise served as they are. (Chromium's
Page.addScriptToEvaluateOnNewDocument does not reach the component's frame: Streamlit points the frame
at the component after creating it, and the script runs only in its first, blank document.)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402

from studio.board_relay import routes  # noqa: E402

COMPONENT = ROOT / "studio" / "components" / "board_link"


class InjectShim:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/component/studio.board_link.board_link/index.html"):
            shim = (ROOT / "tests" / "js" / "webserial_shim.js").read_text()
            shim = shim.replace("__BRIDGE__", os.environ.get("FS_TEST_BRIDGE", ""))
            html = (COMPONENT / "index.html").read_text().replace("<head>", f"<head>\n<script>{shim}</script>", 1)
            await HTMLResponse(html, headers={"Cache-Control": "no-store"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


app = st.App(str(ROOT / "tests" / "webserial_app.py"), routes=routes(), middleware=[Middleware(InjectShim)])
