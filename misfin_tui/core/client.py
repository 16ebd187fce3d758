"""Sending side of Misfin: probe a server's key, then deliver only to that key.

A first-contact decision can only stop a letter between the TLS handshake and the request, so
sending is split in two connections: `probe()` reads the server certificate and closes without
writing a byte; `deliver()` connects again and writes the request only if the server presents the
key the person (or the pin) approved. Stdlib `ssl` with CERT_NONE: no CA validation, trust comes
from the TOFU store. Every step (connect, handshake, write, read) has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from misfin_tui.core.address import DEFAULT_PORT, Address, parse_hostport
from misfin_tui.core.clock import iso_utc
from misfin_tui.core.der import cert_key_facts
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.letter import c_to_b, with_sender
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.trust.model import PresentedCert
from misfin_tui.core.wire import Response, ResponseParser, b_fits, build_b_request, build_c_request

if TYPE_CHECKING:
    from OpenSSL import SSL

    from misfin_tui.core.identity import Identity

READ_CHUNK = 4096
CLOSE_TIMEOUT = 2.0
FALLBACK_STATUSES = (59, 40)  # what C-unaware servers answer a C request (§3.2, A1)
NAMES_SENDER_STATUS = 61  # unauthorized sender: titlani's answer when line 1 names nobody


class DeliveryError(Exception):
    """The network, TLS or the server's answer failed us: the outcome is unknown, try later."""


class KeyMismatch(DeliveryError):
    """deliver() met a key other than the approved one; not one byte of the letter was sent."""

    def __init__(self, message: str, presented: PresentedCert) -> None:
        super().__init__(message)
        self.presented = presented


@dataclass(frozen=True)
class DeliveryResult:
    response: Response
    version: Literal["B", "C"]
    fell_back: bool  # C was refused with 59/40 and the letter went again as B
    presented: PresentedCert
    b_only: bool = False  # after a fallback, a blank C request was refused too: no C at all

    @property
    def speaks_c(self) -> bool:
        """A C request got an answer other than 59/40: this server reads Misfin C."""
        return self.version == "C" and self.response.status not in FALLBACK_STATUSES


def resolve(
    address: Address, hosts: Mapping[str, tuple[str, int]], connect: str | None
) -> tuple[str, int]:
    """Where to connect: --connect for this send, else config [hosts], else the address itself.

    [hosts] works like curl's --connect-to: the letter still names the hostname (request line,
    SNI, trust pin); only the TCP destination changes.
    """
    if connect:
        return parse_hostport(connect)
    mapped = hosts.get(address.host)
    if mapped is not None:
        return mapped[0], int(mapped[1])
    return address.host, address.port or DEFAULT_PORT


_CONNECT_WORDS = {
    errno.ECONNREFUSED: "the server refused the connection (nothing is listening there)",
    errno.ECONNRESET: "the server closed the connection",
    errno.ETIMEDOUT: "the connection timed out",
    errno.EHOSTUNREACH: "there is no route to that host",
    errno.ENETUNREACH: "the network is unreachable (are you offline?)",
    errno.EADDRNOTAVAIL: "that address is not available from here",
}


def connect_words(exc: OSError) -> str:
    """Why a connection failed, in plain words (never Python's own wording)."""
    if isinstance(exc, socket.gaierror):
        return "the server's name could not be found (check the address, or the network)"
    errors = {exc.errno}
    if not exc.errno and " " in str(exc):  # asyncio's "Multiple exceptions: [Errno 111] ..."
        errors |= {code for code in _CONNECT_WORDS if f"[Errno {code}]" in str(exc)}
    for code in errors:
        if code in _CONNECT_WORDS:
            return _CONNECT_WORDS[code]
    return exc.strerror.lower() if exc.strerror else "the connection failed"


def hostport(address: Address) -> str:
    """The trust store's key for the recipient's server: hostname and Misfin port."""
    return f"{address.host}:{address.connect_port}"


