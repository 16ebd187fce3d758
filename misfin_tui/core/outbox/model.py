"""What the outbox holds: one item per letter and recipient, its state and its typed evidence."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from misfin_tui.core.trust.model import Ask, Choice, MailboxEvent, Question


class OutboxError(Exception):
    """A request the outbox refuses (unknown item, a choice that does not apply, a bad paste)."""


class PasteRefused(OutboxError):
    """A pasted fingerprint names another key than the one in question: nothing changed."""


class State(StrEnum):
    """Where one delivery is:

    queued -> sending -> delivered                  (20: the letter moves to Sent when all are)
                      -> decision   a person must answer (first contact, changed key, alarm)
                      -> held       waits for a trusted network or a person
                      -> deferred   4x or a network failure: retried later with backoff
                      -> redirected 30/31: the person confirms before it goes elsewhere
                      -> failed     5x/6x or a refused server, with the reason in plain words
    `dropped` is never stored: it reports an item the person gave up on.
    """

    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    DECISION = "decision"
    HELD = "held"
    DEFERRED = "deferred"
    REDIRECTED = "redirected"
    FAILED = "failed"
    DROPPED = "dropped"

    @property
    def waiting(self) -> bool:
        """A person (or a trusted network) is needed before it can move."""
        return self in WAITING


WAITING = (State.DECISION, State.HELD, State.REDIRECTED)


@dataclass(frozen=True)
class Evidence:
    """What the core remembers about an item between runs (the outbox's evidence column)."""

    question: Question | None = None  # what a person must decide, when waiting
    once_spki: str = ""  # "Send once" approved this server key for this letter
    mailbox_once: bool = False  # "Send anyway" past a paused mailbox, for this letter
    mailbox_event: MailboxEvent | None = None  # what the 20's fingerprint meant
    redirected_from: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "question": self.question.to_json() if self.question else None,
                "once_spki": self.once_spki,
                "mailbox_once": self.mailbox_once,
                "mailbox_event": self.mailbox_event.value if self.mailbox_event else None,
                "redirected_from": list(self.redirected_from),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Evidence:
        """Read the column; anything unreadable (an older format, damage) reads as empty."""
        try:
            data: Any = json.loads(text or "{}")
            question = data.get("question")
            event = data.get("mailbox_event")
            return cls(
                question=Question.from_json(question) if question else None,
                once_spki=str(data.get("once_spki") or ""),
                mailbox_once=bool(data.get("mailbox_once")),
                mailbox_event=MailboxEvent(event) if event else None,
                redirected_from=tuple(str(a) for a in data.get("redirected_from") or ()),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def asking(self, question: Question | None) -> Evidence:
        return replace(self, question=question)


@dataclass(frozen=True)
class OutboxItem:
    """One delivery: a letter to one recipient."""

    id: int
    letter_id: int
    recipient: str
    identity: str
    state: State
    reason: str
    evidence: Evidence
    attempts: int
    next_attempt_at: str | None
    hops: int
    connect: str
    fingerprint: str
    created_at: str
    updated_at: str
    subject: str = ""
    present: str = (
        ""  # a retired certificate of ours to present (a rotation notice), by fingerprint
    )

    @property
    def question(self) -> Question | None:
        return self.evidence.question if self.state.waiting else None

    @property
    def choices(self) -> tuple[Choice, ...]:
        """What a person may answer now (always including drop)."""
        if self.state in (State.DEFERRED, State.FAILED):
            return (Choice.DROP,)
        question = self.question
        if question is None:
            return ()
        offered = question.choices
        return (*offered, *(c for c in (Choice.HOLD, Choice.DROP) if c not in offered))

    @property
    def waits_for_trusted_network(self) -> bool:
        question = self.question
        return question is not None and question.ask is Ask.FIRST_CONTACT_UNTRUSTED


@dataclass
class Outcome:
    """Where one attempt left an item (written back by the outbox in one transaction)."""

    state: State
    reason: str = ""
    question: Question | None = None
    next_attempt_at: str | None = None
    fingerprint: str = ""
    mailbox_event: MailboxEvent | None = None


def summarise(items: Sequence[OutboxItem]) -> int:
    """The `send` exit code: 0 all delivered, 5 failed (or some dropped while the rest went),
    4 deferred, 3 waiting for a decision or a trusted network."""
    kept = [item for item in items if item.state is not State.DROPPED]
    states = {item.state for item in kept}
    if not kept or states == {State.DELIVERED}:
        return 5 if len(kept) < len(items) else 0
    if State.FAILED in states:
        return 5
    if states & {State.DEFERRED, State.QUEUED, State.SENDING}:
        return 4
    return 3
