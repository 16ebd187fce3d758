"""An event-driven TLS request/response server: one thread, one asyncio loop, pyOpenSSL on
memory BIOs, many thousands of connections.

A thread per connection capped the old receiver at ~1,000 connections and let a crowd of
tricklers (one byte every half second) hold every slot. Here a connection costs a transport, a
small protocol object and, only once its first bytes arrive, an OpenSSL session (buffers
released while idle). Every connection must finish its handshake and then its whole request
within deadlines counted from accept, whatever it sends meanwhile; when all slots are taken,
one of the busiest address's connections makes room for the newcomer, or, when no address
holds more than one, the one with the least progress (no bytes < handshaking < handshaken <
part of a request), longest in that state and past a short grace.

The server knows nothing of Misfin or GMAP: a parser factory turns bytes into a request and a
handler answers it, at once or later through a future (for work done on other threads).
ServingThread runs one on a thread and loop of its own: the receiver's and GMAP's listeners.

Stopping has two steps, so that no request whose work was done leaves without its answer (a
letter committed but never acknowledged is a letter its sender sends again): begin_stop()
stops accepting, ends what is not yet a request (41 where TLS is up) and tells the owner
(`on_stop`); requests being answered keep their connections while the loop runs on, until
their answers have left or the owner's grace runs out, and only then is everything cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from OpenSSL import SSL

    from misfin_tui.core.identity import Identity
    from misfin_tui.core.profile import Profile

log = logging.getLogger("misfin_tui.receiver")

# (status, meta), status 0 closing without an answer; or a whole response already rendered
# (a GMAP answer with its body).
Answer = tuple[int, str] | bytes


STOPPING = (41, "the server is stopping; try again later")
STOP_GRACE = 1.0  # seconds a stopping server gives the requests being answered (< 2 s in all)


class Stage(enum.IntEnum):
    """How far a connection has come towards a complete request (higher = more progress)."""

    CONNECTED = 0  # TCP only, no byte yet
    HANDSHAKING = 1  # TLS bytes arrived, handshake not done
    HANDSHAKEN = 2  # TLS up, no request byte yet
    READING = 3  # part of a request
    ANSWERING = 4  # complete request: being answered, never evicted


class RequestParser(Protocol):
    """What the server needs of a parser: feed bytes, get a request once it is complete."""

    @property
    def received_any(self) -> bool: ...

    def feed(self, data: bytes) -> Any: ...


class BadRequest(Protocol):
    """An exception a parser raises for a malformed request: answered with status, message."""

    status: int
    message: str


@dataclass(frozen=True)
class ServerLimits:
    """Connection limits and deadlines (seconds, counted from accept)."""

    max_connections: int = 10_000
    max_per_peer: int = 16
    idle_grace: float = 1.0  # younger: not evicted, unless its address holds several
    handshake_timeout: float = 5.0  # from accept to a finished handshake
    request_timeout: float = 10.0  # from accept to the complete request
    send_timeout: float = 10.0  # for the answer to leave, after the request


class Handler(Protocol):
    """Answers a complete request: a tuple now, or a future that resolves to one."""

    def __call__(self, session: Session, request: Any) -> Answer | asyncio.Future[Answer]: ...


class Table:
    """Every open connection, grouped by stage in arrival order and by peer address."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.by_stage: list[dict[Session, None]] = [{} for _ in Stage]
        self.by_peer: dict[str, dict[Session, None]] = {}
        # by_count[n]: the addresses with exactly n connections open, to find the busiest at once
        self.by_count: list[dict[str, None]] = [{} for _ in range(limits.max_per_peer + 1)]
        self.count = 0
        self.evicted = 0
        self.refused = 0

    def admit(self, session: Session, now: float) -> str:
        """Take the session in (""), or say why not; may evict a laggard to make room."""
        peer = session.peer_host
        sessions = self.by_peer.get(peer)
        busy = len(sessions) if sessions else 0
        if busy >= self.limits.max_per_peer:
            return f"{busy} connections from that address already open"
        if self.count >= self.limits.max_connections:
            victim = self.laggard(now)
            if victim is None:
                return f"{self.count} connections already open and none is lagging"
            self.evicted += 1
            victim.evict()
            sessions = self.by_peer.get(peer)  # the victim may have been this address's own
        if sessions is None:
            sessions = self.by_peer[peer] = {}
        self._recount(peer, len(sessions), len(sessions) + 1)
        sessions[session] = None
        self.count += 1
        self.by_stage[session.stage][session] = None
        return ""

    def laggard(self, now: float) -> Session | None:
        """Who makes room: first the address holding the most connections, when it holds more
        than one (its least advanced, oldest one), so a crowd from a few dozen addresses cuts
        its own connections and never a sender's single one, however slow its handshake.

        With one connection per address, the least progress goes first, longest in its stage
        and past the grace; when every connection is younger than the grace (a crowd
        reconnecting as fast as it is cut), the oldest one goes: a newcomer then keeps its slot
        until max_connections more have arrived, so churn alone cannot keep a sender out.
        """
        for busy in range(len(self.by_count) - 1, 1, -1):
            for peer in self.by_count[busy]:
                waiting = [s for s in self.by_peer[peer] if s.stage < Stage.ANSWERING]
                if waiting:
                    return min(waiting, key=lambda s: (s.stage, s.accepted_at))
        cutoff = now - self.limits.idle_grace
        heads: list[Session] = []
        for stage in Stage:
            if stage is Stage.ANSWERING:
                break
            for session in self.by_stage[stage]:  # oldest first; only the head is looked at
                if session.accepted_at <= cutoff:
                    return session
                heads.append(session)
                break
        return min(heads, key=lambda s: s.accepted_at) if heads else None

    def move(self, session: Session, stage: Stage) -> None:
        self.by_stage[session.stage].pop(session, None)
        session.stage = stage
        self.by_stage[stage][session] = None

    def remove(self, session: Session) -> None:
        if self.by_stage[session.stage].pop(session, 0) is None:
            self.count -= 1
            peer = session.peer_host
            sessions = self.by_peer[peer]
            del sessions[session]
            self._recount(peer, len(sessions) + 1, len(sessions))
            if not sessions:
                del self.by_peer[peer]

    def _recount(self, peer: str, before: int, after: int) -> None:
        self.by_count[before].pop(peer, None)
        if after:
            self.by_count[after][peer] = None


