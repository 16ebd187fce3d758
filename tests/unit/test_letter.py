"""Gemmail B and C: the §13 storage vectors, replies, forwards and round trips."""

from __future__ import annotations

from datetime import datetime

import pytest
from helpers.strategies import hosts
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.letter import (
    Gemmail,
    Sender,
    c_to_b,
    forward_message,
    forward_subject,
    new_message_c,
    parse_b,
    parse_c,
    parse_stored,
    quote,
    reply_all_recipients,
    reply_recipients,
    reply_subject,
    serialise_b,
    serialise_c,
    stamp_received,
    with_sender,
)
from misfin_tui.core.wire import RequestParser, b_fits, build_b_request, build_c_request

BOB = Address("bob", "example.org")
ALICE = Sender("alice@example.net", "Alice")
LIST = Sender("list@lists.example.com", "Example list")
NOW = "2024-05-01T12:00:00Z"


def request(data: bytes):
    result = RequestParser().feed(data)
    assert result is not None
    return result


# -- vectors ------------------------------------------------------------------------------------


def test_vector_1_b_stored() -> None:
    stored = stamp_received(request(b"misfin://bob@example.org Hi Bob!\r\n"), ALICE, NOW)
    assert stored == b"< alice@example.net Alice\n@ 2024-05-01T12:00:00Z\nHi Bob!"
    assert parse_stored(stored, "B") == Gemmail((ALICE,), (), (NOW,), "Hi Bob!")


def test_vector_2_b_multiline_body() -> None:
    stored = stamp_received(request(b"misfin://bob@example.org Hi\nHow are you?\r\n"), ALICE, NOW)
    assert parse_b(stored).body == "Hi\nHow are you?"


def test_vector_7_c_stored() -> None:
    data = b"misfin://bob@example.org\t36\r\n\n\n\n# Lunch?\nAre you free on Friday?\n"
    stored = stamp_received(request(data), ALICE, NOW)
    assert stored == (
        b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n# Lunch?\nAre you free on Friday?\n"
    )
    assert len(stored) == 79
    letter = parse_stored(stored, "C")
    assert letter == Gemmail((ALICE,), (), (NOW,), "# Lunch?\nAre you free on Friday?\n")
    assert letter.subject == "Lunch?"
    assert parse_c(request(data).message).subject == "Lunch?"


def test_vector_8_crlf_is_the_same_letter() -> None:
    crlf = b"\r\n\r\n\r\n# Lunch?\r\nAre you free on Friday?\r\n"
    lf = b"\n\n\n# Lunch?\nAre you free on Friday?\n"
    assert parse_c(crlf) == parse_c(lf)
    stored = stamp_received(request(b"misfin://bob@example.org\t41\r\n" + crlf), ALICE, NOW)
    assert stored.startswith(b"alice@example.net Alice\r\n\r\n2024-05-01T12:00:00Z\r\n")
    assert parse_c(stored) == parse_c(
        stamp_received(request(b"misfin://bob@example.org\t36\r\n" + lf), ALICE, NOW)
    )


def test_vector_13_unicode_body() -> None:
    letter = parse_c("\n\n\nÅsa says hej\n".encode())
    assert letter.body == "Åsa says hej\n"


def test_vector_15_list_hop() -> None:
    body = b"alice@example.net Alice\n\n2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n"
    stored = stamp_received(
        request(b"misfin://bob@example.org\t71\r\n" + body), LIST, "2024-03-01T10:00:00Z"
    )
    assert stored == (
        b"list@lists.example.com Example list, alice@example.net Alice\n\n"
        b"2024-03-01T10:00:00Z, 2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n"
    )
    assert len(stored) == 130
    letter = parse_c(stored)
    assert letter.senders == (LIST, ALICE)
    assert letter.timestamps == ("2024-03-01T10:00:00Z", "2024-03-01T09:59:58Z")
    assert reply_recipients(letter, "bob@example.org") == ["list@lists.example.com"]
    assert reply_all_recipients(letter, "bob@example.org") == ["list@lists.example.com"]


