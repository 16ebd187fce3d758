"""What a received key-change notice may change: the rules of the seed's procedure, pure.

A notice is believed only as far as the certificate it came with: a letter signed with the
mailbox certificate we pinned may *retire* that certificate (like ssh's @revoked, for good),
because whoever holds it, owner or thief, may at least say it is no longer to be trusted. It
never installs the successor it names: a thief holding the old certificate could name their own
key. The successor is accepted later, the usual way: a letter comes with it, it chains to the
pinned host CA and the sender's home server vouches for it by blank request.
"""

from __future__ import annotations

from dataclasses import dataclass

from misfin_tui.core import fingerprint
from misfin_tui.core.identity import is_signed_by
from misfin_tui.core.notice import Notice
from misfin_tui.core.trust.model import HostPin, MailboxPin, MailboxState, Revocation


@dataclass(frozen=True)
class NoticeRuling:
    """The verdict on one notice: whether the old fingerprint is retired, and why in words."""

    retire: bool
    words: str  # what the person sees on the letter and in the history
    successor_checked: bool = False  # the named certificate chains to the pinned host CA


def judge_notice(
    notice: Notice,
    sender: str,
    letter_fp: str,
    pin: MailboxPin | None,
    host_pin: HostPin | None,
    revoked: Revocation | None,
) -> NoticeRuling:
    """Decide about one notice that came with the certificate `letter_fp` from `sender`."""
    short = fingerprint.short
    sender = sender.lower()

    def ignored(why: str) -> NoticeRuling:
        return NoticeRuling(False, f"It carries a key-change notice, which was ignored: {why}.")

    if notice.address != sender:
        return ignored(f"it speaks for {notice.address}, but the letter comes from {sender}")
    if notice.old != letter_fp:
        return ignored(
            f"it retires the certificate {short(notice.old)}, but it was not signed with that "
            f"certificate (it came with {short(letter_fp)})"
        )
    if revoked is not None:
        return ignored(
            f"the certificate {short(notice.old)} was already retired on {revoked.at[:10]}; "
            "this is an old notice sent again"
        )
    if pin is None:
        return ignored(
            f"you have no certificate of {sender} pinned, so there is nothing it could retire, "
            "and the certificate it names is not trusted because of it"
        )
    if pin.state is MailboxState.REJECTED:
        return ignored(f"you rejected {sender}")
    if pin.fingerprint != notice.old:  # naming the pinned one as the new proves nothing
        return ignored(
            f"it retires {short(notice.old)}, a certificate you never pinned for {sender} "
            f"(you know {short(pin.fingerprint)})"
        )
    words = (
        f"Key-change notice from {sender} ({notice.reason.words}), signed with the certificate "
        f"you had pinned: {short(notice.old)} is retired and never accepted again. The new "
        f"certificate it names ({short(notice.new)}) is trusted only once a letter comes with "
        f"it, it chains to {sender.partition('@')[2]}'s server key and that server confirms it."
    )
    if notice.ca:
        words += (
            f" It says the server key changed as well (new key {short(notice.ca)}): you will "
            "see it as a changed server key and decide, with this notice as evidence."
        )
        return NoticeRuling(True, words)
    if notice.cert and host_pin is not None and host_pin.cert_der:
        try:
            chained = is_signed_by(notice.cert, host_pin.cert_der)
        except Exception:  # an unreadable certificate chains to nothing
            chained = False
        if not chained:
            words += (
                " Careful: the new certificate it names is NOT signed by the server key you "
                "know, so it will not be accepted without your decision."
            )
        return NoticeRuling(True, words, successor_checked=chained)
    return NoticeRuling(True, words)
