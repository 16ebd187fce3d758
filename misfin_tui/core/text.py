"""Network text made safe once: control characters become visible symbols.

A letter, a sender blurb, a certificate field or a server's META may hold terminal escape
sequences. Written to a terminal they would move the cursor, recolour the screen or retitle the
window, so every piece of network text passes through `visible()` (or `one_line()`) before the
UI draws it or the command line prints it. The UI draws it with `Content(...)`, never markup.
"""

from __future__ import annotations

import re

# C0 controls (not LF/TAB, handled separately) and DEL -> the Unicode "control pictures".
_C0 = {code: chr(0x2400 + code) for code in range(0x20)}
_C0[0x7F] = "\u2421"  # ␡
# C1 controls, bidi overrides/isolates, other invisible format characters, the Hangul fillers
# (blank, yet letters to Unicode) and the tag characters (invisible ASCII look-alikes) that can
# hide or reorder text -> a visible \\xNN / \\uNNNN / \\UNNNNNNNN escape.
_ESCAPED = re.compile(
    "[\x80-\x9f\u061c\u115f\u1160\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str, *, newlines: bool = False, tab_size: int = 4) -> str:
    """Return `text` with every control character shown, not executed.

    ESC becomes ␛ (so "\\x1b[31m" reads "␛[31m"), other C0 controls their control picture,
    C1 controls and bidi/zero-width characters a \\xNN / \\uNNNN escape. Tabs expand to spaces.
    Line feeds are kept when `newlines` is true, else shown as ␊.
    """
    if tab_size:
        text = text.expandtabs(tab_size)
    text = _ESCAPED.sub(_escape, text)

    def picture(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char == "\n":
            return char
        return _C0[ord(char)]

    return _CONTROL.sub(picture, text)


def one_line(text: str) -> str:
    """`visible()` for single-line places (list rows, headers): line breaks become spaces."""
    return visible(text.replace("\r\n", " ").replace("\n", " "))