class TlsServer:
    """Serves one listening socket on the running loop until close()."""

    def __init__(
        self,
        context: SSL.Context,
        limits: ServerLimits,
        parser: Callable[[], RequestParser],
        handler: Handler,
        response: Callable[[int, str], bytes],
        on_done: Callable[[Session], None] | None = None,
        on_accept: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.context = context
        self.on_accept = on_accept  # before a connection's handshake: e.g. a rotated key
        self.on_stop = on_stop  # on the loop, when stopping begins: answer what waits (41)
        self.limits = limits
        self.parser = parser
        self.handler = handler
        self.response = response
        self.on_done = on_done
        self.table = Table(limits)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.live = 0  # connections whose transport is not closed yet (answers still leaving)
        self.stopping = False
        self.drained = threading.Event()  # stopping, and the last connection is closed

    async def serve(self, sock: Any) -> None:
        """Start accepting on an already bound, listening socket."""
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(lambda: Session(self), sock=sock, backlog=4096)

    def begin_stop(self) -> None:
        """On the loop: stop accepting; end every connection that is not yet a request (41
        where TLS is up, so the sender knows to try again); tell the owner. A request being
        answered keeps its connection until the answer has left (then `drained` is set)."""
        if self.stopping:
            return
        self.stopping = True
        if self.server is not None:
            self.server.close()
        if self.on_stop is not None:
            try:
                self.on_stop()
            except Exception:
                log.exception("stopping failed")
        for stage in (Stage.CONNECTED, Stage.HANDSHAKING):
            for session in list(self.table.by_stage[stage]):
                session.abort("closed (stopping)")
        for stage in (Stage.HANDSHAKEN, Stage.READING):
            for session in list(self.table.by_stage[stage]):
                session.refuse(STOPPING)
        if self.live <= 0:
            self.drained.set()

    def gone(self) -> None:
        """A connection's transport closed."""
        self.live -= 1
        if self.stopping and self.live <= 0:
            self.drained.set()

    def close(self) -> None:
        """Stop accepting and end every connection now."""
        if self.server is not None:
            self.server.close()
        for bucket in self.table.by_stage:
            for session in list(bucket):
                session.abort("closed (stopping)")


class Session(asyncio.Protocol):
    """One connection: TLS over memory BIOs, one request, one answer, close_notify."""

    __slots__ = (
        "accepted_at",
        "closed",
        "counted",
        "parser",
        "peer",
        "peer_host",
        "record",
        "server",
        "stage",
        "timer",
        "tls",
        "transport",
    )

    def __init__(self, server: TlsServer) -> None:
        self.server = server
        self.stage = Stage.CONNECTED
        self.accepted_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.tls: SSL.Connection | None = None
        self.parser: RequestParser | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.peer: Any = None
        self.peer_host = ""
        self.closed = False
        self.counted = False  # in server.live
        self.record: dict[str, Any] | None = None  # filled by the handler, for the log line

    # -- asyncio callbacks ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.live += 1
        self.counted = True
        self.peer = self.transport.get_extra_info("peername")
        self.peer_host = str(self.peer[0]) if isinstance(self.peer, tuple) else str(self.peer)
        now = time.monotonic()
        self.accepted_at = now
        refused = "stopping" if self.server.stopping else self.server.table.admit(self, now)
        if refused:
            self.server.table.refused += 1
            self.closed = True
            log.warning("%s refused: %s", peer_text(self.peer), refused)
            self.transport.abort()
            return
        loop = self.server.loop
        assert loop is not None
        self.timer = loop.call_at(now + self.server.limits.handshake_timeout, self._deadline)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        from OpenSSL import SSL

        tls = self.tls
        try:
            if tls is None:
                if self.server.on_accept is not None:
                    self.server.on_accept()
                tls = self.tls = SSL.Connection(self.server.context, None)
                tls.set_accept_state()
                self.server.table.move(self, Stage.HANDSHAKING)
            tls.bio_write(data)
            if self.stage is Stage.HANDSHAKING:
                try:
                    tls.do_handshake()
                except SSL.WantReadError:
                    self._flush()
                    return
                if tls.get_protocol_version_name() != "TLSv1.3":
                    self._flush()  # TLS 1.2: our Finished; 1.3: tickets can go with the answer
                self.server.table.move(self, Stage.HANDSHAKEN)
                self._rearm(self.accepted_at + self.server.limits.request_timeout)
            self._read_request()
        except SSL.Error as exc:
            self._end(f"closed ({tls_error_text(exc)})", notify=False)
        except Exception:
            log.exception("connection from %s failed", peer_text(self.peer))
            self._end("closed (internal error)", notify=False)

    def eof_received(self) -> bool:
        """The peer closed its side before the request was complete."""
        if not self.closed and self.stage < Stage.ANSWERING:
            self._early_end()
        return True  # keep our side open to write the answer; _finish closes

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._log("closed (connection lost)")
        self._forget()
        if self.counted:
            self.counted = False
            self.server.gone()

    # -- the request --------------------------------------------------------------------------

    def _read_request(self) -> None:
        from OpenSSL import SSL

        tls = self.tls
        assert tls is not None
        while self.stage < Stage.ANSWERING and not self.closed:
            try:
                data = tls.recv(16_384)
            except SSL.WantReadError:
                self._flush()  # what reading made OpenSSL say: a refused renegotiation, a KeyUpdate
                return
            except SSL.ZeroReturnError:
                self._early_end()
                return
            if not data:
                self._early_end()
                return
            parser = self.parser
            if parser is None:
                parser = self.parser = self.server.parser()
                self.server.table.move(self, Stage.READING)
            try:
                request = parser.feed(data)
            except Exception as exc:
                status, message = _bad_request(exc)
                if status is None:
                    raise
                self._begin_answer()
                self._answer((status, message))
                return
            if request is not None:
                self._begin_answer()
                self._dispatch(request)
                return

    def refuse(self, answer: Answer) -> None:
        """Answer now, whatever has arrived of the request (the server is stopping)."""
        if self.closed or self.stage >= Stage.ANSWERING:
            return
        self._begin_answer()
        self._answer(answer)

    def _begin_answer(self) -> None:
        self.server.table.move(self, Stage.ANSWERING)
        if self.transport is not None:
            self.transport.pause_reading()
        # The handler may wait on other threads (a commit, a verification): a hard guard only.
        self._rearm(time.monotonic() + 60.0)

    def _dispatch(self, request: Any) -> None:
        try:
            result = self.server.handler(self, request)
        except Exception:
            log.exception("answering %s failed", peer_text(self.peer))
            result = (40, "internal error; try again later")
        if isinstance(result, (tuple, bytes)):
            self._answer(result)
            return
        result.add_done_callback(self._answer_from)

    def _answer_from(self, future: asyncio.Future[Answer]) -> None:
        if future.cancelled():
            self._end("closed (stopping)", notify=False)
            return
        exc = future.exception()
        if exc is not None:
            log.error("answering %s failed: %r", peer_text(self.peer), exc)
            self._answer((40, "internal error; try again later"))
            return
        self._answer(future.result())

    def _early_end(self) -> None:
        """EOF or close_notify before the request was complete."""
        if self.parser is not None and self.parser.received_any:
            if self.stage < Stage.ANSWERING:
                self._begin_answer()
            self._answer((59, "incomplete request"))
        else:
            self._end("-", notify=True)

    def _answer(self, answer: Answer) -> None:
        if self.closed:
            return
        if isinstance(answer, bytes):
            data, status = answer, answer[:2].decode("ascii", "replace")
        else:
            code, meta = answer
            if not code:
                self._end("-", notify=True)
                return
            data, status = self.server.response(code, meta), str(code)
        tls = self.tls
        assert tls is not None
        try:
            tls.sendall(data)
        except Exception as exc:
            self._end(f"closed ({tls_error_text(exc)})", notify=False)
            return
        self._rearm(time.monotonic() + self.server.limits.send_timeout)
        self._end(status, notify=True)

    # -- endings ------------------------------------------------------------------------------

    def _deadline(self) -> None:
        self.timer = None
        if self.closed:  # the answer (or close_notify) did not leave in time
            self._kill()
            return
        if self.stage is Stage.ANSWERING:
            self.abort("closed (timeout)")
        elif self.parser is not None and self.parser.received_any:
            self._begin_answer()
            self._answer((59, "request timeout"))
        else:
            self._end("closed (timeout)", notify=self.stage >= Stage.HANDSHAKEN)

    def evict(self) -> None:
        """Make room for a newcomer while the server is full."""
        self._end("closed (lagging while the server was full)", notify=self.stage >= 2)

    def abort(self, status: str) -> None:
        if not self.closed:
            self.closed = True
            self._log(status)
        if self.transport is not None:
            self.transport.abort()
        self._forget()

    def _end(self, status: str, *, notify: bool) -> None:
        """close_notify (when TLS is up) so a complete answer can be told from a cut one."""
        if self.closed:
            return
        self.closed = True
        if notify and self.tls is not None:
            with contextlib.suppress(Exception):
                self.tls.shutdown()
            self._flush()
        self._log(status)
        self.server.table.remove(self)
        if self.transport is not None:
            self.transport.close()  # after the buffered answer is written; the timer aborts
        if self.timer is None and self.server.loop is not None and self.transport is not None:
            self.timer = self.server.loop.call_later(self.server.limits.send_timeout, self._kill)

    def _kill(self) -> None:
        self.timer = None
        if self.transport is not None:
            self.transport.abort()

    def _forget(self) -> None:
        self.server.table.remove(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.tls = None
        self.parser = None

    def _rearm(self, when: float) -> None:
        loop = self.server.loop
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if loop is not None:
            self.timer = loop.call_at(when, self._deadline)

    def _flush(self) -> None:
        """Move what OpenSSL wrote into its outgoing BIO onto the socket."""
        from OpenSSL import SSL

        tls, transport = self.tls, self.transport
        if tls is None or transport is None:
            return
        while True:
            try:
                chunk = tls.bio_read(65_536)
            except SSL.WantReadError:
                return
            if not chunk:
                return
            transport.write(chunk)

    def _log(self, status: str) -> None:
        if self.server.on_done is not None and status != "-":
            record = self.record if self.record is not None else {}
            record["status"] = status
            self.record = record
            try:
                self.server.on_done(self)
            except Exception:
                log.exception("logging a connection failed")


def listening_socket(where: tuple[str, int], backlog: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket for `where` (IPv6 when the host has a colon)."""
    host, port = where
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ServingThread:
    """A TlsServer on a thread and event loop of its own, so its owner's thread (the app's, the
    CLI's) never waits on a connection. It owns the listening socket from start() on."""

    def __init__(self, server: TlsServer, name: str) -> None:
        self.server = server
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def start(self, sock: socket.socket) -> None:
        """Serve `sock`; returns once it accepts, or raises why it could not."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self._sock = sock
        self._thread = threading.Thread(
            target=self._run, args=(sock, ready, failure), name=self.name, daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if failure:
            self.stop()
            raise failure[0]

    def call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Run fn on the loop from another thread; nothing to do once the loop has closed."""
        loop = self.loop
        if loop is not None:
            call_soon(loop, fn, *args)

    def begin_stop(self) -> None:
        """TlsServer.begin_stop on the loop; returns once it ran (or the loop is gone)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        ran = threading.Event()

        def begin() -> None:
            try:
                self.server.begin_stop()
            finally:
                ran.set()

        call_soon(loop, begin)
        ran.wait(1.0)

    def stop(self, timeout: float = 1.0, *, grace: float = 0.0) -> None:
        """Stop accepting; give the requests being answered up to `grace` seconds for their
        answers to leave (begin_stop, if not begun yet); then end every connection left."""
        if grace > 0:
            self.begin_stop()
            self.server.drained.wait(grace)
        loop, thread = self.loop, self._thread
        if loop is not None and not loop.is_closed():
            call_soon(loop, loop.stop)
        if thread is not None:
            thread.join(timeout=timeout)
        if self._sock is not None:
            self._sock.close()
        self._sock, self._thread, self.loop = None, None, None

    def _run(
        self, sock: socket.socket, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        loop = new_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self.server.serve(sock))
        except BaseException as exc:  # e.g. the socket went away between bind and serve
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            self.server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))  # let aborted transports finish
            loop.close()


def call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Run fn on `loop` from another thread; nothing to do once the loop has closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def new_loop() -> asyncio.AbstractEventLoop:
    """The serving loop: uvloop's where it is installed (everywhere but Windows). Its
    transports are C: the receiver spends ~20% less CPU a letter and takes ~15% more letters a
    second than on asyncio's own loop (an A/B run of bench/receiver_throughput.py's load)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _bad_request(exc: Exception) -> tuple[int | None, str]:
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None)
    if status is None or message is None:
        return None, ""
    return int(status), str(message)


def peer_text(peer: Any) -> str:
    try:
        host, port = peer[0], peer[1]
    except (TypeError, IndexError):
        return str(peer)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tls_error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]


