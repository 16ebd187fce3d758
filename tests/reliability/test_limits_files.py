"""Files stay private whatever the umask, and a damaged database is reported in one line.

A receiver refuses to start on a store that fails PRAGMA quick_check (instead of answering 20
to letters it cannot keep), and `mail list` says what is wrong without a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.raw_tls import exchange, letter, status_of

from misfin_tui.core.address import Address
from misfin_tui.core.profile import Profile


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        profile = Profile.open(tmp_path / "p")
        profile.create_identity(Address.parse("bob@example.org"), "Bob", ca=True)
        db = profile.database()
        with db.transaction() as conn:
            conn.execute("INSERT INTO settings(key, value) VALUES ('x', 'y')")
        profile.save_config()
    finally:
        os.umask(old)
    folder = tmp_path / "p"
    assert mode(folder) == 0o700
    assert mode(folder / "config.toml") == 0o600
    for suffix in ("", "-wal", "-shm"):
        assert mode(profile.db_path.with_name(profile.db_path.name + suffix)) == 0o600, suffix
    files = [p for p in profile.identities_dir.rglob("*")]
    assert files
    for path in files + [profile.identities_dir]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_an_old_world_readable_database_is_made_private(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "p")
    profile.database().close()
    os.chmod(profile.db_path, 0o644)
    os.chmod(tmp_path / "p", 0o755)
    Profile.open(tmp_path / "p").database()
    assert mode(profile.db_path) == 0o600
    assert mode(tmp_path / "p") == 0o700


def damage(path: Path, where: str) -> None:
    """Overwrite pages with garbage: all but the first two ("middle"), or the letters table's
    root page ("letters": the schema still reads, every query over letters fails). Which pages
    come last depends on when the search index was written, so "letters" asks SQLite where."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'letters'"
        ).fetchone()
    conn.close()
    size = path.stat().st_size
    if where == "middle":
        start, length = page_size * 2, size - page_size * 3
    else:
        start, length = (root - 1) * page_size, page_size
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(b"\xde\xad\xbe\xef" * (length // 4))


@pytest.mark.parametrize("where", ["middle", "letters"])
def test_a_damaged_database_is_refused_in_one_line(setup, receiver_process, where: str) -> None:
    receiver = receiver_process(setup.profile_dir)
    creds = setup.senders[0]
    for n in range(30):
        assert status_of(exchange(receiver.port, letter(f"l{n}", 200), creds).response) == 20
    assert receiver.stop() == 0
    db_path = setup.profile().db_path
    damage(db_path, where)
    env = {**os.environ, "MISFIN_TUI_NETWORK": "test-net"}
    base = [sys.executable, "-m", "misfin_tui", "--profile", str(setup.profile_dir)]
    began = time.monotonic()
    served = subprocess.run(
        [*base, "receive", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert served.returncode != 0
    assert time.monotonic() - began < 20
    for result in (
        served,
        subprocess.run(
            [*base, "mail", "list"], capture_output=True, text=True, timeout=30, env=env
        ),
    ):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "damaged" in lines[0] or "malformed" in lines[0], lines[0]
