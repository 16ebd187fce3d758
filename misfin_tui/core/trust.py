"""Trust on first use: which server keys and mailbox certificates the person trusts, and why.

`classify()` is a pure function of the pin, the presented certificate, the network and the
policy: it decides whether a letter may go, must wait for a person, or must not go at all
(the event table of trust-and-mail-ux.md b.5). `TrustStore` keeps the pins in the shared
database and writes every change to the append-only trust history, so "I accepted that by
mistake" can always be traced. Hosts are pinned by SPKI SHA-256, so a renewed certificate with
the same key needs no prompt; a different key while the old pin is valid is an alarm that only a
pasted fingerprint can clear. Verification is always by pasting, never by comparing by eye.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from misfin_tui.core.database import Database, utc_now
from misfin_tui.core.network import Network

POLICIES = ("ask", "accept-new", "strict")
RENEWAL_WINDOW = timedelta(days=30)
MIN_PREFIX = 16  # hex characters a pasted fingerprint must have at least

Action = Literal["send", "ask", "hold", "refuse"]


class TrustError(Exception):
    """A trust operation that cannot be done; the message says why in plain words."""


class HostEvent(StrEnum):
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


@dataclass(frozen=True)
class PresentedCert:
    """What a server showed in the TLS handshake, as the client extracted it."""

    der: bytes
    spki: str  # SHA-256 of the SubjectPublicKeyInfo, hex: the pin
    fingerprint: str  # SHA-256 of the certificate DER, hex: shown and matched to a 20
    not_after: str  # ISO-8601 UTC
    not_before: str  # ISO-8601 UTC


@dataclass(frozen=True)
class HostPin:
    """A pinned server (hosts table). state: pinned | verified | rejected."""

    hostport: str
    spki: str
    fingerprint: str
    not_after: str
    state: str
    protocol: str  # "C", or "B" once the server proved B-only
    first_seen: str
    first_network: str
    last_seen: str
    last_network: str
    note: str = ""
    cert_der: bytes | None = None


@dataclass(frozen=True)
class MailboxPin:
    """A pinned mailbox (mailboxes table), also the address book entry.

    state: pinned | verified | rejected | alarm. alarm_fingerprint is the unexpected
    fingerprint a server reported while state is "alarm" (the old one stays pinned).
    """

    address: str
    fingerprint: str
    issuer_spki: str
    state: str
    blurb: str
    nickname: str
    first_seen: str
    last_seen: str
    verified_at: str | None
    checked_at: str | None
    check_result: str
    alarm_fingerprint: str = ""


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
class Decision:
    """What to do with a letter for this server, and the evidence a prompt shows.

    choices lists what a person may answer ("trust", "once", "verify", "hold"), the safe
    default is `default`; both are empty when no person is needed (send / refuse).
    """

    event: HostEvent
    action: Action
    hostport: str
    presented: PresentedCert
    pinned: HostPin | None
    network: Network
    reason: str
    choices: tuple[str, ...] = ()
    default: str = ""


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time as aware UTC, or None when it cannot be read."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(text: str) -> str:
    return text[:10] if parse_time(text) else "an unknown date"


def _network_words(network: Network) -> str:
    return f"{network.label} ({'trusted' if network.trusted else 'not marked as trusted'})"


def classify(
    pin: HostPin | None,
    presented: PresentedCert,
    network: Network,
    policy: str,
    now: datetime | None = None,
    *,
    hostport: str = "",
) -> Decision:
    """Decide what the presented server certificate means for sending (b.5 event table).

    Pure: reads nothing but its arguments (`now` defaults to the clock). The network only
    matters for a first contact and for the wording of a renewal; it never softens an alarm.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown first-contact policy {policy!r}; use one of {POLICIES}")
    now = datetime.now(UTC) if now is None else now
    name = hostport or (pin.hostport if pin else "this server")

    def decide(
        event: HostEvent,
        action: Action,
        reason: str,
        choices: tuple[str, ...] = (),
        default: str = "",
    ) -> Decision:
        return Decision(event, action, name, presented, pin, network, reason, choices, default)

    if pin is not None and pin.state == "rejected":
        return decide(
            HostEvent.REJECTED,
            "refuse",
            f"You rejected {name}. Nothing is sent to it; forget it in Trust if you changed "
            "your mind.",
        )
    if pin is None:
        return _first_contact(name, network, policy, decide)
    if presented.spki == pin.spki:
        if presented.fingerprint == pin.fingerprint and presented.not_after == pin.not_after:
            return decide(HostEvent.MATCH, "send", f"{name} presented the key you trust.")
        return decide(
            HostEvent.NEW_DATES,
            "send",
            f"{name} presented the key you trust in a renewed certificate (valid until "
            f"{_day(presented.not_after)}); the record is updated.",
        )
    expires = parse_time(pin.not_after)
    verify_only = policy == "strict"
    if expires is not None and expires <= now + RENEWAL_WINDOW:
        when = "expired on" if expires <= now else "expires on"
        reason = (
            f"{name} has a new key, probably a routine renewal: the key you trusted {when} "
            f"{expires:%Y-%m-%d}. Nothing was sent; the letter waits in the Outbox."
        )
        if not network.trusted:
            reason += (
                f" You are on an unfamiliar network ({network.label}); consider waiting until "
                "you are on a trusted one."
            )
        if verify_only:
            reason += " Your policy is strict: paste the new fingerprint to accept it."
        choices = ("verify", "hold") if verify_only else ("trust", "verify", "hold")
        return decide(HostEvent.RENEWAL_LIKELY, "ask", reason, choices, "hold")
    valid = f"until {expires:%Y-%m-%d}" if expires else "with no readable end date"
    return decide(
        HostEvent.CHANGED,
        "ask",
        f"{name} is presenting a different key from the one you trusted on "
        f"{_day(pin.first_seen)}, which is still valid {valid}. This happens when an "
        "operator rebuilds a server without keeping its key, but it is also exactly what an "
        "interception looks like. Nothing was sent; the letter waits in the Outbox. Ask the "
        "recipient or the operator for the new fingerprint by another channel and paste it "
        f"to replace the key. Network: {_network_words(network)}.",
        ("verify", "hold"),
        "hold",
    )