def test_vector_24_c_to_b_fallback() -> None:
    message = new_message_c("# Hi\nTwo\nlines\n", ["bob@example.org"])
    as_b = c_to_b(message)
    assert as_b == b"# Hi\nTwo\nlines\n"
    assert b_fits(BOB, as_b)
    assert request(build_b_request(BOB, as_b)).message == as_b


def test_vector_25_b_gemmail() -> None:
    letter = parse_b(
        "< list@lists.example.com Example list\n< alice@example.net Alice\n"
        ": bob@example.org carol@example.net\n@ 2024-03-01T10:00:00Z\n# Hello list\nFirst post.\n"
    )
    assert letter.senders == (LIST, ALICE)
    assert letter.recipients == ("bob@example.org", "carol@example.net")
    assert letter.timestamps == ("2024-03-01T10:00:00Z",)
    assert letter.subject == "Hello list"
    assert letter.body == "# Hello list\nFirst post.\n"


# -- C details ----------------------------------------------------------------------------------


def test_c_lists_with_optional_whitespace() -> None:
    letter = parse_c(
        "a@x.org A,b@y.org  Bee Bop \n c@z.org ,d@w.org\n"
        "2024-01-01T00:00:00+02:00,2024-01-01T00:00:00.5Z\nbody"
    )
    assert letter.senders == (Sender("a@x.org", "A"), Sender("b@y.org", "Bee Bop"))
    assert letter.recipients == ("c@z.org", "d@w.org")
    assert len(letter.timestamps) == 2 and letter.body == "body"


@pytest.mark.parametrize(
    "text",
    [
        "Hello Bob\nHow are you?\nBye\nmore",  # Lagrange: raw text, no metadata (A13)
        "# Lunch?\n\n\nbody",
        "a@x.org\nnot an address\n\nbody",
        "a@x.org\n\nyesterday\nbody",
        "a@x.org,,b@y.org\n\n\nbody",
        "one line",
        "two\nlines",
    ],
)
def test_c_lenient_fallback(text: str) -> None:
    assert parse_c(text) == Gemmail(body=text)


def test_c_three_lines_without_body() -> None:
    assert parse_c("a@x.org\n\n2024-01-01T00:00:00Z") == Gemmail(
        (Sender("a@x.org"),), (), ("2024-01-01T00:00:00Z",), ""
    )


def test_stamp_c_without_metadata_adds_fresh_lines() -> None:
    data = b"Hello Bob\nno metadata here\n"
    stored = stamp_received(request(build_c_request(BOB, data)), ALICE, NOW)
    assert (
        stored == b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\nHello Bob\nno metadata here\n"
    )


def test_stamp_c_keeps_recipients_and_last_line_without_newline() -> None:
    data = b"\nbob@example.org, carol@example.net\n"
    stored = stamp_received(request(build_c_request(BOB, data + b"")), ALICE, NOW)
    assert stored == b"alice@example.net Alice\nbob@example.org, carol@example.net\n" + NOW.encode()
    assert parse_c(stored).recipients == ("bob@example.org", "carol@example.net")


def test_stamp_sanitises_the_blurb() -> None:
    evil = Sender("Alice@Example.NET", "Alice, the\nbad\r\x00one")
    c = stamp_received(request(b"misfin://bob@example.org\t3\r\n\n\n\n"), evil, NOW)
    assert c.split(b"\n")[0] == b"Alice@example.net Alice the bad one"
    b = stamp_received(request(b"misfin://bob@example.org Hi\r\n"), evil, NOW)
    assert b.split(b"\n")[0] == b"< Alice@example.net Alice, the bad one"


def test_stamp_refuses_a_bad_sender_address() -> None:
    with pytest.raises(AddressError):
        stamp_received(request(b"misfin://bob@example.org Hi\r\n"), Sender("no at sign"), NOW)


