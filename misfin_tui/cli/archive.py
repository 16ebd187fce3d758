"""`misfin-tui mail export --gembox FILE` and `mail import FILE`: archives in and out.

Both are actions of the `mail` group (cli/mail.py registers them). Export writes every
letter's stored bytes exactly; import reads the current
and the old gembox format, checks the whole file first and adds everything or nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from misfin_tui.cli import render
from misfin_tui.cli.common import EXIT_ERROR, EXIT_OK, PROG, Context, UsageError
from misfin_tui.core.database import FOLDERS
from misfin_tui.core.gembox import IMPORT_FOLDERS, GemboxError, export_gembox, import_file


def register(actions: Any) -> None:
    """Add `export` and `import` to the `mail` group's actions."""
    export = actions.add_parser(
        "export",
        help="write letters to a gembox file",
        description="Write the letters of one folder (or all) to a gembox file, oldest first,"
        " each letter's stored bytes exactly (gemmail-python's current gembox format, escaped"
        " so that any letter survives the trip back).",
    )
    export.add_argument(
        "--gembox", required=True, metavar="FILE", type=Path, help="the file to write"
    )
    export.add_argument(
        "--folder",
        default="Inbox",
        metavar="NAME|all",
        help=f"one of {', '.join(FOLDERS)}, or all (default: Inbox)",
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.set_defaults(func=cmd_mail_export)

    imports = actions.add_parser(
        "import",
        help="add the letters of a gembox file",
        description="Add the letters of a gembox file (current or old <===== format). The whole"
        " file is checked first: a bad file is reported with its line number and nothing is"
        " added. Letters whose exact bytes are already stored are skipped, counted: a letter"
        " the file holds twice is added twice, and importing the same file again adds none.",
    )
    imports.add_argument("file", type=Path, metavar="FILE", help="the gembox file to read")
    imports.add_argument(
        "--folder",
        default="Inbox",
        metavar="NAME",
        help="where the letters go (default: Inbox; not Outbox)",
    )
    imports.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    imports.set_defaults(func=cmd_mail_import, creates_profile=True)  # an archive can start one


def _folder(text: str, *, allow_all: bool) -> str | None:
    if allow_all and text.lower() == "all":
        return None
    match = next((f for f in FOLDERS if f.lower() == text.lower()), None)
    if match is None:
        extra = " or all" if allow_all else ""
        raise UsageError(f"--folder: no folder {text!r}; choose one of {', '.join(FOLDERS)}{extra}")
    return match


def _error(message: str) -> int:
    print(f"{PROG}: error: {render.safe(' '.join(message.split()))}", file=sys.stderr)
    return EXIT_ERROR


def cmd_mail_export(args: argparse.Namespace, ctx: Context) -> int:
    folder = _folder(args.folder, allow_all=True)
    try:
        result = export_gembox(ctx.engine.store, args.gembox, folder=folder, overwrite=args.force)
    except FileExistsError:
        return _error(f"{args.gembox}: the file exists; add --force to replace it")
    where = "all folders" if folder is None else folder
    print(f"exported {result.letters} letters from {where} to {result.path}")
    return EXIT_OK


def cmd_mail_import(args: argparse.Namespace, ctx: Context) -> int:
    folder = _folder(args.folder, allow_all=False)
    assert folder is not None
    if folder not in IMPORT_FOLDERS:
        raise UsageError(f"--folder: letters cannot be imported into {folder}")
    try:
        result = import_file(ctx.engine.store, args.file, folder=folder)
    except GemboxError as exc:
        return _error(f"{exc} (nothing was imported)")
    if args.json:
        render.print_json(
            {
                "file": str(args.file),
                "format": result.format.value,
                "folder": result.folder,
                "added": list(result.added),
                "already_stored": result.already_stored,
                "repeated": result.repeated,
            }
        )
        return EXIT_OK
    skipped = []
    if result.already_stored:
        skipped.append(f"{result.already_stored} already stored")
    if result.repeated:
        skipped.append(f"{result.repeated} repeated in the file")
    tail = f" (skipped: {', '.join(skipped)})" if skipped else ""
    print(
        f"imported {len(result.added)} of {result.read} letters into {folder}"
        f" from {args.file} ({result.format.value} gembox format){tail}"
    )
    return EXIT_OK
