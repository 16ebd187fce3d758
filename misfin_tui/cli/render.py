"""The one place that turns core results into what a command prints: text or --json.

Everything that came from the network (a server's META, a subject, a blurb, a certificate
field, a reason quoting a server) passes through `core.text` before it reaches a terminal, so
no escape sequence, backspace or bidi control is ever written raw.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from misfin_tui.cli.common import command
from misfin_tui.core import fingerprint
from misfin_tui.core.network import Network
from misfin_tui.core.outbox.model import OutboxItem, State, summarise
from misfin_tui.core.text import one_line, visible
from misfin_tui.core.trust.model import (
    Choice,
    HostPin,
    MailboxPin,
    Question,
    Revocation,
)

if TYPE_CHECKING:
    from misfin_tui.core.revalidate import Check
    from misfin_tui.core.rotation import Rotation


def safe(text: str) -> str:
    """One line of untrusted text, control characters shown, not executed."""
    return one_line(text)


def safe_block(text: str) -> str:
    """Several lines of untrusted text (a letter's body), line breaks kept."""
    return visible(text, newlines=True)


def print_json(value: Any, out: TextIO | None = None) -> None:
    """JSON with every non-ASCII character escaped: no control character reaches a terminal."""
    print(json.dumps(value, indent=2, ensure_ascii=True), file=out or sys.stdout)


def question_json(question: Question) -> dict[str, Any]:
    data = question.to_json()
    if data.get("presented"):
        data["presented"] = {k: v for k, v in data["presented"].items() if k != "der"}
    return data


def item_json(item: OutboxItem) -> dict[str, Any]:
    question = item.question
    return {
        "id": item.id,
        "letter_id": item.letter_id,
        "recipient": item.recipient,
        "identity": item.identity,
        "subject": item.subject,
        "state": item.state.value,
        "reason": item.reason,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
        "hops": item.hops,
        "fingerprint": item.fingerprint,
        "choices": [c.value for c in item.choices],
        "question": None if question is None else question_json(question),
        "mailbox_event": item.evidence.mailbox_event.value if item.evidence.mailbox_event else None,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def fingerprint_lines(question: Question) -> list[str]:
    """The keys a question is about, grouped for reading, each named the same way everywhere."""
    lines: list[str] = []
    grouped = fingerprint.grouped
    if question.pinned is not None:
        lines.append(f"Trusted fingerprint (SHA-256):   {grouped(question.pinned.fingerprint)}")
        if question.pinned.not_after:
            lines.append(f"  valid until {question.pinned.not_after}")
    if question.reported:
        lines.append(f"Reported fingerprint (SHA-256):  {grouped(question.reported)}")
    if question.presented is not None:
        lines.append(f"Presented fingerprint (SHA-256): {grouped(question.presented.fingerprint)}")
        lines.append(f"  valid until {question.presented.not_after}")
    return lines


def explain(question: Question, out: TextIO) -> None:
    """A question as the terminal shows it before the choices."""
    print(f"\n{safe(question.recipient)} ({question.host})", file=out)
    print(f"  {safe(question.reason)}", file=out)
    if question.vouch is not None:
        print(f"  {safe(question.vouch.words)}", file=out)
    if question.target:
        print(f"  New address: {safe(question.target)}", file=out)
    for line in fingerprint_lines(question):
        print(f"  {line}", file=out)
    network = question.network
    if network.label:
        print(f"  Network: {safe(network.words)}", file=out)
        if network.hints:
            print(f"    {safe(network.hints)}", file=out)
        if network.caution:
            print(f"  Careful: {safe(network.caution)}", file=out)


def report(items: Sequence[OutboxItem], out: TextIO | None = None) -> int:
    """One line per recipient (and the next step for a waiting one); returns the exit code."""
    out = out or sys.stdout
    for item in items:
        line = f"{safe(item.recipient)}: {item.state.value}"
        if item.reason:
            line += f" - {safe(item.reason)}"
        print(line, file=out)
        for next_line in next_steps(item, drop=True):
            print(f"  {next_line}", file=out)
    return summarise(items)


def next_steps(item: OutboxItem, *, drop: bool = False) -> list[str]:
    """What a waiting item needs next, for `send`'s report and `outbox list` alike: the key in
    question and the commands that decide (on a terminal, or by a fingerprint one was given)."""
    question = item.question
    if question is None:
        return (
            [f"to try now: {command(f'outbox retry {item.id}')}"]
            if item.state is State.DEFERRED
            else []
        )
    lines = fingerprint_lines(question)
    also = f"   (or drop it: {command(f'outbox drop {item.id}')})" if drop else ""
    lines.append(f"to decide: {command(f'outbox retry {item.id}')}{also}")
    if Choice.VERIFY in question.choices:
        lines.append(
            "or, given its fingerprint: " + command(f"outbox retry {item.id} --verify FINGERPRINT")
        )
    return lines


def outbox_lines(items: Sequence[OutboxItem], width: int | None = None) -> list[str]:
    """The outbox for a person: one row an item, its reason wrapped to the terminal below."""
    import shutil
    import textwrap

    width = width or shutil.get_terminal_size().columns
    lines: list[str] = []
    for item in items:
        subject = f" “{safe(item.subject)}”" if item.subject else ""
        lines.append(f"{item.id:>5}  {item.state.value:<10}  {safe(item.recipient)}{subject}")
        if item.reason:
            lines.extend(
                textwrap.wrap(
                    safe(item.reason),
                    max(width, 40),
                    initial_indent=" " * 7,
                    subsequent_indent=" " * 7,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        lines.extend(f"       {line}" for line in next_steps(item))
    return lines


def host_json(pin: HostPin) -> dict[str, Any]:
    return {
        "kind": "host",
        "name": pin.hostport,
        "fingerprint": pin.fingerprint,
        "spki": pin.spki,
        "state": pin.state.value,
        "origin": pin.origin.value,
        "origin_network": pin.origin_network,
        "vouched_for": pin.vouch.sender if pin.vouch else None,
        "not_after": pin.not_after,
        "protocol": pin.protocol,
        "first_seen": pin.first_seen,
        "first_network": pin.first_network,
        "last_seen": pin.last_seen,
        "last_network": pin.last_network,
        "changed": None if pin.changed is None else sighting_json(pin),
    }


def sighting_json(pin: HostPin) -> dict[str, Any]:
    """Another key the server presented than its pin: evidence, never approval."""
    assert pin.changed is not None
    seen = pin.changed
    return {
        "fingerprint": seen.presented.fingerprint,
        "spki": seen.presented.spki,
        "not_after": seen.presented.not_after,
        "seen_at": seen.at,
        "seen_by": seen.by,
        "network": seen.network,
        "network_label": seen.network_label,
    }


def host_state(entry: dict[str, Any]) -> str:
    """A server's state as `trust list` and `trust show` print it: "changed" while a key
    other than the pinned one was seen and the person has not decided (the pin is unchanged)."""
    if entry.get("changed") and entry["state"] != "rejected":
        return "changed"
    return str(entry["state"])


def mailbox_json(pin: MailboxPin, blocked: str | None) -> dict[str, Any]:
    return {
        "kind": "mailbox",
        "name": pin.address,
        "fingerprint": pin.fingerprint,
        "issuer_spki": pin.issuer_spki,
        "state": pin.state.value,
        "origin": pin.origin.value,
        "nickname": pin.nickname,
        "blurb": pin.blurb,
        "first_seen": pin.first_seen,
        "last_seen": pin.last_seen,
        "verified_at": pin.verified_at,
        "alarm_fingerprint": pin.alarm_fingerprint,
        "blocked": blocked,
    }


def network_json(network: Network, current_id: str = "") -> dict[str, Any]:
    return {
        "id": network.id,
        "label": network.label,
        "trusted": network.trusted,
        "strength": network.strength,
        "hints": network.hints,
        "portal": network.portal,
        "signals": [{"kind": h.kind.value, "value": h.value} for h in network.signals.hints],
        "current": network.id == current_id,
    }


def rotation_lines(rotation: Rotation) -> list[str]:
    """What `identity rotate` did, before the notices' delivery report."""
    lines: list[str] = []
    grouped = fingerprint.grouped
    for item in rotation.rotated:
        lines.append(f"Rotated {safe(str(item.new.address))} ({item.notice.reason.words}).")
        lines.append(f"  retired fingerprint (SHA-256) {grouped(item.old.fingerprint)}")
        lines.append(f"  new fingerprint (SHA-256)     {grouped(item.new.fingerprint)}")
        if item.notice.ca:  # the fingerprint correspondents are shown first, then its key pin
            if item.new.issuer_fingerprint:
                ca = grouped(item.new.issuer_fingerprint)
                lines.append(f"  new host CA fingerprint (SHA-256, what others are shown) {ca}")
            lines.append(
                f"  new host CA key pin (SPKI; a paste of either works) {grouped(item.notice.ca)}"
            )
        lines.append(f"  the retired certificate is kept in {item.old.cert_path.parent}")
    if rotation.recipients:
        count = len(rotation.recipients)
        lines.append(
            f"Sending a notice, signed with the old certificate, to {count} past "
            f"contact{'s' if count != 1 else ''}:"
        )
    else:
        lines.append("No past contacts to tell: no notice is sent.")
    return lines


def rotation_json(rotation: Rotation, items: Sequence[OutboxItem]) -> dict[str, Any]:
    return {
        "rotated": [
            {
                "address": str(item.new.address),
                "reason": item.notice.reason.value,
                "old_fingerprint": item.old.fingerprint,
                "new_fingerprint": item.new.fingerprint,
                "new_host_ca_spki": item.notice.ca or None,
                "notice": item.notice.line(),
            }
            for item in rotation.rotated
        ],
        "notices": [item_json(item) for item in items],
        "exit_code": summarise(items),
    }


def check_json(check: Check) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "name": check.name,
        "result": check.result.value,
        "detail": check.detail,
        "expected": check.expected,
        "seen": check.seen,
    }


def check_lines(checks: Sequence[Check]) -> list[str]:
    """One line per re-validated entry: still matches, changed, gone or unreachable."""
    if not checks:
        return ["Nothing to re-validate: no approved server and no verified sender yet."]
    words = {"match": "still matches", "changed": "CHANGED", "gone": "gone", "unreachable": "?"}
    return [
        f"{check.kind:<8} {safe(check.name)}: {words[check.result.value]} - {safe(check.detail)}"
        for check in checks
    ]


def revocation_json(revocation: Revocation) -> dict[str, Any]:
    return {
        "fingerprint": revocation.fingerprint,
        "at": revocation.at,
        "why": revocation.why,
        "announced": revocation.announced,
        "announced_ca": revocation.announced_ca,
        "notice_at": revocation.notice_at,
        "letter_id": revocation.letter_id,
    }