def test_new_message_c() -> None:
    assert new_message_c("Hi", ["bob@example.org"]) == b"\n\n\nHi"
    assert new_message_c("Hi\r\nthere", ["Bob@Example.org:1959", "carol@example.net"]) == (
        b"\nBob@example.org, carol@example.net\n\nHi\nthere"
    )
    with pytest.raises(AddressError):
        new_message_c("Hi", ["not-an-address"])
    letter = parse_c(new_message_c("# S\nbody\n", ["a@x.org", "b@y.org"]))
    assert letter == Gemmail((), ("a@x.org", "b@y.org"), (), "# S\nbody\n")


def test_with_sender_names_us_on_a_new_letter_only() -> None:
    alice = Address.parse("alice@example.net")
    new = new_message_c("# S\nbody\n", ["a@x.org", "b@y.org"])
    assert with_sender(new, alice) == b"alice@example.net" + new
    assert parse_c(with_sender(new, alice) or b"").senders == (Sender("alice@example.net"),)
    forwarded = b"carol@z.org Carol\n\n2024-03-01T10:00:00Z\nbody"
    assert with_sender(forwarded, alice) is None  # a forward keeps its lines unchanged
    assert with_sender(b"\nnot addresses at all\nnor a date\nbody", alice) is None  # not metadata


def test_c_to_b_without_metadata_keeps_everything() -> None:
    assert c_to_b(b"Hello\r\nthere") == b"Hello\nthere"


# -- B details ----------------------------------------------------------------------------------


def test_b_metadata_only_in_the_leading_block() -> None:
    letter = parse_b("Hi\n< alice@example.net\n@ 2024-01-01T00:00:00Z\n")
    assert letter == Gemmail(body="Hi\n< alice@example.net\n@ 2024-01-01T00:00:00Z\n")


def test_b_never_inside_preformatted_text() -> None:
    text = "< alice@example.net Alice\n```\n< carol@example.net\n: x@y.org\n```\n"
    letter = parse_b(text)
    assert letter.senders == (ALICE,)
    assert letter.body == "```\n< carol@example.net\n: x@y.org\n```\n"


def test_b_text_that_looks_like_a_sigil_is_body() -> None:
    assert parse_b("@bob see you at 5\n").body == "@bob see you at 5\n"
    assert parse_b("<3 thanks!").body == "<3 thanks!"


def test_b_first_colon_and_at_only() -> None:
    letter = parse_b(
        "<alice@example.net\n:a@x.org\n: b@y.org\n@2024-01-02T00:00:00Z\n@ 2024-01-01T00:00:00Z\nx"
    )
    assert letter == Gemmail(
        (Sender("alice@example.net"),), ("a@x.org",), ("2024-01-02T00:00:00Z",), "x"
    )


def test_b_forward_chain_after_stamp() -> None:
    forwarded = (
        b"< alice@example.net Alice\n: bob@example.org carol@example.net\n"
        b"@ 2024-03-01T09:59:58Z\nHi"
    )
    stored = stamp_received(request(build_b_request(BOB, forwarded)), LIST, "2024-03-01T10:00:00Z")
    letter = parse_b(stored)
    assert letter.senders == (LIST, ALICE)
    assert letter.timestamps == ("2024-03-01T10:00:00Z",)  # the newest hop
    assert letter.recipients == ("bob@example.org", "carol@example.net")
    assert letter.body == "Hi"


# -- replies and forwards -----------------------------------------------------------------------


def test_reply_sets() -> None:
    letter = Gemmail(
        (ALICE,),
        ("Bob@example.org", "carol@example.net", "CAROL@Example.net", "dave@x.org"),
        (),
        "",
    )
    assert reply_recipients(letter, "bob@example.org") == ["alice@example.net"]
    assert reply_all_recipients(letter, "bob@example.org") == [
        "alice@example.net",
        "carol@example.net",
        "dave@x.org",
    ]
    assert reply_recipients(letter, "Alice@EXAMPLE.net") == []
    assert reply_all_recipients(Gemmail(), "bob@example.org") == []


