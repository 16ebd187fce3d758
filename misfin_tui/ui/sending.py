"""Sending from the app: the core's delivery conversation, answered with modal prompts.

The letter is in the outbox (on disk) before any connection starts. Every delivery runs on the
engine's own loop thread (`Engine.submit`), so the UI thread never waits on the network or the
database. When the conversation needs a person it calls `ModalAsker.ask()`, which shows the
matching prompt on the UI thread and waits for the answer without blocking anything; outcomes
come back as toasts. This module keeps no delivery loop of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal

from textual.app import App

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.identity import IdentityError
from misfin_tui.core.network import NetworkError
from misfin_tui.core.notice import Reason
from misfin_tui.core.outbox.model import OutboxError, OutboxItem, State
from misfin_tui.core.trust.model import (
    Answer,
    Ask,
    Choice,
    MailboxEvent,
    PinFacts,
    Question,
)
from misfin_tui.core.trust.policy import network_facts
from misfin_tui.ui.messages import OutboxChanged
from misfin_tui.ui.prompts import prompt_for

log = logging.getLogger("misfin_tui.ui.sending")

RETRY_SECONDS = 30.0  # how often deferred letters whose time has come are tried again
Severity = Literal["information", "warning", "error"]


def outbox_changed(app: App[Any]) -> None:
    """Say the outbox changed (from any thread): the app reads the folder counts again."""
    with contextlib.suppress(RuntimeError):  # the app's loop closed meanwhile: nobody to tell
        app.post_message(OutboxChanged())


class ModalAsker:
    """The app's Asker: one modal prompt per question, a toast per outcome."""

    def __init__(self, app: App[Any], engine: Engine, review: Callable[[str], None]) -> None:
        self.app = app
        self.engine = engine
        self.review = review  # open the trust manager at a mailbox

    async def ask(self, question: Question, problem: str) -> Answer | None:
        who = question.recipient
        if problem:
            await self.say(f"{problem}. The letter to {who} is waiting.", "error")
        answer = await self._show(question)
        if answer is not None and answer.choice is Choice.REVIEW:
            await self._on_app(lambda: self.review(who))
        return answer

    async def tell(self, item: OutboxItem) -> None:
        outbox_changed(self.app)  # delivered, held, deferred, failed, dropped: counts now
        who = item.recipient
        if item.state is State.DELIVERED:
            if item.evidence.mailbox_event is MailboxEvent.ALARM:
                await self._mailbox_alarm(item)
            elif item.evidence.mailbox_event is MailboxEvent.ROTATION:
                await self.say(
                    f"ⓘ Delivered to {who}. It uses a new mailbox key, still issued by its "
                    "server's trusted key. This is normal after a reinstall."
                )
            else:
                await self.say(f"Delivered to {who}.")
        elif item.state is State.DECISION or item.state is State.REDIRECTED:
            await self.say(f"Nothing was sent; the letter to {who} is waiting in the Outbox.")
        elif item.state is State.DROPPED:
            await self.say(f"Dropped: the letter will not be sent to {who}.")
        elif item.state is State.HELD:
            await self.say(f"Held: the letter to {who} waits until you are on a trusted network.")
        elif item.state is State.DEFERRED:
            await self.say(f"Not delivered to {who} yet: {item.reason}", "warning")
        elif item.state is State.FAILED:
            await self.say(f"Could not deliver to {who}: {item.reason}", "error")

    async def _mailbox_alarm(self, item: OutboxItem) -> None:
        """Delivered, but the mailbox key differs: say so loudly, offer the trust manager."""
        address = Address.parse(item.recipient)
        pin = await asyncio.to_thread(self.engine.trust.mailbox, address.key)
        network = await asyncio.to_thread(self.engine.networks.current)
        question = Question(
            ask=Ask.MAILBOX_ALARM,
            recipient=item.recipient,
            hostport=f"{address.host}:{address.port}",
            reason=item.reason,
            choices=(Choice.REVIEW,),
            default=Choice.REVIEW,
            network=network_facts(network),
            pinned=None if pin is None else PinFacts.of_mailbox(pin),
            reported=item.fingerprint,
        )
        answer = await self._show(question)
        if answer is not None and answer.choice is Choice.REVIEW:
            await self._on_app(lambda: self.review(item.recipient))

    async def _show(self, question: Question) -> Answer | None:
        """Push the prompt on the UI thread; wait for its answer without blocking a thread."""
        answered: concurrent.futures.Future[Answer | None] = concurrent.futures.Future()

        def push() -> None:
            self.app.push_screen(prompt_for(question), callback=answered.set_result)

        await self._on_app(push)
        return await asyncio.wrap_future(answered)

    async def say(self, text: str, severity: Severity = "information") -> None:
        """A toast; text from the network or the core is never markup."""
        await self._on_app(lambda: self.app.notify(text, severity=severity, markup=False))

    async def _on_app(self, callback: Callable[[], object]) -> None:
        """Run a callback on the UI thread (from the engine's loop thread)."""
        await asyncio.to_thread(self.app.call_from_thread, callback)


