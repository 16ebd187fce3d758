"""The one SQLite database: connections, durability settings and schema migrations.

Every store (mail, trust, outbox) shares this file so a letter, its outbox items and the trust
evidence behind them can change in one transaction. WAL with synchronous=FULL: a commit that
returned has survived a killed process or a power cut.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path


class Folder(StrEnum):
    """The folders every profile has, in the order the folder list shows them."""

    INBOX = "Inbox"
    SENT = "Sent"
    DRAFTS = "Drafts"
    OUTBOX = "Outbox"
    QUARANTINE = "Quarantine"
    ARCHIVE = "Archive"
    TRASH = "Trash"


FOLDERS: tuple[str, ...] = tuple(folder.value for folder in Folder)

# Each entry upgrades the schema by one version; PRAGMA user_version records how far we got.
MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE folders (
        name     TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    );

    -- Every letter: received, sent, draft, queued. `raw` is kept exactly as stored on receipt
    -- (with the metadata the receiver prepended); the parsed fields sit beside it.
    CREATE TABLE letters (
        id            INTEGER PRIMARY KEY,
        folder        TEXT NOT NULL REFERENCES folders(name),
        raw           BLOB NOT NULL,
        version       TEXT NOT NULL DEFAULT 'C',      -- 'B' | 'C': how it travelled
        sender        TEXT NOT NULL DEFAULT '',       -- authenticated sender, or our identity
        sender_blurb  TEXT NOT NULL DEFAULT '',
        recipients    TEXT NOT NULL DEFAULT '',       -- comma-separated addresses
        subject       TEXT NOT NULL DEFAULT '',
        body          TEXT NOT NULL DEFAULT '',       -- gemtext after the metadata lines
        received_at   TEXT NOT NULL,                  -- ISO-8601 UTC; drafts/sent: last change
        mailbox       TEXT NOT NULL DEFAULT '',       -- our mailbox it was addressed to (received)
        unread        INTEGER NOT NULL DEFAULT 0,
        flagged       INTEGER NOT NULL DEFAULT 0,
        trust         TEXT NOT NULL DEFAULT 'none',   -- none|verified|pending|quarantined|...
        trust_reason  TEXT NOT NULL DEFAULT '',
        sender_cert   BLOB,                           -- DER of the sender's certificate (received)
        fingerprint   TEXT NOT NULL DEFAULT '',       -- sender cert SHA-256, or the server's 20
        in_reply_to   INTEGER,                        -- letters.id this one answers (drafts, sent)
        identity      TEXT NOT NULL DEFAULT ''        -- our identity that sends it
    );
    CREATE INDEX letters_by_folder_date ON letters(folder, received_at DESC, id DESC);
    CREATE INDEX letters_by_trust ON letters(trust);

    CREATE VIRTUAL TABLE letters_fts USING fts5(
        subject, body, sender, recipients,
        content='letters', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER letters_ai AFTER INSERT ON letters BEGIN
        INSERT INTO letters_fts(rowid, subject, body, sender, recipients)
        VALUES (new.id, new.subject, new.body, new.sender, new.recipients);
    END;
    CREATE TRIGGER letters_ad AFTER DELETE ON letters BEGIN
        INSERT INTO letters_fts(letters_fts, rowid, subject, body, sender, recipients)
        VALUES ('delete', old.id, old.subject, old.body, old.sender, old.recipients);
    END;
    CREATE TRIGGER letters_au AFTER UPDATE OF subject, body, sender, recipients ON letters BEGIN
        INSERT INTO letters_fts(letters_fts, rowid, subject, body, sender, recipients)
        VALUES ('delete', old.id, old.subject, old.body, old.sender, old.recipients);
        INSERT INTO letters_fts(rowid, subject, body, sender, recipients)
        VALUES (new.id, new.subject, new.body, new.sender, new.recipients);
    END;

    -- One delivery per recipient of a queued letter. The letter sits in the Outbox folder until
    -- every item is delivered, then moves to Sent.
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        letter_id       INTEGER NOT NULL REFERENCES letters(id) ON DELETE CASCADE,
        recipient       TEXT NOT NULL,          -- address as the person wrote it (may carry :port)
        identity        TEXT NOT NULL,          -- our sending address
        state           TEXT NOT NULL,          -- queued|sending|delivered|decision|held|...
        reason          TEXT NOT NULL DEFAULT '',
        evidence        TEXT NOT NULL DEFAULT '{}',  -- JSON: fingerprints, expiry, network, event
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        hops            INTEGER NOT NULL DEFAULT 0,
        connect         TEXT NOT NULL DEFAULT '',    -- host:port override for this send only
        fingerprint     TEXT NOT NULL DEFAULT '',    -- what the server answered with its 20
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX outbox_by_state ON outbox(state);

    -- Servers we have connected to (or verified a sender against), keyed "host:port".
    CREATE TABLE hosts (
        hostport        TEXT PRIMARY KEY,
        spki            TEXT NOT NULL,          -- the pin: SHA-256 of SubjectPublicKeyInfo, hex
        fingerprint     TEXT NOT NULL,          -- SHA-256 of the certificate DER, hex
        not_after       TEXT NOT NULL,
        cert_der        BLOB,
        state           TEXT NOT NULL,          -- pinned|verified|rejected
        protocol        TEXT NOT NULL DEFAULT 'C',  -- 'B' once a server proved B-only
        first_seen      TEXT NOT NULL,
        first_network   TEXT NOT NULL DEFAULT '',
        last_seen       TEXT NOT NULL,
        last_network    TEXT NOT NULL DEFAULT '',
        note            TEXT NOT NULL DEFAULT ''
    );

    -- Mailboxes (ours to send to, and senders we received from): the address book too.
    CREATE TABLE mailboxes (
        address         TEXT PRIMARY KEY,
        fingerprint     TEXT NOT NULL,          -- SHA-256 of the mailbox certificate DER
        issuer_spki     TEXT NOT NULL DEFAULT '',   -- SPKI of the host CA it chains to, when known
        state           TEXT NOT NULL,          -- pinned|verified|rejected|alarm
        blurb           TEXT NOT NULL DEFAULT '',
        nickname        TEXT NOT NULL DEFAULT '',
        first_seen      TEXT NOT NULL,
        last_seen       TEXT NOT NULL,
        verified_at     TEXT,                   -- pasted-fingerprint verification
        checked_at      TEXT,                   -- receiver: last successful sender verification
        check_result    TEXT NOT NULL DEFAULT ''    -- receiver: cached verification outcome
    );

    CREATE TABLE networks (
        id              TEXT PRIMARY KEY,
        label           TEXT NOT NULL DEFAULT '',
        trusted         INTEGER NOT NULL DEFAULT 0,
        strength        TEXT NOT NULL DEFAULT 'strong',  -- strong|weak
        hints           TEXT NOT NULL DEFAULT '',
        first_seen      TEXT NOT NULL,
        last_seen       TEXT NOT NULL
    );

    -- Append-only: every trust event, for the History tab and for "I accepted that by mistake".
    CREATE TABLE trust_history (
        id              INTEGER PRIMARY KEY,
        at              TEXT NOT NULL,
        kind            TEXT NOT NULL,          -- host|mailbox|network
        subject         TEXT NOT NULL,          -- host:port, address or network id
        event           TEXT NOT NULL,          -- accepted|verified|replaced|forgotten|...
        detail          TEXT NOT NULL DEFAULT '',
        network         TEXT NOT NULL DEFAULT ''
    );
    CREATE TRIGGER trust_history_no_update BEFORE UPDATE ON trust_history BEGIN
        SELECT RAISE(ABORT, 'trust history is append-only');
    END;
    CREATE TRIGGER trust_history_no_delete BEFORE DELETE ON trust_history BEGIN
        SELECT RAISE(ABORT, 'trust history is append-only');
    END;

    -- Small settings the program keeps for itself (the network salt, ...).
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: unread counts per folder without scanning every letter (counts() 240 ms -> ~15 ms at 100k).
    """
    CREATE INDEX letters_by_folder_unread ON letters(folder, unread);
    """,
    # 3: every pin says how it came to be and on which network; a learned host key keeps whom it
    # vouched for; a mailbox alarm keeps the reported fingerprint in a column, not in prose.
    """
    ALTER TABLE hosts ADD COLUMN origin TEXT NOT NULL DEFAULT 'approved';
    ALTER TABLE hosts ADD COLUMN origin_network TEXT NOT NULL DEFAULT '';
    ALTER TABLE hosts ADD COLUMN vouched_for TEXT NOT NULL DEFAULT '';
    ALTER TABLE hosts ADD COLUMN vouched_at TEXT NOT NULL DEFAULT '';
    ALTER TABLE hosts ADD COLUMN vouched_network TEXT NOT NULL DEFAULT '';
    UPDATE hosts SET origin = 'pasted' WHERE state = 'verified';
    UPDATE hosts SET origin_network = first_network;
    ALTER TABLE mailboxes ADD COLUMN origin TEXT NOT NULL DEFAULT 'delivery';
    ALTER TABLE mailboxes ADD COLUMN alarm_fingerprint TEXT NOT NULL DEFAULT '';
    UPDATE mailboxes SET alarm_fingerprint = coalesce((
        SELECT substr(detail, 10, 64) FROM trust_history
        WHERE kind = 'mailbox' AND subject = mailboxes.address AND event = 'alarm'
          AND detail LIKE 'reported %' ORDER BY id DESC LIMIT 1), '')
    WHERE state = 'alarm';
    """,
    # 4: mail from home (GMAP): each synced letter's remote id and the state both sides last
    # agreed on, so a re-sync never duplicates and a change on either side can be told apart.
    """
    CREATE TABLE gmap_remote (
        account        TEXT NOT NULL,              -- our address whose home mailbox it is
        remote_id      TEXT NOT NULL,              -- the home server's id for the letter
        letter_id      INTEGER,                    -- letters.id here; NULL once deleted here
        state          TEXT NOT NULL DEFAULT 'stored',  -- stored|encrypted|gone
        remote_time    TEXT NOT NULL DEFAULT '',   -- the id's timestamp (ISO-8601 UTC)
        synced_folder  TEXT NOT NULL DEFAULT '',   -- folder both sides agreed on last
        synced_unread  INTEGER NOT NULL DEFAULT 0,
        deleted_from   TEXT NOT NULL DEFAULT '',   -- the folder it was deleted from here
        PRIMARY KEY (account, remote_id)
    );
    CREATE INDEX gmap_remote_by_letter ON gmap_remote(letter_id);
    -- Emptying the Trash here must reach home: keep the remote id, remember where it was.
    CREATE TRIGGER letters_gmap_ad AFTER DELETE ON letters BEGIN
        UPDATE gmap_remote SET letter_id = NULL, deleted_from = old.folder
        WHERE letter_id = old.id;
    END;

    -- One row per account that syncs: where home is and how far the last sync got.
    CREATE TABLE gmap_accounts (
        account     TEXT PRIMARY KEY,
        server      TEXT NOT NULL DEFAULT '',      -- host:port of home's GMAP
        since       TEXT NOT NULL DEFAULT '',      -- incremental watermark (id timestamp)
        last_sync   TEXT NOT NULL DEFAULT '',
        last_error  TEXT NOT NULL DEFAULT ''
    );
    """,
    # 5: the receiver's per-sender storage quota sums one sender's letters without a scan.
    """
    CREATE INDEX letters_by_sender ON letters(sender);
    """,
    # 6: the named hints a network was recognised by (JSON of [kind, value]; nethints.py).
    """
    ALTER TABLE networks ADD COLUMN signals TEXT NOT NULL DEFAULT '';
    """,
    # 7: key rotation. Retired or revoked mailbox fingerprints, never accepted again (like ssh's
    # @revoked), with what the notice that retired them announced; an outbox item may present
    # a retired certificate of ours (a rotation notice goes out signed with the old one).
    """
    CREATE TABLE revoked_fingerprints (
        address      TEXT NOT NULL,                -- mailbox@host, lower case
        fingerprint  TEXT NOT NULL,                -- the retired certificate's SHA-256
        at           TEXT NOT NULL,
        why          TEXT NOT NULL DEFAULT '',     -- routine|stolen|... (the notice's reason)
        announced    TEXT NOT NULL DEFAULT '',     -- the successor the notice named
        announced_ca TEXT NOT NULL DEFAULT '',     -- a new host CA's SPKI the notice named
        notice_at    TEXT NOT NULL DEFAULT '',     -- the notice's own time
        letter_id    INTEGER,                      -- the notice letter, when one retired it
        PRIMARY KEY (address, fingerprint)
    );
    ALTER TABLE outbox ADD COLUMN present TEXT NOT NULL DEFAULT '';
    """,
    # 8: full-text indexing lags the commit. A stored letter's id goes into fts_backlog (one
    # small insert); MailStore.index_backlog() moves the backlog into letters_fts in one batch
    # (the receiver every half second, search before it looks), so a receiving commit no
    # longer writes FTS segments for one or two letters at a time. A letter still waiting is
    # not in letters_fts: deleting or changing it must not touch the index for it.
    """
    CREATE TABLE fts_backlog (id INTEGER PRIMARY KEY);
    DROP TRIGGER letters_ai;
    DROP TRIGGER letters_ad;
    DROP TRIGGER letters_au;
    CREATE TRIGGER letters_ai AFTER INSERT ON letters BEGIN
        INSERT INTO fts_backlog(id) VALUES (new.id);
    END;
    CREATE TRIGGER letters_ad AFTER DELETE ON letters BEGIN
        INSERT INTO letters_fts(letters_fts, rowid, subject, body, sender, recipients)
        SELECT 'delete', old.id, old.subject, old.body, old.sender, old.recipients
        WHERE NOT EXISTS (SELECT 1 FROM fts_backlog WHERE id = old.id);
        DELETE FROM fts_backlog WHERE id = old.id;
    END;
    CREATE TRIGGER letters_au AFTER UPDATE OF subject, body, sender, recipients ON letters BEGIN
        INSERT INTO letters_fts(letters_fts, rowid, subject, body, sender, recipients)
        SELECT 'delete', old.id, old.subject, old.body, old.sender, old.recipients
        WHERE NOT EXISTS (SELECT 1 FROM fts_backlog WHERE id = old.id);
        INSERT OR IGNORE INTO fts_backlog(id) VALUES (new.id);
    END;
    """,
    # 9: the address book follows a mailbox that moved for good (a 31 the person followed):
    # completion offers the new address under the old one's name, and no longer the old one.
    # An address book entry only: no pin is made, copied or changed by a move.
    """
    CREATE TABLE moved_mailboxes (
        address   TEXT PRIMARY KEY,    -- the old mailbox@host, lower case (a mailboxes key)
        moved_to  TEXT NOT NULL,       -- where it went, as the 31 named it (mailbox@host[:port])
        at        TEXT NOT NULL
    );
    """,
    # 10: a key a server presented that is not its pin (while sending, syncing, verifying a
    # sender or re-validating), as JSON (trust.model.Sighting): evidence of a change shown in
    # Trust until the person decides; it never replaces the pin.
    """
    ALTER TABLE hosts ADD COLUMN changed TEXT NOT NULL DEFAULT '';
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class DatabaseError(Exception):
    """The database cannot be used: newer schema, corrupt file, unwritable disk."""


class Database:
    """A SQLite file shared by threads: one connection per thread, migrations on first open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._migrate_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._migrated = False
        self.connect()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (made on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                make_private(self.path)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=30000")
            except sqlite3.DatabaseError as exc:
                why: object = exc
                if _no_room(self.path):
                    why = "the disk holding it is full (free some space)"
                elif (where := _read_only(self.path)) is not None:
                    why = f"{where} is read-only (the database and its journal are written there)"
                raise DatabaseError(f"cannot open the database {self.path}: {why}") from exc
            self._local.conn = conn
            with self._migrate_lock:
                if not self._migrated:
                    self._migrate(conn)
                    self._migrated = True
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception. Nests as a no-op."""
        conn = self.connect()
        if conn.in_transaction:
            yield conn
            return
        # Writers of this process queue here, in order, instead of in SQLite's busy handler,
        # which sleeps 1..100 ms between tries: 32 receiving threads saw p99 ~1.5 s from it.
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def check(self) -> None:
        """PRAGMA quick_check: raise DatabaseError, in one line, when the file is damaged.

        The receiver runs it before it takes letters, so a damaged store is refused with a
        clear reason instead of answering 20 to letters it cannot keep readably.
        """
        try:
            rows = self.connect().execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"the database {self.path} is damaged: {exc}") from exc
        problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
        if problems:
            raise DatabaseError(
                f"the database {self.path} is damaged: {'; '.join(problems)[:300]}"
                " (restore a backup, or move the file aside to start afresh)"
            )

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs on exit)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.path} was written by a newer misfin-tui (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade misfin-tui"
                )
            for number in range(version, SCHEMA_VERSION):
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] > number:
                    conn.execute("COMMIT")  # another process did this step while we waited
                    continue
                for statement in _split_sql(MIGRATIONS[number]):
                    conn.execute(statement)
                if number == 0:
                    conn.executemany(
                        "INSERT INTO folders(name, position) VALUES (?, ?)",
                        [(name, i) for i, name in enumerate(FOLDERS)],
                    )
                conn.execute(f"PRAGMA user_version = {number + 1}")
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise DatabaseError(f"cannot use the database {self.path}: {exc}") from exc


def _no_room(path: Path) -> bool:
    """The disk under `path` is full: SQLite says only "disk I/O error" when it cannot make
    the WAL index (-shm) there."""
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def _read_only(path: Path) -> Path | None:
    """The folder or file that keeps the database at `path` from being written (a read-only
    mount, or no write permission), if one does: SQLite says only "unable to open database
    file" when it cannot make its WAL index there, or "attempt to write a readonly database"."""
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return path.parent
        if not os.access(path.parent, os.W_OK):
            return path.parent
        if path.exists() and not os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return None


def make_private(path: Path) -> None:
    """The database, its WAL and SHM readable by us alone (0600, in a 0700 folder), whatever
    the umask: letters are private. SQLite gives the WAL and SHM the main file's mode."""
    private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            pass


def private_dir(folder: Path) -> None:
    """Make `folder` (and missing parents) and keep it 0700."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        text = "\n".join(current)
        if stripped.endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