def _first_contact(
    name: str, network: Network, policy: str, decide: Callable[..., Decision]
) -> Decision:
    """No pin yet: the policy and the network decide whether a person is asked."""
    if network.trusted:
        event = HostEvent.FIRST_CONTACT
        reason = (
            f"You have not contacted {name} before, so it cannot yet be told whether it is "
            "genuine. If you trust it now, it will be remembered and you will be warned if "
            f"its key ever changes. Network: {_network_words(network)}."
        )
        if policy == "accept-new":
            return decide(event, "send", reason + " Your policy accepts new servers.")
        if policy == "strict":
            return decide(
                event,
                "ask",
                reason + " Your policy is strict: a new server is accepted only when you "
                "paste its fingerprint.",
                ("verify", "hold"),
                "hold",
            )
        return decide(event, "ask", reason, ("trust", "once", "verify", "hold"), "trust")
    event = HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
    reason = (
        f"This is the first contact with {name}, and you are on a network you have not "
        f"marked as trusted ({network.label}). Whoever runs this network could point {name} "
        "at a different server, and a first contact could not notice it. Mail to servers "
        "you have written to before is not affected."
    )
    if policy == "accept-new":
        return decide(
            event,
            "hold",
            reason + " Your policy accepts new servers, but never on an untrusted network: "
            "the letter waits until you are on a trusted network or you decide.",
            ("verify", "hold", "once", "trust"),
            "hold",
        )
    if policy == "strict":
        return decide(
            event,
            "ask",
            reason + " Your policy is strict: a new server is accepted only when you paste "
            "its fingerprint.",
            ("verify", "hold"),
            "hold",
        )
    return decide(event, "ask", reason, ("hold", "verify", "once", "trust"), "hold")


def _clean(text: str) -> str:
    """Lower-case hex with an optional "sha256:" prefix, spaces and colons removed."""
    value = re.sub(r"[\s:]", "", text.strip().lower().removeprefix("sha256:"))
    return value.removeprefix("sha256")  # "SHA256:" with its colon already stripped


