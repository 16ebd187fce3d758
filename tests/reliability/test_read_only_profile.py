"""A profile on a read-only mount (a backup mounted read-only, a disk remounted read-only after
errors): every command that needs the database says in one line that the folder is read-only,
not SQLite's bare "unable to open database file".

Root ignores file permissions, so the folder is made read-only by mounting: a tmpfs, remounted
read-only. Mounting needs root (CI runs as root); without it this skips.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def cli(profile: Path, *args: str, body: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile), *args],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def read_only_profile(tmp_path: Path) -> Iterator[Path]:
    """A profile with an identity and a database, then its folder's mount made read-only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=4096k,mode=0700", "tmpfs", str(mount))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        profile = mount / "profile"
        made = cli(profile, "identity", "new", "alice@alice.test")
        assert made.returncode == 0, made.stderr
        assert cli(profile, "mail", "list").returncode == 0  # the database exists
        remounted = _mount("-o", "remount,ro", str(mount))
        assert remounted.returncode == 0, remounted.stderr
        yield profile
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize(
    "args",
    [
        ("mail", "list"),
        ("outbox", "list"),
        ("trust", "list"),
        ("network", "status"),
        ("send", "--to", "bob@127.0.0.1:1", "--no-input"),
    ],
)
def test_a_read_only_profile_is_named_as_such(
    read_only_profile: Path, args: tuple[str, ...]
) -> None:
    result = cli(read_only_profile, *args, body="Hi\n")
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"misfin-tui: error: cannot open the database {read_only_profile / 'misfin.db'}:"
        f" {read_only_profile} is read-only (the database and its journal are written there)\n"
    )
    assert cli(read_only_profile, "identity", "list").returncode == 0  # reading still works
