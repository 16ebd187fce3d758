"""Gemtext lines and the subject rule (A22)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from misfin_tui.core.gemtext import Kind, Line, parse, subject


def test_every_line_type() -> None:
    text = (
        "Hello\n"
        "=> gemini://example.org/  Example  site \n"
        "=>misfin://bob@example.org\n"
        "# One\n"
        "## Two\n"
        "### Three\n"
        "* item\n"
        ">quoted\n"
        "> spaced\n"
        "*not a list\n"
        "\n"
    )
    assert parse(text) == [
        Line(Kind.TEXT, "Hello"),
        Line(Kind.LINK, "Example  site", url="gemini://example.org/"),
        Line(Kind.LINK, "", url="misfin://bob@example.org"),
        Line(Kind.HEADING, "One", level=1),
        Line(Kind.HEADING, "Two", level=2),
        Line(Kind.HEADING, "Three", level=3),
        Line(Kind.LIST_ITEM, "item"),
        Line(Kind.QUOTE, "quoted"),
        Line(Kind.QUOTE, "spaced"),
        Line(Kind.TEXT, "*not a list"),
        Line(Kind.TEXT, ""),
    ]


def test_link_without_url_is_text() -> None:
    assert parse("=>   ") == [Line(Kind.TEXT, "=>   ")]


def test_preformatted_block() -> None:
    text = "before\n```python code\n# not a heading\n=> not a link\n\n```\nafter\n"
    assert parse(text) == [
        Line(Kind.TEXT, "before"),
        Line(Kind.PREFORMATTED, "# not a heading\n=> not a link\n", alt="python code"),
        Line(Kind.TEXT, "after"),
    ]


def test_unterminated_block_runs_to_the_end() -> None:
    assert parse("```\n# a\nb") == [Line(Kind.PREFORMATTED, "# a\nb")]


def test_crlf_lines() -> None:
    assert parse("# Hi\r\ntext\r\n") == [Line(Kind.HEADING, "Hi", level=1), Line(Kind.TEXT, "text")]


def test_empty() -> None:
    assert parse("") == []


def test_subject_rule() -> None:
    assert subject("## Second\n# First\n") == "First"
    assert subject("text\n### Only\n## Later\n") == "Only"
    assert subject("no heading\n") == ""
    assert subject("```\n# inside\n```\n") == ""
    assert subject("#\n# Real\n") == "Real"  # an empty heading is not a subject


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_any_text_parses_and_keeps_preformatted_content(text: str) -> None:
    lines = parse(text)
    assert all(isinstance(line, Line) for line in lines)
    for line in lines:
        if line.kind is Kind.HEADING:
            assert 1 <= line.level <= 3
        if line.kind is Kind.LINK:
            assert line.url and not any(c.isspace() for c in line.url)


@settings(max_examples=200)
@given(st.lists(st.text(st.characters(blacklist_characters="\r\n"), max_size=20), max_size=8))
def test_preformatted_round_trip(block: list[str]) -> None:
    block = [line for line in block if not line.startswith("```")]
    text = "```alt\n" + "".join(line + "\n" for line in block) + "```\n"
    assert parse(text) == [Line(Kind.PREFORMATTED, "\n".join(block), alt="alt")]
