"""Render gemtext (already parsed by core.gemtext) as widgets, never as markup.

Each run of lines becomes a Static built from `Content(...)`, so `[bold]` in a letter is text,
and every string passes through `visible()` so escape sequences are shown, not executed.
Preformatted blocks keep their lines exactly (no wrapping) and scroll sideways.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from textual import events
from textual.binding import Binding
from textual.containers import HorizontalScroll, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from misfin_tui.core.gemtext import Kind, Line
from misfin_tui.core.text import one_line, visible


class GemLink(Static, can_focus=True):
    """A link line: click or Enter posts LinkActivated with its URL."""

    BINDINGS = [("enter", "activate", "Open link")]

    def __init__(self, url: str, label: str) -> None:
        shown = one_line(label) if label else one_line(url)
        text = Content.assemble(("⇒ ", "bold"), shown)
        if label:
            text = Content.assemble(text, "  ", (one_line(url), "dim"))
        super().__init__(text, classes="link")
        self.url = url

    def action_activate(self) -> None:
        self.post_message(GemtextView.LinkActivated(self.url))

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.action_activate()


class GemtextView(VerticalScroll):
    """A scrolling gemtext document: the arrows, j/k, space and b scroll it (pager keys)."""

    BINDINGS = [
        Binding("j", "scroll_down", "Scroll down", show=False),
        Binding("k", "scroll_up", "Scroll up", show=False),
        # With the page keys VerticalScroll already has, so help shows one row for each pair.
        Binding("space,pagedown", "page_down", "Page down", show=False),
        Binding("b,pageup", "page_up", "Page up", show=False),
    ]

    DEFAULT_CSS = """
    GemtextView { padding: 0 1; }
    GemtextView > Static { width: 1fr; }
    GemtextView > .h1 { text-style: bold; color: $accent; margin-top: 1; }
    GemtextView > .h2 { text-style: bold; color: $secondary; margin-top: 1; }
    GemtextView > .h3 { text-style: bold underline; }
    GemtextView > .link { color: $text-primary; }
    GemtextView > .link:focus { background: $primary 30%; }
    GemtextView > .quote { color: $text-muted; border-left: outer $secondary; padding-left: 1; }
    GemtextView > .list { padding-left: 1; }
    GemtextView > .pre-box { height: auto; background: $boost; scrollbar-size-horizontal: 1; }
    GemtextView > .pre-box > .pre { width: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    class LinkActivated(Message):
        """A link was chosen; the screen decides what to do with the URL."""

        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

    def show(self, lines: Sequence[Line]) -> None:
        """Replace the document."""
        self.remove_children()
        self.mount_all(list(_widgets(lines)))
        self.scroll_home(animate=False)


def _widgets(lines: Sequence[Line]) -> Iterator[Widget]:
    run: list[str] = []
    run_kind: Kind | None = None

    def flush() -> Iterator[Widget]:
        if run_kind is None:
            return
        css = {Kind.TEXT: "text", Kind.QUOTE: "quote", Kind.LIST_ITEM: "list"}[run_kind]
        yield Static(Content("\n".join(run)), classes=css)

    for line in lines:
        if line.kind in (Kind.TEXT, Kind.QUOTE, Kind.LIST_ITEM):
            if run_kind is not line.kind:
                yield from flush()
                run, run_kind = [], line.kind
            text = visible(line.text, newlines=False)
            if line.kind is Kind.LIST_ITEM:
                text = f"• {text}"
            run.append(text or " ")
            continue
        yield from flush()
        run, run_kind = [], None
        if line.kind is Kind.HEADING:
            yield Static(Content(visible(line.text)), classes=f"h{max(1, min(line.level, 3))}")
        elif line.kind is Kind.LINK:
            yield GemLink(line.url, line.text)
        elif line.kind is Kind.PREFORMATTED:
            text = visible(line.text, newlines=True) or " "
            box = HorizontalScroll(Static(Content(text), classes="pre"), classes="pre-box")
            if line.alt:
                box.tooltip = Content(one_line(line.alt))
            yield box
    yield from flush()
