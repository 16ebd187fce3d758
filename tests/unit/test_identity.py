"""Identity certificates, read back the way a Misfin peer reads them (cryptography's x509 API)."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from misfin_tui.core.address import Address
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import (
    DEFAULT_KEY_TYPE,
    KEY_TYPES,
    IdentityError,
    PassphraseRequired,
    cert_info,
    create_identity,
    host_ca_paths,
    import_identity,
    is_expired,
    is_signed_by,
    key_type_of,
    load_identities,
    make_host_ca,
    make_self_signed,
    make_signed,
    server_cert_summary,
    spki_sha256,
)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(DER)


def uid(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value


def cn(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def san_dns(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def basic_constraints(cert: x509.Certificate) -> x509.Extension:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- fingerprints ------------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_der_lowercase_hex() -> None:
    cert, _ = make_self_signed("alice", "example.org", "Alice")
    fp = fingerprint(der(cert))
    assert fp == hashlib.sha256(der(cert)).hexdigest()
    assert len(fp) == 64 and fp == fp.lower()
    assert cert_info(cert).fingerprint == fp == cert_info(der(cert)).fingerprint


def test_spki_hash_is_over_public_key_info_and_survives_a_new_certificate() -> None:
    cert, key = make_self_signed("alice", "example.org", "Alice")
    spki = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert spki_sha256(cert) == hashlib.sha256(spki).hexdigest()
    other, _ = make_self_signed("alice", "example.org", "Alice")
    assert spki_sha256(other) != spki_sha256(cert)


# --- making certificates -----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_self_signed_mailbox_certificate_reads_right_to_a_peer(key_type: str) -> None:
    cert, key = make_self_signed("alice", "example.org", "Alice Liddell", key_type)
    assert uid(cert) == "alice"
    assert cn(cert) == "Alice Liddell"
    assert san_dns(cert) == ["example.org"]
    bc = basic_constraints(cert)
    assert bc.critical and bc.value.ca is False
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # cryptography's own check: raises if wrong
    assert is_signed_by(cert, cert)
    assert cert.not_valid_after_utc - datetime.now(UTC) > timedelta(days=29 * 365)
    assert cert.not_valid_before_utc <= datetime.now(UTC)
    assert key_type_of(key.public_key()) == key_type
    info = cert_info(cert)
    assert (info.mailbox, info.host, info.blurb) == ("alice", "example.org", "Alice Liddell")
    assert info.issuer_is_self and not info.is_ca


def test_default_key_type_is_p256() -> None:
    assert DEFAULT_KEY_TYPE == "p256"
    cert, _ = make_self_signed("alice", "example.org")
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert cn(cert) == "alice"  # no blurb given: the mailbox stands in (CN may not be empty)


@pytest.mark.parametrize(
    ("ca_type", "leaf_type"), [("p256", "ed25519"), ("ed25519", "rsa2048"), ("rsa2048", "p256")]
)
def test_host_ca_signs_mailbox_certificates(ca_type: str, leaf_type: str) -> None:
    ca, ca_key = make_host_ca("example.org", ca_type)
    assert cn(ca) == "example.org"
    assert san_dns(ca) == ["example.org"]
    bc = basic_constraints(ca)
    assert bc.critical and bc.value.ca is True
    ca.verify_directly_issued_by(ca)
    assert server_cert_summary(der(ca)).is_ca

    leaf, _ = make_signed("bob", "example.org", "Bob", ca, ca_key, leaf_type)
    assert leaf.issuer == ca.subject
    assert basic_constraints(leaf).value.ca is False
    assert (uid(leaf), cn(leaf), san_dns(leaf)) == ("bob", "Bob", ["example.org"])
    leaf.verify_directly_issued_by(ca)
    assert is_signed_by(leaf, ca) and is_signed_by(der(leaf), der(ca))
    assert not is_signed_by(ca, leaf)
    assert not is_signed_by(leaf, leaf)
    assert not cert_info(leaf).issuer_is_self

    other_ca, _ = make_host_ca("example.org", ca_type)
    assert not is_signed_by(leaf, other_ca)


def test_a_certificate_forged_with_the_right_issuer_name_fails_the_signature_check() -> None:
    ca, _ = make_host_ca("example.org")
    _, impostor_key = make_host_ca("example.org")
    forged, _ = make_signed("bob", "example.org", "Bob", ca, impostor_key)
    assert forged.issuer == ca.subject
    assert not is_signed_by(forged, ca)


@pytest.mark.parametrize("bad", ["x" * 65, "Tab\there", "Smith, Alice"])
def test_unusable_blurbs_are_refused(bad: str) -> None:
    with pytest.raises(IdentityError):
        make_self_signed("alice", "example.org", bad)


# --- reading certificates ----------------------------------------------------------------------


def _cert_with(
    names: list[x509.NameAttribute], dns: list[str] | None, email: str = ""
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(x509.Name(names))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now - timedelta(days=1))
    )
    if dns is not None:
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        if email:
            general.append(x509.RFC822Name(email))
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(key, hashes.SHA256())


UID = x509.NameAttribute(NameOID.USER_ID, "alice")
CN = x509.NameAttribute(NameOID.COMMON_NAME, "Alice")


@pytest.mark.parametrize(
    ("names", "dns", "missing"),
    [
        ([CN], ["example.org"], "UID"),
        ([UID, CN], None, "DNS"),
        ([UID, CN], [], "DNS"),  # a subjectAltName with only an e-mail address
    ],
)
def test_cert_info_names_the_missing_field(names, dns, missing: str) -> None:
    cert = _cert_with(names, dns, email="alice@example.org")
    with pytest.raises(IdentityError, match=missing):
        cert_info(cert)
    summary = server_cert_summary(der(cert))  # a server certificate needs none of them
    assert summary.fingerprint == fingerprint(der(cert))


def test_a_certificate_without_a_cn_is_an_identity_with_no_blurb() -> None:
    info = cert_info(_cert_with([UID], ["example.org"]))
    assert (info.mailbox, info.host, info.blurb) == ("alice", "example.org", "")


def test_first_dns_name_is_the_host_and_expiry_is_reported() -> None:
    cert = _cert_with([UID, CN], ["Mail.Example.org", "other.example"])
    info = cert_info(cert)
    assert info.host == "mail.example.org"
    assert is_expired(cert)
    assert not is_expired(cert, now=datetime.now(UTC) - timedelta(days=1, hours=12))
    fresh, _ = make_self_signed("alice", "example.org")
    assert not is_expired(fresh)
    assert is_expired(fresh, now=datetime.now(UTC) + timedelta(days=31 * 365))


def test_garbage_is_not_a_certificate() -> None:
    with pytest.raises(IdentityError):
        cert_info(b"not a certificate")


# --- identities on disk ------------------------------------------------------------------------


def test_create_self_signed_identity_on_disk(tmp_path: Path) -> None:
    created = create_identity(tmp_path, Address.parse("alice@example.org"), "Alice")
    identity = created.identity
    assert created.signer == "self"
    folder = tmp_path / "alice@example.org"
    assert identity.cert_path == folder / "cert.pem"
    assert identity.key_path == folder / "key.pem"
    assert identity.chain_path == identity.cert_path
    assert mode(identity.key_path) == 0o600
    assert identity.issuer_fingerprint is None
    cert = x509.load_pem_x509_certificate(identity.cert_path.read_bytes())
    assert identity.fingerprint == hashlib.sha256(der(cert)).hexdigest()
    assert identity.cert_der() == der(cert)
    key = serialization.load_pem_private_key(identity.key_path.read_bytes(), password=None)
    assert key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo) == (
        cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert str(identity.address) == "alice@example.org" and identity.blurb == "Alice"
    assert identity.key_type == "p256"
    assert identity.not_after == cert.not_valid_after_utc
    assert load_identities(tmp_path) == [identity]


def test_an_identity_is_never_overwritten(tmp_path: Path) -> None:
    create_identity(tmp_path, Address.parse("alice@example.org"), "Alice")
    before = (tmp_path / "alice@example.org" / "cert.pem").read_bytes()
    for again in ("alice@example.org", "Alice@Example.org"):
        with pytest.raises(IdentityError, match="already exists"):
            create_identity(tmp_path, Address.parse(again), "Other")
    assert (tmp_path / "alice@example.org" / "cert.pem").read_bytes() == before
    assert len(load_identities(tmp_path)) == 1


def test_host_ca_identity_and_a_second_mailbox_signed_by_it(tmp_path: Path) -> None:
    first = create_identity(tmp_path, Address.parse("alice@example.org"), "Alice", ca=True)
    assert first.signer == "new-ca"
    paths = host_ca_paths(tmp_path, "example.org")
    assert paths == (tmp_path / "_ca/example.org/ca.pem", tmp_path / "_ca/example.org/ca.key")
    assert mode(paths[1]) == 0o600
    ca = x509.load_pem_x509_certificate(paths[0].read_bytes())
    assert basic_constraints(ca).value.ca is True
    assert first.identity.issuer_fingerprint == fingerprint(der(ca))

    chain = x509.load_pem_x509_certificates(first.identity.chain_path.read_bytes())
    assert first.identity.chain_path.name == "chain.pem"
    assert [fingerprint(der(c)) for c in chain] == [
        first.identity.fingerprint,
        fingerprint(der(ca)),
    ]
    chain[0].verify_directly_issued_by(ca)

    second = create_identity(tmp_path, Address.parse("bob@example.org"), "Bob")
    assert second.signer == "ca"
    bob = x509.load_pem_x509_certificate(second.identity.cert_path.read_bytes())
    bob.verify_directly_issued_by(ca)
    assert second.identity.issuer_fingerprint == fingerprint(der(ca))

    elsewhere = create_identity(tmp_path, Address.parse("carol@example.net"), "Carol")
    assert elsewhere.signer == "self" and elsewhere.identity.issuer_fingerprint is None
    assert [str(i.address) for i in load_identities(tmp_path)] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.net",
    ]


# --- importing PEM files -----------------------------------------------------------------------

KEYS = {
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def _external_cert(key, mailbox="dave", host="example.com", blurb="Dave") -> x509.Certificate:
    """A certificate made the way another Misfin tool would (not by our module)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, blurb),
            x509.NameAttribute(NameOID.USER_ID, mailbox),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=8192))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )


