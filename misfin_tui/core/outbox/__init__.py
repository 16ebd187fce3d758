"""The outbox (letters on disk until a 20), its model, and the one delivery conversation."""

from misfin_tui.core.outbox.delivery import Asker, Conversation
from misfin_tui.core.outbox.model import (
    WAITING,
    Evidence,
    OutboxError,
    OutboxItem,
    State,
    summarise,
)
from misfin_tui.core.outbox.outbox import Outbox, backoff

__all__ = [
    "WAITING",
    "Asker",
    "Conversation",
    "Evidence",
    "Outbox",
    "OutboxError",
    "OutboxItem",
    "State",
    "backoff",
    "summarise",
]
