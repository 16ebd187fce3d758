"""The outbox: every letter is on disk before a connection starts, and leaves only on a 20.

One letter (a MailStore row in the Outbox folder) has one outbox item per recipient, each with
its own state:

    queued -> sending -> delivered                       (20: the letter moves to Sent when all are)
                      -> decision   a person must answer (first contact, changed key, mailbox alarm)
                      -> held       first contact on an untrusted network: waits for a trusted one
                      -> deferred   4x or a network failure: retried later with backoff
                      -> redirected 30/31: the person confirms before it goes elsewhere
                      -> failed     5x/6x or a refused server, with the reason in plain words

A decision is a *result*: the evidence (both fingerprints, expiry, network, reason, the choices)
is stored on the item as JSON for the UI or the CLI to show; `decide()` records the answer and
the next `process()` acts on it. Nothing is ever sent to a key nobody approved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from misfin_tui.core.address import Address, AddressError, parse_hostport
from misfin_tui.core.client import (
    FALLBACK_STATUSES,
    DeliveryError,
    KeyMismatch,
    deliver,
    hostport,
    probe,
)
from misfin_tui.core.database import iso_utc, utc_now
from misfin_tui.core.network import Network, Networks
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import (
    Decision,
    HostEvent,
    MailboxEvent,
    PresentedCert,
    TrustError,
    TrustStore,
    classify,
    group_fingerprint,
)
from misfin_tui.core.wire import (
    ProtocolError,
    Response,
    Status,
    build_c_request,
    normalise_fingerprint,
    parse_redirect,
    parse_retry_after,
)

if TYPE_CHECKING:
    from misfin_tui.core.profile import Profile

STATES = ("queued", "sending", "delivered", "decision", "held", "deferred", "redirected", "failed")
WAITING = ("decision", "held", "redirected")  # a person (or a trusted network) is needed
CHOICES = ("trust", "once", "verify", "replace", "hold", "drop", "follow")
MAX_HOPS = 5
BACKOFF_BASE = 60  # seconds before the first retry; doubles each attempt
BACKOFF_MAX = 6 * 3600
CONCURRENCY = 4
STALE_SENDING = timedelta(minutes=5)  # far longer than one attempt (probe + C + B) can take
MAILBOX_EVENT = "mailbox"
REDIRECT_EVENT = "redirect"


class OutboxError(Exception):
    """A request the outbox refuses (unknown item, a choice that does not apply, a bad paste)."""


@dataclass(frozen=True)
class OutboxItem:
    """One delivery: a letter to one recipient. `evidence` is what a decision prompt shows."""

    id: int
    letter_id: int
    recipient: str
    identity: str
    state: str
    reason: str
    evidence: dict[str, Any]
    attempts: int
    next_attempt_at: str | None
    hops: int
    connect: str
    fingerprint: str
    created_at: str
    updated_at: str
    subject: str = ""

    @property
    def choices(self) -> tuple[str, ...]:
        """What a person may answer now (always including drop)."""
        if self.state == "redirected":
            return ("follow", "drop")
        if self.state in ("decision", "held"):
            offered = tuple(self.evidence.get("choices") or ())
            return (*offered, *(c for c in ("hold", "drop") if c not in offered))
        if self.state in ("deferred", "failed"):
            return ("drop",)
        return ()


@dataclass
class _Outcome:
    state: str
    reason: str = ""
    evidence: dict[str, Any] | None = None
    next_attempt_at: str | None = None
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _cert_evidence(presented: PresentedCert) -> dict[str, str]:
    return {
        "fingerprint": presented.fingerprint,
        "fingerprint_grouped": group_fingerprint(presented.fingerprint),
        "spki": presented.spki,
        "spki_grouped": group_fingerprint(presented.spki),
        "not_before": presented.not_before,
        "not_after": presented.not_after,
        "der": presented.der.hex(),
    }


def _presented_from(evidence: dict[str, Any]) -> PresentedCert:
    data = evidence.get("presented") or {}
    if not data.get("der"):
        raise OutboxError("this item has no server certificate to decide about")
    return PresentedCert(
        der=bytes.fromhex(data["der"]),
        spki=data["spki"],
        fingerprint=data["fingerprint"],
        not_after=data["not_after"],
        not_before=data["not_before"],
    )


def _network_evidence(network: Network) -> dict[str, Any]:
    return {"id": network.id, "label": network.label, "trusted": network.trusted}


def decision_evidence(decision: Decision, address: Address) -> dict[str, Any]:
    """The JSON a prompt needs: both keys (grouped), expiry, network, event, reason, choices."""
    pinned = decision.pinned
    return {
        "event": str(decision.event),
        "action": decision.action,
        "reason": decision.reason,
        "address": address.display,
        "hostport": decision.hostport,
        "choices": list(decision.choices),
        "default": decision.default,
        "presented": _cert_evidence(decision.presented),
        "pinned": None
        if pinned is None
        else {
            "fingerprint": pinned.fingerprint,
            "fingerprint_grouped": group_fingerprint(pinned.fingerprint),
            "spki": pinned.spki,
            "spki_grouped": group_fingerprint(pinned.spki),
            "not_after": pinned.not_after,
            "state": pinned.state,
            "first_seen": pinned.first_seen,
        },
        "network": _network_evidence(decision.network),
    }


def backoff(attempts: int) -> int:
    """Seconds to wait after the n-th failed attempt: 60, 120, 240 ... capped at 6 hours."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


