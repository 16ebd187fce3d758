"""The main screen: folders, the letter list and the reader, with search and undo."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from misfin_tui.core.database import FOLDERS, DatabaseError
from misfin_tui.core.store import StoredLetter, Summary
from misfin_tui.core.text import one_line
from misfin_tui.core.threads import build_threads, resolve_mid_links
from misfin_tui.ui.messages import CountsChanged, LetterChanged, NetworkChanged, NewMail
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.session import Session
from misfin_tui.ui.widgets.gemtext_view import GemtextView
from misfin_tui.ui.widgets.letter_list import FolderRows, LetterList, fit
from misfin_tui.ui.widgets.reader import Reader
from misfin_tui.ui.widgets.thread_rows import ThreadRows

if TYPE_CHECKING:
    from misfin_tui.ui.screens.compose import ComposeScreen

# A letter shown this long in the reader counts as read.
READ_AFTER_SECONDS = 1.5
# Search shows at most this many letters, newest first.
SEARCH_LIMIT = 500


@dataclass(frozen=True)
class Undo:
    """One move that can be taken back: what it was, and where each letter came from."""

    label: str
    previous: dict[int, str]


# Folders where letters wait for something: their count is shown whole, not only the unread
# (a draft is never unread, so Drafts showed no count at all).
WAITING = frozenset({"Drafts", "Outbox", "Trash"})


def folder_prompt(folder: str, total: int, unread: int) -> Content:
    """'Inbox     3' (unread, bold); Drafts, Outbox and Trash show how many letters are there."""
    shown = total if folder in WAITING else unread
    count = f"{shown:>6}" if shown else f"{'':>6}"
    content = Content(f"{folder:<11}{count}")
    return content.stylize("bold", 0, len(content)) if unread else content


class MainScreen(Screen[None]):
    """Folders on the left, letters above, the open letter below."""

    HELP_TITLE = "Mail"
    HELP = (
        "Choose a folder on the left; letters are newest first. The mark before each letter says "
        "how far its sender is verified: ✓ verified by their server, … being checked, "
        "⚠ quarantined (could not be verified; the reason is shown above the letter), "
        "↻ (ⓘ in the reader) the sender's certificate was rotated under the same server, "
        "? imported from an archive, where nobody checked it; no mark on your own letters and "
        "on mail fetched from home, whose server authenticated the sender. "
        "A letter shown in the reader for 1.5 seconds counts as read (m makes it unread). "
        "Archive and delete can be undone with u or ctrl+z. Search looks in every folder. "
        "Enter opens a letter in the reader (its header lights up): there j/k and the arrows "
        "scroll, space pages, n/p go to the next or previous letter, and q or Esc go back to "
        "the list. In the list, g and G go to the first and last letter; q quits. "
        "t shows conversations (in every folder): Enter or space opens or closes one. "
        "V checks a quarantined letter's sender again (after you review its server in Trust)."
    )
    # The footer shows the few keys a newcomer needs (80 columns hold them all); the rest are
    # in help (?) and the palette (ctrl+p), from these same bindings.
    BINDINGS = [
        Binding("c", "compose", "Compose", id="mail.compose"),
        Binding("r", "reply", "Reply", id="mail.reply"),
        Binding("R", "reply_all", "Reply all", id="mail.reply_all", show=False),
        Binding("f", "forward", "Forward", id="mail.forward", show=False),
        Binding("a", "archive", "Archive", id="mail.archive"),
        Binding("d,delete", "delete", "Delete", id="mail.delete", show=False),
        Binding("u,ctrl+z", "undo", "Undo", id="mail.undo", show=False),
        Binding("m", "toggle_read", "Read/unread", id="mail.toggle_read", show=False),
        Binding("i", "to_inbox", "Move to Inbox", id="mail.to_inbox", show=False),
        Binding("V", "recheck", "Check sender again", id="mail.recheck", show=False),
        Binding("n", "next_letter", "Next letter", id="mail.next", show=False),
        Binding("p", "previous_letter", "Previous letter", id="mail.previous", show=False),
        Binding("slash", "search", "Search", id="mail.search"),
        Binding(
            "t",
            "toggle_threads",
            "Threads",
            id="mail.threads",
            tooltip="Threads: conversations or single letters",
        ),
        Binding("T", "app.trust_manager", "Trust", id="mail.trust_manager", show=False),
        Binding("o", "app.outbox", "Outbox", id="mail.outbox", show=False),
        Binding("dollar_sign", "app.sync_home", "Sync with home", id="mail.sync", show=False),
        Binding("question_mark", "app.help", "Help", id="mail.help"),
        Binding("q", "app.quit", "Quit", id="mail.quit"),
        Binding("escape", "close_search", "Close search", id="mail.close_search", show=False),
        *[
            Binding(str(n), f"folder('{name}')", f"Go to {name}", id=f"mail.folder{n}", show=False)
            for n, name in enumerate(FOLDERS, 1)
        ],
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.folder = "Inbox"
        self.searching: str | None = None  # the query while search results are shown
        self.undo_stack: list[Undo] = []
        self.counts: dict[str, tuple[int, int]] = {}
        self._read_timer: Timer | None = None
        # The conversation view: on or off for every folder until toggled again (this session),
        # with the threads opened in each folder.
        self.threaded = False
        self.grouping = False  # threads are being built for the folder shown
        self._expanded: dict[str, set[int]] = {}

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            yield OptionList(*[Option(folder_prompt(f, 0, 0), id=f) for f in FOLDERS], id="folders")
            with Vertical(id="mail"):
                yield Input(placeholder="Search every folder…", id="search")
                yield Static(id="list-title")
                yield LetterList(id="letters", empty_text="Loading…")
                yield Reader(id="reader")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        self.letters.focus()
        self.load_folder("Inbox")

    def on_screen_resume(self) -> None:
        """Back from another screen: the network may have been marked trusted meanwhile."""
        self.app.post_message(NetworkChanged())

    @property
    def letters(self) -> LetterList:
        return self.query_one("#letters", LetterList)

    @property
    def reader(self) -> Reader:
        return self.query_one("#reader", Reader)

    # -- folders and loading ------------------------------------------------------------------

    def load_folder(self, folder: str, keep: int | None = None) -> None:
        self.folder = folder
        self.searching = None
        self._set_title()
        self._refresh_counts()
        if self.threaded:
            self._start_grouping(folder, keep)
            return
        if keep is not None:
            self._load(folder, keep)
            return
        # The first page (~100 rows, ~1 ms at any size) is read right here, so it is in the
        # first frame: read in a worker it waited on the GIL behind start-up (~100 ms).
        try:
            rows = FolderRows.start(self.session.engine.store, folder)
        except (sqlite3.Error, DatabaseError):
            self._load(folder, None)  # the worker reports what is wrong
            return
        self._loaded(folder, rows, None)
        self._load_ids(rows)

    @work(thread=True, exclusive=True, group="letters", exit_on_error=False)
    def _load(self, folder: str, keep: int | None) -> None:
        """Read a folder off the UI thread: with `keep` (a reload) the ids first, so the cursor
        can stay on that letter; otherwise the first page, then the ids."""
        store = self.session.engine.store
        if keep is not None:
            rows = FolderRows(store, folder, ids=store.ids(folder))
            self._from_worker(self._loaded, folder, rows, keep)
            return
        rows = FolderRows.start(store, folder)
        self._from_worker(self._loaded, folder, rows, None)
        self._read_ids(rows)

    def _from_worker(self, show: Callable[..., None], *args: Any) -> None:
        """In a "letters" worker: show what it read unless a newer read replaced it. Workers in
        that group are exclusive, but a thread cannot be stopped: a reload started while an
        older one was still reading would otherwise be overwritten by the older, staler rows
        (a letter that had just arrived went missing from the list). The check runs on the UI
        thread, where newer workers cancel older ones, so it cannot race."""
        worker = get_current_worker()

        def if_current() -> None:
            if not worker.is_cancelled:
                show(*args)

        self.app.call_from_thread(if_current)

    @work(thread=True, exclusive=True, group="letters", exit_on_error=False)
    def _load_ids(self, rows: FolderRows) -> None:
        self._read_ids(rows)

    def _read_ids(self, rows: FolderRows) -> None:
        """In a worker: the folder's ids, once the first page is on screen (not while drawing)."""
        refreshed = threading.Event()  # after the next screen refresh, or a second at most
        self.app.call_from_thread(self.call_after_refresh, refreshed.set)
        refreshed.wait(1)
        if get_current_worker().is_cancelled:
            return
        ids = rows.store.ids(rows.folder)
        self._from_worker(self.letters.ids_loaded, rows, ids)

    def _loaded(self, folder: str, letters: FolderRows, keep: int | None) -> None:
        if folder != self.folder or self.searching is not None or self.threaded:
            return  # the person moved on meanwhile
        self.letters.empty_text = f"No letters in {folder}"
        self.letters.set_letters(letters, keep=keep)
        self._set_title()
        if not letters:
            self.reader.show(None)

    def _reload(self) -> None:
        """The folder changed underneath: read it again, the cursor kept on its letter."""
        current = self.letters.current
        keep = current.id if current else None
        if self.threaded:
            self._start_grouping(self.folder, keep)
        else:
            self._load(self.folder, keep)

    # -- conversations ------------------------------------------------------------------------

    def action_toggle_threads(self) -> None:
        """Conversations or single letters, for every folder from now on."""
        self.threaded = not self.threaded
        if self.searching is not None:
            view = "conversations" if self.threaded else "letters"
            self.notify(f"Search shows letters; the folder will show {view}.", markup=False)
            return
        current = self.letters.current
        self.load_folder(self.folder, keep=current.id if current else None)

    def _start_grouping(self, folder: str, keep: int | None) -> None:
        rows = self.letters.letters
        if not (isinstance(rows, ThreadRows) and self._expanded.get(folder) is rows.expanded):
            # Another folder, or letters: nothing of this folder's threads to show meanwhile.
            self.letters.empty_text = "Grouping…"
            self.letters.set_letters([])
        self.grouping = True
        self._set_title()
        self._group(
            folder, keep, set(self._expanded.get(folder, ())), list(self.session.identities)
        )

    @work(thread=True, exclusive=True, group="letters", exit_on_error=False)
    def _group(self, folder: str, keep: int | None, expanded: set[int], me: list[str]) -> None:
        """Build the folder's threads off the UI thread (~1 s for 100,000 letters)."""
        store = self.session.engine.store
        summaries = store.summaries(folder)
        if get_current_worker().is_cancelled:
            return
        links = store.reply_parents()
        mids = resolve_mid_links(store.bodies_with_mid_links(folder), store.remote_letter_ids())
        links.update(mids)
        rows = ThreadRows(build_threads(summaries, me=me, links=links), expanded)
        self._from_worker(self._grouped, folder, rows, keep)

    def _grouped(self, folder: str, rows: ThreadRows, keep: int | None) -> None:
        if folder != self.folder or self.searching is not None or not self.threaded:
            return  # the person moved on meanwhile
        self.grouping = False
        self._expanded[folder] = rows.expanded
        self.letters.empty_text = f"No letters in {folder}"
        self.letters.set_letters(rows, keep=keep)
        self._set_title()
        if not rows:
            self.reader.show(None)

    @work(thread=True, exclusive=True, group="counts", exit_on_error=False)
    def _refresh_counts(self) -> None:
        counts = self.session.engine.store.counts()
        self.app.call_from_thread(self._show_counts, counts)

    def _show_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        self.counts = counts
        folders = self.query_one("#folders", OptionList)
        for index, folder in enumerate(FOLDERS):
            total, unread = counts.get(folder, (0, 0))
            folders.replace_option_prompt_at_index(index, folder_prompt(folder, total, unread))
        self._set_title()

    def _set_title(self) -> None:
        title = self.query_one("#list-title", Static)
        if self.searching is not None:
            count = len(self.letters.letters)
            found = f"the newest {count:,}" if count >= SEARCH_LIMIT else f"{count:,} found"
            rest = f"”: {found} · Esc closes"
            # A long query is cut, not what follows it: the count and the way out stay in sight.
            room = max(title.size.width - len(" Search “") - len(rest), 2)
            query = fit(one_line(self.searching), room).rstrip()
            title.update(Content(f" Search “{query}{rest}"))
            return
        total, unread = self.counts.get(self.folder, (0, 0))
        text = f" {self.folder} · {total:,} letter{'' if total == 1 else 's'}"
        if unread:
            text += f" · {unread:,} unread"
        rows = self.letters.letters
        if self.threaded and self.grouping:
            text += " · grouping…"
        elif self.threaded and isinstance(rows, ThreadRows):
            count = rows.thread_count
            text += f" · {count:,} conversation{'' if count == 1 else 's'}"
        title.update(Content(text))

    @on(OptionList.OptionSelected, "#folders")
    def _folder_chosen(self, event: OptionList.OptionSelected) -> None:
        folder = event.option.id or "Inbox"
        self._close_search_input()
        self.load_folder(folder)
        if folder == "Outbox":
            self.notify("Press o for the outbox: every letter's state and reason.", markup=False)
        self.letters.focus()

    def action_folder(self, folder: str) -> None:
        folders = self.query_one("#folders", OptionList)
        folders.highlighted = FOLDERS.index(folder)
        self._close_search_input()
        self.load_folder(folder)

    # -- app-wide changes ---------------------------------------------------------------------

    @on(NewMail)
    def _new_mail(self, message: NewMail) -> None:
        self._show_counts(message.counts)
        if self.searching is None and any(s.folder == self.folder for s in message.letters):
            self._reload()

    @on(CountsChanged)
    def _counts_changed(self, message: CountsChanged) -> None:
        before = self.counts.get(self.folder)
        self._show_counts(message.counts)
        if self.searching is None and message.counts.get(self.folder) != before:
            self._reload()

    @on(LetterChanged)
    def _letter_changed(self, message: LetterChanged) -> None:
        self._reload_letter(message.letter_id)

    @work(thread=True, exit_on_error=False, group="row")
    def _reload_letter(self, letter_id: int) -> None:
        summary = self.session.engine.store.summary(letter_id)
        letter = self.session.engine.store.get(letter_id) if self._is_open(letter_id) else None
        self.app.call_from_thread(self._letter_reloaded, summary, letter)

    def _is_open(self, letter_id: int) -> bool:
        return self.reader.letter is not None and self.reader.letter.id == letter_id

    def _letter_reloaded(self, summary: Summary | None, letter: StoredLetter | None) -> None:
        if summary is not None:
            listed = self.letters.cached(summary.id) is not None
            if self.searching is None and listed != (summary.folder == self.folder):
                # It changed folder: a letter whose sender was being checked waits in
                # Quarantine and moves to the Inbox once verified (or the other way).
                self._reload()
            else:
                self.letters.update_letter(summary)
        if letter is not None and self._is_open(letter.id):
            self.reader.show(letter)

    # -- reading ------------------------------------------------------------------------------

    @on(LetterList.Highlighted)
    def _highlighted(self, event: LetterList.Highlighted) -> None:
        if self._read_timer is not None:
            self._read_timer.stop()
            self._read_timer = None
        if event.letter_id is None:
            self.reader.show(None)
            return
        self._open(event.letter_id, mark_read=False)

    @on(LetterList.Selected)
    def _selected(self, event: LetterList.Selected) -> None:
        summary = self.letters.current
        if summary is not None and summary.folder == "Drafts":
            self._edit_draft(event.letter_id)
            return
        if summary is not None and summary.folder == "Outbox":
            from misfin_tui.ui.screens.outbox import OutboxScreen

            self.app.push_screen(OutboxScreen(self.session))
            return
        self._open(event.letter_id, mark_read=True)
        self.reader.query_one(GemtextView).focus()

    @on(Reader.Leave)
    def _leave_reader(self) -> None:
        self.letters.focus()

    def action_next_letter(self) -> None:
        """The next letter (down the list), in the list or the reader; at the end, says so."""
        if self.letters.cursor >= len(self.letters.letters) - 1:
            self.notify("This is the last letter here.", markup=False)
            return
        self.letters.action_cursor_down()

    def action_previous_letter(self) -> None:
        """The previous letter (up the list), in the list or the reader; at the top, says so."""
        if self.letters.cursor <= 0:
            self.notify("This is the first letter here.", markup=False)
            return
        self.letters.action_cursor_up()

    @work(thread=True, exclusive=True, group="reader", exit_on_error=False)
    def _open(self, letter_id: int, mark_read: bool) -> None:
        letter = self.session.engine.store.get(letter_id)
        if letter is not None and letter.unread and mark_read:
            self.session.engine.store.set_unread([letter_id], False)
            letter = replace(letter, unread=False)
            self.app.call_from_thread(self._marked, letter_id, False)
        self.app.call_from_thread(self._show_letter, letter)

    def _show_letter(self, letter: StoredLetter | None) -> None:
        current = self.letters.current
        if letter is not None and (current is None or current.id != letter.id):
            return  # the cursor moved on while it loaded
        self.reader.show(letter)
        if letter is not None and letter.unread:
            self._read_timer = self.set_timer(
                READ_AFTER_SECONDS, lambda: self._mark_read_later(letter.id)
            )

    def _mark_read_later(self, letter_id: int) -> None:
        current = self.letters.current
        if current is not None and current.id == letter_id and current.unread:
            self._set_unread([letter_id], False)

    @work(thread=True, exit_on_error=False, group="flags")
    def _set_unread(self, ids: list[int], unread: bool) -> None:
        self.session.engine.store.set_unread(ids, unread)
        for letter_id in ids:
            self.app.call_from_thread(self._marked, letter_id, unread)

    def _marked(self, letter_id: int, unread: bool) -> None:
        summary = self.letters.cached(letter_id)
        if summary is not None:
            self.letters.update_letter(replace(summary, unread=unread))
        self._refresh_counts()

    def action_toggle_read(self) -> None:
        current = self.letters.current
        if current is not None:
            if self._read_timer is not None:
                self._read_timer.stop()
            self._set_unread([current.id], not current.unread)

    @on(GemtextView.LinkActivated)
    def _link(self, event: GemtextView.LinkActivated) -> None:
        from misfin_tui.core.address import Address, AddressError

        url = event.url
        if url.lower().startswith(("misfin://", "misfin:")):
            target = url.split("?", 1)[0]
            try:
                address = Address.parse(target)
            except AddressError as exc:
                self.notify(f"Not a Misfin address: {exc}", severity="warning", markup=False)
                return
            from misfin_tui.ui.screens.compose import ComposeScreen

            self._push_compose(ComposeScreen(self.session, to=[address.display]))
            return
        self.app.copy_to_clipboard(url)
        self.notify(f"Link copied: {one_line(url)}", markup=False)

    # -- moving and undo ----------------------------------------------------------------------

    def action_archive(self) -> None:
        self._move("Archive", "Archived", "Archived {n} letters")

    def action_to_inbox(self) -> None:
        self._move("Inbox", "Moved to Inbox", "Moved {n} letters to Inbox")

    def action_recheck(self) -> None:
        """A Quarantine letter's sender verified again (after fixing a pin in Trust, say)."""
        ids = [s.id for s in self.letters.current_letters if s.folder == "Quarantine"]
        if not ids:
            self.notify("Only letters in Quarantine are checked again.", markup=False)
            return
        self.notify("Checking the sender again…", markup=False)
        self._do_recheck(ids)

    @work(thread=True, exit_on_error=False, group="recheck")
    def _do_recheck(self, ids: list[int]) -> None:
        letters = self.session.engine.recheck(ids)
        self.app.call_from_thread(self._rechecked, letters)

    def _rechecked(self, letters: list[StoredLetter]) -> None:
        back = [letter.id for letter in letters if letter.cleared]
        if back:
            self.letters.remove_letters(back)
            self._refresh_counts()
            self.notify(f"Verified: {len(back)} moved to the Inbox.", markup=False)
        else:
            reason = letters[0].trust_reason if letters else ""
            self.notify(
                f"Still not verified: {reason}", severity="warning", timeout=10, markup=False
            )

    def action_delete(self) -> None:
        current = self.letters.current
        if current is None:
            return
        if current.folder == "Trash":
            self._delete_for_good(self.letters.current_letters)
            return
        self._move("Trash", "Moved to Trash", "Moved {n} letters to Trash")

    def _move(self, folder: str, label: str, several: str) -> None:
        """Move the cursor's letter, or every letter of its conversation (a thread's row)."""
        letters = [s for s in self.letters.current_letters if s.folder != folder]
        if not letters:
            return
        if len(letters) > 1:
            label = several.format(n=f"{len(letters):,}")
        self._do_move([s.id for s in letters], folder, label)

    @work(thread=True, exit_on_error=False, group="move")
    def _do_move(self, ids: list[int], folder: str, label: str) -> None:
        previous = self.session.engine.store.move(ids, folder)
        self.app.call_from_thread(self._moved, Undo(label, previous))

    def _moved(self, undo: Undo) -> None:
        self.undo_stack.append(undo)
        self.letters.remove_letters(undo.previous)
        if not self.letters.letters:
            self.reader.show(None)
        self._refresh_counts()
        self.notify(f"{undo.label} — u to undo", markup=False)

    def action_undo(self) -> None:
        if not self.undo_stack:
            self.notify("Nothing to undo.", markup=False)
            return
        self._do_undo(self.undo_stack.pop())

    @work(thread=True, exit_on_error=False, group="move")
    def _do_undo(self, undo: Undo) -> None:
        self.session.engine.store.restore(undo.previous)
        self.app.call_from_thread(self._undone, undo)

    def _undone(self, undo: Undo) -> None:
        self.notify(f"Undone: {undo.label}", markup=False)  # the same words as the move
        keep = next(iter(undo.previous), None)
        if self.searching is None:
            self.load_folder(self.folder, keep=keep)
        else:  # the letters come back among the results, where they were moved from
            self._refresh_counts()
            self._search(self.searching, keep)

    @work(exit_on_error=False, group="dialog")
    async def _delete_for_good(self, letters: list[Summary]) -> None:
        if not letters:
            return
        subject = one_line(letters[-1].subject) or "(no subject)"  # the oldest: the thread's
        if len(letters) == 1:
            title = f"Delete “{subject}” for good?"
        else:
            title = f"Delete the {len(letters):,} letters of “{subject}” for good?"
        question = "Letters deleted from the Trash cannot be brought back."
        confirm = ConfirmScreen(title, question, yes="Delete for good")  # Enter keeps it
        if await self.app.push_screen_wait(confirm):
            await self._delete_ids([s.id for s in letters])

    async def _delete_ids(self, ids: list[int]) -> None:
        await asyncio.to_thread(self.session.engine.store.delete, ids)
        # Moves of these letters cannot be undone any more ("Undone: Moved to Trash" was said
        # of a letter deleted for good since).
        gone = set(ids)
        self.undo_stack = [
            replace(undo, previous=kept)
            for undo in self.undo_stack
            if (kept := {i: f for i, f in undo.previous.items() if i not in gone})
        ]
        self.letters.remove_letters(ids)
        if not self.letters.letters:
            self.reader.show(None)
        self._refresh_counts()

    # -- search -------------------------------------------------------------------------------

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def action_close_search(self) -> None:
        if self.searching is None and not self.query_one("#search", Input).display:
            return
        self._close_search_input()
        self.load_folder(self.folder)
        self.letters.focus()

    def _close_search_input(self) -> None:
        search = self.query_one("#search", Input)
        search.value = ""
        search.display = False
        self.searching = None

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        query = event.value
        if not query.strip():
            if self.searching is not None:
                self.searching = None
                self.load_folder(self.folder)
            return
        self.searching = query
        self._search(query, None)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.letters.focus()

    @work(thread=True, exclusive=True, group="letters", exit_on_error=False)
    def _search(self, query: str, keep: int | None) -> None:
        results = self.session.engine.store.search(query, limit=SEARCH_LIMIT)
        self._from_worker(self._found, query, results, keep)

    def _found(self, query: str, results: list[Summary], keep: int | None) -> None:
        if self.searching != query:
            return
        self.letters.empty_text = "Nothing found"
        self.letters.set_letters(results, keep=keep, show_folder=True)
        self._set_title()

    # -- writing ------------------------------------------------------------------------------

    def action_compose(self) -> None:
        from misfin_tui.ui.screens.compose import ComposeScreen

        self._push_compose(ComposeScreen(self.session))

    def action_reply(self) -> None:
        self._respond("reply")

    def action_reply_all(self) -> None:
        self._respond("reply_all")

    def action_forward(self) -> None:
        self._respond("forward")

    def _respond(self, how: str) -> None:
        current = self.letters.current
        if current is None:
            self.notify("Choose a letter first.", markup=False)
            return
        self._load_response(current.id, how)

    @work(thread=True, exit_on_error=False, group="respond")
    def _load_response(self, letter_id: int, how: str) -> None:
        letter = self.session.engine.store.get(letter_id)
        if letter is None:
            return
        from misfin_tui.ui.screens.compose import response_fields

        fields = response_fields(letter, how, self.session.identities)
        self.app.call_from_thread(self._open_response, fields)

    def _open_response(self, fields: dict[str, Any]) -> None:
        from misfin_tui.ui.screens.compose import ComposeScreen

        self._push_compose(ComposeScreen(self.session, **fields))

    @work(thread=True, exit_on_error=False, group="respond")
    def _edit_draft(self, letter_id: int) -> None:
        letter = self.session.engine.store.get(letter_id)
        if letter is None:
            return
        from misfin_tui.ui.screens.compose import draft_fields

        self.app.call_from_thread(self._open_response, draft_fields(letter))

    def _push_compose(self, screen: ComposeScreen) -> None:
        screen.undoable = True
        self.app.push_screen(screen, callback=lambda result: self._compose_closed(screen, result))

    def _compose_closed(self, screen: ComposeScreen, result: str | None) -> None:
        if result == "discarded" and screen.draft_id is not None:
            # u takes the draft out of the Trash, as it does a letter deleted by mistake (the
            # Trash kept its text, but no key made it a draft again).
            self.undo_stack.append(Undo("Letter discarded", {screen.draft_id: "Drafts"}))
        if self.searching is None:
            current = self.letters.current
            self.load_folder(self.folder, keep=current.id if current else None)
