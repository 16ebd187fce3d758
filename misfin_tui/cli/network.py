"""`misfin-tui network status|trust|untrust`: which network you are on, and which you trust."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from misfin_tui.cli import render
from misfin_tui.cli.asker import asker_for
from misfin_tui.cli.common import EXIT_OK, Context, UsageError
from misfin_tui.core.network import NetworkError


def register(subparsers: Any) -> None:
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


def cmd_network_status(args: argparse.Namespace, ctx: Context) -> int:
    networks = ctx.engine.networks
    current = networks.current()
    known = networks.list()
    if args.json:
        render.print_json(
            {
                "current": render.network_json(current, current.id),
                "networks": [render.network_json(n, current.id) for n in known],
            }
        )
        return EXIT_OK
    state = "trusted" if current.trusted else "NOT trusted"
    print(
        f"You are on {render.safe(current.label)} ({state}, {current.strength} id "
        f"{current.id[:12]})."
    )
    for detail in current.signals.details():
        print(f"  {render.safe(detail)}")
    caution = networks.caution(current)
    if caution:
        print(f"  Careful: {render.safe(caution)}")
    for network in known:
        mark = "*" if network.id == current.id else " "
        trusted = "trusted" if network.trusted else "untrusted"
        print(f" {mark} {network.id[:12]}  {trusted:<9}  {render.safe(network.label)}")
    return EXIT_OK


def cmd_network_trust(args: argparse.Namespace, ctx: Context) -> int:
    """Mark the network trusted; letters held for a trusted network are probed again now."""
    engine = ctx.engine
    asker = asker_for(args.no_input or args.json)
    try:
        network, items = asyncio.run(engine.delivery.trust_network(args.label, asker))
    except NetworkError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        render.print_json(
            {
                "network": render.network_json(network, network.id),
                "items": [render.item_json(i) for i in items],
            }
        )
        return EXIT_OK
    print(f"{render.safe(network.label)} is now trusted.")
    if items:
        print("Letters that waited for a trusted network:")
        render.report(items)
    return EXIT_OK


def cmd_network_untrust(args: argparse.Namespace, ctx: Context) -> int:
    was_trusted = ctx.engine.networks.current().trusted
    network = ctx.engine.networks.untrust(None)
    if args.json:
        render.print_json(render.network_json(network, network.id))
    elif was_trusted:
        print(f"{render.safe(network.label)} is no longer trusted.")
    else:
        print(f"{render.safe(network.label)} was not trusted; nothing changed.")
    return EXIT_OK
