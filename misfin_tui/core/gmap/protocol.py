"""GMAP on the wire, without I/O: request lines, answers, id lists, ids, tags and folders.

GMAP uses Gemini framing: one `gemini://host[:port]/path[?query]` line (at most 1024 bytes),
one `<status> <meta>` line back and a body, then the server closes. titlani (the only other
server) does no percent-decoding, so ids and tags must be URL-safe as they are: anything
else from a server is refused here rather than echoed into a later request or a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from misfin_tui.core.address import GMAP_PORT

DEFAULT_PORT = GMAP_PORT
REQUEST_MAX = 1024  # bytes before the CRLF
HEADER_MAX = 1029  # "NN " + 1024 bytes of meta + CRLF
LIST_MAX = 64 * 1024 * 1024  # one tag's id list (~2.4 million ids)
LETTER_MAX = 4 * 1024 * 1024  # one stored letter as home hands it out

SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ID_RE = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_TITLANI_ID_RE = re.compile(r"([0-9]{8}T[0-9]{6}Z)(?:-[0-9a-f]+)?")
_TAG_RE = re.compile(r"[A-Za-z0-9_:-]{1,64}")
_SINCE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HEADER_RE = re.compile(rb"([0-9]{2})(?: ([^\r\n]*))?")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class GmapError(Exception):
    """Something about GMAP failed; the message says what in plain words."""


class MalformedAnswer(GmapError):
    """Home answered something that is not GMAP: nothing of it is used."""


class Tag(StrEnum):
    """The tags titlani declares; Inbox/Archive/Sent/Trash/Unread map to our folders."""

    INBOX = "Inbox"
    ARCHIVE = "Archive"
    SENT = "Sent"
    DRAFTS = "Drafts"
    TRASH = "Trash"
    UNREAD = "Unread"


# What a sync lists, one request each: every folder we map, and the unread flag.
SYNC_TAGS: tuple[Tag, ...] = (Tag.INBOX, Tag.ARCHIVE, Tag.SENT, Tag.TRASH, Tag.UNREAD)
# Our folders that have a tag at home (Quarantine, Drafts and Outbox stay here).
FOLDER_TAGS: dict[str, Tag] = {
    "Inbox": Tag.INBOX,
    "Archive": Tag.ARCHIVE,
    "Sent": Tag.SENT,
    "Trash": Tag.TRASH,
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One GMAP answer: the status line and the body (empty unless the status is 2x)."""

    status: int
    meta: str
    body: bytes = b""
    size: int = 0  # bytes received in all, the status line included (0: not counted)

    @property
    def ok(self) -> bool:
        return 20 <= self.status <= 29

    def to_bytes(self) -> bytes:
        return f"{self.status} {self.meta}\r\n".encode() + self.body


@dataclass(frozen=True, slots=True)
class TagOp:
    """One change to send home: add (True) or remove (False) a tag on a letter."""

    add: bool
    tag: Tag

    def path(self) -> str:
        return f"/{'tag' if self.add else 'untag'}/{self.tag}"


# -- ids, tags, times -------------------------------------------------------------------------


def valid_id(text: str) -> bool:
    """An id we will put into a request: URL-safe without encoding, never a path part."""
    return bool(_ID_RE.fullmatch(text)) and text not in (".", "..")


def valid_tag(text: str) -> bool:
    return bool(_TAG_RE.fullmatch(text))


def id_time(remote_id: str) -> str:
    """The receipt time titlani writes into its ids (ISO-8601 UTC), or "" when there is none."""
    found = _TITLANI_ID_RE.fullmatch(remote_id)
    if found is None:
        return ""
    try:
        moment = datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    return moment.strftime(SINCE_FORMAT)


def valid_since(text: str) -> bool:
    if not _SINCE_RE.fullmatch(text):
        return False
    try:
        datetime.strptime(text, SINCE_FORMAT)
    except ValueError:
        return False
    return True


