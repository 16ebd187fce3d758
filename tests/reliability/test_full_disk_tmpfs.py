"""A really full disk: the profile (config, identities, database, WAL) on a tiny tmpfs.

A filler file takes all but a little of the room, then letters arrive over real TLS until
the disk is full. The receiver must answer what it could not store with a temporary failure
(never 20), keep running, and take letters again once the filler is deleted; every letter
answered 20 is readable and the database passes its integrity check. `mail import` of a
gembox onto the full disk imports nothing and says so in one line, and `send` onto it keeps
the letter it could not store from going out.

Mounting needs root (CI runs as root); without it these skip, and test_full_disk.py (a tiny
RLIMIT_FSIZE on the receiver process) still covers the receiver's side.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.certs import forged
from helpers.fixture_receiver import FixtureReceiver
from helpers.letters import check_integrity
from helpers.profiles import NETWORK, RECIPIENT, SENDER, make_profile, pin_verified, route
from helpers.raw_tls import exchange, letter, status_of

from misfin_tui.core.gembox import export_gembox
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

DISK_KB = 1024
LETTERS = 100  # in the gembox imported onto the full disk: ~280 KB of text, 560 KB stored
ROOM = 256 * 1024  # left free by the filler: room for some letters (a commit writes ~10 pages)
WORDS = 200  # ~1.3 KB a letter


@dataclass
class TinyDisk:
    """A mounted tmpfs of DISK_KB; `fill` takes all but `leave` bytes of it with one file."""

    path: Path

    @property
    def filler(self) -> Path:
        return self.path / "filler"

    def fill(self, leave: int) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)
        size = self.filler.stat().st_size
        os.truncate(self.filler, max(0, size - leave))

    def free(self) -> None:
        self.filler.unlink()

    def available(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[TinyDisk]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_KB}k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
            "test_full_disk.py covers a full disk with RLIMIT_FSIZE instead"
        )
    try:
        yield TinyDisk(mount)
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # something still open


def all_subjects(profile_dir: Path) -> list[str]:
    store = MailStore(Profile.open(profile_dir).database())
    try:
        return [s.subject for f in ("Inbox", "Quarantine") for s in store.summaries(f)]
    finally:
        store.db.close()


@pytest.mark.timeout(60)
def test_receiver_on_a_full_tmpfs_answers_40_keeps_running_and_recovers(
    tmp_path: Path, tiny_disk: TinyDisk, receiver_process
) -> None:
    profile_dir = tiny_disk.path / "bob"
    profile = make_profile(profile_dir, RECIPIENT)
    for key in ("letters_per_sender", "letters_per_address", "sender_quota_mb"):
        profile.config.set(f"receiver.{key}", 0)  # only the disk may refuse a letter here
    profile.save_config()
    senders = [forged(tmp_path / "senders", f"s{n}", "senders.test", f"s{n}") for n in range(2)]
    pin_verified(profile, senders)
    profile.database().close()
    receiver = receiver_process(profile_dir)
    assert status_of(exchange(receiver.port, letter("before-full"), senders[0]).response) == 20

    tiny_disk.fill(leave=ROOM)
    statuses: dict[str, int | None] = {}
    refused = 0
    for n in range(200):  # until the disk has said no a few times in a row
        token = f"while-full-{n}"
        answer = exchange(receiver.port, letter(token, WORDS), senders[n % 2], timeout=20)
        statuses[token] = status_of(answer.response)
        refused = refused + 1 if statuses[token] != 20 else 0
        if refused == 5:
            break
    assert refused == 5, f"5 letters in a row were never refused on a full disk: {statuses}"
    assert receiver.alive(), "the receiver died when the disk filled"
    failed = {s for s in statuses.values() if s != 20}
    assert failed == {40}, f"a full disk must be answered 40 (try again later): {statuses}"
    assert list(statuses.values()).count(20) >= 2, f"the room left took no letter: {statuses}"

    tiny_disk.free()
    assert status_of(exchange(receiver.port, letter("after-room"), senders[1]).response) == 20
    assert receiver.stop() == 0

    stored = all_subjects(profile_dir)
    acknowledged = {t for t, s in statuses.items() if s == 20} | {"before-full", "after-room"}
    assert acknowledged <= set(stored), f"answered 20 but missing: {acknowledged - set(stored)}"
    refused_tokens = {t for t, s in statuses.items() if s != 20}
    assert not refused_tokens & set(stored), "a letter answered 40 was stored anyway"
    assert len(stored) == len(set(stored)), "a letter was stored twice"
    check_integrity(Profile.open(profile_dir).db_path)


def run_cli(profile_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MISFIN_TUI_NETWORK": NETWORK},
    )


def one_line_error(result: subprocess.CompletedProcess[str], disk: TinyDisk) -> str:
    """The command failed with exit code 1 and one line on stderr, no traceback; returned
    with the disk's path cut out (the test's name in it says "full" too)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("misfin-tui: error: "), result.stderr
    return lines[0].replace(str(disk.path), "DISK")


