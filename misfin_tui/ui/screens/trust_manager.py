"""The trust manager (trust-and-mail-ux.md b.7): servers, mailboxes, networks, pending, history.

The trust store doubles as the address book, and this is where "I accepted that by mistake"
is undone: every pin can be verified by pasting, forgotten (back to first contact) or rejected,
and every change lands in the append-only history. The screen reads the core in a thread
worker and calls it back for each action; it never decides anything itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from misfin_tui.core.fingerprint import grouped as group_fingerprint
from misfin_tui.core.text import one_line, visible
from misfin_tui.core.trust.model import Answer, Ask, HostState, MailboxState
from misfin_tui.ui.dates import local_time
from misfin_tui.ui.prompts import ConfirmScreen, prompt_for
from misfin_tui.ui.prompts.common import (
    PasteFingerprintScreen,
    TextInputScreen,
    mark_network_screen,
)
from misfin_tui.ui.screens.outbox import state_text
from misfin_tui.ui.session import Session
from misfin_tui.ui.widgets.fingerprint import (
    FINGERPRINT,
    KEY_PIN,
    fingerprint_rows,
    short_fingerprint,
)

if TYPE_CHECKING:
    from misfin_tui.core.network import Network
    from misfin_tui.core.trust import HistoryEntry, HostPin, MailboxPin

# A mark and a word for each state the core keeps a server or mailbox in (HostState's are the
# same words): "pinned" is trusted on first use, "verified" only after a pasted fingerprint matched.
STATE_MARKS: dict[str, str] = {
    MailboxState.VERIFIED: "✓ verified",
    MailboxState.PINNED: "• pinned",
    MailboxState.ALARM: "⚠ changed",
    MailboxState.REJECTED: "⛔ rejected",
    MailboxState.GONE: "✖ gone",
}
WIDE = 44  # detail-pane columns that fit eight fingerprint groups a line
SHA256_HEX = re.compile(r"\b[0-9a-f]{64}\b")  # a fingerprint or key pin in history's words


def state_mark(state: str) -> str:
    return STATE_MARKS.get(state, state)


def host_mark(h: HostPin, changed: Iterable[str] = ()) -> str:
    """A server's state as its row shows it: a key only seen (while verifying a sender, or
    for one "Send once") is not approved, and a server seen presenting another key (by a
    letter, a sync, a sender's check or a re-validation: its Sighting), or a letter waiting
    on a changed key, says so."""
    if h.state is not HostState.REJECTED and (h.changed is not None or h.hostport in changed):
        return "⚠ changed"
    if h.state is HostState.PINNED and not h.origin.approves:
        return "◦ seen"
    return state_mark(h.state)


def short_time(iso: str | None) -> str:
    """'2026-05-30 14:02' in local time from ISO-8601 UTC text (blank when absent)."""
    return local_time(iso)


def days_until(iso: str, now: datetime) -> str:
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    days = (when - now).days
    return f"{days} d" if days >= 0 else "expired"


def grouped(label: str, hex64: str, per_row: int = 8) -> str:
    """A labelled fingerprint in 4-character groups, `per_row` groups a line."""
    if not hex64:
        return ""
    rows = fingerprint_rows(hex64, per_row)
    return f"{label} (SHA-256):\n" + "\n".join("  " + row for row in rows)


@dataclass
class Snapshot:
    """Everything the screen shows, read in one go off the UI thread."""

    hosts: list[HostPin] = field(default_factory=list)
    mailboxes: list[MailboxPin] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    current: Network | None = None
    pending: list[Any] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    gmap_homes: frozenset[str] = frozenset()  # host:port of the identities' GMAP homes


class TrustManagerScreen(Screen[None]):
    """Servers · Mailboxes · Networks · Pending · History, with a detail pane."""

    HELP_TITLE = "Trust"

    HELP = (
        "Every server and mailbox you trust, the networks you marked, letters waiting for a "
        "decision, and the history of every trust change. Verify compares a fingerprint you "
        "paste (one you got by another channel) with the pinned one; forget and reject ask "
        "first, and every change is logged. u and n work on Mailboxes, enter on Pending; m "
        "marks the selected network, or the current one on the other tabs."
    )
    HELP_EVERY_KEY = True  # help lists the keys of every tab, not only the current one's

    DEFAULT_CSS = """
    TrustManagerScreen #trust-title { height: 1; padding: 0 1; text-style: bold; }
    TrustManagerScreen #trust-body { height: 1fr; }
    TrustManagerScreen TabbedContent { width: 1fr; }
    TrustManagerScreen DataTable { height: 1fr; }
    TrustManagerScreen #detail {
        width: 48;
        max-width: 40%;  /* at 80 columns the tabs keep 48: every label whole */
        border-left: tall $primary;
        padding: 0 1;
    }
    TrustManagerScreen #detail-text { width: 100%; }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="trust.close"),
        Binding("j", "move(1)", "Down", show=False, id="trust.down"),
        Binding("k", "move(-1)", "Up", show=False, id="trust.up"),
        Binding(
            "v", "verify", "Verify…", id="trust.verify",
            tooltip="Verify: paste fingerprint",
        ),
        Binding(
            "x", "forget", "Forget…", id="trust.forget",
            tooltip="Forget (first contact)",
        ),
        Binding(
            "b", "reject", "Reject…", id="trust.reject",
            tooltip="Reject: never send to it",
        ),
        # Out of the footer (it would cut off Help at 80 columns), listed in help:
        Binding(
            "u", "unverify", "Unverify", show=False, id="trust.unverify",
            tooltip="Unverify a mailbox",
        ),
        Binding(
            "n", "nickname", "Nickname…", show=False, id="trust.nickname",
            tooltip="Nickname for a mailbox",
        ),
        Binding(
            "c", "copy", "Copy fingerprint", show=False, id="trust.copy",
            tooltip="Copy the full fingerprint",
        ),
        Binding(
            "m", "mark_network", "Mark network", id="trust.mark_network",
            tooltip="Mark or unmark network",
        ),
        Binding(
            "enter", "decide", "Decide", id="trust.decide",
            tooltip="Decide on pending letter",
        ),
        Binding("1", "tab('servers')", "Go to Servers", show=False, id="trust.tab1"),
        Binding("2", "tab('mailboxes')", "Go to Mailboxes", show=False, id="trust.tab2"),
        Binding("3", "tab('networks')", "Go to Networks", show=False, id="trust.tab3"),
        Binding("4", "tab('pending')", "Go to Pending", show=False, id="trust.tab4"),
        Binding("5", "tab('history')", "Go to History", show=False, id="trust.tab5"),
        Binding("question_mark", "app.help", "Help", id="trust.help"),
    ]  # fmt: skip

    def __init__(
        self,
        session: Session,
        select: tuple[str, str] | None = None,
        *,
        now: datetime | None = None,
    ):
        """`select`: ("mailboxes" | "servers", name) to open with that entry selected."""
        super().__init__()
        self.session = session
        self.select = select
        self.now = now
        self.snapshot = Snapshot()

    def compose(self) -> ComposeResult:
        yield Static("Trust", id="trust-title")
        with Horizontal(id="trust-body"):
            with TabbedContent(id="tabs", initial=self.select[0] if self.select else "servers"):
                with TabPane("Servers", id="servers"):
                    yield DataTable(id="servers-table", cursor_type="row", zebra_stripes=True)
                with TabPane("Mailboxes", id="mailboxes"):
                    yield DataTable(id="mailboxes-table", cursor_type="row", zebra_stripes=True)
                with TabPane("Networks", id="networks"):
                    yield DataTable(id="networks-table", cursor_type="row", zebra_stripes=True)
                with TabPane("Pending", id="pending"):
                    yield DataTable(id="pending-table", cursor_type="row", zebra_stripes=True)
                with TabPane("History", id="history"):
                    yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail"):
                yield Static("", id="detail-text")
        yield Footer()

    def on_mount(self) -> None:
        columns = {
            "servers": ("Host:port", "State", "Fingerprint", "Last seen", "Expires"),
            "mailboxes": ("Address", "Nickname", "State", "Fingerprint", "Issued by"),
            "networks": ("Label", "Trusted", "ID", "Strength", "Hints", "Last seen"),
            "pending": ("#", "To", "State", "Reason"),
            "history": ("When", "Kind", "Subject", "Event", "Network"),
        }
        for name, cols in columns.items():
            self.table(name).add_columns(*cols)
        self.table(self.current_tab).focus()  # arrows and j/k move at once, not the tab bar
        self.refresh_data()

    # ----- data -------------------------------------------------------------------------------

    def table(self, name: str) -> DataTable[Any]:
        return self.query_one(f"#{name}-table", DataTable)

    @property
    def current_tab(self) -> str:
        return self.query_one(TabbedContent).active or "servers"

    @work(thread=True, exclusive=True, group="trust-manager-load")
    def refresh_data(self) -> None:
        """Read the trust store, networks and outbox off the UI thread."""
        from misfin_tui.core.gmap.sync import home_hostports  # only here: GMAP is optional

        engine = self.session.engine
        snap = Snapshot(
            hosts=engine.trust.hosts(),
            mailboxes=engine.trust.mailboxes(),
            networks=engine.networks.list(),
            current=engine.networks.current(),
            pending=engine.outbox.waiting(),
            history=engine.trust.history(limit=500),
            gmap_homes=home_hostports(engine.profile),
        )
        if not get_current_worker().is_cancelled:  # a newer read started meanwhile: it wins
            self.app.call_from_thread(self.show_snapshot, snap)

    def show_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        now = self.now or datetime.now(UTC)
        host_spkis = {h.hostport.rsplit(":", 1)[0]: h.spki for h in snap.hosts}
        names = network_names(snap.networks)
        current = snap.current
        title = "Trust"
        if current is not None:
            state = "trusted" if current.trusted else "not trusted"
            title += f" · current network: {current.label} ({state})"
        self.query_one("#trust-title", Static).update(Content(title))
        changed = {
            item.question.hostport
            for item in snap.pending
            if item.question is not None and item.question.ask is Ask.CHANGED
        }
        rows: dict[str, list[tuple[str, tuple[str, ...]]]] = {
            "servers": [
                (
                    h.hostport,
                    (
                        h.hostport,
                        host_mark(h, changed),
                        short_fingerprint(h.fingerprint, 2),
                        short_time(h.last_seen)[:10],
                        days_until(h.not_after, now),
                    ),
                )
                for h in snap.hosts
            ],
            "mailboxes": [
                (
                    m.address,
                    (
                        m.address,
                        m.nickname,
                        state_mark(m.state),
                        short_fingerprint(m.fingerprint, 2),
                        issuer_mark(m, host_spkis),
                    ),
                )
                for m in snap.mailboxes
            ],
            "networks": [
                (
                    n.id,
                    (
                        n.label + (" (current)" if current and n.id == current.id else ""),
                        "✓ yes" if n.trusted else "no",
                        n.id[:12],
                        n.strength,
                        n.hints,
                        short_time(n.last_seen),
                    ),
                )
                for n in snap.networks
            ],
            "pending": [
                (str(item.id), (str(item.id), item.recipient, state_text(item), item.reason))
                for item in snap.pending
            ],
            "history": [
                (
                    str(e.id),
                    (short_time(e.at), e.kind, e.subject, e.event, names.get(e.network, e.network)),
                )
                for e in snap.history
            ],
        }
        for name, entries in rows.items():
            table = self.table(name)
            selected = self.row_key(name)
            table.clear()
            for key, cells in entries:
                table.add_row(*(Text(one_line(cell)) for cell in cells), key=key)
            if self.select and self.select[0] == name:
                selected = self.select[1].lower()
            if selected is not None and selected in {k for k, _ in entries}:
                table.move_cursor(row=table.get_row_index(selected))
        self.select = None
        self.show_detail()

    def row_key(self, name: str | None = None) -> str | None:
        """The key of the highlighted row in a tab (the current tab by default)."""
        table = self.table(name or self.current_tab)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    # ----- detail pane --------------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    @on(TabbedContent.TabActivated)
    def show_detail(self) -> None:
        self.refresh_bindings()  # enter reviews a changed server: only where there is one
        key = self.row_key()
        text = "Nothing selected."
        snap, tab = self.snapshot, self.current_tab
        # Eight groups a line need 44 columns; a narrow pane gets four.
        per_row = 8 if (self.query_one("#detail").size.width or WIDE) >= WIDE else 4
        if key is not None:
            if tab == "servers":
                host = next(h for h in snap.hosts if h.hostport == key)
                gmap = host.hostport in snap.gmap_homes
                text = host_detail(host, per_row, network_names(snap.networks), gmap=gmap)
            elif tab == "mailboxes":
                text = mailbox_detail(next(m for m in snap.mailboxes if m.address == key), per_row)
            elif tab == "networks":
                text = network_detail(next(n for n in snap.networks if n.id == key))
            elif tab == "pending":
                text = pending_detail(next(i for i in snap.pending if str(i.id) == key))
            elif tab == "history":
                entry = next(e for e in snap.history if str(e.id) == key)
                text = history_detail(entry, network_names(snap.networks))
        self.query_one("#detail-text", Static).update(Content(visible(text, newlines=True)))

    # ----- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = self.current_tab if self.is_mounted else "servers"
        if action in ("verify", "forget", "reject"):
            return tab in ("servers", "mailboxes")
        if action in ("nickname", "unverify"):
            return tab == "mailboxes"
        if action == "copy":
            return tab in ("servers", "mailboxes")
        if action == "decide":
            return tab == "pending" or (tab == "servers" and self._reviewable() is not None)
        return True

    def _reviewable(self) -> HostPin | None:
        """The selected server when a key seen instead of its approved pin awaits review."""
        if not self.is_mounted:
            return None
        key = self.row_key("servers")
        host = next((h for h in self.snapshot.hosts if h.hostport == key), None)
        if host is None or host.changed is None or not host.approved:
            return None
        return host

    def on_tabbed_content_tab_activated(self) -> None:
        self.refresh_bindings()
        self.table(self.current_tab).focus()

    def action_move(self, rows: int) -> None:
        """j/k: down or up a row in the current tab's table."""
        table = self.table(self.current_tab)
        if rows > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def on_resize(self) -> None:
        self.show_detail()

    def on_screen_resume(self) -> None:
        """Back from a prompt or another screen: show what changed meanwhile."""
        if self.is_mounted and self.table("servers").columns:
            self.refresh_data()

    def action_close(self) -> None:
        """Back to where you were."""
        self.dismiss(None)

    def action_tab(self, name: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = name

    def action_verify(self) -> None:
        """Paste a fingerprint you were given; the core compares it with the pinned one."""
        key, tab = self.row_key(), self.current_tab
        if key is None:
            return
        if tab == "servers":
            actual = next(h for h in self.snapshot.hosts if h.hostport == key).fingerprint
        else:
            pin = next(m for m in self.snapshot.mailboxes if m.address == key)
            actual = pin.alarm_fingerprint or pin.fingerprint

        def done(pasted: str | None) -> None:
            if pasted:
                self.run_trust(tab, "verify", key, pasted)

        self.app.push_screen(
            PasteFingerprintScreen(
                actual,
                title=f"Verify {key}",
                intro=f"Paste the fingerprint of {key} that you got by another channel "
                "(from the person or the server's operator). misfin_tui compares it for you.",
                refuse_note="Nothing was changed.",
            ),
            done,
        )

    def action_forget(self) -> None:
        """Forget this entry: the next letter is a first contact again."""
        key, tab = self.row_key(), self.current_tab
        if key is None:
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Forget {key}?",
                f"misfin_tui will forget the key it trusts for {key}. The next letter will "
                "be a first contact again and ask you. The history keeps a record.",
                yes="Forget",
            ),
            lambda yes: self._run_if(yes, tab, "forget", key),
        )

    def action_reject(self) -> None:
        """Never send to this server or mailbox again (until forgotten)."""
        key, tab = self.row_key(), self.current_tab
        if key is None:
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Reject {key}?",
                f"No letter will be sent to {key} until you forget this entry.",
                yes="Reject",
            ),
            lambda yes: self._run_if(yes, tab, "reject", key),
        )

    def action_nickname(self) -> None:
        """Give a mailbox a name you recognise (the address book)."""
        key = self.row_key("mailboxes")
        if key is None:
            return
        pin = next(m for m in self.snapshot.mailboxes if m.address == key)
        self.app.push_screen(
            TextInputScreen(
                f"Nickname for {key}", "Shown instead of the address:", value=pin.nickname
            ),
            lambda name: self._run_if(name is not None, "mailboxes", "nickname", key, name or ""),
        )

    def action_unverify(self) -> None:
        """Keep the mailbox's key, but as not verified."""
        key = self.row_key("mailboxes")
        if key is not None:
            self.run_trust("mailboxes", "unverify", key)

    def action_copy(self) -> None:
        """Copy the selected entry's full fingerprint (to paste it somewhere else)."""
        key, tab = self.row_key(), self.current_tab
        if key is None:
            return
        if tab == "servers":
            value = next(h for h in self.snapshot.hosts if h.hostport == key).fingerprint
        else:
            value = next(m for m in self.snapshot.mailboxes if m.address == key).fingerprint
        self.app.copy_to_clipboard(value)
        self.notify(f"Copied the fingerprint (SHA-256) of {key}.", markup=False)

    def action_mark_network(self) -> None:
        """Mark the selected (or current) network trusted with a name, or unmark it."""
        network = None
        if self.current_tab == "networks":
            key = self.row_key("networks")
            network = next((n for n in self.snapshot.networks if n.id == key), None)
        network = network or self.snapshot.current
        if network is None:
            return
        if network.trusted:
            self.run_trust("networks", "untrust", network.id)
            return
        self.app.push_screen(
            mark_network_screen(
                "Only mark a network you control, such as your home or office. Letters held "
                "for a trusted network are then tried again. Give it a name:",
                network.label,
            ),
            lambda label: self._trust_network(network.id, label) if label is not None else None,
        )

    def _trust_network(self, network_id: str, label: str) -> None:
        """Trusting the current network sends on what waited for one (the core re-probes)."""
        self.session.sending.trust_network(network_id, label)
        self.set_timer(0.5, self.refresh_data)

    def action_decide(self) -> None:
        """Open the prompt for the selected letter waiting for a decision, or, on Servers, the
        changed-key alarm for a key the server was seen presenting instead of its pin."""
        if self.current_tab == "servers":
            host = self._reviewable()
            if host is not None:
                self.ask_review(host.hostport)
            return
        key = self.row_key("pending")
        if key is not None:
            self.session.sending.decide(int(key))

    @work(thread=True, group="trust-manager-action")
    def ask_review(self, hostport: str) -> None:
        """The core builds the question (TrustPolicy.review); the alarm asks it."""
        engine = self.session.engine
        network = engine.networks.current()
        caution = "" if network.trusted else engine.networks.caution(network)
        question = engine.policy.review(hostport, network, caution)
        if question is None:
            self.app.call_from_thread(self.refresh_data)
            return

        def answered(answer: Answer | None) -> None:
            if answer is not None:
                self.settle_review(hostport, answer)

        self.app.call_from_thread(
            self.app.push_screen, prompt_for(question, now=self.now), answered
        )

    @work(thread=True, group="trust-manager-action")
    def settle_review(self, hostport: str, answer: Answer) -> None:
        """The answer goes to the core, as a letter's answer would; say what happened."""
        try:
            message = self.session.engine.review_server(hostport, answer) + "."
            severity = "information"
        except Exception as exc:  # the core's errors are plain words meant for the person
            message, severity = str(exc), "error"
        self.app.call_from_thread(self.notify, message, severity=severity, markup=False)
        self.app.call_from_thread(self.refresh_data)

    @on(DataTable.RowSelected, "#pending-table")
    @on(DataTable.RowSelected, "#servers-table")
    def _pending_selected(self) -> None:
        self.action_decide()

    def _run_if(self, yes: bool | None, tab: str, what: str, key: str, text: str = "") -> None:
        if yes:
            self.run_trust(tab, what, key, text)

    @work(thread=True, group="trust-manager-action")
    def run_trust(self, tab: str, what: str, key: str, text: str = "") -> None:
        """Call the core off the UI thread, then say what happened and reload."""
        trust, networks = self.session.engine.trust, self.session.engine.networks
        message, severity = "", "information"
        try:
            if what == "verify":  # a server's key is fetched when the paste is not its pin
                engine = self.session.engine
                check = (
                    engine.submit(engine.verify_server(key, text)).result()
                    if tab == "servers"
                    else engine.verify_mailbox(key, text)
                )
                message = f"{key}: {check.detail}."
                severity = "information" if check.ok else "error"
            elif what == "forget":
                (trust.forget_host if tab == "servers" else trust.forget_mailbox)(key)
                message = f"Forgot {key}; the next letter to it is a first contact."
            elif what == "reject":
                (trust.reject_host if tab == "servers" else trust.reject_mailbox)(key)
                message = f"Rejected {key}; nothing will be sent to it."
            elif what == "unverify":
                trust.unverify_mailbox(key)
                message = f"{key} is no longer marked verified; its key is kept."
            elif what == "nickname":
                trust.set_nickname(key, text)
                message = (
                    f"{key} is now called {text!r}." if text else f"Nickname of {key} removed."
                )
            elif what == "untrust":
                network = networks.untrust(key)
                message = f"Network {network.label} is no longer trusted."
        except Exception as exc:  # the core's errors are plain words meant for the person
            message, severity = str(exc), "error"
        self.app.call_from_thread(self.notify, message, severity=severity, markup=False)
        self.app.call_from_thread(self.refresh_data)