def test_quote() -> None:
    assert quote("Hi\n\nthere\n") == "> Hi\n>\n> there\n"
    assert quote("") == ""


def test_subject_prefixes() -> None:
    assert reply_subject("Lunch?") == "Re: Lunch?"
    assert reply_subject("RE: Lunch?") == "RE: Lunch?"
    assert reply_subject("") == "Re:"
    assert forward_subject("Lunch?") == "Fwd: Lunch?"
    assert forward_subject("Fw: Lunch?") == "Fw: Lunch?"


def test_forward_c_is_unchanged() -> None:
    stored = b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n# Lunch?\nFriday?\n"
    assert forward_message(stored, "C") == stored


def test_forward_b_becomes_c() -> None:
    stored = b"< alice@example.net Alice\n@ 2024-05-01T12:00:00Z\nHi Bob!"
    forwarded = forward_message(stored, "B")
    assert forwarded == b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\nHi Bob!"
    assert parse_c(forwarded) == parse_b(stored)


def test_parse_stored_unknown_version() -> None:
    with pytest.raises(ValueError):
        parse_stored(b"", "A")


# -- round trips --------------------------------------------------------------------------------

addresses = st.builds(
    lambda m, h: f"{m}@{h}",
    st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True),
    hosts(label=10, dots=2),
)
blurbs = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=","),
    max_size=20,
).map(lambda s: " ".join(s.split()))
senders = st.builds(Sender, addresses, blurbs)
timestamps = st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
)
bodies = st.text(
    st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=200
)


@settings(max_examples=200)
@given(
    st.lists(senders, max_size=3),
    st.lists(addresses, max_size=3),
    st.lists(timestamps, max_size=3),
    bodies,
)
def test_c_round_trip(s: list[Sender], r: list[str], t: list[str], body: str) -> None:
    letter = Gemmail(tuple(s), tuple(r), tuple(t), body)
    assert parse_c(serialise_c(letter)) == letter
    assert parse_c(serialise_c(letter).encode()) == letter


@settings(max_examples=200)
@given(
    st.lists(senders, max_size=3),
    st.lists(addresses, max_size=3),
    st.lists(timestamps, max_size=1),
    bodies,
)
def test_b_round_trip(s: list[Sender], r: list[str], t: list[str], body: str) -> None:
    letter = Gemmail(tuple(s), tuple(r), tuple(t), body)
    assume(parse_b(body).body == body)  # a body opening with a metadata line is ambiguous in B
    assert parse_b(serialise_b(letter)) == letter


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for letter in (parse_c(data), parse_b(data)):
        assert isinstance(letter, Gemmail)
    assert b"\r" not in c_to_b(data)


@settings(max_examples=200)
@given(st.lists(senders, max_size=2), bodies, senders, timestamps)
def test_stamp_prepends_to_whatever_came(s: list[Sender], body: str, by: Sender, when: str) -> None:
    message = serialise_c(Gemmail(tuple(s), (), (), body)).encode()
    assume(len(message) <= 16384)
    stored = stamp_received(request(build_c_request(BOB, message)), by, when)
    letter = parse_c(stored)
    assert letter.senders == (by, *s)
    assert letter.timestamps == (when,)
    assert letter.body == body


def test_c_to_b_keeps_several_recipients_as_a_b_recipients_line() -> None:
    message = new_message_c("# Hi\nBoth of you\n", ["bob@example.org", "carol@example.net"])
    as_b = c_to_b(message)
    assert as_b == b": bob@example.org carol@example.net\n# Hi\nBoth of you\n"
    parsed = parse_b(as_b)
    assert parsed.recipients == ("bob@example.org", "carol@example.net")
    assert parsed.body == "# Hi\nBoth of you\n"
