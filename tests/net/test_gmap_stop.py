"""Stopping our GMAP server (`receive --gmap-listen` on SIGTERM) while a request is answered:
the request finishes and its answer leaves before the connection closes (a tag moved on the
store gets its 20, so the laptop does not send it again), and stop() never waits past its
grace for a request that hangs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from helpers.certs import identity_creds
from helpers.gmap import ask
from helpers.profiles import make_profile

from misfin_tui.core.gmap import server as gmap_server
from misfin_tui.core.gmap.server import GmapServer, gmap_id
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.tls_server import STOP_GRACE

RAW = b"bob@example.org Bob\nalice@localhost\n2026-01-02T03:04:05Z\n# Hello\nFirst line\n"


def _letter(profile: Profile) -> int:
    return MailStore(profile.database()).add(
        folder="Inbox",
        raw=RAW,
        sender="bob@example.org",
        subject="Hello",
        body="First line\n",
        received_at="2026-01-02T03:04:05Z",
        mailbox="alice@localhost",
        unread=True,
        identity="alice@localhost",
    )


def _slow(monkeypatch: pytest.MonkeyPatch, seconds: float, began: threading.Event) -> None:
    handle = gmap_server.GmapService.handle

    def slow(self: gmap_server.GmapService, line: bytes, der: bytes | None) -> object:
        began.set()
        time.sleep(seconds)
        return handle(self, line, der)

    monkeypatch.setattr(gmap_server.GmapService, "handle", slow)


@pytest.mark.parametrize("work", [0.3, 3.0], ids=["within-grace", "hanging"])
def test_stop_answers_a_request_in_progress_or_cuts_it_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: float
) -> None:
    home = make_profile(tmp_path / "home", "alice@localhost", ca=True, trusted=True)
    letter = _letter(home)
    rid = gmap_id(letter, "2026-01-02T03:04:05Z")
    me = identity_creds(home, "alice@localhost")
    server = GmapServer(home, ("127.0.0.1", 0))
    _, port = server.start()
    began = threading.Event()
    _slow(monkeypatch, work, began)
    answers: list[tuple[str, bytes]] = []
    asking = threading.Thread(
        target=lambda: answers.append(ask(port, me, f"gemini://localhost/tag/Archive?{rid}"))
    )
    asking.start()
    assert began.wait(10)
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    asking.join(timeout=10)
    if work < STOP_GRACE:
        assert answers == [("20 text/plain", b"Tag added")]
        assert took < work + 0.5
    else:  # cut: no 20, and stop() kept to its grace
        assert answers and not answers[0][0].startswith("20")
        assert took < STOP_GRACE + 0.5
