"""Session tokens, folders and their clean-up: private, unguessable, kept while idle up to the TTL."""
from __future__ import annotations

import os
import time

import pytest

from core import sessions


def test_each_session_gets_its_own_safe_directory(tmp_path):
    a = sessions.session_dir("abc-123", tmp_path)
    b = sessions.session_dir("../../etc/passwd", tmp_path)
    assert a != b and a.parent == tmp_path and b.parent == tmp_path
    assert ".." not in b.name and "/" not in b.name


def test_tokens_are_long_random_and_never_the_folder_name():
    tokens = {sessions.new_token() for _ in range(200)}
    assert len(tokens) == 200 and all(sessions.valid_token(t) for t in tokens)
    t = next(iter(tokens))
    assert len(t) == 32 and t not in sessions.key_of(t)
    assert sessions.key_of(t) == sessions.key_of(t) and sessions.key_of(t) != sessions.key_of(sessions.new_token())
    for bad in ("", "short", "x" * 31, "../" + "x" * 29, None, 42, "x" * 33):
        assert not sessions.valid_token(bad)


def test_store_finds_a_session_by_its_token_only():
    store = sessions.SessionStore()
    token = sessions.new_token()
    entry = store.create(token)
    entry.values["fs.x"] = 1
    assert store.open(token) is entry
    assert store.open(sessions.new_token()) is None  # another, well-formed token: nothing
    assert store.open(entry.key) is None  # the public key is not a way in
    assert store.open("not a token") is None


def test_sweep_keeps_closed_sessions_until_idle_past_the_ttl(tmp_path):
    live = sessions.session_dir("live", tmp_path)
    closed = sessions.session_dir("closed", tmp_path)
    idle = sessions.session_dir("idle", tmp_path)
    busy = sessions.session_dir("busy", tmp_path)
    (live / "run").mkdir()
    old = time.time() - 10_000
    for path in (idle, busy):
        os.utime(path / sessions.HEARTBEAT, (old, old))
    removed = sessions.sweep(tmp_path, keep={"live", "busy"}, ttl_s=3600)
    assert removed == ["idle"]
    assert live.exists() and (live / "run").exists() and closed.exists() and busy.exists()


def test_ttl_comes_from_the_environment_at_each_sweep(tmp_path, monkeypatch):
    path = sessions.session_dir("a", tmp_path)
    old = time.time() - 120
    os.utime(path / sessions.HEARTBEAT, (old, old))
    monkeypatch.setenv("FS_SESSION_TTL_S", "3600")
    assert sessions.sweep(tmp_path) == []
    monkeypatch.setenv("FS_SESSION_TTL_S", "60")
    assert sessions.session_ttl_s() == 60
    assert sessions.sweep(tmp_path) == ["a"] and not path.exists()


def test_store_expires_idle_entries_not_kept_ones():
    store = sessions.SessionStore()
    a, b = store.create(sessions.new_token()), store.create(sessions.new_token())
    a.last_seen = b.last_seen = time.time() - 1000
    assert store.expire(100, keep={b.key}) == [a.key]
    assert store.keys() == [b.key]


def test_create_refuses_a_malformed_token():
    with pytest.raises(ValueError):
        sessions.SessionStore().create("../../etc")


def test_the_sweep_deletes_only_folders_it_made_and_says_so(tmp_path, caplog):
    """Issue 35, item 3: FS_WORKDIR_ROOT pointed at a folder that already held a user's folders deleted
    those idle past the TTL, without a word."""
    import logging
    import os

    slides = tmp_path / "my_slides_old"
    (slides / "deck").mkdir(parents=True)
    (slides / "deck" / "talk.pdf").write_bytes(b"%PDF")
    lookalike = tmp_path / ("s" + "0" * 32)  # named like a session, with a heartbeat, but not made by the studio
    lookalike.mkdir()
    (lookalike / sessions.HEARTBEAT).touch()
    mine = sessions.session_dir("s" + "1" * 32, tmp_path)
    old = os.stat(mine).st_mtime - 10 * 3600
    for path in (slides, lookalike, mine, mine / sessions.HEARTBEAT, lookalike / sessions.HEARTBEAT):
        os.utime(path, (old, old))
    with caplog.at_level(logging.INFO, logger="forecast_studio"):
        assert sessions.sweep(tmp_path, ttl_s=30) == [mine.name]
        assert sessions.sweep(tmp_path, ttl_s=30) == []
    assert (slides / "deck" / "talk.pdf").read_bytes() == b"%PDF" and lookalike.is_dir() and not mine.exists()
    text = caplog.text
    assert f"removing session folder {mine}" in text
    assert text.count(f"not removing {slides}") == 1, "said once, not at every sweep"
    sessions.remove(lookalike.name, tmp_path)  # Start over on a folder it did not make: left too
    assert lookalike.is_dir()
