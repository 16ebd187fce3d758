"""Misfin identities: TLS client certificates that name a mailbox, plus the host CAs that sign them.

A Misfin identity certificate carries the mailbox in Subject UID, a human blurb in Subject CN and
the mail host as the first subjectAltName DNS name. A multi-user host signs each mailbox
certificate with its own self-signed CA so peers can check a mailbox belongs to that host.

`cryptography` (and what only making identities needs) is imported inside functions: the UI and
`send` import this module, and loading an identity reads FACTS_FILE, not the certificates.

On disk (under a profile's identities folder):
    <mailbox@host>/cert.pem, key.pem (0600), chain.pem (leaf + host CA, only when CA-signed)
    _ca/<host>/ca.pem, ca.key (0600)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misfin_tui.core.address import Address, AddressError, normal_host
from misfin_tui.core.der import cert_key_facts
from misfin_tui.core.fingerprint import fingerprint

if TYPE_CHECKING:
    from cryptography import x509

# cryptography warns, on stderr and in two lines, when a stranger's certificate holds a name
# field of an unusual length; the field is read all the same, and judged by what it says.
warnings.filterwarnings("ignore", message="Attribute's length must be", category=UserWarning)

KEY_TYPES = ("p256", "ed25519", "rsa2048")
DEFAULT_KEY_TYPE = "p256"
# Misfin certificates are pinned by their whole-DER hash, so renewal is a trust event for every
# correspondent: make them long-lived (transponder uses ~90 years; 30 is plenty).
VALIDITY = timedelta(days=30 * 365 + 8)
BLURB_MAX = 64  # RFC 5280 upper bound for a CommonName
CA_DIR = "_ca"
CERT_FILE, KEY_FILE, CHAIN_FILE = "cert.pem", "key.pem", "chain.pem"
FACTS_FILE = "facts.json"  # what the certificates say, so loading needs no cryptography
CA_CERT_FILE, CA_KEY_FILE = "ca.pem", "ca.key"

_PEM_KEY = re.compile(
    rb"-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL
)


class IdentityError(Exception):
    """Something is wrong with an identity or certificate; str() is one line for a person."""


class NoIdentity(IdentityError):
    """The profile holds no identity yet. `what` says what could not be done without one; str()
    adds how to make one. A front end that knows how it was started (the command line's
    --profile) says that itself, with `what`."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: make one with `misfin-tui identity new ADDRESS`")
        self.what = what


class PassphraseRequired(IdentityError):
    """The private key is encrypted and no passphrase was given (a terminal can ask for one)."""


def spki_sha256(cert: Any) -> str:
    """The host pin of a certificate (or its DER): see core.der, the one place it is computed."""
    from cryptography.hazmat.primitives import serialization

    try:
        return cert_key_facts(_cert(cert).public_bytes(serialization.Encoding.DER)).pin
    except ValueError as exc:
        raise IdentityError(f"not a readable certificate: {exc}") from None


@dataclass(frozen=True)
class CertInfo:
    mailbox: str
    host: str
    blurb: str
    fingerprint: str
    spki: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    issuer_is_self: bool


def cert_info(cert_or_der: Any, *, check_self_signature: bool = True) -> CertInfo:
    """Read a mailbox identity from a certificate; names the missing field (UID or DNS SAN).

    The CN (the blurb) is optional: the address alone is a complete identity (the protocol's
    §6 makes only a missing UID or DNS SAN a 62), and the blurb is then empty.

    check_self_signature=False skips the signature check behind issuer_is_self (~0.25 ms; it
    is then only "issuer name == subject name") for callers that never read it.
    """
    info = server_cert_summary(cert_or_der, check_self_signature=check_self_signature)
    missing = [
        name
        for name, value in (
            ("Subject UID (the mailbox)", info.mailbox),
            ("subjectAltName DNS name (the host)", info.host),
        )
        if not value
    ]
    if missing:
        raise IdentityError(f"not a Misfin identity certificate: no {' and no '.join(missing)}")
    return info


