"""The Outbox: every letter not yet delivered, with its state and the reason in plain words.

A letter leaves the outbox only when the recipient's server answered 20, so nothing is ever
silently lost: what waits for a person says so ("waiting for your decision"), what waits for the
network says when it is tried again. The list is re-read from the core every few seconds in a
thread worker.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from misfin_tui.core.clock import parse_time
from misfin_tui.core.outbox.model import OutboxItem, State
from misfin_tui.core.text import one_line, visible
from misfin_tui.ui.messages import OutboxChanged
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.sending import outbox_changed
from misfin_tui.ui.session import Session

REFRESH_SECONDS = 2.0

# The table's columns and the widest each may grow; Reason takes what is left of the width
# (at least REASON_MIN), cut with "…" — the pane under the table shows the whole reason.
COLUMNS = (("#", 4), ("To", 24), ("Subject", 20), ("State", 14))
REASON_MIN = 12


def local_hhmm(iso: str | None) -> str:
    """hh:mm in the local time zone for an ISO-8601 UTC time ('' when unreadable)."""
    when = parse_time(iso) if iso else None
    return when.astimezone().strftime("%H:%M") if when else ""


STATE_WORDS = {
    State.QUEUED: "queued",
    State.SENDING: "sending…",
    State.DELIVERED: "delivered",
    State.DECISION: "waiting for your decision",
    State.HELD: "held until a trusted network",
    State.DEFERRED: "deferred",
    State.REDIRECTED: "redirected: confirm to resend",
    State.FAILED: "failed",
    State.DROPPED: "dropped",
}


# The same states in a word or two, for the table's narrow State column.
STATE_SHORT = {
    State.QUEUED: "queued",
    State.SENDING: "sending…",
    State.DELIVERED: "delivered",
    State.DECISION: "your decision",
    State.HELD: "held",
    State.DEFERRED: "retry",
    State.REDIRECTED: "redirected",
    State.FAILED: "failed",
    State.DROPPED: "dropped",
}


def state_text(item: OutboxItem, *, short: bool = False) -> str:
    """The state of an outbox item as a person reads it (`short`: for the table)."""
    if item.state is State.DEFERRED:
        at = local_hhmm(item.next_attempt_at)
        word = "retry at" if short else "deferred until"
        return f"{word} {at}" if at else STATE_SHORT[item.state] if short else "deferred"
    return (STATE_SHORT if short else STATE_WORDS)[item.state]


class OutboxScreen(Screen[None]):
    """Every outbox item: state, reason; retry, drop, decide."""

    HELP_TITLE = "Outbox"

    HELP = """\
