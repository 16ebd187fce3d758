"""`misfin-tui identity new|import|list|show`: make, bring in and inspect your identities."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from misfin_tui.cli.common import (
    EXIT_OK,
    SEND_EPILOG,
    Context,
    EpilogFormatter,
    UsageError,
    command,
)
from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.clock import iso_utc
from misfin_tui.core.identity import (
    DEFAULT_KEY_TYPE,
    KEY_TYPES,
    Identity,
    IdentityError,
    PassphraseRequired,
)
from misfin_tui.core.notice import Reason
from misfin_tui.core.outbox.model import summarise
from misfin_tui.core.profile import Profile
from misfin_tui.core.text import one_line

KEY_TYPE_NAMES = {"p256": "ECDSA P-256", "ed25519": "Ed25519", "rsa2048": "RSA 2048"}


def register(subparsers: Any) -> None:
    identity = subparsers.add_parser(
        "identity",
        help="make, import and show your identities (mailbox certificates)",
        description="Your Misfin identities: a TLS client certificate per mailbox address.",
    )
    actions = identity.add_subparsers(
        title="actions", metavar="ACTION", dest="identity_action", required=True
    )

    new = actions.add_parser(
        "new",
        help="make a new identity certificate",
        description="Make a certificate for ADDRESS (mailbox@host). It is self-signed, unless the"
        " profile holds a host CA for that host (then the CA signs it) or --ca is given.",
    )
    new.add_argument("address", metavar="ADDRESS", help="mailbox@host, e.g. alice@example.org")
    new.add_argument("--blurb", default="", help="your name as correspondents see it")
    new.add_argument(
        "--ca",
        action="store_true",
        help="also make a host CA for the host; it signs this and later mailboxes of that host",
    )
    new.add_argument(
        "--key-type",
        choices=KEY_TYPES,
        default=DEFAULT_KEY_TYPE,
        help=f"key algorithm (default: {DEFAULT_KEY_TYPE})",
    )
    new.set_defaults(func=cmd_new, creates_profile=True)

    imp = actions.add_parser(
        "import",
        help="bring in an existing certificate and key (PEM)",
        description="Copy an existing identity into the profile. CERT may hold the key too,"
        " or be a bundle written by `identity export`. An encrypted key is decrypted now and"
        " stored unencrypted, readable by you only. An identity already here is never"
        " overwritten, except by a bundle of its rotated successor (exported at home after"
        " `identity rotate`: a newer certificate signed by the same host CA), or by any bundle"
        " for that address with --replace; the old certificate is then kept retired.",
    )
    imp.add_argument("cert", metavar="CERT", type=Path, help="PEM certificate (and key)")
    imp.add_argument("--key", metavar="KEY", type=Path, help="PEM private key, if not in CERT")
    imp.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="read the key's passphrase from environment variable VAR"
        " (otherwise a terminal asks when the key is encrypted)",
    )
    imp.add_argument(
        "--replace",
        action="store_true",
        help="a bundle replaces the identity here for its address even when it is not its"
        " rotated successor (e.g. home rotated with --ca); the old one is kept retired",
    )
    imp.set_defaults(func=cmd_import, creates_profile=True)

    exp = actions.add_parser(
        "export",
        help="write an identity to a passphrase-protected bundle (for a second machine)",
        description="Write ADDRESS's certificate, its key encrypted with a passphrase and its"
        " host CA certificate to FILE; `identity import FILE` reads it on the other machine."
        " The host CA's key goes along only with --with-ca.",
    )
    exp.add_argument("address", metavar="ADDRESS", help="which identity")
    exp.add_argument("file", metavar="FILE", type=Path, help="the bundle to write (never replaced)")
    exp.add_argument(
        "--with-ca", action="store_true", help="include the host CA's key (it can sign mailboxes)"
    )
    exp.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="read the passphrase from environment variable VAR (otherwise a terminal asks)",
    )
    exp.set_defaults(func=cmd_export)

    rot = actions.add_parser(
        "rotate",
        help="replace an identity's certificate and tell every past contact",
        description="Issue a new certificate for ADDRESS signed by the same host CA (with --ca:"
        " a new host CA, and every mailbox of that host re-issued). The old certificate is"
        " retired (kept, never used for new letters); a running receiver answers with the new"
        " fingerprint at once. Every past contact gets a notice signed with the old"
        " certificate; the exit code is send's.",
        epilog=SEND_EPILOG,
        formatter_class=EpilogFormatter,
    )
    rot.add_argument("address", metavar="ADDRESS", help="which identity")
    rot.add_argument(
        "--reason",
        choices=[r.value for r in Reason],
        default=Reason.ROUTINE.value,
        help="why (the notice says it): routine, or stolen (default: routine)",
    )
    rot.add_argument(
        "--ca",
        action="store_true",
        help="the host CA itself is replaced (e.g. stolen): correspondents see a changed"
        " server key, with the notice as evidence, and decide",
    )
    rot.add_argument(
        "--no-input", action="store_true", help="never ask; a needed decision leaves it held"
    )
    rot.add_argument("--json", action="store_true", help="print a JSON object")
    rot.set_defaults(func=cmd_rotate)

    lst = actions.add_parser(
        "list", help="list your identities", description="List the profile's identities."
    )
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    lst.set_defaults(func=cmd_list)

    show = actions.add_parser(
        "show",
        help="show one identity and its fingerprint",
        description="Show an identity (default: the default identity) and its fingerprint.",
    )
    show.add_argument("address", metavar="ADDRESS", nargs="?", help="which identity")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.set_defaults(func=cmd_show)


def cmd_new(args: argparse.Namespace, ctx: Context) -> int:
    profile = ctx.profile
    try:
        address = Address.parse(args.address)
    except AddressError as exc:
        raise UsageError(f"{args.address!r} is not an address: {exc}") from None
    if address.port is not None:
        raise UsageError(f"an identity address has no port: use {address}")
    had_ca = profile.host_ca(address.host) is not None
    created = profile.create_identity(address, args.blurb, args.key_type, ca=args.ca)
    identity = created.identity
    if created.signer == "new-ca":
        how = f"signed by a new host CA for {address.host}"
    elif created.signer == "ca":
        how = f"signed by the profile's host CA for {address.host}"
    else:
        how = "self-signed"
    print(f"Made identity {identity.address} ({how}, {KEY_TYPE_NAMES[args.key_type]}).")
    if args.ca and had_ca:
        print(f"The profile already had a host CA for {address.host}; it was used, not replaced.")
    _print_details(identity, profile)
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace, ctx: Context) -> int:
    import asyncio

    from misfin_tui.cli import render
    from misfin_tui.cli.asker import asker_for

    try:
        Address.parse(args.address)
    except AddressError as exc:
        raise UsageError(f"{args.address!r} is not an address: {exc}") from None
    engine = ctx.engine
    rotation = engine.rotate(args.address, Reason(args.reason), ca=args.ca)
    if not args.json:
        for line in render.rotation_lines(rotation):
            print(line)
    asker = asker_for(args.no_input or args.json)
    items = asyncio.run(engine.delivery.run(rotation.items, asker)) if rotation.items else []
    if args.json:
        render.print_json(render.rotation_json(rotation, items))
        return summarise(items)
    return render.report(items)


def _passphrase_from_env(args: argparse.Namespace) -> bytes | None:
    if not args.passphrase_env:
        return None
    value = os.environ.get(args.passphrase_env)
    if value is None:
        raise UsageError(f"environment variable {args.passphrase_env} is not set")
    return value.encode()


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    profile = ctx.profile
    from misfin_tui.core.bundle import check_export, export_bundle

    # What would stop the export is said before the passphrase is typed twice for nothing.
    check_export(profile, args.address, args.file, with_ca=args.with_ca)
    passphrase = _passphrase_from_env(args)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise UsageError("a passphrase is needed: give it with --passphrase-env VAR")
        import getpass

        typed = getpass.getpass("Passphrase for the bundle: ")
        if getpass.getpass("The same passphrase again: ") != typed:
            raise UsageError("the two passphrases differ; nothing was written")
        passphrase = typed.encode()
    path = export_bundle(profile, args.address, args.file, passphrase, with_ca=args.with_ca)
    what = "with the host CA's key" if args.with_ca else "without the host CA's key"
    print(f"Wrote {path} ({what}). Bring it to the other machine and run:")
    print(f"  misfin-tui identity import {path.name}")
    return EXIT_OK


def _is_bundle(path: Path) -> bool:
    from misfin_tui.core.bundle import MAGIC

    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC.encode()
    except OSError:
        return False


def cmd_import_bundle(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.bundle import import_bundle

    passphrase = _passphrase_from_env(args)
    try:
        imported = import_bundle(profile, args.cert, passphrase, replace=args.replace)
    except PassphraseRequired as exc:
        if passphrase is not None or not sys.stdin.isatty():
            raise PassphraseRequired(f"{exc}: give it with --passphrase-env VAR") from None
        import getpass

        typed = getpass.getpass(f"Passphrase for {args.cert}: ")
        imported = import_bundle(profile, args.cert, typed.encode(), replace=args.replace)
    if imported.retired is not None:
        print(f"Replaced identity {imported.identity.address} with the bundle's certificate.")
        print(f"  the old certificate SHA-256 {imported.retired.fingerprint} is kept retired")
    else:
        print(f"Imported identity {imported.identity.address} from the bundle.")
    if imported.with_ca:
        print(f"  with the host CA for {imported.identity.address.host} (it can sign mailboxes)")
    if imported.home:
        print(f"  mail from home: GMAP at {imported.home} ({command('sync')})")
    _print_details(imported.identity, profile)
    return EXIT_OK


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    profile = ctx.profile
    if args.key is None and _is_bundle(args.cert):
        return cmd_import_bundle(args, profile)
    if args.replace:
        raise UsageError("--replace is for a bundle written by `identity export`")
    passphrase = _passphrase_from_env(args)
    try:
        identity = profile.import_identity(args.cert, args.key, passphrase)
    except PassphraseRequired as exc:
        if passphrase is not None or not sys.stdin.isatty():
            raise PassphraseRequired(f"{exc}: give it with --passphrase-env VAR") from None
        import getpass

        typed = getpass.getpass(f"Passphrase for {args.key or args.cert}: ")
        identity = profile.import_identity(args.cert, args.key, typed.encode())
    print(f"Imported identity {identity.address}.")
    _print_details(identity, profile)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    profile = ctx.profile
    identities = profile.identities()
    if args.json:
        print(json.dumps([as_json(i, profile) for i in identities], indent=2))
        return EXIT_OK
    if not identities:
        print(f"No identities yet. Make one with: {command('identity new mailbox@host')}")
        return EXIT_OK
    default = _default_address(profile)
    width = max(len(str(i.address)) for i in identities)
    for identity in identities:
        marker = "*" if str(identity.address).lower() == default else " "
        signed = "CA-signed" if identity.issuer_fingerprint else "self-signed"
        print(
            f"{marker} {str(identity.address):<{width}}  {signed:<11}  {identity.key_type:<8}"
            f"  until {identity.not_after:%Y-%m-%d}  {one_line(identity.blurb)}"
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    profile = ctx.profile
    if args.address is not None:
        try:
            Address.parse(args.address)
        except AddressError as exc:
            raise UsageError(f"{args.address!r} is not an address: {exc}") from None
    identity = profile.identity(args.address)
    if args.json:
        print(json.dumps(as_json(identity, profile), indent=2))
        return EXIT_OK
    blurb = one_line(identity.blurb)  # an imported certificate's CN: data, possibly empty
    print(f"{blurb} ({identity.address})" if blurb else str(identity.address))
    _print_details(identity, profile)
    return EXIT_OK


def as_json(identity: Identity, profile: Profile) -> dict[str, Any]:
    return {
        "address": str(identity.address),
        "blurb": identity.blurb,
        "fingerprint": identity.fingerprint,
        "issuer_fingerprint": identity.issuer_fingerprint,
        "not_after": iso_utc(identity.not_after),
        "key_type": identity.key_type,
        "cert_path": str(identity.cert_path),
        "key_path": str(identity.key_path),
        "chain_path": str(identity.chain_path),
        "default": str(identity.address).lower() == _default_address(profile),
    }


def _default_address(profile: Profile) -> str:
    try:
        return str(profile.identity().address).lower()
    except IdentityError:  # no identity, or the configured default is gone: nothing is marked
        return ""


def _print_details(identity: Identity, profile: Profile) -> None:
    print(f"  fingerprint  SHA-256 {identity.fingerprint}")
    if identity.issuer_fingerprint:
        print(f"  host CA      SHA-256 {identity.issuer_fingerprint}")
    print(f"  key          {identity.key_type}")
    print(f"  valid until  {identity.not_after:%Y-%m-%d}")
    print(f"  certificate  {identity.cert_path}")
    print(f"  private key  {identity.key_path}")
    if str(identity.address).lower() == _default_address(profile):
        print("  (the default identity)")
