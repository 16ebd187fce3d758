"""Wire framing: the §13 vectors, the limits, and that parsers only ever raise ProtocolError."""

from __future__ import annotations

import contextlib

import pytest
from helpers.strategies import hosts
from hypothesis import given, settings
from hypothesis import strategies as st

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.fingerprint import NotAFingerprint
from misfin_tui.core.fingerprint import parse as normalise_fingerprint
from misfin_tui.core.status import NotMisfinRequest, ProtocolError, Status
from misfin_tui.core.wire import (
    B_REQUEST_MAX,
    C_BODY_MAX,
    C_HEADER_MAX,
    RESPONSE_MAX,
    Request,
    RequestParser,
    Response,
    ResponseParser,
    b_fits,
    build_b_request,
    build_c_request,
    build_response,
    parse_redirect,
    parse_response,
    parse_retry_after,
)

BOB = Address("bob", "example.org")


def parse_whole(data: bytes) -> Request | None:
    return RequestParser().feed(data)


def parse_bytewise(data: bytes) -> Request | None:
    parser = RequestParser()
    result = None
    for i in range(len(data)):
        result = parser.feed(data[i : i + 1])
        if result is not None:
            break
    return result


def rejects(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_whole(data)
    assert caught.value.status == Status.BAD_REQUEST
    return caught.value


# -- status -------------------------------------------------------------------------------------


def test_status_category_and_description() -> None:
    assert Status.MAILBOX_NOT_FOUND.category == 5
    assert Status.MAILBOX_NOT_FOUND.description == "that mailbox does not exist on the server"
    assert all(status.description for status in Status)
    assert {status.category for status in Status} == {2, 3, 4, 5, 6}


def test_status_for_code_falls_back_to_category() -> None:
    assert Status.for_code(51) is Status.MAILBOX_NOT_FOUND
    assert Status.for_code(57) is Status.PERMANENT_ERROR
    with pytest.raises(ProtocolError):
        Status.for_code(15)


# -- B requests (vectors 1-6, 16, 20, 21) -------------------------------------------------------


@pytest.mark.parametrize("feed", [parse_whole, parse_bytewise])
def test_vector_1_b_request(feed) -> None:
    request = feed(b"misfin://bob@example.org Hi Bob!\r\n")
    assert request == Request("B", BOB, b"Hi Bob!")
    assert not request.is_blank


def test_vector_2_b_keeps_lf() -> None:
    assert parse_whole(b"misfin://bob@example.org Hi\nHow are you?\r\n").message == (
        b"Hi\nHow are you?"
    )


def test_vector_3_space_before_tab_is_b() -> None:
    request = parse_whole(b"misfin://bob@example.org col1\tcol2\r\n")
    assert request.version == "B" and request.message == b"col1\tcol2"


@pytest.mark.parametrize("message", [b"", b"   ", b" \n "])
def test_vector_4_b_blank(message: bytes) -> None:
    assert parse_whole(b"misfin://bob@example.org " + message + b"\r\n").is_blank


def test_vector_5_no_separator() -> None:
    rejects(b"misfin://bob@example.org\r\n")


def test_vector_6_b_limits() -> None:
    fits = b"misfin://bob@example.org " + b"x" * 2021 + b"\r\n"
    assert len(fits) == B_REQUEST_MAX
    assert parse_whole(fits).message == b"x" * 2021
    assert build_b_request(BOB, b"x" * 2021) == fits
    assert b_fits(BOB, b"x" * 2021)

    one_over = b"misfin://bob@example.org " + b"x" * 2022 + b"\r\n"
    assert not b_fits(BOB, b"x" * 2022)
    with pytest.raises(ProtocolError):
        build_b_request(BOB, b"x" * 2022)
    assert parse_whole(one_over).message == b"x" * 2022  # A2: the server still accepts it

    rejects(b"misfin://bob@example.org " + b"x" * 2024 + b"\r\n")


def test_overlong_b_line_fails_before_the_crlf() -> None:
    parser = RequestParser()
    assert parser.feed(b"misfin://bob@example.org " + b"x" * 2023) is None  # 2048 bytes
    assert parser.feed(b"\r") is None  # the CRLF may still come
    with pytest.raises(ProtocolError):
        parser.feed(b"x")


@pytest.mark.parametrize(
    ("data", "host", "mailbox"),
    [
        (b"misfin://bob@other.example Hi\r\n", "other.example", "bob"),
        (b"misfin://carol@example.org Hi\r\n", "example.org", "carol"),
        (b"misfin://old@example.org Hi\r\n", "example.org", "old"),
    ],
)
def test_vector_16_receiver_decides_53_51_52(data: bytes, host: str, mailbox: str) -> None:
    request = parse_whole(data)
    assert (request.address.host, request.address.mailbox) == (host, mailbox)


def test_vector_20_port_stripped() -> None:
    assert parse_whole(b"misfin://bob@example.org:1958 Hi\r\n").address == BOB


def test_vector_21_two_ats() -> None:
    error = rejects(b"misfin://bob@evil@example.org Hi\r\n")
    assert isinstance(error, AddressError)


@pytest.mark.parametrize(
    "data",
    [
        b"misfin://bob@example.org Hi\rthere\r\n",  # bare CR in B
        b"misfin://bob@example.org \xff\xfe\r\n",  # invalid UTF-8
        b"misfin://b\xffb@example.org Hi\r\n",
        b"misfin://bob@exa,mple.org Hi\r\n",
        b"misfin://@example.org Hi\r\n",
        b"misfin:// Hi\r\n",
        b"misfin://\r\n",
        b"misfin://misfin://bob@example.org Hi\r\n",
        b"misfin://MISFIN:bob@example.org Hi\r\n",
    ],
)
def test_malformed_b(data: bytes) -> None:
    rejects(data)


@pytest.mark.parametrize("data", [b"gemini://example.org/\r\n", b"GET / HTTP/1.1\r\n", b"m\x00"])
def test_not_misfin_fails_at_once(data: bytes) -> None:
    with pytest.raises(NotMisfinRequest) as caught:
        RequestParser().feed(data)
    assert caught.value.status == Status.BAD_REQUEST


def test_b_build_refuses_cr_and_bad_utf8() -> None:
    for message in (b"a\rb", b"a\r\nb", b"\xff"):
        with pytest.raises(ProtocolError):
            build_b_request(BOB, message)
        assert not b_fits(BOB, message)


def test_b_build_never_sends_the_port() -> None:
    assert build_b_request(Address("bob", "example.org", 1959), b"Hi").startswith(
        b"misfin://bob@example.org Hi"
    )


# -- C requests (vectors 7-15) ------------------------------------------------------------------

LUNCH = b"\n\n\n# Lunch?\nAre you free on Friday?\n"


@pytest.mark.parametrize("feed", [parse_whole, parse_bytewise])
def test_vector_7_c_request(feed) -> None:
    data = b"misfin://bob@example.org\t36\r\n" + LUNCH
    assert len(LUNCH) == 36
    assert feed(data) == Request("C", BOB, LUNCH)
    assert build_c_request(BOB, LUNCH) == data


def test_vector_8_c_crlf_lines() -> None:
    body = b"\r\n\r\n\r\n# Lunch?\r\nAre you free on Friday?\r\n"
    request = parse_whole(b"misfin://bob@example.org\t41\r\n" + body)
    assert request.version == "C" and request.message == body


def test_vector_9_c_blank() -> None:
    request = parse_whole(b"misfin://bob@example.org\t0\r\n")
    assert request == Request("C", BOB, b"") and request.is_blank


def test_vector_10_oversized_length_fails_without_the_body() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"misfin://bob@example.org\t16385\r\n")
    assert parse_whole(b"misfin://bob@example.org\t16384\r\n") is None  # allowed: waits for body


