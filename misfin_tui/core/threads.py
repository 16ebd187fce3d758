"""Conversations: letters grouped into threads, and the forwarding chain of one letter.

Misfin has no message id and no in-reply-to (the first heading is the subject), so a thread is
inferred: letters whose subjects match once Re:/Fwd: prefixes are stripped, and that share at
least one correspondent other than ourselves, belong together; so do letters joined by an
explicit link (our own replies' in_reply_to, or titlani's `=> mid:<id>` lines resolved to
letters). Everything here is pure and deterministic: the same letters give the same threads
in the same order, whatever order they came in, and 100,000 letters take a few times a plain
sort (bench/threads.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING

from misfin_tui.core import gemtext
from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.letter import parse_b, parse_c

if TYPE_CHECKING:  # the letter list's rows, as a type only: threading does no I/O
    from misfin_tui.core.store import Summary

# Reply and forward prefixes as mail clients write them, in several languages, with counters
# ("Re[2]:", "Re^2:") and stray spaces before the colon ("RE :").
_PREFIX_RE = re.compile(
    r"^\s*(?:re|fwd?|aw|wg|sv|vs|antw|rif|tr|enc|odp)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:\s*",
    re.IGNORECASE,
)


class Order(Enum):
    """How a thread lists its members."""

    NEWEST_FIRST = "newest-first"
    OLDEST_FIRST = "oldest-first"


@dataclass(frozen=True, slots=True)
class Thread:
    """One conversation. `members` holds every letter, `root` among them.

    Only what grouping needs is computed up front; counts and the display subject are
    properties, so building 100,000 letters' threads does not pay for rows never drawn.
    """

    root: Summary  # the oldest letter: the one that started the conversation
    members: tuple[Summary, ...]  # in the Order asked for (newest first by default)
    correspondents: frozenset[str]  # everyone but us, as address keys

    @property
    def id(self) -> int:
        """Stable while the root letter exists: its letter id."""
        return self.root.id

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def unread(self) -> int:
        """How many members are unread."""
        return sum(1 for member in self.members if member.unread)

    @property
    def flagged(self) -> bool:
        return any(member.flagged for member in self.members)

    @property
    def subject(self) -> str:
        """The root's subject without Re:/Fwd: prefixes ("" when it has none)."""
        return strip_prefixes(self.root.subject)

    @property
    def latest(self) -> Summary:
        """The newest member (what the thread's row shows and sorts by)."""
        return max(self.members, key=_WHEN)


_WHEN = attrgetter("received_at", "id")


def strip_prefixes(subject: str) -> str:
    """ "Re: Fwd: RE[2]: Lunch" -> "Lunch"."""
    if ":" not in subject[:40]:
        return " ".join(subject.split())
    text = subject
    while (match := _PREFIX_RE.match(text)) is not None:
        text = text[match.end() :]
    return " ".join(text.split())


def normalise_subject(subject: str) -> str:
    """The key two subjects share when they name the same conversation (case-folded)."""
    return strip_prefixes(subject).casefold()


def address_key(text: str) -> str:
    """An address as threads compare it (mailbox case ignored, IDNA host); text as-is if odd."""
    try:
        return Address.parse(text.strip()).key
    except AddressError:
        return text.strip().lower()


