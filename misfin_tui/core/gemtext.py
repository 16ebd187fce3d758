"""Gemtext (text/gemini) as typed lines, so the reader renders structure and never markup.

Line types follow the Gemini spec; a ``` line toggles preformatted mode and an unterminated
block runs to the end of the document. Letter bodies use this for display and for the subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    TEXT = "text"
    LINK = "link"
    HEADING = "heading"
    LIST_ITEM = "list_item"
    QUOTE = "quote"
    PREFORMATTED = "preformatted"


@dataclass(frozen=True)
class Line:
    kind: Kind
    text: str
    url: str = ""
    level: int = 0
    alt: str = ""


def _lines(text: str) -> list[str]:
    """Split on LF only (gemtext lines), dropping a CR before it and the final empty line."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _line(raw: str) -> Line:
    if raw.startswith("=>"):
        parts = raw[2:].strip().split(maxsplit=1)
        if not parts:
            return Line(Kind.TEXT, raw)
        return Line(Kind.LINK, parts[1].strip() if len(parts) > 1 else "", url=parts[0])
    for level in (3, 2, 1):
        if raw.startswith("#" * level):
            return Line(Kind.HEADING, raw[level:].strip(), level=level)
    if raw.startswith("* "):
        return Line(Kind.LIST_ITEM, raw[2:].strip())
    if raw.startswith(">"):
        return Line(Kind.QUOTE, raw[1:].strip())
    return Line(Kind.TEXT, raw)


def parse(text: str) -> list[Line]:
    result: list[Line] = []
    block: list[str] | None = None
    alt = ""
    for raw in _lines(text):
        if raw.startswith("```"):
            if block is None:
                block, alt = [], raw[3:].strip()
            else:
                result.append(Line(Kind.PREFORMATTED, "\n".join(block), alt=alt))
                block = None
        elif block is not None:
            block.append(raw)
        else:
            result.append(_line(raw))
    if block is not None:
        result.append(Line(Kind.PREFORMATTED, "\n".join(block), alt=alt))
    return result


def subject(text: str) -> str:
    """The first "# " heading, else the first heading of any level, else "" (A22).

    An empty heading ("#" alone, as gembox writers use for "no subject") does not count.
    """
    headings = [line for line in parse(text) if line.kind is Kind.HEADING and line.text]
    for line in headings:
        if line.level == 1:
            return line.text
    return headings[0].text if headings else ""