@pytest.mark.parametrize(
    "length", [b"+5", b"5 ", b"", b"five", b"0x10", b"123456", b"-1", b"\xd9\xa5"]
)
def test_vector_11_bad_lengths(length: bytes) -> None:
    rejects(b"misfin://bob@example.org\t" + length + b"\r\n")


def test_bad_length_fails_as_soon_as_the_header_is_complete() -> None:
    parser = RequestParser()
    for byte in b"misfin://bob@example.org\tfive\r":
        assert parser.feed(bytes([byte])) is None
    with pytest.raises(ProtocolError):
        parser.feed(b"\n")


def test_header_complete_before_body() -> None:
    parser = RequestParser()
    assert not parser.received_any and not parser.header_complete
    assert parser.feed(b"misfin://bob@example.org\t36\r\n\n") is None
    assert parser.received_any and parser.header_complete
    assert parser.feed(LUNCH[1:]) == Request("C", BOB, LUNCH)


def test_leading_zeros_accepted() -> None:
    assert parse_whole(b"misfin://bob@example.org\t00003\r\nabc").message == b"abc"


def test_bytes_after_the_request_are_ignored() -> None:
    assert parse_whole(b"misfin://bob@example.org\t3\r\nabcdef").message == b"abc"
    assert parse_whole(b"misfin://bob@example.org Hi\r\nmore").message == b"Hi"


