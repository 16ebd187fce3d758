"""Certificates made in the tests: sender credentials as files the stdlib ssl client loads,
server certificates with dates under the test's control, certificates missing a Misfin field,
and fixed-seed certificates whose fingerprints never change (snapshots show them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import (
    cert_pem,
    key_pem,
    load_certificates,
    load_private_key,
    make_self_signed,
    make_signed,
    spki_sha256,
)
from misfin_tui.core.profile import Profile

PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey

# The dates of every fixed certificate: the same on every run.
NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2036, 1, 1, tzinfo=UTC)


# -- a sender's credentials as files ----------------------------------------------------------


@dataclass(frozen=True)
class Creds:
    """A client certificate as PEM files the stdlib ssl client can load."""

    cert: Path  # PEM: leaf (+ host CA when CA-signed)
    key: Path
    der: bytes
    fingerprint: str
    address: str | None = None  # None: the certificate names no mailbox


def write_creds(
    folder: Path,
    name: str,
    cert: x509.Certificate,
    key: Any,
    ca_cert: x509.Certificate | None = None,
    *,
    address: str | None = None,
) -> Creds:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert_pem(cert) + (cert_pem(ca_cert) if ca_cert is not None else b""))
    key_path.write_bytes(key_pem(key))
    der = cert.public_bytes(Encoding.DER)
    return Creds(cert_path, key_path, der, fingerprint(der), address)


def identity_creds(profile: Profile, address: str) -> Creds:
    """The credentials of one of the profile's own identities."""
    ident = profile.identity(address)
    der = ident.cert_der()
    return Creds(ident.chain_path, ident.key_path, der, fingerprint(der), address)


def ca_of(profile: Profile, host: str) -> tuple[x509.Certificate, Any]:
    """The host CA (certificate, key) a CA-signed profile keeps for `host`."""
    found = profile.host_ca(host)
    assert found is not None
    return load_certificates(found[0])[0], load_private_key(found[1])


def forged(folder: Path, mailbox: str, host: str, name: str = "forged") -> Creds:
    """A self-signed certificate for mailbox@host that no one has vouched for."""
    cert, key = make_self_signed(mailbox, host, mailbox.capitalize())
    return write_creds(folder, name, cert, key, address=f"{mailbox}@{host}")


def signed_by(folder: Path, profile: Profile, mailbox: str, host: str, name: str) -> Creds:
    """A certificate for mailbox@host signed by the profile's host CA for `host`."""
    ca_cert, ca_key = ca_of(profile, host)
    cert, key = make_signed(mailbox, host, mailbox.capitalize(), ca_cert, ca_key)
    return write_creds(folder, name, cert, key, ca_cert, address=f"{mailbox}@{host}")


def odd_cert(
    folder: Path,
    name: str,
    *,
    uid: bool = True,
    cn: bool = True,
    san: bool = True,
    expired: bool = False,
    future: bool = False,
) -> Creds:
    """A certificate missing a Misfin field (the UID that names the mailbox, the CN that holds
    the blurb, or the SAN), or out of date."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, "Alice")] if cn else []
    if uid:
        attrs.insert(0, x509.NameAttribute(NameOID.USER_ID, "alice"))
    name_ = x509.Name(attrs)
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=30)
    if expired:
        start, end = now - timedelta(days=30), now - timedelta(days=1)
    if future:
        start = now + timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name_)
        .issuer_name(name_)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("example.net")]), critical=False
        )
    address = "alice@example.net" if uid and san else None
    return write_creds(folder, name, builder.sign(key, hashes.SHA256()), key, address=address)


# -- certificates a server presents, or an identity installed as is ---------------------------


@dataclass(frozen=True)
class CertAndKey:
    """A certificate with its private key, as objects (pyOpenSSL and the core take these)."""

    cert: x509.Certificate
    key: PrivateKey

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertAndKey:
        """The first certificate of a PEM file and its key (e.g. a real receiver's)."""
        return cls(load_certificates(cert_path)[0], load_private_key(key_path))

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.der)

    @property
    def spki(self) -> str:
        return spki_sha256(self.cert)


def _build(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    signer: PrivateKey,
    host: str,
    *,
    ca: bool,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> CertAndKey:
    algorithm = None if isinstance(signer, Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .sign(signer, algorithm)
    )
    return CertAndKey(cert, key)


def _host_name(host: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])


def make_server_cert(
    host: str,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    days: float = 3650,
    start: datetime | None = None,
) -> CertAndKey:
    """A self-signed host CA certificate (as Misfin servers present), dates under our control."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = start or datetime.now(UTC) - timedelta(hours=1)
    name = _host_name(host)
    return _build(
        name, name, key, key, host, ca=True, serial=x509.random_serial_number(),
        not_before=now, not_after=now + timedelta(days=days),
    )  # fmt: skip


def _seeded_key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def fixed_cert(
    seed: int,
    address: str,
    *,
    blurb: str = "",
    serial: int | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    issuer: CertAndKey | None = None,
) -> CertAndKey:
    """A mailbox certificate (UID, CN, SAN) that is the same on every run: self-signed, or
    signed by `issuer` (a host CA from fixed_ca)."""
    mailbox, _, host = address.partition("@")
    key = _seeded_key(seed)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, mailbox),
            x509.NameAttribute(NameOID.COMMON_NAME, blurb or mailbox),
        ]
    )
    return _build(
        name,
        issuer.cert.subject if issuer else name,
        key,
        issuer.key if issuer else key,
        host,
        ca=False,
        serial=serial or 1000 + seed,
        not_before=not_before,
        not_after=not_after,
    )


def fixed_ca(seed: int, host: str) -> CertAndKey:
    """A host CA (CN=host, CA=true) from a fixed seed."""
    name = _host_name(host)
    key = _seeded_key(seed)
    return _build(
        name, name, key, key, host, ca=True, serial=2000 + seed,
        not_before=NOT_BEFORE, not_after=NOT_AFTER,
    )  # fmt: skip


def install_identity(
    profile: Profile, address: str, cert: CertAndKey, ca: CertAndKey | None = None
) -> None:
    """Write the identity where the core keeps it (replacing any before); with `ca`, also the
    host CA the receiver presents and the chain the client shows."""
    folder = profile.identities_dir / address
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert_pem(cert.cert))
    (folder / "key.pem").write_bytes(key_pem(cert.key))
    os.chmod(folder / "key.pem", 0o600)
    if ca is not None:
        (folder / "chain.pem").write_bytes(cert_pem(cert.cert) + cert_pem(ca.cert))
        ca_folder = profile.identities_dir / "_ca" / address.partition("@")[2]
        ca_folder.mkdir(parents=True, exist_ok=True)
        (ca_folder / "ca.pem").write_bytes(cert_pem(ca.cert))
        (ca_folder / "ca.key").write_bytes(key_pem(ca.key))
        os.chmod(ca_folder / "ca.key", 0o600)