def server_cert_summary(der: Any, *, check_self_signature: bool = True) -> CertInfo:
    """Summarise any certificate: empty strings where a Misfin field is absent."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    cert = _cert(der)
    try:
        extensions = cert.extensions
    except ValueError as exc:  # e.g. a duplicated or malformed extension from a stranger
        raise IdentityError(f"unreadable certificate extensions ({exc})") from None
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    try:
        is_ca = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        mailbox=_name_value(cert.subject, NameOID.USER_ID),
        host=normal_host(dns_names[0]) if dns_names else "",
        blurb=_name_value(cert.subject, NameOID.COMMON_NAME),
        fingerprint=fingerprint(cert.public_bytes(serialization.Encoding.DER)),
        spki=spki_sha256(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        issuer_is_self=cert.issuer == cert.subject
        and (not check_self_signature or is_signed_by(cert, cert)),
    )


def is_signed_by(cert: Any, issuer: Any) -> bool:
    """True when `issuer`'s public key verifies `cert`'s signature (RSA, ECDSA, Ed25519).

    A raw signature check, not path building: Misfin hosts are their own CAs.
    """
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    cert, issuer = _cert(cert), _cert(issuer)
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            padding = cert.signature_algorithm_parameters
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, padding, cert.signature_hash_algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        # The others: the signature was made with another kind of key or an unknown algorithm.
        return False
    return True


def is_expired(cert: Any, now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) > _cert(cert).not_valid_after_utc


def key_type_of(public_key: Any) -> str:
    """A short name for a key: p256, ed25519, rsa2048, or e.g. p384 / rsa4096 for imports."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}.get(
            public_key.curve.name, public_key.curve.name
        )
    return type(public_key).__name__


@dataclass(frozen=True)
class Identity:
    """One of our mailboxes, as files on disk."""

    address: Address
    blurb: str
    cert_path: Path
    key_path: Path
    chain_path: Path  # what the TLS client presents: leaf + host CA when CA-signed, else cert_path
    fingerprint: str
    issuer_fingerprint: str | None  # the host CA's fingerprint; None when self-signed
    not_after: datetime
    key_type: str = ""

    def cert_der(self) -> bytes:
        return _pem_to_der(self.cert_path.read_bytes())


# --- making certificates ---------------------------------------------------------------------


def generate_key(key_type: str = DEFAULT_KEY_TYPE) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise IdentityError(f"unknown key type {key_type!r}: choose one of {', '.join(KEY_TYPES)}")


def make_self_signed(
    mailbox: str, host: str, blurb: str = "", key_type: str = DEFAULT_KEY_TYPE
) -> tuple[x509.Certificate, Any]:
    """A single-mailbox identity: self-signed, UID=mailbox, CN=blurb, SAN DNS=host."""
    key = generate_key(key_type)
    name = _mailbox_name(mailbox, blurb)
    return _build(name, name, key, key, host, ca=False), key


