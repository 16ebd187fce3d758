"""The embedded Misfin receiver: TLS with client certificates asked for but never validated.

pyOpenSSL serves TLS because the standard `ssl` module cannot request a client certificate
without validating it, and Misfin senders are self-signed or signed by their own server. One
accept thread hands each connection to a bounded pool of worker threads; every step has a
deadline, every exception stays inside its connection, and a letter is answered 20 only after
the store committed it (WAL, synchronous=FULL). Sender verification runs afterwards on the
Verifier's own threads, so no sender waits for it (unless `unverified = "reject"`).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from misfin_tui.core.clock import utc_now
from misfin_tui.core.events import Event, LetterStored, LetterVerified
from misfin_tui.core.ratelimit import RateLimiter

if TYPE_CHECKING:
    from OpenSSL import SSL

    from misfin_tui.core.identity import Identity
    from misfin_tui.core.profile import Profile
    from misfin_tui.core.verify import Verifier
    from misfin_tui.core.wire import Request

log = logging.getLogger("misfin_tui.receiver")

EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class Limits:
    """The knobs that keep one sender from hurting the others."""

    # Concurrent connections; more are closed at once. A waiting connection costs one parked
    # thread, so this can be large enough that a crowd of stalled peers leaves room for senders.
    max_connections: int = 1024
    max_per_peer: int = 16  # concurrent connections from one address, so one cannot take all
    idle_grace: float = 1.0  # when full, a connection silent this long gives its slot to a newcomer
    handshake_timeout: float = 10.0
    request_timeout: float = 30.0  # from the end of the handshake to the complete request
    send_timeout: float = 10.0
    blank_per_window: int = 30  # blank requests per peer address per window ...
    blank_window: float = 60.0  # ... seconds; more get 44


@dataclass(frozen=True)
class Mailbox:
    """One local mailbox we answer for."""

    address: str  # "bob@example.org" as the identity spells it
    identity: Identity


class _Timeout(Exception):
    """A deadline passed while waiting on the network."""


class _Stopped(Exception):
    """The receiver is shutting down."""


class Receiver:
    """Serves the profile's mailboxes on one listening socket, on threads of its own."""

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
        self.limits = limits or Limits()
        self._verifier = verifier
        self._owns_verifier = verifier is None
        self._mailboxes: dict[str, dict[str, Mailbox]] = {}  # host -> mailbox.lower() -> Mailbox
        self._contexts: dict[str, SSL.Context] = {}
        self._default_context: SSL.Context | None = None
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._per_peer: dict[str, int] = {}
        self._open: dict[int, _Activity] = {}  # fd -> activity of every connection being served
        self._per_peer_lock = threading.Lock()
        self._stopping = threading.Event()
        self._blank_limiter = RateLimiter(self.limits.blank_per_window, self.limits.blank_window)
        self._store = None
        self._unverified = "quarantine"

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Load the mailboxes and certificates, bind, start serving; returns the bound address."""
        if self._thread is not None:
            raise RuntimeError("the receiver is already running")
        from misfin_tui.core.store import MailStore
        from misfin_tui.core.verify import Verifier

        self._load_mailboxes()
        self._store = MailStore(self.profile.database())
        self._unverified = self.profile.config.unverified
        if self._verifier is None:
            self._verifier = Verifier.standalone(self.profile, emit=self.emit)
        if self._owns_verifier:
            self._verifier.start()
        host, port = self.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            if self._owns_verifier:
                self._verifier.stop()
            raise
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        _allow_open_files(self.limits.max_connections + 64)
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(
            max_workers=self.limits.max_connections, thread_name_prefix="misfin-receive"
        )
        self._thread = threading.Thread(target=self._accept_loop, name="misfin-accept", daemon=True)
        self._thread.start()
        bound = sock.getsockname()
        log.debug("receiving on %s:%s for %s", bound[0], bound[1], ", ".join(self.addresses))
        return bound[0], bound[1]

    def stop(self) -> None:
        """Stop accepting, end open connections at their next wait, stop the verifier."""
        if self._thread is None:
            return
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # queued ones see _stopping and close
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sock = self._wake_r = self._wake_w = None
        self._thread = None
        self._pool = None
        if self._owns_verifier and self._verifier is not None:
            self._verifier.stop()

    @property
    def addresses(self) -> list[str]:
        """Every mailbox address served."""
        return [m.address for boxes in self._mailboxes.values() for m in boxes.values()]

    @property
    def verifier(self) -> Verifier | None:
        return self._verifier

    # -- set-up -----------------------------------------------------------------------------

    def _load_mailboxes(self) -> None:
        from misfin_tui.core.identity import IdentityError

        identities = self.profile.identities()
        if not identities:
            raise IdentityError(
                "no identity to receive for: make one with `misfin-tui identity new`"
            )
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

    def _make_context(self, host: str, boxes: dict[str, Mailbox]) -> SSL.Context:
        """The host CA's certificate when the profile holds one, else a mailbox's own."""
        from OpenSSL import SSL

        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        # Ask for a certificate, accept whatever comes (or nothing): trust is decided later.
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: True)
        ca = self.profile.host_ca(host)
        if ca is not None:
            cert_path, key_path = ca
        else:
            first = sorted(boxes.values(), key=lambda m: m.address)[0].identity
            cert_path, key_path = first.chain_path, first.key_path  # leaf (+ its CA)
        ctx.use_certificate_chain_file(str(cert_path))
        ctx.use_privatekey_file(str(key_path))
        ctx.check_privatekey()
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

    # -- accepting --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._sock is not None and self._wake_r is not None and self._pool is not None
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.fileobj is self._wake_r:
                        return
                    self._accept_one()
        except Exception:
            log.exception("the accept loop failed")
        finally:
            sel.close()

    def _accept_one(self) -> None:
        assert self._sock is not None and self._pool is not None
        try:
            conn, peer = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. too many open files: back off a little
            log.warning("accept failed: %s", exc)
            time.sleep(0.05)
            return
        host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        with self._per_peer_lock:
            busy = self._per_peer.get(host, 0)
            if busy >= self.limits.max_per_peer:
                refused = f"{busy} connections from that address already open"
            elif self._slots.acquire(blocking=False):
                refused = ""
                self._per_peer[host] = busy + 1
            elif self._evict_idlest():
                refused = "evicting"
            else:
                refused = f"{self.limits.max_connections} connections already open and busy"
        if refused == "evicting":
            # The victim's thread releases its slot as soon as it sees the end of its stream.
            if self._slots.acquire(timeout=2.0):
                refused = ""
                with self._per_peer_lock:
                    self._per_peer[host] = self._per_peer.get(host, 0) + 1
            else:
                refused = "no slot came free"
        if refused:
            log.warning("%s refused: %s", _peer_text(peer), refused)
            conn.close()
            return
        try:
            self._pool.submit(self._serve, conn, peer)
        except RuntimeError:  # pool shut down
            self._release(host)
            conn.close()

    def _evict_idlest(self) -> bool:
        """All slots taken: end the connection silent longest (if past idle_grace), so idle or
        stalled peers cannot lock real senders out; its slot comes free when its thread sees the
        end of its stream. Called holding _per_peer_lock (never wait for the slot here)."""
        cutoff = time.monotonic() - self.limits.idle_grace
        idle = [a for a in self._open.values() if not a.evicted and a.last < cutoff]
        if not idle:
            return False
        victim = min(idle, key=lambda a: a.last)
        victim.evicted = True
        with contextlib.suppress(OSError):
            victim.sock.shutdown(socket.SHUT_RDWR)  # its thread sees end-of-stream and leaves
        return True

    def _release(self, host: str) -> None:
        with self._per_peer_lock:
            left = self._per_peer.get(host, 1) - 1
            if left > 0:
                self._per_peer[host] = left
            else:
                self._per_peer.pop(host, None)
        self._slots.release()

    # -- one connection ---------------------------------------------------------------------

    def _serve(self, sock: socket.socket, peer: tuple) -> None:
        """Everything about one connection; nothing raised here escapes."""
        from OpenSSL import SSL

        record: dict[str, Any] = {
            "peer": _peer_text(peer),
            "sender": "-",
            "mailbox": "-",
            "status": "-",
        }
        conn = None
        activity = _Activity(sock)
        with self._per_peer_lock:
            self._open[sock.fileno()] = activity
        try:
            sock.setblocking(False)
            conn = SSL.Connection(self._default_context, sock)
            conn.set_accept_state()
            io = _TlsIo(conn, sock, self._stopping, activity)
            io.call(conn.do_handshake, deadline=time.monotonic() + self.limits.handshake_timeout)
            status, meta = self._transact(conn, io, record)
            if status:
                io.send(
                    _response(status, meta), deadline=time.monotonic() + self.limits.send_timeout
                )
                record["status"] = str(status)
            io.close_notify()
        except _Stopped:
            record["status"] = "closed (stopping)"
        except _Timeout:
            record["status"] = "closed (timeout)"
        except (SSL.Error, OSError) as exc:
            if activity.evicted:
                record["status"] = "closed (idle while the server was full)"
            else:
                record["status"] = f"closed ({_tls_error_text(exc)})"
        except Exception:
            log.exception("connection from %s failed", record["peer"])
            record["status"] = "closed (internal error)"
        finally:
            with self._per_peer_lock:
                self._open.pop(sock.fileno(), None)
            try:
                sock.close()
            finally:
                self._release(str(peer[0]) if isinstance(peer, tuple) else str(peer))
            if record["status"] != "-":
                log.info(
                    "%s peer=%s sender=%s mailbox=%s status=%s",
                    utc_now(),
                    record["peer"],
                    record["sender"],
                    record["mailbox"],
                    record["status"],
                )

    def _transact(
        self, conn: SSL.Connection, io: _TlsIo, record: dict[str, Any]
    ) -> tuple[int, str]:
        """Read one request and decide the answer; (0, "") means close without answering."""
        from misfin_tui.core.status import ProtocolError
        from misfin_tui.core.wire import RequestParser

        parser = RequestParser()
        deadline = time.monotonic() + self.limits.request_timeout
        request = None
        try:
            while request is None:
                try:
                    data = io.recv(deadline)
                except _Timeout:
                    if parser.received_any:
                        return 59, "request timeout"
                    return 0, ""
                if not data:  # the sender closed before the request was complete
                    return (59, "incomplete request") if parser.received_any else (0, "")
                request = parser.feed(data)
        except ProtocolError as exc:
            return int(exc.status), exc.message
        return self._answer(conn, request, record)

    def _answer(
        self, conn: SSL.Connection, request: Request, record: dict[str, Any]
    ) -> tuple[int, str]:
        """Route a parsed request: host, mailbox, blank, certificate, store."""
        host = request.address.host.lower().rstrip(".")
        boxes = self._mailboxes.get(host)
        if boxes is None:
            return 53, f"this server does not take mail for {host}"
        box = boxes.get(request.address.mailbox.lower())
        if box is None:
            return 51, "no such mailbox here"
        record["mailbox"] = box.address
        if request.is_blank:
            wait = self._blank_limiter.wait_needed(record["peer"].rsplit(":", 1)[0])
            if wait:
                return 44, f"{wait} seconds: too many blank requests, slow down"
            return 20, box.identity.fingerprint
        cert = conn.get_peer_certificate(as_cryptography=True)
        if cert is None:
            return 60, "a letter needs a client certificate"
        from cryptography.hazmat.primitives.serialization import Encoding

        from misfin_tui.core.identity import IdentityError, cert_info, is_expired

        der = cert.public_bytes(Encoding.DER)
        try:
            info = cert_info(der, check_self_signature=False)
        except IdentityError as exc:
            return 62, f"not a Misfin identity: {exc}"
        except Exception:
            return 62, "the certificate cannot be read"
        if is_expired(cert):
            return 62, "your certificate has expired"
        if info.not_before > datetime.now(UTC) + timedelta(minutes=5):  # some clock skew is normal
            return 62, "your certificate is not valid yet"
        from misfin_tui.core.address import Address
        from misfin_tui.core.status import ProtocolError

        try:
            sender_address = str(Address.parse(f"{info.mailbox}@{info.host}"))
        except ProtocolError as exc:
            return 62, f"your certificate names an unusable address: {exc.message}"
        record["sender"] = sender_address
        trust, reason = "pending", "waiting for verification"
        if self._unverified == "reject":
            assert self._verifier is not None
            outcome = self._verifier.check(der, box.address)
            if outcome.trust == "pending":
                return 40, "cannot verify your identity right now; try again later"
            if outcome.trust == "quarantined":
                return outcome.status, outcome.reason
            trust, reason = outcome.trust, outcome.reason
        else:
            assert self._verifier is not None
            hit = self._verifier.cached(f"{info.mailbox}@{info.host}".lower(), info.fingerprint)
            if hit is not None:  # a known sender: stored verified, nothing queued
                trust, reason = hit.trust, hit.reason
        try:
            letter_id = self._store_letter(request, box, der, info, trust, reason)
        except Exception:  # disk full, database locked too long, ...: the sender must retry
            log.exception("could not store a letter from %s", sender_address)
            return 40, "cannot store the letter right now; try again later"
        record["letter"] = letter_id
        self._emit(LetterStored(letter_id, sender_address))
        if trust == "pending":
            assert self._verifier is not None
            self._verifier.submit(letter_id)
        elif trust in ("verified", "rotated"):
            self._emit(LetterVerified(letter_id, sender_address, trust, reason))
        return 20, box.identity.fingerprint

    def _store_letter(
        self, request: Request, box: Mailbox, der: bytes, info: Any, trust: str, reason: str
    ) -> int:
        """Stamp the authenticated sender and the time, commit durably, return the letter id."""
        from misfin_tui.core.letter import Sender, parse_stored, stamp_received

        when = utc_now()
        raw = stamp_received(request, Sender(f"{info.mailbox}@{info.host}", info.blurb), when)
        parsed = parse_stored(raw, request.version)
        recipients = tuple(parsed.recipients) or (box.address,)
        assert self._store is not None
        return self._store.add(
            folder="Inbox",
            raw=raw,
            version=request.version,
            sender=f"{info.mailbox}@{info.host}",
            sender_blurb=info.blurb,
            recipients=recipients,
            subject=parsed.subject,
            body=parsed.body,
            received_at=when,
            mailbox=box.address,
            unread=True,
            trust=trust,
            trust_reason=reason,
            sender_cert=der,
            fingerprint=info.fingerprint,
            identity=box.address,
        )

    def _emit(self, event: Event) -> None:
        if self.emit is None:
            return
        try:
            self.emit(event)
        except Exception:  # a listener's bug must not cost a letter
            log.exception("an event listener failed on %s", type(event).__name__)


class _Activity:
    """When a connection last made progress (bytes arrived), for evicting idle ones."""

    __slots__ = ("evicted", "last", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last = time.monotonic()
        self.evicted = False


class _TlsIo:
    """Non-blocking pyOpenSSL calls with deadlines, interrupted when the receiver stops."""

    def __init__(
        self,
        conn: SSL.Connection,
        sock: socket.socket,
        stopping: threading.Event,
        activity: _Activity | None = None,
    ) -> None:
        self.conn = conn
        self.sock = sock
        self.stopping = stopping
        self.activity = activity or _Activity(sock)
        self.sel = selectors.DefaultSelector()

    def _wait(self, events: int, deadline: float) -> None:
        if self.stopping.is_set():
            raise _Stopped
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        self.sel.register(self.sock, events)
        try:
            if self.sel.select(timeout=min(remaining, 0.25)) and events & selectors.EVENT_READ:
                self.activity.last = time.monotonic()
        finally:
            self.sel.unregister(self.sock)

    def call(self, fn: Callable[..., Any], *args: Any, deadline: float) -> Any:
        from OpenSSL import SSL

        while True:
            try:
                return fn(*args)
            except SSL.WantReadError:
                self._wait(selectors.EVENT_READ, deadline)
            except SSL.WantWriteError:
                self._wait(selectors.EVENT_WRITE, deadline)

    def recv(self, deadline: float) -> bytes:
        """Some bytes, or b"" at the end of the stream (clean or not)."""
        from OpenSSL import SSL

        try:
            return self.call(self.conn.recv, 4096, deadline=deadline)
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError as exc:
            if exc.args and exc.args[0] in (-1, 0):  # unexpected EOF
                return b""
            raise

    def send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            sent = self.call(self.conn.send, bytes(view), deadline=deadline)
            view = view[sent:]

    def close_notify(self) -> None:
        """Send close_notify so the sender can tell a complete answer from a cut one."""
        from OpenSSL import SSL

        try:
            self.call(self.conn.shutdown, deadline=time.monotonic() + 2.0)
        except (SSL.Error, OSError, _Timeout, _Stopped):
            pass
        finally:
            self.sel.close()


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


def _response(status: int, meta: str) -> bytes:
    from misfin_tui.core.wire import build_response

    return build_response(status, meta)


def _peer_text(peer: Any) -> str:
    try:
        host, port = peer[0], peer[1]
    except (TypeError, IndexError):
        return str(peer)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tls_error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]