def presented_cert(der: bytes) -> PresentedCert:
    """Describe the server certificate the way the trust store compares it (SPKI pin)."""
    try:
        facts = cert_key_facts(der)
    except ValueError as exc:
        raise DeliveryError(f"the server sent a certificate that cannot be read: {exc}") from None
    return PresentedCert(
        der=der,
        spki=facts.pin,
        fingerprint=fingerprint(der),
        not_after=iso_utc(facts.not_after),
        not_before=iso_utc(facts.not_before),
    )


# One context per identity files: loading the key and chain took ~1.7 ms of every connection.
_contexts: dict[tuple[str, str, int, int], ssl.SSLContext] = {}


def client_context(identity: Identity) -> ssl.SSLContext:
    """TLS >= 1.2, no CA validation (TOFU decides), our certificate (and host CA) presented.

    Cached per (chain, key) files and their modification times, so a renewed identity is
    picked up; an SSLContext is safe to share between connections and threads.
    """
    try:
        key = (
            str(identity.chain_path),
            str(identity.key_path),
            identity.chain_path.stat().st_mtime_ns,
            identity.key_path.stat().st_mtime_ns,
        )
    except OSError as exc:
        raise DeliveryError(
            f"cannot use the identity {identity.address} ({identity.cert_path}): {exc}"
        ) from None
    context = _contexts.get(key)
    if context is None:
        if len(_contexts) > 64:
            _contexts.clear()
        context = _contexts[key] = _new_context(identity)
    return context


def _new_context(identity: Identity) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(identity.chain_path, identity.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(
            f"cannot use the identity {identity.address} ({identity.cert_path}): {exc}"
        ) from None
    return context


def _sni(host: str) -> str | None:
    """SNI carries a hostname, never an IP literal (RFC 6066)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return None


class _Connection:
    """One TLS connection with a deadline on every step; closes with close_notify."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, address: Address, identity: Identity, target: tuple[str, int], timeout: float
    ) -> tuple[_Connection, PresentedCert]:
        host, port = target
        where = f"{address.host} ({host}:{port})" if host != address.host else f"{host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=client_context(identity),
                    server_hostname=_sni(address.host),
                    ssl_handshake_timeout=timeout,
                ),
                timeout,
            )
        except TimeoutError:
            raise DeliveryError(f"{where} did not answer within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"the secure connection to {where} failed ({exc.reason or 'TLS error'})"
            ) from None
        except OSError as exc:
            raise DeliveryError(f"cannot connect to {where}: {connect_words(exc)}") from None
        connection = cls(reader, writer)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            await connection.close()
            raise DeliveryError(f"{where} presented no certificate")
        try:
            presented = presented_cert(der)
        except DeliveryError:
            await connection.close()
            raise
        return connection, presented

    async def exchange(self, request: bytes, timeout: float) -> Response:
        """Write the whole request, read one response line (<= 2048 bytes)."""
        try:
            self.writer.write(request)
            await asyncio.wait_for(self.writer.drain(), timeout)
        except TimeoutError:
            raise DeliveryError(f"sending the letter took longer than {timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"the connection broke while sending: {exc}") from None
        parser = ResponseParser()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DeliveryError(
                    f"the server did not answer within {timeout:g} s; "
                    "the letter may or may not have arrived"
                )
            try:
                data = await asyncio.wait_for(self.reader.read(READ_CHUNK), remaining)
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError) as exc:
                raise DeliveryError(
                    f"the connection broke before the server answered ({exc}); "
                    "the letter may or may not have arrived"
                ) from None
            if not data:
                raise DeliveryError(
                    "the server closed the connection without a complete answer; "
                    "the letter may or may not have arrived"
                )
            try:
                response = parser.feed(data)
            except ProtocolError as exc:
                raise DeliveryError(
                    f"the server's answer was not understood ({exc.message}); "
                    "the letter may or may not have arrived"
                ) from None
            if response is not None:
                return response

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_TIMEOUT)


