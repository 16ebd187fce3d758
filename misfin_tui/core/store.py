"""Letters on disk: folders, flags, full-text search and drafts over the shared database.

Blocking sqlite3 on purpose: the UI calls it from thread workers and the receiver from its own
thread; each thread gets its own connection from Database. Every write is one transaction, so
a call that returned has been committed durably (WAL, synchronous=FULL).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.clock import utc_now
from misfin_tui.core.database import FOLDERS, Database, Folder

if TYPE_CHECKING:  # imported where used: sending never syncs
    from misfin_tui.core.remote import RemoteEntry, RemoteLetter, SyncState


class LetterTrust(StrEnum):
    """What is known of a stored letter's sender."""

    NONE = "none"  # ours (sent, drafts) or from home, where the sender was authenticated
    VERIFIED = "verified"  # the sender's server vouched for this certificate
    ROTATED = "rotated"  # verified, with a new certificate under the same host key
    PENDING = "pending"  # not checked yet: waits in Quarantine
    QUARANTINED = "quarantined"  # the check failed, with the reason
    UNVERIFIED = "unverified"  # imported from an archive: nobody checked


TRUST_STATES: tuple[str, ...] = tuple(trust.value for trust in LetterTrust)
VERSIONS = ("B", "C")
PREFIX_MIN = 3

# Only the columns the letter list draws: never raw or body, so listing 100,000 letters stays cheap.
_SUMMARY_COLUMNS = (
    "id, folder, sender, sender_blurb, subject, received_at, unread, trust, recipients, flagged"
)
_SUMMARY_COLUMNS_OF_LETTERS = ", ".join(f"letters.{c.strip()}" for c in _SUMMARY_COLUMNS.split(","))
_NEWEST_FIRST = "ORDER BY received_at DESC, id DESC"
# Far below SQLite's host-parameter limit, whichever build we run on.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Summary:
    """One line of the letter list."""

    id: int
    folder: str
    sender: str
    sender_blurb: str
    subject: str
    received_at: str
    unread: bool
    trust: str
    recipients: tuple[str, ...]
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """Every column of one letters row; raw is exactly the bytes that were stored."""

    id: int
    folder: str
    raw: bytes
    version: str
    sender: str
    sender_blurb: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    received_at: str
    mailbox: str
    unread: bool
    flagged: bool
    trust: str
    trust_reason: str
    sender_cert: bytes | None  # a letter that came in: its sender's certificate; ours: None
    # SHA-256 hex. A letter that came in: its sender's certificate. One we sent (mark_sent):
    # the recipients' mailbox certificates, as their servers' 20 answers gave them, by commas.
    fingerprint: str
    in_reply_to: int | None
    identity: str

    @property
    def cleared(self) -> bool:
        """Out of Quarantine with its sender checked (what a recheck hopes for)."""
        return self.folder != Folder.QUARANTINE and self.trust not in (
            LetterTrust.PENDING,
            LetterTrust.QUARANTINED,
        )


def _summary(_cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Summary:
    """Row factory: plain tuples straight into Summary (sqlite3.Row costs ~40% more at 100k)."""
    recipients = row[8]
    return Summary(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6] == 1,
        row[7],
        tuple(recipients.split(",")) if recipients else (),
        row[9] == 1,
    )


def _letter(row: sqlite3.Row) -> StoredLetter:
    return StoredLetter(
        id=row["id"],
        folder=row["folder"],
        raw=bytes(row["raw"]),
        version=row["version"],
        sender=row["sender"],
        sender_blurb=row["sender_blurb"],
        recipients=_split_recipients(row["recipients"]),
        subject=row["subject"],
        body=row["body"],
        received_at=row["received_at"],
        mailbox=row["mailbox"],
        unread=bool(row["unread"]),
        flagged=bool(row["flagged"]),
        trust=row["trust"],
        trust_reason=row["trust_reason"],
        sender_cert=None if row["sender_cert"] is None else bytes(row["sender_cert"]),
        fingerprint=row["fingerprint"],
        in_reply_to=row["in_reply_to"],
        identity=row["identity"],
    )


