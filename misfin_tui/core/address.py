"""Misfin addresses: `mailbox@host[:port]`, validated and normalised once.

The host is lower-case ASCII (IDNA), because certificates carry it that way and servers compare
it literally. The port is only for connecting: it never appears in a request line (A15).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from misfin_tui.core.status import ProtocolError, Status

DEFAULT_PORT = 1958
GMAP_PORT = 1960  # mail from home (GMAP), unless [gmap] in config.toml names another
_HOSTPORT = re.compile(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})")


def parse_hostport(text: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host in lower case, port), for `--connect`, `[hosts]`
    and `--listen` alike; raises ValueError in plain words. Port 0 ("pick a free one") only
    with `allow_port_zero`, for listening."""
    match = _HOSTPORT.fullmatch(text.strip())
    port = int(match.group(2) or match.group(4)) if match else -1
    if match is None or not (0 if allow_port_zero else 1) <= port <= 65535:
        raise ValueError(f"{text.strip()!r} is not HOST:PORT (for example 127.0.0.1:1958)")
    return (match.group(1) or match.group(3)).lower(), port


_PORT_RE = re.compile(r"[0-9]{1,5}")
_LABEL_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")  # no hyphen at either end
# Labels that inet_aton reads as numbers: "127.1", "2130706433" and "0x7f.1" all connect to
# 127.0.0.1, and would be pinned as hosts apart from it. Only the dotted quad is accepted.
_NUMBER_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]+")
_QUAD_PART_RE = re.compile(r"0|[1-9][0-9]{0,2}")
_FORBIDDEN = frozenset(" \t\r\n,@")
# Bidirectional controls: "bob\u202egro.elpmaxe" would show as another address.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class AddressError(ProtocolError):
    """An address that cannot be used; the message says what is wrong with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Status.BAD_REQUEST)


# Blank to the eye, letters to Unicode: "alice\u3164\u3164…@evil" pushes "@evil" off the row.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")


def _check_mailbox(mailbox: str) -> None:
    if not mailbox:
        raise AddressError("the mailbox part before @ is empty")
    for char in mailbox:
        if char in _FORBIDDEN or char.isspace():
            raise AddressError(f"the mailbox may not contain {char!r}")
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            raise AddressError(f"the mailbox may not contain the control character {char!r}")
        if char < "\x80":
            continue
        if char in _BIDI:
            raise AddressError(f"the mailbox may not contain the direction mark {_u(char)}")
        # Invisible characters (format, tag, private-use, unassigned, fillers) and look-alikes
        # of a separator ("\uff20" reads as @) would let one address pass for another.
        if category in ("Cf", "Co", "Cn") or char in _FILLERS:
            raise AddressError(f"the mailbox may not contain the invisible character {_u(char)}")
        reads = unicodedata.normalize("NFKC", char)
        if any(c in _FORBIDDEN for c in reads):
            raise AddressError(f"the mailbox may not contain {_u(char)}, which reads as {reads!r}")


def _u(char: str) -> str:
    return f"U+{ord(char):04X}"


@functools.lru_cache(maxsize=4096)
def _ascii_host(host: str) -> str:
    """Lower-case ASCII form of a host name; IDNA for non-ASCII labels. The absolute form
    (one trailing dot, "example.org.") names the same host and is read as it."""
    host = host[:-1] if host.endswith(".") and host != "." else host
    if not host:
        raise AddressError("the host part after @ is empty")
    try:
        encoded = host.encode("idna").decode("ascii").lower()
        encoded.encode("ascii").decode("idna")  # a bad xn-- label must fail here, not later
    except Exception:  # the idna codec raises several kinds of error for odd input
        raise AddressError(f"{host!r} is not a valid host name") from None
    labels = encoded.split(".")
    if len(encoded) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise AddressError(f"{host!r} is not a valid host name")
    if all(_NUMBER_LABEL_RE.fullmatch(label) for label in labels) and not _is_dotted_quad(labels):
        raise AddressError(
            f"{host!r} is not a host name: write an IPv4 address as four numbers, e.g. 127.0.0.1"
        )
    return encoded


def normal_host(host: str) -> str:
    """The one spelling of a host name that pins and letters are kept under (lower case, ASCII,
    no trailing dot), or the name lower-cased when it is not a valid host name at all."""
    try:
        return _ascii_host(host)
    except AddressError:
        return host.lower()


def _is_dotted_quad(labels: list[str]) -> bool:
    return len(labels) == 4 and all(
        _QUAD_PART_RE.fullmatch(label) and int(label) <= 255 for label in labels
    )


@dataclass(frozen=True)
class Address:
    mailbox: str
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Address:
        """Accepts `mailbox@host[:port]`, optionally behind misfin:// or misfin: (a URL may
        end in the empty path "/", as gemtext links often do)."""
        lowered = text[:9].lower()
        if lowered.startswith("misfin://"):
            text = text[9:]
            if text.endswith("/"):
                text = text[:-1]
        elif lowered.startswith("misfin:"):
            text = text[7:]
        if text.count("@") != 1:
            raise AddressError("an address needs exactly one @, as in mailbox@host")
        mailbox, _, host = text.partition("@")
        _check_mailbox(mailbox)
        port: int | None = None
        if host.startswith("["):  # no certificate names a host by an IPv6 literal
            raise AddressError("a Misfin address names its host, not an IP address in [ ]")
        if ":" in host:
            host, _, port_text = host.rpartition(":")
            if not _PORT_RE.fullmatch(port_text) or not 0 < int(port_text) < 65536:
                raise AddressError(f"{port_text!r} is not a port number (1-65535)")
            port = int(port_text)
        for char in host:
            if char in _FORBIDDEN or char.isspace() or unicodedata.category(char)[0] == "C":
                raise AddressError(f"the host may not contain {char!r}")
        return cls(mailbox, _ascii_host(host), port)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """Whether `text` parses as an address (for lists that skip what does not)."""
        try:
            cls.parse(text)
        except AddressError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.mailbox}@{self.host}"

    @property
    def display(self) -> str:
        return f"{self}:{self.port}" if self.port is not None else str(self)

    @property
    def connect_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORT

    @property
    def key(self) -> str:
        """What two addresses share when they name the same mailbox (mailboxes ignore case)."""
        return f"{self.mailbox.lower()}@{self.host}"
