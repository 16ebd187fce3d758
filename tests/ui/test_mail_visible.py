"""visible(): control characters in network text are shown, never sent to the terminal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from misfin_tui.core.text import one_line, visible


def test_escape_sequences_and_c0_controls_become_control_pictures() -> None:
    assert visible("red \x1b[31malert\x1b[0m") == "red ␛[31malert␛[0m"
    assert visible("bell\x07 nul\x00 del\x7f") == "bell␇ nul␀ del␡"


def test_c1_controls_and_bidi_overrides_become_escapes() -> None:
    assert visible("csi\x9b2J") == "csi\\x9b2J"
    assert visible("abc\u202edcba") == "abc\\u202edcba"
    assert visible("zero\u200bwidth") == "zero\\u200bwidth"
    # Line and paragraph separators break a line in some terminals and widgets; the word
    # joiner and the Arabic letter mark are invisible.
    assert visible("one\u2028two\u2029three") == "one\\u2028two\\u2029three"
    assert visible("x\u2060y\u061cz") == "x\\u2060y\\u061cz"


def test_invisible_letters_become_escapes() -> None:
    # Tag characters spell hidden ASCII; Hangul fillers are blank letters that push text away.
    assert visible("hi\U000e0068\U000e0069!") == "hi\\U000e0068\\U000e0069!"
    assert visible("a\u3164b\uffa0c") == "a\\u3164b\\uffa0c"


def test_line_breaks_and_tabs() -> None:
    assert visible("a\nb") == "a␊b"
    assert visible("a\nb", newlines=True) == "a\nb"
    assert visible("a\r\nb", newlines=True) == "a␍\nb"
    assert visible("a\tb") == "a   b"
    assert one_line("two\nlines\r\nhere") == "two lines here"


def test_markup_is_left_as_text() -> None:
    assert visible("[bold]x[/bold]") == "[bold]x[/bold]"


@given(st.text())
def test_nothing_a_terminal_would_act_on_survives(text: str) -> None:
    shown = visible(text, newlines=True)
    assert not any(ord(c) < 0x20 and c != "\n" for c in shown)
    assert not any(0x7F <= ord(c) <= 0x9F for c in shown)
