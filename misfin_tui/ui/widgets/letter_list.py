"""The letter list: a Line-API view that draws only the visible rows.

A folder is shown through FolderRows: its ids and the summaries of the pages drawn, never all
100,000 summaries at once, so opening and drawing cost the same at any size. Conversations are
shown through ThreadRows (widgets/thread_rows.py): one row per thread, its letters under it
when opened. Rows are rendered to Strips and kept in an LRU cache keyed by everything that
changes their look.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from misfin_tui.core.store import MailStore, Summary
from misfin_tui.core.text import one_line
from misfin_tui.ui.dates import local_time

# The verification state of a letter as one character in the list. Only characters of
# unambiguous width, so the columns line up in every terminal (the reader's banner says "ⓘ").
TRUST_MARKS = {
    "verified": "✓",
    "pending": "…",
    "quarantined": "⚠",
    "rotated": "↻",
    "unverified": "?",
    "none": " ",
}
# Folders whose letters we wrote: show who they go to, not who sent them.
OUTGOING = frozenset({"Sent", "Drafts", "Outbox"})


def short_date(iso: str) -> str:
    """ "2026-01-05T12:00:00Z" -> "2026-01-05 12:00" in local time (see ui/dates.py)."""
    return local_time(iso)


# -- rows ---------------------------------------------------------------------------------------

# Rows read from the store at a time, and summaries kept (a few screens' worth, at any size).
PAGE = 100
CACHED = 2048
# The fewest cells a subject gets before the date makes way for it (a terminal under ~62 columns).
MIN_SUBJECT = 8


def _gone(letter_id: int, folder: str) -> Summary:
    """A row whose letter vanished under the list (deleted elsewhere); a reload follows."""
    return Summary(letter_id, folder, "", "", "(deleted)", "", False, "none", ())


@dataclass(frozen=True, slots=True)
class ThreadLine:
    """How a row of the conversation view differs from a letter's row.

    A thread's row is drawn from these fields (its date is the newest letter's); a member's
    row (`member`) is its letter's, indented under the thread.
    """

    member: bool = False
    who: str = ""
    subject: str = ""
    count: int = 1
    unread: bool = False

    @property
    def opens(self) -> bool:
        """A thread of several letters: Enter opens and closes it instead of reading."""
        return not self.member and self.count > 1


MEMBER = ThreadLine(member=True)


class Rows(Sequence[Summary]):
    """What the list shows, looked up by position or by letter id.

    Each row stands for one letter: in the conversation view a thread's row stands for its
    newest letter (what the reader shows, and what reply acts on), and for all its letters
    when moved (row_letters: archive and delete take the whole conversation).
    """

    @abstractmethod
    def index_of(self, letter_id: int) -> int | None:
        """The row of a letter, or None when it is not in the list."""

    @abstractmethod
    def cached(self, letter_id: int) -> Summary | None:
        """The summary as last read, if it is held (rows not held are read fresh when drawn)."""

    @abstractmethod
    def replace(self, summary: Summary) -> int | None:
        """Take a newer summary of a held row; returns its row (None when not held)."""

    @abstractmethod
    def remove(self, ids: set[int]) -> None:
        """Drop these letters' rows."""

    def thread_line(self, index: int) -> ThreadLine | None:
        """How the row differs from a plain letter's (None: it is one)."""
        return None

    def toggle(self, index: int) -> int | None:
        """Open or close the thread of this row; returns the thread's row (None: no thread)."""
        return None

    def row_letters(self, index: int) -> list[Summary]:
        """Every letter the row stands for when it is moved: its own, or a whole thread's."""
        return [self[index]]


class ListRows(Rows):
    """A short list held whole (search results: at most 500)."""

    def __init__(self, letters: Iterable[Summary] = ()) -> None:
        self.letters = list(letters)

    def __len__(self) -> int:
        return len(self.letters)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self.letters[index]

    def index_of(self, letter_id: int) -> int | None:
        return next((i for i, s in enumerate(self.letters) if s.id == letter_id), None)

    def cached(self, letter_id: int) -> Summary | None:
        index = self.index_of(letter_id)
        return None if index is None else self.letters[index]

    def replace(self, summary: Summary) -> int | None:
        index = self.index_of(summary.id)
        if index is not None:
            self.letters[index] = summary
        return index

    def remove(self, ids: set[int]) -> None:
        self.letters = [s for s in self.letters if s.id not in ids]


