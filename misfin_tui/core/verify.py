"""Sender verification: is the certificate a letter came with really that address's?

The receiver takes the sender's address from the client certificate (UID @ first DNS SAN), but
anyone can make such a certificate. So, after the letter is stored and acknowledged, we ask the
sender's own server: a blank request to the sender's address (§7.2, §8). The server's TLS
key must be one the trust policy lets vouch, and the fingerprint it answers with must be the
sender's; a server key that also signed the certificate (a host CA) is kept as its issuer, so a
later certificate it signs is a rotation rather than an alarm. Results are cached on the
mailbox pin (checked_at / check_result) and re-checked after `revalidate_days`, so a stolen
certificate stops working once its owner's server issues a new one.

Failures put the letter in Quarantine with the reason in plain words; nothing is dropped. A
network failure is not a verdict: the letter stays "pending" and is retried with backoff.
Probes are always blank, and blank requests are never verified: two servers cannot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address
from misfin_tui.core.client import DeliveryError, blank_request
from misfin_tui.core.clock import day, iso_utc, parse_time
from misfin_tui.core.database import Folder
from misfin_tui.core.events import Event, LetterQuarantined, LetterVerified
from misfin_tui.core.identity import (
    CertInfo,
    Identity,
    IdentityError,
    cert_info,
    is_signed_by,
    server_cert_summary,
)
from misfin_tui.core.network import Networks
from misfin_tui.core.notice import NoticeError, find, mentions
from misfin_tui.core.profile import Profile
from misfin_tui.core.ratelimit import RateLimiter
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.store import LetterTrust, MailStore
from misfin_tui.core.text import one_line
from misfin_tui.core.trust.model import MailboxEvent, MailboxState, Origin, PresentedCert
from misfin_tui.core.trust.policy import TrustPolicy
from misfin_tui.core.trust.store import TrustStore

log = logging.getLogger("misfin_tui.verify")

# After a sender's server could not be reached: when to try again, per server (its site), so a
# host that resets or times out is asked at most twice in the first hour, whatever the number
# of letters that name it. After the last, its letters stay in Quarantine with the reason.
RETRY_DELAYS = (60.0, 3600.0, 6 * 3600.0, 24 * 3600.0)
NEGATIVE_TTL = 600.0  # seconds a failed check is remembered, so forged senders cannot make us probe
PROBE_BUDGET = (20, 3600.0)  # letters one sending address may make us probe for, per hour
LEARNED_TTL = timedelta(days=90)  # a learned key no verified letter used again is forgotten
EventSink = Callable[[Event], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    """A verdict on one sender certificate.

    trust: "verified" | "rotated" (verified, with a new certificate under the same host key) |
    "quarantined" (failed; `reason` says why) | "pending" (could not check now; retry).
    status: what a receiver with `unverified = "reject"` answers: 20, 61, 62 or 63 (40 pending).
    """

    trust: LetterTrust
    reason: str
    status: int = 20
    retry_after: float = 0.0  # pending: seconds before the sender's server may be asked again
    vouched: str = ""  # failed: the other certificate the sender's server vouches for

    @property
    def ok(self) -> bool:
        return self.trust in (LetterTrust.VERIFIED, LetterTrust.ROTATED)


def _failed(reason: str, status: int = 62, *, vouched: str = "") -> Outcome:
    return Outcome(LetterTrust.QUARANTINED, reason, status, vouched=vouched)


def _names(presented: PresentedCert, address: str) -> bool:
    """Whether a server's certificate is itself the identity of `address` (a single mailbox)."""
    try:
        info = server_cert_summary(presented.der)
    except Exception:  # an unreadable certificate names nobody
        return False
    return f"{info.mailbox}@{info.host}".lower() == address


def _short(fp: str) -> str:
    """The start of a fingerprint, algorithm named (enough to tell two apart)."""
    return f"{fingerprint.ALGORITHM} {fingerprint.short(fp)}"


