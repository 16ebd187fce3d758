"""Re-validation (the seed's suggestion): check pinned servers and verified senders again.

A stolen key shows itself only when someone looks. Every `revalidate_days` (default 30), and
only on a trusted network (an untrusted one could show us anything), each approved server pin
is probed again and each verified sender's home server is asked again, by blank request, for
that sender's fingerprint. Nothing is ever re-pinned here: a changed server key is recorded,
and the next letter to that host meets the changed-key alarm; a sender whose server now vouches
for another certificate loses its cached verdict, so its next letter is checked afresh. Every
check is written to the trust history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.client import DeliveryError, blank_request, probe
from misfin_tui.core.clock import Clock, parse_time, system_clock
from misfin_tui.core.identity import IdentityError
from misfin_tui.core.network import Networks
from misfin_tui.core.profile import Profile
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.trust.model import (
    HostPin,
    HostState,
    MailboxPin,
    MailboxState,
)
from misfin_tui.core.trust.policy import TrustPolicy
from misfin_tui.core.trust.store import TrustStore

EVENTS = ("revalidated", "revalidate-changed", "revalidate-failed")


class Result(StrEnum):
    MATCH = "match"  # still the key we know
    CHANGED = "changed"  # another key: recorded, never re-pinned
    GONE = "gone"  # the mailbox's server answered 52
    UNREACHABLE = "unreachable"  # no answer now; nothing changes


@dataclass(frozen=True)
class Check:
    """One entry checked again, and what was found."""

    kind: str  # "host" | "mailbox"
    name: str  # host:port or mailbox@host
    result: Result
    detail: str
    expected: str = ""  # the pinned fingerprint
    seen: str = ""  # what was presented or vouched for now


class Revalidator:
    """Runs one round of checks with an engine's profile, trust store, policy and networks."""

    def __init__(
        self,
        profile: Profile,
        trust: TrustStore,
        policy: TrustPolicy,
        networks: Networks,
        *,
        clock: Clock = system_clock,
        timeout: float = 10.0,
    ) -> None:
        self.profile = profile
        self.trust = trust
        self.policy = policy
        self.networks = networks
        self.clock = clock
        self.timeout = timeout

    async def run(self, *, due_only: bool = False) -> list[Check]:
        """Check every approved server pin and verified sender (or only those due)."""
        network = await asyncio.to_thread(self.networks.current)
        if due_only and not network.trusted:
            return []
        trust = self.trust
        hosts = [
            pin
            for pin in await asyncio.to_thread(trust.hosts)
            if pin.state is not HostState.REJECTED and pin.origin.approves
        ]
        boxes = [
            pin
            for pin in await asyncio.to_thread(trust.mailboxes)
            if pin.check_result == "verified"
            and pin.state not in (MailboxState.REJECTED, MailboxState.GONE)
        ]
        if due_only:
            hosts = [pin for pin in hosts if self._due(pin.hostport, pin.last_seen)]
            boxes = [pin for pin in boxes if self._due(pin.address, pin.checked_at)]
        checks = [await self._host(pin) for pin in hosts]
        checks += [await self._mailbox(pin) for pin in boxes]
        return checks

    def _due(self, subject: str, seen: str | None) -> bool:
        """Older than revalidate_days: its last check, or its last use, whichever is later."""
        days = self.profile.config.revalidate_days
        times = [parse_time(seen)] if seen else []
        for entry in self.trust.history(limit=50, subject=subject):
            if entry.event in EVENTS:
                times.append(parse_time(entry.at))
                break
        known = [t for t in times if t is not None]
        return not known or self.clock() - max(known) >= timedelta(days=days)

    async def _host(self, pin: HostPin) -> Check:
        trust = self.trust
        expected = pin.fingerprint  # what `trust list` shows for this pin
        host, _, port = pin.hostport.rpartition(":")
        suffix = "" if port == "1958" else f":{port}"
        try:
            address = Address.parse(f"postmaster@{host}{suffix}")
            presented = await probe(
                address,
                self.profile.identity(None),
                hosts=self.profile.config.hosts,
                timeout=self.timeout,
                anonymous=True,  # a check needs no identity: the server learns nothing of us
            )
        except (AddressError, IdentityError, DeliveryError, OSError, TimeoutError) as exc:
            detail = f"could not reach {pin.hostport}: {exc}"
            await asyncio.to_thread(trust.log, "host", pin.hostport, "revalidate-failed", detail)
            return Check("host", pin.hostport, Result.UNREACHABLE, detail, expected)
        if presented.spki == pin.spki:  # the pin is the key; the certificate may be renewed
            detail = f"still presents the key you trust ({fingerprint.short(expected)})"
            await asyncio.to_thread(trust.log, "host", pin.hostport, "revalidated", detail)
            return Check("host", pin.hostport, Result.MATCH, detail, expected, expected)
        detail = (
            f"presents a different key ({fingerprint.short(presented.fingerprint)}) from the one "
            f"you trust ({fingerprint.short(expected)}); nothing was re-pinned, and the "
            "next letter to it waits for your decision"
        )
        await asyncio.to_thread(trust.log, "host", pin.hostport, "revalidate-changed", detail)
        return Check("host", pin.hostport, Result.CHANGED, detail, expected, presented.fingerprint)

    async def _mailbox(self, pin: MailboxPin) -> Check:
        trust = self.trust
        name = pin.address
        expected = pin.fingerprint  # what `trust list` shows for this pin

        async def failed(detail: str, result: Result = Result.UNREACHABLE) -> Check:
            event = "revalidate-failed" if result is Result.UNREACHABLE else "revalidate-changed"
            await asyncio.to_thread(trust.log, "mailbox", name, event, detail)
            return Check("mailbox", name, result, detail, expected)

        try:
            address = Address.parse(name)
            presented, response = await blank_request(
                address,
                self.profile.identity(None),
                hosts=self.profile.config.hosts,
                timeout=self.timeout,
            )
        except (AddressError, IdentityError, DeliveryError, ProtocolError, OSError) as exc:
            return await failed(f"could not ask {name}'s server: {exc}")
        except TimeoutError:
            return await failed(f"{name}'s server did not answer in time")
        if response.status == 52:
            await asyncio.to_thread(trust.mark_gone, name, "52 when re-validated")
            return Check("mailbox", name, Result.GONE, f"{address.host} says {name} is gone")
        ruling = self.policy.for_verifying(address.host, presented)
        if not ruling.usable:
            await asyncio.to_thread(trust.record_check, name, "changed")
            return await failed(ruling.problem, Result.CHANGED)
        if response.status // 10 != 2:
            return await failed(f"{address.host} answered {response.status} for {name}")
        try:
            vouched = fingerprint.parse(response.meta)
        except fingerprint.NotAFingerprint:
            return await failed(f"{address.host} answered without a fingerprint for {name}")
        if vouched == pin.fingerprint:
            # As the verifier does: the server key that vouched is kept (learned when it had
            # expired), so the next check compares against it instead of taking any key.
            network = await asyncio.to_thread(self.networks.current)
            await asyncio.to_thread(
                self.policy.vouched, address.host, presented, network, name, ruling
            )
            await asyncio.to_thread(trust.record_check, name, "verified", succeeded=True)
            detail = f"its server still vouches for {fingerprint.short(expected)}"
            await asyncio.to_thread(trust.log, "mailbox", name, "revalidated", detail)
            return Check("mailbox", name, Result.MATCH, detail, expected, vouched)
        await asyncio.to_thread(trust.record_check, name, "changed")
        detail = (
            f"its server now vouches for {fingerprint.short(vouched)}, not the pinned "
            f"{fingerprint.short(expected)}; its next letter is checked afresh"
        )
        check = await failed(detail, Result.CHANGED)
        return Check("mailbox", name, Result.CHANGED, check.detail, expected, vouched)
