"""core.der reads the pin and validity exactly as cryptography does, and refuses anything else."""

from __future__ import annotations

import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from misfin_tui.core.der import cert_key_facts
from misfin_tui.core.identity import KEY_TYPES, make_self_signed


def _expected(der: bytes) -> tuple[bytes, datetime, datetime]:
    cert = x509.load_der_x509_certificate(der)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return spki, cert.not_valid_before_utc, cert.not_valid_after_utc


def _cert(not_before: datetime, not_after: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_matches_cryptography_for_every_key_type(key_type: str) -> None:
    cert, _ = make_self_signed("alice", "example.org", "Alice", key_type)
    der = cert.public_bytes(Encoding.DER)
    facts = cert_key_facts(der)
    assert (facts.spki, facts.not_before, facts.not_after) == _expected(der)


@pytest.mark.parametrize(
    ("before", "after"),
    [  # UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280), and the 1950s for UTCTime
        (datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2049, 12, 31, tzinfo=UTC)),
        (datetime(1950, 1, 1, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC)),
        (datetime(2026, 2, 28, 1, 2, 3, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)),
    ],
)
def test_both_time_encodings(before: datetime, after: datetime) -> None:
    der = _cert(before, after)
    facts = cert_key_facts(der)
    assert (facts.not_before, facts.not_after) == (before, after)
    assert facts.spki == _expected(der)[0]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_version_1_certificate_without_the_version_field(tmp_path: Path) -> None:
    """A v1 certificate has no [0] version element; RSA keys carry NULL parameters."""
    key, csr, out = tmp_path / "k.pem", tmp_path / "r.csr", tmp_path / "c.der"

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("genrsa", "-out", key, "2048")
    openssl("req", "-new", "-key", key, "-subj", "/CN=v1", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-signkey", key, "-days", "30", "-outform", "DER",
            "-out", out)  # fmt: skip
    der = out.read_bytes()
    assert x509.load_der_x509_certificate(der).version is x509.Version.v1
    facts = cert_key_facts(der)
    assert (facts.spki, facts.not_before, facts.not_after) == _expected(der)


def test_every_truncation_is_a_value_error() -> None:
    der = _cert(datetime.now(UTC), datetime.now(UTC) + timedelta(days=1))
    for end in range(len(der)):
        with pytest.raises(ValueError):
            cert_key_facts(der[:end])


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x30", b"\x30\x80", b"\x30\x85\xff\xff\xff\xff\xff", b"\x30\x84\xff\xff\xff\xff",
     b"\x04\x03abc", b"\x30\x03\x30\x01\x00", b"\x1f" * 40, b"-----BEGIN CERTIFICATE-----"],
)  # fmt: skip
def test_junk_is_a_value_error(junk: bytes) -> None:
    with pytest.raises(ValueError):
        cert_key_facts(junk)


def test_damaged_certificates_give_a_value_error_or_the_bytes_they_hold() -> None:
    """Flipped bytes never raise anything but ValueError, and what is read stays inside."""
    der = _cert(datetime.now(UTC), datetime.now(UTC) + timedelta(days=1))
    rng = random.Random(1958)
    for _ in range(3000):
        damaged = bytearray(der)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            facts = cert_key_facts(bytes(damaged))
        except ValueError:
            continue
        assert facts.spki in bytes(damaged)
