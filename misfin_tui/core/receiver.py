"""The embedded Misfin receiver: TLS with client certificates asked for but never validated.

pyOpenSSL serves TLS because the standard `ssl` module cannot request a client certificate
without validating it, and Misfin senders are self-signed or signed by their own server. All
connections live on one thread's asyncio loop (core/tls_server.py: memory BIOs, deadlines from
accept, the laggards evicted first when full), so ten thousand idle or trickling peers cost
little and cannot lock a sender out. Letters are committed by one writer thread in groups
(core/commit.py) and answered 20 only after the commit that holds them (WAL, synchronous=FULL).
Sender verification runs afterwards on the Verifier's own threads, so no sender waits for it;
with `unverified = "reject"` it runs before the answer, with a deadline and a bounded queue.

Stopping (SIGTERM under a flood) keeps the promise both ways, within STOP_GRACE: no new
request is read (what is not yet a whole request is answered 41 or cut), letters still
waiting for a reject-mode check are answered 41, the letters handed to the writer are
committed and answered 20 while the loop still runs, and only then are connections cut. A
letter committed but cut before its 20 would come back as a retry and be stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from misfin_tui.core.address import Address
from misfin_tui.core.clock import utc_now
from misfin_tui.core.commit import GroupCommitter, Job, Stopped
from misfin_tui.core.database import Folder
from misfin_tui.core.events import Event, LetterStored, LetterVerified
from misfin_tui.core.identity import CertInfo, Identity, IdentityError, NoIdentity, cert_info
from misfin_tui.core.letter import Sender, parse_stored, stamp_received
from misfin_tui.core.notice import mentions as mentions_notice
from misfin_tui.core.profile import Config, FolderWatch, Profile
from misfin_tui.core.ratelimit import RateLimiter
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.store import LetterTrust, MailStore
from misfin_tui.core.tls_server import (
    STOP_GRACE,
    STOPPING,
    Answer,
    ServerLimits,
    ServingThread,
    Session,
    TlsServer,
    call_soon,
    listening_socket,
    mailbox_context,
    peer_text,
)
from misfin_tui.core.verify import Outcome, Verifier
from misfin_tui.core.wire import Request, RequestParser, build_response

if TYPE_CHECKING:
    from OpenSSL import SSL


log = logging.getLogger("misfin_tui.receiver")

EventSink = Callable[[Event], None]

MB = 1024 * 1024
VERDICT_TTL = 5.0  # seconds a cached "verified" verdict is reused without asking the verifier


@dataclass(frozen=True)
class Limits(ServerLimits):
    """The knobs that keep one sender from hurting the others (0 turns a letter limit off);
    the connection limits and deadlines are ServerLimits' (max_connections open at once, when
    full the busiest address makes room; max_per_peer from one address; deadlines from accept).
    """

    blank_per_window: int = 30  # blank requests per peer address per window ...
    blank_window: float = 60.0  # ... seconds; more get 44
    letters_per_sender: int = 30  # letters per sender certificate per letter_window ...
    letters_per_address: int = 120  # ... and per source address; more get 44 with the wait
    letter_window: float = 60.0
    sender_quota: int = 50 * MB  # bytes stored from one sender address (Trash aside); over: 45
    verify_deadline: float = 5.0  # unverified = "reject": a check's time before the answer
    verify_queue: int = 16  # reject-mode checks waiting or running; more senders get 44 at once
    verify_workers: int = 4

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        """The defaults with [receiver] settings from config.toml applied."""
        return cls(
            max_connections=config.receiver_max_connections,
            max_per_peer=config.receiver_max_per_address,
            letters_per_sender=config.receiver_letters_per_sender,
            letters_per_address=config.receiver_letters_per_address,
            sender_quota=config.receiver_sender_quota_mb * MB,
            verify_deadline=float(config.receiver_verify_seconds),
            verify_queue=config.receiver_verify_queue,
        )


UNLIMITED = Limits(letters_per_sender=0, letters_per_address=0, sender_quota=0)


@dataclass(frozen=True)
class Mailbox:
    """One local mailbox we answer for."""

    address: str  # "bob@example.org" as the identity spells it
    identity: Identity


@dataclass(frozen=True)
class _Letter:
    """A letter that passed every check on the loop, on its way to the writer thread."""

    request: Request
    box: Mailbox
    der: bytes
    info: CertInfo
    sender: str
    trust: str
    reason: str
    source: str = ""  # the sending address: its budget of letters that may trigger a probe


class Receiver:
    """Serves the profile's mailboxes on one listening socket, on a thread and loop of its own."""

    def __init__(
        self,
        profile: Profile,
        listen: tuple[str, int] | None = None,
        *,
        emit: EventSink | None = None,
        verifier: Verifier | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.profile = profile
        self.listen = listen if listen is not None else profile.config.receiver_listen
        self.emit = emit
        self.limits = limits if limits is not None else Limits.from_config(profile.config)
        self._verifier = verifier
        self._owns_verifier = verifier is None
        self._mailboxes: dict[str, dict[str, Mailbox]] = {}  # host -> mailbox.lower() -> Mailbox
        self._contexts: dict[str, SSL.Context] = {}
        self._default_context: SSL.Context | None = None
        self._serving: ServingThread | None = None
        self._committer: GroupCommitter | None = None
        self._checks: _CheckQueue | None = None
        self._quota: _Quota | None = None
        self._store: Any = None
        self._unverified = "quarantine"
        self._damaged = ""
        # Parsed sender certificates (loop thread) and cached verdicts (writer thread).
        self._cert_infos: _Lru[bytes, CertInfo] = _Lru(4096)
        self._verdicts: _Lru[tuple[str, str], tuple[float, int, Outcome]] = _Lru(4096)
        self._identities_watch = FolderWatch(profile.identities_dir)
        # Reject mode: letters waiting for a look-up or a check, not yet with the writer (loop).
        self._waiting: set[asyncio.Future[Answer]] = set()
        self._blank_limiter = RateLimiter(self.limits.blank_per_window, self.limits.blank_window)
        self._sender_limiter = RateLimiter(
            self.limits.letters_per_sender, self.limits.letter_window
        )
        self._address_limiter = RateLimiter(
            self.limits.letters_per_address, self.limits.letter_window
        )

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Check the store, load the mailboxes and certificates, bind, start serving; returns
        the bound address. A damaged database raises DatabaseError (one clear line)."""
        if self._serving is not None:
            raise RuntimeError("the receiver is already running")
        self._load_mailboxes()
        db = self.profile.database()
        db.check()
        self._store = MailStore(db)
        self._damaged = ""
        self._quota = _Quota(self.limits.sender_quota)
        self._unverified = self.profile.config.unverified
        if self._verifier is None:
            self._verifier = Verifier.standalone(self.profile, emit=self.emit)
        if self._owns_verifier:
            self._verifier.start()
        try:
            sock = listening_socket(self.listen, 4096)
        except OSError:
            if self._owns_verifier:
                self._verifier.stop()
            raise
        _allow_open_files(self.limits.max_connections + 256)
        # Letters are indexed for search in batches, not one by one inside each commit.
        self._committer = GroupCommitter(db, housekeeping=self._store.index_backlog)
        self._committer.start()
        if self._unverified == "reject":
            self._checks = _CheckQueue(
                self._verifier, self.limits.verify_queue, self.limits.verify_workers
            )
        assert self._default_context is not None
        server = TlsServer(
            self._default_context,
            self.limits,
            _parser,
            self._handle,
            _response,
            on_done=_log_session,
            on_accept=self._identities_changed,  # a rotation shows from the next handshake
            on_stop=self._refuse_waiting,
        )
        self._serving = ServingThread(server, "misfin-receive")
        try:
            self._serving.start(sock)
        except BaseException:
            self.stop()
            raise
        bound = sock.getsockname()
        log.debug("receiving on %s:%s for %s", bound[0], bound[1], ", ".join(self.addresses))
        return bound[0], bound[1]

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting; commit and answer (20) the letters already with the writer, answer
        41 to those still waiting for a check, within `grace` seconds; then end every
        connection left and stop the writer and the verifier."""
        if self._serving is None:
            return
        deadline = time.monotonic() + grace
        self._serving.begin_stop()  # no new letter from here on
        if self._committer is not None:  # the queued letters commit; their 20s go out on the loop
            self._committer.stop(timeout=max(0.05, deadline - time.monotonic()))
        self._serving.stop(grace=max(0.05, deadline - time.monotonic()))
        if self._checks is not None:
            self._checks.stop()
        self._serving = None
        self._committer = None
        self._checks = None
        if self._owns_verifier and self._verifier is not None:
            self._verifier.stop()

    @property
    def addresses(self) -> list[str]:
        """Every mailbox address served."""
        return [m.address for boxes in self._mailboxes.values() for m in boxes.values()]

    @property
    def verifier(self) -> Verifier | None:
        return self._verifier

    @property
    def connections(self) -> int:
        """Connections open now (approximate: read from another thread)."""
        return self._serving.server.table.count if self._serving is not None else 0

    # -- set-up -----------------------------------------------------------------------------

    def reload_identities(self) -> None:
        """Read the identities again (after a rotation): blank requests answer the new
        fingerprints, and handshakes present the new host CA, from the next connection on.
        Raises what loading raises; the identities served so far stay in use then."""
        old = self._mailboxes, self._contexts, self._default_context
        try:
            self._load_mailboxes()
        except BaseException:
            self._mailboxes, self._contexts, self._default_context = old
            raise
        if self._serving is not None and self._default_context is not None:
            self._serving.server.context = self._default_context
        log.info("identities reloaded: %s", ", ".join(self.addresses))

    def _identities_changed(self) -> None:
        """Reload when another process changed the identities (a rotation)."""
        if self._identities_watch.due():
            try:
                self.reload_identities()
            except Exception:  # a half-written identity: keep serving the old ones, retry later
                log.exception("could not reload the identities")

    def _load_mailboxes(self) -> None:
        stamp = self._identities_watch.stamp()
        identities = self.profile.identities()
        if not identities:
            raise NoIdentity("no identity to receive for")
        self._mailboxes = {}
        for ident in identities:
            host = ident.address.host.lower()
            box = Mailbox(str(ident.address), ident)
            self._mailboxes.setdefault(host, {})[ident.address.mailbox.lower()] = box
        self._contexts = {
            host: self._make_context(host, boxes) for host, boxes in self._mailboxes.items()
        }
        try:
            default_host = self.profile.identity(None).address.host.lower()
        except Exception:  # no default configured: the first identity's host
            default_host = next(iter(self._mailboxes))
        self._default_context = self._contexts[default_host]
        for ctx in self._contexts.values():
            ctx.set_tlsext_servername_callback(self._pick_context)
        self._identities_watch.read(stamp)

    def _make_context(self, host: str, boxes: dict[str, Mailbox]) -> SSL.Context:
        """The host's context; an idle connection keeps no 16 KB buffers."""
        from OpenSSL import SSL

        ctx = mailbox_context(self.profile, host, [m.identity for m in boxes.values()])
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        return ctx

    def _pick_context(self, conn: SSL.Connection) -> None:
        """SNI: present the certificate of the host the sender asked for."""
        try:
            name = conn.get_servername()
            if name:
                ctx = self._contexts.get(name.decode("ascii", "replace").lower().rstrip("."))
                if ctx is not None:
                    conn.set_context(ctx)
        except Exception:  # an odd server name must never break the handshake
            log.debug("SNI callback failed", exc_info=True)

    # -- one request (on the loop) ----------------------------------------------------------

    def _handle(self, session: Session, request: Request) -> Answer | asyncio.Future[Answer]:
        """Route a parsed request: host, mailbox, blank, certificate, limits, then store."""
        record = session.record = {"sender": "-", "mailbox": "-"}
        host = request.address.host
        boxes = self._mailboxes.get(host)
        if boxes is None:
            return 53, f"this server does not take mail for {host}"
        box = boxes.get(request.address.mailbox.lower())
        if box is None:
            return 51, "no such mailbox here"
        record["mailbox"] = box.address
        if request.is_blank:
            wait = self._blank_limiter.wait_needed(session.peer_host)
            if wait:
                return 44, f"{wait} seconds: too many blank requests, slow down"
            return 20, box.identity.fingerprint
        assert session.tls is not None
        cert = session.tls.get_peer_certificate()
        if cert is None:
            return 60, "a letter needs a client certificate"
        from OpenSSL import crypto

        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        info = self._cert_infos.get(der)
        if info is None:
            try:
                info = cert_info(der, check_self_signature=False)
            except IdentityError as exc:
                return 62, f"not a Misfin identity: {exc}"
            except Exception:
                return 62, "the certificate cannot be read"
            self._cert_infos.put(der, info)
        now = datetime.now(UTC)
        if now > info.not_after:
            return 62, "your certificate has expired"
        if info.not_before > now + timedelta(minutes=5):  # some clock skew is normal
            return 62, "your certificate is not valid yet"
        try:
            parsed = Address.parse(f"{info.mailbox}@{info.host}")
        except ProtocolError as exc:
            return 62, f"your certificate names an unusable address: {exc.message}"
        if parsed.port is not None:  # a DNS name has no port: it would aim our probe at one
            return 62, "your certificate names a host with a port, which is not a host name"
        sender = str(parsed)
        record["sender"] = sender
        if self._damaged:
            return 42, "the mail store here is damaged; try again later"
        if self.limits.letters_per_address:
            wait = self._address_limiter.wait_needed(session.peer_host)
            if wait:
                return 44, f"{wait} seconds: too many letters from your address, slow down"
        if self.limits.letters_per_sender:
            wait = self._sender_limiter.wait_needed(info.fingerprint)
            if wait:
                return 44, f"{wait} seconds: too many letters from you, slow down"
        letter = _Letter(
            request,
            box,
            der,
            info,
            sender,
            "pending",
            "checking the sender with their server",
            session.peer_host,
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        if self._unverified == "reject":
            self._waiting.add(future)
            future.add_done_callback(self._waiting.discard)
            # A sender verified before is looked up first, off the loop and not behind the
            # checks: strangers whose servers hang must not make a known sender wait or get 44.
            key = f"{info.mailbox}@{info.host}".lower()
            looked_up = loop.run_in_executor(None, self._cached_verdict, key, info.fingerprint)
            looked_up.add_done_callback(lambda done: self._looked_up(letter, done, future))
            loop.call_later(self.limits.verify_deadline, self._check_late, future)
            return future
        self._commit(letter, future)
        return future

    def _looked_up(
        self,
        letter: _Letter,
        looked_up: asyncio.Future[Outcome | None],
        future: asyncio.Future[Answer],
    ) -> None:
        """Reject mode, on the loop: a cached verdict stores the letter now; else it is checked."""
        if future.done():
            return
        error = None if looked_up.cancelled() else looked_up.exception()
        if error is not None:  # e.g. the store could not be read: checked as a stranger
            log.warning("looking up %s failed: %r", letter.sender, error)
        hit = None if looked_up.cancelled() or error is not None else looked_up.result()
        if hit is not None:
            self._commit(replace(letter, trust=hit.trust, reason=hit.reason), future)
            return
        loop = future.get_loop()
        assert self._checks is not None
        if not self._checks.submit(
            letter, lambda o: call_soon(loop, self._checked, letter, o, future)
        ):
            future.set_result(
                (44, "30 seconds: too many letters waiting for verification, slow down")
            )

    def _check_late(self, future: asyncio.Future[Answer]) -> None:
        if not future.done():
            future.set_result((40, "cannot verify your identity in time; try again later"))

    def _checked(self, letter: _Letter, outcome: Outcome, future: asyncio.Future[Answer]) -> None:
        """A reject-mode verdict arrived (on the loop): answer it, or store the letter."""
        if future.done():  # too late: the sender was told 40; the verdict is cached for a retry
            return
        if outcome.trust == "pending":
            future.set_result((40, "cannot verify your identity right now; try again later"))
        elif outcome.trust == "quarantined":
            future.set_result((outcome.status, outcome.reason))
        else:
            self._commit(replace(letter, trust=outcome.trust, reason=outcome.reason), future)

    def _refuse_waiting(self) -> None:
        """Stopping (on the loop): a letter still waiting for its check will not be stored."""
        for future in list(self._waiting):
            _resolve(future, STOPPING)
        self._waiting.clear()

    def _commit(self, letter: _Letter, future: asyncio.Future[Answer]) -> None:
        """Hand the letter to the writer; answered once the commit holding it is durable."""
        self._waiting.discard(future)  # with the writer now: answered 20 or 4x, never cut
        loop = future.get_loop()

        def done(value: _Stored | Answer | None, error: BaseException | None) -> None:
            """On the writer thread, after the commit (or its failure)."""
            if isinstance(value, _Stored):
                self._stored(letter, value)
                answer: Answer = (20, letter.box.identity.fingerprint)
            elif value is not None:
                answer = value
            else:
                answer = self._failure(letter, error)
            call_soon(loop, _resolve, future, answer)

        assert self._committer is not None
        self._committer.submit(Job(lambda conn: self._store_letter(conn, letter), done))

    def _stored(self, letter: _Letter, stored: _Stored) -> None:
        """The letter is durable: tell the listeners, queue its verification."""
        self._emit(LetterStored(stored.letter_id, letter.sender))
        if stored.trust == "pending":
            assert self._verifier is not None
            self._verifier.submit(stored.letter_id, source=letter.source)
        elif stored.trust in ("verified", "rotated"):
            self._emit(LetterVerified(stored.letter_id, letter.sender, stored.trust, stored.reason))

    def _failure(self, letter: _Letter, error: BaseException | None) -> Answer:
        """A letter the store could not take: 42 when the store is damaged, else 40. Never 20."""
        if isinstance(error, Stopped):
            return STOPPING
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, sqlite3.OperationalError
        ):
            if not self._damaged:
                log.error("the mail store is damaged, letters are refused with 42: %s", error)
            self._damaged = str(error) or "damaged"
            return 42, "the mail store here is damaged; try again later"
        log.error("could not store a letter from %s: %r", letter.sender, error)
        return 40, "cannot store the letter right now; try again later"

    # -- storing (on the writer thread) -----------------------------------------------------

    def _store_letter(self, conn: sqlite3.Connection, letter: _Letter) -> _Stored | Answer:
        """Quota, stamp the authenticated sender and the time, insert; events once durable."""
        info, box = letter.info, letter.box
        trust, reason = letter.trust, letter.reason
        if trust == "pending":
            hit = self._cached_verdict(f"{info.mailbox}@{info.host}".lower(), info.fingerprint)
            if hit is not None:  # a known sender: stored verified, nothing queued
                trust, reason = hit.trust, hit.reason
        when = utc_now()
        # The address as parsed (IDNA, no trailing dot): what the quota and the limits count.
        raw = stamp_received(letter.request, Sender(letter.sender, info.blurb), when)
        assert self._quota is not None
        if not self._quota.allows(conn, letter.sender, len(raw)):
            return 45, "you have too much mail stored here already; try again later"
        parsed = parse_stored(raw, letter.request.version)
        if trust != "pending" and mentions_notice(parsed.body):  # judged by the verifier, always
            trust, reason = "pending", "a key-change notice: checking it"
        recipients = tuple(parsed.recipients) or (box.address,)
        letter_id = self._store.add(
            folder=Folder.QUARANTINE
            if trust == LetterTrust.PENDING
            else Folder.INBOX,  # unverified waits aside
            raw=raw,
            version=letter.request.version,
            sender=letter.sender,
            sender_blurb=info.blurb,
            recipients=recipients,
            subject=parsed.subject,
            body=parsed.body,
            received_at=when,
            mailbox=box.address,
            unread=True,
            trust=trust,
            trust_reason=reason,
            sender_cert=letter.der,
            fingerprint=info.fingerprint,
            identity=box.address,
        )
        self._quota.add(letter.sender, len(raw))
        return _Stored(letter_id, trust, reason)

    def _cached_verdict(self, address: str, fp: str) -> Outcome | None:
        """Verifier.cached(), remembered for VERDICT_TTL seconds: a sender writing letter
        after letter costs one look-up (~0.6 ms of CPU) per few seconds, not per letter."""
        key = (address, fp)
        now = time.monotonic()
        assert self._verifier is not None
        generation = self._verifier.revocations  # a retired certificate's verdict is forgotten
        remembered = self._verdicts.get(key)
        if remembered is not None and remembered[0] > now and remembered[1] == generation:
            return remembered[2]
        hit = self._verifier.cached(address, fp)
        if hit is not None:
            self._verdicts.put(key, (now + VERDICT_TTL, generation, hit))
        return hit

    def _emit(self, event: Event) -> None:
        if self.emit is None:
            return
        try:
            self.emit(event)
        except Exception:  # a listener's bug must not cost a letter
            log.exception("an event listener failed on %s", type(event).__name__)


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small bounded cache; the oldest entry goes first. Shared by the loop, the writer and
    reject mode's look-ups, hence the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class _Stored:
    """A letter inside the group's transaction; it counts once that transaction commits."""

    letter_id: int
    trust: str
    reason: str


class _Quota:
    """Bytes stored from each sender address (Trash aside), read from the store once a minute
    and counted up by the writer thread between reads. Only the writer thread uses it."""

    REFRESH = 60.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used: dict[str, tuple[int, float]] = {}

    def allows(self, conn: sqlite3.Connection, sender: str, size: int) -> bool:
        if not self.limit:
            return True
        now = time.monotonic()
        used, read_at = self._used.get(sender, (0, 0.0))
        if now - read_at > self.REFRESH:
            if len(self._used) > 10_000:
                self._used = {k: v for k, v in self._used.items() if now - v[1] <= self.REFRESH}
            row = conn.execute(
                "SELECT COALESCE(SUM(length(raw)), 0) FROM letters"
                " WHERE sender = ? AND folder != 'Trash'",
                (sender,),
            ).fetchone()
            used = int(row[0])
            self._used[sender] = (used, now)
        return used + size <= self.limit

    def add(self, sender: str, size: int) -> None:
        if self.limit and sender in self._used:
            used, read_at = self._used[sender]
            self._used[sender] = (used + size, read_at)


class _CheckQueue:
    """unverified = "reject": sender checks before the answer, on daemon threads of their own
    (a check may take seconds; stopping never waits for one), at most `capacity` at a time."""

    def __init__(self, verifier: Verifier, capacity: int, workers: int) -> None:
        import queue

        self.verifier = verifier
        self.capacity = capacity
        self._queue: queue.SimpleQueue[tuple[_Letter, Callable[[Outcome], None]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._inflight = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"misfin-check-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, letter: _Letter, done: Callable[[Outcome], None]) -> bool:
        """Queue a check; False at once when `capacity` checks are already waiting or running."""
        with self._lock:
            if self._inflight >= self.capacity:
                return False
            self._inflight += 1
        self._queue.put((letter, done))
        return True

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            letter, done = item
            try:
                outcome = self.verifier.check(letter.der, letter.box.address)
            except Exception:
                log.exception("checking %s failed", letter.sender)
                outcome = Outcome(LetterTrust.PENDING, "the check failed", 40)
            finally:
                with self._lock:
                    self._inflight -= 1
            try:
                done(outcome)
            except Exception:
                log.exception("a check callback failed")

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


def _parser() -> Any:
    return RequestParser()


def _response(status: int, meta: str) -> bytes:
    return build_response(status, meta)


def _resolve(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)


def _log_session(session: Session) -> None:
    if not log.isEnabledFor(logging.INFO):  # the benchmark's and the app's case: no line
        return
    record = session.record or {}
    log.info(
        "%s peer=%s sender=%s mailbox=%s status=%s",
        utc_now(),
        peer_text(session.peer),
        record.get("sender", "-"),
        record.get("mailbox", "-"),
        record.get("status", "-"),
    )


def _allow_open_files(wanted: int) -> None:
    """Raise the soft open-file limit towards `wanted` (up to the hard limit) so the
    connection cap, not the default of 1024 descriptors, decides when to refuse."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
