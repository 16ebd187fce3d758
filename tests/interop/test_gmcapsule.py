"""Interop with GmCapsule 0.10.0's misfin module, a second Misfin implementation we did not write
(from PyPI, in .peers/gmcapsule): `misfin-tui send` delivers to it, holds what the trust rules
say to hold, reports its refusals plainly, and our receiver asks it to vouch for its mailbox.

gmcapsule presents its own self-signed TLS certificate, answers 20 with the mailbox
certificate's fingerprint (a different key), keeps a TOFU file of the senders it has seen, and
forwards each letter as an e-mail: our fake sendmail keeps them as files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.certs import forged, write_creds
from helpers.gmcapsule import HOST, Capsule, gmcapsule, gmcapsule_needed
from helpers.profiles import CAFE, SENDER, env_for, make_profile, trust_network
from helpers.raw_tls import c_request, exchange, status_of
from helpers.receivers import running

from misfin_tui.core.identity import load_certificates, load_private_key
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

pytestmark = gmcapsule_needed

TO = f"bob@{HOST}"


def send(
    sender: Profile, capsule: Capsule, body: str, *flags: str, network: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`misfin-tui send` to bob@gmc.test, the connection pointed at the capsule's port."""
    sender.config.set(f"hosts.{HOST}", ("127.0.0.1", capsule.port))
    sender.save_config()
    env = env_for(sender) if network is None else env_for(sender, network)
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "send", "--to", TO, "--no-input", *flags],
        input=body,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def trust_entries(sender: Profile) -> list[dict[str, str]]:
    listed = subprocess.run(
        [sys.executable, "-m", "misfin_tui", "trust", "list", "--json"],
        capture_output=True,
        text=True,
        env=env_for(sender),
        timeout=60,
    )
    entries: list[dict[str, str]] = json.loads(listed.stdout)
    return entries


def test_a_letter_reaches_gmcapsule_intact_and_its_keys_are_pinned(
    tmp_path: Path, sender: Profile
) -> None:
    trust_network(sender)
    body = "Hi Bob,\n\nline two\n=> gemini://example.org/ a link\nÅsa says hej\n"
    with gmcapsule(tmp_path / "capsule") as capsule:
        sent = send(sender, capsule, body, "--subject", "Interop", "--trust-new")
        assert sent.returncode == 0, (sent.stdout, sent.stderr, capsule.log())
        assert "delivered" in sent.stdout
        [mail] = capsule.forwarded()
        assert f"Subject: [misfin] Message from {SENDER}" in mail  # the sender from our cert
        assert "# Interop\n" + body.rstrip() in mail  # every line as written
        entries = trust_entries(sender)
        host = next(e for e in entries if e["kind"] == "host")
        assert host["fingerprint"] == capsule.server_fingerprint
        mailbox = next(e for e in entries if e["kind"] == "mailbox")
        assert (mailbox["name"], mailbox["fingerprint"]) == (TO, capsule.bob_fingerprint)
        again = send(sender, capsule, "A second letter.\n")  # approved: no --trust-new needed
        assert again.returncode == 0, again.stdout
        assert len(capsule.forwarded()) == 2


def test_a_first_contact_on_an_untrusted_network_reaches_nothing(
    tmp_path: Path, sender: Profile
) -> None:
    """gmcapsule asks every client for a certificate; our first probe shows none and still
    learns its key, and the letter is held with that key's fingerprint to compare."""
    with gmcapsule(tmp_path / "capsule") as capsule:
        held = send(sender, capsule, "Hello\n", "--trust-new", network=CAFE)
        assert held.returncode == 3, (held.stdout, held.stderr)
        spaced = " ".join(capsule.server_fingerprint[i : i + 4] for i in range(0, 64, 4))
        assert spaced.upper() in held.stdout
        assert capsule.forwarded() == []
        assert "Fingerprint queried" not in capsule.log()  # no request was written at all


def test_a_rebuilt_gmcapsule_key_holds_the_letter(tmp_path: Path, sender: Profile) -> None:
    trust_network(sender)
    root = tmp_path / "capsule"
    with gmcapsule(root) as capsule:
        assert send(sender, capsule, "First\n", "--trust-new").returncode == 0
        port, old = capsule.port, capsule.server_fingerprint
    shutil.rmtree(root / "certs")  # the operator rebuilt the server without keeping its key
    with gmcapsule(root, port=port) as rebuilt:
        assert rebuilt.server_fingerprint != old
        held = send(sender, rebuilt, "Second\n", "--trust-new")  # consent to new, not changed
        assert held.returncode == 3, (held.stdout, held.stderr)
        assert "different key" in held.stdout and "Nothing was sent" in held.stdout
        assert len(rebuilt.forwarded()) == 1  # only the first letter, from before


