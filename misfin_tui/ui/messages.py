"""The app's own messages: what the engine and the poll found, handed to the screens."""

from __future__ import annotations

from textual.message import Message

from misfin_tui.core.store import Summary


class NewMail(Message, bubble=False):
    """Letters stored since the last poll (newest first), and the folder counts now."""

    def __init__(self, letters: list[Summary], counts: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.letters = letters
        self.counts = counts


class CountsChanged(Message, bubble=False):
    """Folder (total, unread) counts changed (a move, a send, a flag)."""

    def __init__(self, counts: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.counts = counts


class LetterChanged(Message, bubble=False):
    """One letter's flags or trust changed: redraw its row and the reader if it is open."""

    def __init__(self, letter_id: int) -> None:
        super().__init__()
        self.letter_id = letter_id


class MailStored(Message):
    """The embedded receiver stored a letter: poll now rather than at the next tick."""


class NetworkChanged(Message):
    """The network was marked (un)trusted: the status line looks again."""


class OutboxChanged(Message, bubble=False):
    """A letter was queued, delivered, held, deferred, failed, retried or dropped: the folder
    counts (the Outbox's) are read again now, and the Outbox view re-reads its items."""


class SenderChecked(Message, bubble=False):
    """The verifier's verdict on a letter's sender (the engine's LetterVerified or
    LetterQuarantined): `verified`, with the reason in the core's words."""

    def __init__(self, letter_id: int, sender: str, verified: bool, reason: str) -> None:
        super().__init__()
        self.letter_id = letter_id
        self.sender = sender
        self.verified = verified
        self.reason = reason
