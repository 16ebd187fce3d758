"""The engine: one profile's database, stores, trust policy, outbox, delivery and receiver.

The app and the command line are each handed one `Engine`; nothing else builds stores. It
reports through typed events (`engine.events`). For the app it also keeps one long-lived event
loop on a thread of its own (`submit()`), so deliveries and their questions never run on the
UI's loop and never need a fresh loop per batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from misfin_tui.core.address import parse_hostport
from misfin_tui.core.clock import Clock, system_clock
from misfin_tui.core.events import Events
from misfin_tui.core.network import Networks
from misfin_tui.core.outbox.delivery import Asker, Conversation
from misfin_tui.core.outbox.outbox import Outbox
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore, StoredLetter
from misfin_tui.core.trust.policy import TrustPolicy
from misfin_tui.core.trust.store import TrustStore

if TYPE_CHECKING:  # imported where used: pyOpenSSL when mail is received, and a `send`
    # process pays for neither rotation (nor its notices) nor re-validation
    from misfin_tui.core.notice import Reason
    from misfin_tui.core.receiver import Limits, Receiver
    from misfin_tui.core.revalidate import Check, PasteCheck
    from misfin_tui.core.rotation import Rotation
    from misfin_tui.core.trust.model import Answer
    from misfin_tui.core.verify import Verifier

T = TypeVar("T")


class Engine:
    """Everything one profile needs to read, send, trust and receive mail."""

    def __init__(
        self,
        profile: Profile,
        *,
        clock: Clock = system_clock,
        networks: Networks | None = None,
        probe_timeout: float = 10.0,
        deliver_timeout: float = 20.0,
    ) -> None:
        self.profile = profile
        self.db = profile.database()
        self.clock = clock
        self.events = Events()
        self.store = MailStore(self.db)
        self.trust = TrustStore(self.db)
        self.networks = networks or Networks(self.db)
        self.policy = TrustPolicy(self.trust, profile.config.first_contact, clock)
        self.outbox = Outbox(
            profile,
            self.store,
            self.trust,
            self.policy,
            self.networks,
            probe_timeout=probe_timeout,
            deliver_timeout=deliver_timeout,
            clock=clock,
        )
        self.delivery = Conversation(self.outbox, self.networks, self.events.emit)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self.receiver: Receiver | None = None

    # -- receiving ---------------------------------------------------------------------------

    @cached_property
    def verifier(self) -> Verifier:
        """The receiver's verifier (started with it)."""
        return self._new_verifier()

    def _new_verifier(self) -> Verifier:
        from misfin_tui.core.verify import Verifier

        return Verifier(
            self.profile,
            self.store,
            self.trust,
            self.policy,
            self.networks,
            emit=self.events.emit,
        )

    def start_receiver(
        self, listen: tuple[str, int] | None = None, limits: Limits | None = None
    ) -> tuple[str, int]:
        """Serve this profile's mailboxes (and verify their senders); returns the bound address.

        `listen` overrides [receiver] listen. Raises what binding or the identities raise."""
        from misfin_tui.core.receiver import Receiver

        if self.receiver is not None:
            raise RuntimeError("the receiver is already running")
        receiver = Receiver(
            self.profile,
            listen,
            emit=self.events.emit,
            verifier=self.verifier,
            limits=limits,
        )
        self.verifier.start()
        try:
            bound = receiver.start()
        except BaseException:
            self.verifier.stop()
            raise
        self.receiver = receiver
        return bound

    def stop_receiver(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.stop()
            self.verifier.stop()

    def recheck(self, letter_ids: Sequence[int], *, timeout: float = 30.0) -> list[StoredLetter]:
        """Check the senders of these letters again (from Quarantine, after a pin was fixed or
        to try now); a letter that passes goes back to the Inbox. On the receiver's verifier,
        or on one started for this check when no receiver runs here. Waits up to `timeout`;
        returns the letters as they are then (one still checked shows as pending)."""
        started_here = self.receiver is None  # a receiver starting meanwhile keeps its own
        verifier = self._new_verifier() if started_here else self.verifier
        if started_here:
            verifier.start()
        try:
            for letter_id in letter_ids:
                verifier.recheck(letter_id)
            verifier.wait_idle(timeout)
        finally:
            if started_here:
                verifier.stop()
        return [letter for i in letter_ids if (letter := self.store.get(i)) is not None]

    # -- key rotation and re-validation (core/rotation.py, core/revalidate.py) -----------------

    def rotate(self, address: str, reason: Reason, *, ca: bool = False) -> Rotation:
        """Issue a new certificate for `address` (with `ca`: a new host CA and every mailbox of
        its host), retire the old one, serve the new one at once, and queue one notice to
        every past contact, signed with the old certificate. Deliver the returned items with
        `delivery.run(rotation.items, asker)` like any letter."""
        from misfin_tui.core import rotation

        rotated = rotation.rotate(self.profile, address, reason, ca=ca)
        rotation.record_retired(self.trust, rotated)
        if self.receiver is not None:
            self.receiver.reload_identities()
        ours = {str(i.address).lower() for i in self.profile.identities()}
        recipients = rotation.contacts(self.trust, ours)
        items: list[int] = []
        for notice in rotation.notices(rotated, recipients):
            letter = self.outbox.enqueue(
                notice.body,
                [notice.recipient],
                identity=notice.identity,
                subject=notice.subject,
                present=notice.present,
            )
            items.extend(item.id for item in self.outbox.items(letter))
        return rotation.Rotation(rotated, items, recipients)

    async def revalidate(self, *, due_only: bool = False) -> list[Check]:
        """Check pinned servers and verified senders again (`due_only`: only what is older
        than revalidate_days, and only on a trusted network). Never re-pins anything."""
        from misfin_tui.core.revalidate import Revalidator

        revalidator = Revalidator(
            self.profile, self.trust, self.policy, self.networks, clock=self.clock
        )
        return await revalidator.run(due_only=due_only)

    async def verify_server(
        self, hostport: str, pasted: str, *, connect: str | None = None
    ) -> PasteCheck:
        """A pasted fingerprint for a server (`trust verify`, the trust manager): the pinned
        key is marked verified, or the key the server presents now is approved through the
        trust policy when the paste names it (a changed key replaced, its held letters
        released). See revalidate.verify_server."""
        from misfin_tui.core import revalidate

        check = await revalidate.verify_server(
            self.profile,
            self.policy,
            self.networks,
            self.outbox,
            hostport,
            pasted,
            connect=connect,
        )
        if check.result in (revalidate.Pasted.REPLACED, revalidate.Pasted.APPROVED):
            # Letters its senders' old or unknown key sent to Quarantine are judged again.
            ids = self.store.quarantined_from(parse_hostport(hostport)[0])
            if ids:
                letters = await asyncio.to_thread(self.recheck, ids)
                back = sum(1 for letter in letters if letter.cleared)
                check = replace(
                    check,
                    detail=f"{check.detail}; {len(ids)} letter(s) in Quarantine from "
                    f"{hostport} checked again, {back} moved to the Inbox",
                )
        return check

    def review_server(self, hostport: str, answer: Answer) -> str:
        """The person's answer, in Trust, to the changed-key question a key seen instead of
        the pin raises (TrustPolicy.review / settle: the same answers as a letter's question).
        A kept pin sets the other key aside; an approved one replaces the pin, queues again
        the letters held on that server and checks its senders' quarantined letters again.
        Raises PasteMismatch or TrustError (nothing changed). Returns what happened, in words."""
        from misfin_tui.core.trust.model import Choice

        network = self.networks.current()
        self.policy.settle(hostport, answer, network)
        if answer.choice is Choice.HOLD:
            return f"{hostport}: kept the key you trust; the other key it presented is not trusted"
        words = f"{hostport}: the key it presented instead now replaces the one you trusted"
        released = self.outbox.release_host(hostport)
        if released:
            words += f"; {released} letter(s) waiting on it in the Outbox are queued again"
        ids = self.store.quarantined_from(parse_hostport(hostport)[0])
        if ids:
            back = sum(1 for letter in self.recheck(ids) if letter.cleared)
            words += (
                f"; {len(ids)} letter(s) in Quarantine checked again, {back} moved to the Inbox"
            )
        return words

    def verify_mailbox(self, address: str, pasted: str) -> PasteCheck:
        """A pasted fingerprint for a mailbox: verified when it names its key, and letters
        in the Outbox paused on it queued again."""
        from misfin_tui.core import revalidate

        return revalidate.verify_mailbox(self.trust, address, pasted, self.outbox)

    def revalidate_in_background(self, every: float = 3600.0) -> concurrent.futures.Future[None]:
        """On the engine's loop: every `every` seconds, re-validate what is due (trusted
        networks only). The app starts it once; `close()` ends it."""

        async def rounds() -> None:
            while True:
                try:
                    await self.revalidate(due_only=True)
                except Exception:  # one failed round must not end the next ones
                    logging.getLogger("misfin_tui.revalidate").exception("re-validation failed")
                await asyncio.sleep(every)

        return self.submit(rounds())

    def deliver_in_background(
        self, asker: Asker, every: float = 30.0
    ) -> concurrent.futures.Future[None]:
        """On the engine's loop: what waited for a trusted network and what is due now, then
        what falls due every `every` seconds, as the app does while it is open. `receive`
        runs it, so a host with no app open still sends its Outbox (rotation notices, letters
        `send` left deferred). Questions go to `asker`; its silence leaves them held."""

        async def rounds() -> None:
            first = True
            while True:
                try:
                    if first:
                        await self.delivery.pending(asker)
                    else:
                        await self.delivery.run(None, asker)
                    first = False
                except Exception:  # one failed round must not end the next ones
                    logging.getLogger("misfin_tui.outbox").exception("sending the Outbox failed")
                await asyncio.sleep(every)

        return self.submit(rounds())

    # -- the background loop (the app's deliveries) -------------------------------------------

    def submit(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run a coroutine on the engine's own loop thread (started on first use)."""
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="misfin-engine", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return asyncio.run_coroutine_threadsafe(work, self._loop)

    def close(self) -> None:
        """Stop the receiver and the loop thread (work in flight is abandoned: the outbox keeps
        every letter, and a letter leaves it only on a 20)."""
        self.stop_receiver()
        with self._loop_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            ending = asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop)
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                ending.result(timeout=2)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=2)


async def _cancel_the_rest() -> None:
    """Cancel what still runs on the engine's loop and let it finish cancelling."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