Outbox: letters that have not been delivered yet. A letter leaves it only when the
recipient's server confirms delivery.
r  retry now (a deferred or failed letter, or re-check a held one)
d  drop - delete the letter from the Outbox (asks first)
enter  decide - for a letter waiting for you (first contact, changed key, held, redirect)
Esc or q  close
"""

    DEFAULT_CSS = """
    OutboxScreen #outbox-title { height: 1; padding: 0 1; text-style: bold; }
    OutboxScreen DataTable { height: 1fr; }
    OutboxScreen #outbox-detail {
        height: 8;
        border-top: tall $primary;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="outbox.close"),
        Binding("r", "retry", "Retry", id="outbox.retry"),
        Binding("d", "drop", "Drop…", id="outbox.drop"),
        # priority: the key is ours, not the table's "select" (which only led here through
        # RowSelected, and hid Decide from the footer and help)
        Binding("enter", "decide", "Decide", id="outbox.decide", priority=True),
        Binding("question_mark", "app.help", "Help", id="outbox.help"),
    ]

    def __init__(self, session: Session, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        super().__init__()
        self.session = session
        self.refresh_seconds = refresh_seconds
        self.items: list[OutboxItem] = []

    def compose(self) -> ComposeResult:
        yield Static("Outbox", id="outbox-title")
        yield DataTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="outbox-detail"):
            yield Static("", id="outbox-reason")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.reload)

    @work(thread=True, exclusive=True, group="outbox-load")
    def reload(self) -> None:
        """Read the outbox off the UI thread."""
        every = self.session.engine.outbox.items()
        # A delivered item stays in view while its letter still waits for other recipients.
        waiting = {item.letter_id for item in every if item.state is not State.DELIVERED}
        items = [item for item in every if item.letter_id in waiting]
        if not get_current_worker().is_cancelled:  # a newer read started meanwhile: it wins
            self.app.call_from_thread(self.show, items)

    def on_resize(self) -> None:
        """Columns fit the new width: the reason gets what the others leave."""
        if self.items or self.query_one(DataTable).columns:
            self.show(self.items)

    def show(self, items: list[OutboxItem]) -> None:
        self.items = items
        table = self.query_one(DataTable)
        selected = self.selected()
        rows = [
            (
                str(item.id),
                one_line(item.recipient),
                one_line(item.subject) or "(no subject)",
                state_text(item, short=True),
                one_line(item.reason.splitlines()[0] if item.reason else ""),
            )
            for item in items
        ]
        table.clear(columns=True)
        used = 0
        for index, (label, widest) in enumerate(COLUMNS):
            width = min(widest, max([len(label), *(len(row[index]) for row in rows)]))
            table.add_column(label, width=width)
            used += width + 2 * table.cell_padding
        scrollbar = 2  # the vertical scrollbar, when the rows overflow
        table.add_column(
            "Reason",
            width=max(REASON_MIN, self.size.width - used - 2 * table.cell_padding - scrollbar),
        )
        for item, row in zip(items, rows, strict=True):
            table.add_row(
                *(Text(cell, no_wrap=True, overflow="ellipsis") for cell in row), key=str(item.id)
            )
        if selected is not None and any(i.id == selected.id for i in items):
            table.move_cursor(row=table.get_row_index(str(selected.id)))
        count = len({item.letter_id for item in items})
        self.query_one("#outbox-title", Static).update(
            Content(f"Outbox · {count} letter{'s' if count != 1 else ''} waiting")
            if count
            else Content("Outbox · empty: every letter has been delivered")
        )
        self.show_reason()

    @on(OutboxChanged)
    def _outbox_changed(self) -> None:
        """The app says the outbox changed: show it now, not at the next refresh."""
        if self.query_one(DataTable).columns:
            self.reload()

    def on_screen_resume(self) -> None:
        """Back from a prompt: show the new states at once."""
        if self.query_one(DataTable).columns:
            self.reload()

    def selected(self) -> OutboxItem | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((item for item in self.items if str(item.id) == key), None)

    @on(DataTable.RowHighlighted)
    def show_reason(self) -> None:
        item = self.selected()
        text = ""
        if item is not None:
            text = f"#{item.id} to {item.recipient}: {state_text(item)}\n{item.reason}"
            if item.state.waiting:
                text += "\nPress enter to decide."
        self.query_one("#outbox-reason", Static).update(Content(visible(text, newlines=True)))

    def action_close(self) -> None:
        """Back to where you were."""
        self.dismiss(None)

    def action_retry(self) -> None:
        """Try the selected letter again now."""
        item = self.selected()
        if item is not None:
            self.session.sending.retry(item.id)

    def action_drop(self) -> None:
        """Delete the selected letter from the Outbox, after asking."""
        item = self.selected()
        if item is None:
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Drop the letter to {item.recipient}?",
                "It will not be sent, and it is removed from the Outbox.",
                yes="Drop",
            ),
            lambda yes: self._drop_if(yes, item.id),
        )

    def _drop_if(self, yes: bool | None, item_id: int) -> None:
        if yes:
            self.drop(item_id)

    @work(thread=True, group="outbox-action")
    def drop(self, item_id: int) -> None:
        try:
            self.session.engine.outbox.drop(item_id)
            message, severity = f"Dropped letter #{item_id}; it will not be sent.", "information"
        except Exception as exc:  # the core's errors are plain words for the person
            message, severity = str(exc), "error"
        self.app.call_from_thread(self.notify, message, severity=severity, markup=False)
        self.app.call_from_thread(self.reload)
        outbox_changed(self.app)  # the folder counts are read again

    def action_decide(self) -> None:
        """Open the question for a letter that waits for you."""
        item = self.selected()
        if item is None:
            return
        if item.state.waiting:
            self.session.sending.decide(item.id)
        else:
            self.notify(
                f"Letter #{item.id} is {state_text(item)}; nothing to decide.", markup=False
            )

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_decide()