class _Keys:
    """address_key() with a cache: 100,000 letters come from a few thousand addresses."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        key = self._cache.get(text)
        if key is None:
            key = self._cache[text] = address_key(text)
        return key


def build_threads(
    summaries: Iterable[Summary],
    *,
    me: Iterable[str] = (),
    links: Mapping[int, int] | None = None,
    order: Order = Order.NEWEST_FIRST,
) -> list[Thread]:
    """Group letters into threads, newest activity first.

    `me`: every address of ours (the profile's identities); without it every letter to us
    shares a correspondent and subjects alone decide. `links`: letter id -> the letter it
    answers (MailStore.reply_parents(), resolve_mid_links()); links to letters not among
    `summaries` are ignored. A letter without a subject joins a thread only through a link.
    Threads are ordered by their newest member (received_at, then id), newest first.
    """
    letters = sorted(summaries, key=_WHEN, reverse=True)
    keys = _Keys()
    ours = {keys(address) for address in me}
    parent = list(range(len(letters)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Caches keyed by what repeats: a mailbox has far fewer distinct (sender, recipients)
    # pairs and subjects than letters.
    others_cache: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}
    subjects: dict[str, str] = {}
    first_seen: dict[tuple[str, str], int] = {}
    others_of: list[frozenset[str]] = []
    nobody = ("",)
    setdefault = first_seen.setdefault
    for index, letter in enumerate(letters):
        pair = (letter.sender, letter.recipients)
        others = others_cache.get(pair)
        if others is None:
            others = others_cache[pair] = frozenset(
                key for key in (keys(a) for a in (pair[0], *pair[1]) if a) if key not in ours
            )
        others_of.append(others)
        subject = subjects.get(letter.subject)
        if subject is None:
            subject = subjects[letter.subject] = normalise_subject(letter.subject)
        if not subject:
            continue
        for who in others or nobody:
            seen = setdefault((subject, who), index)
            if seen != index:
                a, b = find(index), find(seen)
                if a != b:
                    # The older index (newer letter) stays representative.
                    parent[max(a, b)] = min(a, b)
    if links:
        position = {letter.id: index for index, letter in enumerate(letters)}
        for child, answered in links.items():
            a_pos, b_pos = position.get(child), position.get(answered)
            if a_pos is not None and b_pos is not None:
                a, b = find(a_pos), find(b_pos)
                if a != b:
                    parent[max(a, b)] = min(a, b)

    # Every link points from a higher index to a lower one, so one ascending pass leaves each
    # entry pointing straight at its root (its parent's entry is final already).
    for index, up in enumerate(parent):
        if up != index:
            parent[index] = parent[up]
    groups: dict[int, list[int]] = {}
    for index, root_index in enumerate(parent):
        group = groups.get(root_index)
        if group is None:
            groups[root_index] = [index]
        else:
            group.append(index)
    threads = []
    newest_first = order is Order.NEWEST_FIRST
    for members in groups.values():
        ordered = tuple([letters[i] for i in members])  # newest first already
        if len(members) == 1:
            correspondents = others_of[members[0]]
        else:
            correspondents = frozenset().union(*[others_of[i] for i in members])
        threads.append(
            Thread(ordered[-1], ordered if newest_first else ordered[::-1], correspondents)
        )
    return threads


# -- titlani's `=> mid:<id>` links ----------------------------------------------------------------


def mid_links(body: str) -> tuple[str, ...]:
    """The ids of `=> mid:<id>` link lines in a gemtext body, in order, without repeats.

    titlani writes `=> mid:<id> In reply to`; the id is a GMAP id on the replier's own server,
    so it resolves only against letters synced from that server (see resolve_mid_links).
    """
    found: dict[str, None] = {}
    for line in gemtext.parse(body):
        if line.kind is gemtext.Kind.LINK and line.url[:4].lower() == "mid:" and line.url[4:]:
            found.setdefault(line.url[4:], None)
    return tuple(found)


def resolve_mid_links(
    bodies: Iterable[tuple[int, str]], message_ids: Mapping[str, int]
) -> dict[int, int]:
    """letter id -> the letter it answers, for the mid: links that name a known letter.

    `bodies`: (letter id, body), e.g. MailStore.bodies_with_mid_links(). `message_ids`: the
    message id (GMAP id) each letter is known by -> its letter id. The first link that
    resolves wins; a letter never answers itself.
    """
    result: dict[int, int] = {}
    for letter_id, body in bodies:
        for mid in mid_links(body):
            target = message_ids.get(mid)
            if target is not None and target != letter_id:
                result[letter_id] = target
                break
    return result


# -- forwarding chains ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    """One sender a letter passed through, as its metadata records it."""

    address: str
    blurb: str = ""
    timestamp: str = ""  # as written in the letter; "" when that hop left none
    authenticated: bool = False  # only the newest hop: the receiving server took it from TLS


def forward_chain(raw: bytes, version: str) -> tuple[Hop, ...]:
    """The senders of a stored letter, newest first: who sent it to us, who sent it to them, ...

    C: line 1's comma list with line 3's timestamps, paired by position (each server prepends
    both). B: the leading `<` lines, each with the `@` line that follows it. A sender repeated
    in a row (a client that pre-filled what its server then prepended) is shown once, with the
    newer timestamp. Only the first hop is authenticated.
    """
    if version == "C":
        parsed = parse_c(raw)
        pairs = [
            (
                sender.address,
                sender.blurb,
                parsed.timestamps[i] if i < len(parsed.timestamps) else "",
            )
            for i, sender in enumerate(parsed.senders)
        ]
    elif version == "B":
        pairs = _b_pairs(raw)
    else:
        raise ValueError(f"unknown Misfin version {version!r}")
    hops: list[Hop] = []
    for address, blurb, timestamp in pairs:
        if hops and address_key(hops[-1].address) == address_key(address):
            if not hops[-1].blurb and blurb:
                hops[-1] = Hop(hops[-1].address, blurb, hops[-1].timestamp, hops[-1].authenticated)
            continue
        hops.append(Hop(address, blurb, timestamp, authenticated=not hops))
    return tuple(hops)


def _b_pairs(raw: bytes) -> list[tuple[str, str, str]]:
    """(address, blurb, timestamp) per `<` line of a B letter's leading metadata block."""
    pairs: list[tuple[str, str, str]] = []
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    for line in text.split("\n"):
        # parse_b consumes a line as metadata exactly when nothing of it is left as body.
        if not line or parse_b(line).body != "":
            break
        if line.startswith("<"):
            sender = parse_b(line).senders[0]
            pairs.append((sender.address, sender.blurb, ""))
        elif line.startswith("@") and pairs and not pairs[-1][2]:
            address, blurb, _ = pairs[-1]
            pairs[-1] = (address, blurb, line[1:].strip())
    return pairs
