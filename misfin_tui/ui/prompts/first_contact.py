"""First contact with a server, on a trusted network (b.6 prompt 1) or not (prompt 2)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from misfin_tui.core.network import UNKNOWN_ID as UNKNOWN_NETWORK_ID
from misfin_tui.core.trust.model import Choice
from misfin_tui.ui.prompts.common import (
    QuestionScreen,
    button,
    day,
    key_display,
    mark_network_screen,
    network_line,
    not_sent,
    para,
    presented_fp,
    presented_until,
)
from misfin_tui.ui.widgets.fingerprint import FingerprintView


class FirstContactScreen(QuestionScreen):
    """First letter to a server never contacted before, on a trusted network (b.6 prompt 1)."""

    HELP_TITLE = "First contact"

    HELP = """\
First contact: this server has never been contacted before.
t  trust & send - remember this server's key and send the letter
o  send once - send this letter, remember nothing, ask again next time
v  verify - paste the fingerprint you were given; misfin_tui compares it
esc  keep the letter in the Outbox and decide later
"""

    BINDINGS = [
        Binding("t", "trust", "Trust & send", id="prompt.trust"),
        Binding("o", "once", "Send once", id="prompt.once"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("escape", "keep", "Keep in Outbox", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    untrusted = False
    DEFAULT_BUTTON = "#do-trust"

    def compose(self) -> ComposeResult:
        q = self.question
        with VerticalScroll(id="dialog"):
            if self.untrusted:
                yield para(
                    f"New server for {q.recipient} — you are on an untrusted network",
                    "title",
                )
            else:
                yield para(f"New server for {q.recipient}", "title")
            if self.untrusted:
                yield para(
                    f"You have not approved the key of {q.host} yet, and you are "
                    f"connected through a network you have not marked as trusted "
                    f"({q.network.label or 'unknown network'}"
                    f"{'; ' + q.network.hints if q.network.hints else ''}). "
                    "Whoever runs this network "
                    f"could point {q.host} at a different server, and you would have no way "
                    "to notice it on a first contact.",
                    "warning",
                )
                if q.network.caution:
                    yield para(q.network.caution, "warning")
            else:
                yield para(
                    f"You have not approved the key of {q.host} yet, so misfin_tui cannot tell "
                    "whether this server is genuine. If you trust it now, misfin_tui will "
                    "remember it and warn you if it ever changes."
                )
            if q.vouch is not None:
                yield para(q.vouch.words)
            yield FingerprintView("Fingerprint", presented_fp(q))
            yield para(
                f"Certificate valid until {day(presented_until(q))} · {network_line(q)}",
                "para",
            )
            yield para(
                f"If {q.recipient} or the server operator gave you a fingerprint, press "
                f"{key_display(self, 'verify')} and paste it; misfin_tui will compare it for you."
            )
            if self.untrusted:
                yield para("Mail to servers whose key you approved is not affected.")
                if q.network.id == UNKNOWN_NETWORK_ID:
                    yield para(
                        "This network could not be identified (no router address was found), "
                        "so it cannot be marked as trusted."
                    )
            yield para(not_sent(q), "state")
            with Horizontal(classes="buttons"):
                if self.untrusted:
                    yield button(
                        self, "hold", "Hold until trusted network", id="do-hold", variant="primary"
                    )
                    yield button(self, "verify", "Verify…", id="do-verify")
                    yield button(
                        self,
                        "send_anyway",
                        "Send anyway, once",
                        id="do-send-anyway",
                        variant="warning",
                    )
                else:
                    yield button(self, "trust", "Trust & send", id="do-trust", variant="primary")
                    yield button(self, "once", "Send once", id="do-once")
                    yield button(self, "verify", "Verify…", id="do-verify")
            with Horizontal(classes="buttons"):
                if self.untrusted:
                    yield button(
                        self, "mark_network", "Mark this network as trusted…", id="do-mark-network"
                    )
                yield button(self, "keep", "Keep in Outbox", id="do-keep")
        yield Footer()

    def action_trust(self) -> None:
        """Remember this server's key and send."""
        self.answer(Choice.TRUST)

    def action_once(self) -> None:
        """Send this one letter without remembering the key."""
        self.answer(Choice.ONCE)

    def action_hold(self) -> None:
        """Keep the letter until you are on a network you trust."""
        self.answer(Choice.HOLD)

    def action_send_anyway(self) -> None:
        """Send this letter to the key seen from this network, without remembering it."""
        self.answer(Choice.ONCE)

    def action_mark_network(self) -> None:
        """Name this network and mark it trusted; the letter is then asked about again."""

        def done(label: str | None) -> None:
            if label is not None:
                self.answer(Choice.TRUST_NETWORK, label=label)

        self.app.push_screen(
            mark_network_screen(
                "Only mark a network you control, such as your home or office. "
                "Give it a name you will recognise:",
                self.question.network.label,
            ),
            done,
        )


class UnfamiliarNetworkScreen(FirstContactScreen, inherit_bindings=False):
    """First contact while on a network not marked trusted (b.6 prompt 2): default Hold."""

    HELP_TITLE = "First contact on an untrusted network"

    HELP = """\
First contact on an untrusted network: whoever runs this network could point the
recipient's server name at another machine, and a first contact cannot notice that.
h  hold until you are on a trusted network (the default)
v  verify - paste the fingerprint you were given; a match sends safely from anywhere
s  send anyway - this letter only; the key seen from this network is not remembered
m  mark the current network as trusted (give it a name), then decide again
esc  keep the letter in the Outbox and decide later
"""

    BINDINGS = [
        *Screen.BINDINGS,
        Binding("h", "hold", "Hold", id="prompt.hold"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("s", "send_anyway", "Send anyway", id="prompt.send_anyway"),
        Binding("m", "mark_network", "Mark network trusted…", id="prompt.mark_network"),
        Binding("escape", "keep", "Keep in Outbox", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    untrusted = True
    DEFAULT_BUTTON = "#do-hold"