def _key_bytes(key, passphrase: bytes | None = None, traditional: bool = False) -> bytes:
    fmt = serialization.PrivateFormat.PKCS8
    if traditional and not isinstance(key, ed25519.Ed25519PrivateKey):
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(PEM, fmt, encryption)


def _check_imported(identity, cert: x509.Certificate, key) -> None:
    assert identity.fingerprint == fingerprint(der(cert))
    assert mode(identity.key_path) == 0o600
    stored = serialization.load_pem_private_key(identity.key_path.read_bytes(), password=None)
    assert stored.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) == (_key_bytes(key))
    assert identity.cert_der() == der(cert)


@pytest.mark.parametrize("kind", list(KEYS))
@pytest.mark.parametrize("traditional", [False, True])
def test_import_combined_file(tmp_path: Path, kind: str, traditional: bool) -> None:
    key = KEYS[kind]()
    cert = _external_cert(key)
    combined = tmp_path / "me.pem"
    combined.write_bytes(_key_bytes(key, traditional=traditional) + cert.public_bytes(PEM))
    identity = import_identity(tmp_path / "ids", combined)
    _check_imported(identity, cert, key)
    assert str(identity.address) == "dave@example.com" and identity.blurb == "Dave"
    assert identity.key_type == key_type_of(key.public_key())


