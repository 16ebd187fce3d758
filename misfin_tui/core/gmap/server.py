"""Our GMAP server: `misfin-tui receive --gmap-listen` serves the store's letters to their
mailbox's own certificate, with titlani's routes and answers so a titlani-style client works.

Unlike titlani, a request is let in only with the registered mailbox certificate (the
identity's own), or, when the profile holds the host CA, a certificate that CA signed for that
mailbox and hostname: never "anyone whose certificate names the mailbox". GMAP ids are
`YYYYMMDDTHHMMSSZ-<letter id in hex>` (titlani's shape, so `/tag/<Tag>/<since>` works); an id
is parsed into a number and looked up, never used as a path. Folders map to tags (Inbox,
Archive, Trash, Sent, Quarantine) and the unread flag to Unread.

GmapService answers one request line (no I/O, tested directly); GmapServer serves it on the
receiver's event-driven TLS server (tls_server: pyOpenSSL, which can ask for a client
certificate without validating it), with the same limits: caps, deadlines, eviction.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.gmap.protocol import REQUEST_MAX, Answer, valid_tag
from misfin_tui.core.identity import (
    IdentityError,
    NoIdentity,
    cert_info,
    is_signed_by,
    load_certificates,
)
from misfin_tui.core.letter import forward_message
from misfin_tui.core.profile import FolderWatch
from misfin_tui.core.store import MailStore
from misfin_tui.core.tls_server import (
    STOP_GRACE,
    ServerLimits,
    ServingThread,
    Session,
    TlsServer,
    listening_socket,
    mailbox_context,
)
from misfin_tui.core.tls_server import Answer as TlsAnswer

if TYPE_CHECKING:
    from OpenSSL import SSL

    from misfin_tui.core.identity import Identity
    from misfin_tui.core.profile import Profile
    from misfin_tui.core.store import MailStore

log = logging.getLogger("misfin_tui.gmap")

_MSGID_RE = re.compile(r"/msgid/(.+)")
_TAG_NAME_RE = re.compile(r"/tag/([^/?]+)")
_TAG_SINCE_RE = re.compile(
    r"/tag/([^/?]+)/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)"
)
_UNTAG_RE = re.compile(r"/untag/([^/?]+)")
_LIST_INFO_RE = re.compile(r"/list/([^/?]+)/info")
_OUR_ID_RE = re.compile(r"([0-9]{8}T[0-9]{6}Z)-([0-9a-f]{8,12})")
_MAILBOX_RE = re.compile(r"[A-Za-z0-9._-]+")

# Folder -> tag; the letters a mailbox's GMAP shows (Drafts and Outbox stay private).
FOLDER_TAG = {
    "Inbox": "Inbox",
    "Archive": "Archive",
    "Trash": "Trash",
    "Sent": "Sent",
    "Quarantine": "Quarantine",
}
_MOVE_TO = {"Inbox": "Inbox", "Archive": "Archive", "Trash": "Trash"}
# Untagging the tag of the folder a letter is in: where it goes instead.
_UNTAG_TO = {"Inbox": "Archive", "Archive": "Inbox", "Trash": "Inbox", "Quarantine": "Inbox"}


@dataclass(frozen=True)
class Limits(ServerLimits):
    """GMAP serves one person's clients, but its port is open to the world: a crowd of
    strangers holding connections is cut at the deadlines and evicted when the table is full."""

    max_connections: int = 1024
    max_per_peer: int = 8
    handshake_timeout: float = 10.0  # from accept
    request_timeout: float = 30.0  # from accept (titlani's REQUEST_TIMEOUT)
    send_timeout: float = 30.0
    workers: int = 4  # threads answering requests (the store's reads and writes)


@dataclass(frozen=True)
class ServedMailbox:
    address: str  # as the identity spells it
    identity: Identity
    ca_der: bytes | None  # the host CA's certificate when the profile holds it
    retired: frozenset[str] = frozenset()  # fingerprint prefixes of certificates rotated away


def _compact(stored_time: str) -> str:
    """ "2024-05-01T12:00:00Z" -> "20240501T120000Z" (the id's time part)."""
    try:
        moment = datetime.strptime(stored_time, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return "19700101T000000Z"
    return moment.strftime("%Y%m%dT%H%M%SZ")


def gmap_id(letter_id: int, received_at: str) -> str:
    return f"{_compact(received_at)}-{letter_id:08x}"


class GmapService:
    """titlani's routes over our store, for the profile's mailboxes. Thread-safe."""

    def __init__(self, store: MailStore, mailboxes: list[ServedMailbox]) -> None:
        self.store = store
        self.mailboxes = {m.address.lower(): m for m in mailboxes}

    # -- one request -----------------------------------------------------------------------

    def handle(self, line: bytes, client_der: bytes | None) -> Answer:
        """Answer one request line (without its CRLF); never raises."""
        try:
            try:
                text = line.decode("utf-8").strip()
            except UnicodeDecodeError:
                return Answer(59, "Invalid UTF-8 in request")
            if not text.startswith("gemini://"):
                return Answer(59, "Not a Gemini URL")
            rest = text[len("gemini://") :]
            slash = rest.find("/")
            path = "/" if slash < 0 else rest[slash:]
            query: str | None = None
            if "?" in path:
                path, query = path.split("?", 1)
            if path.startswith("/list/"):
                return self._list_route(path)
            box = self._authenticate(client_der)
            if isinstance(box, Answer):
                return box
            return self._route(box, path, query)
        except Exception:
            log.exception("GMAP request failed")
            return Answer(40, "Server error")

    def _list_route(self, path: str) -> Answer:
        if path == "/list/":
            return Answer(20, "text/gemini", b"")  # we serve no mailing lists
        if _LIST_INFO_RE.fullmatch(path):
            return Answer(51, "List not found")
        return Answer(51, "Unknown list route")

    def _authenticate(self, der: bytes | None) -> ServedMailbox | Answer:

        if not der:
            return Answer(60, "Client certificate required")
        try:
            info = cert_info(der, check_self_signature=False)
        except IdentityError:
            return Answer(61, "Certificate missing identity")
        except Exception:
            return Answer(61, "Invalid certificate")
        if not _MAILBOX_RE.fullmatch(info.mailbox) or ".." in info.mailbox:
            return Answer(61, "Invalid mailbox name")
        box = self.mailboxes.get(f"{info.mailbox}@{info.host}".lower())
        if box is None:
            return Answer(61, "No registered identity for mailbox")
        presented = fingerprint(der)
        if presented[:16] in box.retired:  # rotated away (perhaps stolen): still CA-signed
            return Answer(61, "Certificate retired")
        if presented == box.identity.fingerprint:
            return box
        now = datetime.now(UTC)
        if (
            box.ca_der is not None
            and not info.is_ca
            and info.not_before <= now <= info.not_after
            and is_signed_by(der, box.ca_der)
        ):
            return box
        return Answer(61, "Certificate fingerprint mismatch")

    # -- routes ----------------------------------------------------------------------------

    def _route(self, box: ServedMailbox, path: str, query: str | None) -> Answer:
        found = _MSGID_RE.fullmatch(path)
        if found:
            return self._msgid(box, found.group(1))
        if path.startswith("/tag/"):
            return self._tag_route(box, path, query)
        found = _UNTAG_RE.fullmatch(path)
        if found:
            if query is None:
                return Answer(59, "Message ID required")
            return self._untag(box, found.group(1), query)
        if path == "/delete":
            if query is None:
                return Answer(59, "Message ID required")
            return self._delete(box, query)
        return Answer(51, "Unknown route")

    def _tag_route(self, box: ServedMailbox, path: str, query: str | None) -> Answer:
        if path == "/tag/":
            if query is not None:
                return Answer(59, "No query expected")
            return self._ids(box, None, "")
        found = _TAG_SINCE_RE.fullmatch(path)
        if found:
            since = found.group(2)
            try:
                datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                return Answer(59, "Invalid timestamp")
            return self._ids(box, found.group(1), since)
        found = _TAG_NAME_RE.fullmatch(path)
        if found:
            if query is not None:
                return self._add_tag(box, found.group(1), query)
            return self._ids(box, found.group(1), "")
        return Answer(51, "Unknown tag route")

    def _served_where(self, box: ServedMailbox) -> tuple[str, list[object]]:
        received = ", ".join(f"'{f}'" for f in FOLDER_TAG if f != "Sent")
        return (
            f"((mailbox = ? COLLATE NOCASE AND folder IN ({received}))"
            " OR (identity = ? COLLATE NOCASE AND folder = 'Sent' AND mailbox = ''))",
            [box.address, box.address],
        )

    def _ids(self, box: ServedMailbox, tag: str | None, since: str) -> Answer:
        where, params = self._served_where(box)
        if tag is None:
            where += " AND folder != 'Trash'"
        elif tag == "Unread":
            where += " AND unread = 1 AND folder != 'Trash'"
        elif tag in FOLDER_TAG:
            where += " AND folder = ?"
            params.append(tag)
        else:
            return Answer(20, "text/plain", b"")  # an unknown tag has no letters
        if since:
            where += " AND received_at >= ?"
            params.append(since)
        cursor = self.store.db.connect().cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            f"SELECT id, received_at FROM letters WHERE {where} ORDER BY id", params
        )
        body = ", ".join(gmap_id(row[0], row[1]) for row in rows)
        return Answer(20, "text/plain", body.encode())

    def _letter(self, box: ServedMailbox, remote_id: str) -> tuple[int, str, bool] | None:
        """(letter id, folder, unread) of a served letter, or None: the id is only parsed."""
        found = _OUR_ID_RE.fullmatch(remote_id)
        if found is None:
            return None
        letter_id = int(found.group(2), 16)
        where, params = self._served_where(box)
        row = (
            self.store.db.connect()
            .execute(
                f"SELECT id, folder, unread, received_at FROM letters WHERE id = ? AND {where}",
                [letter_id, *params],
            )
            .fetchone()
        )
        if row is None or _compact(row[3]) != found.group(1):
            return None
        return row[0], row[1], bool(row[2])

    def _msgid(self, box: ServedMailbox, remote_id: str) -> Answer:

        found = self._letter(box, remote_id)
        letter = self.store.get(found[0]) if found else None
        if letter is None:
            return Answer(51, "Message not found")
        return Answer(20, "text/plain", forward_message(letter.raw, letter.version))

    def _add_tag(self, box: ServedMailbox, tag: str, remote_id: str) -> Answer:
        if not valid_tag(tag):
            return Answer(59, "Invalid tag name")
        found = self._letter(box, remote_id)
        if found is None:
            return Answer(51, "Message not found")
        letter_id, folder, _unread = found
        if tag == "Unread":
            self.store.set_unread(letter_id, True)
        elif FOLDER_TAG.get(folder) == tag:
            pass  # already tagged: idempotent, as titlani
        elif tag in _MOVE_TO:
            self.store.move(letter_id, _MOVE_TO[tag])
        else:
            return Answer(59, "Tag not supported")
        return Answer(20, "text/plain", b"Tag added")

    def _untag(self, box: ServedMailbox, tag: str, remote_id: str) -> Answer:
        found = self._letter(box, remote_id)
        if found is None:
            return Answer(51, "Message not found")
        letter_id, folder, _unread = found
        if tag == "Unread":
            self.store.set_unread(letter_id, False)
        elif FOLDER_TAG.get(folder) == tag:
            if tag not in _UNTAG_TO:
                return Answer(59, "Tag not supported")
            self.store.move(letter_id, _UNTAG_TO[tag])
        return Answer(20, "text/plain", b"Tag removed")

    def _delete(self, box: ServedMailbox, remote_id: str) -> Answer:
        found = self._letter(box, remote_id)
        if found is None:
            return Answer(51, "Message not found")
        if found[1] != "Trash":
            return Answer(51, "Message not in Trash")
        self.store.delete(found[0])
        return Answer(20, "text/plain", b"Message deleted")


def served_mailboxes(profile: Profile) -> list[ServedMailbox]:
    from cryptography.hazmat.primitives.serialization import Encoding

    boxes = []
    for identity in profile.identities():
        ca = profile.host_ca(identity.address.host)
        ca_der = load_certificates(ca[0])[0].public_bytes(Encoding.DER) if ca else None
        retired = profile.retired_prefixes(str(identity.address))
        boxes.append(ServedMailbox(str(identity.address), identity, ca_der, retired))
    return boxes


# -- the TLS listener ---------------------------------------------------------------------------


class _RequestTooLong(Exception):
    status = 59
    message = f"Request exceeds {REQUEST_MAX} bytes"


class _LineParser:
    """A GMAP request: one line up to CRLF (what follows it is ignored)."""

    def __init__(self) -> None:
        self.buffer = b""

    @property
    def received_any(self) -> bool:
        return bool(self.buffer)

    def feed(self, data: bytes) -> bytes | None:
        self.buffer += data
        line, crlf, _ = self.buffer.partition(b"\r\n")
        if len(line if crlf else line.removesuffix(b"\r")) > REQUEST_MAX:
            raise _RequestTooLong
        return line if crlf else None


def _response(status: int, meta: str) -> bytes:
    return Answer(status, meta).to_bytes()


class GmapServer:
    """The GMAP listener: the receiver's event-driven TLS server (deadlines from accept, caps
    per address, the laggards evicted when full), with requests answered on a few threads."""

    def __init__(
        self,
        profile: Profile,
        listen: tuple[str, int],
        *,
        limits: Limits | None = None,
    ) -> None:
        self.profile = profile
        self.listen = listen
        self.limits = limits or Limits()
        self._service: GmapService | None = None
        self._contexts: dict[str, SSL.Context] = {}
        self._serving: ServingThread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._watch = FolderWatch(profile.identities_dir)

    @property
    def addresses(self) -> list[str]:
        return (
            [] if self._service is None else [m.address for m in self._service.mailboxes.values()]
        )

    def start(self) -> tuple[str, int]:
        self._load(MailStore(self.profile.database()))
        sock = listening_socket(self.listen, 128)
        server = TlsServer(
            next(iter(self._contexts.values())),
            self.limits,
            _LineParser,
            self._handle,
            _response,
            on_done=self._done,
            on_accept=self._identities_changed,  # a rotation shows from the next handshake
        )
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="gmap")
        self._serving = ServingThread(server, "gmap")
        try:
            self._serving.start(sock)
        except BaseException:
            self.stop()
            raise
        bound = sock.getsockname()
        return bound[0], bound[1]

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting and end the connections with no whole request yet (41); a request
        being answered finishes and its answer leaves (a tag moved or a letter deleted gets
        its 20) within `grace` seconds; then every connection left is cut."""
        if self._serving is not None:
            self._serving.stop(grace=grace)
        if self._pool is not None:  # a request still running past the grace is not waited for
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._serving, self._pool = None, None

    def _load(self, store: MailStore) -> None:
        """Read the identities: the mailboxes served, the certificates refused, the TLS keys."""
        stamp = self._watch.stamp()
        boxes = served_mailboxes(self.profile)
        if not boxes:
            raise NoIdentity("no identity to serve GMAP for")
        by_host: dict[str, list[ServedMailbox]] = {}
        for box in boxes:
            by_host.setdefault(box.identity.address.host.lower(), []).append(box)
        contexts = {host: self._context(host, b) for host, b in by_host.items()}
        for ctx in contexts.values():
            ctx.set_tlsext_servername_callback(self._pick)
        self._service, self._contexts = GmapService(store, boxes), contexts
        if self._serving is not None:
            self._serving.server.context = next(iter(contexts.values()))
        self._watch.read(stamp)

    def _identities_changed(self) -> None:
        """Another process rotated a key: serve the new certificate, refuse the retired one."""
        if self._service is not None and self._watch.due():
            try:
                self._load(self._service.store)
                log.info("GMAP identities reloaded: %s", ", ".join(self.addresses))
            except Exception:  # half-written: keep serving what was loaded, retry later
                log.exception("GMAP could not reload the identities")

    def _context(self, host: str, boxes: list[ServedMailbox]) -> SSL.Context:
        """The same context as the Misfin receiver's for this host."""
        return mailbox_context(self.profile, host, [m.identity for m in boxes])

    def _pick(self, conn: SSL.Connection) -> None:
        try:
            name = conn.get_servername()
            ctx = self._contexts.get(name.decode("ascii", "replace").lower()) if name else None
            if ctx is not None:
                conn.set_context(ctx)
        except Exception:
            log.debug("SNI callback failed", exc_info=True)

    def _handle(self, session: Session, request: bytes) -> asyncio.Future[TlsAnswer]:
        """Answer on the pool: the store is read and written there, never on the loop."""
        from OpenSSL import crypto

        assert session.tls is not None and self._service is not None and self._pool is not None
        # Logged, never interpreted: anything but printable ASCII shows as "?".
        path = re.sub(r"[^\x21-\x7e]", "?", request[:120].decode("ascii", "replace"))
        session.record = {"path": path.split("?", 1)[0]}
        cert = session.tls.get_peer_certificate()
        der = None if cert is None else crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        return asyncio.wrap_future(self._pool.submit(self._answer, self._service, request, der))

    @staticmethod
    def _answer(service: GmapService, line: bytes, der: bytes | None) -> TlsAnswer:
        return service.handle(line, der).to_bytes()

    @staticmethod
    def _done(session: Session) -> None:
        record = session.record or {}
        log.info(
            "gmap peer=%s path=%s status=%s",
            session.peer_host,
            record.get("path", "-"),
            record.get("status", "-"),
        )
