"""Dates as the app shows them: one format everywhere, in the local time zone.

The stores keep ISO-8601 UTC; a person reads "2026-12-02 05:00" in their own time, the same
in the letter list, the reader, the outbox and the trust manager.
"""

from __future__ import annotations

from misfin_tui.core.clock import parse_time


def local_time(iso: str | None) -> str:
    """'2026-12-02T05:00:00Z' -> '2026-12-02 05:00' local ('' when absent, as is if unreadable)."""
    if not iso:
        return ""
    when = parse_time(iso)
    if when is None:
        return iso[:16].replace("T", " ")
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def local_day(iso: str | None) -> str:
    """The local date part: '2026-12-02'."""
    return local_time(iso)[:10]


def local_time_with_zone(iso: str | None) -> str:
    """'2026-12-02 06:00 +0100': for text that leaves us (a quoted reply), whose reader may
    live in another time zone ('' when absent, as is if unreadable)."""
    when = parse_time(iso) if iso else None
    if when is None:
        return local_time(iso)
    return when.astimezone().strftime("%Y-%m-%d %H:%M %z")
