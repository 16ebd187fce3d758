"""The one trust policy: it decides for sending, for syncing from home and for verifying senders.

`classify()` is the pure event table of trust-and-mail-ux.md b.5: a function of the pin, the
presented key, the network and the configured policy. `TrustPolicy` applies it to the trust
store and is the only code that writes a host pin:

- a key the person approved (or their accept-new policy took, or a paste matched) lets letters
  go; a changed key while the pin is valid is an alarm that only a paste can clear;
- a key *learned while verifying a sender* is evidence, never approval: the first letter to
  that host still gets the first-contact decision (held on an untrusted network), and the
  prompt says whom the key vouched for, when and on which network;
- verification may use an approved or learned key that matches; it records a key it learned
  only after the sender's certificate checked out against it, and never replaces a pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from misfin_tui.core import fingerprint
from misfin_tui.core.clock import Clock, day, parse_time, system_clock
from misfin_tui.core.network import Network
from misfin_tui.core.trust.model import (
    HOST_ASKS,
    Answer,
    Choice,
    Held,
    HostDecision,
    HostEvent,
    HostPin,
    HostState,
    NetworkFacts,
    Origin,
    PasteMismatch,
    PinFacts,
    Policy,
    PresentedCert,
    Question,
    Revocation,
    TrustError,
    Verdict,
)
from misfin_tui.core.trust.store import TrustStore

if TYPE_CHECKING:  # notices are judged only when a received letter carries one, not on a send
    from misfin_tui.core.notice import Notice
    from misfin_tui.core.trust.notices import NoticeRuling

RENEWAL_WINDOW = timedelta(days=30)
# A notice announcing a new server key is evidence for so long after it arrived; an old one
# says little about a key seen today (whoever held the certificate then may have sent it).
ANNOUNCED_FOR = timedelta(days=180)
PROBE_PORT = 1958  # a certificate names only a hostname: verifiers dial the Misfin port (§7.3)


def _network_words(network: Network) -> str:
    return f"{network.label} ({'trusted' if network.trusted else 'not marked as trusted'})"


def classify(
    pin: HostPin | None,
    presented: PresentedCert,
    network: Network,
    policy: Policy | str,
    now: datetime,
    *,
    hostport: str = "",
    held: Held = Held.LETTER,
) -> HostDecision:
    """Decide what the presented server key means for sending a letter (b.5 event table).

    Pure: reads nothing but its arguments. The network matters for a first contact and the
    wording of a renewal; it never softens an alarm. A pin learned while verifying a sender
    is no approval, so it still makes a first contact. `held`: what waits for the decision
    (a letter, or a sync from home); only the words depend on it.
    """
    try:
        policy = Policy(policy)
    except ValueError:
        known = ", ".join(p.value for p in Policy)
        raise ValueError(f"unknown first-contact policy {policy!r}; use one of {known}") from None
    name = hostport or (pin.hostport if pin else "this server")

    def decide(
        event: HostEvent,
        verdict: Verdict,
        reason: str,
        choices: tuple[Choice, ...] = (),
        default: Choice = Choice.HOLD,
        origin: Origin = Origin.APPROVED,
    ) -> HostDecision:
        vouch = pin.vouch if pin is not None and pin.origin is Origin.LEARNED else None
        return HostDecision(
            event, verdict, name, presented, pin, reason, choices, default, origin, vouch, held
        )

    if pin is not None and pin.state is HostState.REJECTED:
        return decide(
            HostEvent.REJECTED,
            Verdict.REFUSE,
            f"You rejected {name}. Nothing is sent to it; forget it in Trust if you changed "
            "your mind.",
        )
    if pin is None or not pin.origin.approves:
        return _first_contact(name, pin, presented, network, policy, decide, held)
    if presented.spki == pin.spki:
        if presented.fingerprint == pin.fingerprint and presented.not_after == pin.not_after:
            return decide(HostEvent.MATCH, Verdict.SEND, f"{name} presented the key you trust.")
        return decide(
            HostEvent.NEW_DATES,
            Verdict.SEND,
            f"{name} presented the key you trust in a renewed certificate (valid until "
            f"{day(presented.not_after)}); the record is updated.",
        )
    expires = parse_time(pin.not_after)
    strict = policy is Policy.STRICT
    if expires is not None and expires <= now + RENEWAL_WINDOW:
        when = "expired on" if expires <= now else "expires on"
        reason = (
            f"{name} has a new key, probably a routine renewal: the key you trusted {when} "
            f"{expires:%Y-%m-%d}. {held.waits}"
        )
        if not network.trusted:
            reason += (
                f" You are on an untrusted network ({network.label}); consider waiting until "
                "you are on a trusted one."
            )
        if strict:
            reason += " Your policy is strict: paste the new fingerprint to accept it."
        choices = (
            (Choice.VERIFY, Choice.HOLD) if strict else (Choice.TRUST, Choice.VERIFY, Choice.HOLD)
        )
        return decide(HostEvent.RENEWAL_LIKELY, Verdict.ASK, reason, choices)
    valid = f"until {expires:%Y-%m-%d}" if expires else "with no readable end date"
    return decide(
        HostEvent.CHANGED,
        Verdict.ASK,
        f"{name} is presenting a different key from the one you trusted on "
        f"{day(pin.first_seen)}, which is still valid {valid}. This happens when an "
        "operator rebuilds a server without keeping its key, but it is also exactly what an "
        f"interception looks like. {held.waits} Ask {held.ask_whom} for the new "
        "fingerprint by another channel and paste it to replace the key. Network: "
        f"{_network_words(network)}.",
        (Choice.VERIFY, Choice.HOLD),
    )


def _learned_words(name: str, pin: HostPin | None, presented: PresentedCert) -> str:
    """What a key learned while verifying adds to a first-contact question."""
    if pin is None:
        return ""
    if pin.spki == presented.spki:
        return (
            f" {name} showed this same key while a sender was being verified; that is "
            "evidence, not your approval."
        )
    return (
        f" Careful: {name} showed a different key ({fingerprint.short(pin.fingerprint)}) "
        f"while a sender was being verified on {day(pin.first_seen)}."
    )


def _first_contact(
    name: str,
    pin: HostPin | None,
    presented: PresentedCert,
    network: Network,
    policy: Policy,
    decide: _Decide,
    held: Held = Held.LETTER,
) -> HostDecision:
    """No approved pin yet: the policy and the network decide whether a person is asked."""
    seen = _learned_words(name, pin, presented)
    verify_only = (Choice.VERIFY, Choice.HOLD)
    if network.trusted:
        event = HostEvent.FIRST_CONTACT
        reason = (
            f"You have not approved the key of {name} yet, so it cannot be told whether it is "
            "genuine. If you trust it now, it will be remembered and you will be warned if "
            f"its key ever changes. Network: {_network_words(network)}.{seen}"
        )
        if policy is Policy.ACCEPT_NEW:
            return decide(
                event,
                Verdict.SEND,
                reason + " Your policy accepts new servers.",
                origin=Origin.ACCEPT_NEW,
            )
        if policy is Policy.STRICT:
            return decide(
                event,
                Verdict.ASK,
                reason + " Your policy is strict: a new server is accepted only when you "
                "paste its fingerprint.",
                verify_only,
            )
        return decide(
            event,
            Verdict.ASK,
            reason,
            (Choice.TRUST, Choice.ONCE, Choice.VERIFY, Choice.HOLD),
            Choice.TRUST,
        )
    event = HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
    reason = (
        f"You have not approved the key of {name} yet, and you are on a network you have not "
        f"marked as trusted ({network.label}). Whoever runs this network could point {name} "
        "at a different server, and a first contact could not notice it. Mail to servers "
        f"whose key you approved is not affected.{seen}"
    )
    if policy is Policy.STRICT:
        return decide(
            event,
            Verdict.HOLD,
            reason + " Your policy is strict: a new server is accepted only when you paste "
            "its fingerprint.",
            (Choice.HOLD, Choice.TRUST_NETWORK, Choice.VERIFY),
        )
    if policy is Policy.ACCEPT_NEW:
        reason += (
            " Your policy accepts new servers, but never on an untrusted network: "
            f'{held.noun} waits until you decide, or, when first_contact = "accept-new" is'
            " set in config.toml, until you are on a trusted network (--trust-new counts for"
            " its own run only)."
        )
    return decide(
        event,
        Verdict.HOLD,
        reason,
        (Choice.HOLD, Choice.TRUST_NETWORK, Choice.VERIFY, Choice.ONCE, Choice.TRUST),
    )


class _Decide(Protocol):
    """The shape of classify's inner `decide` (for the type checker)."""

    def __call__(
        self,
        event: HostEvent,
        verdict: Verdict,
        reason: str,
        choices: tuple[Choice, ...] = (),
        default: Choice = Choice.HOLD,
        origin: Origin = Origin.APPROVED,
    ) -> HostDecision: ...


