"""Mail from home: bring the home server's letters into the store, and send changes back.

One sync: (1) changes made here go home (read -> untag Unread, archive/trash -> tags, emptying
the Trash -> delete there); (2) one list request per tag, incremental from the watermark; (3)
changes made at home come here; (4) each new id is fetched raw and stored byte for byte with
its remote id, in batches, each batch one durable transaction. Whatever fails, what was
stored stays stored and the watermark never passes a letter that was not stored, so the next
sync resumes where this one stopped. Blocking: call it from a worker thread; progress comes
through a callback, and a threading.Event cancels between requests.

Home's key goes through the one trust policy, exactly as a Misfin server's does when a letter
is sent: a first contact asks (or is held on an untrusted network), a changed key is an alarm,
and nothing is requested before the key is approved.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from misfin_tui.core.clock import utc_now
from misfin_tui.core.engine import Engine
from misfin_tui.core.events import NetworkTrusted
from misfin_tui.core.gmap.client import GmapClient, Home, KeyRefused, Unavailable
from misfin_tui.core.gmap.protocol import (
    LETTER_MAX,
    LIST_MAX,
    SYNC_TAGS,
    Answer,
    GmapError,
    MalformedAnswer,
    Tag,
    TagOp,
    folder_for,
    id_time,
    list_path,
    moves,
    parse_id_list,
    unread_op,
)
from misfin_tui.core.letter import parse_c
from misfin_tui.core.network import Network, NetworkError
from misfin_tui.core.remote import RemoteEntry, RemoteLetter
from misfin_tui.core.trust import model as trust
from misfin_tui.core.trust.policy import question_for

if TYPE_CHECKING:
    from misfin_tui.core.identity import Identity
    from misfin_tui.core.profile import Profile

RETRY_AFTER = 60  # seconds before a sync that could not reach home is worth trying again
BATCH = 200  # letters per durable transaction
BATCH_SECONDS = 1.0  # ... or whatever arrived within this long
# One TLS record. titlani 0.4.1 (on Python 3.11's asyncio) sends no more of an answer and then
# closes cleanly, so a letter near Misfin's size limit arrives cut short with nothing to show
# it; GMAP gives no length. An answer of exactly this size is therefore said to be suspect.
CUT_AT = 16_384
MAX_TRIES = 3  # a wrong paste is asked again this often

# Asked about home's key from the sync's own thread: blocking, like the sync itself.
KeyAsker = Callable[[trust.Question, str], trust.Answer | None]


# -- results ----------------------------------------------------------------------------------


class SyncStatus(StrEnum):
    DONE = "done"
    HELD = "held"  # home's key needs a decision: nothing was exchanged
    REFUSED = "refused"  # home is rejected, or home refused our certificate
    UNAVAILABLE = "unavailable"  # home down, slow or gone mid-sync: retry later, resumes
    FAILED = "failed"  # home answered something that is not GMAP
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Progress:
    stage: str  # "sending" | "listing" | "fetching"
    done: int
    total: int


@dataclass
class SyncReport:
    account: str
    hostport: str
    status: SyncStatus = SyncStatus.DONE
    fetched: int = 0  # new letters stored
    encrypted: int = 0  # listed at home but encrypted there: stored as a notice
    sent_home: int = 0  # tag changes and deletions sent home
    changed_here: int = 0  # letters moved or (un)marked here because home changed them
    gone: int = 0  # letters home no longer has (kept here)
    requests: int = 0
    reason: str = ""
    question: trust.Question | None = None  # held: what the person must decide about
    problems: list[str] = field(default_factory=list)
    retry_after: int | None = None


class _Stop(Exception):
    def __init__(
        self, status: SyncStatus, reason: str, question: trust.Question | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.question = question


class _Unfetched(Exception):
    """Home listed a letter and answered for it, but would not hand it out (a 4x or 5x):
    the other letters still come, and the next sync asks for this one again."""


class HomeRefused(GmapError):
    """Home answered 5x or 6x to a request that must work (e.g. our certificate refused)."""


# -- the sync ---------------------------------------------------------------------------------


def home_for(profile: Profile, identity: Identity, connect: str | None = None) -> Home:
    """[gmap] in config.toml names home's GMAP for an address; else the address's host:1960.
    Where the connection goes is Profile.gmap_target's rule: `connect` (HOST:PORT, like
    send's --connect) wins, else [hosts] gives the address for the host name (on the GMAP
    port, never the Misfin port [hosts] names)."""

    host, port = profile.gmap_home(identity)
    return Home(host, port, profile.gmap_target(host, port, connect))


def home_hostports(profile: Profile) -> frozenset[str]:
    """host:port of every identity's home GMAP server (what its pin is named by)."""
    return profile.gmap_hostports()


