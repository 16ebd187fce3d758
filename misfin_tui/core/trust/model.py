"""The trust vocabulary: what a pin is, where it came from, what a person may answer.

One enum per idea, shared by the core, the app and the command line: adding a trust choice is
one `Choice` member and one prompt. A `Question` is the typed evidence a prompt shows; it
travels to and from the database as JSON through `to_json()` / `from_json()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TrustError(Exception):
    """A trust operation that cannot be done; the message says why in plain words."""


class PasteMismatch(TrustError):
    """A pasted fingerprint names neither the trusted key nor the presented one: nothing changed."""


class Policy(StrEnum):
    """config.toml [trust] first_contact, like ssh's StrictHostKeyChecking."""

    ASK = "ask"
    ACCEPT_NEW = "accept-new"
    STRICT = "strict"


class HostState(StrEnum):
    PINNED = "pinned"
    VERIFIED = "verified"  # a pasted fingerprint matched
    REJECTED = "rejected"


class MailboxState(StrEnum):
    PINNED = "pinned"
    VERIFIED = "verified"
    REJECTED = "rejected"
    ALARM = "alarm"  # its server reported another key; the old one stays pinned
    GONE = "gone"  # its server answered 52: the mailbox no longer exists; nothing is retried


class Origin(StrEnum):
    """How a pin came to be. Only a person's decision (or their policy) approves a key."""

    APPROVED = "approved"  # the person chose "Trust & send" (or accepted a renewal)
    ACCEPT_NEW = "accept-new"  # the accept-new policy took it, on a trusted network
    PASTED = "pasted"  # a pasted fingerprint matched
    LEARNED = "learned"  # seen while verifying a sender: evidence, never approval
    DELIVERY = "delivery"  # a mailbox fingerprint an approved server answered with

    @property
    def approves(self) -> bool:
        """Whether a host pin of this origin lets letters go without a first-contact question."""
        return self in (Origin.APPROVED, Origin.ACCEPT_NEW, Origin.PASTED)

    @property
    def words(self) -> str:
        return {
            Origin.APPROVED: "approved by you",
            Origin.ACCEPT_NEW: "accepted by your accept-new policy",
            Origin.PASTED: "verified by a pasted fingerprint",
            Origin.LEARNED: "seen while verifying a sender (not approved)",
            Origin.DELIVERY: "reported by its server when a letter was delivered",
        }[self]


class HostEvent(StrEnum):
    """What a presented server key means against the pin (trust-and-mail-ux.md b.5)."""

    MATCH = "match"
    NEW_DATES = "new-dates"
    FIRST_CONTACT = "first-contact"
    FIRST_CONTACT_UNTRUSTED_NETWORK = "first-contact-untrusted-network"
    RENEWAL_LIKELY = "renewal-likely"
    CHANGED = "changed"
    REJECTED = "rejected"


class MailboxEvent(StrEnum):
    FIRST = "first"
    MATCH = "match"
    ROTATION = "rotation"
    ALARM = "alarm"
    REVOKED = "revoked"  # a fingerprint retired by a notice (or by us): never accepted again


class Held(StrEnum):
    """What waits while a question about a server key is open: a letter, or a sync from home.
    The question's words (and the choice to leave it waiting) say which."""

    LETTER = "letter"
    SYNC = "sync"
    REVIEW = "review"  # asked from Trust about a key seen instead of the pin (a Sighting)

    @property
    def waits(self) -> str:
        return {
            Held.LETTER: "Nothing was sent; the letter waits in the Outbox.",
            Held.SYNC: "Nothing was fetched or sent home; the sync waits for your decision.",
            Held.REVIEW: "Nothing was trusted; letters to this server wait until you decide.",
        }[self]

    @property
    def noun(self) -> str:
        return {Held.LETTER: "the letter", Held.SYNC: "the sync", Held.REVIEW: "the review"}[self]

    @property
    def ask_whom(self) -> str:
        """Who can tell the person the new fingerprint by another channel."""
        return {
            Held.LETTER: "the recipient or the operator",
            Held.SYNC: "the server's operator",
            Held.REVIEW: "the server's operator",
        }[self]


