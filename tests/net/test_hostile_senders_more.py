"""Hostile senders, over real TLS on 127.0.0.1 with certificates made here: what a stranger's
certificate can make the receiver do, store, or print."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers.certs import Creds, write_creds
from helpers.profiles import RECIPIENT, make_profile
from helpers.raw_tls import exchange, letter, status_of
from helpers.receivers import Refusing, running, wait_until

from misfin_tui.core.store import MailStore
from misfin_tui.core.verify import Verifier


def stranger(folder: Path, name: str, *, uid: str = "alice", dns: str = "example.net") -> Creds:
    """A self-signed certificate with exactly the UID and DNS SAN given, unchecked."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, uid),
            x509.NameAttribute(NameOID.COMMON_NAME, "Stranger"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return write_creds(folder, name, cert, key)


@pytest.fixture
def counting() -> Iterator[Refusing]:
    server = Refusing()
    yield server
    server.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_port_in_the_certificates_host_never_aims_a_probe(
    tmp_path: Path, counting: Refusing, host: str
) -> None:
    """A DNS SAN "127.0.0.1:PORT" is no host name: it must not make us connect to PORT (nor
    slip past the rule that an IP literal is never probed), and is refused like any unusable
    address."""
    profile = make_profile(tmp_path / "bob", RECIPIENT)
    check = Verifier.standalone(profile, probe_timeout=3.0)
    creds = stranger(tmp_path / "certs", "porty", dns=f"{host}:{counting.port}")
    with running(profile, verifier=check) as server:
        check.start()
        answer = exchange(server.port, letter("aimed"), creds).response
        assert status_of(answer) == 62, answer
        check.wait_idle(10)
        check.stop()
    assert counting.accepted == 0
    assert MailStore(profile.database()).latest_id() in (None, 0)


def test_a_port_named_by_a_stored_letter_is_not_probed_either(
    tmp_path: Path, counting: Refusing
) -> None:
    """The verifier itself (a recheck, or letters stored before the receiver refused them)."""
    profile = make_profile(tmp_path / "bob", RECIPIENT)
    check = Verifier.standalone(profile, probe_timeout=3.0)
    creds = stranger(tmp_path / "certs", "porty", dns=f"localhost:{counting.port}")
    outcome = check.check(creds.der, RECIPIENT)
    assert outcome.trust == "quarantined" and counting.accepted == 0, outcome
    assert wait_until(lambda: counting.accepted == 0, 0.2)


def test_a_trailing_dot_in_the_host_does_not_escape_the_sender_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host spelt "example.net." names example.net: its letters are stored under the
    address the quota and the limits count ("alice@example.net"), so re-reading the store
    (every minute; here every letter) still counts them."""
    from misfin_tui.core import receiver as receiver_module
    from misfin_tui.core.receiver import Limits

    monkeypatch.setattr(receiver_module._Quota, "REFRESH", -1.0)  # read the store each time
    profile = make_profile(tmp_path / "bob", RECIPIENT, hosts={"example.net": ("127.0.0.1", 9)})
    creds = stranger(tmp_path / "certs", "dotted", dns="example.net.")
    limits = Limits(letters_per_sender=0, letters_per_address=0, sender_quota=2500)
    statuses = []
    with running(profile, limits=limits) as server:
        for n in range(4):
            request = letter(f"q{n}", words=200)
            statuses.append(status_of(exchange(server.port, request, creds).response))
    assert statuses[:2] == [20, 20] and 45 in statuses, statuses
    rows = MailStore(profile.database()).db.connect().execute("SELECT sender FROM letters")
    assert {row[0] for row in rows} == {"alice@example.net"}
