"""A server's META full of terminal escape sequences reaches no terminal raw, from any command.

The hostile server answers every letter with a META that would clear the screen, retitle the
window, ring the bell, back-space over text and reverse it with a bidi override if it were
written raw. `send`, `outbox list` (text and --json), `outbox retry` and the terminal asker
print it; each must show it only as visible symbols.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import env_for, route, trust_network

from misfin_tui.cli.asker import TerminalAsker
from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.outbox.model import State
from misfin_tui.core.profile import Profile
from misfin_tui.core.trust.model import Policy

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x08\x08\u202eevil\u2066\x9b31m"
RAW = ("\x1b", "\x07", "\x08", "\u202e", "\u2066", "\x9b")  # none of these may be printed


def cli(profile: Profile, *args: str, body: str = "Hi\n") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        input=body,
        capture_output=True,
        text=True,
        env=env_for(profile),
        timeout=60,
    )


def assert_clean(text: str) -> None:
    found = [repr(ch) for ch in RAW if ch in text]
    assert not found, f"raw control characters reached the terminal: {found}\n{text!r}"


@pytest.fixture
def hostile(sender: Profile, receiver_factory: Callable[..., FixtureReceiver]) -> FixtureReceiver:
    server = receiver_factory("example.org")
    route(sender, "example.org", server)
    trust_network(sender)
    return server


@pytest.mark.parametrize("status", ["59", "44", "51", "30", "20"])
def test_a_hostile_meta_is_shown_as_symbols_by_every_command(
    sender: Profile, hostile: FixtureReceiver, status: str
) -> None:
    hostile.answer = f"{status} {EVIL}"
    sent = cli(sender, "send", "--to", "bob@example.org", "--trust-new", "--no-input")
    assert sent.returncode in (0, 3, 4, 5), sent.stderr
    assert_clean(sent.stdout + sent.stderr)
    if status in ("59", "44", "51"):  # the server's words are quoted in the reason
        assert "␛" in sent.stdout or "\\x" in sent.stdout  # the META is shown, made visible
    for args in (
        ("outbox", "list", "--all"),
        ("outbox", "list", "--all", "--json"),
        ("trust", "list"),
        ("mail", "list", "--folder", "all"),
    ):
        shown = cli(sender, *args)
        assert shown.returncode == 0, shown.stderr
        assert_clean(shown.stdout + shown.stderr)
    listed = json.loads(cli(sender, "outbox", "list", "--all", "--json").stdout)
    if listed and listed[0]["state"] != "delivered":
        retried = cli(sender, "outbox", "retry", str(listed[0]["id"]), "--no-input")
        assert_clean(retried.stdout + retried.stderr)


def test_the_terminal_asker_shows_a_hostile_redirect_safely(
    sender: Profile, hostile: FixtureReceiver
) -> None:
    """A 30 to an address wrapped in escapes: the question printed on the terminal is clean."""
    hostile.answer = f"31 misfin://bob\x1b[2J@example.org {EVIL}"
    engine = Engine(sender, probe_timeout=5, deliver_timeout=5)
    out = io.StringIO()
    asker = TerminalAsker(io.StringIO("h\n"), out)
    letter = engine.outbox.enqueue("Hi\n", [Address.parse("bob@example.org")])
    ids = [item.id for item in engine.outbox.items(letter)]
    items = asyncio.run(engine.delivery.run(ids, asker, policy=Policy.ACCEPT_NEW))
    engine.close()
    assert items[0].state in (State.FAILED, State.REDIRECTED, State.HELD), items
    assert_clean(out.getvalue())
    assert_clean(items[0].reason)
