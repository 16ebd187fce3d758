"""Snapshots of every trust prompt, the trust manager, the outbox and the first-run screen.

Deterministic: fingerprints come from fixed-seed certificates, times are fixed or injected,
and database rows are written with fixed timestamps (no tmp paths or clocks on screen).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers.certs import fixed_cert
from helpers.pilot import TrustHost
from helpers.profiles import RECIPIENT, SENDER, open_profile
from textual.app import App
from textual.screen import Screen
from textual.widgets import Button, Input

from misfin_tui.core.outbox import Evidence
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import (
    Ask,
    Choice,
    NetworkFacts,
    PinFacts,
    PresentedCert,
    Question,
)
from misfin_tui.ui.prompts import ConfirmScreen, prompt_for
from misfin_tui.ui.screens.first_run import FirstRunScreen
from misfin_tui.ui.screens.outbox import OutboxScreen
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


HOME = NetworkFacts("home-net", "Home", True)
CAFE = NetworkFacts("cafe-net", "network cafe-net", False, hints="gateway 10.0.0.1 on wlan0")
NEW_CERT = PresentedCert(
    der=BOB_NEW.der,
    spki=BOB_NEW.spki,
    fingerprint=BOB_NEW.fingerprint,
    not_after="2036-01-01T00:00:00Z",
    not_before="2026-01-01T00:00:00Z",
)
# What the core offers for each question (an outbox item adds hold and drop).
HOST = (Choice.TRUST, Choice.ONCE, Choice.VERIFY, Choice.HOLD, Choice.DROP)


def question(ask: Ask, **extra: Any) -> Question:
    values: dict[str, Any] = {
        "ask": ask,
        "recipient": RECIPIENT,
        "hostport": "example.org:1958",
        "reason": "",
        "choices": HOST,
        "default": Choice.HOLD,
        "presented": NEW_CERT,
        "network": HOME,
    }
    values.update(extra)
    return Question(**values)


PINNED = PinFacts(
    BOB.fingerprint,
    BOB.spki,
    not_after="2027-06-15T00:00:00Z",
    state="pinned",
    origin="approved",
    first_seen="2026-03-02T09:30:00Z",
)
MAILBOX = PinFacts(BOB.fingerprint, state="alarm", origin="delivery")
PROMPTS = {
    "first_contact": question(Ask.FIRST_CONTACT, default=Choice.TRUST),
    "first_contact_unfamiliar_network": question(
        Ask.FIRST_CONTACT_UNTRUSTED,
        network=CAFE,
        choices=(
            Choice.HOLD,
            Choice.TRUST_NETWORK,
            Choice.VERIFY,
            Choice.ONCE,
            Choice.TRUST,
            Choice.DROP,
        ),
    ),
    "renewal": question(
        Ask.RENEWAL,
        pinned=replace(PINNED, not_after="2026-12-01T00:00:00Z"),
        choices=(Choice.TRUST, Choice.VERIFY, Choice.HOLD, Choice.DROP),
    ),
    "changed_key": question(
        Ask.CHANGED,
        pinned=PINNED,
        network=replace(HOME, label="network cafe-net", trusted=False),
        choices=(Choice.VERIFY, Choice.HOLD, Choice.DROP),
    ),
    "mailbox_alarm": question(
        Ask.MAILBOX_ALARM,
        presented=None,
        pinned=MAILBOX,
        reported=BOB_NEW.fingerprint,
        choices=(Choice.REVIEW,),
        default=Choice.REVIEW,
    ),
    "mailbox_paused": question(
        Ask.MAILBOX_CHANGED,
        presented=None,
        pinned=MAILBOX,
        reported=BOB_NEW.fingerprint,
        reason="The server reported a different key for bob@example.org than the one you "
        "trusted, and it is not issued by the same server key. Letters to this address are "
        "paused until you review it in Trust.",
        choices=(Choice.VERIFY, Choice.ONCE, Choice.REVIEW, Choice.HOLD, Choice.DROP),
    ),
    "redirect": question(
        Ask.REDIRECT,
        presented=None,
        target="robert@example.net",
        permanent=True,
        status=31,
        choices=(Choice.FOLLOW, Choice.HOLD, Choice.DROP),
    ),
}


def prompt(name: str) -> Screen[Any]:
    return prompt_for(PROMPTS[name], now=NOW)


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_prompt(snap_compare, name: str) -> None:
    assert snap_compare(ScreenHost(lambda: prompt(name)), terminal_size=SIZE)


@pytest.mark.parametrize("name", ["first_contact", "first_contact_unfamiliar_network", "renewal"])
def test_prompt_at_80x24(snap_compare, name: str) -> None:
    """Every button on screen at 80×24 (the compact layout under 30 rows)."""
    assert snap_compare(ScreenHost(lambda: prompt(name)), terminal_size=(80, 24))


def test_changed_key_details(snap_compare) -> None:
    app = ScreenHost(lambda: prompt("changed_key"))
    assert snap_compare(app, press=["d"], terminal_size=SIZE)


def test_paste_refused(snap_compare) -> None:
    async def paste_wrong(pilot) -> None:
        await pilot.press("r")
        await pilot.pause()
        pilot.app.screen.query_one(Input).cursor_blink = False
        pilot.app.screen.query_one(Input).insert_text_at_cursor(
            "AB12 CD34 EF56 7890 0000 1111 2222 3333"
        )
        await pilot.press("enter")

    app = ScreenHost(lambda: prompt("changed_key"))
    assert snap_compare(app, terminal_size=SIZE, run_before=paste_wrong)


def footer_keys(screen: Screen[Any]) -> set[str]:
    """The keys as the footer writes them ("t", "esc")."""
    return {screen.app.get_key_display(a.binding) for a in screen.active_bindings.values()}


def button_labels(screen: Screen[Any]) -> list[str]:
    return [str(b.label) for b in screen.query(Button) if b.display]


@pytest.mark.parametrize("name", sorted(PROMPTS))
async def test_prompt_buttons_write_keys_as_the_footer_does(name: str) -> None:
    app = ScreenHost(lambda: prompt(name))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        labels = button_labels(app.screen)
        assert labels
        for label in labels:
            key = re.match(r"\[([^\]]+)\] ", label)
            assert key is not None, label
            assert key[1] in footer_keys(app.screen), (label, footer_keys(app.screen))


async def test_confirm_buttons_write_keys_as_the_footer_does() -> None:
    app = ScreenHost(lambda: ConfirmScreen("Forget bob?", "Really.", yes="Forget"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert button_labels(app.screen) == ["[y] Forget", "[n] No"]


async def test_a_key_override_reaches_the_prompt_buttons() -> None:
    app = ScreenHost(lambda: prompt("first_contact"))
    app.set_keymap({"prompt.trust": "ctrl+y"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "[^y] Trust & send" in button_labels(app.screen)


async def test_an_address_in_a_button_is_never_markup() -> None:
    target = "[b]robert[/b]@example.net"
    app = ScreenHost(lambda: prompt_for(replace(PROMPTS["redirect"], target=target), now=NOW))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert f"[f] Send to {target}" in button_labels(app.screen)


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
        " first_seen, last_seen, verified_at, alarm_fingerprint)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (RECIPIENT, BOB.fingerprint, BOB.spki, "verified", "Bob", "Bobby", t0, t1, t1, ""),
            (
                "carol@carol.test",
                CAROL.fingerprint,
                "",
                "alarm",
                "Carol",
                "",
                t0,
                t1,
                None,
                BOB_NEW.fingerprint,
            ),
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


def asking(ask: Ask, recipient: str, **extra: Any) -> str:
    """The evidence column of an item waiting for a person."""
    host = recipient.partition("@")[2]
    return Evidence(question(ask, recipient=recipient, hostport=f"{host}:1958", **extra)).to_json()


def seed_outbox(profile: Any) -> None:
    store = MailStore(profile.database())
    conn = profile.database().connect()
    rows = [
        ("queued", "bob@example.org", "Lunch on Friday?", "", "{}", None),
        ("deferred", "carol@carol.test", "Minutes", "the server did not answer (next try at "
         "14:30)", "{}", "2026-11-28T14:30:00Z"),
        ("decision", "dave@new.example", "Hello from Alice", "You have not contacted "
         "new.example:1958 before.", asking(Ask.FIRST_CONTACT, "dave@new.example"), None),
        ("held", "erin@far.example", "Postcard", "First contact on an untrusted network.",
         asking(Ask.FIRST_CONTACT_UNTRUSTED, "erin@far.example", network=CAFE), None),
        ("redirected", "frank@old.example", "Moving?", "Send here forever: frank@new.example.",
         asking(Ask.REDIRECT, "frank@old.example", target="frank@new.example"), None),
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


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_trust_manager_servers(snap_compare, tmp_path, monkeypatch, size) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(profile, lambda session: TrustManagerScreen(session, now=NOW))
    assert snap_compare(app, terminal_size=size, run_before=settled)


def test_trust_manager_mailbox_alarm_selected(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(
        profile,
        lambda session: TrustManagerScreen(
            session, select=("mailboxes", "carol@carol.test"), now=NOW
        ),
    )
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_trust_manager_history(snap_compare, tmp_path, monkeypatch) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    app = TrustHost(profile, lambda session: TrustManagerScreen(session, now=NOW))

    async def history(pilot) -> None:
        await settled(pilot)
        await pilot.press("5")
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=history)


@pytest.mark.parametrize("size", [(80, 24), SIZE], ids=["80x24", "120x36"])
def test_outbox(snap_compare, tmp_path, monkeypatch, size) -> None:
    profile = seeded_profile(tmp_path, monkeypatch)
    seed_outbox(profile)
    app = TrustHost(profile, lambda session: OutboxScreen(session, refresh_seconds=0))

    async def second_row(pilot) -> None:
        await settled(pilot)
        await pilot.press("down")
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=second_row)


def test_first_run(snap_compare, tmp_path) -> None:
    async def no_blink(pilot) -> None:
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    profile = open_profile(tmp_path / "new", None, None)
    app = TrustHost(profile, lambda session: FirstRunScreen())
    assert snap_compare(app, terminal_size=SIZE, run_before=no_blink)
