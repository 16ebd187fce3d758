"""Sending from the UI: queue in the core outbox, deliver in the background, ask when needed.

The letter is in the outbox (on disk) before any connection starts. Delivery runs in an async
worker on the app's loop, but every blocking step (SQLite, the TLS probe and send, which the
core runs on its own event loop) happens in a thread, so the UI never waits on the network.
When the core reports that an item needs a person (first contact, changed key, paused mailbox,
redirect), the matching prompt is pushed with `push_screen_wait`, the answer goes back to the
core's `decide()`, and delivery continues. Only one question is on screen at a time.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from misfin_tui.core.address import DEFAULT_PORT, Address, AddressError
from misfin_tui.core.outbox import WAITING, OutboxError, OutboxItem
from misfin_tui.ui.screens.prompts import Answer, Ask, Choice, TrustQuestion, prompt_for

if TYPE_CHECKING:
    from misfin_tui.core.outbox import Outbox
    from misfin_tui.ui.app import MisfinApp

RETRY_SECONDS = 30.0  # how often deferred letters whose time has come are tried again

ASKS = {
    "first-contact": Ask.FIRST_CONTACT,
    "first-contact-untrusted-network": Ask.FIRST_CONTACT_UNTRUSTED,
    "renewal-likely": Ask.RENEWAL,
    "changed": Ask.CHANGED,
    "mailbox": Ask.MAILBOX_CHANGED,
    "redirect": Ask.REDIRECT,
}
# The person's answer -> the outbox's choice.
TO_CORE = {
    Choice.TRUST: "trust",
    Choice.ACCEPT: "trust",
    Choice.ONCE: "once",
    Choice.SEND_ANYWAY: "once",  # a key seen on an unfamiliar network is never pinned
    Choice.VERIFIED: "verify",
    Choice.REPLACE: "replace",
    Choice.HOLD: "hold",
    Choice.FOLLOW: "follow",
    Choice.DROP: "drop",
}


def display_host(hostport: str) -> str:
    """'example.org' for the default Misfin port, else 'host:port'."""
    return hostport.removesuffix(f":{DEFAULT_PORT}")


def mailbox_key(recipient: str) -> str:
    """The trust store's name for a recipient: "mailbox@host", lower case, never the port."""
    try:
        return str(Address.parse(recipient)).lower()
    except AddressError:
        return recipient.strip().lower()


def question_for(item: OutboxItem) -> TrustQuestion | None:
    """The prompt for an outbox item waiting for a person, from the evidence the core stored."""
    evidence = item.evidence
    ask = ASKS.get(str(evidence.get("event", "")))
    if ask is None:
        return None
    presented = evidence.get("presented") or evidence.get("reported") or {}
    pinned = evidence.get("pinned") or {}
    network = evidence.get("network") or {}
    host = display_host(evidence.get("hostport", "")) or item.recipient.rpartition("@")[2]
    return TrustQuestion(
        ask=ask,
        recipient=item.recipient,
        host=host,
        presented=presented.get("fingerprint", ""),
        presented_spki=presented.get("spki", ""),
        presented_not_after=presented.get("not_after", ""),
        pinned=pinned.get("fingerprint", ""),
        pinned_not_after=pinned.get("not_after", ""),
        pinned_since=pinned.get("first_seen", ""),
        pinned_state=pinned.get("state", ""),
        network_label=network.get("label", ""),
        network_trusted=bool(network.get("trusted")),
        network_id=network.get("id", ""),
        item_id=item.id,
        reason=evidence.get("reason", item.reason),
        choices=tuple(evidence.get("choices") or ()),
        target=evidence.get("target", ""),
        permanent=bool(evidence.get("permanent")),
    )