def issuer_mark(pin: MailboxPin, host_spkis: dict[str, str]) -> str:
    """Who issued a mailbox's certificate: ✓ the server (its pinned key pin) / ? / ✖ another."""
    if not pin.issuer_spki:
        return "? unknown"
    host = pin.address.rsplit("@", 1)[-1]
    pinned = host_spkis.get(host)
    if pinned is None:
        return "? unknown"
    return "✓ its server" if pinned == pin.issuer_spki else "✖ another key"


def network_names(networks: Sequence[Network]) -> dict[str, str]:
    """Network id -> the label the person knows it by (an id alone is a hash)."""
    return {n.id: n.label for n in networks if n.label}


def host_detail(
    h: HostPin, per_row: int = 8, names: Mapping[str, str] | None = None, *, gmap: bool = False
) -> str:
    """`gmap`: the server is a home in [gmap], whose key guards mail fetched from home."""
    names = names or {}
    first = names.get(h.first_network, h.first_network[:12])
    last = names.get(h.last_network, h.last_network[:12])
    parts = [
        h.hostport,
        f"State: {host_mark(h)}",
        f"Origin: {h.origin.words}",  # a key only seen while verifying is not approved
        "Serves: GMAP (your mail from home)" if gmap else f"Protocol: Misfin {h.protocol}",
        f"Valid until: {h.not_after[:10]}",
        f"First seen: {short_time(h.first_seen)}" + (f" on {first}" if first else ""),
        f"Last seen: {short_time(h.last_seen)}" + (f" on {last}" if last else ""),
        "",
        grouped(FINGERPRINT, h.fingerprint, per_row),
        "",
        grouped(KEY_PIN, h.spki, per_row),
    ]
    if h.note:
        parts += ["", f"Note: {h.note}"]
    seen = h.changed
    if seen is not None and h.state is not HostState.REJECTED:
        on = names.get(seen.network, seen.network_label or seen.network[:12])
        parts += [
            "",
            grouped("Presented instead, fingerprint", seen.presented.fingerprint, per_row),
            "",
            f"Seen {short_time(seen.at)} while {seen.by}" + (f" on {on}" if on else "") + ".",
            "Not trusted: the pinned key stays, and letters to this server wait for your "
            "decision. "
            + (
                "Press enter to review it: paste the new fingerprint you got by another "
                "channel (only a match replaces the key), or keep the key you trust."
                if h.approved
                else "Press v to paste the fingerprint you got by another channel, or x to "
                "forget this server."
            ),
        ]
    return "\n".join(parts)


