"""Gembox files: export letters byte for byte, import both community formats all or nothing.

Misfin defines no mailbox file; two community formats exist (reference/gmap-and-gembox.md).
We write the current one (gemmail-python 1.0.32's `[id]` format) and read it and the old
`<=====` one. The point of an archive is that it gives back what was stored, so the writer is
lossless for any raw bytes, and the rules that make it so are these:

    [<id>]                       id = received time + our letter id, GMAP style
    Senders: <C line 1>          \
    Recipients: <C line 2>        } verbatim, only when the letter is C and its first three
    Timestamps: <C line 3>       /  lines are metadata; the raw bytes are these lines + body
    <Tag>: <date> true           folder, Unread, Flagged; MisfinB marks a B letter, whose
                                 whole raw bytes are then the body
    #                            added when the body does not start with a heading line
                                 (other readers need a "#" line to find the body); a body
                                 whose first line is a lone "#" gets one added too, and the
                                 reader drops exactly one leading lone "#"
    <body lines>                 a line starting with "[" or "\\" gets one "\\" in front, and
                                 the reader removes exactly one
    \\                           a lone backslash line: the body has no final newline

Lines split on LF only and everything is bytes, so CR, NUL or invalid UTF-8 in a letter
survive too. Reading validates the whole file before anything is stored; a file that does not
parse raises GemboxError with the 1-based line number. import_gembox() then adds every new
letter in one transaction: nothing is half-imported.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from misfin_tui.core.clock import iso_utc, utc_now
from misfin_tui.core.database import FOLDERS
from misfin_tui.core.letter import parse_b, parse_c, parse_stored
from misfin_tui.core.store import MailStore, StoredLetter

B_TAG = "MisfinB"
UNREAD_TAG = "Unread"
FLAGGED_TAG = "Flagged"
# Tags GMAP declares; CreatedTags lists the others a file uses.
_DECLARED_TAGS = ("Inbox", "Archive", "Sent", "Drafts", "Trash", "Unread")
# Folders an import may fill: the Outbox holds only letters with delivery items.
IMPORT_FOLDERS = tuple(f for f in FOLDERS if f != "Outbox")

_FIELDS = (b"Senders", b"Recipients", b"Timestamps")
_NAME_RE = re.compile(rb"([A-Za-z][A-Za-z0-9_-]*):(?: |$)")
_TAG_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_GMAP_ID_RE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z(?:-.*)?")
_OLD_SEPARATOR = b"<====="
_NO_FINAL_NEWLINE = b"\\"


class GemboxFormat(Enum):
    CURRENT = "current"  # gemmail-python 1.0.32: header lines, then [id] entries
    OLD = "old"  # satch's Misfin(C) gembox: letters between <===== lines


class GemboxError(ValueError):
    """The file is not a gembox we can read; `line` is 1-based (0: the file as a whole)."""

    def __init__(self, line: int, message: str, source: str = "") -> None:
        self.line = line
        self.message = message
        self.source = source
        where = ": ".join(part for part in (source, f"line {line}" if line else "") if part)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag line of an entry: name, when it last changed, and whether it is set."""

    name: str
    changed: str
    value: bool


@dataclass(frozen=True, slots=True)
class GemboxLetter:
    """One letter read from a file: its raw gemmail bytes exactly, and where it was found."""

    line: int
    id: str
    raw: bytes
    version: str
    tags: tuple[Tag, ...] = ()

    def has_tag(self, name: str) -> bool:
        return any(tag.name == name and tag.value for tag in self.tags)


