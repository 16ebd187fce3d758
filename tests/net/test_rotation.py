"""Key rotation, the whole ceremony, over real TLS on 127.0.0.1 (issue 12).

Two profiles, each with its own engine and receiver: alice@a.test (with a host CA) and
bob@b.test (self-signed), `[hosts]` routing a.test and b.test to the receivers' ports. Alice
writes to Bob (verified), rotates, the notice reaches Bob, her next letter with the new
certificate is verified with no alarm, a letter with the old certificate lands in Quarantine
as revoked, and re-validation notices a server key that changed behind a pin.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.certs import forged
from helpers.profiles import env_for, make_profile, trust_network
from helpers.raw_tls import exchange, status_of

from misfin_tui.cli.render import rotation_lines
from misfin_tui.core.address import Address
from misfin_tui.core.client import blank_request
from misfin_tui.core.engine import Engine
from misfin_tui.core.fingerprint import grouped
from misfin_tui.core.notice import Notice, Reason
from misfin_tui.core.outbox.model import OutboxItem, State
from misfin_tui.core.revalidate import Result
from misfin_tui.core.store import StoredLetter
from misfin_tui.core.trust.model import Answer, Ask, Choice, MailboxState, Policy, Question

ALICE, BOB = "alice@a.test", "bob@b.test"


@dataclass
class Recorder:
    """An asker that answers from a script (by Ask) and remembers every question."""

    answers: dict[Ask, Answer] = field(default_factory=dict)
    asked: list[Question] = field(default_factory=list)

    async def ask(self, question: Question, problem: str) -> Answer | None:
        self.asked.append(question)
        return self.answers.get(question.ask)

    async def tell(self, item: OutboxItem) -> None:
        return None


@dataclass
class World:
    alice: Engine
    bob: Engine

    def send(
        self,
        engine: Engine,
        to: str,
        text: str,
        *,
        present: str = "",
        asker: Recorder | None = None,
    ) -> list[OutboxItem]:
        letter = engine.outbox.enqueue(
            text, [Address.parse(to)], subject=text.split()[0], present=present
        )
        ids = [item.id for item in engine.outbox.items(letter)]
        return self.deliver(engine, ids, asker)

    def deliver(
        self, engine: Engine, ids: list[int], asker: Recorder | None = None
    ) -> list[OutboxItem]:
        run = engine.delivery.run(ids, asker or Recorder(), policy=Policy.ACCEPT_NEW)
        return asyncio.run(run)

    def last_from(self, engine: Engine, sender: str) -> StoredLetter:
        assert engine.receiver is not None and engine.receiver.verifier is not None
        assert engine.receiver.verifier.wait_idle(20)
        latest = None
        for folder in ("Inbox", "Quarantine"):
            for summary in engine.store.summaries(folder):
                if summary.sender.lower() == sender and (latest is None or summary.id > latest):
                    latest = summary.id
        assert latest is not None, f"nothing from {sender}"
        letter = engine.store.get(latest)
        assert letter is not None
        return letter


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    alice = Engine(make_profile(tmp_path / "alice", ALICE, ca=True))
    bob = Engine(make_profile(tmp_path / "bob", BOB))
    try:
        a_port = alice.start_receiver(("127.0.0.1", 0))[1]
        b_port = bob.start_receiver(("127.0.0.1", 0))[1]
        for engine in (alice, bob):
            engine.profile.config.set("hosts.a.test", ("127.0.0.1", a_port))
            engine.profile.config.set("hosts.b.test", ("127.0.0.1", b_port))
            engine.profile.save_config()
            trust_network(engine.profile)
        yield World(alice, bob)
    finally:
        alice.close()
        bob.close()


def delivered(items: list[OutboxItem]) -> bool:
    return bool(items) and all(item.state is State.DELIVERED for item in items)


def test_the_whole_ceremony(world: World) -> None:
    alice, bob = world.alice, world.bob
    old_fp = alice.profile.identity(ALICE).fingerprint

    # 1. Alice writes to Bob; Bob's receiver verifies her with a.test.
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    first = world.last_from(bob, ALICE)
    assert (first.folder, first.trust) == ("Inbox", "verified"), first.trust_reason
    assert bob.trust.mailbox(ALICE).fingerprint == old_fp

    # 2. Alice rotates: a new certificate by the same host CA, served at once, old one retired.
    rotation = alice.rotate(ALICE, Reason.ROUTINE)
    (rotated,) = rotation.rotated
    new_fp = alice.profile.identity(ALICE).fingerprint
    assert new_fp == rotated.new.fingerprint != old_fp
    assert rotated.old.fingerprint == old_fp
    assert rotated.new.issuer_fingerprint == rotated.old.issuer_fingerprint
    assert rotation.recipients == [BOB]
    bob_identity = bob.profile.identity(BOB)
    _, answer = asyncio.run(
        blank_request(Address.parse(ALICE), bob_identity, hosts=bob.profile.config.hosts)
    )
    assert (answer.status, answer.meta) == (20, new_fp)  # no restart needed

    # 3. The notice goes through the outbox, signed with the old certificate, and reaches Bob.
    items = world.deliver(alice, rotation.items)
    assert delivered(items), [(i.state, i.reason) for i in items]
    notice_letter = world.last_from(bob, ALICE)
    assert notice_letter.fingerprint == old_fp  # it came with the old certificate
    assert notice_letter.folder == "Inbox"
    assert "Key-change notice" in notice_letter.trust_reason
    revoked = bob.trust.revocation(ALICE, old_fp)
    assert revoked is not None and revoked.announced == new_fp and revoked.why == "routine"
    pin = bob.trust.mailbox(ALICE)
    assert pin.fingerprint == old_fp  # the successor is not trusted from the notice alone
    assert "revoked" in [h.event for h in bob.trust.history(subject=ALICE)]

    # 4. Her next letter, with the new certificate, is verified with no alarm.
    assert delivered(world.send(alice, BOB, "Second letter"))
    second = world.last_from(bob, ALICE)
    assert second.fingerprint == new_fp
    assert second.folder == "Inbox" and second.trust in ("verified", "rotated"), second.trust_reason
    pin = bob.trust.mailbox(ALICE)
    assert (pin.fingerprint, pin.state) == (new_fp, MailboxState.PINNED)

    # 5. A letter with the old certificate (a thief's) lands in Quarantine as revoked.
    assert delivered(world.send(alice, BOB, "Stolen certificate", present=old_fp))
    stolen = world.last_from(bob, ALICE)
    assert stolen.fingerprint == old_fp
    assert (stolen.folder, stolen.trust) == ("Quarantine", "quarantined")
    assert stolen.trust_reason.startswith("revoked:"), stolen.trust_reason
    assert bob.trust.mailbox(ALICE).fingerprint == new_fp  # nothing moved back


def test_a_thiefs_notice_retires_the_stolen_certificate_but_its_letter_gets_no_check_mark(
    world: World, tmp_path: Path
) -> None:
    """Alice rotated because her key was stolen; before her own notice reaches Bob, the thief
    sends one, signed with the stolen (still pinned) certificate and naming the thief's
    successor. Retiring the stolen certificate is right whoever asks, but a.test vouches for
    Alice's real successor, not the one named: the letter's words are not vouched for."""
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    stolen = alice.profile.identity(ALICE).fingerprint
    alice.rotate(ALICE, Reason.STOLEN)  # her own notices are not sent yet
    mallory = forged(tmp_path / "certs", "alice", "a.test", "mallory")
    notice = Notice(ALICE, stolen, mallory.fingerprint, Reason.ROUTINE, "2026-01-02T03:04:05Z")
    text = f"Urgent\nPlease wire the money today.\n\n{notice.line()}\n"
    assert delivered(world.send(alice, BOB, text, present=stolen))
    letter = world.last_from(bob, ALICE)
    assert letter.fingerprint == stolen
    assert (letter.folder, letter.trust) == ("Quarantine", "quarantined"), letter.trust_reason
    assert "is retired and never accepted again" in letter.trust_reason
    assert "does not confirm that new certificate" in letter.trust_reason
    assert bob.trust.revocation(ALICE, stolen) is not None  # retired all the same
    assert bob.trust.mailbox(ALICE).fingerprint == stolen  # the thief's successor: not pinned


def test_a_stranger_cannot_verify_a_letter_by_naming_the_pinned_certificate_as_new(
    world: World, tmp_path: Path
) -> None:
    """A forger's own certificate for alice@a.test, with a notice retiring *itself* in favour of
    the certificate Bob pinned: nothing it says is signed by that certificate, so nothing moves
    and the letter is not verified."""
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    pinned = alice.profile.identity(ALICE).fingerprint
    mallory = forged(tmp_path / "certs", "alice", "a.test", "mallory")
    notice = Notice(ALICE, mallory.fingerprint, pinned, Reason.ROUTINE, "2026-01-02T03:04:05Z")
    body = f"\n\n\n# Wire the money\nIt is really me.\n\n{notice.line()}\n".encode()
    port = bob.profile.config.hosts["b.test"][1]
    request = b"misfin://%s\t%d\r\n%s" % (BOB.encode(), len(body), body)
    assert status_of(exchange(port, request, mallory).response) == 20
    letter = world.last_from(bob, ALICE)
    assert letter.fingerprint == mallory.fingerprint
    assert letter.trust != "verified" and letter.folder == "Quarantine", letter.trust_reason
    assert "never pinned" in letter.trust_reason
    assert bob.trust.mailbox(ALICE).fingerprint == pinned
    assert bob.trust.revocation(ALICE, mallory.fingerprint) is None


def test_revalidation_notices_a_server_key_changed_behind_a_pin(world: World) -> None:
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    checks = asyncio.run(alice.revalidate())
    assert [(c.kind, c.name, c.result) for c in checks] == [("host", "b.test:1958", Result.MATCH)]
    checks = asyncio.run(bob.revalidate())
    assert [(c.kind, c.name, c.result) for c in checks] == [("mailbox", ALICE, Result.MATCH)]

    # Bob's server gets a new key without telling anyone (rebuilt, or taken over).
    folder = bob.profile.identity(BOB).cert_path.parent
    shutil.rmtree(folder)
    bob.profile.create_identity(Address.parse(BOB), "Bob")
    assert bob.receiver is not None
    bob.receiver.reload_identities()

    checks = asyncio.run(alice.revalidate())
    (check,) = checks
    assert (check.name, check.result) == ("b.test:1958", Result.CHANGED)
    assert check.seen != check.expected
    history = [h.event for h in alice.trust.history(subject="b.test:1958")]
    assert history[:3] == ["revalidate-changed", "changed-seen", "revalidated"]
    pin = alice.trust.host("b.test:1958")
    assert pin.fingerprint == check.expected  # never re-pinned
    assert pin.changed is not None and pin.changed.presented.fingerprint == check.seen
    assert pin.changed.by == "re-validating"  # evidence for Trust, through the one policy

    # The alarm is raised before the next send to that host; nothing is sent.
    asker = Recorder()
    (item,) = world.send(alice, BOB, "After the change", asker=asker)
    assert item.state is State.DECISION
    assert [q.ask for q in asker.asked] == [Ask.CHANGED]
    assert Choice.TRUST not in asker.asked[0].choices  # no notice: only a paste replaces it


def test_revalidation_keeps_the_server_key_that_vouched_even_after_it_expired(
    world: World,
) -> None:
    """A key learned while verifying expires when no letter uses it; re-validating the sender
    learns it again, so a later check compares against it instead of taking any key."""
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    learned = bob.trust.host("a.test:1958")
    assert learned is not None and learned.origin == "learned"
    assert bob.trust.verify_mailbox(ALICE, bob.trust.mailbox(ALICE).fingerprint)  # a person did
    assert bob.trust.expire_learned("2999-01-01T00:00:00Z") == 1  # as if 90 quiet days passed
    assert bob.trust.host("a.test:1958") is None
    checks = asyncio.run(bob.revalidate())
    assert [(c.name, c.result) for c in checks] == [(ALICE, Result.MATCH)]
    again = bob.trust.host("a.test:1958")
    assert again is not None and again.spki == learned.spki and not again.origin.approves

    # Alice's server now shows another key: the sender's check no longer passes.
    folder = alice.profile.identity(ALICE).cert_path.parent
    shutil.rmtree(folder)
    alice.profile.create_identity(Address.parse(ALICE), "Alice")
    assert alice.receiver is not None
    alice.receiver.reload_identities()
    (check,) = asyncio.run(bob.revalidate())
    assert check.result is Result.CHANGED
    assert bob.trust.host("a.test:1958").spki == learned.spki  # nothing re-learned


def test_revalidation_waits_for_a_trusted_network(world: World, network) -> None:
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    network("somewhere-else")  # a network nobody marked as trusted
    assert asyncio.run(alice.revalidate(due_only=True)) == []
    assert asyncio.run(alice.revalidate()) != []  # `trust revalidate` asks for it: it runs


def test_a_stolen_host_ca_is_a_changed_server_key_with_the_notice_as_evidence(
    world: World,
) -> None:
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    assert delivered(world.send(bob, ALICE, "Hello Alice"))  # Bob approves a.test's key
    old_spki = bob.trust.host("a.test:1958").spki

    rotation = alice.rotate(ALICE, Reason.STOLEN, ca=True)
    (rotated,) = rotation.rotated
    assert rotated.new.issuer_fingerprint != rotated.old.issuer_fingerprint
    said = "\n".join(rotation_lines(rotation))  # what `identity rotate --ca` prints
    assert grouped(rotated.new.issuer_fingerprint or "") in said
    assert delivered(world.deliver(alice, rotation.items))
    notice_letter = world.last_from(bob, ALICE)
    assert "server key changed as well" in notice_letter.trust_reason
    assert bob.trust.revocation(ALICE, rotated.old.fingerprint) is not None
    assert bob.trust.host("a.test:1958").spki == old_spki  # never silently

    # Bob writes again: a changed server key, the notice as evidence, and Bob decides.
    asker = Recorder()
    (item,) = world.send(bob, ALICE, "Is this you", asker=asker)
    assert item.state is State.DECISION
    (question,) = asker.asked
    assert question.ask is Ask.CHANGED and "key-change notice" in question.reason
    assert question.presented is not None  # the fingerprint Alice's rotate printed first
    assert question.presented.fingerprint == rotated.new.issuer_fingerprint
    assert Choice.TRUST in question.choices  # an explicit accept, or a paste
    asker = Recorder({Ask.CHANGED: Answer(Choice.TRUST)})
    (item,) = asyncio.run(bob.delivery.ask_again(item.id, asker))
    assert item.state is State.DELIVERED, item.reason
    assert bob.trust.host("a.test:1958").spki != old_spki
    assert "accepted-announced" in [h.event for h in bob.trust.history(subject="a.test:1958")]


@pytest.mark.parametrize("how", ["outbox retry --verify", "trust verify"])
def test_a_pasted_new_server_key_takes_the_mailbox_along_as_a_rotation(
    world: World, how: str
) -> None:
    """Alice's host CA was stolen and rotated; Bob approves the new server key by pasting its
    fingerprint. The new mailbox certificate that key issued is a rotation under the same
    server, not an alarm against the stolen key, and Bob's next letter is not paused."""
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    assert delivered(world.send(bob, ALICE, "Hello Alice"))
    old_spki = bob.trust.host("a.test:1958").spki
    pin = bob.trust.mailbox(ALICE)
    assert pin is not None and pin.issuer_spki == old_spki

    rotation = alice.rotate(ALICE, Reason.STOLEN, ca=True)
    (rotated,) = rotation.rotated
    assert delivered(world.deliver(alice, rotation.items))
    world.last_from(bob, ALICE)

    asker = Recorder()
    (item,) = world.send(bob, ALICE, "Is this you", asker=asker)
    assert item.state is State.DECISION
    (question,) = asker.asked
    assert question.ask is Ask.CHANGED and question.presented is not None
    new_server_fp = question.presented.fingerprint  # what Alice reads out to Bob by phone
    if how == "trust verify":
        check = asyncio.run(bob.verify_server("a.test:1958", grouped(new_server_fp)))
        assert check.ok and check.released == 1, check.detail
        assert "queued again" in check.detail
        assert bob.outbox.item(item.id).state is State.QUEUED
        (item,) = world.deliver(bob, [item.id])
    else:
        bob.outbox.decide(item.id, Answer(Choice.VERIFY, pasted=new_server_fp))
        (item,) = world.deliver(bob, [item.id])
    assert item.state is State.DELIVERED
    assert "new key issued by the same server key" in item.reason, item.reason
    assert "different key" not in item.reason
    new_spki = bob.trust.host("a.test:1958").spki
    assert new_spki != old_spki
    pin = bob.trust.mailbox(ALICE)
    assert pin is not None and pin.state is MailboxState.PINNED
    assert pin.fingerprint == rotated.new.fingerprint and pin.issuer_spki == new_spki
    shown = json.loads(cli(bob, "trust", "show", ALICE, "--json").stdout)
    assert shown["issuer_spki"] == new_spki != old_spki

    asker = Recorder()
    (item,) = world.send(bob, ALICE, "Next letter", asker=asker)
    assert item.state is State.DELIVERED and asker.asked == [], item.reason
    assert item.reason == "delivered"