class FolderRows(Rows):
    """A folder of any size, without reading it all: its ids, and summaries a page at a time.

    `start()` reads the first page and the count, so the first paint costs the same for 10 or
    100,000 letters; the ids (one int column, ~50 ms for 70,000) follow from a worker through
    `set_ids()`. Until they arrive, rows past the first page are read by LIMIT/OFFSET (~7 ms
    deep in 70,000); afterwards by id (~1 ms a page). Summaries are cached by id, so removing
    rows keeps the cache valid.
    """

    def __init__(
        self,
        store: MailStore,
        folder: str,
        *,
        ids: list[int] | None = None,
        head: Sequence[Summary] = (),
        total: int = 0,
    ) -> None:
        self.store = store
        self.folder = folder
        self._ids = ids
        self._total = len(ids) if ids is not None else total
        # Before the ids arrive: page number -> the ids on that page, as read by offset.
        self._pages: dict[int, list[int]] = {}
        # The summaries read, least recently used first (textual's LRUCache never overwrites).
        self._summaries: OrderedDict[int, Summary] = OrderedDict()
        if ids is None and head:
            self._keep_page(0, head)

    @classmethod
    def start(cls, store: MailStore, folder: str) -> FolderRows:
        """The first page and the folder's size: enough to draw, whatever the size."""
        head = store.summaries(folder, limit=PAGE)
        total = len(head) if len(head) < PAGE else store.count(folder)
        return cls(store, folder, head=head, total=max(total, len(head)))

    @property
    def has_ids(self) -> bool:
        return self._ids is not None

    def set_ids(self, ids: list[int]) -> bool:
        """Take the folder's ids (the first ids win); False when they disagree with rows shown."""
        if self._ids is not None:
            return True
        agree = len(ids) == self._total and all(
            ids[number * PAGE : number * PAGE + len(page)] == page
            for number, page in self._pages.items()
        )
        self._ids, self._total = ids, len(ids)
        self._pages.clear()
        return agree

    def _ensure_ids(self) -> list[int]:
        if self._ids is None:
            self.set_ids(self.store.ids(self.folder))
        assert self._ids is not None
        return self._ids

    def _keep_page(self, number: int, summaries: Sequence[Summary]) -> None:
        self._pages[number] = [s.id for s in summaries]
        for summary in summaries:
            self._hold(summary.id, summary)

    def _hold(self, letter_id: int, summary: Summary) -> None:
        self._summaries[letter_id] = summary
        self._summaries.move_to_end(letter_id)
        if len(self._summaries) > CACHED:
            self._summaries.popitem(last=False)

    def __len__(self) -> int:
        return self._total

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._total))]
        if index < 0:
            index += self._total
        if not 0 <= index < self._total:
            raise IndexError(index)
        number, offset = divmod(index, PAGE)
        if self._ids is not None:
            letter_id = self._ids[index]
            if letter_id not in self._summaries:
                self._read_page(self._ids[number * PAGE : (number + 1) * PAGE])
            self._summaries.move_to_end(letter_id)
            return self._summaries[letter_id]
        page = self._pages.get(number)
        if page is None or any(i not in self._summaries for i in page):
            self._keep_page(number, self.store.summaries(self.folder, PAGE, number * PAGE))
            page = self._pages[number]
        if offset >= len(page):
            return _gone(0, self.folder)  # the folder shrank since it was counted
        return self._summaries[page[offset]]

    def _read_page(self, ids: list[int]) -> None:
        found = {s.id: s for s in self.store.summaries_for(ids)}
        for letter_id in ids:
            self._hold(letter_id, found.get(letter_id) or _gone(letter_id, self.folder))

    def index_of(self, letter_id: int) -> int | None:
        if self._ids is None:
            for number, page in self._pages.items():
                if letter_id in page:
                    return number * PAGE + page.index(letter_id)
        try:
            return self._ensure_ids().index(letter_id)
        except ValueError:
            return None

    def cached(self, letter_id: int) -> Summary | None:
        return self._summaries.get(letter_id)

    def replace(self, summary: Summary) -> int | None:
        if summary.id not in self._summaries:
            return None
        self._hold(summary.id, summary)
        return self.index_of(summary.id)

    def remove(self, ids: set[int]) -> None:
        kept = [i for i in self._ensure_ids() if i not in ids]
        self._ids, self._total = kept, len(kept)
        for letter_id in ids:
            self._summaries.pop(letter_id, None)


@dataclass(frozen=True)
class _RowKey:
    summary: Summary
    width: int
    cursor: bool
    focused: bool
    show_folder: bool
    line: ThreadLine | None