def make_host_ca(host: str, key_type: str = DEFAULT_KEY_TYPE) -> tuple[x509.Certificate, Any]:
    """A host CA: self-signed, CN=host, SAN DNS=host, basicConstraints CA=TRUE (critical)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = generate_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _check_cn(host, "host name"))])
    return _build(name, name, key, key, host, ca=True), key


def make_signed(
    mailbox: str,
    host: str,
    blurb: str,
    ca_cert: x509.Certificate,
    ca_key: Any,
    key_type: str = DEFAULT_KEY_TYPE,
) -> tuple[x509.Certificate, Any]:
    """A mailbox certificate issued by a host CA (issuer = CA subject, CA=FALSE)."""
    key = generate_key(key_type)
    cert = _build(_mailbox_name(mailbox, blurb), ca_cert.subject, key, ca_key, host, ca=False)
    return cert, key


def _mailbox_name(mailbox: str, blurb: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, mailbox),
            x509.NameAttribute(NameOID.COMMON_NAME, _check_cn(blurb or mailbox, "blurb")),
        ]
    )


def _check_cn(text: str, what: str) -> str:
    if len(text) > BLURB_MAX:
        raise IdentityError(f"the {what} is {len(text)} characters long; at most {BLURB_MAX} fit")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise IdentityError(f"the {what} contains a control character")
    if "," in text:
        # Misfin(C) metadata lists senders as "address blurb, address blurb".
        raise IdentityError(f"the {what} may not contain a comma")
    return text


def _build(
    subject: x509.Name, issuer: x509.Name, key: Any, signing_key: Any, host: str, *, ca: bool
) -> x509.Certificate:
    import secrets

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519

    now = datetime.now(UTC).replace(microsecond=0)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(secrets.randbits(127) | 1)
        .not_valid_before(now - timedelta(hours=1))  # tolerate a peer's clock running behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if signing_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


# --- PEM in and out --------------------------------------------------------------------------


def _cert(value: Any) -> x509.Certificate:
    """Accept a Certificate, DER bytes or PEM bytes."""
    from cryptography import x509

    if isinstance(value, x509.Certificate):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise IdentityError(f"not a readable certificate: {exc}") from None
    raise TypeError(f"expected a certificate or its DER bytes, got {type(value).__name__}")


def _name_value(name: x509.Name, oid: Any) -> str:
    values = name.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _pem_to_der(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return _cert(pem).public_bytes(serialization.Encoding.DER)


def cert_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any) -> bytes:
    """Unencrypted PKCS#8: the file mode (0600) is what protects it."""
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def write_private(path: Path, data: bytes) -> None:
    """Create a secret file with mode 0600 from the first byte (no window where others can read)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:  # a write on a descriptor names no file: say which one (a full disk)
        exc.filename = exc.filename or str(path)
        raise


def load_certificates(path: Path) -> list[x509.Certificate]:
    from cryptography import x509

    data = _read(path)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise IdentityError(f"{path}: no certificate (expected a PEM 'BEGIN CERTIFICATE' block)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise IdentityError(f"{path}: unreadable certificate ({_damage(exc)})") from None


def _damage(exc: Exception) -> str:
    """What cryptography found wrong with a PEM block, in words: its own text is a pointer to
    its FAQ, or a Rust parser's debug dump ("ParseError { kind: UnexpectedTag { … } }")."""
    text = str(exc)
    if "Unable to load PEM" in text or "ParseError" in text or "asn1" in text.lower():
        return "the PEM block is damaged: cut short, or edited"
    return text


