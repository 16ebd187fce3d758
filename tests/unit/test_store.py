"""MailStore against a real SQLite file: durability, ordering, undo, search safety, drafts."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from misfin_tui.core.database import FOLDERS, Database
from misfin_tui.core.store import PREFIX_MIN, MailStore, StoredLetter, Summary, fts_query

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "mail.db")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> MailStore:
    return MailStore(db)


def letter(store: MailStore, **fields) -> int:
    """Add a letter with sensible defaults; fields override them."""
    values = {"folder": "Inbox", "raw": b"raw", "subject": "hello", "body": "a body"}
    values.update(fields)
    return store.add(**values)


# -- add / get ------------------------------------------------------------------------------


def test_add_and_get_keep_every_column(store: MailStore) -> None:
    raw = b"alice@example.org Alice\n\n2026-01-02T03:04:05Z\n# Hi\n\xff\x00binary-safe"
    letter_id = store.add(
        folder="Quarantine",
        raw=raw,
        version="B",
        sender="alice@example.org",
        sender_blurb="Alice",
        recipients=["me@here.org", "you@there.org"],
        subject="Hi",
        body="# Hi\nbody",
        received_at="2026-01-02T03:04:05Z",
        mailbox="me",
        unread=True,
        trust="pending",
        trust_reason="first contact",
        sender_cert=b"\x30\x82der",
        fingerprint="ab" * 32,
        in_reply_to=7,
        identity="me@here.org",
        flagged=True,
    )
    assert store.get(letter_id) == StoredLetter(
        id=letter_id,
        folder="Quarantine",
        raw=raw,
        version="B",
        sender="alice@example.org",
        sender_blurb="Alice",
        recipients=("me@here.org", "you@there.org"),
        subject="Hi",
        body="# Hi\nbody",
        received_at="2026-01-02T03:04:05Z",
        mailbox="me",
        unread=True,
        flagged=True,
        trust="pending",
        trust_reason="first contact",
        sender_cert=b"\x30\x82der",
        fingerprint="ab" * 32,
        in_reply_to=7,
        identity="me@here.org",
    )


def test_add_defaults(store: MailStore) -> None:
    got = store.get(store.add(folder="Inbox", raw=b""))
    assert got is not None
    assert ISO.match(got.received_at)
    assert (got.version, got.unread, got.flagged, got.trust, got.recipients) == (
        "C",
        False,
        False,
        "none",
        (),
    )
    assert got.sender_cert is None and got.in_reply_to is None


def test_get_missing_is_none(store: MailStore) -> None:
    assert store.get(12345) is None
    assert store.summary(12345) is None


def test_recipients_from_a_comma_string(store: MailStore) -> None:
    letter_id = letter(store, recipients=" a@x.org, ,b@y.org ")
    assert store.get(letter_id).recipients == ("a@x.org", "b@y.org")


@pytest.mark.parametrize(
    ("fields", "error", "text"),
    [
        ({"folder": "inbox"}, ValueError, "unknown folder 'inbox'"),
        ({"folder": "Spam"}, ValueError, "expected one of Inbox, Sent"),
        ({"trust": "trusted"}, ValueError, "unknown trust state"),
        ({"version": "A"}, ValueError, "unknown protocol version"),
        ({"raw": "text"}, TypeError, "raw must be bytes"),
    ],
)
def test_add_rejects_bad_values(store: MailStore, fields: dict, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        letter(store, **fields)
    assert store.latest_id() == 0


def test_every_method_validates_folders(store: MailStore) -> None:
    for call in (
        lambda: store.summaries("Junk"),
        lambda: store.ids("Junk"),
        lambda: store.move([1], "Junk"),
        lambda: store.restore({1: "Junk"}),
        lambda: store.search("x", folder="Junk"),
        lambda: store.newer_than(0, folder="Junk"),
    ):
        with pytest.raises(ValueError, match="unknown folder 'Junk'"):
            call()


# -- durability ------------------------------------------------------------------------------

CHILD = """
import sys, time
from misfin_tui.core.database import Database
from misfin_tui.core.store import MailStore
store = MailStore(Database(sys.argv[1]))
for n in range(3):
    letter_id = store.add(folder="Inbox", raw=b"raw %d" % n, subject="durable %d" % n, unread=True)
    print(letter_id, flush=True)
