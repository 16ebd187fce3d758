"""The outbox: every letter is on disk before a connection starts, and leaves only on a 20.

One letter (a MailStore row in the Outbox folder) has one outbox item per recipient, each with
its own `State`. A decision is a *result*: the typed `Question` is stored on the item for the
app or the command line to show; `decide()` records the answer through the trust policy and
the next `process()` acts on it. Nothing is ever sent to a key nobody approved.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address, AddressError, parse_hostport
from misfin_tui.core.client import (
    DeliveryError,
    KeyMismatch,
    deliver,
    hostport,
    probe,
)
from misfin_tui.core.clock import Clock, iso_utc, system_clock, utc_now
from misfin_tui.core.compose import letter_text
from misfin_tui.core.gemtext import subject as subject_of
from misfin_tui.core.identity import IdentityError
from misfin_tui.core.letter import new_message_c
from misfin_tui.core.network import Network, Networks
from misfin_tui.core.outbox.model import (
    Evidence,
    OutboxError,
    OutboxItem,
    Outcome,
    PasteRefused,
    State,
)
from misfin_tui.core.profile import Profile
from misfin_tui.core.status import ProtocolError, Status
from misfin_tui.core.store import MailStore
from misfin_tui.core.text import one_line
from misfin_tui.core.trust.model import (
    Answer,
    Ask,
    Choice,
    HostEvent,
    MailboxEvent,
    MailboxState,
    Origin,
    PasteMismatch,
    PinFacts,
    Policy,
    PresentedCert,
    Question,
    TrustError,
    Verdict,
)
from misfin_tui.core.trust.policy import TrustPolicy, network_facts, question_for
from misfin_tui.core.trust.store import TrustStore
from misfin_tui.core.wire import Response, build_c_request, parse_redirect, parse_retry_after

MAX_HOPS = 5
BACKOFF_BASE = 60  # seconds before the first retry; doubles each attempt
BACKOFF_MAX = 6 * 3600
SLOW_DOWN_MAX = 24 * 3600  # a 44 asking for longer is tried again after a day all the same
CONCURRENCY = 4
STALE_SENDING = timedelta(minutes=5)  # far longer than one attempt (probe + C + B) can take


def backoff(attempts: int) -> int:
    """Seconds to wait after the n-th failed attempt: 60, 120, 240 ... capped at 6 hours."""
    return int(min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


class Outbox:
    """The outbox of one profile. Blocking database calls; `process()` is a coroutine."""

    def __init__(
        self,
        profile: Profile,
        store: MailStore,
        trust: TrustStore,
        policy: TrustPolicy,
        networks: Networks,
        *,
        concurrency: int = CONCURRENCY,
        probe_timeout: float = 10.0,
        deliver_timeout: float = 20.0,
        clock: Clock = system_clock,
    ) -> None:
        self.profile = profile
        self.db = store.db
        self.store = store
        self.trust = trust
        self.policy = policy
        self.networks = networks
        self.concurrency = max(1, concurrency)
        self.probe_timeout = probe_timeout
        self.deliver_timeout = deliver_timeout
        self._clock = clock
        self._recover()

    # -- reading ---------------------------------------------------------------------------------

    def items(
        self, letter_id: int | None = None, states: Iterable[State] | None = None
    ) -> list[OutboxItem]:
        sql = (
            "SELECT outbox.*, letters.subject AS subject FROM outbox"
            " JOIN letters ON letters.id = outbox.letter_id"
        )
        where: list[str] = []
        params: list[Any] = []
        if letter_id is not None:
            where.append("outbox.letter_id = ?")
            params.append(letter_id)
        if states is not None:
            wanted = [State(s).value for s in states]
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

    def waiting(self) -> list[OutboxItem]:
        """Items waiting for a person or a trusted network."""
        return self.items(states=(State.DECISION, State.HELD, State.REDIRECTED))

    def due(self) -> list[OutboxItem]:
        """Items a process() run would pick now: queued, or deferred whose time has come."""
        now = iso_utc(self._clock())
        return [
            item
            for item in self.items(states=(State.QUEUED, State.DEFERRED))
            if item.state is State.QUEUED or (item.next_attempt_at or "") <= now
        ]

    # -- queueing --------------------------------------------------------------------------------

    def enqueue(
        self,
        body: str,
        recipients: Sequence[Address],
        *,
        identity: str | None = None,
        subject: str = "",
        connect: str = "",
        in_reply_to: int | None = None,
        present: str = "",
    ) -> int:
        """Put a new letter in the outbox (one transaction); returns the letter id.

        `present`: the fingerprint of a retired certificate of the identity to send it with (a
        rotation notice goes out signed with the old certificate; core/rotation.py).
        `subject` becomes a "# " heading on top of the body (compose.letter_text). Raises
        AddressError when there is no recipient, ProtocolError when the letter is too big for
        Misfin or the subject is not one line of text (compose.check_subject), IdentityError
        when the sending identity is missing, ValueError for a bad `connect`.
        """

        sender = self.profile.identity(identity)
        addresses: list[Address] = []
        for address in recipients:
            if address.key not in {a.key for a in addresses}:
                addresses.append(address)
        if not addresses:
            raise AddressError("the letter has no recipient")
        if connect:
            parse_hostport(connect)
        body = letter_text(subject, body)  # unless the body already starts with that heading
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
                " created_at, updated_at, present) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                [
                    (letter_id, a.display, str(sender.address), connect, now, now, present)
                    for a in addresses
                ],
            )
        return letter_id

    def retry(self, item_id: int) -> OutboxItem:
        """Try again now: a deferred, failed, held or waiting item goes back to the queue."""
        item = self.item(item_id)
        if item.state is State.SENDING:  # by another process, or one killed while sending
            minutes = int(STALE_SENDING.total_seconds() // 60)
            raise OutboxError(
                f"item {item_id} is being sent, by this or another misfin-tui since"
                f" {item.updated_at}; if that one was stopped, the item is queued again"
                f" {minutes} minutes after that time"
            )
        if item.state is State.DELIVERED:
            raise OutboxError(f"item {item_id} is delivered; there is nothing to retry")
        self._update(item_id, state=State.QUEUED, next_attempt_at=None)
        return self.item(item_id)

    def drop(self, item_id: int) -> OutboxItem:
        """Give up on one recipient (reported as DROPPED). A letter nobody received goes back
        to Drafts."""
        item = self.item(item_id)
        if item.state is State.DELIVERED:
            raise OutboxError(f"item {item_id} was already delivered")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
            self._settle_letter(item.letter_id)
        return replace(item, state=State.DROPPED, reason="dropped by you")

    # -- deciding --------------------------------------------------------------------------------

    def decide(self, item_id: int, answer: Answer) -> OutboxItem:
        """Record a person's answer; the next process() acts on it. Returns the updated item.

        TRUST pins the key and sends; ONCE sends this letter without pinning (logged); VERIFY
        pins as verified if the pasted fingerprint matches the presented key; HOLD keeps it
        waiting; DROP gives up on this recipient; FOLLOW takes a redirect. TRUST_NETWORK and
        REVIEW are not the outbox's to act on (see delivery.Conversation).
        """
        item = self.item(item_id)
        choice = answer.choice
        if choice is Choice.DROP:
            return self.drop(item_id)
        if not item.state.waiting or item.evidence.question is None:
            raise OutboxError(
                f"item {item_id} is not waiting for a decision (it is {item.state.value})"
            )
        question = item.evidence.question
        if choice is Choice.HOLD:
            self._update(item_id, state=State.HELD, reason=item.reason or "held by you")
            return self.item(item_id)
        if choice not in question.choices:
            offered = ", ".join(c.value for c in item.choices)
            if question.ask is Ask.CHANGED:
                raise OutboxError(
                    "this server's key changed while the trusted one is still valid; it can "
                    "only be replaced by pasting the new fingerprint (verify)"
                )
            raise OutboxError(f"{choice.value!r} is not possible here; choose {offered}")
        if question.ask is Ask.REDIRECT:
            return self._follow(item, question)
        if question.ask is Ask.MAILBOX_CHANGED:
            return self._decide_mailbox(item, question, answer)
        return self._decide_host(item, question, answer)

    def _decide_host(self, item: OutboxItem, question: Question, answer: Answer) -> OutboxItem:
        presented = question.presented
        if presented is None:
            raise OutboxError("this item has no server certificate to decide about")
        event = HostEvent(question.ask.value)  # the host asks share HostEvent's values
        network = self.networks.current()
        try:
            self.policy.answer(
                event,
                question.hostport,
                presented,
                network,
                answer,
                recipient=Address.parse(item.recipient).key,
            )
        except PasteMismatch as exc:
            raise PasteRefused(str(exc)) from None
        except TrustError as exc:
            raise OutboxError(str(exc)) from None
        evidence = Evidence(redirected_from=item.evidence.redirected_from)
        if answer.choice is Choice.ONCE:
            evidence = replace(evidence, once_spki=presented.spki)
        self._update(
            item.id, state=State.QUEUED, reason="", evidence=evidence, next_attempt_at=None
        )
        if answer.choice in (Choice.TRUST, Choice.VERIFY):
            self.release_host(question.hostport, exclude=item.id)
        return self.item(item.id)

    def _decide_mailbox(self, item: OutboxItem, question: Question, answer: Answer) -> OutboxItem:
        address = question.recipient
        evidence = Evidence(redirected_from=item.evidence.redirected_from)
        try:
            if answer.choice is Choice.VERIFY:
                if not self.trust.verify_mailbox(address, answer.pasted):
                    raise PasteRefused(
                        "the pasted fingerprint matches neither the trusted nor the reported key; "
                        "nothing was changed and nothing was sent"
                    )
            elif answer.choice is Choice.TRUST:
                pin = self.trust.mailbox(address)
                if pin is not None and pin.state is MailboxState.ALARM:
                    self.trust.resolve_alarm(address)
                elif pin is not None and pin.verified_at:
                    self.trust.unverify_mailbox(address)
            elif answer.choice is Choice.ONCE:
                evidence = replace(evidence, mailbox_once=True)
        except TrustError as exc:
            raise OutboxError(str(exc)) from None
        self._update(
            item.id, state=State.QUEUED, reason="", evidence=evidence, next_attempt_at=None
        )
        if answer.choice in (Choice.TRUST, Choice.VERIFY):
            self.release_mailbox(address, exclude=item.id)
        return self.item(item.id)

    def _follow(self, item: OutboxItem, question: Question) -> OutboxItem:
        if item.hops + 1 > MAX_HOPS:
            self._update(item.id, state=State.FAILED, reason=f"more than {MAX_HOPS} redirects")
            return self.item(item.id)
        old, target = Address.parse(item.recipient), Address.parse(question.target)
        if question.permanent:  # the address book follows; the new server is asked about anew
            self.trust.record_move(old.key, target.display)
        # --connect named where the old server was; another host or port is found afresh.
        same_server = (target.host, target.connect_port) == (old.host, old.connect_port)
        connect = item.connect if same_server else ""
        self._update(
            item.id,
            state=State.QUEUED,
            reason="",
            evidence=Evidence(redirected_from=(*item.evidence.redirected_from, old.display)),
            recipient=target.display,
            hops=item.hops + 1,
            connect=connect,
            next_attempt_at=None,
        )
        return self.item(item.id)

    # -- sending ---------------------------------------------------------------------------------

    async def process(
        self, ids: Iterable[int] | None = None, *, policy: Policy | None = None
    ) -> list[OutboxItem]:
        """Send what is due (or exactly `ids`, when queued or deferred), several at once.

        `policy` overrides config first_contact for this run (e.g. accept-new for
        `send --trust-new`). Returns the items as they ended up.
        """
        self._recover()
        if ids is None:
            batch = self.due()
        else:
            wanted = set(ids)
            batch = [i for i in self.items(states=(State.QUEUED, State.DEFERRED)) if i.id in wanted]
        batch = [item for item in batch if self._claim(item.id)]
        if not batch:
            return []
        network = self.networks.current()
        limit = asyncio.Semaphore(self.concurrency)

        async def run(item: OutboxItem) -> None:
            async with limit:
                await self._attempt(item, network, policy)

        await asyncio.gather(*(run(item) for item in batch))
        return [self.item(item.id) for item in batch]

    def requeue_for_trusted_network(self) -> list[int]:
        """On a trusted network, what waited for one goes back to the queue; returns the ids.

        Letters a person held for another reason (a changed key, say) stay held until retried.
        """
        if not self.networks.current().trusted:
            return []
        ids = [item.id for item in self.waiting() if item.waits_for_trusted_network]
        for item_id in ids:
            self._update(item_id, state=State.QUEUED, next_attempt_at=None)
        return ids

    async def _attempt(self, item: OutboxItem, network: Network, policy: Policy | None) -> None:
        try:
            outcome = await self._deliver_item(item, network, policy)
        except asyncio.CancelledError:  # the run was stopped (Ctrl-C): not "sending" for minutes
            why = "the sending was interrupted; the letter may or may not have arrived"
            self._store_outcome(item, self._deferred(item.attempts + 1, why))
            raise
        except Exception as exc:  # one broken item must not stop the others or stay "sending"
            outcome = self._deferred(item.attempts + 1, f"unexpected error ({type(exc).__name__})")
        self._store_outcome(item, outcome)

    async def _deliver_item(
        self, item: OutboxItem, network: Network, policy: Policy | None
    ) -> Outcome:
        try:
            address = Address.parse(item.recipient)
        except AddressError as exc:
            return Outcome(State.FAILED, f"the address {item.recipient} is not valid: {exc}")
        try:
            if item.present:  # a rotation notice goes with the certificate it retires
                identity = self.profile.retired_identity(item.identity, item.present)
            else:
                identity = self.profile.identity(item.identity)
        except IdentityError as exc:
            return Outcome(State.FAILED, f"the identity {item.identity} cannot be used: {exc}")
        letter = self.store.get(item.letter_id)
        if letter is None:
            return Outcome(State.FAILED, "the letter is gone from the store")
        attempts = item.attempts + 1  # _claim() counted this attempt

        blocked = self.trust.blocked(address.key)
        if blocked and not item.evidence.mailbox_once:
            pin = self.trust.mailbox(address.key)
            if pin is not None and pin.state in (MailboxState.REJECTED, MailboxState.GONE):
                return Outcome(State.FAILED, blocked)
            return Outcome(
                State.DECISION, blocked, question=self._mailbox_question(address, blocked, network)
            )

        hosts = self.profile.config.hosts
        hp = hostport(address)
        connect = item.connect or None
        host_pin = self.trust.host(hp)
        known = host_pin is not None and host_pin.approved
        if known and host_pin is not None:
            # A key the person approved is checked on the one connection, before the request.
            approved_spki = host_pin.spki
        else:
            # Before the person decided, a stranger (an impersonator, on a network we do not
            # trust) learns nothing of who we are: the first probe presents no certificate.
            try:
                presented = await probe(
                    address,
                    identity,
                    hosts=hosts,
                    connect=connect,
                    timeout=self.probe_timeout,
                    anonymous=not network.trusted,
                )
            except DeliveryError as exc:
                return self._deferred(attempts, str(exc))
            gate = self._gate(item, address, hp, presented, network, policy)
            if gate is not None:
                return gate
            approved_spki = presented.spki
            host_pin = self.trust.host(hp)  # admitted just now, or a B-only server's record
        try:
            result = await deliver(
                address,
                identity,
                bytes(letter.raw),
                approved_spki=approved_spki,
                prefer_b=host_pin is not None and host_pin.protocol == "B",
                hosts=hosts,
                connect=connect,
                timeout=self.deliver_timeout,
            )
        except KeyMismatch as exc:
            # The key changed between the probe and the send: judge the new key, send nothing.
            unapproved = replace(item, evidence=Evidence())
            gate = self._gate(unapproved, address, hp, exc.presented, network, policy)
            return gate or self._deferred(attempts, str(exc))
        except ProtocolError as exc:
            return Outcome(State.FAILED, f"the letter cannot be sent: {exc.message}")
        except DeliveryError as exc:
            return self._deferred(attempts, str(exc))
        if known:  # the approved key answered: refresh its record (last seen, renewed dates)
            self._gate(item, address, hp, result.presented, network, policy)
        if result.b_only:
            self.trust.set_protocol(hp, "B")
        elif result.speaks_c and host_pin is not None and host_pin.protocol == "B":
            self.trust.set_protocol(hp, "C")  # a letter too long for B went as C, and C took it
        return self._answer(item, address, result.response, attempts, result.presented)

    def _gate(
        self,
        item: OutboxItem,
        address: Address,
        hp: str,
        presented: PresentedCert,
        network: Network,
        policy: Policy | None,
    ) -> Outcome | None:
        """None when the presented key may receive the letter; else where the item waits."""
        decision = self.policy.decide(hp, presented, network, policy, recipient=address.key)
        if item.evidence.once_spki == presented.spki and decision.event is not HostEvent.REJECTED:
            return None  # "Send once" for exactly this key
        if decision.verdict is Verdict.SEND:
            try:
                self.policy.admit(decision, network)
            except TrustError as exc:
                return Outcome(State.DEFERRED, str(exc))
            return None
        if decision.verdict is Verdict.REFUSE:
            return Outcome(State.FAILED, decision.reason)
        caution = "" if network.trusted else self.networks.caution(network)
        question = question_for(decision, address.display, network, caution)
        state = State.HELD if decision.verdict is Verdict.HOLD else State.DECISION
        return Outcome(state, decision.reason, question=question)

    def _mailbox_question(self, address: Address, reason: str, network: Network) -> Question:
        pin = self.trust.mailbox(address.key)
        choices = [Choice.VERIFY, Choice.ONCE, Choice.REVIEW]
        if pin is not None and (not pin.verified_at or pin.state is not MailboxState.ALARM):
            choices.insert(0, Choice.TRUST)  # never verified, or verified then rotated
        return Question(
            ask=Ask.MAILBOX_CHANGED,
            recipient=address.display,
            hostport=hostport(address),
            reason=reason,
            choices=tuple(choices),
            default=Choice.HOLD,
            network=network_facts(network),
            pinned=None if pin is None else PinFacts.of_mailbox(pin),
            reported="" if pin is None else pin.alarm_fingerprint,
        )

    def _deferred(self, attempts: int, reason: str, seconds: int | None = None) -> Outcome:
        wait = backoff(attempts) if seconds is None else min(max(seconds, 1), SLOW_DOWN_MAX)
        now = self._clock()
        when = (now + timedelta(seconds=wait)).astimezone()  # local, as every date shown
        at = f"{when:%H:%M}" if when.date() == now.astimezone().date() else f"{when:%Y-%m-%d %H:%M}"
        return Outcome(
            State.DEFERRED, f"{reason} (next try at {at})", next_attempt_at=iso_utc(when)
        )

    def _answer(
        self,
        item: OutboxItem,
        address: Address,
        response: Response,
        attempts: int,
        presented: PresentedCert,
    ) -> Outcome:
        status, meta = response.status, one_line(response.meta)
        said = f" (the server said: {meta})" if meta and status != 20 else ""
        try:
            kind = response.kind
        except ProtocolError:  # the whole letter was written: sending it again may duplicate it
            return Outcome(
                State.FAILED,
                f"the server answered an unknown status {status:02d}{said}; the letter may "
                "have arrived, so it is not sent again by itself. It stays here: retry it "
                "from the outbox if it did not arrive",
            )
        category = response.category
        if category == 2:
            return self._delivered(address, response.meta, presented)
        if category == 3:
            return self._redirected(item, address, status, kind, meta)
        if category == 4:
            seconds = parse_retry_after(meta) if kind == Status.SLOW_DOWN else None
            return self._deferred(attempts, kind.description + said, seconds)
        if category == 6:
            return Outcome(
                State.FAILED, f"{kind.description}{said}. Check your identity ({item.identity})."
            )
        if status == 52:  # gone for good: remembered, so nothing to it is ever retried
            self.trust.mark_gone(address.key, f"{address.host} answered 52{said}")
            return Outcome(State.FAILED, f"{kind.description}{said}; {address} is marked gone")
        return Outcome(State.FAILED, kind.description + said)

    def _redirected(
        self, item: OutboxItem, address: Address, status: int, kind: Status, meta: str
    ) -> Outcome:
        try:
            target = parse_redirect(meta)
        except ProtocolError as exc:
            return Outcome(State.FAILED, f"the server redirected to a bad address: {exc}")
        if item.hops >= MAX_HOPS:
            return Outcome(State.FAILED, f"more than {MAX_HOPS} redirects; last to {target}")
        # Mailboxes ignore case and 1958 is the default port: "Bob@example.org:1958" is back
        # at bob@example.org, and following it would write the letter to it once more.
        visited = {address, *(Address.parse(a) for a in item.evidence.redirected_from)}
        if _mailbox_at(target) in {_mailbox_at(a) for a in visited}:
            return Outcome(State.FAILED, f"the redirects go round in a loop (back to {target})")
        reason = (
            f"{address.host} did not accept the letter ({kind.description}: "
            f"{target.display}). Follow the redirect to send it there, or drop it."
        )
        question = Question(
            ask=Ask.REDIRECT,
            recipient=address.display,
            hostport=hostport(address),
            reason=reason,
            choices=(Choice.FOLLOW,),
            default=Choice.HOLD,
            network=network_facts(self.networks.current()),
            target=target.display,
            permanent=kind == Status.SEND_HERE_FOREVER,
            status=status,
        )
        return Outcome(State.REDIRECTED, reason, question=question)

    def _delivered(self, address: Address, meta: str, presented: PresentedCert) -> Outcome:
        try:
            fp = fingerprint.parse(meta)
        except fingerprint.NotAFingerprint:
            return Outcome(
                State.DELIVERED,
                "delivered; the server did not return a usable mailbox fingerprint",
            )
        event = self.trust.record_mailbox(
            address.key, fp, Origin.DELIVERY, issuer_spki=presented.spki
        )
        # A server names the mailbox's key only in its answer, after it took the letter: this
        # letter went to the server key the person approved, and only later letters can wait.
        rotated = "delivered; the mailbox uses a new key issued by the same server key"
        if event is MailboxEvent.ROTATION and self.trust.blocked(address.key):
            rotated += (
                ". You had verified the old one: later letters to this address wait until "
                "you verify the new one or choose to send as unverified"
            )
        reason = {
            MailboxEvent.FIRST: "delivered; the mailbox key is now remembered",
            MailboxEvent.MATCH: "delivered",
            MailboxEvent.ROTATION: rotated,
            MailboxEvent.ALARM: (
                f"delivered to the server key you trust, but in its answer {address.host} "
                f"reported a different key for {address} than the one you trusted, not issued "
                "by that server key (a server names the mailbox key only after taking the "
                "letter); later letters to this address wait until you review it"
            ),
            MailboxEvent.REVOKED: (
                f"delivered to the server key you trust, but in its answer {address.host} "
                f"named a certificate of {address} that was retired; it is not trusted again "
                "(see Trust)"
            ),
        }[event]
        return Outcome(State.DELIVERED, reason, fingerprint=fp, mailbox_event=event)

    # -- storing ---------------------------------------------------------------------------------

    def _store_outcome(self, item: OutboxItem, outcome: Outcome) -> None:
        evidence = Evidence(
            question=outcome.question,
            once_spki=item.evidence.once_spki if outcome.state is State.DEFERRED else "",
            mailbox_once=item.evidence.mailbox_once and outcome.state is State.DEFERRED,
            mailbox_event=outcome.mailbox_event,
            redirected_from=item.evidence.redirected_from,
        )
        with self.db.transaction():
            self._update(
                item.id,
                state=outcome.state,
                reason=outcome.reason,
                evidence=evidence,
                next_attempt_at=outcome.next_attempt_at,
                fingerprint=outcome.fingerprint,
            )
            if outcome.state is State.DELIVERED:
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
        if all(row["state"] == State.DELIVERED for row in rows):
            self.store.mark_sent(letter_id, [row["fingerprint"] for row in rows])

    def _update(self, item_id: int, **columns: Any) -> None:
        if "evidence" in columns:
            columns["evidence"] = (columns["evidence"] or Evidence()).to_json()
        if "state" in columns:
            columns["state"] = State(columns["state"]).value
        columns["updated_at"] = utc_now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.connect().execute(
            f"UPDATE outbox SET {assignments} WHERE id = ?", (*columns.values(), item_id)
        )

    def release_host(self, hp: str, exclude: int | None = None) -> int:
        """Letters waiting on a server key move on once it is trusted (by an answer to one of
        them, or by a paste in Trust): queued again, and asked again if the key they saw is
        still not the trusted one. Returns how many."""
        released = 0
        for other in self.items(states=(State.DECISION, State.HELD)):
            question = other.evidence.question
            if (
                other.id != exclude
                and question is not None
                and question.hostport == hp
                and question.presented is not None
            ):
                self._update(other.id, state=State.QUEUED, reason="", next_attempt_at=None)
                released += 1
        return released

    def release_mailbox(self, address: str, exclude: int | None = None) -> int:
        """Letters paused on a mailbox's key move on once the person settled it (a paste in
        Trust, or an answer to one of them): queued again, their old reason and question
        cleared. Nothing moves while the mailbox still blocks letters (blocked()); a letter is
        asked again if it does once more. Returns how many."""
        try:
            key = Address.parse(address).key
        except AddressError:
            key = address.strip().lower()
        if self.trust.blocked(key) is not None:
            return 0
        released = 0
        for other in self.items(states=(State.DECISION, State.HELD)):
            question = other.evidence.question
            if other.id == exclude or question is None or question.ask is not Ask.MAILBOX_CHANGED:
                continue
            try:
                waits_on = Address.parse(question.recipient).key
            except AddressError:
                continue
            if waits_on != key:
                continue
            self._update(
                other.id,
                state=State.QUEUED,
                reason="",
                evidence=Evidence(redirected_from=other.evidence.redirected_from),
                next_attempt_at=None,
            )
            released += 1
        return released

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


def _mailbox_at(address: Address) -> tuple[str, int]:
    """What two addresses share when they reach the same mailbox on the same server."""
    return address.key, address.connect_port


def _item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        letter_id=row["letter_id"],
        recipient=row["recipient"],
        identity=row["identity"],
        state=State(row["state"]),
        reason=row["reason"],
        evidence=Evidence.from_json(row["evidence"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        hops=row["hops"],
        connect=row["connect"],
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        subject=row["subject"],
        present=row["present"],
    )
