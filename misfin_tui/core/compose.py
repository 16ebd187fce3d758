"""Composing a letter: its size on the wire and splitting one that is too long.

The UI shows a live byte count and offers to split; the rules behind both live here so they
can be tested without a terminal. Best practice for Misfin is to *ask* before splitting, never
to split silently: this module only computes the parts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.letter import c_to_b, new_message_c
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.wire import C_BODY_MAX, b_fits

_FENCE = "```"
_MIN_BUDGET = 64  # bytes of text per part, headers and fences aside


@dataclass(frozen=True)
class Size:
    """How big a letter is on the wire, against the protocol limits."""

    message_bytes: int  # the whole Misfin(C) MESSAGE: three metadata lines + body
    body_bytes: int  # the gemtext alone
    limit: int  # C_BODY_MAX
    # Also deliverable as one Misfin(B) request to every recipient; None while no recipient
    # address parses, as the B limit counts the address itself.
    fits_b: bool | None

    @property
    def fits_c(self) -> bool:
        return self.message_bytes <= self.limit

    @property
    def body_limit(self) -> int:
        """Bytes the body itself may use: the limit minus the metadata lines."""
        return self.limit - (self.message_bytes - self.body_bytes)


def check_subject(subject: str) -> str:
    """A subject is one line of text: returned as it is, or ProtocolError naming the first
    control character (CR, LF, a tab, an escape, …) or line separator. Such a character would
    end the heading early and put lines of its own (a link, say) into the letter."""
    for ch in subject:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            what = {"\r": "a carriage return", "\n": "a line break", "\t": "a tab"}.get(ch)
            raise ProtocolError(
                f"the subject contains {what or f'the control character U+{ord(ch):04X}'}:"
                " a subject is one line of text"
            )
    return subject


def letter_text(subject: str, body: str) -> str:
    """The gemtext that is sent: a Misfin subject is the first heading, so put it on top.

    A body that already starts with that heading is left alone. A subject that is not one
    line of text (check_subject) is a ProtocolError.
    """
    subject = " ".join(check_subject(subject).split())
    if not subject:
        return body
    first = body.lstrip("\n").split("\n", 1)[0]
    if first.startswith("#") and first.lstrip("#").strip() == subject:
        return body
    return f"# {subject}\n{body}"


def measure(text: str, recipients: Sequence[str]) -> Size:
    """Size of `text` sent as new mail to `recipients` (invalid addresses are ignored)."""

    addresses = []
    for recipient in recipients:
        try:
            addresses.append(Address.parse(recipient))
        except AddressError:
            continue
    message = new_message_c(text, [str(address) for address in addresses])
    b_message = c_to_b(message)
    fits_b = all(b_fits(address, b_message) for address in addresses) if addresses else None
    return Size(
        message_bytes=len(message),
        body_bytes=len(text.encode("utf-8")),
        limit=C_BODY_MAX,
        fits_b=fits_b,
    )


def split_body(body: str, limit: int) -> list[str]:
    """Split gemtext into numbered parts of at most `limit` UTF-8 bytes each.

    A first-line heading is the subject: every part repeats it with "(i/n)" appended, so each
    part has its own subject; without one, each part starts with "# Part i/n". Parts break at
    line ends where possible, else at a space, else between characters. A preformatted block
    cut in two is closed at the end of one part and reopened (with its alt text) in the next.
    A body that already fits comes back unchanged as one part.
    """
    if len(body.encode("utf-8")) <= limit:
        return [body]
    title, rest = _title(body)
    digits = 1
    while True:
        header_max = len(_header(title, 10**digits - 1, 10**digits - 1).encode("utf-8"))
        budget = limit - header_max
        if budget < _MIN_BUDGET:
            raise ValueError(f"a limit of {limit} bytes leaves no room for the text")
        chunks = _pack(rest, budget)
        if len(str(len(chunks))) <= digits:
            break
        digits += 1
    n = len(chunks)
    return [_header(title, i, n) + chunk for i, chunk in enumerate(chunks, 1)]


def _title(body: str) -> tuple[str, str]:
    first, _, rest = body.partition("\n")
    if first.startswith("#") and first.lstrip("#").strip():
        return first.lstrip("#").strip(), rest
    return "", body


def _header(title: str, i: int, n: int) -> str:
    return f"# {title} ({i}/{n})\n" if title else f"# Part {i}/{n}\n"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _pack(text: str, budget: int) -> list[str]:
    """Greedy packing of lines into chunks of at most `budget` bytes, fences kept balanced."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    pre_alt: str | None = None  # alt text of the open preformatted block, None outside one
    opener = ""  # the fence that reopens the open block in the next chunk
    opened_by = ""  # the fence line that opened it
    close_cost = len(_FENCE) + 2  # "\n```\n"

    def close_chunk() -> None:
        nonlocal current, used
        if pre_alt is not None and len(current) > 1 and current[-1] is opened_by:
            # The block opened on this chunk's last line: start it in the next chunk instead.
            chunks.append("".join(current[:-1]))
            current = [opened_by]
            used = _size(opened_by)
            return
        body = "".join(current)
        if pre_alt is not None:
            body += ("" if body.endswith("\n") else "\n") + _FENCE + "\n"
        chunks.append(body)
        current = [opener] if pre_alt is not None else []
        used = _size(opener) if pre_alt is not None else 0

    def has_text() -> bool:
        return bool(current) and not (pre_alt is not None and current in ([opener], [opened_by]))

    for line in text.splitlines(keepends=True):
        is_fence = line.startswith(_FENCE)
        pending = line
        while pending:
            # Inside a block (or opening one) keep room for the fence that closes it.
            reserve = close_cost if (pre_alt is not None or is_fence) else 0
            if is_fence and pre_alt is not None:
                reserve = 0  # this line is the closing fence itself
            room = budget - used - reserve
            if _size(pending) <= room:
                current.append(pending)
                used += _size(pending)
                break
            if has_text():
                close_chunk()
                continue
            head, pending = _cut(pending, room)
            current.append(head)
            used += _size(head)
            close_chunk()
        if is_fence:
            if pre_alt is None:
                opened_by = current[-1]
                pre_alt = line[len(_FENCE) :].rstrip("\r\n")
                opener = f"{_FENCE}{pre_alt}\n"
                if _size(opener) > budget // 4:
                    opener = f"{_FENCE}\n"
            else:
                pre_alt = None
    if has_text():
        chunks.append("".join(current))
    return chunks


def _cut(line: str, room: int) -> tuple[str, str]:
    """Cut a line to at most `room` bytes: after the last space that fits, else mid-word."""
    fitted = line.encode("utf-8")[: max(room, 1)].decode("utf-8", "ignore")
    if not fitted:
        fitted = line[0]
    space = fitted.rfind(" ")
    if space > 0:
        fitted = fitted[: space + 1]
    return fitted, line[len(fitted) :]