class Outbox:
    """The outbox of one profile. Blocking database calls; `process()` is a coroutine.

    `clock` (returning an aware datetime) lets tests move time for backoff.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        concurrency: int = CONCURRENCY,
        probe_timeout: float = 10.0,
        deliver_timeout: float = 20.0,
        clock: Callable[[], datetime] | None = None,
        networks: Networks | None = None,
    ) -> None:
        self.profile = profile
        self.db = profile.database()
        self.store = MailStore(self.db)
        self.trust = TrustStore(self.db)
        self.networks = networks or Networks(self.db)
        self.concurrency = max(1, concurrency)
        self.probe_timeout = probe_timeout
        self.deliver_timeout = deliver_timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._recover()

    # -- reading ---------------------------------------------------------------------------------

    def items(
        self, letter_id: int | None = None, states: Iterable[str] | None = None
    ) -> list[OutboxItem]:
        sql = (
            "SELECT outbox.*, letters.subject AS subject FROM outbox"
            " JOIN letters ON letters.id = outbox.letter_id"
        )
        where, params = [], []
        if letter_id is not None:
            where.append("outbox.letter_id = ?")
            params.append(letter_id)
        if states is not None:
            wanted = list(states)
            where.append(f"outbox.state IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.connect().execute(sql + " ORDER BY outbox.id", params)
        return [_item(row) for row in rows]

    def item(self, item_id: int) -> OutboxItem:
        row = (
            self.db.connect()
            .execute(
                "SELECT outbox.*, letters.subject AS subject FROM outbox"
                " JOIN letters ON letters.id = outbox.letter_id WHERE outbox.id = ?",
                (item_id,),
            )
            .fetchone()
        )
        if row is None:
            raise OutboxError(f"there is no outbox item {item_id}")
        return _item(row)

    # -- queueing --------------------------------------------------------------------------------

    def enqueue(
        self,
        body: str,
        recipients: Sequence[str],
        *,
        identity: str | None = None,
        subject: str = "",
        connect: str = "",
        in_reply_to: int | None = None,
    ) -> int:
        """Put a new letter in the outbox (one transaction); returns the letter id.

        `subject` becomes a "# " heading on top of the body. Raises AddressError for a bad
        recipient, ProtocolError when the letter is too big for Misfin, IdentityError when the
        sending identity is missing, ValueError for a bad `connect`.
        """
        from misfin_tui.core.gemtext import subject as subject_of
        from misfin_tui.core.letter import new_message_c

        sender = self.profile.identity(identity)
        addresses: list[Address] = []
        seen: set[str] = set()
        for text in recipients:
            text = text.strip()
            if not text:
                continue
            address = Address.parse(text)
            if address.key not in seen:
                seen.add(address.key)
                addresses.append(address)
        if not addresses:
            raise AddressError("the letter has no recipient")
        if connect:
            parse_hostport(connect)
        if subject.strip():
            body = f"# {subject.strip()}\n{body}"
        message = new_message_c(body, [str(a) for a in addresses])
        for address in addresses:
            build_c_request(address, message)  # too big or malformed: refused before queueing
        now = utc_now()
        with self.db.transaction() as conn:
            letter_id = self.store.add(
                folder="Outbox",
                raw=message,
                version="C",
                sender=str(sender.address),
                sender_blurb=sender.blurb,
                recipients=[a.display for a in addresses],
                subject=subject_of(body),
                body=body,
                received_at=now,
                in_reply_to=in_reply_to,
                identity=str(sender.address),
            )
            conn.executemany(
                "INSERT INTO outbox(letter_id, recipient, identity, state, connect,"
                " created_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                [(letter_id, a.display, str(sender.address), connect, now, now) for a in addresses],
            )
        return letter_id

    def retry(self, item_id: int) -> OutboxItem:
        """Try again now: a deferred, failed, held or waiting item goes back to the queue."""
        item = self.item(item_id)
        if item.state in ("delivered", "sending"):
            raise OutboxError(f"item {item_id} is {item.state}; there is nothing to retry")
        self._update(item_id, state="queued", next_attempt_at=None)
        return self.item(item_id)

    def drop(self, item_id: int) -> None:
        """Give up on one recipient. A letter nobody received goes back to Drafts."""
        item = self.item(item_id)
        if item.state == "delivered":
            raise OutboxError(f"item {item_id} was already delivered")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            self._settle_letter(item.letter_id)

    # -- deciding --------------------------------------------------------------------------------

    def decide(self, item_id: int, choice: str, pasted: str = "") -> OutboxItem:
        """Record a person's answer; the next process() acts on it. Returns the updated item.

        trust: pin the key and send; once: send this letter without pinning (logged);
        verify/replace: pin as verified if `pasted` matches the presented key, else refuse;
        hold: keep waiting; drop: give up on this recipient; follow: take a redirect.
        """
        if choice not in CHOICES:
            raise OutboxError(f"unknown choice {choice!r}; use one of {', '.join(CHOICES)}")
        item = self.item(item_id)
        if choice == "drop":
            self.drop(item_id)
            return item
        if choice == "hold":
            if item.state not in WAITING:
                raise OutboxError(f"item {item_id} is {item.state}, not waiting for a decision")
            self._update(item_id, state="held", reason=item.reason or "held by you")
            return self.item(item_id)
        if item.state == "redirected":
            if choice != "follow":
                raise OutboxError("a redirected letter can be followed, held or dropped")
            return self._follow(item)
        if item.state not in ("decision", "held") or not item.evidence.get("event"):
            raise OutboxError(f"item {item_id} is {item.state}, not waiting for a decision")
        if item.evidence["event"] == MAILBOX_EVENT:
            return self._decide_mailbox(item, choice, pasted)
        return self._decide_host(item, choice, pasted)

    def _decide_host(self, item: OutboxItem, choice: str, pasted: str) -> OutboxItem:
        evidence = item.evidence
        offered = set(evidence.get("choices") or ())
        if choice == "replace":
            choice = "verify"  # a changed key is replaced only by a matching pasted fingerprint
        if choice not in offered:
            if evidence.get("event") == HostEvent.CHANGED:
                raise OutboxError(
                    "this server's key changed while the trusted one is still valid; it can "
                    "only be replaced by pasting the new fingerprint (verify)"
                )
            raise OutboxError(f"{choice!r} is not possible here; choose {', '.join(offered)}")
        presented = _presented_from(evidence)
        hp = evidence["hostport"]
        network = self.networks.current()
        try:
            if choice == "trust":
                self.trust.pin_host(hp, presented, network)
            elif choice == "verify":
                if not pasted.strip():
                    raise OutboxError("paste the fingerprint you were given to verify it")
                if not self.trust.verify_host(hp, pasted, presented, network):
                    raise OutboxError(
                        "the pasted fingerprint does not match the key the server presented "
                        f"({group_fingerprint(presented.fingerprint)}); nothing was changed and "
                        "nothing was sent"
                    )
            elif choice == "once":
                self.trust.accept_once(hp, presented, network)
                evidence = {**evidence, "approved": {"spki": presented.spki, "mode": "once"}}
        except TrustError as exc:
            raise OutboxError(str(exc)) from None
        self._update(item.id, state="queued", reason="", evidence=evidence, next_attempt_at=None)
        if choice in ("trust", "verify"):
            self._requeue_host_decisions(hp, exclude=item.id)
        return self.item(item.id)

    def _decide_mailbox(self, item: OutboxItem, choice: str, pasted: str) -> OutboxItem:
        address = item.evidence["address"]
        try:
            if choice == "verify":
                if not self.trust.verify_mailbox(address, pasted):
                    raise OutboxError(
                        "the pasted fingerprint matches neither the trusted nor the reported key; "
                        "nothing was changed and nothing was sent"
                    )
            elif choice == "trust":
                pin = self.trust.mailbox(address)
                if pin is not None and pin.state == "alarm":
                    self.trust.resolve_alarm(address)
                elif pin is not None and pin.verified_at:
                    self.trust.unverify_mailbox(address)
            elif choice == "once":
                evidence = {**item.evidence, "approved": {"mailbox": "once"}}
                self._update(item.id, state="queued", reason="", evidence=evidence)
                return self.item(item.id)
            else:
                raise OutboxError(f"{choice!r} is not possible for a mailbox key change")
        except TrustError as exc:
            raise OutboxError(str(exc)) from None
        self._update(item.id, state="queued", reason="", evidence={}, next_attempt_at=None)
        return self.item(item.id)

    def _follow(self, item: OutboxItem) -> OutboxItem:
        target = item.evidence.get("target", "")
        permanent = bool(item.evidence.get("permanent"))
        if item.hops + 1 > MAX_HOPS:
            self._update(item.id, state="failed", reason=f"more than {MAX_HOPS} redirects")
            return self.item(item.id)
        old = item.recipient
        if permanent:
            self.trust.log("mailbox", Address.parse(old).key, "moved", f"now {target}")
            pin = self.trust.mailbox(old)
            new_pin = self.trust.mailbox(target)
            if pin is not None and pin.nickname and new_pin is not None and not new_pin.nickname:
                self.trust.set_nickname(target, pin.nickname)
        evidence = {"redirected_from": [*item.evidence.get("redirected_from", []), old]}
        self._update(
            item.id,
            state="queued",
            reason="",
            evidence=evidence,
            recipient=target,
            hops=item.hops + 1,
            next_attempt_at=None,
        )
        return self.item(item.id)

    # -- sending ---------------------------------------------------------------------------------

    def due(self) -> list[OutboxItem]:
        """Items a process() run would pick now: queued, or deferred whose time has come."""
        now = iso_utc(self._clock())
        return [
            item
            for item in self.items(states=("queued", "deferred"))
            if item.state == "queued" or (item.next_attempt_at or "") <= now
        ]

    async def process(
        self, ids: Iterable[int] | None = None, *, policy: str | None = None
    ) -> list[OutboxItem]:
        """Send what is due (or exactly `ids`, when queued or deferred), several at once.

        `policy` overrides config first_contact for this run (e.g. "accept-new" for
        `send --trust-new`). Returns the items as they ended up.
        """
        self._recover()
        if ids is None:
            batch = self.due()
        else:
            wanted = set(ids)
            batch = [i for i in self.items(states=("queued", "deferred")) if i.id in wanted]
        batch = [item for item in batch if self._claim(item.id)]
        if not batch:
            return []
        policy = policy or self.profile.config.first_contact
        network = self.networks.current()
        limit = asyncio.Semaphore(self.concurrency)

        async def run(item: OutboxItem) -> None:
            async with limit:
                await self._attempt(item, network, policy)

        await asyncio.gather(*(run(item) for item in batch))
        return [self.item(item.id) for item in batch]

    async def process_held(self) -> list[OutboxItem]:
        """On a trusted network, probe again what waited for one (untrusted first contacts).

        Letters a person held for another reason (a changed key, say) stay held until retried.
        """
        network = self.networks.current()
        if not network.trusted:
            return []
        waiting = [
            item
            for item in self.items(states=("held", "decision"))
            if item.evidence.get("event") == HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
        ]
        for item in waiting:
            self._update(item.id, state="queued", next_attempt_at=None)
        return await self.process([item.id for item in waiting])

    async def _attempt(self, item: OutboxItem, network: Network, policy: str) -> None:
        try:
            outcome = await self._deliver_item(item, network, policy)
        except Exception as exc:  # one broken item must not stop the others or stay "sending"
            outcome = self._deferred(item.attempts + 1, f"unexpected error ({exc!r})")
        self._store_outcome(item, outcome)

    async def _deliver_item(self, item: OutboxItem, network: Network, policy: str) -> _Outcome:
        try:
            address = Address.parse(item.recipient)
        except AddressError as exc:
            return _Outcome("failed", f"the address {item.recipient} is not valid: {exc}")
        try:
            identity = self.profile.identity(item.identity)
        except Exception as exc:
            return _Outcome("failed", f"the identity {item.identity} cannot be used: {exc}")
        letter = self.store.get(item.letter_id)
        if letter is None:
            return _Outcome("failed", "the letter is gone from the store")
        attempts = item.attempts + 1  # _claim() counted this attempt
        approved = item.evidence.get("approved") or {}

        blocked = self.trust.mailbox_blocked(str(address))
        if blocked and approved.get("mailbox") != "once":
            pin = self.trust.mailbox(str(address))
            if pin is not None and pin.state == "rejected":
                return _Outcome("failed", blocked)
            return _Outcome("decision", blocked, self._mailbox_evidence(address, blocked, network))

        hosts = self.profile.config.hosts
        hp = hostport(address)
        connect = item.connect or None
        try:
            presented = await probe(
                address, identity, hosts=hosts, connect=connect, timeout=self.probe_timeout
            )
        except DeliveryError as exc:
            return self._deferred(attempts, str(exc))
        gate = self._gate(item, address, hp, presented, network, policy, approved)
        if gate is not None:
            return gate
        pin = self.trust.host(hp)
        try:
            result = await deliver(
                address,
                identity,
                bytes(letter.raw),
                approved_spki=presented.spki,
                prefer_b=pin is not None and pin.protocol == "B",
                hosts=hosts,
                connect=connect,
                timeout=self.deliver_timeout,
            )
        except KeyMismatch as exc:
            # The key changed between the probe and the send: judge the new key, send nothing.
            gate = self._gate(item, address, hp, exc.presented, network, policy, {})
            return gate or self._deferred(attempts, str(exc))
        except ProtocolError as exc:
            return _Outcome("failed", f"the letter cannot be sent: {exc.message}")
        except DeliveryError as exc:
            return self._deferred(attempts, str(exc))
        if result.fell_back and result.response.status not in FALLBACK_STATUSES:
            self.trust.set_protocol(hp, "B")
        return self._answer(item, address, result.response, attempts, presented)

    def _gate(
        self,
        item: OutboxItem,
        address: Address,
        hp: str,
        presented: PresentedCert,
        network: Network,
        policy: str,
        approved: dict[str, Any],
    ) -> _Outcome | None:
        """None when the presented key may receive the letter; else where the item waits."""
        if approved.get("mode") == "once" and approved.get("spki") == presented.spki:
            pin = self.trust.host(hp)
            if pin is None or pin.state != "rejected":
                return None
        pin = self.trust.host(hp)
        decision = classify(pin, presented, network, policy, self._clock(), hostport=hp)
        if decision.action == "send":
            try:
                if pin is None:
                    self.trust.pin_host(hp, presented, network)  # accept-new on a trusted network
                else:
                    self.trust.touch_host(hp, presented, network)
            except TrustError as exc:
                return _Outcome("deferred", str(exc), next_attempt_at=None)
            return None
        evidence = decision_evidence(decision, address)
        if decision.action == "refuse":
            return _Outcome("failed", decision.reason, evidence)
        if decision.action == "hold" or decision.event == HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK:
            # First contact on an untrusted network waits for a trusted one (or a person).
            return _Outcome("held", decision.reason, evidence)
        return _Outcome("decision", decision.reason, evidence)

    def _mailbox_evidence(self, address: Address, reason: str, network: Network) -> dict[str, Any]:
        pin = self.trust.mailbox(str(address))
        choices = ["verify", "once"]
        if pin is not None and not pin.verified_at:
            choices.insert(0, "trust")
        elif pin is not None and pin.state != "alarm":
            choices.insert(0, "trust")  # verified then rotated: continue as unverified
        return {
            "event": MAILBOX_EVENT,
            "reason": reason,
            "address": address.display,
            "choices": choices,
            "default": "hold",
            "pinned": None
            if pin is None
            else {
                "fingerprint": pin.fingerprint,
                "fingerprint_grouped": group_fingerprint(pin.fingerprint),
                "state": pin.state,
                "verified_at": pin.verified_at,
            },
            "reported": None
            if pin is None or not pin.alarm_fingerprint
            else {
                "fingerprint": pin.alarm_fingerprint,
                "fingerprint_grouped": group_fingerprint(pin.alarm_fingerprint),
            },
            "network": _network_evidence(network),
        }

    def _deferred(self, attempts: int, reason: str, seconds: int | None = None) -> _Outcome:
        wait = backoff(attempts) if seconds is None else seconds
        when = self._clock() + timedelta(seconds=wait)
        return _Outcome(
            "deferred", f"{reason} (next try at {when:%H:%M} UTC)", next_attempt_at=iso_utc(when)
        )

    def _answer(
        self,
        item: OutboxItem,
        address: Address,
        response: Response,
        attempts: int,
        presented: PresentedCert,
    ) -> _Outcome:
        status, meta = response.status, response.meta
        try:
            kind = response.kind
        except ProtocolError:
            return _Outcome("failed", f"the server answered an unknown status {status}")
        said = f" (the server said: {meta})" if meta and status != 20 else ""
        category = response.category
        if category == 2:
            return self._delivered(address, meta, presented)
        if category == 3:
            try:
                target = parse_redirect(meta)
            except ProtocolError as exc:
                return _Outcome("failed", f"the server redirected to a bad address: {exc}")
            if item.hops >= MAX_HOPS:
                return _Outcome("failed", f"more than {MAX_HOPS} redirects; last to {target}")
            permanent = kind == Status.SEND_HERE_FOREVER
            reason = f"{kind.description}: {target.display}. Nothing was sent; follow or drop it."
            return _Outcome(
                "redirected",
                reason,
                {
                    "event": REDIRECT_EVENT,
                    "reason": reason,
                    "address": address.display,
                    "target": target.display,
                    "permanent": permanent,
                    "status": status,
                    "choices": ["follow"],
                    "redirected_from": item.evidence.get("redirected_from", []),
                },
            )
        if category == 4:
            seconds = parse_retry_after(meta) if kind == Status.SLOW_DOWN else None
            return self._deferred(attempts, kind.description + said, seconds)
        if category == 6:
            return _Outcome(
                "failed", f"{kind.description}{said}. Check your identity ({item.identity})."
            )
        return _Outcome("failed", kind.description + said)

    def _delivered(self, address: Address, meta: str, presented: PresentedCert) -> _Outcome:
        try:
            fp = normalise_fingerprint(meta)
        except ProtocolError:
            return _Outcome(
                "delivered",
                "delivered; the server did not return a usable mailbox fingerprint",
            )
        event = self.trust.record_mailbox(str(address), fp, issuer_spki=presented.spki)
        reason = {
            MailboxEvent.FIRST: "delivered; the mailbox key is now remembered",
            MailboxEvent.MATCH: "delivered",
            MailboxEvent.ROTATION: "delivered; the mailbox uses a new key from the same server",
            MailboxEvent.ALARM: (
                f"delivered, but {address.host} reported a different key for {address} than "
                "the one you trusted; later letters to this address wait until you review it"
            ),
        }[event]
        return _Outcome("delivered", reason, fingerprint=fp, extra={"mailbox_event": str(event)})

    # -- storing ---------------------------------------------------------------------------------

    def _store_outcome(self, item: OutboxItem, outcome: _Outcome) -> None:
        evidence = outcome.evidence
        if evidence is None:
            evidence = {k: v for k, v in item.evidence.items() if k == "redirected_from"}
            if outcome.extra:
                evidence.update(outcome.extra)
        with self.db.transaction():
            self._update(
                item.id,
                state=outcome.state,
                reason=outcome.reason,
                evidence=evidence,
                next_attempt_at=outcome.next_attempt_at,
                fingerprint=outcome.fingerprint,
            )
            if outcome.state == "delivered":
                self._settle_letter(item.letter_id)

    def _settle_letter(self, letter_id: int) -> None:
        """Sent when every remaining recipient has it; back to Drafts when nobody will."""
        rows = (
            self.db.connect()
            .execute("SELECT state, fingerprint FROM outbox WHERE letter_id = ?", (letter_id,))
            .fetchall()
        )
        if not rows:
            self.store.move([letter_id], "Drafts")
            return
        if all(row["state"] == "delivered" for row in rows):
            self.store.mark_sent(letter_id, [row["fingerprint"] for row in rows])

    def _update(self, item_id: int, **columns: Any) -> None:
        if "evidence" in columns:
            columns["evidence"] = json.dumps(columns["evidence"] or {})
        columns["updated_at"] = utc_now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.connect().execute(
            f"UPDATE outbox SET {assignments} WHERE id = ?", (*columns.values(), item_id)
        )

    def _requeue_host_decisions(self, hp: str, exclude: int) -> None:
        """Other letters waiting on the same server key move on once it is trusted."""
        for other in self.items(states=("decision", "held")):
            if other.id != exclude and other.evidence.get("hostport") == hp:
                self._update(other.id, state="queued", next_attempt_at=None)

    def _claim(self, item_id: int) -> bool:
        """Mark one item "sending" unless another run (or process) took it first."""
        cursor = self.db.connect().execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND state IN ('queued', 'deferred')",
            (utc_now(), item_id),
        )
        return cursor.rowcount == 1

    def _recover(self) -> None:
        """After a crash, an item left in "sending" goes back to the queue.

        Only when it is older than any attempt can take (STALE_SENDING), so another open outbox
        (the app while a script sends) never requeues a delivery that is still running. Its
        outcome is unknown (the server may have it); resending is the Misfin way, since a letter
        leaves the outbox only on a 20.
        """
        now = self._clock()
        self.db.connect().execute(
            "UPDATE outbox SET state = 'queued', updated_at = ?"
            " WHERE state = 'sending' AND updated_at < ?",
            (iso_utc(now), iso_utc(now - STALE_SENDING)),
        )


def _item(row: Any) -> OutboxItem:
    try:
        evidence = json.loads(row["evidence"] or "{}")
    except ValueError:
        evidence = {}
    return OutboxItem(
        id=row["id"],
        letter_id=row["letter_id"],
        recipient=row["recipient"],
        identity=row["identity"],
        state=row["state"],
        reason=row["reason"],
        evidence=evidence if isinstance(evidence, dict) else {},
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        hops=row["hops"],
        connect=row["connect"],
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        subject=row["subject"],
    )


def summarise(items: Sequence[OutboxItem]) -> int:
    """The `send` exit code for a set of items: 0 all delivered, 5 failed, 4 deferred, 3 waiting."""
    states = {item.state for item in items}
    if not items or states == {"delivered"}:
        return 0
    if "failed" in states:
        return 5
    if "deferred" in states or "queued" in states or "sending" in states:
        return 4
    return 3