def test_a_mailbox_that_answers_52_is_marked_gone_and_never_retried(
    world: World, tmp_path: Path
) -> None:
    alice = world.alice
    # Bob's receiver answers 51 for unknown mailboxes; a 52 comes from a server that knew it.
    # Our receiver has no list of removed mailboxes, so a tiny TLS server answers 52 here.
    import socket
    import ssl
    import threading

    from helpers.certs import make_server_cert, write_creds

    server = make_server_cert("gone.test")
    creds = write_creds(tmp_path, "gone", server.cert, server.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(creds.cert, creds.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    served = []

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    data = tls.recv(4096)
                    if data:
                        served.append(data)
                        tls.sendall(b"52 removed\r\n")
            except (OSError, ssl.SSLError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    alice.profile.config.set("hosts.gone.test", ("127.0.0.1", port))
    try:
        (item,) = world.send(alice, "old@gone.test", "Are you there")
        assert item.state is State.FAILED and "gone" in item.reason
        assert alice.trust.mailbox("old@gone.test").state is MailboxState.GONE
        assert alice.trust.blocked("old@gone.test") is not None
        (again,) = world.send(alice, "old@gone.test", "Still there")
        assert again.state is State.FAILED  # not even tried: nothing reached the server
        assert len(served) == 1
    finally:
        listener.close()
        thread.join(timeout=5)


# -- the command line, as a person runs it (a child process) ------------------------------------


def cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    """`misfin-tui ARGS` on the engine's profile, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_for(engine.profile),
    )


def test_identity_rotate_from_the_command_line_while_the_receiver_runs(world: World) -> None:
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    old_fp = alice.profile.identity(ALICE).fingerprint

    # Another process rotates: the running receiver notices the identities folder changed.
    done = cli(alice, "identity", "rotate", ALICE, "--reason", "stolen", "--no-input", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (rotated,) = report["rotated"]
    assert rotated["old_fingerprint"] == old_fp and rotated["reason"] == "stolen"
    assert rotated["notice"].startswith("misfin-key-change: v=1 ")
    assert [n["state"] for n in report["notices"]] == ["delivered"]
    assert [n["recipient"] for n in report["notices"]] == [BOB]
    new_fp = rotated["new_fingerprint"]
    time.sleep(1.1)  # the receiver looks at the folder at most once a second
    _, answer = asyncio.run(
        blank_request(
            Address.parse(ALICE), bob.profile.identity(BOB), hosts=bob.profile.config.hosts
        )
    )
    assert (answer.status, answer.meta) == (20, new_fp)
    notice_letter = world.last_from(bob, ALICE)
    assert "may have been stolen" in notice_letter.trust_reason
    assert bob.trust.revocation(ALICE, old_fp) is not None

    shown = cli(bob, "trust", "show", ALICE, "--json")
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert [r["fingerprint"] for r in entry["retired"]] == [old_fp]
    assert "revoked" in [h["event"] for h in entry["history"]]

    checked = cli(alice, "trust", "revalidate", "--json")
    assert checked.returncode == 0, checked.stderr
    assert [(c["name"], c["result"]) for c in json.loads(checked.stdout)] == [
        ("b.test:1958", "match")
    ]
    # Bob's pin of Alice is the retired certificate until her next letter: nothing verified to
    # re-check; after it, her server vouches for the new one.
    assert "Nothing to re-validate" in cli(bob, "trust", "revalidate").stdout
    assert delivered(world.send(alice, BOB, "With the new one"))
    assert world.last_from(bob, ALICE).fingerprint == new_fp
    text = cli(bob, "trust", "revalidate")
    assert text.returncode == 0, text.stderr
    assert f"mailbox  {ALICE}: still matches" in text.stdout


def test_revalidate_shows_each_pin_by_the_fingerprint_trust_list_shows(world: World) -> None:
    """ "still matches" and CHANGED lines name a pin by the same fingerprint as `trust list`: a
    key hash on one line and a certificate hash on the next cannot be compared by a person."""
    alice, bob = world.alice, world.bob
    assert delivered(world.send(alice, BOB, "Hello Bob"))
    world.last_from(bob, ALICE)
    host_pin = alice.trust.host("b.test:1958")
    shown = grouped(host_pin.fingerprint)
    assert f"fingerprint (SHA-256) {shown}" in cli(alice, "trust", "list").stdout
    matched = cli(alice, "trust", "revalidate").stdout
    assert "b.test:1958: still matches" in matched and f"({shown[:19]}" in matched, matched
    assert grouped(host_pin.spki)[:19] not in matched

    box = bob.trust.mailbox(ALICE)
    assert f"fingerprint (SHA-256) {grouped(box.fingerprint)}" in cli(bob, "trust", "list").stdout
    vouched = cli(bob, "trust", "revalidate").stdout
    assert f"{ALICE}: still matches" in vouched and grouped(box.fingerprint)[:19] in vouched

    folder = bob.profile.identity(BOB).cert_path.parent  # Bob's server gets a new key
    shutil.rmtree(folder)
    bob.profile.create_identity(Address.parse(BOB), "Bob")
    assert bob.receiver is not None
    bob.receiver.reload_identities()
    changed = cli(alice, "trust", "revalidate").stdout
    assert "b.test:1958: CHANGED" in changed and f"you trust ({shown[:19]}" in changed, changed


def test_trust_list_shows_a_gone_mailbox(world: World) -> None:
    world.alice.trust.mark_gone("old@gone.test", "52 from gone.test")
    listed = cli(world.alice, "trust", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    states = {e["name"]: e["state"] for e in json.loads(listed.stdout)}
    assert states["old@gone.test"] == "gone"
    assert "gone" in cli(world.alice, "trust", "list").stdout
