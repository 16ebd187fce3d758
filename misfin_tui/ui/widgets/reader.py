"""The reading pane: who, when, who forwarded it, how far the sender is verified, then the body."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from misfin_tui.core import gemtext
from misfin_tui.core.store import StoredLetter
from misfin_tui.core.text import one_line
from misfin_tui.core.threads import Hop, address_key, forward_chain
from misfin_tui.ui.widgets.gemtext_view import GemtextView
from misfin_tui.ui.widgets.letter_list import OUTGOING, TRUST_MARKS, short_date

# Plain words for each verification state; the reason from the store follows when there is one.
TRUST_WORDS = {
    "verified": "Sender verified: their server vouches for this certificate.",
    "pending": "Checking the sender with their server…",
    "quarantined": "Quarantined: the sender could not be verified.",
    "rotated": "The sender's certificate changed; their server vouches for the new one.",
    "unverified": "Sender not verified.",
}
# With a reason, which says how the server vouched, the stock words would say it a second time
# (three lines at 80 columns, on nearly every letter): the state alone goes before it.
SHORT_WORDS = {"verified": "Sender verified."}


def trust_banner(letter: StoredLetter) -> tuple[str, str] | None:
    """(text, css class) for the banner above a letter, or None when there is nothing to say."""
    words = TRUST_WORDS.get(letter.trust)
    if words is None or letter.folder in OUTGOING:
        return None
    mark = "ⓘ" if letter.trust == "rotated" else TRUST_MARKS[letter.trust]
    text = f"{mark} {words}"
    reason = one_line(letter.trust_reason).strip()
    if reason:  # a fragment as the store keeps it: after a dash, ended as a sentence
        end = "" if reason.endswith((".", "!", "?", "…")) else "."
        words = SHORT_WORDS.get(letter.trust, words)
        text = f"{mark} {words.rstrip('.')} — {reason}{end}"
    return text, f"trust-{letter.trust}"


def chain_lines(letter: StoredLetter) -> tuple[list[str], bool]:
    """A forwarded letter's senders, newest first: "forwarded by b at …", …, "from a at …".

    Empty when one sender wrote and sent it (no forward). Only the newest hop is the
    authenticated sender; the older ones are what the letter says. The flag: the newest hop
    is the From line's sender (so a one-line head can leave it out).
    """
    try:
        hops = forward_chain(letter.raw, letter.version)
    except ValueError:  # a version we cannot read: no chain to show
        return [], False
    if len(hops) < 2:
        return [], False
    last = len(hops) - 1
    lines = [
        f"{'from' if index == last else 'forwarded by'} {_hop(hop)}"
        for index, hop in enumerate(hops)
    ]
    return lines, address_key(hops[0].address) == address_key(letter.sender)


def _hop(hop: Hop) -> str:
    text = one_line(hop.address) or "(unknown)"
    if hop.blurb:
        text += f" “{one_line(hop.blurb)}”"
    if hop.timestamp:
        text += f" at {one_line(short_date(hop.timestamp))}"
    return text


class Reader(Vertical):
    """Shows one stored letter, or a hint when none is open.

    While the reader has the focus its header is lit (like the list's cursor row), so a
    person sees where j/k, space and q now go.
    """

    DEFAULT_CSS = """
    Reader { height: 1fr; }
    Reader > #reader-head { height: auto; padding: 0 1; background: $boost; }
    Reader > #reader-head-short { height: auto; padding: 0 1; background: $boost; display: none; }
    Reader.-reading > #reader-head, Reader.-reading > #reader-head-short {
        background: $primary; color: $text;
    }
    Reader > #reader-banner { height: auto; padding: 0 1; display: none; }
    Reader > #reader-banner.trust-verified { display: block; color: $success; }
    Reader > #reader-banner.trust-pending { display: block; color: $text-muted; }
    Reader > #reader-banner.trust-rotated { display: block; color: $text-accent; }
    Reader > #reader-banner.trust-unverified { display: block; color: $warning; }
    Reader > #reader-banner.trust-quarantined {
        display: block; color: $text-error; background: $error-muted; text-style: bold;
    }
    """

    BINDINGS = [
        Binding("q,escape", "leave", "Back", id="reader.back", tooltip="Back to the letter list"),
    ]

    class Leave(Message):
        """q or Esc in the reader: the screen puts the focus back on the list."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.letter: StoredLetter | None = None

    def on_descendant_focus(self) -> None:
        # A class, not :focus-within: Textual restyles the focused widget's ancestors on a
        # focus change, not their other children (the header).
        self.add_class("-reading")

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._blurred)

    def _blurred(self) -> None:
        focused = self.screen.focused if self.is_attached else None
        if focused is None or self not in focused.ancestors:
            self.remove_class("-reading")

    def action_leave(self) -> None:
        """Back to the letter list."""
        self.post_message(self.Leave())

    def compose(self) -> ComposeResult:
        yield Static(Content("Select a letter to read it."), id="reader-head", classes="head")
        # On a short terminal (24 rows) two header lines, so the letter gets the room.
        yield Static(Content("Select a letter to read it."), id="reader-head-short", classes="head")
        yield Static(id="reader-banner")
        yield GemtextView(id="reader-body")

    def show(self, letter: StoredLetter | None) -> None:
        self.letter = letter
        head = self.query_one("#reader-head", Static)
        short = self.query_one("#reader-head-short", Static)
        banner = self.query_one("#reader-banner", Static)
        body = self.query_one(GemtextView)
        banner.set_classes("")

        if letter is None:
            head.update(Content("Select a letter to read it."))
            short.update(Content("Select a letter to read it."))
            body.show([])
            return
        chain, from_sender = chain_lines(letter)
        head.update(_head(letter, chain))
        short.update(_short_head(letter, chain[1:] if from_sender else chain))
        found = trust_banner(letter)
        if found is not None:
            banner.update(Content(found[0]))
            banner.set_classes(found[1])
        body.show(gemtext.parse(letter.body))


