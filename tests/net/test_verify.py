"""Sender verification between two real receivers on 127.0.0.1.

"home" serves example.net (a host CA signs alice@example.net); "bob" serves example.org and maps
example.net to home's port in its [hosts], so its verifier asks home about senders from there.
"""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.certs import CertAndKey, ca_of, forged, identity_creds, signed_by
from helpers.profiles import make_profile, route
from helpers.raw_tls import exchange, free_port, status_of
from helpers.receivers import event_pair, running, verifier_for

from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import cert_pem, key_pem, make_signed
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.trust.model import Origin

BODY = b"\n\n\n# Hello\nFrom alice.\n"
LETTER = b"misfin://bob@example.org\t%d\r\n%s" % (len(BODY), BODY)


def _bob(tmp_path: Path, home_port: int, unverified: str = "quarantine"):
    return make_profile(
        tmp_path / f"bob-{unverified}",
        "bob@example.org",
        hosts={"example.net": ("127.0.0.1", home_port)},
        unverified=unverified,
    )


@pytest.fixture
def home(tmp_path: Path):
    profile = make_profile(tmp_path / "home", "alice@example.net", "carol@example.net", ca=True)
    with running(profile) as r:
        yield r


def _letter(r, letter_id: int):
    return MailStore(r.profile.database()).get(letter_id)


def test_letter_from_a_mailbox_homed_on_the_first_is_verified_by_the_second(
    home, tmp_path: Path
) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    bob_profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"example.net": ("127.0.0.1", home.port)}
    )
    with running(bob_profile) as bob:
        out = exchange(bob.port, LETTER, alice)
        assert status_of(out.response) == 20
        (stored,) = bob.wait_for("stored")
        (verified,) = bob.wait_for("verified")
        assert verified["id"] == stored["id"]
        letter = _letter(bob, stored["id"])
        assert (letter.folder, letter.trust, letter.sender) == (
            "Inbox",
            "verified",
            "alice@example.net",
        )
        assert "example.net" in letter.trust_reason
        trust = TrustStore(bob_profile.database())
        host_pin = trust.host("example.net:1958")
        ca_pem = home.profile.host_ca("example.net")[0].read_bytes()
        assert (
            host_pin is not None and host_pin.cert_der and cert_pem_of(host_pin.cert_der) == ca_pem
        )
        pin = trust.mailbox("alice@example.net")
        assert pin is not None and pin.fingerprint == alice.fingerprint and pin.checked_at
        assert MailStore(home.profile.database()).latest_id() == 0  # the probe stored nothing

        # The second letter is verified from the cache, even with alice's home unreachable.
        home.receiver.stop()
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        second = bob.wait_for("verified", 2)[1]
        assert _letter(bob, second["id"]).trust == "verified"


def cert_pem_of(der: bytes) -> bytes:
    from cryptography import x509

    return cert_pem(x509.load_der_x509_certificate(der))


def test_both_directions_with_different_hosts_mappings(home, tmp_path: Path) -> None:
    """Each receiver maps the other's hostname to its port: letters verify both ways."""
    bob_profile = _bob(tmp_path, home.port)
    with running(bob_profile) as bob:
        home.profile.config.set("hosts.example.org", ("127.0.0.1", bob.port))
        home.profile.save_config()
        bob_creds = identity_creds(bob_profile, "bob@example.org")
        to_alice = b"misfin://alice@example.net\t11\r\n\n\n\nHi alice"
        assert status_of(exchange(home.port, to_alice, bob_creds, sni="example.net").response) == 20
        (verified,) = home.wait_for("verified")
        assert _letter(home, verified["id"]).sender == "bob@example.org"
        alice = identity_creds(home.profile, "alice@example.net")
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        bob.wait_for("verified")


def test_forged_sender_goes_to_quarantine_with_the_reason(home, tmp_path: Path) -> None:
    fake = forged(tmp_path / "certs", "alice", "example.net")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, fake).response) == 20  # nothing is dropped
        (q,) = bob.wait_for("quarantined")
        letter = _letter(bob, q["id"])
        assert letter.folder == "Quarantine" and letter.trust == "quarantined"
        assert "forged" in letter.trust_reason and "example.net" in letter.trust_reason
        assert q["reason"] == letter.trust_reason
        assert not bob.events or all(k != "verified" for k, _ in bob.events)


