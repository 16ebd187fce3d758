"""Our GMAP server (`receive --gmap-listen`): titlani's routes and answers over real TLS, to the
mailbox's own certificate only, with the receiver's kind of limits; and our sync against it."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest
from helpers.certs import Creds, identity_creds, write_creds
from helpers.gmap import ask, serving
from helpers.profiles import make_profile

from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.server import Limits, gmap_id
from misfin_tui.core.gmap.sync import GmapSync, SyncStatus
from misfin_tui.core.identity import load_certificates, load_private_key, make_signed
from misfin_tui.core.notice import Reason
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

RAW = b"bob@example.org Bob\nalice@localhost\n2026-01-02T03:04:05Z\n# Hello\nFirst line\n"


def _receive(profile: Profile, raw: bytes = RAW, folder: str = "Inbox", when: str = "") -> int:
    return MailStore(profile.database()).add(
        folder=folder,
        raw=raw,
        sender="bob@example.org",
        subject="Hello",
        body="First line\n",
        received_at=when or "2026-01-02T03:04:05Z",
        mailbox="alice@localhost",
        unread=True,
        identity="alice@localhost",
    )


def _creds(profile: Profile, name: str = "alice") -> Creds:
    """The mailbox's own certificate (with its host CA) and key."""
    return identity_creds(profile, f"{name}@localhost")


@pytest.fixture
def home(tmp_path: Path) -> Profile:
    return make_profile(tmp_path / "home", "alice@localhost", ca=True, trusted=True)


def test_routes_and_answers_like_titlani(home: Profile) -> None:
    letter = _receive(home)
    rid = gmap_id(letter, "2026-01-02T03:04:05Z")
    me = _creds(home)
    with serving(home) as port:
        assert ask(port, me, "gemini://localhost/tag/") == ("20 text/plain", rid.encode())
        assert ask(port, me, "gemini://localhost/tag/Inbox")[1] == rid.encode()
        assert ask(port, me, "gemini://localhost/tag/Unread")[1] == rid.encode()
        assert ask(port, me, "gemini://localhost/tag/Inbox/2026-01-02T03:04:05Z")[1] == rid.encode()
        assert ask(port, me, "gemini://localhost/tag/Inbox/2026-01-02T03:04:06Z")[1] == b""
        assert ask(port, me, "gemini://localhost/tag/Nope")[1] == b""
        assert ask(port, me, f"gemini://localhost:1960/msgid/{rid}") == ("20 text/plain", RAW)
        assert ask(port, me, f"gemini://localhost/untag/Unread?{rid}")[1] == b"Tag removed"
        assert not MailStore(home.database()).summary(letter).unread  # type: ignore[union-attr]
        assert ask(port, me, f"gemini://localhost/delete?{rid}")[0] == "51 Message not in Trash"
        assert ask(port, me, f"gemini://localhost/tag/Trash?{rid}")[1] == b"Tag added"
        assert ask(port, me, "gemini://localhost/tag/")[1] == b""  # Trash is left out
        assert ask(port, me, f"gemini://localhost/delete?{rid}")[1] == b"Message deleted"
        assert MailStore(home.database()).get(letter) is None
        assert ask(port, me, f"gemini://localhost/msgid/{rid}")[0] == "51 Message not found"
        assert ask(port, me, "gemini://localhost/untag/Unread")[0] == "59 Message ID required"
        assert ask(port, me, "gemini://localhost/delete")[0] == "59 Message ID required"
        assert ask(port, me, "gemini://localhost/tag/?x")[0] == "59 No query expected"
        assert ask(port, me, "gemini://localhost/tag/a b?x")[0] == "59 Invalid tag name"
        assert ask(port, me, "gemini://localhost/tag/a/b/c")[0] == "51 Unknown tag route"
        assert ask(port, me, "gemini://localhost/tag/Inbox/2026-13-01T00:00:00Z")[0] == (
            "59 Invalid timestamp"
        )
        assert ask(port, me, "gemini://localhost/whatever")[0] == "51 Unknown route"
        assert ask(port, None, "gemini://localhost/list/")[0] == "20 text/gemini"
        assert ask(port, me, "https://localhost/tag/")[0] == "59 Not a Gemini URL"
        assert ask(port, me, "gemini://localhost/" + "a" * 1100)[0] == (
            "59 Request exceeds 1024 bytes"
        )


def test_ids_never_reach_a_path(home: Profile) -> None:
    _receive(home)
    me = _creds(home)
    with serving(home) as port:
        for bad in ("../../../etc/passwd", "..", "20260102T030405Z-../x", "%2e%2e", "\x00", "1"):
            assert ask(port, me, f"gemini://localhost/msgid/{bad}")[0] == "51 Message not found"
        # The right number with the wrong time is not the letter either.
        assert ask(port, me, "gemini://localhost/msgid/20990101T000000Z-00000001")[0] == (
            "51 Message not found"
        )