class Sending:
    """The app's sender: submit, retry, decide, trust a network, and what waits."""

    def __init__(
        self,
        app: App[Any],
        engine: Engine,
        review: Callable[[str], None],
        *,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.app = app
        self.engine = engine
        self.asker = ModalAsker(app, engine, review)
        self.retry_seconds = retry_seconds
        self._retry_timer: Any = None

    @property
    def busy(self) -> bool:
        """True while a probe or delivery is in flight (for a "quit anyway?" question)."""
        return self.engine.delivery.busy

    # ----- the public API (called from the UI thread; nothing here blocks) ---------------

    def submit(
        self,
        *,
        identity: str,
        recipients: Sequence[Address],
        subject: str,
        body: str,
        draft_id: int | None = None,
        in_reply_to: int | None = None,
    ) -> None:
        """Queue the letter in the outbox, then deliver it in the background."""
        self._run(self._submit(identity, recipients, subject, body, draft_id, in_reply_to))

    def retry(self, item_id: int) -> None:
        """Try one outbox item again now."""
        self._run(self._retry(item_id))

    def decide(self, item_id: int) -> None:
        """Ask again about an item waiting for a person (from the Outbox or Pending tab)."""
        self._run(self.engine.delivery.ask_again(item_id, self.asker))

    def trust_network(self, network_id: str | None, label: str) -> None:
        """Mark a network trusted; on the current one, held letters are probed again now."""
        self._run(self._trust_network(network_id, label))

    def rotate(self, address: str, reason: Reason) -> None:
        """A new certificate for `address` (the old one retired), and its notices sent."""
        self._run(self._rotate(address, reason))

    def process_pending(self) -> None:
        """At start-up: re-probe held letters, send what is due, and say what waits. Also
        starts the retry timer."""
        if self._retry_timer is None:
            self._retry_timer = self.app.set_interval(self.retry_seconds, self._retry_due)
        self._run(self._pending())

    # ----- on the engine's loop ----------------------------------------------------------

    def _run(self, work: Coroutine[Any, Any, object]) -> None:
        future = self.engine.submit(work)
        future.add_done_callback(self._failed)

    def _failed(self, future: concurrent.futures.Future[object]) -> None:
        outbox_changed(self.app)  # whatever the run did to the outbox, however it ended
        exc = None if future.cancelled() else future.exception()
        if exc is not None:  # the outbox keeps every letter; say what broke
            log.error("sending stopped", exc_info=exc)
            self.app.call_from_thread(
                self.app.notify, f"Sending stopped: {exc}", severity="error", markup=False
            )

    async def _submit(
        self,
        identity: str,
        recipients: Sequence[Address],
        subject: str,
        body: str,
        draft_id: int | None,
        in_reply_to: int | None,
    ) -> None:
        outbox = self.engine.outbox

        def enqueue() -> list[int]:
            letter_id = outbox.enqueue(
                body, recipients, identity=identity, subject=subject, in_reply_to=in_reply_to
            )
            if draft_id is not None:
                self.engine.store.delete([draft_id])  # the outbox holds the letter now
            return [item.id for item in outbox.items(letter_id=letter_id)]

        try:
            ids = await asyncio.to_thread(enqueue)
        except Exception as exc:  # bad address, too big, no identity: plain words from the core
            kept = " The draft is kept in Drafts." if draft_id is not None else ""
            await self.asker.say(f"Not queued: {exc}.{kept}", "error")
            return
        outbox_changed(self.app)  # in the Outbox now, before any connection starts
        await self.engine.delivery.run(ids, self.asker)

    async def _retry(self, item_id: int) -> None:
        try:
            await asyncio.to_thread(self.engine.outbox.retry, item_id)
        except OutboxError as exc:
            await self.asker.say(str(exc), "warning")
            return
        outbox_changed(self.app)
        await self.engine.delivery.run([item_id], self.asker)

    async def _rotate(self, address: str, reason: Reason) -> None:
        try:
            rotation = await asyncio.to_thread(self.engine.rotate, address, reason)
        except (IdentityError, OSError, ValueError) as exc:  # e.g. a self-signed mailbox
            await self.asker.say(f"Not rotated: {exc}", "error")
            return
        outbox_changed(self.app)  # the notices wait in the Outbox
        told = len(rotation.recipients)
        await self.asker.say(
            f"{address} has a new certificate; the old one is retired. Telling {told} "
            f"contact{'s' if told != 1 else ''} (see the Outbox)."
        )
        if rotation.items:
            await self.engine.delivery.run(rotation.items, self.asker)

    async def _trust_network(self, network_id: str | None, label: str) -> None:
        networks = self.engine.networks
        current = await asyncio.to_thread(networks.current)
        try:
            if network_id is None or network_id == current.id:
                network, _ = await self.engine.delivery.trust_network(label, self.asker)
            else:
                network = await asyncio.to_thread(networks.trust, network_id, label)
        except NetworkError as exc:  # "unknown" cannot be trusted: the core says why
            await self.asker.say(str(exc), "error")
            return
        await self.asker.say(f"Network {network.label} is now trusted.")

    async def _pending(self) -> None:
        asked = await self.engine.delivery.pending(self.asker)
        waiting = await asyncio.to_thread(self.engine.outbox.waiting)
        seen = {item.id for item in asked}
        left = [item for item in waiting if item.id not in seen and item.state is State.DECISION]
        if left:
            await self.asker.say(
                f"{len(left)} letter{'s wait' if len(left) > 1 else ' waits'} for your "
                "decision in the Outbox."
            )

    def _retry_due(self) -> None:
        if not self.busy:
            self._run(self.engine.delivery.run(None, self.asker))
