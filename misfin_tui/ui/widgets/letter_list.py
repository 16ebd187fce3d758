"""The letter list: a Line-API view that draws only the visible rows.

100,000 summaries are one Python list; drawing a screenful costs the same at any size. Rows
are rendered to Strips and kept in an LRU cache keyed by everything that changes their look.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

from misfin_tui.core.store import Summary
from misfin_tui.ui.widgets.visible import one_line

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
    """ "2026-01-05T12:00:00Z" -> "2026-01-05 12:00" (UTC, as stored)."""
    return iso[:16].replace("T", " ")


@dataclass(frozen=True)
class _RowKey:
    summary: Summary
    width: int
    cursor: bool
    focused: bool
    show_folder: bool


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
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor: var[int] = var(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to a letter (None when the list is empty)."""

        def __init__(self, letter_id: int | None) -> None:
            super().__init__()
            self.letter_id = letter_id

    class Selected(Message):
        """Enter or a click on a letter: open it."""

        def __init__(self, letter_id: int) -> None:
            super().__init__()
            self.letter_id = letter_id

    def __init__(self, *, empty_text: str = "No letters", **kwargs) -> None:
        super().__init__(**kwargs)
        self.letters: list[Summary] = []
        self.empty_text = empty_text
        self.show_folder = False
        self._cache: LRUCache[_RowKey, Strip] = LRUCache(1024)

    # -- data -------------------------------------------------------------------------------

    def set_letters(
        self, letters: list[Summary], *, keep: int | None = None, show_folder: bool = False
    ) -> None:
        """Replace the rows; the cursor stays on letter `keep` when it is still there."""
        self.letters = letters
        self.show_folder = show_folder
        index = 0
        if keep is not None:
            index = next((i for i, s in enumerate(letters) if s.id == keep), 0)
        self.virtual_size = Size(self.size.width, len(letters))
        self._cache.clear()
        self.refresh()
        self.cursor = min(index, max(len(letters) - 1, 0))

    def update_letter(self, summary: Summary) -> None:
        """Redraw one row after a flag or trust change."""
        for index, current in enumerate(self.letters):
            if current.id == summary.id:
                self.letters[index] = summary
                self.refresh_line(index)
                return

    def remove_letters(self, ids: Iterable[int]) -> None:
        """Drop rows (moved elsewhere); the cursor stays at the same position."""
        gone = set(ids)
        keep_index = self.cursor
        self.letters = [s for s in self.letters if s.id not in gone]
        self.virtual_size = Size(self.size.width, len(self.letters))
        self.refresh()
        self.cursor = min(keep_index, max(len(self.letters) - 1, 0))

    @property
    def current(self) -> Summary | None:
        if 0 <= self.cursor < len(self.letters):
            return self.letters[self.cursor]
        return None

    def select_id(self, letter_id: int) -> bool:
        for index, summary in enumerate(self.letters):
            if summary.id == letter_id:
                self.cursor = index
                return True
        return False

    # -- cursor -----------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.letters) - 1)) if self.letters else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self.scroll_to_region(Region(0, new, 1, 1), animate=False, force=True)
        current = self.current
        self.post_message(self.Highlighted(current.id if current else None))

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
        current = self.current
        if current is not None:
            self.post_message(self.Selected(current.id))

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < len(self.letters):
            self.cursor = index
            self.post_message(self.Selected(self.letters[index].id))

    def on_focus(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._cache.clear()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.letters))
        self._cache.clear()

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
            self.letters[index], width, index == self.cursor, self.has_focus, self.show_folder
        )
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(key, base)
            self._cache[key] = strip
        return strip

    def _render_row(self, key: _RowKey, base: Style) -> Strip:
        summary, width = key.summary, key.width
        style = base
        if summary.unread:
            style += self.get_component_rich_style("letter-list--unread")
        if summary.trust == "quarantined":
            style += self.get_component_rich_style("letter-list--quarantined")
        date_style = style + self.get_component_rich_style("letter-list--date")
        if key.cursor:
            cursor = self.get_component_rich_style("letter-list--cursor")
            style += cursor
            date_style += cursor

        mark = "●" if summary.unread else " "
        trust = TRUST_MARKS.get(summary.trust, "?")
        who = _who(summary)
        date = short_date(summary.received_at)
        folder = f"{summary.folder:<11}" if key.show_folder else ""
        sender_width = max(10, min(28, width // 4))
        fixed = 2 + 1 + 1 + sender_width + 1 + len(folder) + 1 + cell_len(date) + 1
        subject_width = max(width - fixed, 0)
        subject = one_line(summary.subject) or "(no subject)"
        left = (
            f" {mark}{trust} {folder}"
            f"{set_cell_size(who, sender_width)} {set_cell_size(subject, subject_width)} "
        )
        segments = [Segment(set_cell_size(left, max(width - cell_len(date) - 1, 0)), style)]
        segments.append(Segment(f"{date} ", date_style))
        return Strip(segments).crop_extend(0, width, base)


def _who(summary: Summary) -> str:
    if summary.folder in OUTGOING:
        to = ", ".join(summary.recipients)
        return one_line(f"To {to}" if to else "(no recipient)")
    # The authenticated address, not the blurb: a blurb can claim to be anyone.
    return one_line(summary.sender) or "(unknown sender)"