def fingerprint_matches(pasted: str, actual: str) -> bool:
    """Does a pasted fingerprint name `actual`? Any case, spaces, colons, "sha256:" prefix.

    A prefix of at least 16 hex characters is accepted (what a person can read out);
    anything shorter, anything with other characters, or an empty actual value is not.
    """
    wanted, have = _clean(pasted), _clean(actual)
    if len(wanted) < MIN_PREFIX or not have or not re.fullmatch(r"[0-9a-f]+", wanted):
        return False
    return have.startswith(wanted)


def group_fingerprint(hex64: str) -> str:
    """Upper-case 4-character groups ("3F2A 9C1E ..."), the way people read a fingerprint."""
    value = _clean(hex64).upper()
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex characters, or TrustError."""
    value = _clean(text)
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise TrustError(f"not a SHA-256 fingerprint: {text[:80]!r}")
    return value


class TrustStore:
    """Pins for hosts and mailboxes over the shared database, with an append-only history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ----- history ------------------------------------------------------------------------

    def log(self, kind: str, subject: str, event: str, detail: str = "", network: str = "") -> None:
        """Append one trust event (the table refuses updates and deletes)."""
        self.db.connect().execute(
            "INSERT INTO trust_history(at, kind, subject, event, detail, network)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), kind, subject, event, detail, network),
        )

    def history(self, limit: int = 500, subject: str | None = None) -> list[HistoryEntry]:
        """Newest first; optionally only the events of one host, address or network."""
        sql = "SELECT * FROM trust_history"
        args: tuple = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            args = (subject,)
        rows = self.db.connect().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [HistoryEntry(*(row[k] for k in HistoryEntry.__dataclass_fields__)) for row in rows]

    # ----- hosts ----------------------------------------------------------------------------

    def host(self, hostport: str) -> HostPin | None:
        row = self.db.connect().execute("SELECT * FROM hosts WHERE hostport = ?", (hostport,))
        found = row.fetchone()
        return None if found is None else _host(found)

    def hosts(self) -> list[HostPin]:
        rows = self.db.connect().execute("SELECT * FROM hosts ORDER BY hostport")
        return [_host(row) for row in rows]

    def pin_host(
        self,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        state: str = "pinned",
        now: datetime | None = None,
    ) -> HostPin:
        """Trust the presented key: a first contact, or accepting a likely renewal.

        Refuses (TrustError) to replace a pin that is still valid (only verify_host can,
        with a pasted fingerprint) or to overrule a rejection (forget the host first).
        """
        if state not in ("pinned", "verified"):
            raise ValueError(f"pin_host state must be pinned or verified, not {state!r}")
        with self.db.transaction():
            pin = self.host(hostport)
            if pin is not None:
                event = classify(pin, presented, network, "ask", now, hostport=hostport).event
                if event is HostEvent.REJECTED:
                    raise TrustError(f"{hostport} is rejected; forget it first to trust it again.")
                if event is HostEvent.CHANGED:
                    raise TrustError(
                        f"{hostport} presents a different key while the trusted one is still "
                        "valid; it can only be replaced by pasting the new fingerprint."
                    )
            if pin is not None and pin.spki == presented.spki and pin.state == "verified":
                state = "verified"  # trusting a key again never undoes its verification
            self._write_host(hostport, presented, network, state, pin)
            if pin is None:
                verb = "verified" if state == "verified" else "accepted"
                detail = f"key {presented.spki}, first contact"
            elif pin.spki != presented.spki:
                verb = "replaced"
                detail = f"renewal accepted: key {pin.spki} -> {presented.spki}"
            else:
                verb = "verified" if state == "verified" else "accepted"
                detail = f"key {presented.spki}"
            self.log("host", hostport, verb, detail, network.id)
        return self._must_host(hostport)

    def accept_once(self, hostport: str, presented: PresentedCert, network: Network) -> None:
        """Record that one letter was allowed to this key without pinning it ("Send once")."""
        self.log("host", hostport, "accepted-once", f"key {presented.spki}", network.id)

    def touch_host(self, hostport: str, presented: PresentedCert, network: Network) -> HostPin:
        """Refresh a pin after MATCH or NEW_DATES: last seen, dates, fingerprint, certificate."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None or pin.spki != presented.spki:
                raise TrustError(f"{hostport} does not present its pinned key; nothing updated.")
            conn.execute(
                "UPDATE hosts SET fingerprint = ?, not_after = ?, cert_der = ?, last_seen = ?,"
                " last_network = ? WHERE hostport = ?",
                (
                    presented.fingerprint,
                    presented.not_after,
                    presented.der,
                    utc_now(),
                    network.id,
                    hostport,
                ),
            )
            if (pin.fingerprint, pin.not_after) != (presented.fingerprint, presented.not_after):
                self.log(
                    "host",
                    hostport,
                    "new-dates",
                    f"same key, certificate {presented.fingerprint} valid until "
                    f"{presented.not_after}",
                    network.id,
                )
        return self._must_host(hostport)

    def verify_host(
        self,
        hostport: str,
        pasted: str,
        presented: PresentedCert | None = None,
        network: Network | None = None,
    ) -> bool:
        """Verify by a pasted fingerprint (certificate or SPKI hash); True when it matched.

        Without `presented` the pasted value is checked against the stored pin. With it, a
        match against the presented certificate pins it as verified: on a first contact, a
        renewal, or a changed key — the only way to replace a pin that is still valid.
        """
        net_id = network.id if network else ""
        with self.db.transaction():
            pin = self.host(hostport)
            if pin is not None and pin.state == "rejected":
                raise TrustError(f"{hostport} is rejected; forget it first to trust it again.")
            if presented is None:
                if pin is None:
                    raise TrustError(f"{hostport} is not known; connect to it first.")
                target_fp, target_spki = pin.fingerprint, pin.spki
            else:
                target_fp, target_spki = presented.fingerprint, presented.spki
            if not (
                fingerprint_matches(pasted, target_fp) or fingerprint_matches(pasted, target_spki)
            ):
                self.log(
                    "host", hostport, "verify-failed", f"pasted {pasted.strip()[:80]!r}", net_id
                )
                return False
            if presented is None or (pin is not None and pin.spki == presented.spki):
                self.db.connect().execute(
                    "UPDATE hosts SET state = 'verified' WHERE hostport = ?", (hostport,)
                )
                if presented is not None and network is not None:
                    self.touch_host(hostport, presented, network)
                self.log("host", hostport, "verified", f"key {target_spki}", net_id)
                return True
            net = network or Network(net_id, "", False, "unknown")
            self._write_host(hostport, presented, net, "verified", pin)
            if pin is None:
                self.log(
                    "host", hostport, "verified", f"key {presented.spki}, first contact", net_id
                )
            else:
                self.log(
                    "host",
                    hostport,
                    "replaced",
                    f"verified by a pasted fingerprint: key {pin.spki} -> {presented.spki}",
                    net_id,
                )
        return True

    def reject_host(
        self,
        hostport: str,
        presented: PresentedCert | None = None,
        network: Network | None = None,
    ) -> None:
        """Never send to this server again (until forgotten)."""
        net_id = network.id if network else ""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None:
                if presented is None:
                    raise TrustError(f"{hostport} is not known; there is nothing to reject.")
                net = network or Network(net_id, "", False, "unknown")
                self._write_host(hostport, presented, net, "rejected", None)
            else:
                conn.execute("UPDATE hosts SET state = 'rejected' WHERE hostport = ?", (hostport,))
            self.log("host", hostport, "rejected", "", net_id)

    def forget_host(self, hostport: str) -> bool:
        """Remove the pin: the next letter is a first contact again. Logged."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None:
                return False
            conn.execute("DELETE FROM hosts WHERE hostport = ?", (hostport,))
            self.log("host", hostport, "forgotten", f"was {pin.state}, key {pin.spki}")
        return True

    def set_protocol(self, hostport: str, protocol: str) -> None:
        """Remember that a server speaks only Misfin B ("B"), or C again ("C")."""
        if protocol not in ("B", "C"):
            raise ValueError(f"protocol must be 'B' or 'C', not {protocol!r}")
        self.db.connect().execute(
            "UPDATE hosts SET protocol = ? WHERE hostport = ?", (protocol, hostport)
        )

    def _write_host(
        self,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        state: str,
        previous: HostPin | None,
    ) -> None:
        now = utc_now()
        first_seen = previous.first_seen if previous else now
        first_network = previous.first_network if previous else network.id
        protocol = previous.protocol if previous else "C"
        note = previous.note if previous else ""
        self.db.connect().execute(
            "INSERT OR REPLACE INTO hosts(hostport, spki, fingerprint, not_after, cert_der, state,"
            " protocol, first_seen, first_network, last_seen, last_network, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hostport,
                presented.spki,
                presented.fingerprint,
                presented.not_after,
                presented.der,
                state,
                protocol,
                first_seen,
                first_network,
                now,
                network.id,
                note,
            ),
        )

    def _must_host(self, hostport: str) -> HostPin:
        pin = self.host(hostport)
        if pin is None:
            raise TrustError(f"{hostport} is not known.")
        return pin

    # ----- mailboxes ------------------------------------------------------------------------

    def mailbox(self, address: str) -> MailboxPin | None:
        key = _address_key(address)
        row = self.db.connect().execute("SELECT * FROM mailboxes WHERE address = ?", (key,))
        found = row.fetchone()
        return None if found is None else self._mailbox(found)

    def mailboxes(self) -> list[MailboxPin]:
        rows = self.db.connect().execute("SELECT * FROM mailboxes ORDER BY address")
        return [self._mailbox(row) for row in rows]

    def record_mailbox(
        self, address: str, fingerprint: str, issuer_spki: str = "", blurb: str = ""
    ) -> MailboxEvent:
        """Record a mailbox fingerprint from a 20 answer or a received certificate.

        FIRST: pinned now. MATCH: as pinned. ROTATION: changed, but issued by the same host CA
        as before (issuer_spki equal and non-empty): the pin moves on and it is logged; if the
        person had verified the old key, sends wait for re-verification. ALARM: changed
        otherwise: the old key stays pinned, the new one is kept in the history, sends wait.
        """
        key = _address_key(address)
        new = normalise_fingerprint(fingerprint)
        issuer = issuer_spki.strip().lower()
        now = utc_now()
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                conn.execute(
                    "INSERT INTO mailboxes(address, fingerprint, issuer_spki, state, blurb,"
                    " first_seen, last_seen) VALUES (?, ?, ?, 'pinned', ?, ?, ?)",
                    (key, new, issuer, blurb, now, now),
                )
                self.log("mailbox", key, "first-seen", f"fingerprint {new}")
                return MailboxEvent.FIRST
            if new == pin.fingerprint:
                conn.execute(
                    "UPDATE mailboxes SET last_seen = ?,"
                    " blurb = CASE WHEN ? = '' THEN blurb ELSE ? END,"
                    " issuer_spki = CASE WHEN issuer_spki = '' THEN ? ELSE issuer_spki END"
                    " WHERE address = ?",
                    (now, blurb, blurb, issuer, key),
                )
                return MailboxEvent.MATCH
            if pin.state == "alarm":
                if new != pin.alarm_fingerprint:
                    self.log("mailbox", key, "alarm", _alarm_detail(new, pin.fingerprint))
                return MailboxEvent.ALARM
            if pin.state != "rejected" and issuer and issuer == pin.issuer_spki:
                # A verified mailbox that rotated keeps verified_at but drops to "pinned":
                # mailbox_blocked() holds sends until the person re-verifies or unverifies.
                state = "pinned" if pin.state == "verified" else pin.state
                conn.execute(
                    "UPDATE mailboxes SET fingerprint = ?, state = ?, last_seen = ?,"
                    " blurb = CASE WHEN ? = '' THEN blurb ELSE ? END WHERE address = ?",
                    (new, state, now, blurb, blurb, key),
                )
                self.log(
                    "mailbox",
                    key,
                    "rotated",
                    f"new fingerprint {new} (was {pin.fingerprint}), issued by the same "
                    f"server key {issuer}",
                )
                return MailboxEvent.ROTATION
            if pin.state != "rejected":
                conn.execute(
                    "UPDATE mailboxes SET state = 'alarm', last_seen = ? WHERE address = ?",
                    (now, key),
                )
            self.log("mailbox", key, "alarm", _alarm_detail(new, pin.fingerprint))
            return MailboxEvent.ALARM

    def mailbox_blocked(self, address: str) -> str | None:
        """Why letters to this address must wait for the person, or None when they may go."""
        pin = self.mailbox(address)
        if pin is None:
            return None
        if pin.state == "rejected":
            return f"You rejected {pin.address}; letters to it are not sent."
        if pin.state == "alarm":
            return (
                f"The server reported a different key for {pin.address} than the one you "
                "trusted, and it is not issued by the same server key. Letters to this "
                "address are paused until you review it in Trust (paste the fingerprint "
                "the person gives you to verify it)."
            )
        if pin.state == "pinned" and pin.verified_at:
            return (
                f"You had verified {pin.address}, and its key has changed since (still "
                "issued by the same server). Re-verify it by pasting its fingerprint, or "
                "send as unverified."
            )
        return None

    def verify_mailbox(self, address: str, pasted: str) -> bool:
        """Verify by a pasted fingerprint: the pinned one or, during an alarm, the new one.

        A match pins that fingerprint as verified and ends an alarm. Mismatches are logged.
        """
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                raise TrustError(f"{key} is not known yet; send to it or receive from it first.")
            if fingerprint_matches(pasted, pin.fingerprint):
                chosen, event = pin.fingerprint, "verified"
            elif pin.alarm_fingerprint and fingerprint_matches(pasted, pin.alarm_fingerprint):
                chosen, event = pin.alarm_fingerprint, "replaced"
            else:
                self.log("mailbox", key, "verify-failed", f"pasted {pasted.strip()[:80]!r}")
                return False
            conn.execute(
                "UPDATE mailboxes SET fingerprint = ?, state = 'verified', verified_at = ?"
                " WHERE address = ?",
                (chosen, utc_now(), key),
            )
            detail = f"fingerprint {chosen} verified by paste"
            if event == "replaced":
                detail = f"fingerprint {pin.fingerprint} -> {chosen}, verified by paste"
            self.log("mailbox", key, event, detail)
        return True

    def unverify_mailbox(self, address: str) -> None:
        """Keep the current key but as unverified ("send as unverified" after a rotation)."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self._must_mailbox(key)
            if pin.state not in ("verified", "pinned"):
                raise TrustError(f"{key} is {pin.state}; review it in Trust instead.")
            conn.execute(
                "UPDATE mailboxes SET state = 'pinned', verified_at = NULL WHERE address = ?",
                (key,),
            )
            self.log("mailbox", key, "unverified", f"fingerprint {pin.fingerprint}")

    def resolve_alarm(self, address: str) -> bool:
        """Accept the new key of an alarm as pinned (unverified), without a paste.

        Allowed only when the old key was never verified; a verified mailbox needs
        verify_mailbox with the pasted fingerprint. False when there was nothing to accept.
        """
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self._must_mailbox(key)
            if pin.state != "alarm" or not pin.alarm_fingerprint:
                return False
            if pin.verified_at:
                raise TrustError(
                    f"You had verified {key}; paste the new fingerprint to accept its new key."
                )
            conn.execute(
                "UPDATE mailboxes SET fingerprint = ?, state = 'pinned' WHERE address = ?",
                (pin.alarm_fingerprint, key),
            )
            self.log(
                "mailbox",
                key,
                "accepted",
                f"new key accepted unverified: {pin.fingerprint} -> {pin.alarm_fingerprint}",
            )
        return True

    def reject_mailbox(self, address: str) -> None:
        key = _address_key(address)
        with self.db.transaction() as conn:
            self._must_mailbox(key)
            conn.execute("UPDATE mailboxes SET state = 'rejected' WHERE address = ?", (key,))
            self.log("mailbox", key, "rejected")

    def forget_mailbox(self, address: str) -> bool:
        """Remove the pin (and the nickname): the next answer is a first contact. Logged."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                return False
            conn.execute("DELETE FROM mailboxes WHERE address = ?", (key,))
            self.log("mailbox", key, "forgotten", f"was {pin.state}, fingerprint {pin.fingerprint}")
        return True

    def set_nickname(self, address: str, nickname: str) -> None:
        key = _address_key(address)
        with self.db.transaction() as conn:
            self._must_mailbox(key)
            conn.execute(
                "UPDATE mailboxes SET nickname = ? WHERE address = ?", (nickname.strip(), key)
            )

    def record_check(self, address: str, result: str, *, succeeded: bool = False) -> None:
        """The receiver's verdict on a sender, cached on its pin; a success also stamps
        checked_at, which decides when the sender's server is asked again."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            if succeeded:
                conn.execute(
                    "UPDATE mailboxes SET checked_at = ?, check_result = ? WHERE address = ?",
                    (utc_now(), result, key),
                )
            else:
                conn.execute(
                    "UPDATE mailboxes SET check_result = ? WHERE address = ?", (result, key)
                )

    def contacts(self) -> list[tuple[str, str, str]]:
        """(address, nickname, blurb) of every mailbox not rejected, for compose completion."""
        rows = self.db.connect().execute(
            "SELECT address, nickname, blurb FROM mailboxes WHERE state != 'rejected'"
            " ORDER BY address"
        )
        return [(row["address"], row["nickname"], row["blurb"]) for row in rows]

    def entries(self) -> list[dict]:
        """Every host and mailbox as plain dicts (JSON-ready) for `trust list --json`."""
        result: list[dict] = []
        for h in self.hosts():
            result.append(
                {
                    "kind": "host",
                    "name": h.hostport,
                    "fingerprint": h.fingerprint,
                    "spki": h.spki,
                    "state": h.state,
                    "not_after": h.not_after,
                    "protocol": h.protocol,
                    "first_seen": h.first_seen,
                    "first_network": h.first_network,
                    "last_seen": h.last_seen,
                    "last_network": h.last_network,
                }
            )
        for m in self.mailboxes():
            result.append(
                {
                    "kind": "mailbox",
                    "name": m.address,
                    "fingerprint": m.fingerprint,
                    "issuer_spki": m.issuer_spki,
                    "state": m.state,
                    "nickname": m.nickname,
                    "blurb": m.blurb,
                    "first_seen": m.first_seen,
                    "last_seen": m.last_seen,
                    "verified_at": m.verified_at,
                    "alarm_fingerprint": m.alarm_fingerprint,
                    "blocked": self.mailbox_blocked(m.address),
                }
            )
        return result

    def _mailbox(self, row: sqlite3.Row) -> MailboxPin:
        alarm = ""
        if row["state"] == "alarm":
            alarm = self._latest_alarm(row["address"])
        return MailboxPin(
            address=row["address"],
            fingerprint=row["fingerprint"],
            issuer_spki=row["issuer_spki"],
            state=row["state"],
            blurb=row["blurb"],
            nickname=row["nickname"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            verified_at=row["verified_at"],
            checked_at=row["checked_at"],
            check_result=row["check_result"],
            alarm_fingerprint=alarm,
        )

    def _latest_alarm(self, address: str) -> str:
        row = self.db.connect().execute(
            "SELECT detail FROM trust_history WHERE kind = 'mailbox' AND subject = ?"
            " AND event = 'alarm' ORDER BY id DESC LIMIT 1",
            (address,),
        )
        found = row.fetchone()
        match = _ALARM_RE.match(found["detail"]) if found else None
        return match.group(1) if match else ""

    def _must_mailbox(self, key: str) -> MailboxPin:
        pin = self.mailbox(key)
        if pin is None:
            raise TrustError(f"{key} is not known.")
        return pin


_ALARM_RE = re.compile(r"reported ([0-9a-f]{64})")


def _alarm_detail(new: str, old: str) -> str:
    return f"reported {new} instead of the pinned {old}"


def _address_key(address: str) -> str:
    """Mailboxes are keyed "mailbox@host" in lower case (servers match mailboxes that way)."""
    return address.strip().lower()


def _host(row: sqlite3.Row) -> HostPin:
    return HostPin(
        hostport=row["hostport"],
        spki=row["spki"],
        fingerprint=row["fingerprint"],
        not_after=row["not_after"],
        state=row["state"],
        protocol=row["protocol"],
        first_seen=row["first_seen"],
        first_network=row["first_network"],
        last_seen=row["last_seen"],
        last_network=row["last_network"],
        note=row["note"],
        cert_der=row["cert_der"],
    )