class LetterList(ScrollView, can_focus=True):
    """A scrolling list of letter summaries with a cursor; posts messages carrying letter ids."""

    COMPONENT_CLASSES = {
        "letter-list--cursor",
        "letter-list--unread",
        "letter-list--quarantined",
        "letter-list--date",
        "letter-list--empty",
    }
    DEFAULT_CSS = """
    LetterList { background: $surface; overflow-x: hidden; }
    LetterList > .letter-list--cursor { background: $primary 40%; }
    LetterList:focus > .letter-list--cursor { background: $primary; color: $text; }
    LetterList > .letter-list--unread { text-style: bold; }
    LetterList > .letter-list--quarantined { color: $warning; }
    LetterList > .letter-list--date { color: $text-muted; }
    LetterList > .letter-list--empty { color: $text-muted; }
    """
    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First letter", show=False),
        Binding("end,G", "last", "Last letter", show=False),
        Binding("enter", "select", "Open", show=False),
        Binding("space", "toggle_thread", "Open or close a conversation", show=False),
    ]

    cursor: var[int] = var(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to a letter (None when the list is empty)."""

        def __init__(self, letter_id: int | None) -> None:
            super().__init__()
            self.letter_id = letter_id

    class Selected(Message):
        """Enter or a click on a letter (or a thread of one): open it."""

        def __init__(self, letter_id: int) -> None:
            super().__init__()
            self.letter_id = letter_id

    def __init__(self, *, empty_text: str = "No letters", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.letters: Rows = ListRows()
        self.empty_text = empty_text
        self.show_folder = False
        self._cache: LRUCache[_RowKey, Strip] = LRUCache(1024)

    # -- data -------------------------------------------------------------------------------

    def set_letters(
        self,
        letters: Rows | Iterable[Summary],
        *,
        keep: int | None = None,
        show_folder: bool = False,
    ) -> None:
        """Replace the rows; the cursor stays on letter `keep` when it is still there."""
        rows = letters if isinstance(letters, Rows) else ListRows(letters)
        self.letters = rows
        self.show_folder = show_folder
        index = rows.index_of(keep) if keep is not None else None
        self.virtual_size = Size(self.size.width, len(rows))
        self._cache.clear()
        self.refresh()
        self.cursor = min(index or 0, max(len(rows) - 1, 0))

    def ids_loaded(self, rows: FolderRows, ids: list[int]) -> None:
        """A folder's ids arrived from a worker; redraw only if the folder changed meanwhile."""
        if rows is not self.letters or rows.has_ids:
            return
        current = self.current
        if rows.set_ids(ids):
            return
        self.virtual_size = Size(self.size.width, len(rows))
        self._cache.clear()
        self.refresh()
        index = rows.index_of(current.id) if current is not None else None
        self.cursor = min(self.cursor if index is None else index, max(len(rows) - 1, 0))

    def update_letter(self, summary: Summary) -> None:
        """Redraw one row after a flag or trust change (rows not held are read fresh anyway)."""
        index = self.letters.replace(summary)
        if index is None:
            return
        if self.letters.thread_line(index) is not None:
            self.refresh()  # the thread's row and its member's (only changed rows redraw)
        else:
            self.refresh_line(index)

    def cached(self, letter_id: int) -> Summary | None:
        """The letter's summary as the list holds it, if it does."""
        return self.letters.cached(letter_id)

    def remove_letters(self, ids: Iterable[int]) -> None:
        """Drop rows (moved elsewhere); the cursor stays at the same position."""
        keep_index = self.cursor
        self.letters.remove(set(ids))
        self.virtual_size = Size(self.size.width, len(self.letters))
        self.refresh()
        self.cursor = min(keep_index, max(len(self.letters) - 1, 0))

    @property
    def current(self) -> Summary | None:
        if 0 <= self.cursor < len(self.letters):
            return self.letters[self.cursor]
        return None

    @property
    def current_letters(self) -> list[Summary]:
        """What archive or delete act on: the cursor's letter, or its whole conversation."""
        if 0 <= self.cursor < len(self.letters):
            return self.letters.row_letters(self.cursor)
        return []

    def select_id(self, letter_id: int) -> bool:
        index = self.letters.index_of(letter_id)
        if index is None:
            return False
        self.cursor = index
        return True

    # -- cursor -----------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.letters) - 1)) if self.letters else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self._show_cursor()
        current = self.current
        self.post_message(self.Highlighted(current.id if current else None))

    def _show_cursor(self) -> None:
        self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, force=True)

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= max(self.scrollable_content_region.height - 1, 1)

    def action_page_down(self) -> None:
        self.cursor += max(self.scrollable_content_region.height - 1, 1)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.letters) - 1

    def action_select(self) -> None:
        self._select(self.cursor)

    def action_toggle_thread(self) -> None:
        """Space: open or close the conversation under the cursor (a member closes its own)."""
        self._toggle(self.cursor)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_thread":
            return self.letters.thread_line(self.cursor) is not None if self.letters else False
        return True

    def _select(self, index: int) -> None:
        if not 0 <= index < len(self.letters):
            return
        line = self.letters.thread_line(index)
        if line is not None and line.opens:
            self._toggle(index)
        else:
            self.post_message(self.Selected(self.letters[index].id))

    def _toggle(self, index: int) -> None:
        if not 0 <= index < len(self.letters):
            return
        row = self.letters.toggle(index)
        if row is None:
            return
        self.virtual_size = Size(self.size.width, len(self.letters))
        self.refresh()
        self.cursor = row

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < len(self.letters):
            self.cursor = index
            self._select(index)

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.letters))
        self._cache.clear()
        # A shorter list (the terminal made smaller) keeps the cursor's row in sight: it was
        # left below the rows shown, the reader showing a letter no row was lit for.
        self.call_after_refresh(self._show_cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = y + self.scroll_offset.y
        base = self.rich_style
        if not self.letters and y == 0:
            style = base + self.get_component_rich_style("letter-list--empty")
            return Strip([Segment(set_cell_size(f"  {self.empty_text}", width), style)], width)
        if index >= len(self.letters):
            return Strip([Segment(" " * width, base)], width)
        key = _RowKey(
            self.letters[index],
            width,
            index == self.cursor,
            self.has_focus,
            self.show_folder,
            self.letters.thread_line(index),
        )
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(key, base)
            self._cache[key] = strip
        return strip

    def _render_row(self, key: _RowKey, base: Style) -> Strip:
        summary, width, line = key.summary, key.width, key.line
        thread = line if line is not None and not line.member else None
        unread = thread.unread if thread is not None else summary.unread
        style = base
        if unread:
            style += self.get_component_rich_style("letter-list--unread")
        if summary.trust == "quarantined":
            style += self.get_component_rich_style("letter-list--quarantined")
        date_style = style + self.get_component_rich_style("letter-list--date")
        if key.cursor:
            cursor = self.get_component_rich_style("letter-list--cursor")
            style += cursor
            date_style += cursor

        mark = "●" if unread else " "
        trust = TRUST_MARKS.get(summary.trust, "?")
        who = one_line(thread.who) if thread is not None else who_of(summary)
        if line is not None and line.member:
            who = f"  {who}"  # under its thread
        date = short_date(summary.received_at)
        folder = f"{summary.folder:<11}" if key.show_folder else ""
        sender_width = max(10, min(28, width // 4))
        fixed = 2 + 1 + 1 + sender_width + 1 + len(folder) + 1
        if width - fixed - cell_len(date) - 1 < MIN_SUBJECT:
            date = ""  # a narrow list: who and what before when (the reader has the date)
        date_width = cell_len(date) + 1 if date else 0
        subject_width = max(width - fixed - date_width, 0)
        if thread is not None:
            subject = one_line(thread.subject) or "(no subject)"
            if thread.count > 1:  # the count stays in sight: the subject is cut for it
                count = f" ({thread.count})"
                if cell_len(subject) + len(count) > subject_width:
                    subject = fit(subject, max(subject_width - len(count), 0))
                subject += count
        else:
            subject = one_line(summary.subject) or "(no subject)"
        left = f" {mark}{trust} {folder}{fit(who, sender_width)} {fit(subject, subject_width)} "
        segments = [Segment(set_cell_size(left, max(width - date_width, 0)), style)]
        if date:
            segments.append(Segment(f"{date} ", date_style))
        return Strip(segments).crop_extend(0, width, base)


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells; cut with "…", so a cut address never passes for a
    whole one ("bob@example.net.evil.example" read "bob@example.net" in 15 cells)."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)


def who_of(summary: Summary) -> str:
    """Who a letter's row names: its sender, or whom it goes to in the folders we write."""
    if summary.folder in OUTGOING:
        to = ", ".join(summary.recipients)
        return one_line(f"To {to}" if to else "(no recipient)")
    # The authenticated address, not the blurb: a blurb can claim to be anyone.
    return one_line(summary.sender) or "(unknown sender)"
