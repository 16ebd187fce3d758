"""titlani regenerated its certificate: how a person approves the new key it presents now.

`trust verify HOST FINGERPRINT` with the fingerprint of the key the server presents now is an
approval (the same decision as a letter's "verify"): the pin is replaced, the old key stays in
the history as replaced, and letters held on it move on. A paste naming another key changes
nothing (exit 5); a paste that is no fingerprint says so (exit 2). A sync from home held on a
changed key talks about a sync, takes its offered default ("hold"), and says how to approve
the key. Real titlani processes over TLS on 127.0.0.1, our command line as a subprocess.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

from helpers.profiles import env_for, make_profile
from helpers.titlani import titlani_home, titlani_misfin, titlani_needed

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.sync import GmapSync, SyncStatus
from misfin_tui.core.identity import cert_pem, make_self_signed
from misfin_tui.core.outbox import OutboxItem, State
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.trust.model import Answer, Ask, Choice, Held, Policy, Question

pytestmark = titlani_needed

HOST = "titlani.test"
BOB = f"bob@{HOST}"


def cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        capture_output=True,
        text=True,
        env=env_for(engine.profile),
        timeout=60,
    )


def served_fingerprint(pem: Path) -> str:
    """The fingerprint of the certificate titlani serves (what its operator would read out)."""
    return fingerprint.fingerprint(ssl.PEM_cert_to_DER_cert(pem.read_text()))


def send(engine: Engine, body: str) -> OutboxItem:
    letter = engine.outbox.enqueue(body, [Address.parse(BOB)])
    asyncio.run(engine.outbox.process(policy=Policy.ACCEPT_NEW))
    [item] = engine.outbox.items(letter)
    return item


def test_trust_verify_approves_the_key_titlani_presents_after_it_was_regenerated(
    tmp_path: Path,
) -> None:
    root = tmp_path / "t"
    cert, _ = make_self_signed("bob", HOST, "Bob")
    (tmp_path / "bob.pem").write_bytes(cert_pem(cert))
    mailboxes: dict[str, Path | None] = {"bob": tmp_path / "bob.pem"}
    with titlani_misfin(root, HOST, mailboxes) as server:
        profile = make_profile(
            tmp_path / "alice",
            "alice@alice.test",
            hosts={HOST: ("127.0.0.1", server.port)},
            trusted=True,
        )
        engine = Engine(profile, probe_timeout=5.0, deliver_timeout=10.0)
        assert send(engine, "first\n").state is State.DELIVERED
        port = server.port
    trust = TrustStore(engine.db)
    old = trust.host(f"{HOST}:1958")
    assert old is not None
    shutil.rmtree(root / "tls")  # titlani makes a new server key on the next start
    with titlani_misfin(root, HOST, mailboxes, port=port) as server:
        held = send(engine, "second\n")
        assert held.state is State.DECISION and held.question is not None
        assert held.question.ask is Ask.CHANGED
        new_fp = served_fingerprint(server.server_pem)
        assert new_fp != old.fingerprint

        wrong = cli(engine, "trust", "verify", f"{HOST}:1958", "ab" * 32)
        assert wrong.returncode == 5, wrong.stderr  # a refusal, not "could not run"
        assert "does NOT match" in wrong.stderr and "nothing was changed" in wrong.stderr
        assert fingerprint.grouped(new_fp) in wrong.stderr  # what the server presents now
        not_one = cli(engine, "trust", "verify", HOST, "hello")
        assert not_one.returncode == 2 and "is not a fingerprint" in not_one.stderr
        still = trust.host(f"{HOST}:1958")
        assert still is not None and still.spki == old.spki

        approved = cli(engine, "trust", "verify", f"{HOST}:1958", fingerprint.grouped(new_fp))
        assert approved.returncode == 0, approved.stderr
        assert "replaced" in approved.stdout
        pin = trust.host(f"{HOST}:1958")
        assert pin is not None and pin.fingerprint == new_fp and pin.origin.value == "pasted"
        [replaced] = [h for h in trust.history(subject=f"{HOST}:1958") if h.event == "replaced"]
        assert old.spki in replaced.detail and pin.spki in replaced.detail
        # The letter held on the changed key moves on, and goes to the approved key.
        assert engine.outbox.item(held.id).state is State.QUEUED
        asyncio.run(engine.outbox.process())
        assert engine.outbox.item(held.id).state is State.DELIVERED
        assert len(server.letters("bob")) == 2  # the second letter too, to the new titlani
        # Pasting it again is a plain verification, with no network needed.
        again = cli(engine, "trust", "verify", HOST, new_fp[:32])
        assert again.returncode == 0 and "verified" in again.stdout


def test_a_sync_held_on_homes_new_key_holds_as_offered_and_says_how_to_approve(
    tmp_path: Path,
) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    root = tmp_path / "titlani"
    with titlani_home(root, alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        ports, connect = (home.misfin_port, home.gmap_port), f"127.0.0.1:{home.gmap_port}"
        engine = Engine(laptop)
        first = GmapSync(engine, timeout=10).sync(
            "alice@localhost", connect=connect, trust_new=True
        )
        assert first.status is SyncStatus.DONE, first.reason
    hostport = f"localhost:{ports[1]}"
    old = TrustStore(laptop.database()).host(hostport)
    assert old is not None
    shutil.rmtree(root / "tls")
    with titlani_home(root, None, ports) as home:
        asked: list[Question] = []

        def hold(question: Question, problem: str) -> Answer:
            asked.append(question)
            return Answer(question.default)  # what Enter answers on a terminal

        held = GmapSync(engine, timeout=10).sync("alice@localhost", connect=connect, ask=hold)
        assert held.status is SyncStatus.HELD, held.reason
        [question] = asked  # asked once, not again and again
        assert question.ask is Ask.CHANGED and question.default is Choice.HOLD
        assert question.held is Held.SYNC
        assert "Outbox" not in question.reason and "the sync waits" in question.reason
        assert "letter" not in question.words(Choice.HOLD)

        result = cli(engine, "sync", "--no-input", "--connect", connect)
        assert result.returncode == 3, result.stderr
        assert "Outbox" not in result.stdout and "--trust-new" not in result.stdout
        assert f"trust verify {hostport} FINGERPRINT --connect {connect}" in result.stdout

        new_fp = served_fingerprint(root / "tls" / "server.pem")
        approved = cli(engine, "trust", "verify", hostport, new_fp, "--connect", connect)
        assert approved.returncode == 0, approved.stderr
        done = cli(engine, "sync", "--no-input", "--connect", connect)
        assert done.returncode == 0, done.stdout + done.stderr
        pin = TrustStore(laptop.database()).host(hostport)
        assert pin is not None and pin.fingerprint == new_fp and pin.spki != old.spki