@pytest.mark.parametrize("kind", list(KEYS))
def test_import_separate_files(tmp_path: Path, kind: str) -> None:
    key = KEYS[kind]()
    cert = _external_cert(key)
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "key.pem").write_bytes(_key_bytes(key))
    identity = import_identity(tmp_path / "ids", tmp_path / "cert.pem", tmp_path / "key.pem")
    _check_imported(identity, cert, key)


@pytest.mark.parametrize("kind", list(KEYS))
@pytest.mark.parametrize("traditional", [False, True])
def test_import_encrypted_key(tmp_path: Path, kind: str, traditional: bool) -> None:
    key = KEYS[kind]()
    cert = _external_cert(key)
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "key.pem").write_bytes(_key_bytes(key, b"s3cret", traditional))
    ids = tmp_path / "ids"
    with pytest.raises(PassphraseRequired, match="encrypted"):
        import_identity(ids, tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(IdentityError, match="wrong passphrase"):
        import_identity(ids, tmp_path / "cert.pem", tmp_path / "key.pem", b"guess")
    assert load_identities(ids) == []
    identity = import_identity(ids, tmp_path / "cert.pem", tmp_path / "key.pem", b"s3cret")
    _check_imported(identity, cert, key)
    assert b"ENCRYPTED" not in identity.key_path.read_bytes()


def test_import_rejects_a_key_that_belongs_to_another_certificate(tmp_path: Path) -> None:
    cert = _external_cert(KEYS["ec"]())
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(PEM))
    (tmp_path / "key.pem").write_bytes(_key_bytes(KEYS["ec"]()))
    with pytest.raises(IdentityError, match="does not belong"):
        import_identity(tmp_path / "ids", tmp_path / "cert.pem", tmp_path / "key.pem")
    assert load_identities(tmp_path / "ids") == []