def test_gmcapsule_knowing_our_address_under_another_certificate_is_said_plainly(
    tmp_path: Path, sender: Profile
) -> None:
    """gmcapsule pins senders too (~/.misfin-known-senders): another certificate for our address
    gets 63, which is an identity problem to show, not a delivery to retry."""
    trust_network(sender)
    root = tmp_path / "capsule"
    root.mkdir()
    impostor = forged(tmp_path / "impostor", "alice", "alice.test")
    (root / ".misfin-known-senders").write_text(f"{impostor.fingerprint} {SENDER} Alice\n")
    with gmcapsule(root) as capsule:
        refused = send(sender, capsule, "Hello\n", "--trust-new")
        assert refused.returncode == 5, (refused.stdout, refused.stderr)
        assert "knows your address under a different certificate" in refused.stdout
        assert capsule.forwarded() == []


def test_our_receiver_asks_gmcapsule_to_vouch_for_its_mailbox(tmp_path: Path) -> None:
    """A letter signed with bob@gmc.test's own certificate is verified by a blank request to
    gmcapsule (which answers with that certificate's fingerprint); one signed with another
    certificate claiming the same address goes to Quarantine, kept."""
    with gmcapsule(tmp_path / "capsule") as capsule:
        [cert] = load_certificates(capsule.bob)
        key = load_private_key(capsule.bob.with_suffix(".key"))
        bob = write_creds(tmp_path / "bob", "bob", cert, key, address=TO)
        mallory = forged(tmp_path / "mallory", "bob", HOST)
        profile = make_profile(
            tmp_path / "carol", "carol@example.org", hosts={HOST: ("127.0.0.1", capsule.port)}
        )
        with running(profile) as r:
            for creds, subject in ((bob, "Real"), (mallory, "Forged")):
                answer = exchange(
                    r.port, c_request("carol@example.org", f"# {subject}\n"), creds
                ).response
                assert status_of(answer) == 20, answer
            (verified,) = r.wait_for("verified")
            (quarantined,) = r.wait_for("quarantined")
        store = MailStore(profile.database())
        real, fake = store.get(verified["id"]), store.get(quarantined["id"])
        assert real is not None and fake is not None
        assert (real.subject, real.sender, real.trust) == ("Real", TO, "verified")
        assert (fake.subject, fake.folder) == ("Forged", "Quarantine")
        assert "Fingerprint queried by carol@example.org" in capsule.log()


def test_a_changed_self_signed_mailbox_certificate_is_an_alarm_not_a_rotation(
    tmp_path: Path,
) -> None:
    """bob@gmc.test was verified with a certificate gmcapsule's key never signed. When gmcapsule
    later vouches for another one, nothing chains the two: review it, do not move the pin."""
    root = tmp_path / "capsule"
    profile = make_profile(tmp_path / "carol", "carol@example.org")

    def letter_from_bob(capsule: Capsule, subject: str) -> None:
        profile.config.set(f"hosts.{HOST}", ("127.0.0.1", capsule.port))
        profile.save_config()
        [cert] = load_certificates(capsule.bob)
        key = load_private_key(capsule.bob.with_suffix(".key"))
        bob = write_creds(tmp_path / subject, "bob", cert, key, address=TO)
        with running(profile) as r:
            request = c_request("carol@example.org", f"# {subject}\n")
            assert status_of(exchange(r.port, request, bob).response) == 20
            r.wait_for("verified" if subject == "First" else "quarantined")

    with gmcapsule(root) as capsule:
        letter_from_bob(capsule, "First")
        port, old = capsule.port, capsule.bob_fingerprint
    (root / "bob.pem").unlink()  # bob's mailbox gets a new self-signed certificate
    with gmcapsule(root, port=port) as renewed:
        assert renewed.bob_fingerprint != old
        letter_from_bob(renewed, "Second")
    store = MailStore(profile.database())
    second = store.get(store.latest_id())
    assert second is not None and (second.subject, second.folder) == ("Second", "Quarantine")
    assert "different certificate than the one you trusted" in second.trust_reason
    entries = json.loads(
        subprocess.run(
            [sys.executable, "-m", "misfin_tui", "trust", "list", "--json"],
            capture_output=True,
            text=True,
            env=env_for(profile),
            timeout=60,
        ).stdout
    )
    mailbox = next(e for e in entries if e["kind"] == "mailbox")
    assert mailbox["fingerprint"] == old  # still the first certificate, the new one in review
