"""Interop with titlani 0.4.1's GMAP server: letters delivered to it over Misfin are synced
here, and reading, archiving, trashing and emptying the Trash here reach it; our GMAP server
answers what titlani's answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.certs import Creds, forged, identity_creds
from helpers.gmap import ask, gmap_raw, serving
from helpers.profiles import make_profile
from helpers.raw_tls import c_request, exchange
from helpers.titlani import titlani_home, titlani_needed

from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.protocol import id_time
from misfin_tui.core.gmap.sync import GmapSync, SyncStatus
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore

pytestmark = titlani_needed


def misfin_send(port: int, sender: Creds, to: str, body: str) -> str:
    """One Misfin C letter to titlani with exact bytes; its answer line."""
    answer = exchange(port, c_request(to, body), sender, sni="localhost", timeout=10).response
    return answer.decode("utf-8", "replace").strip()


def bob(tmp_path: Path) -> Creds:
    """A sender titlani has never heard of (it does not verify senders)."""
    return forged(tmp_path / "bob", "bob", "example.org", name="bob")


def test_sync_read_archive_trash_delete_and_resync_against_titlani(tmp_path: Path) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    sender = bob(tmp_path)
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        connect = f"127.0.0.1:{home.gmap_port}"
        for n in range(4):
            answer = misfin_send(
                home.misfin_port, sender, "alice@localhost", f"# Letter {n}\nBody {n}\n"
            )
            assert answer.startswith("20"), answer
        sync = GmapSync(Engine(laptop), timeout=10)

        first = sync.sync("alice@localhost", connect=connect, trust_new=True)
        assert first.status is SyncStatus.DONE, first.reason
        assert first.fetched == 4
        store = MailStore(laptop.database())
        inbox = store.summaries("Inbox")
        assert sorted(s.subject for s in inbox) == [f"Letter {n}" for n in range(4)]
        assert all(s.unread and s.sender == "bob@example.org" for s in inbox)
        # Byte for byte, with the remote id.
        index = home.index()
        assert len(index) == 4
        for summary in inbox:
            account, rid = store.remote_of(summary.id)  # type: ignore[misc]
            assert account == "alice@localhost"
            stored = next(home.alice_dir.glob(f"{rid}.gemmail*"))
            letter = store.get(summary.id)
            assert letter is not None and letter.raw == stored.read_bytes()
            assert letter.received_at == id_time(rid)
        # The GMAP pin is keyed by home's own host:port.
        assert TrustStore(laptop.database()).host(f"localhost:{home.gmap_port}") is not None

        # Nothing new: one request per tag, nothing stored twice.
        again = sync.sync("alice@localhost", connect=connect)
        assert again.status is SyncStatus.DONE and again.fetched == 0
        assert again.requests == 5
        assert store.count("Inbox") == 4

        by_subject = {s.subject: s.id for s in inbox}
        rid_of = {subj: store.remote_of(i)[1] for subj, i in by_subject.items()}  # type: ignore[index]
        store.set_unread(by_subject["Letter 0"], False)  # read here
        store.move(by_subject["Letter 1"], "Archive")  # archived here
        store.move(by_subject["Letter 2"], "Trash")  # trashed here
        store.move(by_subject["Letter 3"], "Trash")
        pushed = sync.sync("alice@localhost", connect=connect)
        assert pushed.status is SyncStatus.DONE, pushed.reason
        index = home.index()
        assert "Unread" not in index[rid_of["Letter 0"]] and "Inbox" in index[rid_of["Letter 0"]]
        assert "Archive" in index[rid_of["Letter 1"]] and "Inbox" not in index[rid_of["Letter 1"]]
        assert "Trash" in index[rid_of["Letter 2"]] and "Trash" in index[rid_of["Letter 3"]]

        # Emptying the Trash here deletes there (the file too).
        store.delete([by_subject["Letter 2"]])
        emptied = sync.sync("alice@localhost", connect=connect)
        assert emptied.status is SyncStatus.DONE, emptied.reason
        assert rid_of["Letter 2"] not in home.index()
        assert not list(home.alice_dir.glob(f"{rid_of['Letter 2']}.gemmail*"))

        # A new letter arrives; a re-sync brings it alone, and nothing comes back twice.
        misfin_send(home.misfin_port, sender, "alice@localhost", "# Letter 4\nlate\n")
        later = sync.sync("alice@localhost", connect=connect)
        assert later.status is SyncStatus.DONE and later.fetched == 1
        counts = store.counts()
        assert counts["Inbox"] == (2, 1)  # Letter 0 (read) and Letter 4 (unread)
        assert counts["Archive"][0] == 1 and counts["Trash"][0] == 1


def test_changes_made_at_home_come_here(tmp_path: Path) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    sender = bob(tmp_path)
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        connect = f"127.0.0.1:{home.gmap_port}"
        misfin_send(home.misfin_port, sender, "alice@localhost", "# One\n")
        sync = GmapSync(Engine(laptop), timeout=10)
        assert sync.sync("alice@localhost", connect=connect, trust_new=True).fetched == 1
        rid = next(iter(home.index()))
        # Another client (titlani-style, same certificate) reads and archives it at home.
        for line in (f"/untag/Unread?{rid}", f"/tag/Archive?{rid}", f"/untag/Inbox?{rid}"):
            answer = gmap_raw(
                home.gmap_port,
                identity_creds(laptop, "alice@localhost"),
                f"gemini://localhost{line}\r\n".encode(),
            )
            assert answer.startswith(b"20"), answer
        report = sync.sync("alice@localhost", connect=connect, full=True)
        assert report.status is SyncStatus.DONE and report.changed_here == 1
        store = MailStore(laptop.database())
        (letter,) = store.summaries("Archive")
        assert not letter.unread


def test_encrypted_letter_is_listed_not_dropped(tmp_path: Path) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        # titlani serves a .gemmail.enc file as "40 Message is encrypted".
        (home.alice_dir / "20260101T120000Z-0badc0de.gemmail.enc.new").write_bytes(b"\x00secret")
        report = GmapSync(Engine(laptop), timeout=10).sync(
            "alice@localhost", connect=f"127.0.0.1:{home.gmap_port}", trust_new=True
        )
        assert report.status is SyncStatus.DONE, report.reason
        assert report.encrypted == 1 and report.fetched == 0
        (summary,) = MailStore(laptop.database()).summaries("Inbox")
        assert "Encrypted" in summary.subject


def test_titlani_refuses_a_certificate_it_has_not_registered(tmp_path: Path) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    other = make_profile(tmp_path / "other", "alice@localhost")  # same address, other key
    with titlani_home(tmp_path / "titlani", other.identity().cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        report = GmapSync(Engine(laptop), timeout=10).sync(
            "alice@localhost", connect=f"127.0.0.1:{home.gmap_port}", trust_new=True
        )
        assert report.status is SyncStatus.REFUSED
        assert "61" in report.reason


@pytest.mark.parametrize("trusted", [False])
def test_first_contact_on_an_untrusted_network_is_held(tmp_path: Path, trusted: bool) -> None:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=trusted)
    alice = laptop.identity("alice@localhost")
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        report = GmapSync(Engine(laptop), timeout=10).sync(
            "alice@localhost", connect=f"127.0.0.1:{home.gmap_port}", trust_new=True
        )
        assert report.status is SyncStatus.HELD
        assert report.requests == 0  # not one request was written
        assert report.question is not None and report.question.hostport == report.hostport
        assert TrustStore(laptop.database()).host(f"localhost:{home.gmap_port}") is None


def test_same_answers_as_titlani_for_the_same_requests(tmp_path: Path) -> None:
    """A titlani-style client sees the same status lines from both servers."""
    home = make_profile(tmp_path / "home", "alice@localhost", ca=True, trusted=True)
    ident = home.identity("alice@localhost")
    me = identity_creds(home, "alice@localhost")
    requests = [
        "gemini://localhost/nonsense",
        "gemini://localhost/untag/Unread",
        "gemini://localhost/delete",
        "gemini://localhost/tag/?x",
        "gemini://localhost/tag/Inbox/2026-13-01T00:00:00Z",
        "gemini://localhost/tag/a/b/c",
        "gemini://localhost/msgid/20260101T000000Z-00000000",
        "gemini://localhost/tag/Archive?20260101T000000Z-00000000",
        "gemini://localhost/tag/Inbox",
        "gemini://localhost/list/",
    ]
    with titlani_home(tmp_path / "titlani", ident.cert_path) as peer, serving(home) as port:
        for request in requests:
            theirs = ask(peer.gmap_port, me, request)[0]
            ours = ask(port, me, request)[0]
            assert ours == theirs, request
        assert (
            ask(port, None, "gemini://localhost/tag/")[0]
            == ask(peer.gmap_port, None, "gemini://localhost/tag/")[0]
        )


def test_a_letter_titlani_cuts_at_one_tls_record_is_stored_and_said_to_be_suspect(
    tmp_path: Path,
) -> None:
    """titlani 0.4.1 sends no more than 16,384 bytes of a GMAP answer and closes cleanly, so a
    letter near Misfin's size limit arrives without its end. GMAP gives no length: the letter
    is kept as it came, and the report and the letter both say its end may be missing."""
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=True)
    alice = laptop.identity("alice@localhost")
    line = "0123456789abcdef" * 64 + "\n"
    with titlani_home(tmp_path / "titlani", alice.cert_path) as home:
        laptop.config.set("gmap.alice@localhost", ("localhost", home.gmap_port))
        laptop.save_config()
        for subject, tail in (("Long", 900), ("Longest", 985)):
            body = f"# {subject}\n" + line * 15 + "x" * tail + "\nTHE END\n"
            assert misfin_send(home.misfin_port, bob(tmp_path), "alice@localhost", body)[:2] == "20"
        sync = GmapSync(Engine(laptop), timeout=10)
        report = sync.sync("alice@localhost", connect=f"127.0.0.1:{home.gmap_port}", trust_new=True)
        assert report.status is SyncStatus.DONE and report.fetched == 2
        store = MailStore(laptop.database())
        letters = {s.subject: store.get(s.id) for s in store.summaries("Inbox")}
        at_home = {
            p.read_bytes().split(b"\n")[3]: p.read_bytes()
            for p in home.alice_dir.glob("*.gemmail*")
        }
        whole, cut = letters["Long"], letters["Longest"]
        assert whole is not None and whole.raw == at_home[b"# Long"]
        assert "may be missing" not in whole.trust_reason
        assert cut is not None and at_home[b"# Longest"].startswith(cut.raw)
        assert len(cut.raw) < len(at_home[b"# Longest"])  # titlani's cut, not ours
        assert "its end may be missing" in cut.trust_reason
        [problem] = report.problems
        assert "16,384 bytes" in problem and "read it on your home server" in problem