def test_import_needs_a_key_and_a_misfin_certificate(tmp_path: Path) -> None:
    key = KEYS["ec"]()
    (tmp_path / "cert.pem").write_bytes(_external_cert(key).public_bytes(PEM))
    with pytest.raises(IdentityError, match="no private key"):
        import_identity(tmp_path / "ids", tmp_path / "cert.pem")
    plain = _cert_with([CN], ["example.com"])
    (tmp_path / "plain.pem").write_bytes(plain.public_bytes(PEM) + _key_bytes(key))
    with pytest.raises(IdentityError):
        import_identity(tmp_path / "ids", tmp_path / "plain.pem")
    with pytest.raises(IdentityError, match="cannot read"):
        import_identity(tmp_path / "ids", tmp_path / "missing.pem")
    (tmp_path / "only-key.pem").write_bytes(_key_bytes(key))
    with pytest.raises(IdentityError, match="no certificate"):
        import_identity(tmp_path / "ids", tmp_path / "only-key.pem")


def test_import_keeps_the_host_ca_from_the_same_file(tmp_path: Path) -> None:
    ca, ca_key = make_host_ca("example.com")
    leaf, key = make_signed("erin", "example.com", "Erin", ca, ca_key)
    bundle = tmp_path / "erin.pem"
    bundle.write_bytes(ca.public_bytes(PEM) + leaf.public_bytes(PEM) + _key_bytes(key))
    identity = import_identity(tmp_path / "ids", bundle)
    assert identity.fingerprint == fingerprint(der(leaf))
    assert identity.issuer_fingerprint == fingerprint(der(ca))
    chain = x509.load_pem_x509_certificates(identity.chain_path.read_bytes())
    assert [der(c) for c in chain] == [der(leaf), der(ca)]


def test_import_refuses_to_overwrite(tmp_path: Path) -> None:
    key = KEYS["ec"]()
    combined = tmp_path / "me.pem"
    combined.write_bytes(_external_cert(key).public_bytes(PEM) + _key_bytes(key))
    import_identity(tmp_path / "ids", combined)
    with pytest.raises(IdentityError, match="already exists"):
        import_identity(tmp_path / "ids", combined)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_import_a_certificate_made_by_the_reference_openssl_recipe(tmp_path: Path) -> None:
    # make-cert.sh from the Misfin reference (RSA-2048, -nodes), here with an encrypted key.
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "8192",
            "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
            "-passout", "pass:hunter2", "-subj", "/CN=Frank/UID=frank",
            "-addext", "subjectAltName = DNS:example.net",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    identity = import_identity(
        tmp_path / "ids", tmp_path / "cert.pem", tmp_path / "key.pem", b"hunter2"
    )
    assert str(identity.address) == "frank@example.net" and identity.blurb == "Frank"
    assert identity.key_type == "rsa2048"
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    assert identity.fingerprint == fingerprint(der(cert))


def test_a_key_kind_we_do_not_issue_is_never_taken_as_a_signer() -> None:
    from cryptography.hazmat.primitives.asymmetric import dsa

    key = dsa.generate_private_key(key_size=2048)
    name = x509.Name([UID, CN])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert not is_signed_by(cert, cert)
    summary = server_cert_summary(der(cert))
    assert summary.mailbox == "alice" and summary.host == "" and not summary.issuer_is_self


def test_a_strangers_name_field_of_odd_length_is_read_without_a_warning(tmp_path: Path) -> None:
    """cryptography warns in two lines on stderr about a CN over 64 characters: a receiver's
    output would fill with them. The field is still read."""
    script = (
        "import warnings, sys\n"
        "warnings.simplefilter('ignore')\n"
        "from cryptography import x509\n"
        "from cryptography.hazmat.primitives import hashes\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "from cryptography.x509.oid import NameOID\n"
        "from datetime import datetime, timedelta, UTC\n"
        "key = ec.generate_private_key(ec.SECP256R1())\n"
        "name = x509.Name([x509.NameAttribute(NameOID.USER_ID, 'alice'),\n"
        "    x509.NameAttribute(NameOID.COMMON_NAME, 'A' * 84, _validate=False)])\n"
        "now = datetime.now(UTC)\n"
        "cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)\n"
        "    .public_key(key.public_key()).serial_number(1).not_valid_before(now)\n"
        "    .not_valid_after(now + timedelta(days=1)).add_extension(\n"
        "    x509.SubjectAlternativeName([x509.DNSName('example.net')]), critical=False)\n"
        "    .sign(key, hashes.SHA256()))\n"
        "der = cert.public_bytes(__import__('cryptography.hazmat.primitives.serialization',\n"
        "    fromlist=['Encoding']).Encoding.DER)\n"
        "warnings.resetwarnings()\n"
        "from misfin_tui.core.identity import cert_info\n"
        "print(len(cert_info(x509.load_der_x509_certificate(der)).blurb))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "84"
    assert done.stderr == ""
