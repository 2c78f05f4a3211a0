"""Session directories are private and cleaned up when the session ends or idles out."""
from __future__ import annotations

import os
import time

from core import sessions


def test_each_session_gets_its_own_safe_directory(tmp_path):
    a = sessions.session_dir("abc-123", tmp_path)
    b = sessions.session_dir("../../etc/passwd", tmp_path)
    assert a != b and a.parent == tmp_path and b.parent == tmp_path
    assert ".." not in b.name and "/" not in b.name


def test_sweep_removes_ended_and_idle_sessions_only(tmp_path):
    live = sessions.session_dir("live", tmp_path)
    ended = sessions.session_dir("ended", tmp_path)
    idle = sessions.session_dir("idle", tmp_path)
    (live / "run").mkdir()
    old = time.time() - 10_000
    os.utime(idle / sessions.HEARTBEAT, (old, old))
    removed = sessions.sweep(tmp_path, active={"live", "idle"}, ttl_s=3600)
    assert sorted(removed) == ["ended", "idle"]
    assert live.exists() and (live / "run").exists()
    assert not ended.exists() and not idle.exists()


def test_sweep_without_session_list_uses_idle_time_alone(tmp_path):
    fresh = sessions.session_dir("fresh", tmp_path)
    assert sessions.sweep(tmp_path, active=None, ttl_s=3600) == []
    assert fresh.exists()