class Verifier:
    """A bounded pool of threads verifying received letters, with retries and a cache."""

    def __init__(
        self,
        profile: Profile,
        store: MailStore,
        trust: TrustStore,
        policy: TrustPolicy,
        networks: Networks,
        *,
        emit: EventSink | None = None,
        probe_timeout: float = 10.0,
        max_probes: int = 4,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        probes_per_host: tuple[int, float] = (20, 60.0),
    ) -> None:
        self.profile = profile
        self.emit = emit
        self.probe_timeout = probe_timeout
        self.max_probes = max_probes
        self.retry_delays = retry_delays
        self.store = store
        self.trust = trust
        self.policy = policy
        self.networks = networks
        self._queue: list[tuple[float, int, int, int]] = []  # (due, seq, letter id, attempt)
        self._queued: set[int] = set()
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._active = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._probing: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}  # cut at stop()
        self._site_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._negative: dict[tuple[str, str], tuple[float, Outcome]] = {}
        self._down: dict[str, tuple[float, int]] = {}  # site -> (not before, failures)
        self._sources: dict[int, str] = {}  # letter id -> the address that sent it
        self._probe_slots = threading.BoundedSemaphore(max_probes)  # also caps reject-mode checks
        # Forged senders can name any host: don't let them aim our probes at one site (§7.3),
        # and don't let one sending address make us probe without end.
        self._site_limiter = RateLimiter(*probes_per_host)
        self._budget = RateLimiter(*PROBE_BUDGET)
        self.revocations = 0  # counts retirements, so a receiver drops verdicts it remembered

    @classmethod
    def standalone(
        cls, profile: Profile, *, emit: EventSink | None = None, **options: Any
    ) -> Verifier:
        """A verifier with stores of its own, for a receiver run without an engine (tests);
        `options` are the constructor's (timeouts, retry delays, limits)."""
        db = profile.database()
        trust = TrustStore(db)
        policy = TrustPolicy(trust, profile.config.first_contact)
        return cls(profile, MailStore(db), trust, policy, Networks(db), emit=emit, **options)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads, forget stale learned keys, and pick up letters left
        pending by an earlier run."""
        if self._threads:
            return
        self._stopping = False
        self.trust.expire_learned(iso_utc(datetime.now(UTC) - LEARNED_TTL))
        for n in range(self.max_probes):
            thread = threading.Thread(target=self._work, name=f"misfin-verify-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.resume()

    def stop(self) -> None:
        """Stop the workers; queued letters stay 'pending' in the store for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            probing = list(self._probing.items())
        # A probe in flight may wait probe_timeout on a silent server: cut it now. Its letter
        # stays 'pending' and resumes at the next start(); a thread still stuck after the
        # deadline is a daemon and does not hold the process.
        for task, loop in probing:
            with contextlib.suppress(RuntimeError):  # that probe's loop has just closed
                loop.call_soon_threadsafe(task.cancel)
        deadline = time.monotonic() + 1.5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []
        with self._cond:
            self._queue.clear()
            self._queued.clear()

    def resume(self) -> int:
        """Queue every letter still 'pending' (e.g. after a restart); returns how many."""
        ids = self.store.ids_with_trust(LetterTrust.PENDING)
        for letter_id in ids:
            self.submit(letter_id)
        return len(ids)

    def submit(
        self, letter_id: int, delay: float = 0.0, attempt: int = 0, *, source: str = ""
    ) -> None:
        """Queue a stored letter for verification (no-op if it is already queued). `source`,
        the address that sent it, spends that address's budget if the letter needs a probe."""
        with self._cond:
            if source:
                if len(self._sources) > 100_000:
                    self._sources.clear()
                self._sources[letter_id] = source
            if letter_id in self._queued:
                return
            self._queued.add(letter_id)
            heapq.heappush(
                self._queue, (time.monotonic() + delay, next(self._seq), letter_id, attempt)
            )
            self._cond.notify()

    def recheck(self, letter_id: int) -> bool:
        """Verify a letter again, e.g. from Quarantine after the person fixed a pin in Trust.

        Forgets the remembered failure for its certificate; a letter that passes goes back to
        the Inbox. False when there is no such letter or it has no sender certificate.
        """
        letter = self.store.get(letter_id)
        if letter is None or not letter.sender_cert:
            return False
        try:
            info = cert_info(letter.sender_cert)
        except Exception:  # unreadable: it will fail again, with its reason
            pass
        else:
            address = f"{info.mailbox}@{info.host}".lower()
            self._negative.pop((address, fingerprint.fingerprint(letter.sender_cert)), None)
        self.store.set_trust(letter_id, LetterTrust.PENDING, "checking the sender again")
        self.submit(letter_id)
        return True

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is due or running (retries scheduled later don't count)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                due = any(item[0] <= now for item in self._queue)
                if not due and self._active == 0:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(timeout=min(0.1, deadline - now))

    # -- the queue --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        break
                    wait = self._queue[0][0] - now if self._queue else 1.0
                    self._cond.wait(timeout=min(wait, 1.0))
                if self._stopping:
                    return
                _, _, letter_id, attempt = heapq.heappop(self._queue)
                self._queued.discard(letter_id)
                self._active += 1
            try:
                self._verify_letter(letter_id, attempt)
            except Exception:  # one letter's trouble must not stop the others
                log.exception("verifying letter %s failed", letter_id)
            finally:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    def _verify_letter(self, letter_id: int, attempt: int) -> None:
        letter = self.store.get(letter_id)
        if letter is None or letter.trust != LetterTrust.PENDING:
            return
        if not letter.sender_cert:
            self._quarantine(
                letter_id, letter.sender, "the letter came without a sender certificate"
            )
            return
        with self._cond:
            source = self._sources.pop(letter_id, "")
        # A key-change notice is judged against what the sender's server says now: a verdict
        # cached before the owner rotated would vouch for a thief's notice.
        fresh = mentions(letter.body)
        outcome = self.check(letter.sender_cert, letter.mailbox, source=source, fresh=fresh)
        outcome = self._key_change_notice(letter_id, letter.sender_cert, letter.body, outcome)
        if outcome.trust == LetterTrust.PENDING and self._stopping:
            return  # cut short by stop(): no verdict, no retry counted; resumes at start()
        if outcome.trust == LetterTrust.PENDING:
            if attempt >= len(self.retry_delays):
                self._quarantine(
                    letter_id,
                    letter.sender,
                    f"{outcome.reason}; gave up after {attempt + 1} tries (check again from "
                    "Quarantine)",
                )
                return
            delay = max(self.retry_delays[attempt], outcome.retry_after)
            when = datetime.now(UTC) + timedelta(seconds=delay)
            reason = f"{outcome.reason}; will try again at {when:%H:%M} UTC"
            if letter.folder == Folder.INBOX:
                self.store.move(
                    [letter_id], Folder.QUARANTINE
                )  # it waits aside, never in the Inbox
            self.store.set_trust(letter_id, LetterTrust.PENDING, reason)
            if not self._stopping:
                self.submit(letter_id, delay=delay, attempt=attempt + 1)
            log.info("letter %s from %s: still pending (%s)", letter_id, letter.sender, reason)
            return
        if outcome.trust == LetterTrust.QUARANTINED:
            self._quarantine(letter_id, letter.sender, outcome.reason)
            return
        if letter.folder == Folder.QUARANTINE:  # a recheck passed: it is ordinary mail after all
            self.store.move([letter_id], Folder.INBOX)
        self.store.set_trust(letter_id, outcome.trust, outcome.reason)
        log.info("letter %s from %s: %s", letter_id, letter.sender, outcome.reason)
        self._emit(LetterVerified(letter_id, letter.sender, outcome.trust, outcome.reason))

    def _quarantine(self, letter_id: int, sender: str, reason: str) -> None:
        self.store.move([letter_id], Folder.QUARANTINE)
        self.store.set_trust(letter_id, LetterTrust.QUARANTINED, reason)
        log.info("letter %s from %s: quarantined (%s)", letter_id, sender, reason)
        self._emit(LetterQuarantined(letter_id, sender, reason))

    def _emit(self, event: Event) -> None:
        if self.emit is not None:
            self.emit(event)

    # -- the check --------------------------------------------------------------------------

    def check(
        self, cert_der: bytes, mailbox: str = "", *, source: str = "", fresh: bool = False
    ) -> Outcome:
        """Verify one sender certificate (blocking; any thread without a running event loop).

        `mailbox` is our mailbox the letter was for: its identity is presented in the probe.
        `source` is the address that sent the letter: a probe spends its budget. `fresh` asks
        the sender's server even when a recent verdict is cached (a key-change notice).
        """
        try:
            info = cert_info(cert_der)
        except IdentityError as exc:
            return _failed(f"the sender's certificate is not a Misfin identity: {exc}")
        except Exception:
            return _failed("the sender's certificate cannot be read")
        address = f"{info.mailbox}@{info.host}".lower()
        fp = fingerprint.fingerprint(cert_der)
        with self._lock_for(site_of(info.host)):  # one probe in flight per site, result shared
            remembered = self._negative.get((address, fp))
            if remembered is not None and remembered[0] > time.monotonic():
                return remembered[1]
            outcome = self._check(address, info, cert_der, fp, mailbox, source, fresh)
            if outcome.trust == LetterTrust.QUARANTINED:
                self._remember_failure(address, fp, outcome)
            return outcome

    def _remember_failure(self, address: str, fp: str, outcome: Outcome) -> None:
        now = time.monotonic()
        if len(self._negative) > 10_000:
            self._negative = {k: v for k, v in self._negative.items() if v[0] > now}
        self._negative[(address, fp)] = (now + NEGATIVE_TTL, outcome)
        pin = self.trust.mailbox(address)
        if pin is not None and pin.fingerprint == fp:
            # The pinned certificate itself failed (e.g. stolen, then replaced): no more cache.
            # A forged certificate must not cost the real sender its cached verdict.
            self.trust.record_check(address, "failed")

    def cached(self, address: str, fp: str) -> Outcome | None:
        """The verdict from the cache alone, or None: no network, no lock, no waiting.

        The receiver asks before storing, so a known sender's letter is stored verified in one
        commit instead of stored pending, queued, re-read and updated (~1.4 ms of CPU a letter).
        """
        pin = self.trust.mailbox(address)
        if (
            pin is not None
            and pin.state not in (MailboxState.REJECTED, MailboxState.ALARM)
            and pin.fingerprint == fp
            and pin.check_result == "verified"
            and self._fresh(pin.checked_at)
        ):
            return Outcome(
                LetterTrust.VERIFIED,
                f"{address}'s certificate matches the one its server confirmed on "
                f"{day(pin.checked_at)}",
            )
        return None

    def _check(
        self,
        address: str,
        info: CertInfo,
        der: bytes,
        fp: str,
        mailbox: str,
        source: str,
        fresh: bool = False,
    ) -> Outcome:
        revoked = self._revoked(address, fp)
        if revoked is not None:
            return revoked
        pin = self.trust.mailbox(address)
        if pin is not None and pin.state is MailboxState.REJECTED:
            return _failed(f"You rejected {address}; its letters are kept in Quarantine.", 61)
        hit = None if fresh else self.cached(address, fp)
        if hit is not None:
            return hit
        return self._probe(address, info, der, fp, mailbox, source, pinned=pin is not None)

    def _fresh(self, checked_at: str | None) -> bool:
        when = parse_time(checked_at) if checked_at else None
        if when is None:
            return False
        days = self.profile.config.revalidate_days
        return datetime.now(UTC) - when < timedelta(days=days)

    def _probe(
        self,
        address: str,
        info: CertInfo,
        der: bytes,
        fp: str,
        mailbox: str,
        source: str,
        *,
        pinned: bool,
    ) -> Outcome:
        """Ask the sender's server (a blank request) and judge its certificate and answer.

        The server's key must be one the trust policy lets vouch (no pin, or the pinned one);
        it is recorded, as learned, only once the sender's certificate checked out against it.
        """
        host = info.host
        try:
            target = Address.parse(f"{info.mailbox}@{host}")
        except ProtocolError as exc:
            return _failed(
                f"the sender's certificate names {address}, which is not a usable address: "
                f"{exc.message}"
            )
        if target.port is not None:  # "host:port" in a DNS SAN: we would connect to that port
            return _failed(
                f"the sender's certificate names {address}, whose host carries a port: not a "
                "host name, so its server is not asked"
            )
        if _is_ip_literal(host):
            return _failed(
                f"the sender's certificate names an IP address ({host}), not a host name: a "
                "server cannot be asked to vouch for it, so the letter is not verified"
            )
        site = site_of(host)
        down = self._down.get(site)
        now = time.monotonic()
        if down is not None and down[0] > now:
            return Outcome(
                LetterTrust.PENDING,
                f"could not reach {host} to verify {address} a moment ago",
                40,
                retry_after=down[0] - now,
            )
        wait = self._site_limiter.wait_needed(site)
        if wait:
            return Outcome(
                LetterTrust.PENDING,
                f"too many checks sent to {site} recently",
                40,
                retry_after=wait,
            )
        if source and self._budget.wait_needed(source):
            return _failed(
                f"{source} sent more letters from unknown senders than are checked in an hour, "
                "so this one was not checked: open it in Quarantine and check it again if you "
                "expect it",
                40,
            )
        identity = self._probe_identity(mailbox)
        if identity is None:
            return Outcome(
                LetterTrust.PENDING,
                "no identity of ours to present when asking the sender's server",
                40,
            )
        try:
            with self._probe_slots:
                presented, response = asyncio.run(
                    self._unless_stopped(
                        blank_request(
                            target,
                            identity,
                            hosts=self.profile.config.hosts,
                            timeout=self.probe_timeout,
                        )
                    )
                )
        except asyncio.CancelledError:
            return Outcome(
                LetterTrust.PENDING, f"the check of {address} was cut short: stopping", 40
            )
        except (DeliveryError, ProtocolError, OSError, TimeoutError) as exc:
            retry = self._mark_down(site)
            return Outcome(
                LetterTrust.PENDING, f"could not reach {host} to verify {address}: {exc}", 40, retry
            )
        self._down.pop(site, None)
        status, meta = response.status, one_line(response.meta)  # shown: made safe here
        if status // 10 == 3:
            return _failed(
                f"{host} redirected the check for {address} elsewhere ({status} {meta}); "
                "a real mailbox answers for itself, so this sender is not verified"
            )
        if status in (51, 52, 53):
            return _failed(
                f"{host} says {address} does not exist ({status} {meta}): "
                "the sender's identity is not real"
            )
        if status // 10 == 4:
            return Outcome(
                LetterTrust.PENDING,
                f"{host} answered {status} {meta} when asked about {address}",
                40,
            )
        if status // 10 != 2:
            return _failed(f"{host} would not confirm {address}: it answered {status} {meta}")
        try:
            vouched = fingerprint.parse(meta)
        except fingerprint.NotAFingerprint:
            return _failed(f"{host} answered without a valid fingerprint for {address}")
        network = self.networks.current()
        ruling = self.policy.for_verifying(host, presented, network, by=f"verifying {address}")
        if not ruling.usable:
            return _failed(ruling.problem)
        signed = der == presented.der or is_signed_by(der, presented.der)
        if vouched != fp and vouched == presented.fingerprint and not _names(presented, address):
            return _failed(
                f"{host} answered with its own server certificate's fingerprint instead of one "
                f"for {address} (some servers, such as titlani, answer every blank request that "
                "way), so it does not vouch for this sender"
                + ("" if signed else f"; {host}'s server did not sign this certificate either")
            )
        if vouched != fp:
            if signed:
                return _failed(
                    f"{host} vouches for a different certificate for {address} "
                    f"({_short(vouched)}) than the one this letter came with ({_short(fp)}): "
                    "it may be an old or stolen one",
                    63,
                    vouched=vouched,
                )
            if pinned:  # we know this sender, and this certificate is not from their server
                return _failed(
                    f"{host} vouches for a different certificate for {address} "
                    f"({_short(vouched)}), and its server did not sign the one this letter came "
                    f"with ({_short(fp)}): it may be forged",
                    63,
                    vouched=vouched,
                )
            return _failed(
                f"{host} vouches for another certificate for {address} ({_short(vouched)}) and "
                f"its server did not sign this one ({_short(fp)}): the letter may be forged, or "
                f"{host} answers every check with one server fingerprint (titlani does), which "
                "cannot vouch for anyone",
                vouched=vouched,
            )
        # The server vouched for exactly this certificate. Whether its key also signed it
        # (a host CA) or not (GmCapsule's mailboxes are self-signed, apart from its TLS key),
        # only whoever answers for the host could have said so. Only a signing key is kept as
        # the issuer: a later change of an unsigned certificate is then an alarm, never a
        # rotation.
        event = self.trust.record_mailbox(
            address,
            fp,
            Origin.LEARNED,
            issuer_spki=presented.spki if signed else "",
            blurb=info.blurb,
        )
        if event is not MailboxEvent.ALARM:
            self.policy.vouched(host, presented, network, address, ruling)
        return self._outcome(address, info, fp, event)

    async def _unless_stopped(self, probe: Coroutine[Any, Any, T]) -> T:
        """Run a probe that stop() can cut short (CancelledError); none starts once stopping
        (threads that waited for the site's lock or a probe slot come here after stop())."""
        task = asyncio.current_task()
        assert task is not None
        with self._cond:
            if self._stopping:
                probe.close()
                raise asyncio.CancelledError
            self._probing[task] = asyncio.get_running_loop()
        try:
            return await probe
        finally:
            with self._cond:
                self._probing.pop(task, None)

    def _outcome(self, address: str, info: CertInfo, fp: str, event: MailboxEvent) -> Outcome:
        if event is MailboxEvent.ALARM:
            return _failed(
                f"{address} now has a different certificate than the one you trusted, "
                "and it is not issued by the same server key; review it in Trust",
                63,
            )
        self.trust.record_check(address, "verified", succeeded=True)
        if event is MailboxEvent.ROTATION:
            return Outcome(
                LetterTrust.ROTATED,
                f"{address}'s certificate changed since their last letter (new: {_short(fp)}); "
                f"it is issued by the same server key as before and {info.host} vouches for it",
            )
        return Outcome(
            LetterTrust.VERIFIED, f"{info.host} confirms this certificate is {address}'s"
        )

    def _mark_down(self, site: str) -> float:
        """The site did not answer: seconds until it may be asked again (shared by its letters)."""
        _, failures = self._down.get(site, (0.0, 0))
        delay = self.retry_delays[min(failures, len(self.retry_delays) - 1)]
        if len(self._down) > 10_000:
            now = time.monotonic()
            self._down = {k: v for k, v in self._down.items() if v[0] > now}
        self._down[site] = (time.monotonic() + delay, failures + 1)
        return delay

    # -- key rotation (core/notice.py, trust/notices.py) -------------------------------------

    def _revoked(self, address: str, fp: str) -> Outcome | None:
        """A retired or revoked certificate is never accepted again, whatever its server says."""
        revocation = self.policy.revoked(address, fp)
        if revocation is None:
            return None
        since = revocation.at[:10]
        why = f" ({revocation.why})" if revocation.why else ""
        return _failed(
            f"revoked: this letter came with {address}'s certificate {_short(fp)}, which was "
            f"retired on {since}{why} and is never accepted again; it may have been stolen",
            63,
        )

    def _key_change_notice(
        self, letter_id: int, der: bytes, body: str, outcome: Outcome
    ) -> Outcome:
        """A letter carrying a key-change notice: the trust policy retires what it may.

        The notice is judged by the certificate the letter came with (the TLS handshake proved
        its key), not by whether the sender's server still vouches for it: after a rotation it
        vouches for the successor, so a notice signed with the pinned certificate would fail
        the ordinary check. The letter itself is verified only when the server agrees (it
        vouches for the old certificate, or for the successor the notice names); else it waits
        in Quarantine, saying the retirement was done. A letter the policy did not act on keeps
        its own verdict."""

        if not mentions(body) or outcome.reason.startswith("revoked:"):
            return outcome
        try:
            info = cert_info(der)
        except Exception:  # unreadable: the ordinary verdict already says so
            return outcome
        sender = f"{info.mailbox}@{info.host}".lower()
        try:
            notice = find(body)
        except NoticeError as exc:
            self.trust.log("mailbox", sender, "notice-ignored", f"malformed notice: {exc}")
            return Outcome(
                outcome.trust,
                f"{outcome.reason}. It carries a malformed key-change notice, ignored: {exc}",
                outcome.status,
            )
        if notice is None:
            return outcome
        ruling = self.policy.notice(notice, sender, info.fingerprint, letter_id)
        if ruling.retire:
            self._negative.pop((sender, info.fingerprint), None)
            self.revocations += 1
            if outcome.ok or outcome.vouched == notice.new:  # its server agrees with it
                return Outcome(LetterTrust.VERIFIED, ruling.words)
            # Retiring is always safe; the rest of the letter could be a thief's, written
            # before the owner's server learned of the successor: no ✓ for it.
            return Outcome(
                LetterTrust.QUARANTINED,
                f"{ruling.words} But {info.host} does not confirm that new certificate "
                f"({outcome.reason}), so the rest of this letter is not vouched for.",
                outcome.status if outcome.status != 40 else 62,
            )
        return Outcome(outcome.trust, f"{outcome.reason}. {ruling.words}", outcome.status)

    def _probe_identity(self, mailbox: str) -> Identity | None:
        for wanted in (mailbox or None, None):
            try:
                return self.profile.identity(wanted)
            except IdentityError:
                continue
        return None

    def _lock_for(self, site: str) -> threading.Lock:
        """One check per site at a time: a burst of letters probes once, then shares the result
        (the cache, the remembered failure, or the site being down)."""
        with self._locks_guard:
            lock = self._site_locks.get(site)
            if lock is None:
                if len(self._site_locks) > 10_000:
                    self._site_locks.clear()
                lock = self._site_locks[site] = threading.Lock()
            return lock


def site_of(host: str) -> str:
    """The part of a host name its owner controls, roughly: the last two labels ("a.b.evil.test"
    -> "evil.test"), so wildcard names cannot spread probes over endless hosts of one site."""
    labels = host.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