def load_private_key(path: Path, passphrase: bytes | None = None) -> Any:
    """The first private key in a PEM file; decrypts with `passphrase` when it is encrypted."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    match = _PEM_KEY.search(_read(path))
    if match is None:
        raise IdentityError(f"{path}: no private key (expected a PEM 'PRIVATE KEY' block)")
    block = match.group(0)
    try:
        key = serialization.load_pem_private_key(block, password=passphrase)
    except TypeError as exc:
        if passphrase is None:
            raise PassphraseRequired(
                f"{path}: the private key is encrypted; a passphrase is needed"
            ) from None
        if "not encrypted" not in str(exc):
            raise IdentityError(f"{path}: unreadable private key ({exc})") from None
        key = serialization.load_pem_private_key(block, password=None)
    except ValueError as exc:
        if passphrase is not None or b"ENCRYPTED" in block:
            raise IdentityError(f"{path}: wrong passphrase for the private key") from None
        raise IdentityError(f"{path}: unreadable private key ({_damage(exc)})") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic encryptions
        raise IdentityError(f"{path}: unreadable private key ({exc})") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise IdentityError(f"{path}: unsupported key type {type(key).__name__} (RSA, EC, Ed25519)")
    return key


def key_matches(cert: x509.Certificate, key: Any) -> bool:
    from cryptography.hazmat.primitives import serialization

    def spki(public: Any) -> bytes:
        der: bytes = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return der

    return spki(cert.public_key()) == spki(key.public_key())


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read ({exc.strerror or exc})") from None


# --- identities on disk ----------------------------------------------------------------------


def identity_dir(identities_dir: Path, address: Address) -> Path:
    name = str(address)
    if "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise IdentityError(
            f"{name!r} cannot be stored as an identity (it is not a safe folder name)"
        )
    return identities_dir / name


def host_ca_paths(identities_dir: Path, host: str) -> tuple[Path, Path] | None:
    folder = identities_dir / CA_DIR / host.lower()
    cert, key = folder / CA_CERT_FILE, folder / CA_KEY_FILE
    return (cert, key) if cert.is_file() and key.is_file() else None


def load_identity(folder: Path) -> Identity:
    """Read one identity folder written by create_identity or import_identity.

    What the certificates say is kept in FACTS_FILE beside them, keyed by a hash of their
    bytes: reading it needs no `cryptography`, whose import would be most of a `send`
    process's time. Changed certificates (a renewal, a hand edit) are read afresh.
    """
    cert_path, key_path, chain_path = folder / CERT_FILE, folder / KEY_FILE, folder / CHAIN_FILE
    cert_bytes = _read(cert_path)
    chain_bytes = _read(chain_path) if chain_path.is_file() else b""
    if not key_path.is_file():
        raise IdentityError(f"{folder}: the private key {KEY_FILE} is missing")
    digest = hashlib.sha256(cert_bytes + b"\0" + chain_bytes).hexdigest()
    chain_path = chain_path if chain_bytes else cert_path
    remembered = _remembered(folder / FACTS_FILE, digest, cert_path, key_path, chain_path)
    if remembered is not None:
        return remembered
    leaf = load_certificates(cert_path)[0]
    try:
        info = cert_info(leaf)
    except IdentityError as exc:
        raise IdentityError(f"{cert_path}: {exc}") from None
    issuer_fp = None
    if chain_bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        chain = load_certificates(chain_path)
        if len(chain) > 1:
            issuer_fp = fingerprint(chain[1].public_bytes(Encoding.DER))
    identity = Identity(
        address=_address(info.mailbox, info.host),
        blurb=info.blurb,
        fingerprint=info.fingerprint,
        issuer_fingerprint=issuer_fp,
        not_after=info.not_after,
        key_type=key_type_of(leaf.public_key()),
        cert_path=cert_path,
        key_path=key_path,
        chain_path=chain_path,
    )
    _remember_facts(folder / FACTS_FILE, digest, identity)
    return identity


def _remembered(
    path: Path, digest: str, cert_path: Path, key_path: Path, chain_path: Path
) -> Identity | None:
    """The identity as FACTS_FILE describes certificates with this digest, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("digest") != digest:
            return None
        issuer = data["issuer_fingerprint"]
        return Identity(
            address=Address.parse(data["address"]),
            blurb=str(data["blurb"]),
            fingerprint=str(data["fingerprint"]),
            issuer_fingerprint=None if issuer is None else str(issuer),
            not_after=datetime.fromisoformat(data["not_after"]),
            key_type=str(data["key_type"]),
            cert_path=cert_path,
            key_path=key_path,
            chain_path=chain_path,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, AddressError):
        return None  # absent, stale or damaged: the certificates are read again


def _remember_facts(path: Path, digest: str, identity: Identity) -> None:
    """Best effort: a read-only or full profile reads the certificates every time instead."""
    facts = {
        "digest": digest,
        "address": str(identity.address),
        "blurb": identity.blurb,
        "fingerprint": identity.fingerprint,
        "issuer_fingerprint": identity.issuer_fingerprint,
        "not_after": identity.not_after.isoformat(),
        "key_type": identity.key_type,
    }
    temporary = path.with_name(f".{path.name}.{os.urandom(4).hex()}")
    try:
        write_private(temporary, json.dumps(facts, indent=1).encode())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def load_identities(identities_dir: Path) -> list[Identity]:
    """Every identity folder (sorted by address); the host CA folder is not an identity."""
    if not identities_dir.is_dir():
        return []
    return [
        load_identity(folder)
        for folder in sorted(identities_dir.iterdir())
        if folder.name != CA_DIR and (folder / CERT_FILE).is_file()
    ]


@dataclass(frozen=True)
class Created:
    """What create_identity did, so a front end can say it."""

    identity: Identity
    signer: str  # "self" | "new-ca" (made a host CA for this) | "ca" (an existing host CA)


