"""What every trust prompt shares: the look, the wording helpers and the verify-by-paste flow.

Wording follows trust-and-mail-ux.md b.6: the title says what happened, one sentence on why it
matters, what happened to the letter, the key in 4-character groups with SHA-256 named, how to
check it, and the safe choice as the default. A prompt decides nothing: it returns the person's
`Answer` (None: leave the letter waiting) and the core's delivery conversation acts on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static
from textual.widgets.button import ButtonVariant

from misfin_tui.core import fingerprint
from misfin_tui.core.clock import parse_time
from misfin_tui.core.network import UNKNOWN_ID as UNKNOWN_NETWORK_ID
from misfin_tui.core.text import visible
from misfin_tui.core.trust.model import Answer, Choice, Held, Question

NOT_SENT = "Nothing was sent; the letter is waiting in the Outbox."


def not_sent(q: Question) -> str:
    """What waits while the question is open: a letter in the Outbox, or a sync from home."""
    return NOT_SENT if q.held is Held.LETTER else q.held.waits


PROMPT_CSS = """
#dialog {
    width: 84;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $primary;
    background: $surface;
    padding: 1 2;
}
#dialog > .title {
    text-style: bold; width: 100%; border-bottom: solid $primary; padding-bottom: 0;
}
#dialog > .para { margin: 1 0 0 0; width: 100%; }
#dialog > .state { margin: 1 0 0 0; text-style: bold; }
#dialog > .warning {
    margin: 1 0 0 0; padding: 0 1; border-left: thick $warning; width: 100%;
}
#dialog > FingerprintView { margin: 1 0 0 0; }
#details { height: auto; }
#dialog.alarm { border: thick $error; }
#dialog.alarm > .title { color: $text-error; border-bottom: solid $error; }
#dialog > .buttons { height: auto; margin: 1 0 0 0; }
#dialog > .buttons Button { margin: 0 2 0 0; }
"""


# A short terminal (24 rows): no blank lines between parts, so every button fits on screen.
def short_css(screen: str) -> str:
    """The compact rules for one screen class (DEFAULT_CSS is scoped to its class)."""
    short = f"{screen}.-short #dialog"
    return f"""
{short} {{ padding: 0 1; scrollbar-gutter: stable; }}
{short} > .para, {short} > .state, {short} > .warning,
{short} > FingerprintView, {short} > .buttons {{ margin: 0; }}
{short} > .buttons Button {{ margin: 0 1 0 0; }}
"""


# Screens get the class "-short" under 30 rows.
BREAKPOINTS = [(0, "-short"), (30, "-tall")]


def day(iso: str) -> str:
    """The date part of an ISO time, for prose."""
    return iso[:10] if iso else "an unknown date"


def days_left(iso: str, now: datetime | None) -> int | None:
    """Whole days from now until an ISO-8601 UTC time (negative once it has passed)."""
    when = parse_time(iso)
    if when is None:
        return None
    return (when - (now or datetime.now(UTC))).days


def network_line(question: Question) -> str:
    net = question.network
    label = net.label or "unknown network"
    return f"network: {label} ({'trusted' if net.trusted else 'not trusted'})"


def presented_fp(question: Question) -> str:
    return question.presented.fingerprint if question.presented else ""


def pinned_fp(question: Question) -> str:
    return question.pinned.fingerprint if question.pinned else ""


def presented_spki(question: Question) -> str:
    return question.presented.spki if question.presented else ""


def presented_until(question: Question) -> str:
    return question.presented.not_after if question.presented else ""


def pinned_until(question: Question) -> str:
    return question.pinned.not_after if question.pinned else ""


def pinned_since(question: Question) -> str:
    return question.pinned.first_seen if question.pinned else ""


def is_default_label(label: str) -> bool:
    """The core's stand-in labels ("network 3fa2…", "unknown network"), not a person's name."""
    return not label or label == "unknown network" or label.startswith("network ")


def mismatch_reason(pasted: str) -> str:
    """Why a pasted fingerprint was refused, in plain words: not a fingerprint at all (what
    fingerprint.pasted() says), or one that names another key."""
    try:
        fingerprint.pasted(pasted)
    except fingerprint.NotAFingerprint as exc:
        text = str(exc)
        return text[:1].upper() + text[1:] + "."
    return "That fingerprint does NOT match the key the server presented."


def key_display(screen: Screen[Any], action: str) -> str:
    """The key `screen` binds to `action`, written as the footer writes it ("t", "esc"), a
    [keys] override included; "" when the screen has no key for it."""
    for active in screen.active_bindings.values():
        if active.node is screen and active.binding.action == action:
            return screen.app.get_key_display(active.binding)
    return ""


def button(
    screen: Screen[Any], action: str, label: str, *, id: str, variant: ButtonVariant = "default"
) -> Button:
    """A compact button labelled with the key of `action` as the footer writes it:
    "[t] Trust & send". The label is plain text: its brackets (and any address in it) are
    never read as markup."""
    key = key_display(screen, action)
    return Button(
        Content(f"[{key}] {label}" if key else label), id=id, variant=variant, compact=True
    )


def para(text: str, classes: str = "para") -> Static:
    """Prose that may carry text from the network: never markup, control characters shown."""
    return Static(Content(visible(text, newlines=True)), classes=classes)


class QuestionScreen(ModalScreen[Answer | None]):
    """Shared behaviour: offer only what the core offers, verify by paste, answer."""

    DEFAULT_CSS = (
        f"QuestionScreen {{ align: center middle; }}\n{PROMPT_CSS}\n{short_css('QuestionScreen')}"
    )
    VERTICAL_BREAKPOINTS = BREAKPOINTS

    # action -> the choice the core must offer for it (absent: always possible)
    NEEDS: dict[str, Choice] = {
        "trust": Choice.TRUST,
        "once": Choice.ONCE,
        "send_anyway": Choice.ONCE,
        "accept": Choice.TRUST,
        "verify": Choice.VERIFY,
        "mark_network": Choice.TRUST_NETWORK,
    }
    DEFAULT_BUTTON = "#do-keep"

    def __init__(self, question: Question, *, now: datetime | None = None) -> None:
        super().__init__()
        self.question = question
        self.now = now  # injected by tests; None = the clock

    def answer(self, choice: Choice, pasted: str = "", label: str = "") -> None:
        self.dismiss(Answer(choice, pasted, label))

    def allowed(self, action: str) -> bool:
        """Offer only what the core offers (a strict policy drops "trust" and "once")."""
        if action == "mark_network" and self.question.network.id == UNKNOWN_NETWORK_ID:
            return False
        need = self.NEEDS.get(action)
        return need is None or need in self.question.choices

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.allowed(action)

    def on_mount(self) -> None:
        self.app.clear_notifications()  # a toast must not cover what the question says
        for widget in self.query(Button):
            action = (widget.id or "").removeprefix("do-").replace("-", "_")
            widget.display = self.allowed(action)
        # The safe choice has the focus; the dialog stays scrolled to its top (it scrolls with
        # the arrow keys on a small terminal).
        self.query_one(self.DEFAULT_BUTTON, Button).focus(scroll_visible=False)

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        action = (event.button.id or "").removeprefix("do-")
        if action:
            event.stop()
            await self.run_action(action.replace("-", "_"))

    def action_verify(self) -> None:
        """Paste the fingerprint you were given; a match pins the key as verified and sends."""
        q = self.question

        def done(pasted: str | None) -> None:
            if pasted:
                self.answer(Choice.VERIFY, pasted)

        self.app.push_screen(
            PasteFingerprintScreen(
                (presented_fp(q), presented_spki(q)),
                title=f"Verify {q.host}",
                intro=(
                    f"Paste the fingerprint of {q.host} that you got from "
                    f"{q.recipient} or the server's operator. misfin_tui "
                    "compares it for you."
                ),
            ),
            done,
        )

    def action_keep(self) -> None:
        """Close and leave the letter waiting in the Outbox."""
        self.dismiss(None)


class PasteFingerprintScreen(ModalScreen[str | None]):
    """Paste-to-verify: the core compares, the person never compares hex by eye."""

    HELP_TITLE = "Verify a fingerprint"

    HELP = """\