time.sleep(60)
"""


def test_committed_letter_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ids = [int(child.stdout.readline()) for _ in range(3)]
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    reopened = MailStore(Database(path))
    for n, letter_id in enumerate(ids):
        got = reopened.get(letter_id)
        assert got is not None and got.raw == b"raw %d" % n and got.unread
    assert [s.subject for s in reopened.search("durable")] == [
        "durable 2",
        "durable 1",
        "durable 0",
    ]


# -- listing ---------------------------------------------------------------------------------


def test_summaries_newest_first_for_many_letters(store: MailStore, db: Database) -> None:
    rng = random.Random(7)
    rows = []
    for n in range(1500):
        # Few distinct times, so many ties: the id breaks them, newest id first.
        when = f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T00:00:00Z"
        rows.append(("Inbox" if n % 4 else "Archive", b"r", f"s{n}", f"subject {n}", when))
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO letters (folder, raw, sender, subject, received_at) VALUES (?,?,?,?,?)",
            rows,
        )
    inbox = store.summaries("Inbox")
    assert len(inbox) == 1125 and all(isinstance(s, Summary) for s in inbox)
    assert {s.folder for s in inbox} == {"Inbox"}
    keys = [(s.received_at, s.id) for s in inbox]
    assert keys == sorted(keys, reverse=True)
    assert len(store.summaries("Archive")) == 375
    assert store.ids("Inbox") == [s.id for s in inbox]
    assert store.summaries("Inbox", limit=10) == inbox[:10]
    assert store.summaries("Inbox", limit=10, offset=1000) == inbox[1000:1010]
    assert store.summaries("Sent") == []


def test_summary_fields(store: MailStore) -> None:
    letter_id = letter(
        store,
        sender="a@x.org",
        sender_blurb="A",
        subject="S",
        received_at="2026-05-05T05:05:05Z",
        unread=True,
        trust="verified",
        recipients=["me@y.org"],
    )
    assert store.summary(letter_id) == Summary(
        letter_id,
        "Inbox",
        "a@x.org",
        "A",
        "S",
        "2026-05-05T05:05:05Z",
        True,
        "verified",
        ("me@y.org",),
    )


def test_summaries_for_keeps_the_given_order_and_skips_missing(store: MailStore) -> None:
    ids = [letter(store, subject=str(n)) for n in range(600)]
    wanted = [ids[5], 99999, ids[550], ids[0], ids[5]]
    assert [s.id for s in store.summaries_for(wanted)] == [ids[5], ids[550], ids[0]]
    assert len(store.summaries_for(ids)) == 600


def test_counts_cover_every_folder(store: MailStore) -> None:
    assert store.counts() == dict.fromkeys(FOLDERS, (0, 0))
    letter(store, unread=True)
    letter(store, unread=True)
    letter(store)
    letter(store, folder="Trash", unread=True)
    letter(store, folder="Sent")
    counts = store.counts()
    assert list(counts) == list(FOLDERS)
    assert counts["Inbox"] == (3, 2)
    assert counts["Trash"] == (1, 1)
    assert counts["Sent"] == (1, 0)
    assert counts["Drafts"] == (0, 0)


def test_count_is_one_folder_of_counts(store: MailStore) -> None:
    assert store.count("Inbox") == 0
    letter(store, unread=True)
    letter(store)
    letter(store, folder="Trash")
    for folder in FOLDERS:
        assert store.count(folder) == store.counts()[folder][0]
    assert store.count("Inbox") == 2
    with pytest.raises(ValueError):
        store.count("Junk")


def test_latest_id_and_newer_than(store: MailStore) -> None:
    assert store.latest_id() == 0
    first = letter(store)
    seen = store.latest_id()
    assert seen == first
    second = letter(store, subject="new one")
    letter(store, folder="Sent")
    assert store.latest_id() > second
    assert [s.subject for s in store.newer_than(seen, folder="Inbox")] == ["new one"]
    assert len(store.newer_than(seen)) == 2


# -- changes and undo ------------------------------------------------------------------------


def test_move_and_restore_round_trip(store: MailStore) -> None:
    inbox = [letter(store) for _ in range(3)]
    archived = letter(store, folder="Archive")
    previous = store.move([*inbox, archived, 424242], "Trash")
    assert previous == {**dict.fromkeys(inbox, "Inbox"), archived: "Archive"}
    assert store.counts()["Trash"] == (4, 0)
    assert store.summaries("Inbox") == []
    store.restore(previous)
    assert sorted(store.ids("Inbox")) == inbox
    assert store.ids("Archive") == [archived]
    assert store.counts()["Trash"] == (0, 0)


def test_move_single_id_and_many_ids(store: MailStore, db: Database) -> None:
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO letters (folder, raw, received_at) VALUES ('Inbox', x'', ?)",
            [("2026-01-01T00:00:00Z",)] * 1234,
        )
    ids = store.ids("Inbox")
    assert store.move(ids[0], "Archive") == {ids[0]: "Inbox"}
    previous = store.move(ids, "Trash")
    assert len(previous) == 1234 and previous[ids[0]] == "Archive"
    assert store.counts()["Trash"] == (1234, 0)
    store.restore(previous)
    assert store.counts()["Inbox"] == (1233, 0) and store.counts()["Archive"] == (1, 0)


def test_a_failed_restore_changes_nothing(store: MailStore) -> None:
    letter_id = letter(store)
    with pytest.raises(ValueError):
        store.restore({letter_id: "Archive", 2: "Nowhere"})
    assert store.get(letter_id).folder == "Inbox"


def test_unread_and_flagged(store: MailStore) -> None:
    a, b, c = (letter(store, unread=True) for _ in range(3))
    store.set_unread([a, b], False)
    assert [store.get(i).unread for i in (a, b, c)] == [False, False, True]
    store.set_unread(a, True)
    assert store.get(a).unread
    store.set_flagged([b, c], True)
    assert [store.summary(i).flagged for i in (a, b, c)] == [False, True, True]
    store.set_flagged(c, False)
    assert not store.get(c).flagged
    assert store.counts()["Inbox"] == (3, 2)


def test_set_trust(store: MailStore) -> None:
    letter_id = letter(store, trust="pending", trust_reason="first contact")
    store.set_trust(letter_id, "verified")
    got = store.get(letter_id)
    assert (got.trust, got.trust_reason) == ("verified", "")
    store.set_trust(letter_id, "quarantined", "key changed")
    assert store.summary(letter_id).trust == "quarantined"
    with pytest.raises(ValueError, match="unknown trust state"):
        store.set_trust(letter_id, "ok")
    assert store.get(letter_id).trust == "quarantined"


def test_delete_is_permanent_and_leaves_the_index(store: MailStore, db: Database) -> None:
    keep = letter(store, subject="keep walrus")
    gone = letter(store, folder="Trash", subject="gone walrus")
    db.connect().execute(
        "INSERT INTO outbox (letter_id, recipient, identity, state, created_at, updated_at)"
        " VALUES (?, 'x@y.org', 'me@z.org', 'queued', 'now', 'now')",
        (gone,),
    )
    store.delete([gone])
    store.delete([])
    assert store.get(gone) is None
    assert [s.id for s in store.search("walrus")] == [keep]
    conn = db.connect()
    fts_rows = conn.execute(
        "SELECT rowid FROM letters_fts WHERE letters_fts MATCH 'walrus'"
    ).fetchall()
    assert [row[0] for row in fts_rows] == [keep]
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    conn.execute("INSERT INTO letters_fts(letters_fts) VALUES ('integrity-check')")


# -- drafts ----------------------------------------------------------------------------------


def test_save_draft_creates_then_updates_in_place(store: MailStore, db: Database) -> None:
    draft_id = store.save_draft(
        None,
        identity="me@here.org",
        recipients=["a@x.org", "b@y.org"],
        subject="Plans",
        body="# Plans\nmeet at the lighthouse — ünïcode",
        in_reply_to=None,
    )
    got = store.get(draft_id)
    assert got.folder == "Drafts" and got.version == "C"
    assert got.raw == "# Plans\nmeet at the lighthouse — ünïcode".encode()
    assert (got.sender, got.identity, got.recipients) == (
        "me@here.org",
        "me@here.org",
        ("a@x.org", "b@y.org"),
    )
    assert [s.id for s in store.search("lighthouse", folder="Drafts")] == [draft_id]

    db.connect().execute(
        "UPDATE letters SET received_at = '2000-01-01T00:00:00Z' WHERE id = ?", (draft_id,)
    )
    same = store.save_draft(
        draft_id,
        identity="other@here.org",
        recipients=["c@z.org"],
        subject="New plans",
        body="meet at the harbour",
        in_reply_to=3,
    )
    assert same == draft_id
    got = store.get(draft_id)
    assert got.raw == b"meet at the harbour" and got.subject == "New plans"
    assert got.recipients == ("c@z.org",) and got.in_reply_to == 3
    assert got.sender == got.identity == "other@here.org"
    assert got.received_at > "2000-01-01T00:00:00Z" and ISO.match(got.received_at)
    assert store.search("lighthouse") == []
    assert [s.id for s in store.search("harbour")] == [draft_id]
    assert store.counts()["Drafts"] == (1, 0)


def test_save_draft_never_overwrites_a_letter_that_left_drafts(store: MailStore) -> None:
    draft_id = store.save_draft(None, identity="me@h.org", recipients=[], subject="s", body="v1")
    store.move([draft_id], "Outbox")
    new_id = store.save_draft(draft_id, identity="me@h.org", recipients=[], subject="s", body="v2")
    assert new_id != draft_id
    assert store.get(draft_id).raw == b"v1" and store.get(draft_id).folder == "Outbox"
    assert store.get(new_id).raw == b"v2" and store.get(new_id).folder == "Drafts"
    store.delete([new_id])
    again = store.save_draft(new_id, identity="me@h.org", recipients=[], subject="s", body="v3")
    assert store.get(again).body == "v3"


# -- search ----------------------------------------------------------------------------------


@pytest.fixture
def mail(store: MailStore) -> dict[str, int]:
    return {
        "old": letter(
            store,
            subject="Garden party",
            body="bring the lemonade",
            sender="alice@example.org",
            received_at="2026-01-01T00:00:00Z",
        ),
        "new": letter(
            store,
            subject="Re: Garden party",
            body="café au lait instead",
            sender="bob@example.net",
            recipients=["alice@example.org"],
            received_at="2026-03-01T00:00:00Z",
        ),
        "archived": letter(
            store,
            folder="Archive",
            subject="Lemonade recipe",
            body="lemons, water, sugar",
            sender="carol@example.com",
            received_at="2026-02-01T00:00:00Z",
        ),
    }


def ids_for(store: MailStore, query: str, **kwargs) -> list[int]:
    return [s.id for s in store.search(query, **kwargs)]


def test_search_words_folder_order_and_limit(store: MailStore, mail: dict[str, int]) -> None:
    assert ids_for(store, "garden") == [mail["new"], mail["old"]]
    assert ids_for(store, "garden lemonade") == [mail["old"]]
    assert ids_for(store, "lemonade") == [mail["archived"], mail["old"]]
    assert ids_for(store, "lemonade", folder="Inbox") == [mail["old"]]
    assert ids_for(store, "lemonade", limit=1) == [mail["archived"]]
    assert ids_for(store, "GARDEN Party") == [mail["new"], mail["old"]]
    assert ids_for(store, "nothing-like-this") == []


def test_search_addresses_diacritics_and_prefix(store: MailStore, mail: dict[str, int]) -> None:
    assert ids_for(store, "alice@example.org") == [mail["new"], mail["old"]]
    assert ids_for(store, "cafe") == [mail["new"]]
    assert ids_for(store, "CAFÉ") == [mail["new"]]
    assert ids_for(store, "lemo") == [mail["archived"], mail["old"]]  # prefix on the last word
    assert ids_for(store, "water lemo") == [mail["archived"]]
    assert ids_for(store, "lemo water") == []  # only the last word is a prefix
    assert ids_for(store, "le") == []  # too short to expand


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   \t\n",
        '"',
        '""',
        '"garden',
        "garden AND",
        "AND",
        "OR NOT",
        "NEAR(garden party)",
        "*",
        "garden*",
        "-garden",
        "^garden",
        "subject:garden",
        "(garden",
        "garden)",
        "{sender}: x",
        "a'b",
        "\x00",
        "garden\x00party",
        "\ud800",
        "🌻 garden",
        "---",
        "+",
        "\\",
        "'; DROP TABLE letters; --",
    ],
)
def test_hostile_queries_never_raise(store: MailStore, mail: dict[str, int], query: str) -> None:
    result = store.search(query)
    assert isinstance(result, list)
    assert store.counts()["Inbox"] == (2, 0)


def test_operators_are_just_words(store: MailStore, mail: dict[str, int]) -> None:
    special = letter(store, subject="NOT AND OR", body="x-ray (vision) *star*")
    assert ids_for(store, "and") == [special]
    assert ids_for(store, "NOT") == [special]
    assert ids_for(store, "x-ray") == [special]
    assert ids_for(store, "(vision)") == [special]
    assert ids_for(store, '"garden" party') == [mail["new"], mail["old"]]
    assert store.search("") == [] and store.search("  ") == []


def test_fts_query_shape() -> None:
    assert fts_query("") == ""
    assert fts_query('say "hi"') == '"say" """hi"""*'
    assert fts_query("ab") == '"ab"'
    assert fts_query("a" * PREFIX_MIN) == f'"{"a" * PREFIX_MIN}"*'
    assert fts_query("a\x00b") == '"a" "b"'


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_any_text_is_a_safe_query(store: MailStore, mail: dict[str, int], query: str) -> None:
    assert isinstance(store.search(query), list)
    assert isinstance(store.search(query, folder="Archive", limit=5), list)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(words=st.lists(st.from_regex(r"[a-z]{3,8}", fullmatch=True), min_size=1, max_size=4))
def test_a_letter_is_found_by_its_own_words(store: MailStore, words: list[str]) -> None:
    letter_id = letter(store, subject=" ".join(words), body="")
    assert letter_id in ids_for(store, " ".join(reversed(words)), limit=10_000)


# -- threads ---------------------------------------------------------------------------------


def test_many_threads_write_and_read(store: MailStore) -> None:
    errors: list[BaseException] = []
    added: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for k in range(25):
                letter_id = letter(store, subject=f"thread {n} letter {k}", unread=True)
                store.set_unread([letter_id], k % 2 == 0)
                assert store.get(letter_id) is not None
                with lock:
                    added.append(letter_id)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(set(added)) == 150
    assert store.counts()["Inbox"] == (150, 6 * 13)
    assert len(store.search("thread letter", limit=1000)) == 150


def test_search_keeps_the_most_recently_stored_and_shows_them_by_date(tmp_path: Path) -> None:
    store = MailStore(Database(tmp_path / "m.db"))
    ids = [
        store.add(
            folder="Inbox",
            raw=b"x",
            subject=f"lunch {n}",
            body="common words here",
            received_at=f"2024-01-{n % 28 + 1:02d}T00:00:00Z",
        )
        for n in range(50)
    ]
    found = store.search("common", limit=10)
    assert sorted(s.id for s in found) == sorted(ids[-10:])  # the last 10 stored
    dates = [s.received_at for s in found]
    assert dates == sorted(dates, reverse=True)
    assert len(store.search("lunch", folder="Inbox", limit=3)) == 3


def test_mark_sent_moves_the_letter_with_the_fingerprints_returned(tmp_path: Path) -> None:
    store = MailStore(Database(tmp_path / "m.db"))
    letter = store.add(folder="Outbox", raw=b"x", received_at="2024-01-01T00:00:00Z")
    store.mark_sent(letter, ["a" * 64, "", "b" * 64])
    sent = store.get(letter)
    assert (sent.folder, sent.fingerprint) == ("Sent", f"{'a' * 64},{'b' * 64}")
    assert sent.received_at > "2024-01-01T00:00:00Z"


def test_ids_with_trust(tmp_path: Path) -> None:
    store = MailStore(Database(tmp_path / "m.db"))
    pending = [store.add(folder="Inbox", raw=b"x", trust="pending") for _ in range(3)]
    store.add(folder="Inbox", raw=b"x", trust="verified")
    assert store.ids_with_trust("pending") == pending
    with pytest.raises(ValueError):
        store.ids_with_trust("nonsense")


def test_correspondents_are_real_addresses_from_mail_that_came_or_went(store: MailStore) -> None:
    """Compose completes from these: newest first, once each, never a draft's half-typed
    address or a quarantined stranger."""
    t = "2026-01-0{}T00:00:00Z"
    letter(store, sender="Bob@Example.net", received_at=t.format(1))
    letter(
        store,
        folder="Sent",
        recipients="carol@example.org:1959,bob@example.net",
        received_at=t.format(2),
    )
    letter(store, folder="Outbox", recipients="dave@example.org", received_at=t.format(3))
    letter(store, folder="Drafts", recipients="ada@lovelace.demoHello,ada", received_at=t.format(4))
    letter(store, folder="Quarantine", sender="mallory@evil.example", received_at=t.format(5))
    letter(store, sender="not an address", received_at=t.format(6))
    assert store.correspondents() == [
        "dave@example.org",
        "carol@example.org:1959",
        "bob@example.net",
    ]
