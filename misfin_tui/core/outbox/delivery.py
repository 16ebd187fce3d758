"""The one delivery conversation: process -> question -> answer -> process, until it settles.

The app (modal prompts) and the command line (a terminal prompt, or `--no-input`, which
answers nothing so the letter stays held) each implement `Asker`; neither keeps a delivery
loop of its own. One question is asked at a time. "This network is now trusted" re-probes
what waited for a trusted network in `network_trusted()`, whoever marked it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from misfin_tui.core.events import Event, NetworkTrusted
from misfin_tui.core.network import Network, NetworkError, Networks
from misfin_tui.core.outbox.model import OutboxError, OutboxItem, State
from misfin_tui.core.outbox.outbox import Outbox
from misfin_tui.core.trust.model import Answer, Choice, Policy, Question

MAX_TRIES = 3  # a wrong paste is asked again this often, then the letter keeps waiting


class Asker(Protocol):
    """Who answers for the person: the app's prompts or the terminal."""

    async def ask(self, question: Question, problem: str) -> Answer | None:
        """The person's answer to one of `question.choices`, or None to leave it waiting.
        `problem` says why the last answer did not work ("" the first time)."""
        ...

    async def tell(self, item: OutboxItem) -> None:
        """Where an item ended for now: delivered, deferred, failed, dropped or still waiting."""
        ...


class Conversation:
    """Runs outbox items to a settled state, asking the person when the core needs them."""

    def __init__(self, outbox: Outbox, networks: Networks, emit: Callable[[Event], None]) -> None:
        self.outbox = outbox
        self.networks = networks
        self.emit = emit
        self._ask_lock: asyncio.Lock | None = None
        self._busy = 0

    @property
    def busy(self) -> bool:
        """True while a probe or a delivery is in flight (for a "quit anyway?" question)."""
        return self._busy > 0

    async def run(
        self, ids: Sequence[int] | None, asker: Asker, *, policy: Policy | None = None
    ) -> list[OutboxItem]:
        """Process these items (None: whatever is due), ask about those that need a person,
        process again what the answers released. Returns each item as it ended."""
        final: dict[int, OutboxItem] = {}
        pending: list[int] | None = None if ids is None else list(ids)
        while pending is None or pending:
            self._busy += 1
            try:
                items = await self.outbox.process(pending, policy=policy)
            finally:
                self._busy -= 1
            pending = []
            for item in items:
                settled, again = await self._settle(item, asker)
                final[item.id] = settled
                pending.extend(i for i in again if i not in pending)
        return list(final.values())

    async def network_trusted(
        self, asker: Asker, *, policy: Policy | None = None
    ) -> list[OutboxItem]:
        """On a trusted network, probe again what waited for one, and ask what that raises."""
        ids = await asyncio.to_thread(self.outbox.requeue_for_trusted_network)
        return await self.run(ids, asker, policy=policy) if ids else []

    async def trust_network(self, label: str, asker: Asker) -> tuple[Network, list[OutboxItem]]:
        """Mark the current network trusted (NetworkError for "unknown"), then re-probe."""
        network = await asyncio.to_thread(self.networks.trust, None, label)
        self.emit(NetworkTrusted(network))
        return network, await self.network_trusted(asker)

    async def pending(self, asker: Asker) -> list[OutboxItem]:
        """At start-up: what waited for a trusted network (if this is one), then what is due."""
        held = await self.network_trusted(asker)
        return held + await self.run(None, asker)

    async def ask_again(self, item_id: int, asker: Asker) -> list[OutboxItem]:
        """Ask about one waiting item (from the Outbox or the trust manager), then go on."""
        item = await asyncio.to_thread(self.outbox.item, item_id)
        settled, again = await self._settle(item, asker)
        if again:
            return await self.run(again, asker)
        return [settled]

    # -- one item ----------------------------------------------------------------------------

    @property
    def _lock(self) -> asyncio.Lock:
        if self._ask_lock is None:  # made on the loop that first asks
            self._ask_lock = asyncio.Lock()
        return self._ask_lock

    async def _settle(self, item: OutboxItem, asker: Asker) -> tuple[OutboxItem, list[int]]:
        """Ask about a waiting item until it is released, held, dropped or left; then tell.
        Returns the item as it ended and the ids to process again."""
        async with self._lock:
            problem = ""
            for _ in range(MAX_TRIES):
                try:  # another answer (or another run) may have settled it meanwhile
                    item = await asyncio.to_thread(self.outbox.item, item.id)
                except OutboxError:
                    return item, []
                question = item.question
                if question is None:
                    if item.state is State.QUEUED:  # released by an answer about another item
                        return item, [item.id]
                    break
                answer = await asker.ask(replace(question, choices=item.choices), problem)
                if answer is None or answer.choice is Choice.REVIEW:
                    break
                if answer.choice is Choice.TRUST_NETWORK:
                    try:
                        network = await asyncio.to_thread(self.networks.trust, None, answer.label)
                    except NetworkError as exc:
                        problem = str(exc)
                        continue
                    self.emit(NetworkTrusted(network))
                    ids = await asyncio.to_thread(self.outbox.requeue_for_trusted_network)
                    return item, ids
                try:
                    item = await asyncio.to_thread(self.outbox.decide, item.id, answer)
                except OutboxError as exc:
                    problem = str(exc)
                    continue
                if item.state is State.QUEUED:
                    return item, [item.id]
                break  # held or dropped
            await asker.tell(item)
            return item, []