def test_vector_12_bare_cr_in_c() -> None:
    rejects(b"misfin://bob@example.org\t21\r\n" + b"\n\n\nline one\rline two\n")
    rejects(b"misfin://bob@example.org\t4\r\n" + b"\n\n\n\r")  # a CR at the very end is bare too


def test_vector_13_length_counts_bytes() -> None:
    body = "\n\n\nÅsa says hej\n".encode()
    assert len(body) == 17
    assert parse_whole(b"misfin://bob@example.org\t17\r\n" + body).message == body


def test_invalid_utf8_in_c_body() -> None:
    rejects(b"misfin://bob@example.org\t4\r\n\n\n\n\xff")


def test_vector_14_header_limits() -> None:
    rejects(b"misfin://" + b"m" * 1002 + b"@example.org\t5\r\n")  # 1027 bytes
    for extra in (1000, 1001):  # 1025- and 1026-byte headers are still accepted (A3)
        header = b"misfin://" + b"m" * extra + b"@example.org\t5\r\n"
        assert len(header) == extra + 25
        assert parse_whole(header + b"hello").message == b"hello"


def test_c_header_too_long_fails_before_the_crlf() -> None:
    parser = RequestParser()
    assert parser.feed(b"misfin://bob@example.org\t" + b"1" * 999) is None  # 1024 bytes
    with pytest.raises(ProtocolError):
        parser.feed(b"1")


def test_c_build_limits() -> None:
    assert build_c_request(BOB, b"x" * C_BODY_MAX).endswith(b"x" * C_BODY_MAX)
    with pytest.raises(ProtocolError):
        build_c_request(BOB, b"x" * (C_BODY_MAX + 1))
    with pytest.raises(ProtocolError):
        build_c_request(BOB, b"\n\n\na\rb")
    with pytest.raises(ProtocolError):
        build_c_request(BOB, b"\xff")
    long_box = Address("m" * 995, "example.org")  # 9 + 995 + 12 + 1 + 1 + 2 = 1020
    assert len(build_c_request(long_box, b"x")) == 1021
    with pytest.raises(ProtocolError):
        build_c_request(Address("m" * 1000, "example.org"), b"x")  # 1025-byte header
    assert len(build_c_request(Address("m" * 999, "example.org"), b"x")) - 1 == C_HEADER_MAX


def test_vector_15_list_forward() -> None:
    body = b"alice@example.net Alice\n\n2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n"
    assert len(body) == 71
    assert parse_whole(b"misfin://bob@example.org\t71\r\n" + body).message == body


def test_premature_eof() -> None:
    parser = RequestParser()
    parser.feed(b"misfin://bob@example.org\t36\r\n\n")
    with pytest.raises(ProtocolError):
        parser.eof()
    done = RequestParser()
    done.feed(b"misfin://bob@example.org\t0\r\n")
    done.eof()  # nothing wrong with a complete request