def test_a_trailing_dot_names_the_same_host_and_meets_its_pin(
    home, tmp_path: Path, receiver_factory
) -> None:
    """The name "example.net." is example.net: a forgery spelled with the absolute name is held
    against example.net's pinned server key, not verified by an impostor under a pin of its own."""
    alice = identity_creds(home.profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home.port)
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        bob.wait_for("verified")
    fake = forged(tmp_path / "certs", "alice", "example.net.")
    impostor = receiver_factory("example.net", answer=f"20 {fake.fingerprint}\r\n".encode())
    route(bob_profile, "example.net", impostor)
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, fake).response) == 20
        (q,) = bob.wait_for("quarantined")
        letter = _letter(bob, q["id"])
        assert letter.folder == "Quarantine" and letter.sender == "alice@example.net"
        assert "different key" in letter.trust_reason
    trust = TrustStore(bob_profile.database())
    assert [pin.hostport for pin in trust.hosts()] == ["example.net:1958"]
    assert trust.mailbox("alice@example.net.") is None


def test_changed_fingerprint_is_quarantined(home, tmp_path: Path) -> None:
    """Signed by the right CA, but home vouches for another certificate (e.g. a stolen old one)."""
    other = signed_by(tmp_path / "certs", home.profile, "alice", "example.net", "alice-old")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, other).response) == 20
        (q,) = bob.wait_for("quarantined")
        letter = _letter(bob, q["id"])
        assert letter.folder == "Quarantine"
        assert "different certificate" in letter.trust_reason


def test_unknown_mailbox_at_the_claimed_home_is_not_real(home, tmp_path: Path) -> None:
    ghost = signed_by(tmp_path / "certs", home.profile, "ghost", "example.net", "ghost")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, ghost).response) == 20
        (q,) = bob.wait_for("quarantined")
        assert "does not exist" in _letter(bob, q["id"]).trust_reason


def test_rotated_certificate_under_the_same_host_ca(home, tmp_path: Path) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        bob.wait_for("verified")
        # alice's server issues her a new certificate under the same CA and serves it.
        port = home.port
        home.receiver.stop()
        ca_cert, ca_key = ca_of(home.profile, "example.net")
        cert, key = make_signed("alice", "example.net", "Alice", ca_cert, ca_key)
        folder = home.profile.identity("alice@example.net").cert_path.parent
        (folder / "cert.pem").write_bytes(cert_pem(cert))
        (folder / "key.pem").write_bytes(key_pem(key))
        (folder / "chain.pem").write_bytes(cert_pem(cert) + cert_pem(ca_cert))
        with running(home.profile, listen_port=port):
            new = identity_creds(home.profile, "alice@example.net")
            assert new.fingerprint != alice.fingerprint
            assert status_of(exchange(bob.port, LETTER, new).response) == 20
            second = bob.wait_for("verified", 2)[1]
            letter = _letter(bob, second["id"])
            assert (letter.folder, letter.trust) == ("Inbox", "rotated")
            assert "certificate changed" in letter.trust_reason
        pin = TrustStore(bob.profile.database()).mailbox("alice@example.net")
        assert pin.fingerprint == new.fingerprint


def test_unreachable_home_stays_pending_and_resumes_after_restart(tmp_path: Path) -> None:
    home_port = free_port()  # nothing listens here yet
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home_port)
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (stored,) = bob.wait_for("stored")
        bob.idle()
        letter = _letter(bob, stored["id"])
        assert (letter.folder, letter.trust) == ("Quarantine", "pending")  # waits aside
        assert "could not reach example.net" in letter.trust_reason
        assert not [k for k, _ in bob.events if k == "quarantined"]
    with running(home_profile, listen_port=home_port), running(bob_profile) as bob2:
        (verified,) = bob2.wait_for("verified")
        assert verified["id"] == stored["id"]
        assert _letter(bob2, stored["id"]).trust == "verified"