def test_only_the_mailbox_certificate_gets_in(home: Profile, tmp_path: Path) -> None:
    from misfin_tui.core.identity import make_self_signed

    _receive(home)
    ca = home.host_ca("localhost")
    assert ca is not None
    ca_cert, ca_key = load_certificates(ca[0])[0], load_private_key(ca[1])

    def write(name: str, cert, key) -> Creds:  # type: ignore[no-untyped-def]
        return write_creds(tmp_path, name, cert, key)  # the leaf alone, no chain

    forged = write("forged", *make_self_signed("alice", "localhost", "Alice"))  # titlani's hole
    signed = write("signed", *make_signed("alice", "localhost", "Alice", ca_cert, ca_key))
    other_box = write("carol", *make_signed("carol", "localhost", "Carol", ca_cert, ca_key))
    other_host = write("elsewhere", *make_self_signed("alice", "elsewhere.example", "Alice"))
    with serving(home) as port:
        assert ask(port, None, "gemini://localhost/tag/")[0] == "60 Client certificate required"
        assert ask(port, forged, "gemini://localhost/tag/")[0] == (
            "61 Certificate fingerprint mismatch"
        )
        assert ask(port, other_box, "gemini://localhost/tag/")[0] == (
            "61 No registered identity for mailbox"
        )
        assert ask(port, other_host, "gemini://localhost/tag/")[0] == (
            "61 No registered identity for mailbox"
        )
        # Host CA set-up: a certificate the CA signed for that mailbox and host is alice's.
        assert ask(port, signed, "gemini://localhost/tag/")[0] == "20 text/plain"
        assert ask(port, _creds(home), "gemini://localhost/tag/")[0] == "20 text/plain"


def test_a_certificate_rotated_away_is_refused_without_a_restart(
    home: Profile, tmp_path: Path
) -> None:
    """Rotated as stolen by another process while GMAP runs: the old certificate is still signed
    by the host CA, but it is refused from the next request on; the new one gets in."""
    _receive(home)
    before = _creds(home)
    old = Creds(
        shutil.copy(before.cert, tmp_path / "old.pem"),
        shutil.copy(before.key, tmp_path / "old.key"),
        before.der,
        before.fingerprint,
    )
    with serving(home) as port:
        assert ask(port, old, "gemini://localhost/tag/")[0] == "20 text/plain"
        engine = Engine(home)
        try:
            engine.rotate("alice@localhost", Reason.STOLEN)
        finally:
            engine.close()
        time.sleep(1.1)  # the server looks at the identities folder at most once a second
        assert ask(port, old, "gemini://localhost/tag/")[0] == "61 Certificate retired"
        new = _creds(home)
        assert new.fingerprint != old.fingerprint
        assert ask(port, new, "gemini://localhost/tag/")[0] == "20 text/plain"


def test_a_silent_client_is_cut_off_and_a_crowd_is_capped(home: Profile) -> None:
    limits = Limits(max_per_peer=2, handshake_timeout=1.0, request_timeout=1.0)
    with serving(home, limits) as port:
        started = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
        try:
            # The third connection from the same address is closed at once.
            idle[2].settimeout(3)
            assert idle[2].recv(10) == b""
            # The others are cut off when the handshake deadline passes.
            for sock in idle[:2]:
                sock.settimeout(5)
                assert sock.recv(10) == b""
            assert time.monotonic() - started < 4
        finally:
            for sock in idle:
                sock.close()


def test_laptop_syncs_from_our_own_receive(home: Profile, tmp_path: Path) -> None:
    """Two machines, one identity: the laptop imports alice and syncs from home's GMAP."""
    for n in range(3):
        _receive(home, RAW.replace(b"Hello", f"Hello {n}".encode()), when=f"2026-01-02T03:04:0{n}Z")
    laptop = Profile.open(tmp_path / "laptop")
    ident = home.identity("alice@localhost")
    laptop.import_identity(ident.chain_path, ident.key_path)
    from misfin_tui.core.network import Networks

    Networks(laptop.database()).trust("test-net")
    with serving(home) as port:
        laptop.config.set("gmap.alice@localhost", ("localhost", port))
        laptop.save_config()
        sync = GmapSync(Engine(laptop), timeout=10)
        report = sync.sync(connect=f"127.0.0.1:{port}", trust_new=True)
        assert report.status is SyncStatus.DONE, report.reason
        assert report.fetched == 3
        store, home_store = MailStore(laptop.database()), MailStore(home.database())
        here = store.summaries("Inbox")
        assert len(here) == 3
        for summary in here:
            assert store.get(summary.id).raw.startswith(b"bob@example.org Bob\n")  # type: ignore[union-attr]
        store.set_unread([here[0].id], False)
        store.move([here[1].id], "Archive")
        store.move([here[2].id], "Trash")
        assert sync.sync(connect=f"127.0.0.1:{port}").status is SyncStatus.DONE
        counts = home_store.counts()
        assert counts["Inbox"] == (1, 0) and counts["Archive"] == (1, 1)
        assert counts["Trash"] == (1, 1)
        store.delete([here[2].id])
        assert sync.sync(connect=f"127.0.0.1:{port}").status is SyncStatus.DONE
        assert home_store.counts()["Trash"] == (0, 0)
        again = sync.sync(connect=f"127.0.0.1:{port}")
        assert again.fetched == 0 and again.requests == 5


