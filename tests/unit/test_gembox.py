"""Gembox export and import: byte-for-byte round trips, both formats, bad files, no half imports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from misfin_tui.core import gembox
from misfin_tui.core.database import Database
from misfin_tui.core.gembox import GemboxError, GemboxFormat
from misfin_tui.core.store import MailStore, StoredLetter

C_HEAD = b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n"
B_HEAD = b"< alice@example.net Alice\n@ 2024-05-01T12:00:00Z\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MailStore]:
    db = Database(tmp_path / "mail.db")
    yield MailStore(db)
    db.close()


def stored(raw: bytes, version: str = "C", letter_id: int = 1, **fields: object) -> StoredLetter:
    values: dict[str, object] = {
        "id": letter_id,
        "folder": "Inbox",
        "raw": raw,
        "version": version,
        "sender": "",
        "sender_blurb": "",
        "recipients": (),
        "subject": "",
        "body": "",
        "received_at": "2024-05-01T12:00:00Z",
        "mailbox": "",
        "unread": False,
        "flagged": False,
        "trust": "none",
        "trust_reason": "",
        "sender_cert": None,
        "fingerprint": "",
        "in_reply_to": None,
        "identity": "",
    }
    values.update(fields)
    return StoredLetter(**values)  # type: ignore[arg-type]


def file_of(letters: list[StoredLetter]) -> bytes:
    out = io.BytesIO()
    gembox.write_gembox(out, letters)
    return out.getvalue()


# Lines that break naive writers and readers: separators of both formats, escapes, headings,
# field look-alikes, CRs and a lone backslash (our no-final-newline mark).
TRICKY = [
    b"[",
    b"[20240101T000000Z-00000001]",
    b"\\[",
    b"\\",
    b"\\\\",
    b"#",
    b"# Subject",
    b"##",
    b"",
    b"\r",
    b"<=====",
    b"<===== after",
    b"Senders: bob@example.org",
    b"Inbox: 2024-01-01T00:00:00Z true",
    b"MisfinB: 2024-01-01T00:00:00Z true",
    b"=> mid:20240101T000000Z In reply to",
    "Åsa \u2028 \x00".encode(),
    b"\xff\xfe not utf-8",
]
tricky_body = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))),
    max_size=12,
).flatmap(lambda lines: st.sampled_from([b"", b"\n"]).map(lambda end: b"\n".join(lines) + end))
raw_letters = st.one_of(
    st.tuples(st.just("C"), tricky_body.map(lambda body: C_HEAD + body)),
    st.tuples(st.just("B"), tricky_body.map(lambda body: B_HEAD + body)),
    st.tuples(st.sampled_from(["B", "C"]), tricky_body),  # no metadata at all (drafts)
    st.tuples(st.sampled_from(["B", "C"]), st.binary(max_size=200)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_letters, max_size=6))
def test_any_letters_round_trip_byte_for_byte_through_a_file(
    letters: list[tuple[str, bytes]],
) -> None:
    data = file_of([stored(raw, version, n + 1) for n, (version, raw) in enumerate(letters)])
    box = gembox.parse_gembox(data)
    assert box.format is GemboxFormat.CURRENT
    assert [(letter.version, letter.raw) for letter in box.letters] == letters
    # Other readers split on "[" lines: only our entries' id lines may start with one.
    assert sum(line.startswith(b"[") for line in data.split(b"\n")) == len(letters)


@given(tricky_body)
def test_every_entry_body_starts_with_a_heading_line_for_other_readers(body: bytes) -> None:
    lines = gembox.entry_bytes(stored(C_HEAD + body)).split(b"\n")
    assert lines[1:4] == [
        b"Senders: alice@example.net Alice",
        b"Recipients: ",
        b"Timestamps: 2024-05-01T12:00:00Z",
    ]
    assert lines[4] == b"Inbox: 2024-05-01T12:00:00Z true"
    assert lines[5].startswith(b"#")


def test_c_metadata_lines_are_written_as_fields_verbatim_crlf_included() -> None:
    raw = (
        b"alice@example.net Alice\r\nbob@example.org, carol@example.net\r\n"
        b"2024-05-01T12:00:00Z\r\n# Lunch?\r\nFriday?\r\n"
    )
    entry = gembox.entry_bytes(stored(raw, unread=True, flagged=True))
    assert b"Senders: alice@example.net Alice\r\n" in entry
    assert b"Recipients: bob@example.org, carol@example.net\r\n" in entry
    assert b"Unread: 2024-05-01T12:00:00Z true\n" in entry
    assert b"Flagged: 2024-05-01T12:00:00Z true\n" in entry
    assert entry.startswith(b"[20240501T120000Z-00000001]\n")
    (letter,) = gembox.parse_gembox(entry).letters
    assert letter.raw == raw and letter.has_tag("Unread") and letter.has_tag("Flagged")


def test_store_round_trip_keeps_bytes_version_flags_and_dates(
    store: MailStore, tmp_path: Path
) -> None:
    raws = [
        ("C", C_HEAD + b"# Lunch?\n[not an id]\n\\backslash\nno final newline"),
        ("B", B_HEAD + b"Hi Bob!"),
        ("C", b"# a draft\nwith no metadata\n"),
        ("C", b"\nbob@example.org, carol@example.net\n\n# Sent to two\n"),
    ]
    for n, (version, raw) in enumerate(raws):
        store.add(
            folder="Inbox",
            raw=raw,
            version=version,
            unread=n % 2 == 0,
            flagged=n == 1,
            received_at=f"2024-05-0{n + 1}T12:00:00Z",
            mailbox="bob@example.org",
        )
    result = gembox.export_gembox(store, tmp_path / "box.gembox")
    assert result.letters == 4 and result.bytes_written == (tmp_path / "box.gembox").stat().st_size
    assert (tmp_path / "box.gembox").read_bytes().startswith(b"Mailbox: bob@example.org\n")

    other = MailStore(Database(tmp_path / "other.db"))
    imported = gembox.import_file(other, tmp_path / "box.gembox")
    assert imported.format is GemboxFormat.CURRENT and len(imported.added) == 4
    letters = [other.get(i) for i in imported.added]
    assert [(x.version, x.raw) for x in letters if x] == raws
    assert [(x.unread, x.flagged) for x in letters if x] == [
        (True, False),
        (False, True),
        (True, False),
        (False, False),
    ]
    assert [x.received_at for x in letters if x] == [f"2024-05-0{n}T12:00:00Z" for n in range(1, 5)]
    first = letters[0]
    assert first is not None
    assert (first.sender, first.sender_blurb, first.subject) == (
        "alice@example.net",
        "Alice",
        "Lunch?",
    )
    assert first.trust == "unverified" and "box.gembox" in first.trust_reason
    assert first.mailbox == "bob@example.org" and first.recipients == ("bob@example.org",)
    assert letters[3] is not None and letters[3].recipients == (
        "bob@example.org",
        "carol@example.net",
    )


def test_export_one_folder_oldest_first(store: MailStore, tmp_path: Path) -> None:
    store.add(folder="Inbox", raw=C_HEAD + b"# new\n", received_at="2024-05-03T00:00:00Z")
    store.add(folder="Archive", raw=C_HEAD + b"# archived\n", received_at="2024-05-02T00:00:00Z")
    store.add(folder="Inbox", raw=C_HEAD + b"# old\n", received_at="2024-05-01T00:00:00Z")
    gembox.export_gembox(store, tmp_path / "inbox.gembox", folder="Inbox")
    box = gembox.parse_gembox((tmp_path / "inbox.gembox").read_bytes())
    assert [letter.raw.rsplit(b"# ", 1)[1] for letter in box.letters] == [b"old\n", b"new\n"]
    gembox.export_gembox(store, tmp_path / "all.gembox")
    box = gembox.parse_gembox((tmp_path / "all.gembox").read_bytes())
    assert len(box.letters) == 3 and box.letters[1].has_tag("Archive")


def test_export_never_clobbers_and_leaves_no_half_file(store: MailStore, tmp_path: Path) -> None:
    store.add(folder="Inbox", raw=C_HEAD + b"# x\n")
    target = tmp_path / "box.gembox"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        gembox.export_gembox(store, target)
    assert target.read_bytes() == b"precious"
    gembox.export_gembox(store, target, overwrite=True)
    assert gembox.parse_gembox(target.read_bytes()).letters[0].raw == C_HEAD + b"# x\n"
    with pytest.raises(ValueError):
        gembox.export_gembox(store, tmp_path / "bad.gembox", folder="Nowhere")
    assert sorted(p.name for p in tmp_path.iterdir() if "gembox" in p.name) == ["box.gembox"]


def test_reads_what_gemmail_python_writes() -> None:
    """gemmail-python 1.0.32's writer: comma lists without spaces, empty fields left out,
    a lone "#" for no subject, nothing escaped."""
    data = (
        b"Mailbox: bob@example.org Bob\n"
        b"Fingerprint: ab12\n"
        b"CreatedTags: Work\n"
        b"[20240501T120000Z-1a2b3c4d]\n"
        b"Senders: list@lists.example.com Example list,alice@example.net Alice\n"
        b"Timestamps: 2024-05-01T12:00:00Z,2024-05-01T11:59:58Z\n"
        b"Inbox: 2024-05-01T12:00:00Z true\n"
        b"Unread: 2024-05-01T12:05:00Z false\n"
        b"# Hello list\n"
        b"First post.\n"
        b"[20240502T080000Z-00000002]\n"
        b"Senders: carol@example.net\n"
        b"Work: 2024-05-02T08:00:00Z true\n"
        b"#\n"
        b"No heading here\n"
    )
    box = gembox.parse_gembox(data)
    assert (box.mailbox, box.mailbox_blurb, box.fingerprint) == ("bob@example.org", "Bob", "ab12")
    first, second = box.letters
    assert first.raw == (
        b"list@lists.example.com Example list,alice@example.net Alice\n\n"
        b"2024-05-01T12:00:00Z,2024-05-01T11:59:58Z\n# Hello list\nFirst post.\n"
    )
    assert first.has_tag("Inbox") and not first.has_tag("Unread") and first.line == 4
    assert second.raw == b"carol@example.net\n\n\nNo heading here\n" and second.has_tag("Work")


def test_old_format_test_vector_26_and_both_divider_styles(store: MailStore) -> None:
    vector = (
        b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n# Lunch?\nFriday?\n<=====\n"
        b"carol@example.net\n\n2024-05-02T08:00:00Z\nNo heading here\n"
    )
    box = gembox.parse_gembox(vector)
    assert box.format is GemboxFormat.OLD
    assert [letter.raw for letter in box.letters] == [
        b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n# Lunch?\nFriday?\n",
        b"carol@example.net\n\n2024-05-02T08:00:00Z\nNo heading here\n",
    ]
    assert [letter.line for letter in box.letters] == [1, 7]
    trailing = vector.replace(b"<=====\n", b"<========== next\n") + b"<=====\n"
    assert gembox.parse_gembox(trailing).letters == box.letters
    result = gembox.import_gembox(store, vector)
    subjects = [store.get(i).subject for i in result.added]  # type: ignore[union-attr]
    assert subjects == ["Lunch?", ""]
    received = [store.get(i).received_at for i in result.added]  # type: ignore[union-attr]
    assert received == ["2024-05-01T12:00:00Z", "2024-05-02T08:00:00Z"]


def test_old_format_b_variant() -> None:
    data = (
        B_HEAD
        + b"# One\n<=====\n< carol@example.net\n: bob@example.org dan@example.org\n"
        + b"@ 2024-05-02T08:00:00Z\nTwo"
    )
    first, second = gembox.parse_gembox(data).letters
    assert (first.version, first.raw) == ("B", B_HEAD + b"# One\n")
    assert second.version == "B" and second.raw.endswith(b"\nTwo")


BAD_FILES = [
    # (file, line at fault, words in the message)
    (b"[a]\nSenders: a@b.c\n# x\n[not closed\n# y\n", 4, "[id] line"),
    (b"[a]\n# x\nbody\n[b]\nTimestamps: yesterday\n# y\n", 5, "Timestamps"),
    (b"[a]\nSenders: not an address\n# x\n", 2, "Senders"),
    (b"[a]\nInbox: true\n# x\n", 2, "date"),
    (b"[a]\nSenders: a@b.c\n[b]\n# y\n", 1, "no body"),
    (b"[a]\nSenders: a@b.c\njust text\n# y\n", 3, "expected"),
    (b"[a]\nSenders: a@b.c\nSenders: d@e.f\n# y\n", 3, "second"),
    (
        b"Mailbox: a@b.c\n[a]\nSenders: a@b.c\nMisfinB: 2024-01-01T00:00:00Z true\n# y\n",
        3,
        "MisfinB",
    ),
    (C_HEAD + b"# ok\n<=====\nbob@example.org\n\nnot a time\n# x\n", 8, "timestamps"),
    (C_HEAD + b"# ok\n<=====\njust some text\n", 6, "three metadata lines"),
    (C_HEAD + b"# ok\n<=====\n<not a sender\n", 6, "B sender"),
]


@pytest.mark.parametrize(("data", "line", "words"), BAD_FILES)
def test_bad_files_name_the_line_and_store_nothing(
    store: MailStore, tmp_path: Path, data: bytes, line: int, words: str
) -> None:
    good = C_HEAD + b"# stored before\n"
    store.add(folder="Inbox", raw=good)
    path = tmp_path / "bad.gembox"
    path.write_bytes(data)
    with pytest.raises(GemboxError) as caught:
        gembox.import_file(store, path)
    assert caught.value.line == line, caught.value
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{path}: line {line}: ")
    assert store.count("Inbox") == 1


def test_a_failure_while_adding_rolls_the_whole_import_back(
    store: MailStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = file_of([stored(C_HEAD + f"# {n}\n".encode(), letter_id=n + 1) for n in range(5)])
    real_add = MailStore.add
    calls = 0

    def failing_add(self: MailStore, **fields: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError("disk full")
        return real_add(self, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(MailStore, "add", failing_add)
    with pytest.raises(OSError):
        gembox.import_gembox(store, data)
    assert store.count("Inbox") == 0 and calls == 4


def test_letters_already_stored_or_entries_repeated_are_added_once(store: MailStore) -> None:
    known = C_HEAD + b"# known\n"
    store.add(folder="Archive", raw=known)
    fresh = stored(C_HEAD + b"# fresh\n", letter_id=2)  # the same entry (same id) twice
    data = file_of([stored(known), fresh, fresh, stored(C_HEAD + b"# known \n", letter_id=3)])
    result = gembox.import_gembox(store, data, folder="Archive")
    assert (len(result.added), result.already_stored, result.repeated, result.read) == (2, 1, 1, 4)
    again = gembox.import_gembox(store, data)
    assert (again.added, again.already_stored, again.repeated) == ((), 3, 1)
    assert store.count("Archive") == 3 and store.count("Inbox") == 0


@pytest.mark.parametrize("old_format", [False, True], ids=["current", "old"])
def test_a_letter_saved_twice_is_two_letters_and_a_second_import_adds_none(
    store: MailStore, old_format: bool
) -> None:
    """Byte-identical letters in one file (two entries, or two old-format chunks without ids)
    are two letters; the same file imported again adds nothing."""
    raw = C_HEAD + b"# Saved twice\nsame bytes\n"
    other = C_HEAD + b"# Once\n"
    if old_format:
        data = raw + b"<=====\n" + other + b"<=====\n" + raw
    else:
        data = file_of(
            [stored(raw, letter_id=1), stored(other, letter_id=2), stored(raw, letter_id=3)]
        )
    result = gembox.import_gembox(store, data)
    assert (len(result.added), result.already_stored, result.repeated) == (3, 0, 0)
    assert [store.get(i).raw for i in result.added] == [raw, other, raw]  # type: ignore[union-attr]
    again = gembox.import_gembox(store, data)
    assert (again.added, again.already_stored, again.repeated) == ((), 3, 0)
    assert store.count("Inbox") == 3


def test_an_export_holding_identical_letters_imports_every_one_of_them(
    store: MailStore, tmp_path: Path
) -> None:
    """Lossless both ways: a store with the same letter twice (and once in the Trash) exports and
    imports back as the same letters, each one; into the store it came from, none is added."""
    raw = C_HEAD + b"# Twice\n"
    for folder in ("Inbox", "Inbox", "Trash"):
        store.add(folder=folder, raw=raw, received_at="2024-05-01T12:00:00Z")
    store.add(folder="Inbox", raw=C_HEAD + b"# Else\n", received_at="2024-05-02T12:00:00Z")
    assert gembox.export_gembox(store, tmp_path / "all.gembox").letters == 4
    fresh = MailStore(Database(tmp_path / "fresh.db"))
    imported = gembox.import_file(fresh, tmp_path / "all.gembox")
    assert len(imported.added) == 4
    before = sorted(bytes(x.raw) for x in store.letters_oldest_first(None))
    assert sorted(bytes(x.raw) for x in fresh.letters_oldest_first(None)) == before
    assert gembox.import_file(fresh, tmp_path / "all.gembox").added == ()
    back = gembox.import_file(store, tmp_path / "all.gembox")
    assert (back.added, back.already_stored) == ((), 4)


def test_import_folder_choice(store: MailStore) -> None:
    data = file_of([stored(C_HEAD + b"# x\n")])
    with pytest.raises(ValueError, match="Outbox"):
        gembox.import_gembox(store, data, folder="Outbox")
    result = gembox.import_gembox(store, data, folder="Sent")
    letter = store.get(result.added[0])
    assert letter is not None and letter.folder == "Sent" and letter.trust == "none"


def test_a_byte_order_mark_is_not_part_of_the_file() -> None:
    data = file_of([stored(C_HEAD + b"# x\n")])
    assert gembox.parse_gembox(b"\xef\xbb\xbf" + data) == gembox.parse_gembox(data)
    old = b"\xef\xbb\xbf" + C_HEAD + b"# x\n"
    assert gembox.parse_gembox(old).letters[0].raw == C_HEAD + b"# x\n"


def test_empty_and_header_only_files_hold_no_letters() -> None:
    assert gembox.parse_gembox(b"").letters == ()
    assert gembox.parse_gembox(b"Mailbox: a@b.c\n\nDescription: mine\n").description == "mine"


def test_store_ids_with_raw_finds_exact_bytes_only(store: MailStore) -> None:
    first = store.add(folder="Inbox", raw=b"abc")
    second = store.add(folder="Trash", raw=b"abc")
    store.add(folder="Inbox", raw=b"abd")
    assert store.ids_with_raw([b"abc", b"xyz", b"ab"]) == {b"abc": (first, second)}


def test_store_letters_oldest_first_pages_through_ties_and_folders(store: MailStore) -> None:
    made = []
    for n in range(23):
        folder = "Archive" if n % 4 == 0 else "Inbox"
        when = f"2024-05-0{1 + n % 3}T00:00:00Z"  # many letters share a date
        made.append((when, store.add(folder=folder, raw=b"%d" % n, received_at=when), folder))
    everything = [letter_id for _, letter_id, _ in sorted(made)]
    assert [x.id for x in store.letters_oldest_first(batch=4)] == everything
    inbox = [letter_id for when, letter_id, folder in sorted(made) if folder == "Inbox"]
    assert [x.id for x in store.letters_oldest_first("Inbox", batch=5)] == inbox
    assert [x.raw for x in store.letters_oldest_first("Trash")] == []
    assert store.mailboxes_of() == []
