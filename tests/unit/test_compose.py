"""Letter size and splitting (misfin_tui.core.compose)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from misfin_tui.core.compose import letter_text, measure, split_body
from misfin_tui.core.status import ProtocolError

HEADER = re.compile(
    r"^# (?:(?P<title>.*) \((?P<i>\d+)/(?P<n>\d+)\)|Part (?P<pi>\d+)/(?P<pn>\d+))\n"
)


def strip_header(part: str) -> tuple[str, int, int, str]:
    match = HEADER.match(part)
    assert match, part[:40]
    i = int(match["i"] or match["pi"])
    n = int(match["n"] or match["pn"])
    return match["title"] or "", i, n, part[match.end() :]


def test_a_body_that_fits_is_returned_unchanged() -> None:
    assert split_body("# Hi\nshort\n", 100) == ["# Hi\nshort\n"]


def test_parts_repeat_the_subject_numbered_and_fit_the_limit() -> None:
    body = "# Lunch plans\n" + "".join(f"Line {k} of a long letter.\n" for k in range(200))
    parts = split_body(body, 1000)
    assert len(parts) > 1
    rest = []
    for k, part in enumerate(parts, 1):
        assert len(part.encode()) <= 1000
        title, i, n, text = strip_header(part)
        assert (title, i, n) == ("Lunch plans", k, len(parts))
        rest.append(text)
    assert "".join(rest) == body.split("\n", 1)[1]
    # Whole lines stay together when lines are short.
    assert all(text.endswith("\n") for text in rest)


def test_no_subject_gives_part_headings() -> None:
    parts = split_body("plain words " * 100, 300)
    assert [strip_header(p)[1:3] for p in parts] == [
        (k, len(parts)) for k in range(1, len(parts) + 1)
    ]
    assert parts[0].startswith("# Part 1/")


def test_a_long_line_breaks_at_a_space_and_multibyte_text_is_never_cut_inside_a_character() -> None:
    body = "# S\n" + "ünïcödé wörds " * 300
    parts = split_body(body, 200)
    texts = [strip_header(p)[3] for p in parts]
    assert "".join(texts) == body[4:]
    for part, text in zip(parts, texts, strict=True):
        assert len(part.encode()) <= 200
        assert text.endswith(" ") or part is parts[-1]


def test_a_word_longer_than_a_part_is_cut_between_characters() -> None:
    body = "€" * 500
    parts = split_body(body, 100)
    assert "".join(strip_header(p)[3] for p in parts) == body
    assert all(len(p.encode()) <= 100 for p in parts)


def test_a_preformatted_block_cut_in_two_is_closed_and_reopened_with_its_alt_text() -> None:
    art = "".join(f"row {k:03d} |  |  |\n" for k in range(60))
    body = "# Art\nBefore.\n```ascii art\n" + art + "```\nAfter.\n"
    parts = split_body(body, 400)
    assert len(parts) > 2
    for part in parts:
        assert len(part.encode()) <= 400
        fences = [line for line in part.splitlines() if line.startswith("```")]
        assert len(fences) % 2 == 0, part
        if fences:
            assert fences[0] == "```ascii art"
    rows = [line for p in parts for line in p.splitlines() if line.startswith("row ")]
    assert rows == art.splitlines()
    assert parts[-1].endswith("After.\n")


def test_the_numbering_width_is_accounted_for() -> None:
    # Enough parts that "(10/12)" is longer than "(1/9)": every part must still fit.
    parts = split_body("# T\n" + "x\n" * 2000, 300)
    assert len(parts) >= 10
    assert all(len(p.encode()) <= 300 for p in parts)
    assert strip_header(parts[-1])[1:3] == (len(parts), len(parts))


def test_a_limit_too_small_for_any_text_is_refused() -> None:
    with pytest.raises(ValueError):
        split_body("# A very long subject line indeed\n" + "x" * 500, 60)


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="`\r"),
        max_size=3000,
    ),
    limit=st.integers(min_value=150, max_value=1200),
)
def test_parts_always_fit_and_lose_nothing(text: str, limit: int) -> None:
    body = "# Subject\n" + text
    parts = split_body(body, limit)
    assert all(len(p.encode("utf-8")) <= limit for p in parts)
    if len(parts) > 1:
        assert "".join(strip_header(p)[3] for p in parts) == text
    else:
        assert parts == [body]


def test_letter_text_puts_the_subject_on_top_once() -> None:
    assert letter_text("Lunch?", "Free on Friday?\n") == "# Lunch?\nFree on Friday?\n"
    assert letter_text("Lunch?", "# Lunch?\nFree?\n") == "# Lunch?\nFree?\n"
    assert letter_text("  ", "body\n") == "body\n"
    assert letter_text("a  b", "x") == "# a b\nx"


@pytest.mark.parametrize(
    ("subject", "named"),
    [
        ("Two\n=> gemini://evil.example/ click", "a line break"),
        ("a\rb", "a carriage return"),
        ("a\tb", "a tab"),
        ("red\x1b[31m", "U+001B"),
        ("a\u2028b", "U+2028"),
    ],
)
def test_a_subject_that_is_not_one_line_is_refused(subject: str, named: str) -> None:
    """A line break in a subject would end the heading and put a line of its own (a link)
    into the letter: the core refuses it rather than sending or silently mending it."""
    with pytest.raises(ProtocolError, match=re.escape(named)):
        letter_text(subject, "body\n")


def test_measure_counts_the_whole_c_message_and_the_b_fit() -> None:
    small = measure("# Hi\nshort\n", ["bob@example.org"])
    assert small.body_bytes == len(b"# Hi\nshort\n")
    assert small.message_bytes == small.body_bytes + 3  # three empty metadata lines
    assert small.fits_c and small.fits_b
    assert small.limit == 16384
    medium = measure("x" * 3000, ["bob@example.org"])
    assert medium.fits_c and not medium.fits_b
    big = measure("x" * 16384, ["bob@example.org", "carol@example.net"])
    assert not big.fits_c
    # Two recipients: line 2 lists them, so the body has less room.
    assert big.body_limit == 16384 - 3 - len("bob@example.org, carol@example.net")


def test_measure_ignores_addresses_that_do_not_parse() -> None:
    size = measure("hello", ["not an address"])
    assert size.fits_c
    assert size.fits_b is None  # no address to measure B against: neither fits nor too big
    assert measure("hello", ["not an address", "bob@example.org"]).fits_b is True
