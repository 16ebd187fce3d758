"""Rotating our own certificates: issue a successor, retire the old one, build the notices.

The seed's procedure. `rotate()` issues a new mailbox certificate signed by the same host CA
(or, with `ca=True`, makes a new host CA and re-issues every mailbox of that host), keeps the
old certificate and key as *retired* under `identities/_retired/<address>/<fingerprint>/`
(never used for new letters, only to sign the notices), and records the old fingerprint as
retired in our own trust store. `notices()` builds one notice letter per past contact; the
engine queues them with the old certificate (`Outbox.enqueue(present=old fingerprint)`).

On disk the swap is two renames in the identities folder, so a receiver watching that folder's
mtime (or told by the engine) answers blank requests with the new fingerprint from then on.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from misfin_tui.core.address import Address
from misfin_tui.core.clock import utc_now
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import (
    CA_CERT_FILE,
    CA_DIR,
    CA_KEY_FILE,
    Identity,
    IdentityError,
    _write_identity,
    cert_info,
    cert_pem,
    key_pem,
    load_certificates,
    load_identity,
    load_private_key,
    make_host_ca,
    make_signed,
    spki_sha256,
    write_private,
)
from misfin_tui.core.notice import Notice, Reason, letter_text
from misfin_tui.core.profile import RETIRED_DIR
from misfin_tui.core.trust.model import MailboxState

if TYPE_CHECKING:
    from misfin_tui.core.profile import Profile
    from misfin_tui.core.trust.store import TrustStore


@dataclass(frozen=True)
class Rotated:
    """One mailbox that has a new certificate now, and the notice that says so."""

    old: Identity  # the retired certificate (its files under _retired/)
    new: Identity
    notice: Notice


def rotate(profile: Profile, address: str, reason: Reason, *, ca: bool = False) -> list[Rotated]:
    """Issue new certificates and retire the old ones; returns what changed (with notices).

    Without `ca`: the one mailbox, re-issued by its host CA (a self-signed mailbox has none to
    vouch for a successor: IdentityError, use `ca`). With `ca`: a new host CA for the address's
    host, and every mailbox of that host re-issued by it (the old CA is retired too)."""
    current = profile.identity(address)
    host = current.address.host.lower()
    staging = profile.identities_dir / RETIRED_DIR / f".staging-{secrets.token_hex(6)}"
    staging.mkdir(parents=True, mode=0o700)
    try:
        ca_paths = profile.host_ca(host)
        if ca:
            ca_cert, ca_key = make_host_ca(host, current.key_type or "p256")
            new_ca = staging / CA_DIR
            new_ca.mkdir(mode=0o700)
            write_private(new_ca / CA_KEY_FILE, key_pem(ca_key))
            (new_ca / CA_CERT_FILE).write_bytes(cert_pem(ca_cert))
            targets = [i for i in profile.identities() if i.address.host.lower() == host]
        elif ca_paths is None:
            raise IdentityError(
                f"{current.address} is self-signed: no host CA can vouch for a new certificate. "
                "Use --ca to make a host CA (your correspondents will see a changed server key "
                "and decide, with the notice as evidence)."
            )
        else:
            ca_cert = load_certificates(ca_paths[0])[0]
            ca_key = load_private_key(ca_paths[1])
            targets = [current]
        new_spki = spki_sha256(ca_cert) if ca else ""
        staged: list[tuple[Identity, Path, Notice]] = []
        for old in targets:
            folder = staging / str(old.address)
            kind = old.key_type if old.key_type in ("p256", "ed25519", "rsa2048") else "p256"
            mailbox = old.address.mailbox
            cert, key = make_signed(mailbox, host, old.blurb, ca_cert, ca_key, kind)
            _write_identity(folder, cert, key, ca_cert)
            from cryptography.hazmat.primitives import serialization

            der = cert.public_bytes(serialization.Encoding.DER)
            notice = Notice(
                address=str(old.address).lower(),
                old=old.fingerprint,
                new=cert_info(der).fingerprint,
                reason=reason,
                at=utc_now(),
                ca=new_spki,
                cert=der,
            )
            staged.append((old, folder, notice))
        results = _swap(profile, host, staging, staged, ca)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _private(profile)
    return results


def _swap(
    profile: Profile,
    host: str,
    staging: Path,
    staged: list[tuple[Identity, Path, Notice]],
    ca: bool,
) -> list[Rotated]:
    """Move the old certificates aside and the new ones in (renames: a watcher sees it)."""
    root = profile.identities_dir
    if ca:
        old_ca = root / CA_DIR / host
        if old_ca.is_dir():
            fp = cert_info_fp(old_ca / CA_CERT_FILE)
            aside = root / RETIRED_DIR / CA_DIR / host / fp[:16]
            aside.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            old_ca.rename(aside)
        (root / CA_DIR).mkdir(exist_ok=True, mode=0o700)
        (staging / CA_DIR).rename(old_ca)
    results = []
    for old, folder, notice in staged:
        live = old.cert_path.parent
        aside = profile.set_aside(old)
        folder.rename(live)
        results.append(Rotated(load_identity(aside), load_identity(live), notice))
    return results


def cert_info_fp(path: Path) -> str:

    pem = path.read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return fingerprint(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))


def _private(profile: Profile) -> None:
    profile._private_identities()


def record_retired(trust: TrustStore, rotated: list[Rotated]) -> None:
    """Our own old fingerprints are retired in our trust store too (the history shows it)."""
    for item in rotated:
        trust.revoke(
            item.notice.address,
            item.notice.old,
            f"rotated here ({item.notice.reason.value})",
            announced=item.notice.new,
            announced_ca=item.notice.ca,
            notice_at=item.notice.at,
        )


def contacts(trust: TrustStore, ours: set[str]) -> list[str]:
    """Everyone we have written to (a server answered 20) or received a verified letter from."""
    found = []
    for pin in trust.mailboxes():
        if pin.address in ours or pin.state in (MailboxState.REJECTED, MailboxState.GONE):
            continue
        delivered = pin.origin.value in ("delivery", "pasted", "approved")
        if delivered or pin.checked_at:
            found.append(pin.address)
    return found


@dataclass(frozen=True)
class NoticeLetter:
    """One notice to queue: to whom, from which identity, signed with which old certificate."""

    recipient: Address
    identity: str
    present: str  # the old certificate's fingerprint
    subject: str
    body: str


def notices(rotated: list[Rotated], recipients: list[str]) -> list[NoticeLetter]:
    """One notice letter per past contact and rotated mailbox (no contact sees the others)."""
    letters = []
    for item in rotated:
        subject, body = letter_text(item.notice, item.new.blurb)
        for address in recipients:
            letters.append(
                NoticeLetter(
                    Address.parse(address), str(item.new.address), item.old.fingerprint,
                    subject, body,
                )
            )  # fmt: skip
    return letters


@dataclass(frozen=True)
class Rotation:
    """What `Engine.rotate()` did: the new certificates, and the queued notices' outbox items."""

    rotated: list[Rotated]
    items: list[int]
    recipients: list[str]
