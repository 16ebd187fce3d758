"""Threads over letter summaries, mid: links and forwarding chains."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from misfin_tui.core.database import Database
from misfin_tui.core.remote import RemoteLetter
from misfin_tui.core.store import MailStore, Summary
from misfin_tui.core.threads import (
    Hop,
    Order,
    Thread,
    address_key,
    build_threads,
    forward_chain,
    mid_links,
    normalise_subject,
    resolve_mid_links,
    strip_prefixes,
)

ME = "me@home.example"
ALICE = "alice@example.net"
BOB = "bob@example.org"
CAROL = "carol@example.com"


def letter(
    letter_id: int,
    subject: str,
    sender: str,
    recipients: tuple[str, ...] = (ME,),
    day: int | None = None,
    *,
    unread: bool = False,
    flagged: bool = False,
) -> Summary:
    day = letter_id if day is None else day
    return Summary(
        id=letter_id,
        folder="Sent" if sender == ME else "Inbox",
        sender=sender,
        sender_blurb="",
        subject=subject,
        received_at=f"2024-05-{day:02d}T12:00:00Z",
        unread=unread,
        trust="verified",
        recipients=recipients,
        flagged=flagged,
    )


def ids(thread: Thread) -> list[int]:
    return [m.id for m in thread.members]


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Re: Lunch", "Lunch"),
        ("RE: re:Lunch", "Lunch"),
        ("Fwd: Re: Lunch", "Lunch"),
        ("FW: Lunch", "Lunch"),
        ("Re[2]: Lunch", "Lunch"),
        ("Re^3: Lunch", "Lunch"),
        ("AW: SV: Lunch", "Lunch"),
        ("RE :  Lunch   on  Friday", "Lunch on Friday"),
        ("Re:", ""),
        ("Reply to all", "Reply to all"),
        ("Regarding: Lunch", "Regarding: Lunch"),
        ("Lunch: Re: the plan", "Lunch: Re: the plan"),
    ],
)
def test_strip_prefixes(subject: str, stripped: str) -> None:
    assert strip_prefixes(subject) == stripped
    assert normalise_subject(subject) == stripped.casefold()


def test_a_conversation_with_replies_both_ways_is_one_thread() -> None:
    letters = [
        letter(1, "Lunch?", ALICE),
        letter(2, "Re: Lunch?", ME, (ALICE,)),
        letter(3, "RE: lunch?", "Alice@Example.NET", unread=True),
        letter(4, "Lunch?", BOB),  # same subject, someone else: another conversation
        letter(5, "Other", ALICE, flagged=True),
    ]
    threads = build_threads(letters, me=[ME])
    assert [ids(t) for t in threads] == [[5], [4], [3, 2, 1]]
    lunch = threads[2]
    assert lunch.root.id == 1 and lunch.id == 1 and lunch.latest.id == 3
    assert (lunch.count, lunch.unread, lunch.flagged) == (3, 1, False)
    assert lunch.subject == "Lunch?" and lunch.correspondents == {ALICE}
    assert threads[0].flagged
    oldest = build_threads(letters, me=[ME], order=Order.OLDEST_FIRST)
    assert [ids(t) for t in oldest] == [[5], [4], [1, 2, 3]]


def test_a_shared_correspondent_joins_a_reply_all() -> None:
    letters = [
        letter(1, "Plans", ALICE, (ME, BOB)),
        letter(2, "Re: Plans", BOB, (ALICE, ME)),
        letter(3, "Re: Plans", CAROL),  # same subject, nobody in common
    ]
    threads = build_threads(letters, me=[ME])
    assert sorted(ids(t) for t in threads) == [[2, 1], [3]]
    joined = next(t for t in threads if t.count == 2)
    assert joined.correspondents == {ALICE, BOB}


def test_without_me_every_letter_to_us_shares_a_correspondent() -> None:
    letters = [letter(1, "Hello", ALICE), letter(2, "Hello", BOB)]
    assert len(build_threads(letters, me=[ME])) == 2
    assert len(build_threads(letters)) == 1


def test_empty_subjects_group_only_through_links() -> None:
    letters = [
        letter(1, "", ALICE),
        letter(2, "", ALICE),
        letter(3, "#", ALICE),
        letter(4, "Re:", ALICE),
    ]
    assert len(build_threads(letters, me=[ME])) == 4
    linked = build_threads(letters, me=[ME], links={2: 1, 4: 99, 99: 3})
    assert sorted(ids(t) for t in linked) == [[2, 1], [3], [4]]


def test_links_join_different_subjects() -> None:
    letters = [letter(1, "Lunch?", ALICE), letter(2, "Friday then", ME, (ALICE,))]
    (thread,) = build_threads(letters, me=[ME], links={2: 1})
    assert ids(thread) == [2, 1] and thread.subject == "Lunch?"


def test_ties_on_the_date_break_by_id_and_input_order_does_not_matter() -> None:
    letters = [letter(n, "Same", ALICE, day=1) for n in range(1, 6)]
    letters += [letter(n, f"Alone {n}", BOB, day=1) for n in range(6, 9)]
    expected = [ids(t) for t in build_threads(letters, me=[ME])]
    assert expected == [[8], [7], [6], [5, 4, 3, 2, 1]]
    for seed in range(5):
        random.Random(seed).shuffle(letters)
        assert [ids(t) for t in build_threads(letters, me=[ME])] == expected


def test_no_letters_no_threads() -> None:
    assert build_threads([]) == []


# -- against a slow reference ---------------------------------------------------------------------

PEOPLE = [ALICE, BOB, CAROL, ME, "Bob@Example.org"]
SUBJECTS = ["Lunch", "Re: Lunch", "re: LUNCH", "Fwd: Lunch", "Plans", "Re: Plans", "", "Re:"]


def reference_partition(
    letters: list[Summary], me: set[str], links: dict[int, int]
) -> set[frozenset[int]]:
    """Connected components, pair by pair: quadratic, and obviously what the docstring says."""
    ours = {address_key(a) for a in me}

    def others(s: Summary) -> set[str]:
        return {address_key(a) for a in (s.sender, *s.recipients) if a} - ours

    component = {s.id: {s.id} for s in letters}

    def join(a: int, b: int) -> None:
        merged = component[a] | component[b]
        for member in merged:
            component[member] = merged

    for i, a in enumerate(letters):
        for b in letters[i + 1 :]:
            subject = normalise_subject(a.subject)
            if subject and subject == normalise_subject(b.subject):
                oa, ob = others(a), others(b)
                if oa & ob or (not oa and not ob):
                    join(a.id, b.id)
    known = set(component)
    for child, answered in links.items():
        if child in known and answered in known:
            join(child, answered)
    return {frozenset(c) for c in component.values()}


summaries = st.lists(
    st.tuples(
        st.sampled_from(SUBJECTS),
        st.sampled_from(PEOPLE),
        st.lists(st.sampled_from(PEOPLE), max_size=3).map(tuple),
        st.integers(1, 5),
        st.booleans(),
    ),
    max_size=25,
).map(
    lambda rows: [
        letter(n + 1, subject, sender, recipients, day, unread=unread)
        for n, (subject, sender, recipients, day, unread) in enumerate(rows)
    ]
)


@settings(max_examples=300)
@given(summaries, st.dictionaries(st.integers(1, 30), st.integers(1, 30), max_size=5), st.randoms())
def test_threads_match_the_reference_and_are_deterministic(
    letters: list[Summary], links: dict[int, int], rnd: random.Random
) -> None:
    threads = build_threads(letters, me=[ME], links=links)
    assert {frozenset(ids(t)) for t in threads} == reference_partition(letters, {ME}, links)
    assert sorted(i for t in threads for i in ids(t)) == [s.id for s in letters]
    key = lambda s: (s.received_at, s.id)  # noqa: E731
    for t in threads:
        assert list(t.members) == sorted(t.members, key=key, reverse=True)
        assert t.root == min(t.members, key=key) and t.latest == max(t.members, key=key)
        assert t.unread == sum(m.unread for m in t.members)
    assert [key(t.latest) for t in threads] == sorted(
        (key(t.latest) for t in threads), reverse=True
    )
    shuffled = list(letters)
    rnd.shuffle(shuffled)
    assert build_threads(shuffled, me=[ME], links=links) == threads


# -- mid: links -----------------------------------------------------------------------------------


def test_mid_links_reads_titlani_reply_lines_only() -> None:
    body = (
        "# Re: Lunch\n"
        "=> mid:20240501T120000Z-1a2b3c4d In reply to\n"
        "=>mid:20240430T000000Z\n"
        "=> mid:20240501T120000Z-1a2b3c4d again\n"
        "text mentioning mid:nothing\n"
        "```\n=> mid:inside-preformatted\n```\n"
        "=> gemini://example.org/ a link\n"
        "=> mid: empty\n"
    )
    assert mid_links(body) == ("20240501T120000Z-1a2b3c4d", "20240430T000000Z")


def test_resolve_mid_links() -> None:
    bodies = [
        (2, "=> mid:unknown\n=> mid:A In reply to\n"),
        (3, "=> mid:C self\n"),
        (4, "no links"),
    ]
    assert resolve_mid_links(bodies, {"A": 1, "C": 3}) == {2: 1}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MailStore]:
    db = Database(tmp_path / "mail.db")
    yield MailStore(db)
    db.close()


def test_store_links_feed_threads(store: MailStore) -> None:
    first = store.add(folder="Inbox", raw=b"x", sender=ALICE, subject="Lunch?", recipients=[ME])
    reply = store.add(
        folder="Sent", raw=b"y", sender=ME, subject="Friday", recipients=[ALICE], in_reply_to=first
    )
    orphan = store.add(folder="Sent", raw=b"z", sender=ME, subject="Gone", in_reply_to=first + 99)
    titlani = store.add(
        folder="Inbox", raw=b"w", sender=BOB, subject="Thanks", body="=> mid:M1 In reply to\n"
    )
    assert store.reply_parents() == {reply: first}
    assert store.bodies_with_mid_links() == [(titlani, "=> mid:M1 In reply to\n")]
    assert store.bodies_with_mid_links("Sent") == []
    links = {
        **store.reply_parents(),
        **resolve_mid_links(store.bodies_with_mid_links(), {"M1": orphan}),
    }
    everything = store.summaries("Inbox") + store.summaries("Sent")
    threads = build_threads(everything, me=[ME], links=links)
    assert sorted(ids(t) for t in threads) == [[reply, first], [titlani, orphan]]


def test_remote_letter_ids_name_synced_letters_still_here(store: MailStore) -> None:
    def remote(account: str, remote_id: str, subject: str) -> RemoteLetter:
        return RemoteLetter(account, remote_id, "", "Inbox", b"r", sender=BOB, subject=subject)

    kept, deleted, other = store.add_remote(
        [remote(ME, "M1", "Lunch?"), remote(ME, "M2", "Old"), remote(ALICE, "A1", "Hi")]
    )
    store.add(folder="Inbox", raw=b"local", sender=BOB, subject="Not from home")
    store.delete([deleted])
    assert store.remote_letter_ids() == {"M1": kept, "A1": other}
    assert store.remote_letter_ids(ME) == {"M1": kept}
    reply = store.add(folder="Inbox", raw=b"w", sender=BOB, subject="Re", body="=> mid:M1 Re\n")
    assert resolve_mid_links(store.bodies_with_mid_links(), store.remote_letter_ids()) == {
        reply: kept
    }


# -- forwarding chains ----------------------------------------------------------------------------


def test_c_chain_newest_first_test_vector_15() -> None:
    raw = (
        b"list@lists.example.com Example list, alice@example.net Alice\n\n"
        b"2024-03-01T10:00:00Z, 2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n"
    )
    assert forward_chain(raw, "C") == (
        Hop("list@lists.example.com", "Example list", "2024-03-01T10:00:00Z", True),
        Hop(ALICE, "Alice", "2024-03-01T09:59:58Z", False),
    )


def test_c_chain_shows_a_prefilled_sender_once_and_tolerates_missing_timestamps() -> None:
    raw = b"alice@example.net Alice, Alice@example.net, bob@example.org\n\n2024-03-01T10:00:00Z\nx"
    assert forward_chain(raw, "C") == (
        Hop(ALICE, "Alice", "2024-03-01T10:00:00Z", True),
        Hop(BOB, "", "", False),
    )


def test_b_chain_pairs_each_sender_with_its_timestamp_test_vector_25() -> None:
    raw = (
        b"< list@lists.example.com Example list\n< alice@example.net Alice\n"
        b": bob@example.org carol@example.net\n@ 2024-03-01T10:00:00Z\n# Hello list\nFirst post.\n"
    )
    assert forward_chain(raw, "B") == (
        Hop("list@lists.example.com", "Example list", "", True),
        Hop(ALICE, "Alice", "2024-03-01T10:00:00Z", False),
    )
    forwarded = (
        b"< bob@example.org Bob\r\n@ 2024-01-02T00:00:00Z\r\n< alice@example.net Alice\r\n"
        b"@ 2024-01-01T00:00:00Z\r\nbody\r\n< carol@example.com not metadata any more\r\n"
    )
    assert forward_chain(forwarded, "B") == (
        Hop(BOB, "Bob", "2024-01-02T00:00:00Z", True),
        Hop(ALICE, "Alice", "2024-01-01T00:00:00Z", False),
    )


def test_chains_of_letters_without_metadata_are_empty() -> None:
    assert forward_chain(b"# just a body\n", "C") == ()
    assert forward_chain(b"Hi Bob!", "B") == ()
    with pytest.raises(ValueError):
        forward_chain(b"", "A")
