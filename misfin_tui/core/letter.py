"""Gemmail: the letter inside a Misfin message, in its B and C forms.

C carries three positional metadata lines (senders, recipients, timestamps; comma lists, newest
hop first); B carries `<`, `:` and `@` lines in a leading block. Parsing is lenient (A13, A14):
metadata that does not parse is body text, never an error. Everything here is pure so the
receiver, the store and the UI agree on what a letter says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from misfin_tui.core import gemtext
from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.wire import Request


@dataclass(frozen=True)
class Sender:
    address: str
    blurb: str = ""


@dataclass(frozen=True)
class Gemmail:
    senders: tuple[Sender, ...] = ()
    recipients: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    body: str = ""

    @property
    def subject(self) -> str:
        return gemtext.subject(self.body)


# -- helpers ------------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _text(message: bytes | str) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", errors="replace")


def _lf(text: str) -> str:
    """LF line ends only: the logical letter is the same however the sender ended its lines."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_address(text: str) -> bool:
    try:
        Address.parse(text)
    except AddressError:
        return False
    return True


def _is_timestamp(text: str) -> bool:
    if len(text) < 10:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _sender(entry: str) -> Sender | None:
    """`address[ blurb]`: the blurb is everything after the first whitespace."""
    parts = entry.strip().split(maxsplit=1)
    if not parts or not _is_address(parts[0]):
        return None
    return Sender(parts[0], parts[1].strip() if len(parts) > 1 else "")


def _clean_blurb(blurb: str, *, commas: bool) -> str:
    """A blurb that cannot break the metadata line it sits in (it comes from a certificate)."""
    blurb = _CONTROL_RE.sub(" ", blurb)
    if not commas:
        blurb = blurb.replace(",", " ")
    return " ".join(blurb.split())


def _entry(sender: Sender, *, commas: bool) -> str:
    blurb = _clean_blurb(sender.blurb, commas=commas)
    return f"{sender.address} {blurb}" if blurb else sender.address


def _items(line: str) -> list[str] | None:
    """Comma list with optional whitespace; None when an entry is empty."""
    if not line.strip():
        return []
    items = [item.strip() for item in line.split(",")]
    return None if "" in items else items


def _c_metadata(
    lines: Sequence[str],
) -> tuple[tuple[Sender, ...], tuple[str, ...], tuple[str, ...]] | None:
    items = [_items(line) for line in lines]
    if None in items:
        return None
    senders_text, recipients_text, timestamps_text = (i or [] for i in items)
    senders = [_sender(entry) for entry in senders_text]
    if None in senders:
        return None
    if not all(len(r.split()) == 1 and _is_address(r) for r in recipients_text):
        return None
    if not all(_is_timestamp(t) for t in timestamps_text):
        return None
    return (
        tuple(s for s in senders if s is not None),
        tuple(recipients_text),
        tuple(timestamps_text),
    )


def _c_lines(text: str) -> tuple[list[int], list[str]] | None:
    """Offsets of the first three line ends (-1 for a last line without one) and the lines."""
    ends: list[int] = []
    start = 0
    for _ in range(3):
        end = text.find("\n", start)
        if end < 0:
            if len(ends) < 2:
                return None
            ends.append(-1)
            break
        ends.append(end)
        start = end + 1
    starts = [0, ends[0] + 1, ends[1] + 1]
    lines = [
        (text[s:e] if e >= 0 else text[s:]).removesuffix("\r")
        for s, e in zip(starts, ends, strict=True)
    ]
    return ends, lines


# -- C ------------------------------------------------------------------------------------------


def parse_c(message: bytes | str) -> Gemmail:
    """Lenient (A13): if lines 1-3 are not metadata, the whole content is the body."""
    text = _text(message)
    split = _c_lines(text)
    metadata = _c_metadata(split[1]) if split else None
    if split is None or metadata is None:
        return Gemmail(body=_lf(text))
    ends = split[0]
    body = text[ends[2] + 1 :] if ends[2] >= 0 else ""
    return Gemmail(*metadata, body=_lf(body))


def serialise_c(g: Gemmail) -> str:
    senders = ", ".join(_entry(s, commas=False) for s in g.senders)
    return f"{senders}\n{', '.join(g.recipients)}\n{', '.join(g.timestamps)}\n{g.body}"


def new_message_c(body: str, recipients: Sequence[str]) -> bytes:
    """A new letter (A12): lines 1 and 3 empty; line 2 lists the recipients if more than one."""
    addresses = [str(Address.parse(r)) for r in recipients]
    line2 = ", ".join(addresses) if len(addresses) > 1 else ""
    return f"\n{line2}\n\n{_lf(body)}".encode()


def with_sender(message: bytes, sender: Address) -> bytes | None:
    """A new letter (empty line 1) naming its sender on line 1; None for any other message.

    Only for a server that refuses a letter naming nobody (titlani's "required" verification
    reads line 1, not the certificate); it will prepend the sender again, so it shows twice.
    """
    split = _c_lines(_text(message))
    if not message.startswith(b"\n") or split is None or _c_metadata(split[1]) is None:
        return None
    return str(sender).encode() + message


