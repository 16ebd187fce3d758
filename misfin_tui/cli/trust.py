"""`misfin-tui trust list|show|verify|keep|forget|reject`: the servers and mailboxes you trust."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from misfin_tui.cli import render
from misfin_tui.cli.common import (
    EXIT_DEFERRED,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_WAITING,
    Context,
    EpilogFormatter,
    UsageError,
    say_error,
)
from misfin_tui.core import fingerprint
from misfin_tui.core.address import DEFAULT_PORT, Address, AddressError, parse_hostport
from misfin_tui.core.trust.model import TrustError
from misfin_tui.core.trust.store import TrustStore


def register(subparsers: Any) -> None:
    trust = subparsers.add_parser(
        "trust",
        help="servers and mailboxes you trust",
        description="The trust store: server keys (host:port) and mailbox fingerprints.",
    )
    actions = trust.add_subparsers(
        title="actions", metavar="ACTION", dest="trust_action", required=True
    )
    tl = actions.add_parser("list", help="list pinned servers and mailboxes")
    tl.add_argument("--json", action="store_true", help="print JSON")
    tl.set_defaults(func=cmd_trust_list)
    for name, helptext, func in (
        ("show", "show one server or mailbox and its history", cmd_trust_show),
        ("forget", "forget a server or mailbox (the next contact is a first contact)", None),
        ("reject", "never send to this server or mailbox again", None),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("name", metavar="NAME", help="host, host:port or mailbox@host")
        action.add_argument("--json", action="store_true", help="print JSON")
        action.set_defaults(func=func or cmd_trust_change, trust_change=name)
    keep = actions.add_parser(
        "keep",
        help="keep the pinned key of a server that was seen with another",
        description="A server presented another key than the one you trust (a letter, a sync, a"
        " sender's check or a re-validation saw it; `trust list` says changed). Keep the key"
        " you trust: the other one is set aside, as the history records, and nothing is"
        " trusted. Letters to a server that presents it again still wait for your decision.",
    )
    keep.add_argument("name", metavar="NAME", help="host or host:port")
    keep.add_argument("--json", action="store_true", help="print JSON")
    keep.set_defaults(func=cmd_trust_keep)
    reval = actions.add_parser(
        "revalidate",
        help="check pinned servers and verified senders again, now",
        description="Probe every approved server and ask every verified sender's server again;"
        " say for each whether it still matches or changed. Nothing is re-pinned: a changed"
        " server key is an alarm at the next letter. Exit 0: all match; 3: something changed"
        " or is gone; 4: something could not be reached.",
    )
    reval.add_argument("--json", action="store_true", help="print JSON")
    reval.set_defaults(func=cmd_trust_revalidate)
    verify = actions.add_parser(
        "verify",
        help="verify by pasting the expected fingerprint",
        description="Paste the fingerprint you were given (by the operator or the owner, by"
        " another channel). For a server whose key changed, the key it presents now is fetched:"
        " when the paste names it, it replaces the old one. Letters held on the server or"
        " mailbox it settles are queued again; they go out with the app or `outbox retry ID`.",
        epilog=VERIFY_EPILOG,
        formatter_class=EpilogFormatter,
    )
    verify.add_argument("name", metavar="NAME", help="host, host:port or mailbox@host")
    verify.add_argument("fingerprint", metavar="FINGERPRINT", help="any case, spaces or colons")
    verify.add_argument(
        "--connect", metavar="HOST:PORT", help="connect here instead (the server name stays)"
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(func=cmd_trust_verify)


VERIFY_EPILOG = """\
exit codes:
  0  verified (or the server's new key approved)
  5  the fingerprint does not match: nothing was changed
  4  the server could not be asked for the key it presents: nothing was changed
  2  usage error (not a fingerprint, not a name, unknown or rejected)
"""


def _trust_name(name: str) -> tuple[str, str]:
    """("host", "host:port") or ("mailbox", "m@host") from what a person typed."""
    name = name.strip()
    if "@" in name:
        try:
            return "mailbox", Address.parse(name).key
        except AddressError as exc:
            raise UsageError(f"{render.safe(name)!r} is not an address: {exc}") from None
    host, _, port = name.rpartition(":") if ":" in name else (name, "", str(DEFAULT_PORT))
    if not host or not port.isdigit():
        raise UsageError(f"{render.safe(name)!r} is neither host[:port] nor mailbox@host")
    return "host", f"{host.lower()}:{int(port)}"


def _entries(trust: TrustStore) -> list[dict[str, Any]]:
    hosts = [render.host_json(pin) for pin in trust.hosts()]
    boxes = [render.mailbox_json(pin, trust.blocked(pin.address)) for pin in trust.mailboxes()]
    return hosts + boxes


def _entry(trust: TrustStore, name: str) -> dict[str, Any] | None:
    kind, key = _trust_name(name)
    if kind == "host":
        host = trust.host(key)
        return None if host is None else render.host_json(host)
    box = trust.mailbox(key)
    return None if box is None else render.mailbox_json(box, trust.blocked(box.address))


def cmd_trust_list(args: argparse.Namespace, ctx: Context) -> int:
    entries = _entries(ctx.engine.trust)
    if args.json:
        render.print_json(entries)
        return EXIT_OK
    if not entries:
        print("Nothing trusted yet.")
    for entry in entries:
        origin = f" ({entry['origin']})" if entry.get("origin") == "learned" else ""
        state = render.host_state(entry) if entry["kind"] == "host" else entry["state"]
        print(f"{entry['kind']:<8} {state:<9} {render.safe(entry['name'])}{origin}")
        print(f"         fingerprint (SHA-256) {fingerprint.grouped(entry['fingerprint'])}")
        print(f"         first seen {entry['first_seen']}, last seen {entry['last_seen']}")
        for line in _changed_lines(entry):
            print(f"         {line}")
    return EXIT_OK


def _changed_lines(entry: dict[str, Any]) -> list[str]:
    """What a server showed instead of its pin, and how the person decides (nothing changed)."""
    seen = entry.get("changed") if entry["kind"] == "host" else None
    if not seen:
        return []
    name = render.safe(entry["name"])
    return [
        f"presented another key (SHA-256) {fingerprint.grouped(seen['fingerprint'])}",
        f"seen {seen['seen_at']} while {render.safe(seen['seen_by'])}"
        + (f" on {render.safe(seen['network_label'])}" if seen.get("network_label") else "")
        + "; not trusted, the pinned key stays and letters to it wait for your decision",
        f"review: `trust verify {name} FINGERPRINT` replaces it only when your paste names it;"
        f" `trust keep {name}` keeps the pinned key",
    ]


def cmd_trust_show(args: argparse.Namespace, ctx: Context) -> int:
    trust = ctx.engine.trust
    entry = _entry(trust, args.name)
    if entry is None:
        say_error(f"{render.safe(args.name)} is not in the trust store")
        return EXIT_NOT_FOUND
    history = trust.history(subject=entry["name"])
    retired = trust.revocations(entry["name"]) if entry["kind"] == "mailbox" else []
    if args.json:
        render.print_json(
            {
                **entry,
                "retired": [render.revocation_json(r) for r in retired],
                "history": [vars(h) for h in history],
            }
        )
        return EXIT_OK
    state = render.host_state(entry) if entry["kind"] == "host" else entry["state"]
    print(f"{entry['kind']} {render.safe(entry['name'])}: {state}")
    print(f"  fingerprint (SHA-256):      {fingerprint.grouped(entry['fingerprint'])}")
    for line in _changed_lines(entry):
        print(f"  {line}")
    if entry.get("spki"):
        print(f"  key pin (SHA-256):          {fingerprint.grouped(entry['spki'])}")
    if entry.get("issuer_spki"):
        print(f"  issued by key pin (SHA-256): {fingerprint.grouped(entry['issuer_spki'])}")
    for key in ("origin", "not_after", "protocol", "nickname", "verified_at", "blocked"):
        if entry.get(key):
            print(f"  {key.replace('_', ' ')}: {render.safe(str(entry[key]))}")
    print(f"  first seen {entry['first_seen']}, last seen {entry['last_seen']}")
    for r in retired:
        print(f"  retired fingerprint (never accepted again): {fingerprint.grouped(r.fingerprint)}")
        print(f"    on {r.at} ({render.safe(r.why)})")
    for h in history:
        print(f"  {h.at}  {h.event}  {render.safe(h.detail)}")
    return EXIT_OK


def cmd_trust_revalidate(args: argparse.Namespace, ctx: Context) -> int:
    import asyncio

    from misfin_tui.core.revalidate import Result

    checks = asyncio.run(ctx.engine.revalidate())
    if args.json:
        render.print_json([render.check_json(check) for check in checks])
    else:
        for line in render.check_lines(checks):
            print(line)
    results = {check.result for check in checks}
    if results & {Result.CHANGED, Result.GONE}:
        return EXIT_WAITING
    return EXIT_DEFERRED if Result.UNREACHABLE in results else EXIT_OK


def cmd_trust_verify(args: argparse.Namespace, ctx: Context) -> int:
    import asyncio

    from misfin_tui.core.revalidate import Pasted

    kind, key = _trust_name(args.name)
    if args.connect:
        try:
            parse_hostport(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect: {exc}") from None
    engine = ctx.engine
    try:
        if kind == "host":
            check = asyncio.run(engine.verify_server(key, args.fingerprint, connect=args.connect))
        else:
            check = engine.verify_mailbox(key, args.fingerprint)
    except TrustError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        render.print_json(
            {
                "kind": kind,
                "name": key,
                "verified": check.ok,
                "result": check.result.value,
                "detail": check.detail,
                "presented": check.presented,
                "released": check.released,
            }
        )
    elif check.ok:
        print(f"{key}: {check.result.value} - {render.safe(check.detail)}.")
    else:
        print(f"{key}: {render.safe(check.detail)}.", file=sys.stderr)
    if check.ok:
        return EXIT_OK
    return EXIT_DEFERRED if check.result is Pasted.UNREACHABLE else EXIT_FAILED


def cmd_trust_keep(args: argparse.Namespace, ctx: Context) -> int:
    kind, key = _trust_name(args.name)
    if kind != "host":
        raise UsageError(f"{render.safe(args.name)} is a mailbox; keep is for a server's key")
    engine = ctx.engine
    kept = engine.policy.keep(key, engine.networks.current())
    if args.json:
        render.print_json({"kind": kind, "name": key, "kept": kept})
    elif kept:
        print(f"{key}: kept the key you trust; the other key it presented is not trusted.")
    else:
        print(f"{key} has no other key seen to decide about.", file=sys.stderr)
    return EXIT_OK if kept else EXIT_NOT_FOUND


def cmd_trust_change(args: argparse.Namespace, ctx: Context) -> int:
    kind, key = _trust_name(args.name)
    trust = ctx.engine.trust
    action = args.trust_change
    try:
        if action == "forget":
            done = trust.forget_host(key) if kind == "host" else trust.forget_mailbox(key)
        elif kind == "host":
            trust.reject_host(key)
            done = True
        else:
            trust.reject_mailbox(key)
            done = True
    except TrustError as exc:
        raise UsageError(str(exc)) from None
    word = {"forget": "forgotten", "reject": "rejected"}[action]
    if args.json:
        render.print_json({"kind": kind, "name": key, action: done})
    elif done:
        print(f"{key}: {word}.")
    else:
        say_error(f"{render.safe(key)} is not in the trust store")
    return EXIT_OK if done else EXIT_NOT_FOUND