class GmapSync:
    """Syncs one profile's accounts with their homes. One sync at a time per instance."""

    def __init__(self, engine: Engine, *, timeout: float = 15.0, batch: int = BATCH) -> None:
        self.engine = engine
        self.profile = engine.profile
        self.db = engine.db
        self.store = engine.store
        self.networks = engine.networks
        self.timeout = timeout
        self.batch = max(1, batch)

    def sync(
        self,
        address: str | None = None,
        *,
        connect: str | None = None,
        trust_new: bool = False,
        policy: trust.Policy | None = None,
        full: bool = False,
        ask: KeyAsker | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> SyncReport:
        """Sync one account (default: the default identity). Never raises for network or
        protocol trouble: the report says what happened and what to do."""
        identity = self.profile.identity(address)
        account = str(identity.address)
        home = home_for(self.profile, identity, connect)
        run = _Run(
            self,
            identity,
            home,
            policy=trust.Policy.ACCEPT_NEW if trust_new else policy,
            ask=ask,
            on_progress=on_progress,
            cancel=cancel,
        )
        report = run.report
        state = self.store.sync_state(account)
        since = "" if full else state.since
        try:
            run.send_home()
            listed = run.list_tags(since, full)
            run.bring_home_changes(listed, full)
            run.since = run.fetch_new(listed, since)
        except _Stop as stop:
            report.status, report.reason, report.question = stop.status, stop.reason, stop.question
        except Unavailable as exc:
            report.status, report.reason = SyncStatus.UNAVAILABLE, str(exc)
            report.retry_after = RETRY_AFTER
        except HomeRefused as exc:
            report.status, report.reason = SyncStatus.REFUSED, str(exc)
        except MalformedAnswer as exc:
            report.status = SyncStatus.FAILED
            report.reason = f"home answered something that is not GMAP: {exc}"
            report.retry_after = RETRY_AFTER
        finally:
            report.requests = run.client.requests
            done = report.status is SyncStatus.DONE
            self.store.save_sync_state(
                account,
                server=home.hostport,
                since=run.since if run.since is not None else state.since,
                error="" if done else report.reason,
                finished=done,
            )
        return report


class _Run:
    """The state of one sync."""

    def __init__(
        self,
        owner: GmapSync,
        identity: Identity,
        home: Home,
        *,
        policy: trust.Policy | None,
        ask: KeyAsker | None,
        on_progress: Callable[[Progress], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        self.owner = owner
        self.store = owner.store
        self.identity = identity
        self.account = str(identity.address)
        self.home = home
        self.policy = policy
        self.ask = ask
        self.on_progress = on_progress
        self.cancel = cancel
        self.client = GmapClient(identity, home, timeout=owner.timeout)
        self.report = SyncReport(self.account, home.hostport)
        self.since: str | None = None  # the new watermark, once known
        self._network: Network | None = None

    # -- the key gate ----------------------------------------------------------------------

    def gate(self, presented: trust.PresentedCert) -> None:
        """Runs before any request is written on a connection that shows a new certificate:
        the trust policy decides, and a question it raises is asked (or the sync is held)."""
        if self._network is None:
            self._network = self.owner.networks.current()
        policy, hostport = self.owner.engine.policy, self.home.hostport
        problem = ""
        for _ in range(MAX_TRIES):
            network = self._network
            decision = policy.decide(
                hostport,
                presented,
                network,
                self.policy,
                recipient=self.account,
                held=trust.Held.SYNC,
            )
            if decision.verdict is trust.Verdict.SEND:
                policy.admit(decision, network)
                self.client.approve(presented.der)
                return
            if decision.verdict is trust.Verdict.REFUSE:
                raise _Stop(SyncStatus.REFUSED, decision.reason)
            question = question_for(decision, self.account, network)
            answer = self.ask(question, problem) if self.ask is not None else None
            if (
                answer is None
                or answer.choice in (trust.Choice.HOLD, trust.Choice.REVIEW)  # as offered
                or answer.choice not in question.choices
            ):  # left undecided: the sync stops here, held, and the policy is not asked
                raise _Stop(SyncStatus.HELD, f"held for a decision: {decision.reason}", question)
            try:
                if answer.choice is trust.Choice.TRUST_NETWORK:
                    self._network = self._trust_network(answer.label)
                    continue
                policy.answer(
                    decision.event, hostport, presented, network, answer, recipient=self.account
                )
            except (trust.TrustError, NetworkError) as exc:
                problem = str(exc)
                continue
            self.client.approve(presented.der)
            return
        raise _Stop(SyncStatus.HELD, f"held for a decision: {problem}")

    def _trust_network(self, label: str) -> Network:
        network = self.owner.networks.trust(None, label)
        self.owner.engine.events.emit(NetworkTrusted(network))
        return network

    # -- requests ---------------------------------------------------------------------------

    def _request(self, path: str, query: str | None, max_body: int) -> Answer:
        if self.cancel is not None and self.cancel.is_set():
            raise _Stop(SyncStatus.CANCELLED, "the sync was cancelled; the next one resumes")
        try:
            return self.client.request(path, query, gate=self.gate, max_body=max_body)
        except KeyRefused as exc:  # pragma: no cover - the gate raises _Stop itself
            raise _Stop(SyncStatus.HELD, str(exc)) from None

    def _must(self, answer: Answer, what: str) -> Answer:
        if answer.ok:
            return answer
        text = f"home answered {answer.status} {answer.meta!r} to {what}"
        if 40 <= answer.status <= 49:
            raise Unavailable(text)
        if answer.status == 61 and "retired" in answer.meta.lower():
            raise HomeRefused(
                f"{text}: this certificate of {self.account} was retired at home (rotated?);"
                f" export the new one there with `misfin-tui identity export {self.account}"
                " FILE` and import it here with `misfin-tui identity import FILE`"
            )
        if answer.status >= 60:
            raise HomeRefused(f"{text}: home does not accept the certificate of {self.account}")
        raise HomeRefused(text)

    def _progress(self, stage: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            with contextlib.suppress(Exception):  # a listener's bug must not cost a sync
                self.on_progress(Progress(stage, done, total))

    # -- 1. changes made here go home -------------------------------------------------------

    def send_home(self) -> None:
        entries = [e for e in self.store.remote_entries(self.account).values() if _pending(e)]
        for done, entry in enumerate(entries, 1):
            self._send_entry(entry)
            self._progress("sending", done, len(entries))

    def _send_entry(self, entry: RemoteEntry) -> None:
        rid = entry.remote_id
        if entry.letter_id is None or entry.folder is None:
            if entry.synced_folder != "Trash" and not self._ops(rid, [TagOp(True, Tag.TRASH)]):
                return
            if entry.deleted_from != "Trash":
                self.store.set_remote_synced(self.account, rid, "Trash", False)
                return
            answer = self._request("/delete", rid, 1024)
            if answer.ok or answer.status == 51:
                self.store.forget_remote(self.account, rid)
                self.report.sent_home += 1
            else:
                self._must(answer, f"deleting {rid}")
            return
        ops = moves(entry.synced_folder, entry.folder)
        if entry.unread != entry.synced_unread:
            ops.append(unread_op(entry.unread))
        if not self._ops(rid, ops):
            return
        folder = entry.folder if entry.folder in _MAPPED else entry.synced_folder
        self.store.set_remote_synced(self.account, rid, folder, entry.unread)

    def _ops(self, rid: str, ops: list[TagOp]) -> bool:
        """Send tag changes for one letter; False when home no longer has it."""
        for op in ops:
            answer = self._request(op.path(), rid, 1024)
            if answer.status == 51:
                self.store.set_remote_state(self.account, rid, "gone")
                self.report.gone += 1
                return False
            self._must(answer, f"{op.path()}?{rid}")
            self.report.sent_home += 1
        return True

    # -- 2. list -----------------------------------------------------------------------------

    def list_tags(self, since: str, full: bool) -> dict[str, set[str]]:
        """remote id -> the tags it has among those listed (one request per tag)."""
        listed: dict[str, set[str]] = {}
        tags: list[str] = [str(t) for t in SYNC_TAGS]
        for number, tag in enumerate(tags, 1):
            answer = self._must(self._request(list_path(tag, since), None, LIST_MAX), f"/tag/{tag}")
            ids, refused = parse_id_list(answer.body, f"the {tag} list")
            for bad in refused[:5]:
                self.report.problems.append(f"home listed an unusable id in {tag}: {bad!r}")
            for rid in ids:
                listed.setdefault(rid, set()).add(tag)
            self._progress("listing", number, len(tags))
        if full:
            answer = self._must(self._request("/tag/", None, LIST_MAX), "/tag/")
            for rid in parse_id_list(answer.body, "the list of all letters")[0]:
                listed.setdefault(rid, set())
        return listed

    # -- 3. changes made at home come here ---------------------------------------------------

    def bring_home_changes(self, listed: dict[str, set[str]], full: bool) -> None:
        entries = self.store.remote_entries(self.account)
        for rid, tags in listed.items():
            entry = entries.get(rid)
            if entry is None or entry.letter_id is None or entry.folder is None:
                continue
            if entry.state == "gone":
                self.store.set_remote_state(self.account, rid, "stored")
            remote = (folder_for(tags), Tag.UNREAD in tags)
            synced = (entry.synced_folder, entry.synced_unread)
            if remote == synced or (entry.folder, entry.unread) != synced:
                continue  # unchanged at home, or changed here too (here wins, already sent)
            self.store.apply_remote(self.account, rid, entry.letter_id, *remote)
            self.report.changed_here += 1
        if full:
            for rid, entry in entries.items():
                if rid not in listed and entry.state != "gone" and entry.letter_id is not None:
                    self.store.set_remote_state(self.account, rid, "gone")
                    self.report.gone += 1

    # -- 4. new letters ----------------------------------------------------------------------

    def fetch_new(self, listed: dict[str, set[str]], since: str) -> str:
        """Fetch and store every new id, oldest first; returns the watermark reached."""
        known = self.store.remote_entries(self.account)
        new = sorted((rid for rid in listed if rid not in known), key=lambda r: (id_time(r), r))
        times = [t for t in (id_time(r) for r in listed) if t]
        reached = max([since, *times]) if times else since
        pending: list[RemoteLetter] = []
        flushed_at = time.monotonic()
        try:
            for done, rid in enumerate(new, 1):
                try:
                    letter = self._fetch(rid, listed[rid])
                except _Unfetched as exc:
                    self.report.problems.append(str(exc))
                    reached = _before(reached, rid, since)
                    continue
                except BaseException:
                    self.since = _before(reached, rid, since)
                    raise
                if letter is not None:
                    pending.append(letter)
                if len(pending) >= self.owner.batch or (
                    pending and time.monotonic() - flushed_at > BATCH_SECONDS
                ):
                    self._flush(pending)
                    flushed_at = time.monotonic()
                self._progress("fetching", done, len(new))
        finally:
            self._flush(pending)
        return reached

    def _flush(self, pending: list[RemoteLetter]) -> None:
        if not pending:
            return
        self.store.add_remote(pending)
        for letter in pending:
            if letter.state == "encrypted":
                self.report.encrypted += 1
            else:
                self.report.fetched += 1
        pending.clear()

    def _fetch(self, rid: str, tags: set[str]) -> RemoteLetter | None:
        answer = self._request(f"/msgid/{rid}", None, LETTER_MAX)
        folder, unread = folder_for(tags), Tag.UNREAD in tags
        when = id_time(rid) or utc_now()
        common: dict[str, Any] = {
            "account": self.account,
            "remote_id": rid,
            "remote_time": id_time(rid),
            "folder": folder,
            "unread": unread,
            "mailbox": self.account,
            "received_at": when,
        }
        if answer.status == 40 and "encrypt" in answer.meta.lower():
            return RemoteLetter(
                raw=b"",
                state="encrypted",
                subject="Encrypted letter (read it on your home server)",
                body=(
                    f"{self.home.hostport} keeps this letter ({rid}) encrypted and does not hand"
                    " it out over GMAP, so it cannot be shown here.\n"
                ),
                trust_reason="listed by home; encrypted there",
                **common,
            )
        if answer.status == 51:
            return None  # removed at home between the list and now
        if 40 <= answer.status <= 59:  # this letter only; 6x (our certificate) stops the sync
            raise _Unfetched(
                f"home answered {answer.status} {answer.meta!r} for the letter {rid}; "
                "it is asked for again at the next sync"
            )
        self._must(answer, f"/msgid/{rid}")
        letter = _stored_letter(answer.body, home=self.home.hostport, **common)
        if answer.size != CUT_AT:
            return letter
        doubt = (
            f"it ended at exactly {CUT_AT:,} bytes, where some home servers (titlani 0.4.1) cut "
            "a long answer short, so its end may be missing: read it on your home server"
        )
        self.report.problems.append(f"the letter {rid} was stored, but {doubt}")
        return replace(letter, trust_reason=f"{letter.trust_reason}; {doubt}")


_MAPPED = ("Inbox", "Archive", "Sent", "Trash")


def _before(reached: str, rid: str, since: str) -> str:
    """The watermark kept when `rid` was not stored: never past it, so it is listed again."""
    return min(reached, id_time(rid) or since) if id_time(rid) else since


def _pending(entry: RemoteEntry) -> bool:
    """Does this letter have a change made here that home has not been told about?"""
    if entry.state == "gone":
        return False
    if entry.letter_id is None or entry.folder is None:
        return not (entry.synced_folder == "Trash" and entry.deleted_from != "Trash")
    moved = entry.folder != entry.synced_folder and entry.folder in _MAPPED
    return moved or entry.unread != entry.synced_unread


def _stored_letter(raw: bytes, *, home: str, **common: Any) -> RemoteLetter:
    """The letter as home stored it, byte for byte; only senders[0] was authenticated (by
    home, from the sender's TLS certificate)."""

    parsed = parse_c(raw)
    first = parsed.senders[0] if parsed.senders else None
    return RemoteLetter(
        raw=raw,
        version="C",
        sender=first.address if first else "",
        sender_blurb=first.blurb if first else "",
        recipients=tuple(parsed.recipients) or (str(common["account"]),),
        subject=parsed.subject,
        body=parsed.body,
        trust="none",
        trust_reason=f"synced from home ({home}); the sender was authenticated by home",
        **common,
    )


__all__ = [
    "GmapSync",
    "KeyAsker",
    "Progress",
    "SyncReport",
    "SyncStatus",
    "home_for",
]
