"""Snapshots of every trust prompt, the trust manager, the outbox and the first-run screen.

Deterministic: fingerprints come from fixed-seed certificates, times are fixed or injected,
and database rows are written with fixed timestamps (no tmp paths or clocks on screen).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers.certs import fixed_cert
from helpers.pilot import TrustHost
from helpers.profiles import RECIPIENT, SENDER, open_profile
from textual.app import App
from textual.screen import Screen
from textual.widgets import Input

from misfin_tui.core.store import MailStore
from misfin_tui.ui.screens.first_run import FirstRunScreen
from misfin_tui.ui.screens.outbox import OutboxScreen
from misfin_tui.ui.screens.prompts import Ask, TrustQuestion, prompt_for
from misfin_tui.ui.screens.trust_manager import TrustManagerScreen

SIZE = (120, 36)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BOB = fixed_cert(2, RECIPIENT, blurb="Bob")
BOB_NEW = fixed_cert(3, RECIPIENT, blurb="Bob rebuilt")
CAROL = fixed_cert(4, "carol@carol.test", blurb="Carol")


class ScreenHost(App[None]):
    """Shows one screen over an empty default screen."""

    def __init__(self, screen: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


def question(ask: Ask, **extra: Any) -> TrustQuestion:
    values: dict[str, Any] = {
        "ask": ask,
        "recipient": RECIPIENT,
        "host": "example.org",
        "presented": BOB_NEW.fingerprint,
        "presented_spki": BOB_NEW.spki,
        "presented_not_after": "2036-01-01T00:00:00Z",
        "network_label": "Home",
        "network_trusted": True,
        "network_id": "home-net",
        "now": NOW,
    }
    values.update(extra)
    return TrustQuestion(**values)


PINNED = {
    "pinned": BOB.fingerprint,
    "pinned_not_after": "2027-06-15T00:00:00Z",
    "pinned_since": "2026-03-02T09:30:00Z",
}
PROMPTS = {
    "first_contact": question(Ask.FIRST_CONTACT),
    "first_contact_unfamiliar_network": question(
        Ask.FIRST_CONTACT_UNTRUSTED,
        network_label="network cafe-net",
        network_trusted=False,
        network_id="cafe-net",
        network_hints="gateway 10.0.0.1 on wlan0",
    ),
    "renewal": question(Ask.RENEWAL, **{**PINNED, "pinned_not_after": "2026-12-01T00:00:00Z"}),
    "changed_key": question(
        Ask.CHANGED, **PINNED, network_label="network cafe-net", network_trusted=False
    ),
    "mailbox_alarm": question(Ask.MAILBOX_ALARM, pinned=BOB.fingerprint),
    "mailbox_paused": question(
        Ask.MAILBOX_CHANGED,
        pinned=BOB.fingerprint,
        reason="The server reported a different key for bob@example.org than the one you "
        "trusted, and it is not issued by the same server key. Letters to this address are "
        "paused until you review it in Trust.",
        choices=("verify", "once"),
    ),
    "redirect": question(Ask.REDIRECT, target="robert@example.net", permanent=True),
}


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_prompt(snap_compare, name: str) -> None:
    assert snap_compare(ScreenHost(lambda: prompt_for(PROMPTS[name])), terminal_size=SIZE)


def test_changed_key_details(snap_compare) -> None:
    app = ScreenHost(lambda: prompt_for(PROMPTS["changed_key"]))
    assert snap_compare(app, press=["d"], terminal_size=SIZE)


def test_paste_refused(snap_compare) -> None:
    async def paste_wrong(pilot) -> None:
        await pilot.press("r")
        await pilot.pause()
        pilot.app.screen.query_one(Input).cursor_blink = False
        pilot.app.screen.query_one(Input).insert_text_at_cursor("AB12 CD34 EF56 7890 0000")
        await pilot.press("enter")

    app = ScreenHost(lambda: prompt_for(PROMPTS["changed_key"]))
    assert snap_compare(app, terminal_size=SIZE, run_before=paste_wrong)


# ----- screens over a profile with fixed rows --------------------------------------------------


def seeded_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "home-net")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    profile = open_profile(tmp_path / "alice", SENDER, fixed_cert(1, SENDER, blurb="Alice"))
    conn = profile.database().connect()
    t0, t1 = "2026-03-02T09:30:00Z", "2026-11-20T18:05:00Z"
    conn.executemany(
        "INSERT INTO hosts(hostport, spki, fingerprint, not_after, state, protocol, first_seen,"
        " first_network, last_seen, last_network) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("example.org:1958", BOB.spki, BOB.fingerprint, "2036-01-01T00:00:00Z", "verified",
             "C", t0, "home-net", t1, "home-net"),
            ("carol.test:1958", CAROL.spki, CAROL.fingerprint, "2026-12-20T00:00:00Z", "pinned",
             "B", t0, "home-net", t1, "home-net"),
            ("spam.example:1958", BOB_NEW.spki, BOB_NEW.fingerprint, "2030-01-01T00:00:00Z",
             "rejected", "C", t0, "", t0, ""),
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO mailboxes(address, fingerprint, issuer_spki, state, blurb, nickname,"
        " first_seen, last_seen, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (RECIPIENT, BOB.fingerprint, BOB.spki, "verified", "Bob", "Bobby", t0, t1, t1),
            ("carol@carol.test", CAROL.fingerprint, "", "alarm", "Carol", "", t0, t1, None),
        ],
    )
    conn.executemany(
        "INSERT INTO networks(id, label, trusted, strength, hints, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("home-net", "Home", 1, "strong", "gateway 192.168.1.1 on wlan0", t0, t1),
            ("cafe-net", "", 0, "weak", "gateway 10.0.0.1 on wlan0", t0, t0),
        ],
    )
    conn.executemany(
        "INSERT INTO trust_history(at, kind, subject, event, detail, network)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (t0, "host", "example.org:1958", "accepted", "first contact", "home-net"),
            (t0, "mailbox", RECIPIENT, "first-seen", f"fingerprint {BOB.fingerprint}", ""),
            (t1, "host", "example.org:1958", "verified", "pasted fingerprint", "home-net"),
            (t1, "mailbox", "carol@carol.test", "alarm",
             f"reported {BOB_NEW.fingerprint} instead of the pinned {CAROL.fingerprint}", ""),
        ],
    )  # fmt: skip
    return profile


def seed_outbox(profile: Any) -> None:
    store = MailStore(profile.database())
    conn = profile.database().connect()
    rows = [
        ("queued", "bob@example.org", "Lunch on Friday?", "", "{}", None),
        ("deferred", "carol@carol.test", "Minutes", "the server did not answer (next try at "
         "14:30 UTC)", "{}", "2026-11-28T14:30:00Z"),
        ("decision", "dave@new.example", "Hello from Alice", "You have not contacted "
         "new.example:1958 before.", json.dumps({"event": "first-contact"}), None),
        ("held", "erin@far.example", "Postcard", "First contact on an untrusted network.",
         json.dumps({"event": "first-contact-untrusted-network"}), None),
        ("redirected", "frank@old.example", "Moving?", "Send here forever: frank@new.example.",
         json.dumps({"event": "redirect", "target": "frank@new.example"}), None),
        ("failed", "gina@example.org", "Typo", "Mailbox not found (the server said: no such "
         "mailbox)", "{}", None),
    ]  # fmt: skip
    for state, recipient, subject, reason, evidence, next_at in rows:
        letter = store.add(
            folder="Outbox",
            raw=b"\n\n\n# " + subject.encode(),
            subject=subject,
            body=f"# {subject}\n",
            received_at="2026-11-28T11:00:00Z",
            identity=SENDER,
        )
        conn.execute(
            "INSERT INTO outbox(letter_id, recipient, identity, state, reason, evidence,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (letter, recipient, SENDER, state, reason, evidence, next_at, "2026-11-28T11:00:00Z",
             "2026-11-28T11:00:00Z"),
        )  # fmt: skip


async def settled(pilot) -> None:
    """Every read finished and every table measured (DataTable sizes columns when idle)."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)  # real time, so each DataTable gets its Idle and sizes columns
        await pilot.wait_for_scheduled_animations()


def test_trust_manager_servers(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(profile, lambda: TrustManagerScreen(now=NOW))
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_trust_manager_mailbox_alarm_selected(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(
        profile, lambda: TrustManagerScreen(select=("mailboxes", "carol@carol.test"), now=NOW)
    )
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_trust_manager_history(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(profile, lambda: TrustManagerScreen(now=NOW))

    async def history(pilot) -> None:
        await settled(pilot)
        await pilot.press("5")
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=history)


def test_outbox(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    seed_outbox(profile)
    app = TrustHost(profile, lambda: OutboxScreen(refresh_seconds=0))

    async def second_row(pilot) -> None:
        await settled(pilot)
        await pilot.press("down")
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=second_row)


def test_first_run(snap_compare, tmp_path) -> None:
    async def no_blink(pilot) -> None:
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    profile = open_profile(tmp_path / "new", None, None)
    app = TrustHost(profile, FirstRunScreen)
    assert snap_compare(app, terminal_size=SIZE, run_before=no_blink)