class Verdict(StrEnum):
    """The policy's answer: go, ask a person, hold for a trusted network, or never."""

    SEND = "send"
    ASK = "ask"
    HOLD = "hold"
    REFUSE = "refuse"


class Choice(StrEnum):
    """Everything a person can answer to a trust question, in the app and on the command line."""

    TRUST = "trust"  # pin the presented key as approved and send
    ONCE = "once"  # send this one letter to this key, remember nothing
    VERIFY = "verify"  # the pasted fingerprint matched: pin as verified and send
    HOLD = "hold"  # keep it waiting (for a trusted network, or a later decision)
    DROP = "drop"  # give up on this recipient
    FOLLOW = "follow"  # a redirect: send it to the new address
    TRUST_NETWORK = "trust-network"  # mark this network trusted, then ask again
    REVIEW = "review"  # leave it waiting and look at the entry in the trust manager

    @property
    def key(self) -> str:
        """The one-letter answer on the command line."""
        return {Choice.TRUST_NETWORK: "n", Choice.REVIEW: "r"}.get(self, self.value[0])

    @property
    def words(self) -> str:
        return {
            Choice.TRUST: "Trust this key and send",
            Choice.ONCE: "Send this letter once, trust nothing",
            Choice.VERIFY: "Verify: paste the fingerprint you were given",
            Choice.HOLD: "Hold the letter",
            Choice.DROP: "Drop this recipient",
            Choice.FOLLOW: "Send it to the new address",
            Choice.TRUST_NETWORK: "Mark this network as trusted",
            Choice.REVIEW: "Review it in the trust manager",
        }[self]


class Ask(StrEnum):
    """Which question a person is being asked (one prompt each)."""

    FIRST_CONTACT = "first-contact"
    FIRST_CONTACT_UNTRUSTED = "first-contact-untrusted-network"
    RENEWAL = "renewal-likely"
    CHANGED = "changed"
    MAILBOX_CHANGED = "mailbox"  # before sending: letters to this mailbox are paused
    MAILBOX_ALARM = "mailbox-alarm"  # after a 20: delivered, but the mailbox key differs
    REDIRECT = "redirect"


HOST_ASKS = {
    HostEvent.FIRST_CONTACT: Ask.FIRST_CONTACT,
    HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK: Ask.FIRST_CONTACT_UNTRUSTED,
    HostEvent.RENEWAL_LIKELY: Ask.RENEWAL,
    HostEvent.CHANGED: Ask.CHANGED,
}