class Sending:
    """The app's sender: submit, retry, decide and process what waits."""

    def __init__(self, app: MisfinApp, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.app = app
        self.retry_seconds = retry_seconds
        self._ask_lock: asyncio.Lock | None = None
        self._process_lock: asyncio.Lock | None = None
        self._retry_timer: Any = None

    @property
    def outbox(self) -> Outbox:
        return self.app.outbox

    # ----- the public API (called from the UI thread) ------------------------------------

    def submit(
        self,
        *,
        identity: str,
        recipients: list[str],
        subject: str,
        body: str,
        draft_id: int | None = None,
        in_reply_to: int | None = None,
    ) -> None:
        """Queue the letter in the outbox, then deliver it in the background."""
        self.app.run_worker(
            self._submit(identity, recipients, subject, body, draft_id, in_reply_to),
            name="send",
            group="sending",
            description=f"Sending to {', '.join(recipients)}",
            exit_on_error=False,
        )

    def retry(self, item_id: int) -> None:
        """Try one outbox item again now."""
        self.app.run_worker(self._retry(item_id), group="sending", exit_on_error=False)

    def decide(self, item_id: int) -> None:
        """Ask again about an item waiting for a person (from the Outbox or Pending tab)."""
        self.app.run_worker(self._decide(item_id), group="sending", exit_on_error=False)

    def process_pending(self) -> None:
        """At start-up and when a network becomes trusted: re-probe held letters, send what
        is due, and tell the person what happened. Also starts the retry timer."""
        if self._retry_timer is None:
            self._retry_timer = self.app.set_interval(self.retry_seconds, self._retry_due)
        self.app.run_worker(self._process_pending(), group="sending", exit_on_error=False)

    @property
    def busy(self) -> bool:
        """True while a probe or delivery is in flight (for a "quit anyway?" question)."""
        return self._process_lock is not None and self._process_lock.locked()

    def pending_items(self) -> list[OutboxItem]:
        """Items waiting for a person or a trusted network (blocking: call from a thread)."""
        return self.outbox.items(states=WAITING)

    # ----- workers ----------------------------------------------------------------------------

    async def _submit(
        self,
        identity: str,
        recipients: list[str],
        subject: str,
        body: str,
        draft_id: int | None,
        in_reply_to: int | None,
    ) -> None:
        def enqueue() -> list[int]:
            letter_id = self.outbox.enqueue(
                body, recipients, identity=identity, subject=subject, in_reply_to=in_reply_to
            )
            if draft_id is not None:
                self.app.store.delete([draft_id])  # the outbox holds the letter now
            return [item.id for item in self.outbox.items(letter_id=letter_id)]

        try:
            ids = await asyncio.to_thread(enqueue)
        except Exception as exc:  # bad address, too big, no identity: plain words from the core
            kept = " The draft is kept in Drafts." if draft_id is not None else ""
            self.say(f"Not queued: {exc}.{kept}", "error")
            return
        await self._deliver(ids)

    async def _retry(self, item_id: int) -> None:
        try:
            await asyncio.to_thread(self.outbox.retry, item_id)
        except OutboxError as exc:
            self.say(str(exc), "warning")
            return
        await self._deliver([item_id])

    async def _decide(self, item_id: int) -> None:
        try:
            item = await asyncio.to_thread(self.outbox.item, item_id)
        except OutboxError as exc:
            self.say(str(exc), "warning")
            return
        if item.state not in WAITING or question_for(item) is None:
            self.say(f"The letter to {item.recipient} has nothing to decide ({item.state}).")
            return
        if await self._ask(item):
            await self._deliver([item_id])

    async def _process_pending(self) -> None:
        held = await self._process(None, held=True)
        due = await self._process(None)
        await self._deliver(await self._report_all(held + due))
        waiting = await asyncio.to_thread(self.pending_items)
        asked = {item.id for item in held + due}
        left = [item for item in waiting if item.id not in asked and item.state == "decision"]
        if left:
            self.say(
                f"{len(left)} letter{'s wait' if len(left) > 1 else ' waits'} for your "
                "decision in the Outbox."
            )

    async def _retry_due(self) -> None:
        due = await asyncio.to_thread(self.outbox.due)
        if due and not (self._process_lock and self._process_lock.locked()):
            self.app.run_worker(
                self._deliver([item.id for item in due if item.state == "deferred"]),
                group="sending",
                exit_on_error=False,
            )

    # ----- the delivery loop --------------------------------------------------------------

    async def _deliver(self, ids: list[int]) -> None:
        """Process these items; ask about the ones that need a person; repeat for the answered."""
        while ids:
            items = await self._process(ids)
            ids = await self._report_all(items)

    async def _process(self, ids: list[int] | None, *, held: bool = False) -> list[OutboxItem]:
        """One outbox run in a thread with its own event loop (the core's probe and deliver)."""
        if self._process_lock is None:
            self._process_lock = asyncio.Lock()

        def run() -> list[OutboxItem]:
            if held:
                return asyncio.run(self.outbox.process_held())
            return asyncio.run(self.outbox.process(ids))

        async with self._process_lock:
            try:
                return await asyncio.to_thread(run)
            except Exception as exc:  # the outbox keeps every letter; say what broke
                self.say(f"Sending stopped: {exc}", "error")
                return []

    async def _report_all(self, items: list[OutboxItem]) -> list[int]:
        """Tell the person about each item; returns the ids to process again."""
        again: list[int] = []
        for item in items:
            if await self._report(item):
                again.append(item.id)
        return again

    async def _report(self, item: OutboxItem) -> bool:
        """Toast the outcome, or ask; True when the answer put the item back in the queue."""
        who = item.recipient
        if item.state == "delivered":
            event = item.evidence.get("mailbox_event")
            if event == "alarm":
                await self._mailbox_alarm(item)
            elif event == "rotation":
                self.say(
                    f"ⓘ Delivered to {who}. It uses a new mailbox key, still issued by its "
                    "server's trusted key. This is normal after a reinstall."
                )
            else:
                self.say(f"Delivered to {who}.")
            return False
        if item.state in ("decision", "redirected"):
            return await self._ask(item)
        if item.state == "held" and question_for(item) is not None:
            return await self._ask(item)  # prompt 2: first contact on an unfamiliar network
        if item.state == "held":
            self.say(f"The letter to {who} is held until you are on a trusted network.")
        elif item.state == "deferred":
            self.say(f"Not delivered to {who} yet: {item.reason}", "warning")
        elif item.state == "failed":
            self.say(f"Could not deliver to {who}: {item.reason}", "error")
        return False

    # ----- asking -----------------------------------------------------------------------------

    @property
    def ask_lock(self) -> asyncio.Lock:
        """One question on screen at a time (made on the app's loop, on first use)."""
        if self._ask_lock is None:
            self._ask_lock = asyncio.Lock()
        return self._ask_lock

    async def _ask(self, item: OutboxItem) -> bool:
        """Ask about one item; True when the answer put it back in the queue."""
        async with self.ask_lock:
            # Re-read under the lock: an answer about another letter to the same server
            # (or another worker) may have settled this one already.
            try:
                item = await asyncio.to_thread(self.outbox.item, item.id)
            except OutboxError:
                return False  # dropped meanwhile
            if item.state not in WAITING:
                return item.state == "queued"
            question = question_for(item)
            if question is None:
                self.say(f"The letter to {item.recipient} waits: {item.reason}", "warning")
                return False
            if question.network_id:
                network = await asyncio.to_thread(self.app.networks.get, question.network_id)
                if network is not None and network.hints:
                    question = replace(question, network_hints=network.hints)
            answer = await self.app.push_screen_wait(prompt_for(question))
            outcome = await self._apply(item, question, answer)
        if outcome == "reprobe":  # outside the lock: re-probing asks its own questions
            held = await self._process(None, held=True)
            await self._deliver(await self._report_all(held))
            return False
        return outcome == "queued"

    async def _apply(self, item: OutboxItem, question: TrustQuestion, answer: Answer | None) -> str:
        """Pass the answer to the core: "queued" (send it now), "reprobe" (a network was
        trusted: re-probe what was held) or "" (it waits)."""
        who = item.recipient
        choice = answer.choice if answer else Choice.KEEP
        if choice is Choice.KEEP:
            self.say(f"Nothing was sent; the letter to {who} is waiting in the Outbox.")
            return ""
        if choice is Choice.REVIEW:
            self.open_trust_manager(who)
            return ""
        if choice is Choice.MARK_NETWORK:
            try:
                network = await asyncio.to_thread(
                    self.app.networks.trust, None, answer.label if answer else ""
                )
            except Exception as exc:  # "unknown" cannot be trusted: the core says why
                self.say(f"{exc} The letter to {who} is waiting in the Outbox.", "error")
                return ""
            self.say(f"Network {network.label} is now trusted.")
            return "reprobe"
        if question.ask is Ask.MAILBOX_CHANGED and choice is Choice.ACCEPT:
            core_choice = "trust"
        else:
            core_choice = TO_CORE[choice]
        pasted = answer.pasted if answer else ""
        try:
            updated = await asyncio.to_thread(self.outbox.decide, item.id, core_choice, pasted)
        except OutboxError as exc:
            self.say(f"{exc}. The letter to {who} is waiting in the Outbox.", "error")
            return ""
        if choice is Choice.HOLD:
            self.say(f"Held: the letter to {who} waits until you are on a trusted network.")
            return ""
        if choice is Choice.DROP:
            self.say(f"Dropped: the letter will not be sent to {who}.")
            return ""
        return "queued" if updated.state == "queued" else ""

    async def _mailbox_alarm(self, item: OutboxItem) -> None:
        """Delivered, but the mailbox key differs: say so loudly, offer the trust manager."""
        pin = await asyncio.to_thread(self.app.trust.mailbox, mailbox_key(item.recipient))
        question = TrustQuestion(
            ask=Ask.MAILBOX_ALARM,
            recipient=item.recipient,
            host=item.recipient.rpartition("@")[2],
            presented=item.fingerprint,
            pinned=pin.fingerprint if pin else "",
            item_id=item.id,
        )
        async with self.ask_lock:
            answer = await self.app.push_screen_wait(prompt_for(question))
        if answer is not None and answer.choice is Choice.REVIEW:
            self.open_trust_manager(item.recipient)

    def open_trust_manager(self, address: str) -> None:
        from misfin_tui.ui.screens.trust_manager import TrustManagerScreen

        self.app.push_screen(TrustManagerScreen(select=("mailboxes", mailbox_key(address))))

    def say(self, text: str, severity: str = "information") -> None:
        """A toast; text from the network or the core is never markup."""
        self.app.notify(text, severity=severity, markup=False)  # type: ignore[arg-type]
