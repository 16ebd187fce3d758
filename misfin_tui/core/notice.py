"""The key-change notice: one letter a person can read and one line our client can.

When a mailbox rotates its certificate (routine, or because the old one was stolen) it writes to
every past contact with the *old* certificate. The letter explains itself in words and carries
one machine-readable line, documented in the README:

    misfin-key-change: v=1 address=alice@a.test reason=routine at=2026-01-02T03:04:05Z
        old=<64 hex> new=<64 hex> [ca=<64 hex>] [cert=<base64url DER of the new certificate>]

(one line, fields separated by single spaces, in any order after `v=1`). `old` and `new` are
SHA-256 certificate fingerprints; `ca` is the SPKI SHA-256 of a *new* host CA (only when the
host CA itself was replaced); `cert` lets the recipient check at once that the new certificate
chains to the host CA it pinned. Pure: parsing and formatting only, no I/O, no trust.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from misfin_tui.core import fingerprint

PREFIX = "misfin-key-change:"
VERSION = "1"
MAX_LINE = 4096  # a certificate in base64 is ~700 characters; anything longer is not ours
_HEX64 = re.compile(r"[0-9a-f]{64}")
_WHEN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class NoticeError(ValueError):
    """A line that starts like a notice but is not a valid one; str() says what is wrong."""


class Reason(StrEnum):
    ROUTINE = "routine"
    STOLEN = "stolen"

    @property
    def words(self) -> str:
        return {
            Reason.ROUTINE: "a routine change of certificate",
            Reason.STOLEN: "the old certificate may have been stolen",
        }[self]


@dataclass(frozen=True)
class Notice:
    """What a key-change notice says (nothing in it is trusted by itself)."""

    address: str  # mailbox@host, lower case
    old: str  # fingerprint of the certificate being retired
    new: str  # fingerprint of its successor
    reason: Reason
    at: str  # ISO-8601 UTC, seconds
    ca: str = ""  # SPKI SHA-256 of a new host CA, when the host CA was replaced
    cert: bytes = b""  # DER of the new certificate, when included

    def line(self) -> str:
        """The machine-readable line (see the module docstring)."""
        parts = [
            PREFIX,
            f"v={VERSION}",
            f"address={self.address}",
            f"reason={self.reason.value}",
            f"at={self.at}",
            f"old={self.old}",
            f"new={self.new}",
        ]
        if self.ca:
            parts.append(f"ca={self.ca}")
        if self.cert:
            parts.append("cert=" + base64.urlsafe_b64encode(self.cert).decode("ascii").rstrip("="))
        return " ".join(parts)


def parse_line(line: str) -> Notice:
    """Read one notice line; NoticeError says what is wrong with a malformed one."""
    text = line.strip()
    if len(text) > MAX_LINE:
        raise NoticeError("the notice line is too long")
    if not text.startswith(PREFIX):
        raise NoticeError(f"a notice line starts with {PREFIX!r}")
    fields: dict[str, str] = {}
    for part in text[len(PREFIX) :].split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise NoticeError(f"not a key=value field: {part[:40]!r}")
        if key in fields:
            raise NoticeError(f"the field {key!r} appears twice")
        fields[key] = value
    if fields.get("v") != VERSION:
        raise NoticeError(f"unknown notice version {fields.get('v', '')[:10]!r}")
    for needed in ("address", "reason", "at", "old", "new"):
        if not fields.get(needed):
            raise NoticeError(f"the notice has no {needed!r}")
    address = fields["address"].lower()
    mailbox, at, host = address.partition("@")
    if not mailbox or not at or not host or any(c in address for c in "<>\"'\\"):
        raise NoticeError("the notice names no usable address")
    try:
        reason = Reason(fields["reason"])
    except ValueError:
        raise NoticeError(f"unknown reason {fields['reason'][:20]!r}") from None
    if not _WHEN.fullmatch(fields["at"]):
        raise NoticeError("the notice's time is not ISO-8601 UTC (YYYY-MM-DDTHH:MM:SSZ)")
    old, new = _hex(fields["old"], "old"), _hex(fields["new"], "new")
    if old == new:
        raise NoticeError("the old and the new fingerprint are the same")
    ca = _hex(fields["ca"], "ca") if fields.get("ca") else ""
    cert = b""
    if fields.get("cert"):
        raw = fields["cert"]
        try:
            cert = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            raise NoticeError("the notice's certificate is not base64url") from None
        if fingerprint.fingerprint(cert) != new:
            raise NoticeError("the certificate in the notice is not the one its 'new' names")
    return Notice(address, old, new, reason, fields["at"], ca, cert)


def _hex(value: str, name: str) -> str:
    value = value.lower()
    if not _HEX64.fullmatch(value):
        raise NoticeError(f"{name!r} is not a SHA-256 fingerprint (64 hex digits)")
    return value


def mentions(body: str) -> bool:
    """Whether a letter's body may carry a notice (cheap: the receiver asks for every letter)."""
    return PREFIX in body


def find(body: str) -> Notice | None:
    """The notice a letter carries: None when it carries none.

    Raises NoticeError when it carries a malformed one, or more than one."""
    lines = [line for line in body.splitlines() if line.strip().startswith(PREFIX)]
    if not lines:
        return None
    if len(lines) > 1:
        raise NoticeError("the letter carries more than one notice line")
    return parse_line(lines[0])


def letter_text(notice: Notice, blurb: str = "") -> tuple[str, str]:
    """(subject, body) of the notice letter: words for a person, then the line for a client."""
    who = f"{blurb} ({notice.address})" if blurb else notice.address
    grouped = fingerprint.grouped
    subject = f"My Misfin certificate has changed ({notice.reason.value})"
    lines = [
        f"This is {who}. I have replaced the certificate I send and receive mail with: "
        f"{notice.reason.words}.",
        "",
        "This letter is signed with my OLD certificate, the one you know. From now on I use "
        "only the new one, and the old one must never be accepted again.",
        "",
        "## Fingerprints (SHA-256)",
        f"* old (retired): {grouped(notice.old)}",
        f"* new:           {grouped(notice.new)}",
    ]
    if notice.ca:
        lines.append(f"* my server's new key (SPKI): {grouped(notice.ca)}")
    lines += [
        "",
        "## What to do",
        "If your client understands this notice (misfin-tui does), it retires the old "
        "certificate now and accepts the new one when my next letter comes with it and my "
        "server confirms it. Otherwise: stop trusting the old fingerprint, and check the new "
        "one with me by another channel before you trust it.",
    ]
    if notice.ca:
        lines.append(
            "My server's key changed too, so your client will warn you about it: compare the "
            "new server key above with what it shows, or ask me, before you accept it."
        )
    lines += ["", "```key-change notice for mail clients", notice.line(), "```", ""]
    return subject, "\n".join(lines)
