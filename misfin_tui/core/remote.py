"""Letters fetched from home (GMAP) as the store keeps them: remote ids and sync progress.

Apart from the store so that sending, which never syncs, does not pay to define them.
"""

from __future__ import annotations

from dataclasses import dataclass

REMOTE_STATES = ("stored", "encrypted", "gone")


@dataclass(frozen=True, slots=True)
class RemoteLetter:
    """A letter fetched from home with the id it has there (MailStore.add_remote)."""

    account: str
    remote_id: str
    remote_time: str
    folder: str
    raw: bytes
    state: str = "stored"  # stored | encrypted (listed, but home does not hand it out)
    version: str = "C"
    sender: str = ""
    sender_blurb: str = ""
    recipients: tuple[str, ...] = ()
    subject: str = ""
    body: str = ""
    received_at: str | None = None
    mailbox: str = ""
    unread: bool = False
    trust: str = "none"
    trust_reason: str = ""


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A remote id, the state both sides last agreed on, and the letter's state here now.

    letter_id and folder are None once the letter was deleted here (deleted_from: from where).
    """

    remote_id: str
    letter_id: int | None
    state: str
    remote_time: str
    synced_folder: str
    synced_unread: bool
    deleted_from: str
    folder: str | None
    unread: bool


@dataclass(frozen=True, slots=True)
class SyncState:
    """How far the last sync of one account got (gmap_accounts)."""

    account: str
    server: str
    since: str
    last_sync: str
    last_error: str