def mailbox_context(profile: Profile, host: str, identities: Sequence[Identity]) -> SSL.Context:
    """The TLS context serving one host's mailboxes (the Misfin receiver and GMAP alike).

    TLS >= 1.2, no tickets, compression or session cache; a client certificate is asked for but
    any is accepted (or none): who the peer is, is decided after the handshake. It presents the
    host CA's certificate when the profile holds one (so a verifier can check a mailbox
    certificate's signature), else one mailbox's own (see presenting_identity).
    """
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: True)
    ca = profile.host_ca(host)
    if ca is not None:
        cert_path, key_path = ca
    else:
        first = presenting_identity(profile, identities)
        cert_path, key_path = first.chain_path, first.key_path
    ctx.use_certificate_chain_file(str(cert_path))
    ctx.use_privatekey_file(str(key_path))
    ctx.check_privatekey()
    return ctx


def presenting_identity(profile: Profile, identities: Sequence[Identity]) -> Identity:
    """Whose certificate a host without a CA presents: the default identity's when it is one of
    them, else the first by address. Stable as mailboxes are added: correspondents pinned the
    key it presents, and a new mailbox sorting first ("admin@") changed it under them, an
    interception warning for everyone."""
    default = profile.config.default_identity
    for identity in identities:
        if default is not None and str(identity.address).lower() == default.strip().lower():
            return identity
    return sorted(identities, key=lambda identity: str(identity.address))[0]