@pytest.mark.timeout(60)
def test_mail_import_onto_a_full_tmpfs_imports_nothing_and_says_so(
    tmp_path: Path, tiny_disk: TinyDisk
) -> None:
    source = MailStore(Profile.open(tmp_path / "source").database())
    for n in range(LETTERS):  # more than ROOM holds, whether or not search indexes them yet
        body = f"# old-{n}\n" + " ".join(f"w{i}" for i in range(200)) + "\n"
        raw = f"alice@example.net Alice\n\n2024-05-01T12:{n // 60:02d}:{n % 60:02d}Z\n{body}"
        source.add(folder="Inbox", raw=raw.encode(), received_at="2024-05-01T12:00:00Z")
    box = tmp_path / "old.gembox"
    export_gembox(source, box)
    source.db.close()
    profile_dir = tiny_disk.path / "bob"
    make_profile(profile_dir, RECIPIENT).database().close()

    tiny_disk.fill(leave=ROOM)
    error = one_line_error(run_cli(profile_dir, "mail", "import", str(box)), tiny_disk)
    assert "is full (free some space)" in error and "damaged" not in error, error
    assert all_subjects(profile_dir) == [], "part of the gembox was imported"
    check_integrity(Profile.open(profile_dir).db_path)

    tiny_disk.free()
    again = run_cli(profile_dir, "mail", "import", str(box))
    assert again.returncode == 0, again.stderr
    assert sorted(all_subjects(profile_dir)) == sorted(f"old-{n}" for n in range(LETTERS))


@pytest.fixture
def alice_on_tiny_disk(tiny_disk: TinyDisk, receiver_factory) -> tuple[Path, FixtureReceiver]:
    """A sending profile on the tmpfs, on a trusted network, example.org routed to bob."""
    bob = receiver_factory("example.org")
    profile = make_profile(tiny_disk.path / "alice", SENDER, trusted=True)
    route(profile, "example.org", bob)
    profile.database().close()
    return profile.config_dir, bob


def send_to_bob(profile_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        profile_dir,
        *("send", "--to", RECIPIENT, "--no-input", "--trust-new", "--subject", "Lunch?"),
        stdin="Shall we?\n",
    )


def folders(profile_dir: Path) -> dict[str, int]:
    store = MailStore(Profile.open(profile_dir).database())
    try:
        return {folder: total for folder, (total, _unread) in store.counts().items() if total}
    finally:
        store.db.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("leave", [0, 40 * 1024], ids=["no-room", "room-for-the-outbox-only"])
def test_send_onto_a_full_tmpfs_sends_nothing_it_could_not_keep(
    tiny_disk: TinyDisk, alice_on_tiny_disk: tuple[Path, FixtureReceiver], leave: int
) -> None:
    """Either the letter could not be put in the outbox (nothing stored, nothing sent), or it
    is in the outbox and the next write failed: it is kept there, and the error says so."""
    profile_dir, bob = alice_on_tiny_disk
    tiny_disk.fill(leave=leave)
    error = one_line_error(send_to_bob(profile_dir), tiny_disk)
    assert "is full (free some space)" in error and "damaged" not in error, error
    assert bob.requests == [], "it went out although the disk was full before it was sent"

    tiny_disk.free()
    kept = folders(profile_dir)
    assert kept == ({"Outbox": 1} if "kept in the outbox" in error else {}), (kept, error)
    check_integrity(Profile.open(profile_dir).db_path)
    assert send_to_bob(profile_dir).returncode == 0
    assert len(bob.requests) == 1 and folders(profile_dir) == {**kept, "Sent": 1}


@pytest.mark.timeout(60)
def test_send_whose_disk_fills_during_delivery_keeps_the_letter(
    tiny_disk: TinyDisk, alice_on_tiny_disk: tuple[Path, FixtureReceiver]
) -> None:
    """The server took the letter (20) but the disk filled meanwhile: how the sending went
    cannot be recorded, so the letter stays in the outbox (to be sent again, the Misfin way:
    it leaves the outbox only on a recorded 20), and the person is told so in one line."""
    profile_dir, bob = alice_on_tiny_disk
    bob.on_request = lambda _request: tiny_disk.fill(leave=0)
    error = one_line_error(send_to_bob(profile_dir), tiny_disk)
    assert len(bob.requests) == 1
    assert "is full (free some space)" in error and "kept in the outbox" in error, error

    tiny_disk.free()
    assert folders(profile_dir) == {"Outbox": 1}
    check_integrity(Profile.open(profile_dir).db_path)
    listed = run_cli(profile_dir, "outbox", "list", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert item["recipient"] == RECIPIENT and item["state"] != "delivered", item


@pytest.mark.timeout(60)
def test_identity_new_onto_a_full_tmpfs_names_the_file_and_the_full_disk(
    tiny_disk: TinyDisk,
) -> None:
    """It said only "No space left on device": which file, and that the disk is full, are
    named now; nothing is left half made, and it works once there is room."""
    profile_dir = tiny_disk.path / "carol"
    made = run_cli(profile_dir, "identity", "new", "carol@carol.test")
    assert made.returncode == 0, made.stderr
    tiny_disk.fill(leave=0)
    error = one_line_error(run_cli(profile_dir, "identity", "new", "dave@carol.test"), tiny_disk)
    assert error.startswith("misfin-tui: error: DISK/carol/identities/dave@carol.test/"), error
    assert error.endswith(": No space left on device (the disk is full: free some space)"), error
    assert not (profile_dir / "identities" / "dave@carol.test").exists()

    tiny_disk.free()
    again = run_cli(profile_dir, "identity", "new", "dave@carol.test")
    assert again.returncode == 0, again.stderr
