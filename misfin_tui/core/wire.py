"""Misfin B and C framing: requests, responses, limits and status codes.

Pure and I/O-free so the client, the receiver and the tests share one parser. Every malformed
input raises ProtocolError carrying the status a server should answer (59, "bad request"),
never a stray UnicodeDecodeError or ValueError: the receiver can answer any failure in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from misfin_tui.core.address import Address
from misfin_tui.core.status import NotMisfinRequest, ProtocolError, Status

B_REQUEST_MAX = 2048  # bytes incl. CRLF we send; a server accepts up to 2048 before the CRLF
C_HEADER_MAX = 1024  # bytes incl. CRLF we send
C_HEADER_ACCEPT = 1026  # bytes incl. CRLF a server accepts (other clients count differently)
C_BODY_MAX = 16384
RESPONSE_MAX = 2048

SCHEME = b"misfin://"
_CL_RE = re.compile(rb"[0-9]{1,5}")
_BARE_CR_RE = re.compile(rb"\r(?!\n)")


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not valid UTF-8") from None


def _parse_address(text: bytes) -> Address:

    decoded = _decode(text, "the address")
    if decoded[:7].lower() == "misfin:":  # Address.parse accepts a prefix; the wire has just one
        raise ProtocolError("the address repeats the misfin: scheme")
    address = Address.parse(decoded)  # A15: the port is never part of the request
    return address if address.port is None else Address(address.mailbox, address.host)


# -- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    version: Literal["B", "C"]
    address: Address
    message: bytes

    @property
    def is_blank(self) -> bool:
        """Blank requests only ask for the mailbox fingerprint; whitespace-only counts (A5)."""
        return not self.message.strip()


def _check_message(message: bytes) -> None:
    _decode(message, "the message")
    if _BARE_CR_RE.search(message):
        raise ProtocolError("the message contains a CR that is not followed by LF")


def build_c_request(address: Address, message: bytes) -> bytes:
    """The Misfin(C) request bytes; refuses anything a strict server would answer 59."""
    if len(message) > C_BODY_MAX:
        raise ProtocolError(f"the message is {len(message)} bytes; Misfin(C) allows {C_BODY_MAX}")
    _check_message(message)
    header = f"misfin://{address}\t{len(message)}\r\n".encode()
    if len(header) > C_HEADER_MAX:
        raise ProtocolError(f"the request header is longer than {C_HEADER_MAX} bytes")
    return header + message


def build_b_request(address: Address, message: bytes) -> bytes:
    """The Misfin(B) request bytes; B cannot carry a CR and must fit in 2048 bytes with CRLF."""
    _decode(message, "the message")
    if b"\r" in message:
        raise ProtocolError("a Misfin(B) message cannot contain CR")
    request = f"misfin://{address} ".encode() + message + b"\r\n"
    if len(request) > B_REQUEST_MAX:
        raise ProtocolError(
            f"the request is {len(request)} bytes; Misfin(B) allows {B_REQUEST_MAX}"
        )
    return request


def b_fits(address: Address, message: bytes) -> bool:
    """Whether the message can travel as Misfin(B) (the fallback for B-only servers)."""
    try:
        build_b_request(address, message)
    except ProtocolError:
        return False
    return True


class RequestParser:
    """Incremental request parser for a server; reads may split anywhere, even byte by byte.

    A C header is judged as soon as its CRLF arrives, so a bad or oversized length is refused
    without waiting for (or reading) the body. Bytes after the end of the request are ignored.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._version: Literal["B", "C"] | None = None
        self._address: Address | None = None
        self._length = 0
        self._body_start = 0
        self._b_message = b""
        self._result: Request | None = None
        self._received_any = False

    @property
    def header_complete(self) -> bool:
        return self._address is not None

    @property
    def received_any(self) -> bool:
        return self._received_any

    def feed(self, data: bytes) -> Request | None:
        if self._result is not None:
            return self._result
        if data:
            self._received_any = True
        self._buffer += data
        if self._address is None and not self._parse_header():
            return None
        if self._version == "C":
            end = self._body_start + self._length
            if len(self._buffer) < end:
                return None
            message = bytes(self._buffer[self._body_start : end])
            _check_message(message)
        else:
            message = self._b_message
        assert self._address is not None and self._version is not None
        self._result = Request(self._version, self._address, message)
        self._buffer.clear()
        return self._result

    def eof(self) -> None:
        """The peer closed before the request was complete: that is a bad request too."""
        if self._result is None:
            raise ProtocolError("the request ended early")

    def _parse_header(self) -> bool:
        buffer = self._buffer
        prefix = bytes(buffer[: len(SCHEME)])
        if not SCHEME.startswith(prefix):
            raise NotMisfinRequest("the request does not start with misfin://")
        end = buffer.find(b"\r\n")
        separator = _find_separator(buffer, end)
        limit = C_HEADER_ACCEPT - 2 if separator == b"\t" else B_REQUEST_MAX
        if end < 0:
            earliest = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
            if earliest > limit:
                raise ProtocolError("the request line is too long")
            return False
        if end > limit:
            raise ProtocolError("the request line is too long")
        line = bytes(buffer[:end])
        if separator is None:
            raise ProtocolError("the address is not followed by a space or a tab")
        split = line.index(separator, len(SCHEME))
        address = _parse_address(line[len(SCHEME) : split])
        rest = line[split + 1 :]
        if separator == b"\t":
            if not _CL_RE.fullmatch(rest):
                raise ProtocolError("the content length must be 1 to 5 decimal digits")
            length = int(rest)
            if length > C_BODY_MAX:
                raise ProtocolError(f"the content length {length} exceeds {C_BODY_MAX}")
            self._version, self._length, self._body_start = "C", length, end + 2
        else:
            _decode(rest, "the message")
            if b"\r" in rest:
                raise ProtocolError("the message contains a CR")
            self._version, self._b_message = "B", rest
        self._address = address
        return True


