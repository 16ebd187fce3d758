"""The letter list's conversation view: one row per thread, its letters under it when opened.

The threads come from core.threads.build_threads, built off the UI thread (about a second for
100,000 letters); everything here is cheap enough for a key press at that size: opening or
closing a thread splices its rows in or out, a letter's row is found by bisection, and
removing letters rewrites only their threads (a thread left empty stays as a gap in `threads`,
never shown).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import replace

from misfin_tui.core.store import Summary
from misfin_tui.core.threads import Thread, address_key
from misfin_tui.ui.widgets.letter_list import MEMBER, OUTGOING, Rows, ThreadLine, who_of

# A row: (thread index, member index), the thread's own row with member -1. Rows are in that
# tuple order, so bisection finds a thread's row.
_Row = tuple[int, int]


class ThreadRows(Rows):
    """Threads newest first; `expanded` holds the ids of those opened (kept across reloads)."""

    def __init__(self, threads: Sequence[Thread], expanded: Iterable[int] = ()) -> None:
        self.threads = list(threads)
        # Only a thread of several letters opens (a single letter under its own row was shown
        # twice, when the rest of its thread had been moved away).
        known = {thread.id for thread in self.threads if thread.count > 1}
        self.expanded = {thread_id for thread_id in expanded if thread_id in known}
        self._lines: dict[int, ThreadLine] = {}  # thread index -> its row's look, as drawn
        self._emptied = 0  # threads whose every letter was removed
        self._index()

    def _index(self) -> None:
        self._where: dict[int, _Row] = {
            member.id: (number, position)
            for number, thread in enumerate(self.threads)
            for position, member in enumerate(thread.members)
        }
        rows: list[_Row] = []
        for number, thread in enumerate(self.threads):
            rows.append((number, -1))
            if thread.id in self.expanded:
                rows.extend((number, position) for position in range(thread.count))
        self._rows = rows
        self._lines.clear()

    @property
    def thread_count(self) -> int:
        """The conversations shown."""
        return len(self.threads) - self._emptied

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._rows)))]
        number, position = self._rows[index]
        return self.threads[number].members[max(position, 0)]  # newest first: [0] is the latest

    def _thread_row(self, number: int) -> int:
        return bisect_left(self._rows, (number, -1))

    def index_of(self, letter_id: int) -> int | None:
        found = self._where.get(letter_id)
        if found is None:
            return None
        number, position = found
        row = self._thread_row(number)
        return row + 1 + position if self.threads[number].id in self.expanded else row

    def cached(self, letter_id: int) -> Summary | None:
        found = self._where.get(letter_id)
        return None if found is None else self.threads[found[0]].members[found[1]]

    def replace(self, summary: Summary) -> int | None:
        found = self._where.get(summary.id)
        if found is None:
            return None
        number, position = found
        thread = self.threads[number]
        members = list(thread.members)
        members[position] = summary
        root = summary if thread.root.id == summary.id else thread.root
        self.threads[number] = replace(thread, root=root, members=tuple(members))
        self._lines.pop(number, None)
        return self.index_of(summary.id)

    def remove(self, ids: set[int]) -> None:
        # Thread indexes never change, so only the removed letters' threads are touched.
        for number in sorted({self._where[i][0] for i in ids if i in self._where}, reverse=True):
            thread = self.threads[number]
            members = tuple(member for member in thread.members if member.id not in ids)
            row = self._thread_row(number)
            opened = thread.id in self.expanded
            if opened and len(members) < 2:  # one letter left: its thread's row alone
                del self._rows[row + 1 : row + 1 + thread.count]
                self.expanded.discard(thread.id)
                opened = False
            elif opened:  # its member rows are (number, 0..count-1)
                del self._rows[row + 1 + len(members) : row + 1 + thread.count]
            for member in thread.members:
                if member.id in ids:
                    del self._where[member.id]
            if not members:
                del self._rows[row]
                self.threads[number] = replace(thread, members=())
                self._emptied += 1
                continue
            for position, member in enumerate(members):
                self._where[member.id] = (number, position)
            if opened:  # the oldest left starts it now: a new id
                self.expanded.add(members[-1].id)
            self.threads[number] = replace(thread, root=members[-1], members=members)
            self._lines.pop(number, None)

    def thread_line(self, index: int) -> ThreadLine | None:
        number, position = self._rows[index]
        if position >= 0:
            return MEMBER
        line = self._lines.get(number)
        if line is None:
            thread = self.threads[number]
            line = self._lines[number] = ThreadLine(
                who=_correspondents(thread),
                subject=thread.subject,
                count=thread.count,
                unread=thread.unread > 0,
            )
        return line

    def row_letters(self, index: int) -> list[Summary]:
        number, position = self._rows[index]
        members = self.threads[number].members
        return list(members) if position < 0 else [members[position]]

    def toggle(self, index: int) -> int | None:
        number, position = self._rows[index]
        thread = self.threads[number]
        row = self._thread_row(number)
        if thread.id in self.expanded:
            del self._rows[row + 1 : row + 1 + thread.count]
            self.expanded.discard(thread.id)
        elif thread.count > 1:
            self._rows[row + 1 : row + 1] = [(number, i) for i in range(thread.count)]
            self.expanded.add(thread.id)
        else:
            return None  # a single letter: nothing to open
        return row


def _correspondents(thread: Thread) -> str:
    """Everyone in the conversation but us, the most recent writer first; "To …" in the
    folders of letters we wrote, as their letters' rows say (in Sent, "ada@…  Hello" read as
    a letter from Ada)."""
    if not thread.correspondents:
        return who_of(thread.members[0])
    seen: dict[str, None] = {}
    for member in thread.members:
        for address in (member.sender, *member.recipients):
            key = address_key(address) if address else ""
            if key in thread.correspondents:
                seen.setdefault(key, None)
        if len(seen) == len(thread.correspondents):
            break
    who = ", ".join(seen)
    return f"To {who}" if thread.members[0].folder in OUTGOING else who
