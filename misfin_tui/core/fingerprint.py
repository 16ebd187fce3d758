"""Fingerprints: the one place that computes, reads, compares and groups SHA-256 keys.

A Misfin fingerprint is SHA-256 over a certificate's DER; a host pin is SHA-256 over its
SubjectPublicKeyInfo (it survives a renewal with the same key). People never compare them by
eye: they paste, and `matches()` compares; `grouped()` is only for reading one aloud.
"""

from __future__ import annotations

import hashlib
import re

ALGORITHM = "SHA-256"
MIN_PREFIX = 32  # hex characters a paste must have: 128 bits, beyond a second-preimage search
_SEPARATORS = re.compile(r"[\s:]")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]+")


class NotAFingerprint(ValueError):
    """Text that is not a SHA-256 fingerprint in any common spelling."""


def fingerprint(der: bytes) -> str:
    """The Misfin fingerprint: SHA-256 over the certificate's DER, lower-case hex."""
    return hashlib.sha256(der).hexdigest()


def _clean(text: str) -> str:
    """Lower case, without spaces, colons and a "sha256:" / "sha-256:" prefix."""
    value = text.strip().lower()
    for prefix in ("sha256:", "sha-256:"):
        value = value.removeprefix(prefix)
    value = _SEPARATORS.sub("", value)
    return value.removeprefix("sha256").removeprefix("sha-256")  # prefix whose colon went


def parse(text: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex characters, or NotAFingerprint."""
    value = _clean(text)
    if not _HEX64.fullmatch(value):
        raise NotAFingerprint(f"not a SHA-256 fingerprint: {text[:80]!r}")
    return value


def pasted(text: str) -> str:
    """A pasted fingerprint as lower-case hex (any case, spaces, colons, "sha256:" prefix), or
    NotAFingerprint saying what one looks like. Every path that compares a paste checks it here.

    A prefix of at least 32 hex characters is accepted (half, what a person can read out;
    16 would let an interceptor grind a certificate whose hash starts with the same 64 bits).
    """
    value = _clean(text)
    shown = " ".join(text.split())[:80]
    if not value:
        raise NotAFingerprint(
            "no fingerprint was given: paste its 64 hexadecimal digits (0-9, a-f; spaces and"
            " colons allowed)"
        )
    if not _HEX.fullmatch(value) or len(value) > 64:
        raise NotAFingerprint(
            f"{shown!r} is not a fingerprint: a SHA-256 fingerprint is 64 hexadecimal digits"
            " (0-9, a-f; spaces and colons allowed)"
        )
    if len(value) < MIN_PREFIX:
        raise NotAFingerprint(
            f"too short to be sure: {shown!r} has {len(value)} hexadecimal digits; paste the"
            f" whole fingerprint (64), or at least its first {MIN_PREFIX}"
        )
    return value


def matches(pasted_text: str, actual: str) -> bool:
    """Does a pasted fingerprint name `actual`? Any spelling `pasted()` reads, a prefix of at
    least MIN_PREFIX digits included; a paste `pasted()` refuses, or an empty actual, never."""
    have = _clean(actual)
    try:
        wanted = pasted(pasted_text)
    except NotAFingerprint:
        return False
    return bool(have) and have.startswith(wanted)


def hex_digits(text: str) -> int:
    """How many hex digits a half-typed paste holds (for a live "n of 64" hint)."""
    return sum(ch in "0123456789abcdef" for ch in _clean(text))


def grouped(hex64: str) -> str:
    """Upper-case 4-character groups ("3F2A 9C1E ..."), the way people read a fingerprint."""
    value = _clean(hex64).upper()
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def short(hex64: str, groups: int = 4) -> str:
    """The first few groups and an ellipsis: enough to tell keys apart in a table or a reason."""
    if not hex64:
        return ""
    parts = grouped(hex64).split()
    return " ".join(parts[:groups]) + (" …" if len(parts) > groups else "")