def _split_recipients(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def _join_recipients(recipients: Sequence[str] | str) -> str:
    """Comma-join addresses (no spaces, no empties); a plain string is taken as comma-separated."""
    if isinstance(recipients, str):
        recipients = recipients.split(",")
    return ",".join(part.strip() for part in recipients if part.strip())


def _check_folder(folder: str) -> str:
    if folder not in FOLDERS:
        raise ValueError(f"unknown folder {folder!r}: expected one of {', '.join(FOLDERS)}")
    return folder


def _check_trust(trust: str) -> str:
    if trust not in TRUST_STATES:
        raise ValueError(
            f"unknown trust state {trust!r}: expected one of {', '.join(TRUST_STATES)}"
        )
    return trust


def _id_list(ids: int | Iterable[int]) -> list[int]:
    """One id or many, deduplicated in order (a bool is a mistake, not an id)."""
    if isinstance(ids, bool):
        raise TypeError("a bool is not a letter id")
    if isinstance(ids, int):
        return [ids]
    return list(dict.fromkeys(int(i) for i in ids))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def fts_query(text: str) -> str:
    """Turn what a person typed into an FTS5 query that cannot be a syntax error.

    Every whitespace-separated word becomes a quoted string (inner quotes doubled), so AND, OR,
    NEAR, *, -, ^, : and parentheses are just text; the words must all match. The last word
    matches as a prefix so results appear while typing, once it has PREFIX_MIN characters
    (shorter prefixes expand to thousands of terms: "w1*" took ~0.5 s over 100,000 letters).
    Returns "" when there is nothing to find.
    """
    # NUL ends FTS5's string parsing early; lone surrogates cannot be encoded for SQLite.
    cleaned = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    words = cleaned.split()
    if not words:
        return ""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    if len(words[-1]) >= PREFIX_MIN:
        quoted[-1] += "*"
    return " ".join(quoted)


class MailStore:
    """Letters, folders, flags, search and drafts; every method is safe from any thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _summaries(self, sql: str, params: Sequence[object]) -> list[Summary]:
        cursor = self.db.connect().cursor()
        cursor.row_factory = _summary
        return cursor.execute(sql, params).fetchall()

    # -- adding and reading -------------------------------------------------------------------

    def add(
        self,
        *,
        folder: str,
        raw: bytes,
        version: str = "C",
        sender: str = "",
        sender_blurb: str = "",
        recipients: Sequence[str] = (),
        subject: str = "",
        body: str = "",
        received_at: str | None = None,
        mailbox: str = "",
        unread: bool = False,
        trust: str = "none",
        trust_reason: str = "",
        sender_cert: bytes | None = None,
        fingerprint: str = "",
        in_reply_to: int | None = None,
        identity: str = "",
        flagged: bool = False,
    ) -> int:
        """Store one letter and return its id; committed durably before this returns."""
        _check_folder(folder)
        _check_trust(trust)
        if version not in VERSIONS:
            raise ValueError(f"unknown protocol version {version!r}: expected 'B' or 'C'")
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise TypeError(f"raw must be bytes, not {type(raw).__name__}")
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO letters (folder, raw, version, sender, sender_blurb, recipients,"
                " subject, body, received_at, mailbox, unread, flagged, trust, trust_reason,"
                " sender_cert, fingerprint, in_reply_to, identity)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    folder,
                    bytes(raw),
                    version,
                    sender,
                    sender_blurb,
                    _join_recipients(recipients),
                    subject,
                    body,
                    received_at or utc_now(),
                    mailbox,
                    int(bool(unread)),
                    int(bool(flagged)),
                    trust,
                    trust_reason,
                    None if sender_cert is None else bytes(sender_cert),
                    fingerprint,
                    in_reply_to,
                    identity,
                ),
            )
            letter_id = cursor.lastrowid
        assert letter_id is not None
        return letter_id

    def get(self, letter_id: int) -> StoredLetter | None:
        """The whole letter (raw bytes included), or None when it is gone."""
        row = (
            self.db.connect().execute("SELECT * FROM letters WHERE id = ?", (letter_id,)).fetchone()
        )
        return None if row is None else _letter(row)

    def summary(self, letter_id: int) -> Summary | None:
        """One list line, e.g. to redraw a row after a change."""
        found = self._summaries(
            f"SELECT {_SUMMARY_COLUMNS} FROM letters WHERE id = ?", (letter_id,)
        )
        return found[0] if found else None

    def summaries(self, folder: str, limit: int | None = None, offset: int = 0) -> list[Summary]:
        """A folder's letters, newest first: one query on the (folder, date, id) index.

        The whole of a 90,000-letter folder takes ~0.7 s (mostly building Python objects); a
        window (limit/offset, or ids() + summaries_for()) takes ~1-10 ms at any size.
        """
        _check_folder(folder)
        return self._summaries(
            f"SELECT {_SUMMARY_COLUMNS} FROM letters WHERE folder = ? {_NEWEST_FIRST}"
            " LIMIT ? OFFSET ?",
            (folder, -1 if limit is None else limit, offset),
        )

    def summaries_for(self, ids: Iterable[int]) -> list[Summary]:
        """Summaries of the given letters in the order given (ids that are gone are skipped)."""
        wanted = _id_list(ids)
        found: dict[int, Summary] = {}
        for chunk in _chunks(wanted):
            for item in self._summaries(
                f"SELECT {_SUMMARY_COLUMNS} FROM letters WHERE id IN ({_marks(len(chunk))})", chunk
            ):
                found[item.id] = item
        return [found[i] for i in wanted if i in found]

    def ids(self, folder: str) -> list[int]:
        """A folder's letter ids, newest first, read from the index alone (for virtual lists).

        Plain tuples, one at a time: fetchall() of sqlite3.Row objects peaked at ~10 MB for
        70,000 ids (the list itself is ~3 MB) and took ~2x as long (~50 ms, now ~25 ms).
        """
        _check_folder(folder)
        cursor = self.db.connect().cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT id FROM letters WHERE folder = ? {_NEWEST_FIRST}", (folder,))
        return [row[0] for row in cursor]

    def count(self, folder: str) -> int:
        """How many letters one folder holds, from the index alone (counts() reads every row)."""
        _check_folder(folder)
        row = (
            self.db.connect()
            .execute("SELECT COUNT(*) FROM letters WHERE folder = ?", (folder,))
            .fetchone()
        )
        return int(row[0])

    def counts(self) -> dict[str, tuple[int, int]]:
        """Folder -> (total, unread) for every folder, empty ones included."""
        result = dict.fromkeys(FOLDERS, (0, 0))
        rows = self.db.connect().execute(
            "SELECT folder, COUNT(*), TOTAL(unread) FROM letters GROUP BY folder"
        )
        for folder, total, unread in rows:
            result[folder] = (total, int(unread))
        return result

    def latest_id(self) -> int:
        """The highest letter id (0 when empty): poll it to notice new mail cheaply."""
        row = self.db.connect().execute("SELECT COALESCE(MAX(id), 0) FROM letters").fetchone()
        return int(row[0])

    def newer_than(self, letter_id: int, folder: str | None = None) -> list[Summary]:
        """Letters with an id above letter_id (what arrived since the last poll), newest first."""
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM letters WHERE id > ?"
        params: list[object] = [letter_id]
        if folder is not None:
            sql += " AND folder = ?"
            params.append(_check_folder(folder))
        return self._summaries(f"{sql} {_NEWEST_FIRST}", params)

    # -- changing ---------------------------------------------------------------------------

    def move(self, ids: int | Iterable[int], folder: str) -> dict[int, str]:
        """Move letters; returns each moved letter's previous folder so restore() can undo it.

        Ids that no longer exist are skipped (and absent from the result).
        """
        _check_folder(folder)
        previous: dict[int, str] = {}
        with self.db.transaction() as conn:
            for chunk in _chunks(_id_list(ids)):
                rows = conn.execute(
                    f"SELECT id, folder FROM letters WHERE id IN ({_marks(len(chunk))})", chunk
                )
                previous.update((row[0], row[1]) for row in rows)
                conn.execute(
                    f"UPDATE letters SET folder = ? WHERE id IN ({_marks(len(chunk))})",
                    [folder, *chunk],
                )
        return previous

    def restore(self, previous: Mapping[int, str]) -> None:
        """Undo a move: put each letter back in the folder move() reported."""
        for folder in set(previous.values()):
            _check_folder(folder)
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE letters SET folder = ? WHERE id = ?",
                [(folder, letter_id) for letter_id, folder in previous.items()],
            )

    def mark_sent(self, letter_id: int, fingerprints: Sequence[str]) -> None:
        """Every recipient's server answered 20: the letter moves to Sent with the
        fingerprints they returned, dated now."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE letters SET folder = 'Sent', fingerprint = ?, received_at = ? WHERE id = ?",
                (",".join(fp for fp in fingerprints if fp), utc_now(), letter_id),
            )

    def ids_with_trust(self, trust: str) -> list[int]:
        """Letters in one verification state, oldest first (the verifier resumes 'pending')."""
        _check_trust(trust)
        rows = self.db.connect().execute(
            "SELECT id FROM letters WHERE trust = ? ORDER BY id", (trust,)
        )
        return [row[0] for row in rows]

    def quarantined_from(self, host: str) -> list[int]:
        """Letters in Quarantine whose sender's address is at `host` (a pin of it changed)."""
        rows = self.db.connect().execute(
            "SELECT id, sender FROM letters WHERE folder = ? ORDER BY id", (Folder.QUARANTINE,)
        )
        return [letter_id for letter_id, sender in rows if _host_of(sender) == host.lower()]

    def set_unread(self, ids: int | Iterable[int], unread: bool) -> None:
        self._set_flag("unread", ids, unread)

    def set_flagged(self, ids: int | Iterable[int], flagged: bool) -> None:
        self._set_flag("flagged", ids, flagged)

    def _set_flag(self, column: str, ids: int | Iterable[int], value: bool) -> None:
        with self.db.transaction() as conn:
            for chunk in _chunks(_id_list(ids)):
                conn.execute(
                    f"UPDATE letters SET {column} = ? WHERE id IN ({_marks(len(chunk))})",
                    [int(bool(value)), *chunk],
                )

    def set_trust(self, letter_id: int, trust: str, reason: str = "") -> None:
        """Record what we know about the sender of one letter (e.g. after verification)."""
        _check_trust(trust)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE letters SET trust = ?, trust_reason = ? WHERE id = ?",
                (trust, reason, letter_id),
            )

    def delete(self, ids: int | Iterable[int]) -> None:
        """Remove letters for good (their search entries and outbox items go with them).

        Deleting in the UI is a move to Trash (undoable); this is emptying the Trash.
        """
        with self.db.transaction() as conn:
            for chunk in _chunks(_id_list(ids)):
                conn.execute(f"DELETE FROM letters WHERE id IN ({_marks(len(chunk))})", chunk)

    # -- drafts -----------------------------------------------------------------------------

    def save_draft(
        self,
        draft_id: int | None,
        *,
        identity: str,
        recipients: Sequence[str],
        subject: str,
        body: str,
        in_reply_to: int | None = None,
    ) -> int:
        """Create or update a draft in place; returns its id.

        If draft_id no longer names a draft (deleted, or already moved to the Outbox), the text
        is saved as a new draft rather than lost, and the new id is returned: callers keep
        whatever id this returns.
        """
        values = (
            body.encode("utf-8"),
            identity,
            _join_recipients(recipients),
            subject,
            body,
            utc_now(),
            in_reply_to,
            identity,
        )
        with self.db.transaction() as conn:
            if draft_id is not None:
                cursor = conn.execute(
                    "UPDATE letters SET raw = ?, version = 'C', sender = ?, recipients = ?,"
                    " subject = ?, body = ?, received_at = ?, in_reply_to = ?, identity = ?"
                    " WHERE id = ? AND folder = 'Drafts'",
                    (*values, draft_id),
                )
                if cursor.rowcount == 1:
                    return draft_id
            cursor = conn.execute(
                "INSERT INTO letters (folder, raw, version, sender, recipients, subject, body,"
                " received_at, in_reply_to, identity)"
                " VALUES ('Drafts', ?, 'C', ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            new_id = cursor.lastrowid
        assert new_id is not None
        return new_id

    # -- search -----------------------------------------------------------------------------

    def index_backlog(self) -> int:
        """Index every letter stored since the last call (see migration 8); returns how many.

        One batch costs far less than indexing letter by letter inside each receiving commit.
        Cheap when there is nothing to do: one read, no write lock.
        """
        conn = self.db.connect()
        if conn.execute("SELECT 1 FROM fts_backlog LIMIT 1").fetchone() is None:
            return 0
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO letters_fts(rowid, subject, body, sender, recipients)"
                " SELECT letters.id, subject, body, sender, recipients FROM fts_backlog"
                " JOIN letters ON letters.id = fts_backlog.id"
            )
            conn.execute("DELETE FROM fts_backlog")
        return max(0, cursor.rowcount)

    def search(self, query: str, folder: str | None = None, limit: int = 500) -> list[Summary]:
        """Letters matching every word typed (subject, body, sender, recipients), newest first.

        Any text is safe: words are quoted before FTS5 sees them. Not ranked: FTS5 walks its
        index most recently stored first and stops at `limit`, so a word found in most of
        100,000 letters costs ~2-5 ms instead of ~250 ms to sort every match by date; the
        letters it keeps are then shown newest first by date.
        """
        match = fts_query(query)
        if not match:
            return []
        # Letters stored a moment ago are found too (a read-only copy: what is indexed).
        with contextlib.suppress(sqlite3.OperationalError):
            self.index_backlog()
        # Walk the index newest id first and stop at `limit`: sorting every match by date first
        # cost ~200 ms for a word in most of 100,000 letters; this costs ~1-5 ms at any count.
        sql = (
            f"SELECT {_SUMMARY_COLUMNS_OF_LETTERS} FROM letters_fts"
            " JOIN letters ON letters.id = letters_fts.rowid WHERE letters_fts MATCH ?"
        )
        params: list[object] = [match]
        if folder is not None:
            sql += " AND letters.folder = ?"
            params.append(_check_folder(folder))
        params.append(limit)
        found = self._summaries(f"{sql} ORDER BY letters_fts.rowid DESC LIMIT ?", params)
        found.sort(key=lambda s: (s.received_at, s.id), reverse=True)
        return found

    # -- mail from home (GMAP): remote ids --------------------------------------------------

    def add_remote(self, letters: Sequence[RemoteLetter]) -> list[int]:
        """Store fetched letters with their remote ids in ONE durable transaction.

        A remote id already stored is skipped (its letter id, or 0 when deleted here, is
        returned), so a sync repeated after a crash or a lost answer never duplicates a letter.
        """
        from misfin_tui.core.remote import REMOTE_STATES

        ids: list[int] = []
        with self.db.transaction() as conn:
            for item in letters:
                if item.state not in REMOTE_STATES:
                    raise ValueError(f"unknown remote state {item.state!r}")
                row = conn.execute(
                    "SELECT letter_id FROM gmap_remote WHERE account = ? AND remote_id = ?",
                    (item.account, item.remote_id),
                ).fetchone()
                if row is not None:
                    ids.append(row[0] or 0)
                    continue
                letter_id = self.add(
                    folder=item.folder,
                    raw=item.raw,
                    version=item.version,
                    sender=item.sender,
                    sender_blurb=item.sender_blurb,
                    recipients=item.recipients,
                    subject=item.subject,
                    body=item.body,
                    received_at=item.received_at,
                    mailbox=item.mailbox,
                    unread=item.unread,
                    trust=item.trust,
                    trust_reason=item.trust_reason,
                    identity=item.account,
                )
                conn.execute(
                    "INSERT INTO gmap_remote(account, remote_id, letter_id, state, remote_time,"
                    " synced_folder, synced_unread) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.account,
                        item.remote_id,
                        letter_id,
                        item.state,
                        item.remote_time,
                        item.folder,
                        int(item.unread),
                    ),
                )
                ids.append(letter_id)
        return ids

    def remote_entries(self, account: str) -> dict[str, RemoteEntry]:
        """Every remote id of one account with its letter's state here (one query)."""
        from misfin_tui.core.remote import RemoteEntry

        cursor = self.db.connect().cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            "SELECT r.remote_id, r.letter_id, r.state, r.remote_time, r.synced_folder,"
            " r.synced_unread, r.deleted_from, l.folder, l.unread FROM gmap_remote r"
            " LEFT JOIN letters l ON l.id = r.letter_id WHERE r.account = ?",
            (account,),
        )
        return {
            row[0]: RemoteEntry(
                row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], bool(row[8])
            )
            for row in rows
        }

    def remote_of(self, letter_id: int) -> tuple[str, str] | None:
        """(account, remote id) of a letter that came from home, else None."""
        row = (
            self.db.connect()
            .execute("SELECT account, remote_id FROM gmap_remote WHERE letter_id = ?", (letter_id,))
            .fetchone()
        )
        return None if row is None else (row[0], row[1])

    def remote_letter_ids(self, account: str | None = None) -> dict[str, int]:
        """Remote (GMAP) id -> letter id of the letters synced from home that are still here.

        What titlani's `=> mid:<id>` lines name (threads.resolve_mid_links); one account's
        ids only when `account` is given.
        """
        sql = "SELECT remote_id, letter_id FROM gmap_remote WHERE letter_id IS NOT NULL"
        params: list[object] = []
        if account is not None:
            sql += " AND account = ?"
            params.append(account)
        cursor = self.db.connect().cursor()
        cursor.row_factory = None
        return {row[0]: row[1] for row in cursor.execute(sql, params)}

    def set_remote_synced(self, account: str, remote_id: str, folder: str, unread: bool) -> None:
        """Both sides now agree: the letter is in `folder` (unread or not) here and at home."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE gmap_remote SET synced_folder = ?, synced_unread = ?"
                " WHERE account = ? AND remote_id = ?",
                (folder, int(unread), account, remote_id),
            )

    def apply_remote(
        self, account: str, remote_id: str, letter_id: int, folder: str, unread: bool
    ) -> None:
        """A change made at home: move and flag the letter here and record the agreement."""
        _check_folder(folder)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE letters SET folder = ?, unread = ? WHERE id = ?",
                (folder, int(unread), letter_id),
            )
            conn.execute(
                "UPDATE gmap_remote SET synced_folder = ?, synced_unread = ?"
                " WHERE account = ? AND remote_id = ?",
                (folder, int(unread), account, remote_id),
            )

    def set_remote_state(self, account: str, remote_id: str, state: str) -> None:
        from misfin_tui.core.remote import REMOTE_STATES

        if state not in REMOTE_STATES:
            raise ValueError(f"unknown remote state {state!r}")
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE gmap_remote SET state = ? WHERE account = ? AND remote_id = ?",
                (state, account, remote_id),
            )

    def forget_remote(self, account: str, remote_id: str) -> None:
        """Home no longer has it and nothing here needs it: drop the id."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM gmap_remote WHERE account = ? AND remote_id = ?", (account, remote_id)
            )

    def sync_state(self, account: str) -> SyncState:
        from misfin_tui.core.remote import SyncState

        row = (
            self.db.connect()
            .execute(
                "SELECT account, server, since, last_sync, last_error FROM gmap_accounts"
                " WHERE account = ?",
                (account,),
            )
            .fetchone()
        )
        return SyncState(account, "", "", "", "") if row is None else SyncState(*row)

    def save_sync_state(
        self, account: str, *, server: str, since: str, error: str, finished: bool
    ) -> None:
        """Where home is, the watermark the next sync resumes from, and the last error."""
        with self.db.transaction() as conn:
            previous = self.sync_state(account)
            conn.execute(
                "INSERT OR REPLACE INTO gmap_accounts(account, server, since, last_sync,"
                " last_error) VALUES (?, ?, ?, ?, ?)",
                (account, server, since, utc_now() if finished else previous.last_sync, error),
            )

    # -- archives and threads (read-only) ---------------------------------------------------

    def letters_oldest_first(
        self, folder: str | None = None, batch: int = 200
    ) -> Iterator[StoredLetter]:
        """Every letter of one folder (None: all folders), oldest first, read in batches.

        The order is read once from ids alone (one sort; the folder index when there is a
        folder), then whole rows `batch` at a time by id, so exporting 100,000 letters holds
        one batch of raw bytes in memory. Paging on (received_at, id) instead re-sorted the
        whole table per page without a folder: ~250 s for 100,000 letters. Letters deleted
        meanwhile are skipped.
        """
        where, params = ("WHERE folder = ?", [_check_folder(folder)]) if folder else ("", [])
        batch = max(1, min(batch, _CHUNK))
        conn = self.db.connect()
        cursor = conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT id FROM letters {where} ORDER BY received_at, id", params)
        order = [row[0] for row in cursor]
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            rows = conn.execute(
                f"SELECT * FROM letters WHERE id IN ({_marks(len(chunk))})", chunk
            ).fetchall()
            by_id = {row["id"]: row for row in rows}
            for letter_id in chunk:
                row = by_id.get(letter_id)
                if row is not None:
                    yield _letter(row)

    def mailboxes_of(self, folder: str | None = None) -> list[str]:
        """The distinct non-empty `mailbox` values of a folder (None: all), sorted."""
        sql = "SELECT DISTINCT mailbox FROM letters WHERE mailbox != ''"
        params: list[object] = []
        if folder is not None:
            sql += " AND folder = ?"
            params.append(_check_folder(folder))
        return sorted(row[0] for row in self.db.connect().execute(sql, params))

    def correspondents(self) -> list[str]:
        """Addresses we have written with, for compose completion: who wrote to us (not from
        Quarantine or Trash) and whom we wrote to (Sent, Outbox); most recent first. Drafts
        are left out: a half-typed address there would come back as a completion."""
        conn = self.db.connect()
        seen: dict[str, str] = {}
        rows = conn.execute(
            "SELECT sender, recipients, folder FROM letters"
            " WHERE folder NOT IN ('Quarantine', 'Trash', 'Drafts')"
            " ORDER BY received_at DESC, id DESC"
        )
        for sender, recipients, folder in rows:
            ours = folder in ("Sent", "Outbox")
            for address in _split_recipients(recipients) if ours else (sender,):
                address = address.strip()
                if address.lower() not in seen and Address.is_valid(address):
                    seen[address.lower()] = address
        return list(seen.values())

    def ids_with_raw(self, raws: Iterable[bytes]) -> dict[bytes, tuple[int, ...]]:
        """Stored letters whose raw bytes equal one of `raws` exactly: raw -> their ids, lowest
        first (a letter saved twice is stored twice, so a raw may have several).

        Candidates are narrowed by length first (SQLite reads a blob's length without its
        content), then compared byte for byte, so no hash column or migration is needed.
        """
        wanted = {bytes(raw) for raw in raws}
        lengths = sorted({len(raw) for raw in wanted})
        found: dict[bytes, list[int]] = {}
        conn = self.db.connect()
        for start in range(0, len(lengths), _CHUNK):
            chunk = lengths[start : start + _CHUNK]
            rows = conn.execute(
                f"SELECT id, raw FROM letters WHERE length(raw) IN ({_marks(len(chunk))})"
                " ORDER BY id",
                chunk,
            )
            for letter_id, raw in rows:
                raw = bytes(raw)
                if raw in wanted:
                    found.setdefault(raw, []).append(letter_id)
        return {raw: tuple(ids) for raw, ids in found.items()}

    def reply_parents(self) -> dict[int, int]:
        """letter id -> the letter it answers (in_reply_to), where that letter still exists."""
        rows = self.db.connect().execute(
            "SELECT child.id, child.in_reply_to FROM letters AS child"
            " JOIN letters AS parent ON parent.id = child.in_reply_to"
        )
        return {row[0]: row[1] for row in rows}

    def bodies_with_mid_links(self, folder: str | None = None) -> list[tuple[int, str]]:
        """(id, body) of letters whose body mentions "mid:" (titlani's `=> mid:<id>` replies).

        A substring scan, not FTS: the tokenizer splits "mid:" apart. threads.mid_links()
        picks the real link lines out of these bodies.
        """
        sql = "SELECT id, body FROM letters WHERE instr(body, 'mid:') > 0"
        params: list[object] = []
        if folder is not None:
            sql += " AND folder = ?"
            params.append(_check_folder(folder))
        return [(row[0], row[1]) for row in self.db.connect().execute(sql + " ORDER BY id", params)]


def _host_of(sender: str) -> str:
    try:
        return Address.parse(sender).host
    except AddressError:
        return ""