def c_to_b(message: bytes) -> bytes:
    """The B fallback: C metadata lines dropped, body kept with its LFs (A18), no CR left.

    A recipients line (several recipients) becomes B's `: a b` line, so a reply-all from the
    B copy still reaches everyone.
    """
    text = _text(message)
    split = _c_lines(text)
    if split is not None and (metadata := _c_metadata(split[1])) is not None:
        ends = split[0]
        text = text[ends[2] + 1 :] if ends[2] >= 0 else ""
        recipients = metadata[1]
        if recipients:
            text = f": {' '.join(recipients)}\n{text}"
    return _lf(text).encode()


# -- B ------------------------------------------------------------------------------------------


def _words(line: str) -> list[str]:
    """B recipients are whitespace-separated; tolerate commas from C habits."""
    return [word for word in re.split(r"[\s,]+", line) if word]


def parse_b(message: bytes | str) -> Gemmail:
    """Metadata only in the leading block (A14): all `<` lines, the first `:` and `@`.

    The block ends at the first line that is not a well-formed metadata line, so a ``` line,
    or text like "@bob see you", starts the body.
    """
    lines = _lf(_text(message)).split("\n")
    senders: list[Sender] = []
    recipients: tuple[str, ...] | None = None
    timestamp: str | None = None
    index = 0
    while index < len(lines):
        sigil, rest = lines[index][:1], lines[index][1:]
        if sigil == "<" and (sender := _sender(rest)) is not None:
            senders.append(sender)
        elif sigil == ":" and all(_is_address(a) for a in _words(rest)):
            recipients = tuple(_words(rest)) if recipients is None else recipients
        elif sigil == "@" and _is_timestamp(rest.strip()):
            timestamp = rest.strip() if timestamp is None else timestamp
        else:
            break
        index += 1
    return Gemmail(
        tuple(senders),
        recipients or (),
        (timestamp,) if timestamp else (),
        "\n".join(lines[index:]),
    )


def serialise_b(g: Gemmail) -> str:
    """B keeps one timestamp: the newest (the first)."""
    lines = [f"< {_entry(s, commas=True)}" for s in g.senders]
    if g.recipients:
        lines.append(": " + " ".join(g.recipients))
    if g.timestamps:
        lines.append(f"@ {g.timestamps[0]}")
    return "\n".join([*lines, g.body]) if lines else g.body


# -- receiving and stored letters ---------------------------------------------------------------


def stamp_received(request: Request, sender: Sender, when: str) -> bytes:
    """What the server stores: the authenticated sender and receipt time added on top.

    C prepends to lines 1 and 3 (A11), keeping the rest byte for byte; a C message without
    metadata (A13) gets fresh metadata lines. B gets `< sender blurb` and `@ when` lines.
    Raises AddressError if the sender address (from the certificate) is unusable.
    """
    address = str(Address.parse(sender.address))
    if request.version == "B":
        entry = _entry(Sender(address, sender.blurb), commas=True)
        return f"< {entry}\n@ {when}\n".encode() + request.message
    entry = _entry(Sender(address, sender.blurb), commas=False)
    text = _text(request.message)
    split = _c_lines(text)
    if split is None or _c_metadata(split[1]) is None:
        return f"{entry}\n\n{when}\n{text}".encode()
    (end1, end2, end3), lines = split

    def prepend(value: str, line: str) -> str:
        return f"{value}, {line.strip()}" if line.strip() else value

    def ending(end: int) -> str:
        return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"

    line1 = prepend(entry, lines[0]) + ending(end1)
    line2 = text[end1 + 1 : end2 + 1]  # untouched, with its own line end
    line3 = prepend(when, lines[2])
    rest = ending(end3) + text[end3 + 1 :] if end3 >= 0 else ""
    return (line1 + line2 + line3 + rest).encode()


def parse_stored(raw: bytes, version: str) -> Gemmail:
    if version == "C":
        return parse_c(raw)
    if version == "B":
        return parse_b(raw)
    raise ValueError(f"unknown Misfin version {version!r}")


def forward_message(stored_raw: bytes, version: str) -> bytes:
    """A forward is the stored gemmail unchanged (A12), in C form; the next server prepends us."""
    if version == "C":
        return stored_raw
    return serialise_c(parse_stored(stored_raw, version)).encode()


# -- replies ------------------------------------------------------------------------------------


def _key(address: str) -> str:
    try:
        return Address.parse(address.strip()).key
    except AddressError:
        return address.strip().lower()


def reply_recipients(g: Gemmail, me: str) -> list[str]:
    """The newest hop (a list, if it came via one); never oneself."""
    if not g.senders or _key(g.senders[0].address) == _key(me):
        return []
    return [g.senders[0].address]


def reply_all_recipients(g: Gemmail, me: str) -> list[str]:
    """The newest hop plus every recipient, deduplicated ignoring case, without oneself."""
    candidates = ([g.senders[0].address] if g.senders else []) + list(g.recipients)
    seen = {_key(me)}
    result = []
    for address in candidates:
        if _key(address) not in seen:
            seen.add(_key(address))
            result.append(address)
    return result


def quote(body: str) -> str:
    """Gemtext quote lines for a reply; empty lines become a bare ">"."""
    lines = _lf(body).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "".join(f"> {line}\n" if line else ">\n" for line in lines)


def _prefixed(prefix: str, known: tuple[str, ...], subject: str) -> str:
    subject = subject.strip()
    if subject.lower().startswith(known):
        return subject
    return f"{prefix} {subject}" if subject else prefix


def reply_subject(subject: str) -> str:
    return _prefixed("Re:", ("re:",), subject)


def forward_subject(subject: str) -> str:
    return _prefixed("Fwd:", ("fwd:", "fw:"), subject)