def test_superseded_c_variant_is_rejected() -> None:
    rejects(b"misfin://bob@example.org\t5 hello\r\n")


# -- responses (vectors 22, 23) -----------------------------------------------------------------

FP = "1e9f11e4" + "ab" * 28


def test_vector_22_fingerprints() -> None:
    colons = ":".join(FP[i : i + 2].upper() for i in range(0, 64, 2))
    response = parse_response(f"20 {colons}\r\n".encode())
    assert normalise_fingerprint(response.meta) == FP
    assert normalise_fingerprint("sha256:" + FP.upper()) == FP
    assert normalise_fingerprint("SHA256:" + FP) == FP
    for bad in ("", "abc", FP[:-1], FP + "0", "message delivered"):
        with pytest.raises(NotAFingerprint):
            normalise_fingerprint(bad)


def test_vector_23_responses() -> None:
    assert parse_response(b"59\r\n") == Response(59, "")
    redirect = parse_response(b"31 bob@new.example\r\n")
    assert redirect.kind is Status.SEND_HERE_FOREVER
    assert parse_redirect(redirect.meta) == Address("bob", "new.example")
    slow = parse_response(b"44 120\r\n")
    assert slow.kind is Status.SLOW_DOWN and parse_retry_after(slow.meta) == 120


def test_redirect_forms() -> None:
    assert parse_redirect("misfin://bob@new.example") == Address("bob", "new.example")
    assert parse_redirect("misfin:bob@new.example:1959 moved") == Address(
        "bob", "new.example", 1959
    )
    for bad in ("", "   ", "nowhere"):
        with pytest.raises(ProtocolError):
            parse_redirect(bad)


def test_retry_after() -> None:
    assert parse_retry_after("Retry after 30s") == 30
    assert parse_retry_after("slow down") == 60
    assert parse_retry_after("", default=5) == 5


def test_unknown_code_in_known_category() -> None:
    response = parse_response(b"57 nope\r\n")
    assert response.status == 57 and response.category == 5
    assert response.kind is Status.PERMANENT_ERROR


@pytest.mark.parametrize("data", [b"99 x\r\n", b"70 x\r\n", b"07 x\r\n", b"00\r\n"])
def test_well_formed_status_in_no_known_category_is_read(data: bytes) -> None:
    """The line is read (a sender must know the server answered, after the letter went); only
    its meaning is unknown."""
    response = parse_response(data)
    assert response.status == int(data[:2])
    with pytest.raises(ProtocolError) as caught:
        _ = response.kind
    assert "is not a Misfin status" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        b"10 input\r\n",
        b"19\r\n",
        b"2\r\n",
        b"20x\r\n",
        b"ab\r\n",
        b"",
        b"20 \xff\r\n",
    ],
)
def test_malformed_responses(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_response(data)


def test_response_terminators() -> None:
    assert parse_response(b"20 abc\n") == Response(20, "abc")
    assert parse_response(b"20 abc") == Response(20, "abc")
    assert parse_response(b"40\ttemporary\r\nignored") == Response(40, "temporary")


def test_build_response() -> None:
    assert build_response(20, FP) == f"20 {FP}\r\n".encode()
    assert build_response(59, "bad\r\nrequest") == b"59 bad request\r\n"
    assert build_response(51, "") == b"51 that mailbox does not exist on the server\r\n"
    long = build_response(40, "é" * 3000)
    assert len(long) <= RESPONSE_MAX and parse_response(long).meta.startswith("é")
    for bad in (10, 70, 5, 100):
        with pytest.raises(ProtocolError):
            build_response(bad, "x")


def test_response_parser_incremental() -> None:
    parser = ResponseParser()
    for byte in b"20 abc\r":
        assert parser.feed(bytes([byte])) is None
    assert parser.feed(b"\n") == Response(20, "abc")


def test_response_parser_limits() -> None:
    parser = ResponseParser()
    assert parser.feed(b"40 " + b"x" * (RESPONSE_MAX - 3)) is None
    with pytest.raises(ProtocolError):
        parser.feed(b"x")
    with pytest.raises(ProtocolError):
        ResponseParser().feed(b"H")  # fails at once, not after 2048 bytes


# -- properties ---------------------------------------------------------------------------------

mailboxes = st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True)
wire_addresses = st.builds(Address, mailboxes, hosts())
b_messages = st.text(
    st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=300
)
c_messages = st.text(st.characters(blacklist_categories=("Cs",)), max_size=500).map(
    lambda s: s.replace("\r", "\r\n")
)