def create_identity(
    identities_dir: Path,
    address: Address,
    blurb: str = "",
    key_type: str = DEFAULT_KEY_TYPE,
    *,
    ca: bool = False,
) -> Created:
    """Make a new identity: signed by the host's CA when the profile holds one (or `ca` asks
    for one to be made), else self-signed. Never overwrites an existing identity."""
    if key_type not in KEY_TYPES:
        raise IdentityError(f"unknown key type {key_type!r}: choose one of {', '.join(KEY_TYPES)}")
    folder = _new_identity_dir(identities_dir, address)
    blurb = _check_cn(blurb or address.mailbox, "blurb")
    existing = host_ca_paths(identities_dir, address.host)
    ca_cert: x509.Certificate | None = None
    if existing is not None:
        ca_cert = load_certificates(existing[0])[0]
        ca_key = load_private_key(existing[1])
        signer = "ca"
    elif ca:
        ca_cert, ca_key = make_host_ca(address.host, key_type)
        ca_folder = identities_dir / CA_DIR / address.host
        ca_folder.mkdir(parents=True, mode=0o700)
        write_private(ca_folder / CA_KEY_FILE, key_pem(ca_key))
        (ca_folder / CA_CERT_FILE).write_bytes(cert_pem(ca_cert))
        signer = "new-ca"
    else:
        signer = "self"
    if ca_cert is None:
        cert, key = make_self_signed(address.mailbox, address.host, blurb, key_type)
    else:
        cert, key = make_signed(address.mailbox, address.host, blurb, ca_cert, ca_key, key_type)
    _write_identity(folder, cert, key, ca_cert)
    return Created(load_identity(folder), signer)


def import_identity(
    identities_dir: Path,
    cert_path: Path,
    key_path: Path | None = None,
    passphrase: bytes | None = None,
) -> Identity:
    """Copy an existing certificate and key (one PEM file or two) into the profile.

    The key must belong to the certificate; an encrypted key is decrypted with `passphrase` and
    stored unencrypted with mode 0600. A CA certificate in the same file that signed the leaf is
    kept as its chain.
    """
    certs = load_certificates(cert_path)
    key = load_private_key(key_path or cert_path, passphrase)
    leaf = next((c for c in certs if key_matches(c, key)), None)
    if leaf is None:
        raise IdentityError(
            f"the private key in {key_path or cert_path} does not belong to"
            f" the certificate in {cert_path}"
        )
    try:
        info = cert_info(leaf)
    except IdentityError as exc:
        raise IdentityError(f"{cert_path}: {exc}") from None
    address = _address(info.mailbox, info.host)
    issuer = None
    if not info.issuer_is_self:
        issuer = next((c for c in certs if c is not leaf and is_signed_by(leaf, c)), None)
    folder = _new_identity_dir(identities_dir, address)
    _write_identity(folder, leaf, key, issuer)
    return load_identity(folder)


def _new_identity_dir(identities_dir: Path, address: Address) -> Path:
    folder = identity_dir(identities_dir, address)
    wanted = str(address).lower()
    for existing in load_identities(identities_dir):
        if str(existing.address).lower() == wanted:
            raise IdentityError(
                f"an identity for {existing.address} already exists ({existing.cert_path.parent});"
                " it is never overwritten"
            )
    if folder.exists():
        raise IdentityError(f"{folder} already exists; it is never overwritten")
    return folder


def _write_identity(
    folder: Path, cert: x509.Certificate, key: Any, ca_cert: x509.Certificate | None
) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(mode=0o700)
    try:
        write_private(folder / KEY_FILE, key_pem(key))
        (folder / CERT_FILE).write_bytes(cert_pem(cert))
        if ca_cert is not None:
            (folder / CHAIN_FILE).write_bytes(cert_pem(cert) + cert_pem(ca_cert))
    except BaseException:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise


def _address(mailbox: str, host: str) -> Address:
    try:
        return Address.parse(f"{mailbox}@{host}")
    except AddressError as exc:
        raise IdentityError(
            f"the certificate names {mailbox}@{host}, not a usable address: {exc}"
        ) from None