def test_blank_requests_never_start_a_verification(home, tmp_path: Path) -> None:
    fake = forged(tmp_path / "certs", "alice", "example.net")
    bob_profile = _bob(tmp_path, home.port)
    with running(bob_profile) as bob:
        for payload in (b"misfin://bob@example.org \r\n", b"misfin://bob@example.org\t0\r\n"):
            assert status_of(exchange(bob.port, payload, fake).response) == 20
        bob.idle()
        assert bob.events == []
        assert TrustStore(bob_profile.database()).hosts() == []  # nobody was asked
        assert MailStore(bob_profile.database()).latest_id() == 0


@pytest.fixture
def rejecting(home, tmp_path: Path):
    with running(_bob(tmp_path, home.port, "reject")) as bob:
        yield bob


def test_reject_mode_answers_62_for_a_forged_sender(rejecting, tmp_path: Path) -> None:
    fake = forged(tmp_path / "certs", "alice", "example.net")
    assert status_of(exchange(rejecting.port, LETTER, fake).response) == 62
    assert MailStore(rejecting.profile.database()).latest_id() == 0


def test_reject_mode_answers_63_for_a_changed_fingerprint(rejecting, home, tmp_path: Path) -> None:
    other = signed_by(tmp_path / "certs", home.profile, "alice", "example.net", "alice-old")
    out = exchange(rejecting.port, LETTER, other)
    assert status_of(out.response) == 63
    assert MailStore(rejecting.profile.database()).latest_id() == 0


def test_reject_mode_stores_a_verified_letter(rejecting, home) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    assert status_of(exchange(rejecting.port, LETTER, alice).response) == 20
    (verified,) = rejecting.wait_for("verified")
    assert _letter(rejecting, verified["id"]).trust == "verified"


def test_reject_mode_answers_40_when_the_home_cannot_be_reached(tmp_path: Path) -> None:
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    with running(_bob(tmp_path, free_port(), "reject")) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 40
        assert MailStore(bob.profile.database()).latest_id() == 0


def test_self_signed_sender_is_verified_against_its_own_certificate(tmp_path: Path) -> None:
    solo = make_profile(tmp_path / "solo", "dave@solo.example")
    with running(solo) as solo_r:
        bob_profile = make_profile(
            tmp_path / "bob", "bob@example.org", hosts={"solo.example": ("127.0.0.1", solo_r.port)}
        )
        with running(bob_profile) as bob:
            dave = identity_creds(solo, "dave@solo.example")
            assert status_of(exchange(bob.port, LETTER, dave).response) == 20
            (verified,) = bob.wait_for("verified")
            assert _letter(bob, verified["id"]).trust == "verified"


