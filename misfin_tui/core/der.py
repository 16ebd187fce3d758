"""Just enough DER to read a certificate's validity and public key, without `cryptography`.

Sending checks the server's key on every connection, and importing cryptography's X.509
module costs a `send` process more than the rest of its work (issue 13). The pin is SHA-256
over the SubjectPublicKeyInfo bytes exactly as the certificate carries them (what HPKP and
every pinning tool hash). Anything that is not a well-formed certificate is a ValueError.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

_SEQUENCE, _CONTEXT_0, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18


@dataclass(frozen=True)
class CertKeyFacts:
    spki: bytes  # the SubjectPublicKeyInfo, tag and length included
    not_before: datetime
    not_after: datetime

    @property
    def pin(self) -> str:
        """The host pin: SHA-256 over the SubjectPublicKeyInfo, lower-case hex."""
        return hashlib.sha256(self.spki).hexdigest()


def _element(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at `at`, within `end`."""
    if at + 2 > end:
        raise ValueError("certificate: truncated")
    tag, length = data[at], data[at + 1]
    at += 2
    if tag & 0x1F == 0x1F:
        raise ValueError("certificate: unexpected high tag number")
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or at + count > end:
            raise ValueError("certificate: bad length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > end:
        raise ValueError("certificate: truncated")
    return tag, at, at + length


def _expect(data: bytes, at: int, end: int, tag: int) -> tuple[int, int]:
    found, start, stop = _element(data, at, end)
    if found != tag:
        raise ValueError(f"certificate: expected tag {tag:#x}, found {found:#x}")
    return start, stop


def _time(data: bytes, at: int, end: int) -> tuple[datetime, int]:
    tag, start, stop = _element(data, at, end)
    text = data[start:stop].decode("ascii", "replace")
    if tag == _UTC_TIME and len(text) == 13 and text.endswith("Z"):
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"  # RFC 5280 4.1.2.5.1
    elif tag != _GENERALIZED_TIME or len(text) != 15 or not text.endswith("Z"):
        raise ValueError("certificate: bad validity time")
    if not text[:14].isdigit():
        raise ValueError("certificate: bad validity time")
    month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(4, 14, 2))
    moment = datetime(int(text[:4]), month, day, hour, minute, second, tzinfo=UTC)
    return moment, stop  # not strptime: _strptime imports locale, calendar and more


def cert_key_facts(der: bytes) -> CertKeyFacts:
    """The validity and SubjectPublicKeyInfo of a DER certificate (RFC 5280 4.1)."""
    start, stop = _expect(der, 0, len(der), _SEQUENCE)  # Certificate
    at, tbs_end = _expect(der, start, stop, _SEQUENCE)  # TBSCertificate
    tag, _, next_at = _element(der, at, tbs_end)
    if tag == _CONTEXT_0:  # [0] version
        at = next_at
    for _ in range(3):  # serialNumber, signature, issuer
        at = _element(der, at, tbs_end)[2]
    at, validity_end = _expect(der, at, tbs_end, _SEQUENCE)
    not_before, at = _time(der, at, validity_end)
    not_after, at = _time(der, at, validity_end)
    at = _element(der, validity_end, tbs_end)[2]  # subject; the SubjectPublicKeyInfo follows
    _, spki_end = _expect(der, at, tbs_end, _SEQUENCE)
    return CertKeyFacts(der[at:spki_end], not_before, not_after)