def test_receive_serves_gmap_with_gmap_listen(home: Profile) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    _receive(home)
    me = _creds(home)
    env = {**os.environ, "MISFIN_TUI_NETWORK": "test-net"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "misfin_tui",
            "--profile",
            str(home.config_dir),
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--gmap-listen",
            "127.0.0.1:0",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(r"serving GMAP on 127\.0\.0\.1:(\d+) for alice@localhost", line)
            port = int(found.group(1)) if found else 0
        assert port, "receive did not report its GMAP listener"
        assert ask(port, me, "gemini://localhost/tag/Inbox")[0] == "20 text/plain"
        assert ask(port, None, "gemini://localhost/tag/Inbox")[0] == (
            "60 Client certificate required"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert process.returncode == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["trickle-handshake", "idle-tls"])
def test_a_crowd_of_strangers_does_not_keep_the_laptop_out(home: Profile, mode: str) -> None:
    """GMAP's port is open to the world: 240 connections from 30 addresses (8 each, the cap),
    trickling a ClientHello or silent after the handshake, against a table of 100. The
    mailbox's own requests still get their answer, each within a second, and no stranger
    outlives the deadline from accept."""
    from helpers.crowd import Crowd
    from helpers.receivers import raise_nofile

    rid = gmap_id(_receive(home), "2026-01-02T03:04:05Z").encode()
    me = _creds(home)
    raise_nofile(4096)
    limits = Limits(max_connections=100, handshake_timeout=2.0, request_timeout=3.0)
    with serving(home, limits) as port, Crowd(port, mode, size=240, addresses=30, net=9) as crowd:
        time.sleep(1.5)  # past the grace: the crowd holds every slot
        took = []
        for _ in range(8):
            began = time.monotonic()
            assert ask(port, me, "gemini://localhost/tag/") == ("20 text/plain", rid)
            took.append(time.monotonic() - began)
            time.sleep(0.3)
        time.sleep(2.0)
        lifetimes = list(crowd.lifetimes)
    assert max(took) < 1.0, took
    assert crowd.reopened > 0, "no stranger was ever cut"
    assert max(lifetimes) < limits.request_timeout + 1.0, max(lifetimes)


@pytest.mark.timeout(60)
def test_a_slow_mailbox_keeps_its_one_connection_while_a_crowd_churns(home: Profile) -> None:
    """The table is full of a crowd from 30 addresses, cut and back again all the time. The
    mailbox connects and says nothing for 2 s (a slow link), longer than any stranger has
    lived: the busiest addresses make room, never the one connection of an address alone."""
    from helpers.crowd import Crowd
    from helpers.raw_tls import client_context
    from helpers.receivers import raise_nofile

    rid = gmap_id(_receive(home), "2026-01-02T03:04:05Z").encode()
    me = _creds(home)
    raise_nofile(4096)
    limits = Limits(max_connections=100, handshake_timeout=4.0, request_timeout=5.0)
    with serving(home, limits) as port, Crowd(port, "trickle-handshake", 240, 30, net=10):
        time.sleep(1.5)  # past the grace: the crowd holds every slot
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            time.sleep(2.0)  # no byte yet: the least progress, and older than the grace
            with client_context(me).wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"gemini://localhost/tag/\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
    assert answer.partition(b"\r\n")[::2] == (b"20 text/plain", rid)


def test_a_large_letter_and_a_request_at_the_limit_come_through_whole(home: Profile) -> None:
    body = b"".join(b"line %06d of a long letter\n" % n for n in range(16_000))  # ~430 KB
    raw = RAW + body
    rid = gmap_id(_receive(home, raw), "2026-01-02T03:04:05Z")
    me = _creds(home)
    at_limit = "gemini://localhost/" + "a" * (1024 - len("gemini://localhost/"))
    with serving(home) as port:
        assert ask(port, me, f"gemini://localhost/msgid/{rid}") == ("20 text/plain", raw)
        assert ask(port, me, at_limit)[0] == "51 Unknown route"
        assert ask(port, me, at_limit + "a")[0] == "59 Request exceeds 1024 bytes"
