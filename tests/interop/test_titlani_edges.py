"""The edges of interoperation with titlani 0.4.1, as an attacker or an unlucky user meets them.

Every answer titlani's server can give a letter of ours (51 unknown mailbox, 53 another
domain, 59 on a mailbox name it will not serve, 61 a blocked sender, 44 its rate limiter,
a changed server key) must end as a clear outbox state: a temporary failure stays in the
outbox with the next try, a permanent one says why in titlani's words, and nothing is pinned
for a mailbox that did not take the letter. The other way, odd but legal letters from
titlani's client (long non-ASCII subjects, empty bodies, Misfin(B)) are stored as sent.
Real titlani processes over TLS on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.certs import identity_creds
from helpers.profiles import make_profile
from helpers.receivers import running
from helpers.titlani import TitlaniServer, titlani_misfin, titlani_needed, titlani_peer

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.identity import cert_pem, make_self_signed
from misfin_tui.core.outbox import OutboxItem, State
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.trust.model import Ask, Policy

pytestmark = titlani_needed

HOST = "titlani.test"
BOB = f"bob@{HOST}"


def bob_cert(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cert, _ = make_self_signed("bob", HOST, "Bob")
    path = folder / "bob.pem"
    path.write_bytes(cert_pem(cert))
    return path


def sender_for(tmp_path: Path, server: TitlaniServer, *hosts: str) -> Engine:
    """alice@alice.test on a trusted network, `hosts` (default titlani.test) at titlani."""
    profile: Profile = make_profile(
        tmp_path / "alice",
        "alice@alice.test",
        hosts={h: ("127.0.0.1", server.port) for h in hosts or (HOST,)},
        trusted=True,
    )
    return Engine(profile, probe_timeout=5.0, deliver_timeout=10.0)


def send(engine: Engine, to: str, body: str = "Hello Bob\n", subject: str = "") -> OutboxItem:
    letter = engine.outbox.enqueue(body, [Address.parse(to)], subject=subject)
    asyncio.run(engine.outbox.process(policy=Policy.ACCEPT_NEW))
    [item] = engine.outbox.items(letter)
    return item


def in_outbox(engine: Engine, item: OutboxItem) -> bool:
    letter = engine.store.get(item.letter_id)
    return letter is not None and letter.folder == "Outbox"


# -- our letters to titlani ---------------------------------------------------------------------


def test_unknown_mailbox_fails_in_titlanis_words_keeps_the_letter_and_pins_no_mailbox(
    tmp_path: Path,
) -> None:
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        engine = sender_for(tmp_path, server)
        item = send(engine, f"nobody@{HOST}")
        assert item.state is State.FAILED, item
        assert "does not exist" in item.reason and "Mailbox does not exist" in item.reason
        assert in_outbox(engine, item)  # nothing lost: it says why and can be retried
        trust = TrustStore(engine.db)
        assert trust.mailbox(f"nobody@{HOST}") is None
        host = trust.host(f"{HOST}:1958")
        assert host is not None and host.protocol != "B"  # a 51 is no reason to fall back
        assert server.letters("bob") == []


def test_another_domain_on_titlanis_port_is_refused_for_good(tmp_path: Path) -> None:
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        engine = sender_for(tmp_path, server, "elsewhere.test")
        item = send(engine, "bob@elsewhere.test")
        assert item.state is State.FAILED, item
        assert "does not handle mail for that domain" in item.reason
        assert "Domain not serviced" in item.reason
        assert TrustStore(engine.db).mailbox("bob@elsewhere.test") is None
        assert server.letters("bob") == []


def test_a_mailbox_name_titlani_will_not_serve_fails_after_one_b_try_and_stays_c(
    tmp_path: Path,
) -> None:
    """titlani answers 59 to a non-ASCII mailbox: our C request falls back to B once (59 is
    what a C-unaware server answers), titlani refuses that too, and the host is not marked
    B-only for it."""
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        engine = sender_for(tmp_path, server)
        item = send(engine, f"åsa@{HOST}")
        assert item.state is State.FAILED, item
        assert "Invalid mailbox name" in item.reason
        host = TrustStore(engine.db).host(f"{HOST}:1958")
        assert host is not None and host.protocol != "B"
        assert "could not understand" in item.reason


def test_a_blocked_sender_is_told_to_check_its_identity(tmp_path: Path) -> None:
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        (server.mail / "bob" / ".blocked").write_text("alice@alice.test\n")
        engine = sender_for(tmp_path, server)
        item = send(engine, BOB)
        assert item.state is State.FAILED, item
        assert "Sender blocked" in item.reason and "alice@alice.test" in item.reason
        assert TrustStore(engine.db).mailbox(BOB) is None
        assert server.letters("bob") == []


def test_titlanis_rate_limit_defers_for_the_time_it_names_and_keeps_the_letter(
    tmp_path: Path,
) -> None:
    extra = "[rate_limit]\nenable = true\ncapacity = 1\nrefill_rate = 0.0001\nretry_after = 777\n"
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}, extra) as server:
        engine = sender_for(tmp_path, server)
        first = send(engine, BOB, "one\n")
        assert first.state is State.DELIVERED, first  # the probe took no token
        before = datetime.now(UTC)
        second = send(engine, BOB, "two\n")
        assert second.state is State.DEFERRED, second
        assert "slow down" in second.reason and "Retry after 777s" in second.reason
        assert second.next_attempt_at is not None
        when = datetime.fromisoformat(second.next_attempt_at.replace("Z", "+00:00"))
        assert timedelta(seconds=770) < when - before < timedelta(seconds=790)
        assert in_outbox(engine, second)
        assert len(server.letters("bob")) == 1
        host = TrustStore(engine.db).host(f"{HOST}:1958")
        assert host is not None and host.protocol != "B"


def test_empty_and_long_non_ascii_letters_reach_titlani_intact(tmp_path: Path) -> None:
    subject = "Ünïcødé " + "ø" * 400  # ~800 bytes: a long but legal heading line
    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        engine = sender_for(tmp_path, server)
        empty = send(engine, BOB, "")
        assert empty.state is State.DELIVERED, empty
        long = send(engine, BOB, "Åsa 👋\n", subject=subject)
        assert long.state is State.DELIVERED, long
        stored = sorted((raw.decode() for raw in server.letters("bob")), key=len)
        assert len(stored) == 2  # same second: titlani's file names do not keep the order
        assert stored[0].startswith("alice@alice.test Alice\n") and stored[0].count("\n") == 3
        assert stored[1].endswith(f"\n# {subject}\nÅsa 👋\n")
        host = TrustStore(engine.db).host(f"{HOST}:1958")
        assert host is not None and host.protocol != "B"


def test_titlani_with_a_new_server_key_gets_no_letter_and_nothing_new_is_pinned(
    tmp_path: Path,
) -> None:
    root = tmp_path / "t"
    cert = bob_cert(tmp_path)
    with titlani_misfin(root, HOST, {"bob": cert}) as server:
        engine = sender_for(tmp_path, server)
        assert send(engine, BOB, "first\n").state is State.DELIVERED
        port = server.port
    trust = TrustStore(engine.db)
    pinned = trust.host(f"{HOST}:1958")
    assert pinned is not None
    shutil.rmtree(root / "tls")  # titlani makes a new server key on the next start
    with titlani_misfin(root, HOST, {"bob": cert}, port=port) as server:
        item = send(engine, BOB, "second\n")
        assert item.state is State.DECISION, item
        assert item.question is not None and item.question.ask is Ask.CHANGED
        assert len(server.letters("bob")) == 1  # not one byte of the second letter
        again = trust.host(f"{HOST}:1958")
        assert again is not None and again.spki == pinned.spki
        assert in_outbox(engine, item)


# -- titlani's letters to us ---------------------------------------------------------------------


@pytest.fixture
def titlani_identity(tmp_path: Path) -> tuple[Path, Path]:
    """alice@titlani.example as titlani's own `identity generate` makes it."""
    import subprocess

    from helpers.titlani import TITLANI_BIN

    out = tmp_path / "titlani-id"
    subprocess.run(
        [TITLANI_BIN / "titlani", "identity", "generate", "alice", "titlani.example", "-o", out],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out / "alice.pem", out / "alice.key"


def received(profile: Profile) -> list[tuple[str, str, str, str]]:
    store = MailStore(profile.database())
    out = []
    for n in range(1, store.latest_id() + 1):
        letter = store.get(n)
        if letter is not None:
            out.append((letter.version, letter.sender, letter.subject, letter.body))
    return out


def test_odd_but_legal_letters_from_titlani_are_stored_as_sent(
    tmp_path: Path, titlani_identity: tuple[Path, Path]
) -> None:
    cert, key = titlani_identity
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"titlani.example": ("127.0.0.1", 9)}
    )
    fp = identity_creds(profile, "bob@example.org").fingerprint
    subject = "Ünïcødé ✉ " + "ж" * 480  # about 980 bytes of heading
    with running(profile) as r:
        long = titlani_peer(r.port, cert, key, "bob@example.org", "send", subject, "Åsa\n", "")
        empty = titlani_peer(r.port, cert, key, "bob@example.org", "send", "", "", "")
        b = titlani_peer(r.port, cert, key, "bob@example.org", "b", "# B from titlani ✓ hej")
        assert long == empty == b == {"status": 20, "meta": fp}
        letters = received(profile)
    assert len(letters) == 3, letters
    (v1, s1, subj1, body1), (v2, s2, subj2, body2), (v3, s3, subj3, body3) = letters
    assert (v1, s1, subj1) == ("C", "alice@titlani.example", subject)
    assert body1.endswith("Åsa\n")
    assert (v2, s2, subj2) == ("C", "alice@titlani.example", "")
    assert body2.strip() == ""
    assert (v3, s3) == ("B", "alice@titlani.example")
    assert subj3 == "B from titlani ✓ hej"