def mailbox_detail(m: MailboxPin, per_row: int = 8) -> str:
    parts = [
        m.address + (f" ({m.nickname})" if m.nickname else ""),
        f"State: {state_mark(m.state)}",
        f"Origin: {m.origin.words}",
    ]
    if m.blurb:
        parts.append(f"Blurb: {m.blurb}")
    parts += [
        f"First seen: {short_time(m.first_seen)}",
        f"Last seen: {short_time(m.last_seen)}",
    ]
    if m.verified_at:
        parts.append(f"Verified on: {short_time(m.verified_at)}")
    parts += ["", grouped(FINGERPRINT, m.fingerprint, per_row)]
    if m.alarm_fingerprint:
        parts += [
            "",
            grouped("Fingerprint reported instead", m.alarm_fingerprint, per_row),
            "",
            "Letters to this address are paused. Ask the person for their fingerprint "
            "and press v to paste it, or x to forget the old key.",
        ]
    if m.issuer_spki:
        parts += [
            "",
            grouped(f"Issued by the server key, {KEY_PIN.lower()}", m.issuer_spki, per_row),
        ]
    return "\n".join(parts)


def network_detail(n: Network) -> str:
    return "\n".join(
        [
            n.label,
            f"Trusted: {'yes' if n.trusted else 'no'}",
            f"ID: {n.id}",
            f"Strength: {n.strength}",
            f"Hints: {n.hints or '-'}",
            f"First seen: {short_time(n.first_seen)}",
            f"Last seen: {short_time(n.last_seen)}",
            "",
            "A network is trusted only when you mark it (m). It only changes what happens "
            "at a first contact; pinned servers are protected on any network.",
        ]
    )


def pending_detail(item: Any) -> str:
    return "\n".join(
        [
            f"Letter #{item.id} to {item.recipient}",
            f"State: {state_text(item)}",
            "",
            item.reason,
            "",
            "Press enter to decide.",
        ]
    )


def with_grouped_fingerprints(text: str) -> str:
    """Every SHA-256 in the text in 4-character groups, whole, as the other tabs show them."""
    return SHA256_HEX.sub(lambda found: group_fingerprint(found.group()), text)


def history_detail(e: HistoryEntry, names: Mapping[str, str] | None = None) -> str:
    names = names or {}
    return "\n".join(
        [
            short_time(e.at),
            f"{e.kind}: {e.subject}",
            f"Event: {e.event}",
            f"Network: {names.get(e.network, e.network) or '-'}",
            "",
            with_grouped_fingerprints(e.detail),
        ]
    )