async def probe(
    address: Address,
    identity: Identity,
    *,
    hosts: Mapping[str, tuple[str, int]] | None = None,
    connect: str | None = None,
    timeout: float = 10.0,
    anonymous: bool = False,
) -> PresentedCert:
    """Handshake, read the server certificate, close: nothing of the letter is sent.

    anonymous: present no client certificate (first contact on a network not marked trusted,
    so whoever answers learns nothing of who we are before the person decides). The server's
    certificate is still returned when the server then refuses an anonymous client.
    """
    target = resolve(address, hosts or {}, connect)
    if anonymous:
        return await anonymous_probe(address, target, timeout)
    connection, presented = await _Connection.open(address, identity, target, timeout)
    await connection.close()
    return presented


async def anonymous_probe(
    address: Address, target: tuple[str, int], timeout: float
) -> PresentedCert:
    """A handshake without a client certificate that keeps the server's certificate.

    The stdlib ssl module cannot do this: a server that requires a client certificate aborts a
    TLS 1.2 handshake, and getpeercert() is unavailable after a failed handshake. pyOpenSSL's
    verify callback sees the server certificate while the handshake runs, before the client
    would send its own (here: an empty Certificate message), so it is kept whether the server
    then accepts the anonymous client (TLS 1.3 often lets the client finish first) or refuses
    it. A server that sends a certificate it cannot prove gains nothing: deliver() completes a
    full handshake with the approved key before writing a byte. TLS runs over memory BIOs on
    asyncio streams, so every step shares one deadline and no thread is needed.
    """
    from OpenSSL import SSL, crypto

    host, port = target
    where = f"{address.host} ({host}:{port})" if host != address.host else f"{host}:{port}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    leaf: list[bytes] = []

    def keep_leaf(
        _conn: SSL.Connection, cert: crypto.X509, _err: int, depth: int, _ok: int
    ) -> bool:
        if depth == 0 and not leaf:
            leaf.append(crypto.dump_certificate(crypto.FILETYPE_ASN1, cert))
        return True  # no CA validation: the TOFU store decides

    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_verify(SSL.VERIFY_PEER, keep_leaf)
    tls = SSL.Connection(context, None)
    sni = _sni(address.host)
    if sni is not None:
        tls.set_tlsext_host_name(sni.encode("idna"))
    tls.set_connect_state()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        raise DeliveryError(f"{where} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise DeliveryError(f"cannot connect to {where}: {connect_words(exc)}") from None
    failure = ""
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                failure = f"the secure connection to {where} failed: {exc}"
                break
            await _flush(tls, writer, deadline - loop.time())
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(READ_CHUNK), remaining)
            if not data:
                failure = f"{where} closed the connection during the handshake"
                break
            tls.bio_write(data)
        if not failure:
            with contextlib.suppress(SSL.Error):
                tls.shutdown()  # close_notify: the probe wrote nothing else
            with contextlib.suppress(OSError, TimeoutError):
                await _flush(tls, writer, min(CLOSE_TIMEOUT, deadline - loop.time()))
    except TimeoutError:
        if not leaf:
            raise DeliveryError(f"{where} did not answer within {timeout:g} s") from None
    except OSError as exc:
        failure = f"the connection to {where} broke during the handshake: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
    if not leaf:
        raise DeliveryError(failure or f"{where} presented no certificate")
    return presented_cert(leaf[0])


async def _flush(tls: SSL.Connection, writer: asyncio.StreamWriter, timeout: float) -> None:
    """Send whatever the TLS engine has queued for the server."""
    from OpenSSL import SSL

    while True:
        try:
            chunk = tls.bio_read(65536)
        except SSL.WantReadError:
            break
        if not chunk:
            break
        writer.write(chunk)
    await asyncio.wait_for(writer.drain(), max(timeout, 0.001))