def test_a_letter_too_big_for_us_is_refused_and_nothing_is_stored(
    tmp_path: Path, titlani_identity: tuple[Path, Path]
) -> None:
    """17 000 bytes: we answer 59; titlani's client falls back to B, which cannot carry it."""
    cert, key = titlani_identity
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile) as r:
        answer = titlani_peer(r.port, cert, key, "bob@example.org", "send", "Big", "x" * 17000, "")
        assert answer["status"] == 59
        assert MailStore(profile.database()).latest_id() == 0


# -- mail from titlani's GMAP --------------------------------------------------------------------


def test_a_letter_home_cannot_hand_out_does_not_stop_the_later_ones(tmp_path: Path) -> None:
    """titlani answers "40 Server error: ..." for an entry it lists but cannot read (here a
    directory named like a letter). The letters after it still come, the one it could not
    give is named in the report, and the next sync asks for it again."""
    from helpers.certs import forged
    from helpers.raw_tls import c_request, exchange
    from helpers.titlani import titlani_home

    from misfin_tui.core.gmap.sync import GmapSync, SyncStatus

    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    sender = forged(tmp_path / "bob", "bob", "example.org", name="bob")
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        unreadable = home.alice_dir / "20200101T120000Z-0badc0de.gemmail.new"
        unreadable.mkdir()
        answer = exchange(
            home.misfin_port,
            c_request("alice@localhost", "# Later\nbody\n"),
            sender,
            sni="localhost",
            timeout=10,
        ).response
        assert answer.startswith(b"20"), answer
        sync = GmapSync(Engine(laptop), timeout=10)
        connect = f"127.0.0.1:{home.gmap_port}"
        first = sync.sync("alice@localhost", connect=connect, trust_new=True)
        assert first.status is SyncStatus.DONE, first.reason
        assert first.fetched == 1
        assert [s.subject for s in MailStore(laptop.database()).summaries("Inbox")] == ["Later"]
        assert any("20200101T120000Z-0badc0de" in p and "40" in p for p in first.problems)
        # Home can read it now: the next sync brings it, and nothing twice.
        unreadable.rmdir()
        unreadable.write_bytes(b"carol@example.org\n\n\n# Early\nfirst\n")
        second = sync.sync("alice@localhost", connect=connect)
        assert second.status is SyncStatus.DONE, second.reason
        assert second.fetched == 1 and second.problems == []
        subjects = sorted(s.subject for s in MailStore(laptop.database()).summaries("Inbox"))
        assert subjects == ["Early", "Later"]


def test_first_contact_on_an_untrusted_network_shows_titlanis_key_and_sends_nothing(
    tmp_path: Path,
) -> None:
    """The anonymous probe (no client certificate) against titlani's pyOpenSSL server: its key
    is what the question shows, nothing is pinned, no letter is written."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from misfin_tui.core.fingerprint import fingerprint
    from misfin_tui.core.identity import load_certificates

    with titlani_misfin(tmp_path / "t", HOST, {"bob": bob_cert(tmp_path)}) as server:
        profile = make_profile(
            tmp_path / "alice", "alice@alice.test", hosts={HOST: ("127.0.0.1", server.port)}
        )
        engine = Engine(profile, probe_timeout=5.0, deliver_timeout=10.0)
        letter = engine.outbox.enqueue("Hello\n", [Address.parse(BOB)])
        asyncio.run(engine.outbox.process())
        [item] = engine.outbox.items(letter)
        assert item.state.waiting, item
        question = item.question
        assert question is not None and question.presented is not None
        [cert] = load_certificates(server.server_pem)
        assert question.presented.fingerprint == fingerprint(cert.public_bytes(Encoding.DER))
        assert TrustStore(engine.db).host(f"{HOST}:1958") is None
        assert server.letters("bob") == []