def parse_id_list(body: bytes, what: str = "the list") -> tuple[list[str], list[str]]:
    """Ids joined by ", " (titlani; an empty body is an empty list): (ids, refused entries).

    A body that is not UTF-8 text is MalformedAnswer; single entries that are not usable ids
    are returned apart so the caller can report them without losing the rest.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAnswer(f"{what} is not UTF-8 text") from None
    ids: list[str] = []
    refused: list[str] = []
    seen: set[str] = set()
    for entry in re.split(r"[,\n]", text):
        item = entry.strip()
        if not item:
            continue
        if not valid_id(item):
            refused.append(item[:80])
        elif item not in seen:
            seen.add(item)
            ids.append(item)
    return ids, refused


# -- requests ---------------------------------------------------------------------------------


def list_path(tag: Tag | str, since: str = "") -> str:
    if not valid_tag(str(tag)):
        raise ValueError(f"not a GMAP tag: {tag!r}")
    if since and not valid_since(since):
        raise ValueError(f"not a GMAP timestamp: {since!r}")
    return f"/tag/{tag}/{since}" if since else f"/tag/{tag}"


def build_request(host: str, port: int, path: str, query: str | None = None) -> bytes:
    """The request line; ValueError when it would break the framing or exceed 1024 bytes."""
    if not path.startswith("/") or any(c in path for c in "?# \r\n\t"):
        raise ValueError(f"not a GMAP path: {path!r}")
    if query is not None and not valid_id(query) and not valid_tag(query):
        raise ValueError(f"not a GMAP query: {query!r}")
    shown = f"[{host}]" if ":" in host else host
    line = f"gemini://{shown}:{port}{path}" + (f"?{query}" if query is not None else "")
    data = line.encode("ascii", errors="strict")
    if len(data) > REQUEST_MAX:
        raise ValueError(f"the request would be {len(data)} bytes; GMAP allows {REQUEST_MAX}")
    return data + b"\r\n"


def parse_header(data: bytes) -> tuple[int, str, int] | None:
    """(status, meta, body offset) once the status line is complete, else None.

    MalformedAnswer when it is not `NN meta` within HEADER_MAX bytes.
    """
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) > HEADER_MAX:
            raise MalformedAnswer(f"no status line within {HEADER_MAX} bytes")
        return None
    if end + 2 > HEADER_MAX:
        raise MalformedAnswer(f"the status line is longer than {HEADER_MAX} bytes")
    found = _HEADER_RE.fullmatch(data[:end])
    if found is None:
        raise MalformedAnswer(f"not a status line: {data[:40]!r}")
    try:
        meta = (found.group(2) or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAnswer("the status line is not UTF-8") from None
    if _CONTROL_RE.search(meta):
        raise MalformedAnswer("the status line holds control characters")
    return int(found.group(1)), meta, end + 2


# -- tags and folders -------------------------------------------------------------------------


def folder_for(tags: Iterable[str]) -> str:
    """Our folder for a letter with these tags at home (Trash wins, as titlani's lists do)."""
    have = set(tags)
    for tag, folder in (
        (Tag.TRASH, "Trash"),
        (Tag.ARCHIVE, "Archive"),
        (Tag.SENT, "Sent"),
        (Tag.INBOX, "Inbox"),
    ):
        if tag in have:
            return folder
    return "Archive"  # tagged, but neither Inbox nor any folder we know: kept, out of the Inbox


def moves(old: str, new: str) -> list[TagOp]:
    """Tag changes that take a letter at home from our folder `old` to `new`.

    titlani's conventions: archive = tag Archive, untag Inbox; trash = tag Trash (the other
    tags stay, so restoring is untagging Trash); a folder with no tag at home changes nothing.
    """
    if old == new or new not in FOLDER_TAGS:
        return []
    target = FOLDER_TAGS[new]
    if new == "Trash":
        return [TagOp(True, Tag.TRASH)]
    ops = [TagOp(True, target)]
    if old == "Trash":
        ops.append(TagOp(False, Tag.TRASH))
    for folder, tag in FOLDER_TAGS.items():
        if folder not in (new, "Trash") and (folder == old or old == "Trash"):
            ops.append(TagOp(False, tag))
    return ops


def unread_op(unread: bool) -> TagOp:
    return TagOp(unread, Tag.UNREAD)


# -- letters as titlani stores them -----------------------------------------------------------


def distinct_senders(senders: Sequence[str]) -> list[str]:
    """Consecutive duplicates shown once (titlani writes its own sender line and its server
    prepends it again); only the first, the server-authenticated one, is trusted."""
    shown: list[str] = []
    for sender in senders:
        if not shown or shown[-1].lower() != sender.lower():
            shown.append(sender)
    return shown
