"""Paths other than plain sending that could smuggle trust in, over real TLS on 127.0.0.1.

A key-change notice is evidence only for the mailbox that signed it. Here a co-tenant of
alice's host (carol@a.test, a real mailbox with a real certificate from a.test's host CA)
sends Bob a well-formed notice retiring her own pinned certificate and "announcing" a new
server key for a.test: Mallory's. When Mallory then intercepts Bob's letter to alice@a.test,
carol's word must not loosen the changed-key alarm for alice (paste only), though it may for
carol herself, whose own mail is all her notice could ever speak for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from helpers.certs import ca_of, identity_creds
from helpers.profiles import make_profile, trust_network
from helpers.raw_tls import exchange, status_of

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.identity import spki_sha256
from misfin_tui.core.notice import Notice, Reason
from misfin_tui.core.outbox.model import OutboxItem, State
from misfin_tui.core.trust.model import (
    Answer,
    Ask,
    Choice,
    HostEvent,
    Policy,
    Question,
    TrustError,
)

ALICE, BOB, CAROL = "alice@a.test", "bob@b.test", "carol@a.test"


@dataclass
class Asker:
    answers: dict[Ask, Answer]
    asked: list[Question]

    async def ask(self, question: Question, problem: str) -> Answer | None:
        self.asked.append(question)
        return self.answers.get(question.ask)

    async def tell(self, item: OutboxItem) -> None:
        return None


@dataclass
class World:
    alice: Engine  # a.test: alice and carol, one host CA
    bob: Engine
    mallory: Engine  # another a.test, with a host CA of its own

    def send(self, engine: Engine, to: str, text: str, asker: Asker | None = None) -> OutboxItem:
        letter = engine.outbox.enqueue(text, [Address.parse(to)], subject=text)
        ids = [item.id for item in engine.outbox.items(letter)]
        run = engine.delivery.run(ids, asker or Asker({}, []), policy=Policy.ACCEPT_NEW)
        (item,) = asyncio.run(run)
        return item

    def settle(self, engine: Engine) -> None:
        assert engine.receiver is not None and engine.receiver.verifier is not None
        assert engine.receiver.verifier.wait_idle(20)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    alice = Engine(make_profile(tmp_path / "alice", ALICE, ca=True))
    alice.profile.create_identity(Address.parse(CAROL), "Carol")
    bob = Engine(make_profile(tmp_path / "bob", BOB))
    mallory = Engine(make_profile(tmp_path / "mallory", ALICE, ca=True))
    try:
        a_port = alice.start_receiver(("127.0.0.1", 0))[1]
        b_port = bob.start_receiver(("127.0.0.1", 0))[1]
        m_port = mallory.start_receiver(("127.0.0.1", 0))[1]
        for engine in (alice, bob, mallory):
            engine.profile.config.set("hosts.a.test", ("127.0.0.1", a_port))
            engine.profile.config.set("hosts.b.test", ("127.0.0.1", b_port))
            engine.profile.config.set("hosts.mallory.test", ("127.0.0.1", m_port))
            engine.profile.save_config()
            trust_network(engine.profile)
        yield World(alice, bob, mallory)
    finally:
        alice.close()
        bob.close()
        mallory.close()


def notice_letter(notice: Notice) -> bytes:
    body = f"\n\n\n# My certificate has changed\nSo has the server's.\n\n{notice.line()}\n"
    return body.encode()


def test_a_co_tenant_notice_does_not_loosen_the_alarm_for_another_mailbox(world: World) -> None:
    alice, bob, mallory = world.alice, world.bob, world.mallory
    carol = alice.profile.identity(CAROL)
    assert carol.issuer_fingerprint == alice.profile.identity(ALICE).issuer_fingerprint

    # Carol writes to Bob with her real certificate: verified by a.test, pinned.
    letter = alice.outbox.enqueue("Hi Bob", [Address.parse(BOB)], identity=CAROL, subject="Hi")
    ids = [item.id for item in alice.outbox.items(letter)]
    (item,) = asyncio.run(alice.delivery.run(ids, Asker({}, []), policy=Policy.ACCEPT_NEW))
    assert item.state is State.DELIVERED, item.reason
    world.settle(bob)
    assert bob.trust.mailbox(CAROL).fingerprint == carol.fingerprint
    # Bob writes to alice: a.test's real key is approved.
    assert world.send(bob, ALICE, "Hello Alice").state is State.DELIVERED
    real_spki = bob.trust.host("a.test:1958").spki

    # Carol "announces" Mallory's server key for a.test, in a notice signed with her own
    # pinned certificate (well formed: it does retire her certificate).
    mallory_spki = spki_sha256(ca_of(mallory.profile, "a.test")[0])
    assert mallory_spki != real_spki
    notice = Notice(
        CAROL, carol.fingerprint, "ab" * 32, Reason.STOLEN, "2026-12-01T00:00:00Z", mallory_spki
    )
    body = notice_letter(notice)
    b_port = bob.profile.config.hosts["b.test"][1]
    request = b"misfin://%s\t%d\r\n%s" % (BOB.encode(), len(body), body)
    sent = exchange(b_port, request, identity_creds(alice.profile, CAROL))
    assert status_of(sent.response) == 20
    world.settle(bob)
    assert bob.trust.revocation(CAROL, carol.fingerprint) is not None  # her own: retired

    # Mallory now answers for a.test. Bob writes to alice: the alarm, and only a paste clears it.
    m_port = bob.profile.config.hosts["mallory.test"][1]
    bob.profile.config.set("hosts.a.test", ("127.0.0.1", m_port))
    bob.profile.save_config()
    asker = Asker({Ask.CHANGED: Answer(Choice.TRUST)}, [])
    item = world.send(bob, ALICE, "Is this you", asker)
    assert item.state is State.DECISION, item.reason
    assert asker.asked
    for question in asker.asked:
        assert question.ask is Ask.CHANGED
        assert question.presented is not None and question.presented.spki == mallory_spki
        assert Choice.TRUST not in question.choices, question.reason
        assert CAROL not in question.reason  # carol's notice is no evidence about alice's server
    question = asker.asked[0]
    assert question.presented is not None
    with pytest.raises(TrustError):
        bob.policy.answer(
            HostEvent.CHANGED,
            "a.test:1958",
            question.presented,
            bob.networks.current(),
            Answer(Choice.TRUST),
            recipient=ALICE,
        )
    assert bob.trust.host("a.test:1958").spki == real_spki  # nothing was re-pinned
    world.settle(mallory)
    assert not mallory.store.summaries("Inbox")  # and nothing reached Mallory
    assert not mallory.store.summaries("Quarantine")

    # Carol's notice still speaks for carol: a letter to her meets the alarm with her notice as
    # evidence, and an explicit "Trust" is possible (her own mail is all she can give away).
    asker = Asker({}, [])
    item = world.send(bob, CAROL, "Is this you, Carol", asker)
    assert item.state is State.DECISION, item.reason
    (question,) = asker.asked
    assert question.ask is Ask.CHANGED and Choice.TRUST in question.choices
    assert "key-change notice" in question.reason


def test_revalidating_a_sender_against_another_server_key_pins_nothing(world: World) -> None:
    """Bob verified alice through a.test's key (learned). At re-validation Mallory answers for
    a.test with a key and a certificate of her own: the check says CHANGED, the learned key and
    alice's pin stay as they were, and alice's cached verdict is dropped (nothing is taken on
    trust from the cache), so her next letter is checked afresh."""
    from misfin_tui.core.revalidate import Result

    alice, bob, mallory = world.alice, world.bob, world.mallory
    assert world.send(alice, BOB, "Hello Bob").state is State.DELIVERED
    world.settle(bob)
    pin = bob.trust.mailbox(ALICE)
    host = bob.trust.host("a.test:1958")
    assert pin.check_result == "verified" and host is not None and not host.origin.approves

    m_port = bob.profile.config.hosts["mallory.test"][1]
    bob.profile.config.set("hosts.a.test", ("127.0.0.1", m_port))
    bob.profile.save_config()
    checks = asyncio.run(bob.revalidate())
    assert [(c.kind, c.name, c.result) for c in checks] == [("mailbox", ALICE, Result.CHANGED)]
    seen = bob.trust.host("a.test:1958")
    assert replace(seen, changed=None) == host  # not replaced, not refreshed
    assert seen.changed is not None  # Mallory's key is kept as evidence of a change, no more
    assert seen.changed.presented.spki != host.spki and not seen.approved
    after = bob.trust.mailbox(ALICE)
    assert after.fingerprint == pin.fingerprint and after.check_result == "changed"
    assert bob.receiver is not None and bob.receiver.verifier is not None
    assert bob.receiver.verifier.cached(ALICE, pin.fingerprint) is None
    assert mallory.profile.identity(ALICE).fingerprint not in {
        p.fingerprint for p in bob.trust.mailboxes()
    }