@dataclass(frozen=True, slots=True)
class Gembox:
    format: GemboxFormat
    letters: tuple[GemboxLetter, ...]
    mailbox: str = ""
    mailbox_blurb: str = ""
    description: str = ""
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What import_gembox() did. Duplicates were left out, never stored twice."""

    format: GemboxFormat
    added: tuple[int, ...]  # new letter ids, in file order
    already_stored: int  # copies of raw bytes the store already held as many times
    repeated: int  # entries that appeared earlier in the same file under the same id
    folder: str

    @property
    def read(self) -> int:
        return len(self.added) + self.already_stored + self.repeated


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    letters: int
    bytes_written: int


# -- small pieces ---------------------------------------------------------------------------------


def _timestamp(text: str) -> str | None:
    """An ISO-8601 moment as our stored form ("2024-05-01T12:00:00Z"), or None."""
    text = text.strip()
    if len(text) < 10:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_utc(moment)


def _is_c_metadata(senders: bytes, recipients: bytes, timestamps: bytes) -> bool:
    """parse_c keeps a letter whole as its body exactly when lines 1-3 are not metadata (A13)."""
    return parse_c(b"\n".join((senders, recipients, timestamps, b""))).body == ""


def _c_head(raw: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:
    """The three metadata lines and the body of a C letter, or None when it has none."""
    parts = raw.split(b"\n", 3)
    if len(parts) < 4 or not _is_c_metadata(parts[0], parts[1], parts[2]):
        return None
    return parts[0], parts[1], parts[2], parts[3]


def _entry_id(letter: StoredLetter) -> str:
    """GMAP-style `YYYYMMDDTHHMMSSZ-<hex>`: sortable, and the reader gets the date back."""
    stamp = _timestamp(letter.received_at) or "1970-01-01T00:00:00Z"
    return f"{stamp.replace('-', '').replace(':', '')}-{letter.id:08x}"


def _id_time(entry_id: str) -> str | None:
    match = _GMAP_ID_RE.fullmatch(entry_id)
    if match is None:
        return None
    y, mo, d, h, mi, s = match.groups()
    return _timestamp(f"{y}-{mo}-{d}T{h}:{mi}:{s}+00:00")


# -- writing --------------------------------------------------------------------------------------


def _escape(line: bytes) -> bytes:
    return b"\\" + line if line[:1] in (b"[", b"\\") else line


def encode_body(body: bytes) -> bytes:
    """The body block of an entry (see the module docstring); decode_body() reverses it."""
    if body:
        lines = body.split(b"\n")
        final_newline = lines[-1] == b""
        if final_newline:
            lines.pop()
    else:
        lines, final_newline = [], True
    lines = [_escape(line) for line in lines]
    if not lines or not lines[0].startswith(b"#") or lines[0] == b"#":
        lines.insert(0, b"#")
    if not final_newline:
        lines.append(_NO_FINAL_NEWLINE)
    return b"".join(line + b"\n" for line in lines)


def header_bytes(
    *, mailbox: str = "", mailbox_blurb: str = "", created_tags: Iterable[str] = ()
) -> bytes:
    """The file's header lines (each optional)."""
    lines = []
    if mailbox:
        lines.append(f"Mailbox: {mailbox} {mailbox_blurb}".rstrip())
    tags = [t for t in dict.fromkeys(created_tags) if t and t not in _DECLARED_TAGS]
    if tags:
        lines.append("CreatedTags: " + ",".join(tags))
    return "".join(f"{line}\n" for line in lines).encode()


def entry_bytes(letter: StoredLetter) -> bytes:
    """One letter as a current-format entry that parse_gembox() turns back into letter.raw."""
    raw = bytes(letter.raw)
    date = _timestamp(letter.received_at) or "1970-01-01T00:00:00Z"
    out = [f"[{_entry_id(letter)}]\n".encode()]
    head = _c_head(raw) if letter.version == "C" else None
    if head is not None:
        senders, recipients, timestamps, body = head
        out += [b"Senders: " + senders + b"\n", b"Recipients: " + recipients + b"\n"]
        out.append(b"Timestamps: " + timestamps + b"\n")
    else:
        body = raw
    out += [f"{tag}: {date} true\n".encode() for tag in tags_of(letter)]
    out.append(encode_body(body))
    return b"".join(out)


def tags_of(letter: StoredLetter) -> list[str]:
    """The tags entry_bytes() writes for a letter (for a file's CreatedTags line)."""
    tags = [letter.folder]
    if letter.unread:
        tags.append(UNREAD_TAG)
    if letter.flagged:
        tags.append(FLAGGED_TAG)
    if letter.version == "B":
        tags.append(B_TAG)
    return tags


