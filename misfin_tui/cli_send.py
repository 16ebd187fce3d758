"""`misfin-tui send`, `outbox`, `trust` and `network`: sending and its trust decisions, headless.

Never imports textual. A decision the core needs (first contact, changed key, redirect) is asked
on the terminal when there is one and --no-input is not given; otherwise the letter waits in the
outbox and the exit code says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from misfin_tui.cli import EXIT_OK, UsageError
from misfin_tui.core.profile import Profile

EXIT_WAITING = 3  # held for a decision or a trusted network
EXIT_DEFERRED = 4
EXIT_FAILED = 5
EXIT_NOT_FOUND = 1

SEND_EPILOG = """\
exit codes:
  0  delivered to every recipient
  3  held: waiting for your decision or for a trusted network (see `misfin-tui outbox list`)
  4  deferred: a temporary failure; it will be retried (`misfin-tui outbox retry ID`)
  5  failed: the server refused it for good (the reason is printed)
  2  usage error (bad address, letter too big, bad option)
  1  could not run (configuration, identity, database)
"""

CHOICE_KEYS = {
    "trust": ("t", "trust this server and send"),
    "once": ("o", "send this letter once, without remembering the key"),
    "verify": ("v", "verify by pasting the fingerprint you were given"),
    "hold": ("h", "hold: keep the letter in the outbox"),
    "follow": ("f", "follow the redirect"),
    "drop": ("d", "drop this recipient"),
}


def register(subparsers: Any) -> None:
    send = subparsers.add_parser(
        "send",
        help="send a letter (body from stdin or --body-file)",
        description="Send a letter straight to each recipient's server. The letter is kept in"
        " the outbox until the server confirms it with a 20.",
        epilog=SEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDR[,ADDR...]",
        help="recipient address(es), mailbox@host[:port]; repeat or separate with commas",
    )
    send.add_argument("--subject", default="", help='subject, sent as a "# " heading line')
    send.add_argument("--from", dest="sender", metavar="ADDRESS", help="which identity sends")
    send.add_argument(
        "--connect",
        metavar="HOST:PORT",
        default="",
        help="connect there instead of the recipient's host, for this send only",
    )
    send.add_argument(
        "--trust-new",
        action="store_true",
        help="consent in advance to servers never seen before (never to a changed key, and"
        " not on an untrusted network)",
    )
    send.add_argument(
        "--no-input", action="store_true", help="never ask; a needed decision leaves it held"
    )
    send.add_argument("--body-file", type=Path, metavar="FILE", help="read the body from FILE")
    send.set_defaults(func=cmd_send)

    outbox = subparsers.add_parser(
        "outbox", help="list, retry or drop queued letters", description="The outbox."
    )
    actions = outbox.add_subparsers(
        title="actions", metavar="ACTION", dest="outbox_action", required=True
    )
    lst = actions.add_parser("list", help="list outbox items with their state and reason")
    lst.add_argument("--all", action="store_true", help="include delivered items")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_outbox_list)
    retry = actions.add_parser("retry", help="try an item again now")
    retry.add_argument("id", type=int, metavar="ID")
    retry.add_argument("--no-input", action="store_true", help="never ask")
    retry.add_argument("--json", action="store_true", help="print JSON")
    retry.set_defaults(func=cmd_outbox_retry)
    drop = actions.add_parser("drop", help="give up on an item")
    drop.add_argument("id", type=int, metavar="ID")
    drop.add_argument("--json", action="store_true", help="print JSON")
    drop.set_defaults(func=cmd_outbox_drop)

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
    verify = actions.add_parser("verify", help="verify by pasting the expected fingerprint")
    verify.add_argument("name", metavar="NAME", help="host, host:port or mailbox@host")
    verify.add_argument("fingerprint", metavar="FINGERPRINT", help="any case, spaces or colons")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(func=cmd_trust_verify)

    network = subparsers.add_parser(
        "network",
        help="the network you are on, and which networks you trust",
        description="First contacts with new servers only go out on networks you trust.",
    )
    actions = network.add_subparsers(
        title="actions", metavar="ACTION", dest="network_action", required=True
    )
    ns = actions.add_parser("status", help="the current network and the known ones")
    ns.add_argument("--json", action="store_true", help="print JSON")
    ns.set_defaults(func=cmd_network_status)
    nt = actions.add_parser(
        "trust", help="mark the current network trusted (held letters are sent on)"
    )
    nt.add_argument("label", nargs="?", default="", metavar="LABEL", help='e.g. "Home"')
    nt.add_argument("--no-input", action="store_true", help="never ask")
    nt.add_argument("--json", action="store_true", help="print JSON")
    nt.set_defaults(func=cmd_network_trust)
    nu = actions.add_parser("untrust", help="stop trusting the current network")
    nu.add_argument("--json", action="store_true", help="print JSON")
    nu.set_defaults(func=cmd_network_untrust)


# -- send -----------------------------------------------------------------------------------------


def _recipients(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _read_body(args: argparse.Namespace) -> str:
    if args.body_file is not None:
        try:
            return args.body_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{args.body_file} is not UTF-8 text") from None
    if sys.stdin.isatty():
        print("Type the letter; end it with Ctrl-D on a line of its own.", file=sys.stderr)
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("the body on standard input is not UTF-8 text") from None


def cmd_send(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.address import AddressError, parse_hostport
    from misfin_tui.core.outbox import Outbox
    from misfin_tui.core.wire import ProtocolError

    recipients = _recipients(args.to)
    if not recipients:
        raise UsageError("--to needs at least one address")
    if args.connect:
        try:
            parse_hostport(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect: {exc}") from None
    body = _read_body(args)
    outbox = Outbox(profile)
    try:
        letter = outbox.enqueue(
            body,
            recipients,
            identity=args.sender,
            subject=args.subject,
            connect=args.connect,
        )
    except AddressError as exc:
        raise UsageError(f"bad recipient: {exc}") from None
    except ProtocolError as exc:
        raise UsageError(f"the letter cannot be sent: {exc.message}; split it") from None
    ids = [item.id for item in outbox.items(letter)]
    policy = "accept-new" if args.trust_new else None
    items = asyncio.run(outbox.process(ids, policy=policy))
    terminal = None if args.no_input else _terminal()
    if terminal is not None:
        items = _ask(outbox, items, terminal, policy)
    return _report(items)


def _report(items: Sequence[Any]) -> int:
    from misfin_tui.core.outbox import summarise

    for item in items:
        line = f"{item.recipient}: {item.state}"
        if item.reason:
            line += f" - {item.reason}"
        print(line)
        if item.state in ("decision", "held", "redirected"):
            print(f"  outbox item {item.id}: see `misfin-tui outbox list`")
    kept = [item for item in items if item.state != "dropped"]
    code = summarise(kept)
    return EXIT_FAILED if code == EXIT_OK and len(kept) < len(items) else code


def _terminal() -> tuple[TextIO, TextIO] | None:
    """The controlling terminal for questions (stdin may carry the body), or None."""
    try:
        tty_in = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 (closed at exit)
    except OSError:
        return None
    if not tty_in.isatty():
        tty_in.close()
        return None
    return tty_in, sys.stderr


def _ask(outbox: Any, items: list[Any], terminal: tuple[TextIO, TextIO], policy: str | None):
    """Ask about every waiting item until it is sent, held or dropped."""
    from misfin_tui.core.outbox import OutboxError

    tty_in, out = terminal
    final = {item.id: item for item in items}
    for item in items:
        current = item
        while current.state in ("decision", "held", "redirected"):
            _explain(current, out)
            choice, pasted = _prompt(current, tty_in, out)
            if choice is None or choice == "hold":
                if current.state != "held":
                    current = outbox.decide(current.id, "hold")
                break
            try:
                current = outbox.decide(current.id, choice, pasted)
            except OutboxError as exc:
                print(f"  {exc}", file=out)
                continue
            if choice == "drop":
                current = _dropped(current)
                break
            [current] = asyncio.run(outbox.process([current.id], policy=policy)) or [current]
        final[item.id] = current
    return list(final.values())


def _dropped(item: Any) -> Any:
    import dataclasses

    return dataclasses.replace(item, state="dropped", reason="dropped by you")


def _explain(item: Any, out: TextIO) -> None:
    evidence = item.evidence
    print(f"\n{item.recipient} ({item.state})", file=out)
    print(f"  {item.reason}", file=out)
    presented = evidence.get("presented")
    pinned = evidence.get("pinned")
    if pinned and pinned.get("fingerprint_grouped"):
        print(f"  Trusted key (SHA-256):  {pinned['fingerprint_grouped']}", file=out)
        if pinned.get("not_after"):
            print(f"    valid until {pinned['not_after']}", file=out)
    reported = evidence.get("reported")
    if reported:
        print(f"  Reported key (SHA-256): {reported['fingerprint_grouped']}", file=out)
    if presented:
        print(f"  Server key (SHA-256):   {presented['fingerprint_grouped']}", file=out)
        print(f"    valid until {presented['not_after']}", file=out)
    network = evidence.get("network")
    if network:
        trusted = "trusted" if network["trusted"] else "not trusted"
        print(f"  Network: {network['label']} ({trusted})", file=out)
    if "verify" in item.choices:
        print(
            "  If you were given a fingerprint, choose v and paste it; it is compared for you.",
            file=out,
        )


def _prompt(item: Any, tty_in: TextIO, out: TextIO) -> tuple[str | None, str]:
    choices = [c for c in item.choices if c in CHOICE_KEYS]
    default = item.evidence.get("default") or "hold"
    for choice in choices:
        key, words = CHOICE_KEYS[choice]
        mark = " (default)" if choice == default else ""
        print(f"  [{key}] {words}{mark}", file=out)
    keys = {CHOICE_KEYS[c][0]: c for c in choices}
    while True:
        print("  Your choice: ", end="", file=out, flush=True)
        line = tty_in.readline()
        if not line:
            return None, ""
        answer = line.strip().lower() or CHOICE_KEYS.get(default, ("h",))[0]
        choice = keys.get(answer[:1])
        if choice is None:
            continue
        pasted = ""
        if choice == "verify":
            print("  Paste the fingerprint: ", end="", file=out, flush=True)
            pasted = tty_in.readline().strip()
        return choice, pasted


# -- outbox ---------------------------------------------------------------------------------------


def _item_dict(item: Any) -> dict[str, Any]:
    evidence = {k: v for k, v in item.evidence.items() if k != "presented"}
    presented = item.evidence.get("presented")
    if presented:
        evidence["presented"] = {k: v for k, v in presented.items() if k != "der"}
    return {
        "id": item.id,
        "letter_id": item.letter_id,
        "recipient": item.recipient,
        "identity": item.identity,
        "subject": item.subject,
        "state": item.state,
        "reason": item.reason,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at,
        "hops": item.hops,
        "fingerprint": item.fingerprint,
        "choices": list(item.choices),
        "evidence": evidence,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_outbox_list(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.outbox import Outbox

    outbox = Outbox(profile)
    items = [i for i in outbox.items() if args.all or i.state != "delivered"]
    if args.json:
        _print_json([_item_dict(i) for i in items])
        return EXIT_OK
    if not items:
        print("The outbox is empty.")
    for item in items:
        subject = f" “{item.subject}”" if item.subject else ""
        print(f"{item.id:>5}  {item.state:<10}  {item.recipient}{subject}")
        if item.reason:
            print(f"       {item.reason}")
    return EXIT_OK


def _outbox_item(outbox: Any, item_id: int) -> Any:
    from misfin_tui.core.outbox import OutboxError

    try:
        return outbox.item(item_id)
    except OutboxError as exc:
        raise UsageError(str(exc)) from None


def cmd_outbox_retry(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.outbox import Outbox, OutboxError

    outbox = Outbox(profile)
    _outbox_item(outbox, args.id)
    try:
        outbox.retry(args.id)
    except OutboxError as exc:
        raise UsageError(str(exc)) from None
    items = asyncio.run(outbox.process([args.id]))
    terminal = None if args.no_input or args.json else _terminal()
    if terminal is not None:
        items = _ask(outbox, items, terminal, None)
    if args.json:
        from misfin_tui.core.outbox import summarise

        _print_json([_item_dict(i) for i in items])
        return summarise(items)
    return _report(items)


def cmd_outbox_drop(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.outbox import Outbox, OutboxError

    outbox = Outbox(profile)
    item = _outbox_item(outbox, args.id)
    try:
        outbox.drop(args.id)
    except OutboxError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json({"id": item.id, "recipient": item.recipient, "state": "dropped"})
    else:
        print(f"Dropped outbox item {item.id} ({item.recipient}).")
    return EXIT_OK


# -- trust ----------------------------------------------------------------------------------------


def _trust_name(name: str) -> tuple[str, str]:
    """("host", "host:port") or ("mailbox", "m@host") from what a person typed."""
    from misfin_tui.core.address import DEFAULT_PORT, Address, AddressError

    name = name.strip()
    if "@" in name:
        try:
            return "mailbox", Address.parse(name).key
        except AddressError as exc:
            raise UsageError(f"{name!r} is not an address: {exc}") from None
    host, _, port = name.rpartition(":") if ":" in name else (name, "", str(DEFAULT_PORT))
    if not host or not port.isdigit():
        raise UsageError(f"{name!r} is neither host[:port] nor mailbox@host")
    return "host", f"{host.lower()}:{int(port)}"


def _entry(profile: Profile, name: str) -> dict[str, Any] | None:
    from misfin_tui.core.trust import TrustStore

    kind, key = _trust_name(name)
    for entry in TrustStore(profile.database()).entries():
        if entry["kind"] == kind and entry["name"].lower() == key:
            return entry
    return None


def cmd_trust_list(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.trust import TrustStore, group_fingerprint

    entries = TrustStore(profile.database()).entries()
    if args.json:
        _print_json(entries)
        return EXIT_OK
    if not entries:
        print("Nothing trusted yet.")
    for entry in entries:
        print(f"{entry['kind']:<8} {entry['state']:<9} {entry['name']}")
        print(f"         {group_fingerprint(entry['fingerprint'])}")
        print(f"         first seen {entry['first_seen']}, last seen {entry['last_seen']}")
    return EXIT_OK


def cmd_trust_show(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.trust import TrustStore, group_fingerprint

    entry = _entry(profile, args.name)
    if entry is None:
        print(f"{args.name} is not in the trust store.", file=sys.stderr)
        return EXIT_NOT_FOUND
    history = TrustStore(profile.database()).history(subject=entry["name"])
    if args.json:
        _print_json({**entry, "history": [h.__dict__ for h in history]})
        return EXIT_OK
    print(f"{entry['kind']} {entry['name']}: {entry['state']}")
    print(f"  fingerprint (SHA-256): {group_fingerprint(entry['fingerprint'])}")
    if entry.get("spki"):
        print(f"  key (SPKI SHA-256):    {group_fingerprint(entry['spki'])}")
    for key in ("not_after", "protocol", "nickname", "verified_at", "blocked"):
        if entry.get(key):
            print(f"  {key.replace('_', ' ')}: {entry[key]}")
    print(f"  first seen {entry['first_seen']}, last seen {entry['last_seen']}")
    for h in history:
        print(f"  {h.at}  {h.event}  {h.detail}")
    return EXIT_OK


def cmd_trust_verify(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.trust import TrustError, TrustStore

    kind, key = _trust_name(args.name)
    trust = TrustStore(profile.database())
    try:
        if kind == "host":
            matched = trust.verify_host(key, args.fingerprint)
        else:
            matched = trust.verify_mailbox(key, args.fingerprint)
    except TrustError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json({"kind": kind, "name": key, "verified": matched})
    elif matched:
        print(f"{key}: verified.")
    else:
        print(f"{key}: the fingerprint does NOT match; nothing was changed.", file=sys.stderr)
    return EXIT_OK if matched else EXIT_NOT_FOUND


def cmd_trust_change(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.trust import TrustError, TrustStore

    kind, key = _trust_name(args.name)
    trust = TrustStore(profile.database())
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
        _print_json({"kind": kind, "name": key, action: done})
    elif done:
        print(f"{key}: {word}.")
    else:
        print(f"{key} is not in the trust store.", file=sys.stderr)
    return EXIT_OK if done else EXIT_NOT_FOUND


# -- network --------------------------------------------------------------------------------------


def _network_dict(network: Any, current_id: str = "") -> dict[str, Any]:
    return {
        "id": network.id,
        "label": network.label,
        "trusted": network.trusted,
        "strength": network.strength,
        "current": network.id == current_id,
    }


def cmd_network_status(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.network import Networks

    networks = Networks(profile.database())
    current = networks.current()
    known = networks.list()
    if args.json:
        _print_json(
            {
                "current": _network_dict(current, current.id),
                "networks": [_network_dict(n, current.id) for n in known],
            }
        )
        return EXIT_OK
    state = "trusted" if current.trusted else "NOT trusted"
    print(f"You are on {current.label} ({state}, {current.strength} id {current.id[:12]}).")
    for network in known:
        mark = "*" if network.id == current.id else " "
        trusted = "trusted" if network.trusted else "untrusted"
        print(f" {mark} {network.id[:12]}  {trusted:<9}  {network.label}")
    return EXIT_OK


def cmd_network_trust(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.network import NetworkError, Networks
    from misfin_tui.core.outbox import Outbox

    try:
        network = Networks(profile.database()).trust(None, args.label)
    except NetworkError as exc:
        raise UsageError(str(exc)) from None
    outbox = Outbox(profile)
    items = asyncio.run(outbox.process_held())
    terminal = None if args.no_input or args.json else _terminal()
    if terminal is not None and items:
        items = _ask(outbox, items, terminal, None)
    if args.json:
        _print_json(
            {"network": _network_dict(network, network.id), "items": [_item_dict(i) for i in items]}
        )
        return EXIT_OK
    print(f"{network.label} is now trusted.")
    if items:
        print("Letters that waited for a trusted network:")
        _report(items)
    return EXIT_OK


def cmd_network_untrust(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.network import Networks

    network = Networks(profile.database()).untrust(None)
    if args.json:
        _print_json(_network_dict(network, network.id))
    else:
        print(f"{network.label} is no longer trusted.")
    return EXIT_OK