def question_for(
    decision: HostDecision, recipient: str, network: Network, caution: str = ""
) -> Question:
    """The prompt's evidence for a decision that needs a person (`caution`: what is odd about
    the network, from Networks.caution)."""
    pin = decision.pinned
    return Question(
        ask=HOST_ASKS[decision.event],
        recipient=recipient,
        hostport=decision.hostport,
        reason=decision.reason,
        choices=decision.choices,
        default=decision.default,
        network=network_facts(network, caution),
        presented=decision.presented,
        pinned=PinFacts.of_host(pin) if pin is not None and pin.origin.approves else None,
        vouch=decision.vouch,
        held=decision.held,
    )


def network_facts(network: Network, caution: str = "") -> NetworkFacts:
    return NetworkFacts(network.id, network.label, network.trusted, network.hints, caution)


@dataclass(frozen=True)
class VerifyRuling:
    """May this server key be asked to vouch for a sender? `problem` says why not."""

    usable: bool
    problem: str = ""
    learn: bool = False  # no pin yet: record the key as learned once the sender checks out


class TrustPolicy:
    """The policy applied to the trust store: the only writer of host pins."""

    def __init__(self, store: TrustStore, policy: Policy | str, clock: Clock = system_clock):
        self.store = store
        self.policy = Policy(policy)
        self.clock = clock

    # -- sending and syncing -------------------------------------------------------------------

    def decide(
        self,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        policy: Policy | None = None,
        *,
        recipient: str = "",
        held: Held = Held.LETTER,
    ) -> HostDecision:
        """What may happen with a letter (or a sync) for the server that presented this key.

        `recipient`: the mailbox the letter is for (a sync: the account); only its own
        key-change notice is evidence about a changed key (see announced_host_key). `held`:
        what waits while a person decides (the question's words say so)."""
        pin = self.store.host(hostport)
        # A run's policy (`send --trust-new`) may loosen "ask", never the person's "strict".
        effective = self.policy if self.policy is Policy.STRICT else policy or self.policy
        decision = classify(
            pin, presented, network, effective, self.clock(), hostport=hostport, held=held
        )
        if (
            pin is not None
            and pin.spki != presented.spki
            and decision.verdict is not Verdict.REFUSE
        ):
            by = "sending a letter" if held is Held.LETTER else "syncing mail from home"
            self.saw(hostport, presented, network, by=by)
        return self._with_notice(decision, recipient)

    def saw(self, hostport: str, presented: PresentedCert, network: Network, *, by: str) -> bool:
        """A server presented a key: when it is not its pin, record it as evidence of a change.

        The one entry point for every sighting — a letter's or a sync's decision (decide), a
        sender's verification (for_verifying) and a re-validation (revalidate.py) — so the
        trust manager and `trust list` show "changed" however it was noticed. Never approval,
        never a new pin: letters to that server still meet the changed-key question, and only a
        paste (or the person's explicit keep) settles it. `by`: what saw it, in words. True
        when it was news (logged)."""
        pin = self.store.host(hostport)
        if pin is None or pin.spki == presented.spki:  # nothing to compare, or its own key
            return False
        return self.store.saw_changed(hostport, presented, network, by)

    def review(self, hostport: str, network: Network, caution: str = "") -> Question | None:
        """The question a key seen instead of an approved pin raises, asked from Trust as a
        letter's would be: the same classify on the key that was seen (as an Outbox item
        answers the question about the key its probe saw), so the same answers — a paste
        replaces the pin (a likely renewal may be accepted), HOLD keeps the pin (keep). None
        when nothing was seen, the server is rejected, or its pin was never approved (a
        first contact: paste its fingerprint in Trust, or wait for a letter's question)."""
        pin = self.store.host(hostport)
        if pin is None or pin.changed is None or not pin.approved:
            return None
        decision = classify(
            pin,
            pin.changed.presented,
            network,
            self.policy,
            self.clock(),
            hostport=hostport,
            held=Held.REVIEW,
        )
        if decision.event not in (HostEvent.CHANGED, HostEvent.RENEWAL_LIKELY):
            return None
        from dataclasses import replace

        decision = replace(
            decision, reason=f"{decision.reason} The other key was {pin.changed.words}."
        )
        return question_for(decision, hostport.removesuffix(":1958"), network, caution)

    def settle(self, hostport: str, answer: Answer, network: Network) -> HostDecision:
        """The person's answer to `review`'s question: HOLD keeps the pinned key (the sighting
        is set aside); VERIFY (or TRUST where offered) is answered through `answer`, exactly as
        a letter's question about that key is. PasteMismatch / TrustError as `answer` raises;
        TrustError when there is nothing to review. Returns the decision it answered."""
        pin = self.store.host(hostport)
        question = self.review(hostport, network)
        if pin is None or pin.changed is None or question is None:
            raise TrustError(f"{hostport} has no other key to decide about.")
        presented = pin.changed.presented
        decision = classify(pin, presented, network, self.policy, self.clock(), hostport=hostport)
        if answer.choice is Choice.HOLD:
            self.keep(hostport, network)
        elif answer.choice in question.choices:
            self.answer(decision.event, hostport, presented, network, answer)
        elif decision.event is HostEvent.CHANGED:
            raise TrustError(
                f"{hostport}'s key changed while the trusted one is still valid; it can only be "
                "replaced by pasting the new fingerprint"
            )
        else:
            raise TrustError(
                f"{answer.choice.value!r} does not decide about {hostport}'s other key; paste "
                "its fingerprint, accept it, or keep the key you trust"
            )
        return decision

    def keep(self, hostport: str, network: Network | None = None) -> bool:
        """The person reviewed a changed key and keeps the pinned one: the sighting is set
        aside, the pin untouched (letters still meet the question if the server presents the
        other key again, which is then recorded anew). False when none was recorded."""
        return self.store.keep_host(hostport, network)

    def admit(self, decision: HostDecision, network: Network) -> None:
        """Record a SEND verdict: pin a key the accept-new policy took, or refresh the pin."""
        if decision.verdict is not Verdict.SEND:
            raise TrustError(f"{decision.hostport}: nothing is sent without an approval")
        if decision.pinned is None or not decision.pinned.origin.approves:
            self.store.pin_host(decision.hostport, decision.presented, network, decision.origin)
        else:
            self.store.touch_host(decision.hostport, decision.presented, network)

    def answer(
        self,
        decision_event: HostEvent,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        answer: Answer,
        *,
        recipient: str = "",
    ) -> None:
        """A person's answer about a server key: TRUST pins it, VERIFY pins it if the paste
        matches, ONCE records a one-letter exception. A changed key is replaced only by VERIFY.

        When the answer replaced a key the person had approved, the mailboxes that key issued
        follow the new one (TrustStore.follow_issuer): the person now trusts the new key to
        speak for that host, so a mailbox certificate reported under it is an ordinary rotation
        under the same server, never an alarm against the key they replaced (a stolen one,
        perhaps). Mailboxes issued by any other key keep their alarm."""
        before = self.store.host(hostport)
        self._answer(decision_event, hostport, presented, network, answer, recipient=recipient)
        after = self.store.host(hostport)
        if (
            answer.choice in (Choice.TRUST, Choice.VERIFY)
            and before is not None
            and before.origin.approves
            and before.state is not HostState.REJECTED
            and after is not None
            and after.approved
            and after.spki == presented.spki != before.spki
        ):
            self.store.follow_issuer(hostport, before.spki, after.spki, network.id)

    def _answer(
        self,
        decision_event: HostEvent,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        answer: Answer,
        *,
        recipient: str = "",
    ) -> None:
        if answer.choice is Choice.TRUST:
            announced = self.announced_host_key(hostport, presented.spki, recipient)
            if decision_event is HostEvent.CHANGED and announced is not None:
                self.store.log(
                    "host",
                    hostport,
                    "accepted-announced",
                    f"changed key {presented.spki} accepted by you, as announced by "
                    f"{announced.address}'s notice of {announced.notice_at or announced.at}",
                    network.id,
                )
                self.store.pin_host(hostport, presented, network, Origin.APPROVED, replace=True)
            elif decision_event is HostEvent.CHANGED:
                raise TrustError(
                    f"{hostport}'s key changed while the trusted one is still valid; it can only "
                    "be replaced by pasting the new fingerprint"
                )
            else:
                renewal = decision_event is HostEvent.RENEWAL_LIKELY
                self.store.pin_host(hostport, presented, network, Origin.APPROVED, replace=renewal)
        elif answer.choice is Choice.VERIFY:
            if not answer.pasted.strip():
                raise TrustError("paste the fingerprint you were given to verify it")
            if not self.store.verify_host(hostport, answer.pasted, presented, network):
                raise PasteMismatch(
                    "the pasted fingerprint does not match the key the server presented "
                    f"({fingerprint.grouped(presented.fingerprint)}); nothing was changed and "
                    "nothing was sent"
                )
        elif answer.choice is Choice.ONCE:
            self.store.accept_once(hostport, presented, network)
        else:
            raise TrustError(f"{answer.choice.value!r} does not decide about a server key")

    def verify_pasted(self, hostport: str, pasted: str) -> bool:
        """The person pasted the fingerprint they were given for a pinned server (the trust
        manager, `trust verify`): a match verifies the pin, whatever its origin."""
        return self.store.verify_host(hostport, pasted)

    def names_pin(self, hostport: str, pasted: str) -> bool:
        """Does a paste name the key pinned for this server (approved or learned)? Writes
        nothing: `verify_pasted` records it."""
        pin = self.store.host(hostport)
        return pin is not None and (
            fingerprint.matches(pasted, pin.fingerprint) or fingerprint.matches(pasted, pin.spki)
        )

    def verify_presented(
        self, hostport: str, pasted: str, presented: PresentedCert, network: Network
    ) -> HostDecision:
        """A paste outside a letter's question (`trust verify`, the trust manager) for the key
        the server presents now: the decision that key raises, answered by this paste, exactly
        as a letter's question would be (`outbox retry ID --verify`). A match approves it: a
        changed key is replaced (the old one is logged as replaced), a first contact pinned.
        PasteMismatch when it names another key; then nothing changes. Returns the decision
        the paste answered (its event says what the paste settled)."""
        decision = self.decide(hostport, presented, network)
        if decision.verdict is Verdict.REFUSE:
            raise TrustError(decision.reason)
        self.answer(
            decision.event, hostport, presented, network, Answer(Choice.VERIFY, pasted=pasted)
        )
        return decision

    # -- verifying senders ---------------------------------------------------------------------

    def for_verifying(
        self, host: str, presented: PresentedCert, network: Network, *, by: str = ""
    ) -> VerifyRuling:
        """May the key `host` presented to a verification probe vouch for its senders?

        A rejected server cannot; a key other than the pinned one (approved or learned) cannot,
        until the person reviews it: that key is recorded as a sighting (saw), shown changed in
        Trust. No pin: usable, and learned once the sender checks out. `by`: what probed, in
        words ("verifying carol@b.test").
        """
        hostport = f"{host}:{PROBE_PORT}"
        pin = self.store.host(hostport)
        if pin is None:
            return VerifyRuling(True, learn=True)
        if pin.state is HostState.REJECTED:
            return VerifyRuling(
                False, f"you rejected the server {hostport}, so its senders cannot be verified"
            )
        if pin.spki != presented.spki:
            self.saw(hostport, presented, network, by=by or "verifying a sender")
            which = "you trust" if pin.origin.approves else "it showed before"
            return VerifyRuling(
                False,
                f"{hostport} presented a different key from the one {which} (since "
                f"{day(pin.first_seen)}); its senders cannot be verified until you review it "
                "in Trust",
            )
        return VerifyRuling(True)

    def vouched(
        self,
        host: str,
        presented: PresentedCert,
        network: Network,
        sender: str,
        ruling: VerifyRuling,
    ) -> None:
        """The sender checked out against this key: refresh its pin, or record it as learned."""
        hostport = f"{host}:{PROBE_PORT}"
        if ruling.learn:
            self.store.learn_host(hostport, presented, network, sender)
        else:
            self.store.saw_host(hostport, presented, network, sender)

    # -- key rotation: notices and retired fingerprints -------------------------------------------

    def revoked(self, address: str, fp: str) -> Revocation | None:
        """A retired or revoked fingerprint is never accepted again (ssh's @revoked)."""
        return self.store.revocation(address, fp)

    def notice(self, notice: Notice, sender: str, letter_fp: str, letter_id: int) -> NoticeRuling:
        """A key-change notice came with the certificate `letter_fp`: retire what it may.

        Only the pinned certificate can retire itself; the successor it names is never trusted
        from the notice (see trust/notices.py). Either way the history says what happened."""
        from misfin_tui.core.trust.notices import judge_notice

        host = sender.rpartition("@")[2]
        ruling = judge_notice(
            notice,
            sender,
            letter_fp,
            self.store.mailbox(sender),
            self.store.host(f"{host}:{PROBE_PORT}"),
            self.store.revocation(sender, notice.old),
        )
        if ruling.retire:
            self.store.revoke(
                sender,
                notice.old,
                notice.reason.value,
                announced=notice.new,
                announced_ca=notice.ca,
                notice_at=notice.at,
                letter_id=letter_id,
            )
        else:
            self.store.log("mailbox", sender.lower(), "notice-ignored", ruling.words)
        return ruling

    def announced_host_key(self, hostport: str, spki: str, recipient: str) -> Revocation | None:
        """A notice (signed with the pinned certificate of `recipient`) that announced this new
        server key for the recipient's host: evidence for the person, never a silent re-pin.

        Only the recipient's own notice counts: any other mailbox of that host (a co-tenant of
        a shared server) can sign a notice as well, and speaks for nobody else's server key. It
        counts for ANNOUNCED_FOR after it arrived."""
        host = hostport.rpartition(":")[0] or hostport
        address = recipient.strip().lower()
        if not address.endswith("@" + host.lower()):
            return None
        for revocation in self.store.revocations(address):
            received = parse_time(revocation.at)  # ours; the notice's own date is the sender's
            if (
                revocation.announced_ca == spki
                and revocation.letter_id is not None  # received, not one of our own rotations
                and received is not None
                and self.clock() - received <= ANNOUNCED_FOR
            ):
                return revocation
        return None

    def _with_notice(self, decision: HostDecision, recipient: str) -> HostDecision:
        """A changed server key that a notice announced: say so, and let the person accept it
        explicitly (Trust) as well as by paste. Still the person's decision."""
        if decision.event is not HostEvent.CHANGED:
            return decision
        announced = self.announced_host_key(decision.hostport, decision.presented.spki, recipient)
        if announced is None:
            return decision
        from dataclasses import replace

        reason = (
            decision.reason + f" Evidence: {announced.address} sent a key-change notice "
            f"({announced.why}) on {day(announced.notice_at or announced.at)}, signed with the "
            "certificate you had pinned, announcing exactly this new server key. A thief of that "
            "certificate could have sent it too: accept it only if you expected it."
        )
        return replace(decision, reason=reason, choices=(Choice.VERIFY, Choice.TRUST, Choice.HOLD))