def all_splits(data: bytes) -> list[list[bytes]]:
    return [[data[:i], data[i:]] for i in range(len(data) + 1)]


@settings(max_examples=200)
@given(wire_addresses, b_messages)
def test_b_round_trip(address: Address, text: str) -> None:
    message = text.encode()
    data = build_b_request(address, message)
    assert parse_whole(data) == Request("B", address, message)


@settings(max_examples=200)
@given(wire_addresses, c_messages)
def test_c_round_trip(address: Address, text: str) -> None:
    message = text.encode()
    data = build_c_request(address, message)
    assert parse_whole(data) == Request("C", address, message)


@settings(max_examples=50)
@given(wire_addresses, st.sampled_from("BC"), b_messages.map(lambda t: t[:100]))
def test_every_split_gives_the_same_request(address: Address, version: str, text: str) -> None:
    build = build_b_request if version == "B" else build_c_request
    data = build(address, text.encode())
    expected = parse_whole(data)
    for parts in all_splits(data):
        parser = RequestParser()
        results = [parser.feed(part) for part in parts]
        assert results[-1] == expected
    assert parse_bytewise(data) == expected


@settings(max_examples=200)
@given(wire_addresses, c_messages, st.lists(st.integers(0, 600), max_size=8))
def test_arbitrary_chunking(address: Address, text: str, cuts: list[int]) -> None:
    data = build_c_request(address, text.encode())
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    parser = RequestParser()
    results = [parser.feed(chunk) for chunk in chunks]
    assert results[-1] == Request("C", address, text.encode())


request_like = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"misfin://" + b),
    st.tuples(st.binary(max_size=40), st.sampled_from([b" ", b"\t"]), st.binary(max_size=60)).map(
        lambda t: b"misfin://" + t[0] + t[1] + t[2]
    ),
    st.tuples(st.binary(max_size=20), st.binary(max_size=60)).map(
        lambda t: b"misfin://bob@example.org\t" + t[0] + b"\r\n" + t[1]
    ),
)


@settings(max_examples=300)
@given(request_like, st.lists(st.integers(0, 400), max_size=6))
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    parser = RequestParser()
    try:
        for a, b in zip([0, *points], [*points, len(data)], strict=True):
            parser.feed(data[a:b])
        parser.eof()
    except ProtocolError as error:
        assert error.status == Status.BAD_REQUEST


@settings(max_examples=200)
@given(
    st.binary(max_size=100) | st.binary(max_size=60).map(lambda b: b"2" + b), st.integers(0, 100)
)
def test_arbitrary_response_bytes_only_raise_protocol_error(data: bytes, cut: int) -> None:
    with contextlib.suppress(ProtocolError):
        parse_response(data)
    parser = ResponseParser()
    with contextlib.suppress(ProtocolError):
        parser.feed(data[:cut])
        parser.feed(data[cut:])


metas = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=100).map(str.strip)
codes = st.sampled_from([int(s) for s in Status]) | st.integers(20, 69)


@settings(max_examples=200)
@given(codes, metas.filter(bool))
def test_response_round_trip(status: int, meta: str) -> None:
    data = build_response(status, meta)
    assert parse_response(data) == Response(status, meta)
    parser = ResponseParser()
    assert [parser.feed(data[i : i + 1]) for i in range(len(data))][-1] == Response(status, meta)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"020 x\r\n", "not followed by a space"),  # not status 2, nor 02
        (b"10 x\r\n", "status 10 is not"),
    ],
)
def test_malformed_responses_say_what_was_sent(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_response(data)
    assert words in caught.value.message