def test_stop_does_not_wait_for_a_probe_in_flight(tmp_path: Path) -> None:
    """The sender's server accepts TCP but never speaks TLS: the probe hangs until its timeout."""
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        with running(_bob(tmp_path, black_hole.getsockname()[1])) as bob:
            assert status_of(exchange(bob.port, LETTER, alice).response) == 20
            (stored,) = bob.wait_for("stored")
            time.sleep(0.5)  # the probe is now waiting on the handshake
            started = time.monotonic()
            bob.receiver.stop()
            assert time.monotonic() - started < 4
            assert _letter(bob, stored["id"]).trust == "pending"


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"31 alice@elsewhere.example\r\n", "redirected"),
        (b"30 alice@elsewhere.example\r\n", "redirected"),
        (b"20 not-a-fingerprint\r\n", "without a valid fingerprint"),
        (b"61 go away\r\n", "would not confirm"),
    ],
)
def test_sender_server_answers_that_fail_verification(
    tmp_path: Path, receiver_factory, answer: bytes, words: str
) -> None:
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    ca_cert, ca_key = home_profile.host_ca("example.net")
    stub = receiver_factory(server_cert=CertAndKey.load(ca_cert, ca_key), answer=answer)
    with running(_bob(tmp_path, stub.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (q,) = bob.wait_for("quarantined")
        assert words in _letter(bob, q["id"]).trust_reason


def test_slow_down_from_the_sender_server_leaves_the_letter_pending(
    tmp_path: Path, receiver_factory
) -> None:
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    ca_cert, ca_key = home_profile.host_ca("example.net")
    stub = receiver_factory(server_cert=CertAndKey.load(ca_cert, ca_key), answer=b"44 30\r\n")
    with running(_bob(tmp_path, stub.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (stored,) = bob.wait_for("stored")
        bob.idle()
        letter = _letter(bob, stored["id"])
        assert (letter.folder, letter.trust) == ("Quarantine", "pending")  # waits aside
        assert "44" in letter.trust_reason


def test_cached_verification_expires_after_revalidate_days(home, tmp_path: Path) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        bob.wait_for("verified")
        with bob.profile.database().transaction() as conn:  # 31 days pass (revalidate_days = 30)
            old = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
            conn.execute("UPDATE mailboxes SET checked_at = ?", (old,))
        home.receiver.stop()  # so a re-check cannot succeed: the cache alone must not do
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        second = bob.wait_for("stored", 2)[1]
        bob.idle()
        letter = _letter(bob, second["id"])
        assert letter.trust == "pending" and "could not reach" in letter.trust_reason


def test_network_failure_is_retried_until_the_sender_server_answers(tmp_path: Path) -> None:
    home_port = free_port()
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home_port)
    verdicts: list[tuple[str, dict]] = []
    verifier = verifier_for(
        bob_profile, emit=lambda event: verdicts.append(event_pair(event)), retry_delays=(0.3,) * 20
    )
    verifier.start()
    try:
        with running(bob_profile, verifier=verifier) as bob:
            assert status_of(exchange(bob.port, LETTER, alice).response) == 20
            (stored,) = bob.wait_for("stored")
            time.sleep(0.5)
            assert _letter(bob, stored["id"]).trust == "pending"
            with running(home_profile, listen_port=home_port):
                deadline = time.monotonic() + 20
                while not verdicts and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert [k for k, _ in verdicts] == ["verified"]
            assert _letter(bob, stored["id"]).trust == "verified"
    finally:
        verifier.stop()


def test_probes_per_host_are_limited_so_forgeries_cannot_aim_us(home, tmp_path: Path) -> None:
    verifier = verifier_for(_bob(tmp_path, home.port), probes_per_host=(1, 60.0))
    first = forged(tmp_path / "certs", "mallory", "example.net", "m1")
    second = forged(tmp_path / "certs", "eve", "example.net", "m2")
    assert verifier.check(first.der, "bob@example.org").trust == "quarantined"
    outcome = verifier.check(second.der, "bob@example.org")
    assert outcome.trust == "pending" and "too many checks sent to example.net" in outcome.reason


def test_a_forgery_does_not_cost_the_real_sender_its_cached_verdict(home, tmp_path: Path) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    fake = forged(tmp_path / "certs", "alice", "example.net")
    with running(_bob(tmp_path, home.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        bob.wait_for("verified")
        assert status_of(exchange(bob.port, LETTER, fake).response) == 20
        (q,) = bob.wait_for("quarantined")
        assert "it may be forged" in q["reason"] and "did not sign" in q["reason"]
        home.receiver.stop()  # from now on only the cache can verify alice
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        assert len(bob.wait_for("verified", 2)) == 2


def test_forged_sender_of_a_self_signed_mailbox(tmp_path: Path) -> None:
    solo = make_profile(tmp_path / "solo", "dave@solo.example")
    fake = forged(tmp_path / "certs", "dave", "solo.example")
    with running(solo) as solo_r:
        bob_profile = make_profile(
            tmp_path / "bob", "bob@example.org", hosts={"solo.example": ("127.0.0.1", solo_r.port)}
        )
        with running(bob_profile) as bob:
            assert status_of(exchange(bob.port, LETTER, fake).response) == 20
            (q,) = bob.wait_for("quarantined")
            assert "forged" in _letter(bob, q["id"]).trust_reason


def test_server_answering_with_its_own_tls_fingerprint_does_not_vouch(
    tmp_path: Path, receiver_factory
) -> None:
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    ca_cert, ca_key = home_profile.host_ca("example.net")
    ca_fp = fingerprint(ssl.PEM_cert_to_DER_cert(ca_cert.read_text()))
    stub = receiver_factory(
        server_cert=CertAndKey.load(ca_cert, ca_key), answer=f"20 {ca_fp}\r\n".encode()
    )
    with running(_bob(tmp_path, stub.port)) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (q,) = bob.wait_for("quarantined")
        assert "its own server certificate's fingerprint" in _letter(bob, q["id"]).trust_reason


def _pin_a_stale_key(profile, tmp_path: Path) -> TrustStore:
    """Bob approved another key for example.net earlier: home's real one is not trusted."""
    from misfin_tui.core.client import presented_cert
    from misfin_tui.core.network import Networks

    trust = TrustStore(profile.database())
    stale = forged(tmp_path / "certs", "old", "example.net", "old-server")
    network = Networks(profile.database()).current()
    trust.pin_host("example.net:1958", presented_cert(stale.der), network, Origin.APPROVED)
    return trust


def test_recheck_after_the_person_fixes_the_pin_moves_the_letter_back(home, tmp_path: Path) -> None:

    alice = identity_creds(home.profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home.port)
    trust = _pin_a_stale_key(bob_profile, tmp_path)
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (q,) = bob.wait_for("quarantined")
        assert "different key from the one you trust" in _letter(bob, q["id"]).trust_reason
        assert trust.forget_host("example.net:1958")  # the person checked and forgot the old key
        assert bob.receiver.verifier.recheck(q["id"])
        (verified,) = bob.wait_for("verified")
        letter = _letter(bob, verified["id"])
        assert (letter.id, letter.folder, letter.trust) == (q["id"], "Inbox", "verified")


def test_a_changed_server_key_seen_while_verifying_shows_in_trust_and_holds_sends(
    home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The verifier sees example.net present another key than the approved pin: the letter is
    quarantined, the trust store keeps that key as evidence of a change (the pin unchanged),
    `trust list` says changed, and a letter to example.net is held, not sent."""
    import json

    from misfin_tui.cli.main import main
    from misfin_tui.core.trust.policy import TrustPolicy

    alice = identity_creds(home.profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home.port)
    trust = _pin_a_stale_key(bob_profile, tmp_path)
    stale = trust.host("example.net:1958")
    assert stale is not None and stale.changed is None
    ca_der = ssl.PEM_cert_to_DER_cert(home.profile.host_ca("example.net")[0].read_text())
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (q,) = bob.wait_for("quarantined")
        letter = _letter(bob, q["id"])
        assert letter.folder == "Quarantine"
        assert "different key from the one you trust" in letter.trust_reason

    pin = trust.host("example.net:1958")
    assert pin is not None and pin.changed is not None
    assert (pin.spki, pin.fingerprint, pin.state, pin.origin, pin.approved) == (
        stale.spki,
        stale.fingerprint,
        stale.state,
        Origin.APPROVED,
        True,
    )  # evidence beside the pin, never a new pin
    assert pin.changed.presented.fingerprint == fingerprint(ca_der)
    assert pin.changed.by == "verifying alice@example.net"
    (seen,) = [h for h in trust.history(subject="example.net:1958") if h.event == "changed-seen"]
    assert "not approved" in seen.detail

    cli = ["--profile", str(bob_profile.config_dir)]
    assert main([*cli, "trust", "list"]) == 0
    listed = capsys.readouterr().out
    assert "host     changed   example.net:1958" in listed
    assert "presented another key (SHA-256)" in listed
    assert main([*cli, "trust", "list", "--json"]) == 0
    (host,) = [e for e in json.loads(capsys.readouterr().out) if e["kind"] == "host"]
    assert host["state"] == "pinned" and host["fingerprint"] == stale.fingerprint
    assert host["changed"]["fingerprint"] == fingerprint(ca_der)
    assert host["changed"]["seen_by"] == "verifying alice@example.net"
    assert main([*cli, "trust", "show", "example.net"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("host example.net:1958: changed\n")
    assert "while verifying alice@example.net" in shown and "changed-seen" in shown

    # Outgoing mail to that host is held at the changed-key question; nothing reaches it.
    body = tmp_path / "reply.txt"
    body.write_text("Is that you?\n")
    before = MailStore(home.profile.database()).latest_id()
    sent = [*cli, "send", "--to", "alice@example.net", "--no-input", "--body-file", str(body)]
    assert main(sent) == 3
    capsys.readouterr()
    assert MailStore(home.profile.database()).latest_id() == before
    assert main([*cli, "outbox", "list", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["question"]["ask"] == "changed"
    after = trust.host("example.net:1958")
    assert after is not None and after.spki == stale.spki and after.changed is not None

    # Keeping the pinned key sets the evidence aside; the letter still waits, and the next
    # try meets the same question (and records the key again).
    policy = TrustPolicy(trust, "ask")
    assert main([*cli, "trust", "keep", "example.net"]) == 0
    assert "kept the key you trust" in capsys.readouterr().out
    kept = trust.host("example.net:1958")
    assert kept is not None and kept.changed is None and kept.spki == stale.spki
    assert main([*cli, "trust", "keep", "example.net"]) == 1
    capsys.readouterr()
    assert not policy.keep("example.net:1958")


def test_quarantine_is_checked_again_by_mail_recheck_and_after_trust_verify(
    home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No receiver running: the commands check with a verifier of their own."""
    from misfin_tui.cli.main import main

    alice = identity_creds(home.profile, "alice@example.net")
    bob_profile = _bob(tmp_path, home.port)
    _pin_a_stale_key(bob_profile, tmp_path)
    with running(bob_profile) as bob:
        assert status_of(exchange(bob.port, LETTER, alice).response) == 20
        (q,) = bob.wait_for("quarantined")
    cli = ["--profile", str(bob_profile.config_dir)]
    assert main([*cli, "mail", "recheck", str(q["id"])]) == 5  # the key is still not reviewed
    out = capsys.readouterr().out
    assert f"letter {q['id']} from alice@example.net: still in Quarantine" in out
    assert "different key from the one you trust" in out
    assert main([*cli, "mail", "recheck", "999"]) == 1
    assert "no letter 999" in capsys.readouterr().err

    ca_pem = home.profile.host_ca("example.net")[0].read_text()
    new_key = fingerprint(ssl.PEM_cert_to_DER_cert(ca_pem))
    trust = TrustStore(bob_profile.database())
    seen = trust.host("example.net:1958")
    assert seen is not None and seen.changed is not None
    assert seen.changed.presented.fingerprint == new_key
    assert main([*cli, "trust", "verify", "example.net:1958", new_key]) == 0
    said = capsys.readouterr().out
    assert "1 letter(s) in Quarantine from example.net:1958 checked again, 1 moved" in said
    replaced = trust.host("example.net:1958")
    assert replaced is not None and replaced.fingerprint == new_key
    assert replaced.changed is None  # the paste settled it: no change left to review
    letter = MailStore(bob_profile.database()).get(q["id"])
    assert (letter.folder, letter.trust) == ("Inbox", "verified")
    assert main([*cli, "mail", "recheck", str(q["id"])]) == 0
    assert f"letter {q['id']} from alice@example.net: verified, in Inbox" in capsys.readouterr().out


def test_vector_19_known_sender_with_another_certificate_gets_63(
    rejecting, home, tmp_path: Path
) -> None:
    alice = identity_creds(home.profile, "alice@example.net")
    assert status_of(exchange(rejecting.port, LETTER, alice).response) == 20  # now pinned
    fake = forged(tmp_path / "certs", "alice", "example.net")
    out = exchange(rejecting.port, LETTER, fake)
    assert status_of(out.response) == 63 and b"forged" in out.response
    assert MailStore(rejecting.profile.database()).latest_id() == 1