async def _send_once(
    address: Address,
    identity: Identity,
    request: bytes,
    approved_spki: str,
    target: tuple[str, int],
    timeout: float,
) -> tuple[Response, PresentedCert]:
    connection, presented = await _Connection.open(address, identity, target, timeout)
    try:
        if presented.spki != approved_spki:
            raise KeyMismatch(
                f"{address.host} presented a different key than the one approved; nothing was sent",
                presented,
            )
        response = await connection.exchange(request, timeout)
    finally:
        await connection.close()
    return response, presented


async def deliver(
    address: Address,
    identity: Identity,
    message: bytes,
    *,
    approved_spki: str,
    prefer_b: bool = False,
    hosts: Mapping[str, tuple[str, int]] | None = None,
    connect: str | None = None,
    timeout: float = 20.0,
) -> DeliveryResult:
    """Send a C gemmail (`message`, metadata lines included) to the approved key only.

    C first; on 59 or 40 one resend as B when the body fits (C metadata dropped, line feeds
    kept), and `fell_back` says so. A C server may refuse one letter (titlani: metadata over
    its limit), so when B took it, a blank C request asks whether the server speaks C at all:
    `b_only` only when that is refused too, for the caller to remember. `prefer_b` (a host
    known to be B-only) sends B directly when it fits. A 61 to a new letter gets one resend
    naming the sender on line 1 (letter.with_sender). Raises ProtocolError (before connecting)
    when the letter fits neither form, KeyMismatch when the key is not the approved one, and
    DeliveryError when the outcome is unknown.
    """

    target = resolve(address, hosts or {}, connect)
    b_message = c_to_b(message)
    fits_b = b_fits(address, b_message)
    if prefer_b and fits_b:
        request = build_b_request(address, b_message)
        response, presented = await _send_once(
            address, identity, request, approved_spki, target, timeout
        )
        return DeliveryResult(response, "B", False, presented)
    request = build_c_request(address, message)
    response, presented = await _send_once(
        address, identity, request, approved_spki, target, timeout
    )
    if response.status in FALLBACK_STATUSES and fits_b:
        request = build_b_request(address, b_message)
        response, presented = await _send_once(
            address, identity, request, approved_spki, target, timeout
        )
        b_only = False
        if response.status not in FALLBACK_STATUSES:
            b_only = await _refuses_c(address, identity, approved_spki, target, timeout)
        return DeliveryResult(response, "B", True, presented, b_only)
    if (
        response.status == NAMES_SENDER_STATUS
        and (signed := with_sender(message, identity.address)) is not None
    ):
        # titlani's "required" verification checks the sender a client names on line 1, which
        # new letters leave empty (the receiving server adds it): name ourselves, once.
        try:
            request = build_c_request(address, signed)
        except ProtocolError:
            return DeliveryResult(response, "C", False, presented)
        response, presented = await _send_once(
            address, identity, request, approved_spki, target, timeout
        )
    return DeliveryResult(response, "C", False, presented)


async def _refuses_c(
    address: Address,
    identity: Identity,
    approved_spki: str,
    target: tuple[str, int],
    timeout: float,
) -> bool:
    """Does the server refuse even a blank C request (59/40)? Unknown (no answer) is no."""
    try:
        blank, _ = await _send_once(
            address, identity, build_c_request(address, b""), approved_spki, target, timeout
        )
    except DeliveryError:
        return False
    return blank.status in FALLBACK_STATUSES


async def blank_request(
    address: Address,
    identity: Identity,
    *,
    hosts: Mapping[str, tuple[str, int]] | None = None,
    connect: str | None = None,
    timeout: float = 10.0,
) -> tuple[PresentedCert, Response]:
    """A C blank request (length 0): the mailbox fingerprint without delivering anything."""
    target = resolve(address, hosts or {}, connect)
    connection, presented = await _Connection.open(address, identity, target, timeout)
    try:
        response = await connection.exchange(build_c_request(address, b""), timeout)
    finally:
        await connection.close()
    return presented, response
