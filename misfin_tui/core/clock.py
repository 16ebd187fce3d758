"""Time as every table stores it (ISO-8601 UTC text), and the one injectable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, as an aware UTC datetime (the default Clock)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """A moment as the ISO-8601 UTC text every table stores ("2024-05-01T12:00:00Z")."""
    # Not strftime: it costs twice as much, and the receiver stamps every letter several times.
    return moment.astimezone(UTC).isoformat()[:19] + "Z"


def utc_now() -> str:
    """The current time as the ISO-8601 UTC text every table stores."""
    return iso_utc(datetime.now(UTC))


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time as aware UTC, or None when it cannot be read."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day(text: str | None) -> str:
    """The date part of a stored time, for prose ("an unknown date" when unreadable)."""
    return text[:10] if text and parse_time(text) else "an unknown date"
