"""What the engine reports as it works: typed events, delivered to whoever subscribed.

The receiver and the verifier run on threads of their own, so subscribers are called on those
threads: the app hands each event to its UI thread as a message, the command line logs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from misfin_tui.core.network import Network

log = logging.getLogger("misfin_tui.events")


@dataclass(frozen=True)
class LetterStored:
    """The receiver stored a letter (verified, pending or quarantined)."""

    letter_id: int
    sender: str


@dataclass(frozen=True)
class LetterVerified:
    """A stored letter's sender checked out (trust "verified" or "rotated")."""

    letter_id: int
    sender: str
    trust: str
    reason: str


@dataclass(frozen=True)
class LetterQuarantined:
    """A stored letter's sender could not be verified: it waits in Quarantine."""

    letter_id: int
    sender: str
    reason: str


@dataclass(frozen=True)
class NetworkTrusted:
    """The person marked the current network as trusted."""

    network: Network


Event = LetterStored | LetterVerified | LetterQuarantined | NetworkTrusted
Subscriber = Callable[[Event], None]


class Events:
    """A small thread-safe fan-out; a failing subscriber never stops the others or the sender."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s", type(event).__name__)