def _sender(letter: StoredLetter) -> str:
    sender = one_line(letter.sender) or "(unknown)"
    if letter.sender_blurb:
        sender += f"  “{one_line(letter.sender_blurb)}”"
    return sender


def _recipients(letter: StoredLetter) -> str:
    return one_line(", ".join(letter.recipients) or letter.mailbox) or "—"


def _short_head(letter: StoredLetter, chain: list[str]) -> Content:
    """From (To, for our own letters) and date on one line, the subject on the next; a forward's
    older senders on a third (the newest is the From line's)."""
    ours = letter.folder in OUTGOING  # letters we wrote: whom they go to is what counts
    parts: list[Content | str | tuple[str, str]] = [
        ("To: " if ours else "From: ", "bold"),
        _recipients(letter) if ours else _sender(letter),
        f" · {short_date(letter.received_at)}",
        "\n",
        ("Subject: ", "bold"),
        one_line(letter.subject) or "(no subject)",
    ]
    if chain:
        parts += ["\n", ("Forwarded: ", "bold"), ", ".join(chain)]
    return Content.assemble(*parts)


def _head(letter: StoredLetter, chain: list[str]) -> Content:
    sender = _sender(letter)
    rows = [
        ("From", sender),
        ("To", _recipients(letter)),
        ("Date", short_date(letter.received_at)),
        ("Subject", one_line(letter.subject) or "(no subject)"),
    ]
    rows += [("Chain" if index == 0 else "", line) for index, line in enumerate(chain)]
    parts: list[Content | str | tuple[str, str]] = []
    for index, (label, value) in enumerate(rows):
        if index:
            parts.append("\n")
        parts.append((f"{label:>8}: " if label else "          ", "bold"))
        parts.append(value)
    return Content.assemble(*parts)