Paste the fingerprint you were given (any case; spaces and colons are fine).
enter  compare;  esc  cancel
"""

    DEFAULT_CSS = f"""
    PasteFingerprintScreen {{ align: center middle; }}
    {PROMPT_CSS}
    PasteFingerprintScreen #dialog > Input {{ margin: 1 0 0 0; }}
    PasteFingerprintScreen #dialog > #result {{ margin: 1 0 0 0; color: $text-error; }}
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self, actual: str | tuple[str, ...], *, title: str, intro: str, refuse_note: str = ""
    ) -> None:
        """`actual`: the value(s) a paste may match (a certificate hash, a key hash)."""
        super().__init__()
        self.actual = (actual,) if isinstance(actual, str) else tuple(a for a in actual if a)
        self.title_text = title
        self.intro = intro
        self.refuse_note = refuse_note or NOT_SENT

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.intro)
            yield Input(placeholder="SHA-256 fingerprint, e.g. 3F2A 9C1E 77B0 …", id="pasted")
            yield Static("", id="result")
            yield Label("enter: compare   esc: cancel", classes="para")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def compare(self, event: Input.Submitted) -> None:
        event.stop()
        pasted = event.value.strip()
        if any(fingerprint.matches(pasted, actual) for actual in self.actual):
            self.dismiss(pasted)
            return
        self.query_one("#result", Static).update(
            Content(f"{mismatch_reason(pasted)} {self.refuse_note}")
        )

    def action_cancel(self) -> None:
        """Go back without comparing."""
        self.dismiss(None)


class TextInputScreen(ModalScreen[str | None]):
    """One line of text (a network label, a nickname).

    `default`: what an empty field means; it is shown in the field (as its placeholder) and
    in the line saying what Enter does, so Enter on the empty field saves what was shown.
    """

    HELP_TITLE = "Name"

    HELP = "Type and press enter; esc cancels.\n"

    DEFAULT_CSS = f"""
    TextInputScreen {{ align: center middle; }}
    {PROMPT_CSS}
    TextInputScreen #dialog > Input {{ margin: 1 0 0 0; }}
    TextInputScreen #dialog > .hint {{ color: $text-muted; }}
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self,
        title: str,
        intro: str,
        *,
        placeholder: str = "",
        value: str = "",
        default: str = "",
    ) -> None:
        super().__init__()
        self.title_text, self.intro = title, intro
        self.placeholder, self.value, self.default = placeholder or default, value, default

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.intro)
            yield Input(self.value, placeholder=self.placeholder, id="text")
            if self.default:
                yield para(f"Enter confirms (empty: “{self.default}”) · esc cancels", "hint")
            else:
                yield para("Enter confirms · esc cancels", "hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or self.default)

    def action_cancel(self) -> None:
        """Go back without saving."""
        self.dismiss(None)


# The name a network marked trusted gets when none is typed (shown in the field).
DEFAULT_NETWORK_NAME = "Home"


def mark_network_screen(intro: str, label: str = "") -> TextInputScreen:
    """The "mark this network as trusted" name dialog; `label` is the network's current one
    (the core's stand-in labels are not offered: the field then starts empty, meaning Home)."""
    return TextInputScreen(
        "Mark this network as trusted",
        intro,
        value="" if is_default_label(label) else label,
        default=DEFAULT_NETWORK_NAME,
    )