@dataclass(frozen=True)
class PresentedCert:
    """What a server showed in the TLS handshake, as the client extracted it."""

    der: bytes
    spki: str  # SHA-256 of the SubjectPublicKeyInfo, hex: the pin
    fingerprint: str  # SHA-256 of the certificate DER, hex: shown and matched to a 20
    not_after: str  # ISO-8601 UTC
    not_before: str  # ISO-8601 UTC

    def to_json(self) -> dict[str, str]:
        return {
            "der": self.der.hex(),
            "spki": self.spki,
            "fingerprint": self.fingerprint,
            "not_after": self.not_after,
            "not_before": self.not_before,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PresentedCert:
        return cls(
            der=bytes.fromhex(str(data["der"])),
            spki=str(data["spki"]),
            fingerprint=str(data["fingerprint"]),
            not_after=str(data["not_after"]),
            not_before=str(data["not_before"]),
        )


@dataclass(frozen=True)
class Vouch:
    """A learned host key already vouched for a sender: when, and on which network."""

    sender: str
    at: str
    network: str  # the network's label as it was then

    @property
    def words(self) -> str:
        return (
            f"This key already vouched for {self.sender} on {self.at[:10]} (on "
            f"{self.network}), while a letter was being verified. That is evidence, not "
            "approval: a network that impersonated the server then would show the same key."
        )


@dataclass(frozen=True)
class Sighting:
    """A key a server presented that is not its pin: evidence of a change, never approval.

    Recorded by TrustPolicy.saw (while sending, syncing, verifying a sender or re-validating)
    beside the pin, which it never replaces; the person reviews it in Trust (paste the new
    fingerprint to replace the pin, or keep the pinned key)."""

    presented: PresentedCert
    at: str  # ISO-8601 UTC, the last time it was seen
    by: str  # what saw it, in words: "verifying carol@b.test", "sending", "re-validating"
    network: str  # the network's id
    network_label: str = ""

    @property
    def words(self) -> str:
        on = f" on {self.network_label}" if self.network_label else ""
        return f"seen {self.at[:16].replace('T', ' ')} UTC{on}, while {self.by}"

    def to_json(self) -> dict[str, Any]:
        return {
            "presented": self.presented.to_json(),
            "at": self.at,
            "by": self.by,
            "network": self.network,
            "network_label": self.network_label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sighting:
        return cls(
            PresentedCert.from_json(data["presented"]),
            str(data.get("at", "")),
            str(data.get("by", "")),
            str(data.get("network", "")),
            str(data.get("network_label", "")),
        )


@dataclass(frozen=True)
class HostPin:
    """A server's key in the hosts table, and how it came to be there."""

    hostport: str
    spki: str
    fingerprint: str
    not_after: str
    state: HostState
    protocol: str  # "C", or "B" once the server proved B-only
    first_seen: str
    first_network: str
    last_seen: str
    last_network: str
    origin: Origin = Origin.APPROVED
    origin_network: str = ""
    vouch: Vouch | None = None
    note: str = ""
    cert_der: bytes | None = None
    changed: Sighting | None = None  # another key it presented since: evidence, not the pin

    @property
    def approved(self) -> bool:
        """Letters may go to this key without a first-contact question."""
        return self.state is not HostState.REJECTED and self.origin.approves


@dataclass(frozen=True)
class MailboxPin:
    """A pinned mailbox (mailboxes table), also the address book entry.

    `alarm_fingerprint` is the unexpected fingerprint its server reported while the state is
    ALARM (the old one stays pinned).
    """

    address: str
    fingerprint: str
    issuer_spki: str
    state: MailboxState
    blurb: str
    nickname: str
    first_seen: str
    last_seen: str
    verified_at: str | None
    checked_at: str | None
    check_result: str
    alarm_fingerprint: str = ""
    origin: Origin = Origin.DELIVERY


@dataclass(frozen=True)
class Revocation:
    """A mailbox fingerprint retired for good (revoked_fingerprints), and what retired it."""

    address: str
    fingerprint: str
    at: str
    why: str  # the notice's reason (routine | stolen), or what else retired it
    announced: str = ""  # the successor the notice named (not trusted by being named)
    announced_ca: str = ""  # a new host CA's SPKI the notice named
    notice_at: str = ""
    letter_id: int | None = None


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: str
    kind: str  # host | mailbox | network
    subject: str
    event: str
    detail: str
    network: str


@dataclass(frozen=True)
class NetworkFacts:
    """The network a question was asked on, as the prompt shows it."""

    id: str
    label: str
    trusted: bool
    hints: str = ""  # what it was recognised by: "Wi-Fi 'CafeNet', router 3c:…:91"
    caution: str = ""  # a captive portal, or a look-alike of a trusted network

    @property
    def words(self) -> str:
        return f"{self.label} ({'trusted' if self.trusted else 'not marked as trusted'})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "trusted": self.trusted,
            "hints": self.hints,
            "caution": self.caution,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkFacts:
        return cls(
            str(data.get("id", "")),
            str(data.get("label", "")),
            bool(data.get("trusted")),
            str(data.get("hints", "")),
            str(data.get("caution", "")),
        )


@dataclass(frozen=True)
class PinFacts:
    """The trusted key a question compares against (a host's or a mailbox's)."""

    fingerprint: str
    spki: str = ""
    not_after: str = ""
    state: str = ""
    origin: str = ""
    first_seen: str = ""
    verified_at: str = ""

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PinFacts:
        return cls(**{k: str(data.get(k) or "") for k in cls.__dataclass_fields__})

    @classmethod
    def of_host(cls, pin: HostPin) -> PinFacts:
        return cls(
            pin.fingerprint,
            pin.spki,
            pin.not_after,
            pin.state.value,
            pin.origin.value,
            pin.first_seen,
        )

    @classmethod
    def of_mailbox(cls, pin: MailboxPin) -> PinFacts:
        return cls(
            pin.fingerprint,
            state=pin.state.value,
            origin=pin.origin.value,
            first_seen=pin.first_seen,
            verified_at=pin.verified_at or "",
        )


@dataclass(frozen=True)
class Question:
    """Everything a trust prompt shows, and what the person may answer."""

    ask: Ask
    recipient: str  # the address as the person wrote it
    hostport: str
    reason: str
    choices: tuple[Choice, ...]
    default: Choice
    network: NetworkFacts
    presented: PresentedCert | None = None
    pinned: PinFacts | None = None
    reported: str = ""  # mailbox alarm: the fingerprint the server reported instead
    vouch: Vouch | None = None
    target: str = ""  # redirect: where the server sends the letter
    permanent: bool = False  # redirect: 31, the mailbox moved for good
    status: int = 0
    held: Held = Held.LETTER  # what waits for the answer: a letter, or a sync from home

    def words(self, choice: Choice) -> str:
        """A choice as this question offers it (holding a sync is no letter held)."""
        if choice is Choice.HOLD and self.held is Held.SYNC:
            return "Leave it undecided (nothing is fetched until you decide)"
        if choice is Choice.HOLD and self.held is Held.REVIEW:
            return "Keep the key you trust (the other one is set aside)"
        return choice.words

    @property
    def host(self) -> str:
        """The server as people say it: no port when it is Misfin's own."""
        host = self.hostport.removesuffix(":1958")
        return host or self.recipient.rpartition("@")[2]

    def to_json(self) -> dict[str, Any]:
        return {
            "ask": self.ask.value,
            "recipient": self.recipient,
            "hostport": self.hostport,
            "reason": self.reason,
            "choices": [c.value for c in self.choices],
            "default": self.default.value,
            "network": self.network.to_json(),
            "presented": self.presented.to_json() if self.presented else None,
            "pinned": self.pinned.to_json() if self.pinned else None,
            "reported": self.reported,
            "vouch": None if self.vouch is None else vars(self.vouch),
            "target": self.target,
            "permanent": self.permanent,
            "status": self.status,
            "held": self.held.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        vouch = data.get("vouch")
        return cls(
            ask=Ask(data["ask"]),
            recipient=str(data.get("recipient", "")),
            hostport=str(data.get("hostport", "")),
            reason=str(data.get("reason", "")),
            choices=tuple(Choice(c) for c in data.get("choices") or ()),
            default=Choice(data.get("default") or Choice.HOLD),
            network=NetworkFacts.from_json(data.get("network") or {}),
            presented=PresentedCert.from_json(data["presented"]) if data.get("presented") else None,
            pinned=PinFacts.from_json(data["pinned"]) if data.get("pinned") else None,
            reported=str(data.get("reported", "")),
            vouch=Vouch(**vouch) if isinstance(vouch, dict) else None,
            target=str(data.get("target", "")),
            permanent=bool(data.get("permanent")),
            status=int(data.get("status") or 0),
            held=Held(data.get("held") or Held.LETTER),
        )


@dataclass(frozen=True)
class Answer:
    """A person's answer: the choice, a pasted fingerprint, a network's name."""

    choice: Choice
    pasted: str = ""
    label: str = ""


@dataclass(frozen=True)
class HostDecision:
    """The policy's ruling on one presented server key, with the question when one is needed."""

    event: HostEvent
    verdict: Verdict
    hostport: str
    presented: PresentedCert
    pinned: HostPin | None
    reason: str
    choices: tuple[Choice, ...] = ()
    default: Choice = Choice.HOLD
    origin: Origin = Origin.APPROVED  # how the key is recorded when it goes (SEND)
    vouch: Vouch | None = None  # a learned key: whom it vouched for
    held: Held = Held.LETTER  # what waits while it is undecided