def write_gembox(
    out: BinaryIO,
    letters: Iterable[StoredLetter],
    *,
    mailbox: str = "",
    created_tags: Iterable[str] = (),
) -> int:
    """Write a whole file (header, then one entry per letter, in the order given); returns
    the number of letters written."""
    out.write(header_bytes(mailbox=mailbox, created_tags=created_tags))
    count = 0
    for letter in letters:
        out.write(entry_bytes(letter))
        count += 1
    return count


def export_gembox(
    store: MailStore, path: Path | str, *, folder: str | None = None, overwrite: bool = False
) -> ExportResult:
    """Export one folder (None: every folder), oldest first, to `path`.

    Written to a temporary file beside `path` and renamed into place, so a failure never
    leaves a half-written archive, nor clobbers an existing file unless `overwrite`.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(17, "the file exists (overwrite it with --force)", str(target))
    mailboxes = store.mailboxes_of(folder)
    mailbox = mailboxes[0] if len(mailboxes) == 1 else ""
    created = {FLAGGED_TAG, B_TAG, *FOLDERS} if folder is None else {FLAGGED_TAG, B_TAG, folder}
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as out:
            count = write_gembox(
                out,
                store.letters_oldest_first(folder),
                mailbox=mailbox,
                created_tags=sorted(created),
            )
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return ExportResult(target, count, size)


# -- reading --------------------------------------------------------------------------------------


def _lines(data: bytes) -> tuple[list[bytes], bool]:
    """Lines split on LF only, and whether the last one ended with a newline."""
    if not data:
        return [], True
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
        return lines, True
    return lines, False


def _header_name(line: bytes) -> bytes | None:
    match = _NAME_RE.match(line)
    return match.group(1) if match else None


def detect_format(data: bytes) -> GemboxFormat:
    """Current when the first line that is not a `Name: value` header line opens an entry."""
    for line in _lines(data)[0]:
        if line.strip() and _header_name(line) is None:
            return GemboxFormat.CURRENT if line.startswith(b"[") else GemboxFormat.OLD
    return GemboxFormat.CURRENT


def parse_gembox(data: bytes) -> Gembox:
    """Read a whole file (either format) or raise GemboxError with the line at fault."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM some editors add is no letter's byte
    if detect_format(data) is GemboxFormat.CURRENT:
        return _parse_current(data)
    return _parse_old(data)


