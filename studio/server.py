"""The studio's server: Streamlit's own routes plus the browser board relay (studio/board_relay.py).

`python -m studio` runs `streamlit run studio/server.py`; Streamlit sees the ``st.App`` below and serves
studio/app.py with the extra route, on the same host, port and certificate as the pages, behind
studio/hosts.py's host allow-list.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run studio/server.py` puts only studio/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from starlette.middleware import Middleware  # noqa: E402

from studio.board_relay import routes  # noqa: E402
from studio.hosts import HostGuard  # noqa: E402

# HostGuard first: a request under a host name the studio was not given (DNS rebinding) reaches no route.
app = st.App(str(ROOT / "studio" / "app.py"), routes=routes(), middleware=[Middleware(HostGuard)])