def _find_separator(buffer: bytearray, end: int) -> bytes | None:
    """The first SP or TAB after the scheme (and before the CRLF): B or C."""
    stop = end if end >= 0 else len(buffer)
    space = buffer.find(b" ", len(SCHEME), stop)
    tab = buffer.find(b"\t", len(SCHEME), stop)
    if space < 0 and tab < 0:
        return None
    if tab < 0 or 0 <= space < tab:
        return b" "
    return b"\t"


# -- responses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    meta: str

    @property
    def category(self) -> int:
        return self.status // 10

    @property
    def kind(self) -> Status:
        """What the status means; an unknown code in a known category reads as its x0.

        Raises ProtocolError for a well-formed status in no known category (0x, 7x-9x): the
        line was read, so the caller decides (a letter already written may have arrived)."""
        return Status.for_code(self.status)


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


def build_response(status: int, meta: str) -> bytes:
    """The response line: control characters in META flattened, the whole <= RESPONSE_MAX.

    An empty META is replaced by the status description (A19: always send a short text).
    """
    code = Status.for_code(int(status))  # refuses codes outside the Misfin categories
    text = _CONTROL_RE.sub(" ", meta).strip() or code.description
    encoded = text.encode("utf-8", errors="replace")[: RESPONSE_MAX - 5]
    text = encoded.decode("utf-8", errors="ignore")  # drop a character cut in half
    return f"{int(status):02d} {text}\r\n".encode()


def _parse_line(line: bytes) -> Response:
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) < 2 or not line[:2].isdigit():
        raise ProtocolError("the response does not start with a two-digit status")
    status = int(line[:2])
    rest = line[2:]
    if rest and rest[:1] not in (b" ", b"\t"):  # checked first: "020" is not status 02
        raise ProtocolError("the status is not followed by a space")
    if status // 10 == 1:  # reserved: a Misfin server never sends it (§4)
        raise ProtocolError(f"status {line[:2].decode()} is not a Misfin status")
    return Response(status, _decode(rest, "the response").strip())


def parse_response(data: bytes) -> Response:
    """Parse one response line (CRLF, a bare LF or no terminator); anything after it is ignored."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    if len(line.removesuffix(b"\r")) > RESPONSE_MAX:
        raise ProtocolError("the response is too long")
    return _parse_line(line)


class ResponseParser:
    """Incremental response parser for a client; gives up past RESPONSE_MAX bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._result: Response | None = None

    def feed(self, data: bytes) -> Response | None:
        if self._result is not None:
            return self._result
        self._buffer += data
        head = bytes(self._buffer[:2])
        if head and not head.isdigit():
            raise ProtocolError("the response does not start with a two-digit status")
        end = self._buffer.find(b"\n")
        if end < 0:
            pending = len(self._buffer) - (1 if self._buffer.endswith(b"\r") else 0)
            if pending > RESPONSE_MAX:
                raise ProtocolError("the response is too long")
            return None
        self._result = parse_response(bytes(self._buffer[: end + 1]))
        return self._result


# -- META helpers -------------------------------------------------------------------------------


def parse_redirect(meta: str) -> Address:
    """The address of a 30/31 answer: its first word, with or without a misfin: prefix."""

    words = meta.split()
    if not words:
        raise ProtocolError("the redirect gives no address")
    return Address.parse(words[0])


_INT_RE = re.compile(r"[0-9]+")


def parse_retry_after(meta: str, default: int = 60) -> int:
    """Seconds to wait after a 44: the first integer in META (A21), else `default`."""
    match = _INT_RE.search(meta)
    return int(match.group()) if match else default