def _text(line: bytes, number: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise GemboxError(number, "this header or tag line is not UTF-8 text") from None


def decode_body(lines: list[bytes], final_newline: bool) -> bytes:
    """The raw body from an entry's body lines (the first is its "#" line); see encode_body."""
    lines = list(lines)
    if lines and lines[0] == b"#":
        lines.pop(0)
    if lines and lines[-1] == _NO_FINAL_NEWLINE:
        lines.pop()
        final_newline = False
    lines = [line[1:] if line.startswith(b"\\") else line for line in lines]
    body = b"\n".join(lines)
    return body + b"\n" if lines and final_newline else body


def _parse_current(data: bytes) -> Gembox:
    lines, last_terminated = _lines(data)
    header: dict[str, str] = {}
    index = 0
    while index < len(lines) and not lines[index].startswith(b"["):
        name = _header_name(lines[index])
        if not lines[index].strip():
            index += 1
            continue
        if name is None:
            raise GemboxError(index + 1, "expected a header line (Name: value) or a [id] line")
        header.setdefault(name.decode(), _text(lines[index], index + 1)[len(name) + 1 :].strip())
        index += 1
    letters: list[GemboxLetter] = []
    while index < len(lines):
        index, letter = _parse_entry(lines, index, last_terminated)
        letters.append(letter)
    address, _, blurb = header.get("Mailbox", "").partition(" ")
    return Gembox(
        GemboxFormat.CURRENT,
        tuple(letters),
        mailbox=address,
        mailbox_blurb=blurb.strip(),
        description=header.get("Description", ""),
        fingerprint=header.get("Fingerprint", ""),
    )


def _parse_entry(lines: list[bytes], start: int, last_terminated: bool) -> tuple[int, GemboxLetter]:
    """One entry from its [id] line; returns the index of the line after it."""
    opening = lines[start].removesuffix(b"\r")
    if not opening.endswith(b"]") or len(opening) < 3:
        raise GemboxError(
            start + 1,
            "a line starting with [ must be a letter's [id] line (a body line starting with"
            " [ should have been written as \\[)",
        )
    entry_id = _text(opening[1:-1], start + 1)
    fields: dict[bytes, tuple[int, bytes]] = {}
    tags: list[Tag] = []
    index = start + 1
    while True:
        if index >= len(lines) or lines[index].startswith(b"["):
            raise GemboxError(
                start + 1, f"letter [{entry_id}] has no body (a body starts with a # line)"
            )
        line = lines[index]
        if line.startswith(b"#"):
            break
        number = index + 1
        index += 1
        if not line.strip():
            continue
        name = _header_name(line)
        if name is None:
            raise GemboxError(
                number, "expected Senders:, Recipients:, Timestamps:, a tag line or a # line"
            )
        value = line[len(name) + 1 :].removeprefix(b" ")
        if name in _FIELDS:
            if name in fields:
                raise GemboxError(number, f"a second {name.decode()}: line in one letter")
            fields[name] = (number, value)
        else:
            tags.append(_tag(name.decode(), _text(value, number), number))
    body_start = index
    while index < len(lines) and not lines[index].startswith(b"["):
        index += 1
    final_newline = index < len(lines) or last_terminated
    body = decode_body(lines[body_start:index], final_newline)
    is_b = any(tag.name == B_TAG and tag.value for tag in tags)
    if is_b:
        if fields:
            first = min(number for number, _ in fields.values())
            raise GemboxError(first, f"a {B_TAG} letter carries its metadata in its body")
        return index, GemboxLetter(start + 1, entry_id, body, "B", tuple(tags))
    if not fields:
        return index, GemboxLetter(start + 1, entry_id, body, "C", tuple(tags))
    values = [fields.get(name, (0, b""))[1] for name in _FIELDS]
    if not _is_c_metadata(*values):
        raise _bad_field(fields, values)
    raw = b"\n".join((*values, body))
    return index, GemboxLetter(start + 1, entry_id, raw, "C", tuple(tags))


def _bad_field(fields: dict[bytes, tuple[int, bytes]], values: list[bytes]) -> GemboxError:
    """The error for the first field line that is not C metadata (checked alone, for its line)."""
    for position, name in enumerate(_FIELDS):
        alone = [b""] * 3
        alone[position] = values[position]
        if name in fields and not _is_c_metadata(*alone):
            return GemboxError(
                fields[name][0], f"this {name.decode()}: line is not Misfin C metadata"
            )
    first = min(number for number, _ in fields.values())
    return GemboxError(first, "these Senders/Recipients/Timestamps lines are not Misfin C metadata")


def _tag(name: str, value: str, number: int) -> Tag:
    if not _TAG_NAME_RE.fullmatch(name):
        raise GemboxError(number, f"{name!r} is not a tag name")
    parts = value.split()
    if len(parts) != 2 or _timestamp(parts[0]) is None:
        raise GemboxError(number, f"the {name} tag line needs a date and true or false")
    return Tag(name, parts[0], parts[1] == "true")


def _parse_old(data: bytes) -> Gembox:
    """Letters between lines starting with <=====, oldest first; a trailing divider is fine."""
    lines = data.split(b"\n")
    letters: list[GemboxLetter] = []
    start = 0
    for index in range(len(lines) + 1):
        if index < len(lines) and not lines[index].startswith(_OLD_SEPARATOR):
            continue
        chunk = lines[start:index]
        if index < len(lines):
            chunk = [*chunk, b""]  # the letter's last line ended before the divider
        raw = b"\n".join(chunk)
        if raw.strip():
            letters.append(_old_letter(raw, start + 1))
        start = index + 1
    return Gembox(GemboxFormat.OLD, tuple(letters))


def _old_letter(raw: bytes, line: int) -> GemboxLetter:
    if raw.startswith(b"<"):
        if not parse_b(raw.split(b"\n", 1)[0]).senders:
            raise GemboxError(line, "this is not a Misfin B sender line (< address blurb)")
        return GemboxLetter(line, "", raw, "B")
    parts = raw.split(b"\n", 3)
    if len(parts) < 4:
        raise GemboxError(
            line, "a Misfin C letter needs three metadata lines (senders, recipients, timestamps)"
        )
    for offset, what in enumerate(("senders", "recipients", "timestamps")):
        alone = [b""] * 3
        alone[offset] = parts[offset]
        if not _is_c_metadata(*alone):
            raise GemboxError(line + offset, f"this is not a Misfin C {what} line")
    return GemboxLetter(line, "", raw, "C")


# -- importing ------------------------------------------------------------------------------------


def _received_at(letter: GemboxLetter, timestamps: tuple[str, ...]) -> str:
    """When it arrived: the GMAP-style id's time, else the newest metadata timestamp, else now."""
    for candidate in (_id_time(letter.id), *(_timestamp(t) for t in timestamps[:1])):
        if candidate is not None:
            return candidate
    return utc_now()


def import_gembox(
    store: MailStore, data: bytes, *, folder: str = "Inbox", source: str = ""
) -> ImportResult:
    """Parse `data` completely, then add every letter not already stored, in one transaction.

    Letters are matched by their exact raw bytes, counted: a file holding the same bytes k
    times (one letter saved twice) adds as many as the store holds fewer than k, in any
    folder. So two byte-identical letters are two letters, exported and imported back, and
    importing the same file again adds nothing. An entry repeated under the same id (the
    same entry pasted twice) is one letter, counted in `repeated`. Imported letters land in
    `folder`, read unless tagged Unread, flagged when tagged Flagged, with trust "unverified"
    (no certificate came with them; "none" in Sent and Drafts). Raises GemboxError (nothing
    stored) when the file does not parse, ValueError for a folder an import may not fill.
    """
    if folder not in IMPORT_FOLDERS:
        raise ValueError(
            f"cannot import into {folder!r}: choose one of {', '.join(IMPORT_FOLDERS)}"
        )
    box = parse_gembox(data)
    trust = "none" if folder in ("Sent", "Drafts") else "unverified"
    reason = f"imported from {source}" if source else "imported from a gembox file"
    added: list[int] = []
    entries: set[tuple[str, bytes]] = set()  # (id, raw) of the entries with an id read so far
    already = repeated = 0
    with store.db.transaction():
        held = store.ids_with_raw(letter.raw for letter in box.letters)
        copies = {raw: len(ids) for raw, ids in held.items()}
        for letter in box.letters:
            if letter.id:
                if (letter.id, letter.raw) in entries:
                    repeated += 1
                    continue
                entries.add((letter.id, letter.raw))
            if copies.get(letter.raw, 0) > 0:  # this copy is one the store already holds
                copies[letter.raw] -= 1
                already += 1
                continue
            parsed = parse_stored(letter.raw, letter.version)
            sender = parsed.senders[0] if parsed.senders else None
            recipients = parsed.recipients or ((box.mailbox,) if box.mailbox else ())
            added.append(
                store.add(
                    folder=folder,
                    raw=letter.raw,
                    version=letter.version,
                    sender=sender.address if sender else "",
                    sender_blurb=sender.blurb if sender else "",
                    recipients=recipients,
                    subject=parsed.subject,
                    body=parsed.body,
                    received_at=_received_at(letter, parsed.timestamps),
                    mailbox=box.mailbox,
                    unread=letter.has_tag(UNREAD_TAG),
                    flagged=letter.has_tag(FLAGGED_TAG),
                    trust=trust,
                    trust_reason=reason if trust == "unverified" else "",
                    identity=box.mailbox,
                )
            )
    return ImportResult(box.format, tuple(added), already, repeated, folder)


def import_file(store: MailStore, path: Path | str, *, folder: str = "Inbox") -> ImportResult:
    """import_gembox() on a file; a GemboxError names the file too."""
    target = Path(path)
    data = target.read_bytes()
    try:
        return import_gembox(store, data, folder=folder, source=target.name)
    except GemboxError as exc:
        raise GemboxError(exc.line, exc.message, str(target)) from None
