"""Re-validation (the seed's suggestion): check pinned servers and verified senders again.

A stolen key shows itself only when someone looks. Every `revalidate_days` (default 30), and
only on a trusted network (an untrusted one could show us anything), each approved server pin
is probed again and each verified sender's home server is asked again, by blank request, for
that sender's fingerprint. Nothing is ever re-pinned here: a changed server key is recorded
(a sighting, through TrustPolicy.saw, shown changed in Trust), and the next letter to that
host meets the changed-key alarm; a sender whose server now vouches for another certificate
loses its cached verdict, so its next letter is checked afresh. Every check is written to the
trust history.
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
from misfin_tui.core.outbox.outbox import Outbox
from misfin_tui.core.profile import Profile
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.trust.model import (
    HostEvent,
    HostPin,
    HostState,
    MailboxPin,
    MailboxState,
    PasteMismatch,
    PresentedCert,
    TrustError,
)
from misfin_tui.core.trust.policy import TrustPolicy
from misfin_tui.core.trust.store import TrustStore, check_pasted

EVENTS = ("revalidated", "revalidate-changed", "revalidate-failed")


async def present_key(
    profile: Profile, hostport: str, *, connect: str | None = None, timeout: float = 10.0
) -> PresentedCert:
    """The key a server presents now (a handshake, nothing sent). `connect` (HOST:PORT) moves
    only the TCP connection, like send's --connect. A Misfin server is reached as a letter
    to it would be ([hosts] like curl's --connect-to); a GMAP server (an identity's home, or
    any host on GMAP's port) as sync reaches it (Profile.gmap_target): on the port the pin
    names, never the Misfin port in [hosts]. Raises what probe() raises."""
    host, _, port = hostport.rpartition(":")
    suffix = "" if port == "1958" else f":{port}"
    address = Address.parse(f"postmaster@{host}{suffix}")
    hosts = profile.config.hosts
    if profile.is_gmap_hostport(hostport):
        hosts = {address.host: profile.gmap_target(address.host, address.connect_port)}
    return await probe(
        address,
        profile.identity(None),
        hosts=hosts,
        connect=connect,
        timeout=timeout,
        anonymous=True,  # a check needs no identity: the server learns nothing of us
    )


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
        try:
            presented = await present_key(self.profile, pin.hostport, timeout=self.timeout)
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
        network = await asyncio.to_thread(self.networks.current)
        await asyncio.to_thread(
            self.policy.saw, pin.hostport, presented, network, by="re-validating"
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
        network = await asyncio.to_thread(self.networks.current)
        ruling = await asyncio.to_thread(
            self.policy.for_verifying, address.host, presented, network, by=f"re-validating {name}"
        )
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


# -- a pasted fingerprint (`trust verify`, the trust manager) ---------------------------------


class Pasted(StrEnum):
    VERIFIED = "verified"  # it names the key already pinned, which is now marked verified
    REPLACED = "replaced"  # the key had changed: the paste approved the one presented now
    APPROVED = "approved"  # nothing approved before: the paste approved the presented key
    MISMATCH = "mismatch"  # it names neither the pinned key nor the presented one
    UNREACHABLE = "unreachable"  # not the pinned key, and the server could not be asked


@dataclass(frozen=True)
class PasteCheck:
    """What a pasted fingerprint settled. `presented`: what the server presents now, when it
    was asked; `released`: letters in the Outbox queued again (not sent by the paste)."""

    kind: str  # "host" | "mailbox"
    name: str
    result: Pasted
    detail: str
    presented: str = ""
    released: int = 0

    @property
    def ok(self) -> bool:
        return self.result in (Pasted.VERIFIED, Pasted.REPLACED, Pasted.APPROVED)


async def verify_server(
    profile: Profile,
    policy: TrustPolicy,
    networks: Networks,
    outbox: Outbox,
    hostport: str,
    pasted: str,
    *,
    connect: str | None = None,
    timeout: float = 10.0,
) -> PasteCheck:
    """The person pasted the fingerprint they were given for a server.

    It names the pinned key: verified, nothing fetched. Otherwise the key the server presents
    now is fetched (as `trust revalidate` does) and the paste answers the question that key
    raises, through the one policy (TrustPolicy.verify_presented, the same decision as a
    letter's "verify"): a changed key is replaced, and letters held on it are queued again. A paste
    naming neither changes nothing. TrustError for a paste that is no fingerprint at all, a
    rejected server, or an unknown one that cannot be reached."""
    check_pasted(pasted)
    if await asyncio.to_thread(policy.names_pin, hostport, pasted):
        await asyncio.to_thread(policy.verify_pasted, hostport, pasted)
        return PasteCheck("host", hostport, Pasted.VERIFIED, "the paste names the key you trust")
    pin = await asyncio.to_thread(policy.store.host, hostport)
    if pin is not None and pin.state is HostState.REJECTED:
        raise TrustError(f"{hostport} is rejected; forget it first to trust it again.")
    try:
        presented = await present_key(profile, hostport, connect=connect, timeout=timeout)
    except (AddressError, IdentityError, DeliveryError, OSError, TimeoutError) as exc:
        words = f"could not ask {hostport} which key it presents now: {exc}"
        if pin is None:
            raise TrustError(f"{hostport} is not known, and {words}") from None
        detail = f"the paste does not name the key you trust, and {words}; nothing was changed"
        return PasteCheck("host", hostport, Pasted.UNREACHABLE, detail)
    network = await asyncio.to_thread(networks.current)
    try:
        decision = await asyncio.to_thread(
            policy.verify_presented, hostport, pasted, presented, network
        )
    except PasteMismatch:
        detail = (
            "the fingerprint does NOT match: it names neither the key you trust nor the one "
            f"{hostport} presents now ({fingerprint.grouped(presented.fingerprint)}); nothing "
            "was changed"
        )
        return PasteCheck("host", hostport, Pasted.MISMATCH, detail, presented.fingerprint)
    released = await asyncio.to_thread(outbox.release_host, hostport)
    if decision.event in (HostEvent.CHANGED, HostEvent.RENEWAL_LIKELY):
        result = Pasted.REPLACED
        detail = (
            f"the key {hostport} presents now matches the paste and replaces the one you "
            f"trusted ({fingerprint.short(pin.fingerprint if pin else '')}), which is kept in "
            "its history as replaced"
        )
    elif decision.event in (HostEvent.MATCH, HostEvent.NEW_DATES):
        result, detail = Pasted.VERIFIED, f"the key {hostport} presents matches the paste"
    else:
        result = Pasted.APPROVED
        detail = f"the key {hostport} presents now matches the paste and is now trusted"
    if released:
        detail += "; " + _queued_again(released)
    return PasteCheck("host", hostport, result, detail, presented.fingerprint, released)


def _queued_again(released: int) -> str:
    """What became of the letters a paste released: queued, not sent (nothing here sends)."""
    return (
        f"{released} letter(s) waiting on it in the Outbox are queued again; they go out "
        "with the app or `outbox retry ID`"
    )


def verify_mailbox(
    trust: TrustStore, address: str, pasted: str, outbox: Outbox | None = None
) -> PasteCheck:
    """The person pasted the fingerprint they were given for a mailbox (no network needed).
    A match settles its key: letters in `outbox` paused on it are queued again."""
    check_pasted(pasted)
    if trust.verify_mailbox(address, pasted):
        released = outbox.release_mailbox(address) if outbox is not None else 0
        detail = "the paste names its key"
        if released:
            detail += "; " + _queued_again(released)
        return PasteCheck("mailbox", address, Pasted.VERIFIED, detail, released=released)
    detail = (
        "the fingerprint does NOT match its key (nor a key its server reported); nothing was "
        "changed"
    )
    return PasteCheck("mailbox", address, Pasted.MISMATCH, detail)
