"""Regenerate screenshots/ from the real app on the demo world.

Runs the app headless at 120x36, walks through the main screens as a newcomer would (inbox,
reader, compose, the unfamiliar-network and first-contact prompts, Ada's answer, the trust
manager, the outbox) and saves each as SVG and PNG.

The PNGs need `rsvg-convert` and the Fira Code font the SVGs name (Debian/Ubuntu:
`apt-get install librsvg2-bin fonts-firacode`, and fonts-symbola for the header's ⭘ and
other symbols Fira Code lacks); without them the script says so and writes the SVGs only.
Textual writes every space of the screen as a no-break space inside <text>, and SVG's
default whitespace handling lets a renderer drop the leading ones (rsvg-convert did: "^ppal
ette", misaligned labels), so each SVG is marked xml:space="preserve" and its text drawn
without ligatures (Fira Code would turn "=>" into an arrow): the PNG then shows each cell
where the terminal does.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (120, 36)

sys.path.insert(0, str(ROOT))

from misfin_tui.core.store import MailStore  # noqa: E402
from misfin_tui.demo import DemoWorld, build_world, deliver_welcome  # noqa: E402
from misfin_tui.ui.app import MisfinApp, make_app  # noqa: E402


async def until(pilot, predicate: Callable[[], bool], timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until `predicate` holds (workers and receivers are real)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.1)
    await pilot.pause(0.3)


NO_LIGATURES = 'text { font-variant-ligatures: none; font-feature-settings: "liga" 0, "calt" 0; }'


def keep_spaces(svg: str) -> str:
    """The SVG as a terminal shows it: every space kept, no ligatures."""
    if "xml:space=" not in svg.split(">", 1)[0]:
        svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    if NO_LIGATURES not in svg:
        svg = svg.replace("<style>", "<style>\n    " + NO_LIGATURES, 1)
    return svg


def png_tools() -> str | None:
    """rsvg-convert when it and the Fira Code font are installed; else say what is missing."""
    converter = shutil.which("rsvg-convert")
    fonts = shutil.which("fc-list")
    has_fira = bool(
        fonts and subprocess.run([fonts, "Fira Code"], capture_output=True, text=True).stdout
    )
    if converter and has_fira:
        symbols = (
            fonts
            and subprocess.run([fonts, ":charset=2b58"], capture_output=True, text=True).stdout
        )
        if not symbols:
            print("PNGs will show boxes for ⭘ and a few symbols: install fonts-symbola")
        return converter
    missing = [
        name
        for name, ok in (("librsvg2-bin (rsvg-convert)", converter), ("fonts-firacode", has_fira))
        if not ok
    ]
    print(f"no PNGs: install {' and '.join(missing)} (apt-get install ...)", file=sys.stderr)
    return None


CONVERTER: str | None = None


def save(app: MisfinApp, name: str) -> None:
    svg = OUT / f"{name}.svg"
    svg.write_text(keep_spaces(app.export_screenshot()), encoding="utf-8")
    print(f"wrote {svg.relative_to(ROOT)}")
    if CONVERTER:
        png = svg.with_suffix(".png")
        subprocess.run([CONVERTER, "-w", "1600", "-o", str(png), str(svg)], check=True)
        print(f"wrote {png.relative_to(ROOT)}")


def inbox_letters(world: DemoWorld, subject_start: str) -> bool:
    store = MailStore(world.you.database())
    return any(s.subject.startswith(subject_start) for s in store.summaries("Inbox"))


def listed(app: MisfinApp, subject_start: str) -> bool:
    """The letter list on screen holds a letter whose subject starts so."""
    from misfin_tui.ui.widgets.letter_list import LetterList

    lists = app.screen.query(LetterList)
    return any(
        lst.letters[i].subject.startswith(subject_start)
        for lst in lists
        for i in range(len(lst.letters))
    )


async def open_letter(pilot, app: MisfinApp, subject_start: str) -> None:  # type: ignore[no-untyped-def]
    """Move the cursor to the letter whose subject starts so, and open it: the demo's two
    letters can arrive within one minute, so their order in the list is not fixed."""
    from misfin_tui.ui.widgets.letter_list import LetterList

    rows = app.screen.query_one(LetterList).letters
    [index] = [i for i in range(len(rows)) if rows[i].subject.startswith(subject_start)]
    await pilot.press("home", *["down"] * index, "enter")


def outbox_has(app: MisfinApp, state: str) -> bool:
    return any(item.state == state for item in app.engine.outbox.items())


def screen_is(app: MisfinApp, name: str) -> bool:
    return type(app.screen).__name__ == name


async def compose(pilot, app: MisfinApp, to: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    """Open compose and fill To and Subject (Enter moves on), leaving the cursor in the body."""
    await pilot.press("c")
    await until(pilot, lambda: screen_is(app, "ComposeScreen"))
    await pilot.press(*to, "enter", *subject, "enter")


async def walk(world: DemoWorld) -> None:
    app = make_app(world.you)
    async with app.run_test(size=SIZE) as pilot:
        deliver_welcome(world)
        # Bob's receiver and yours start with the app: on a loaded machine that takes a while.
        await until(pilot, lambda: inbox_letters(world, "Welcome"), timeout=60)
        await until(pilot, lambda: listed(app, "Welcome"), timeout=60)  # on screen, not only stored
        await open_letter(pilot, app, "Welcome")
        await pilot.pause(0.5)
        save(app, "inbox")

        app.engine.networks.untrust()  # as if the laptop were in a cafe
        app.refresh_network()
        await compose(pilot, app, "ada@lovelace.demo", "Hello Ada")
        await pilot.press(*"This is my first Misfin letter. Nice to meet you!")
        await pilot.pause(0.3)
        save(app, "compose")

        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_is(app, "UnfamiliarNetworkScreen"))
        save(app, "unfamiliar-network")

        await pilot.press("m")  # mark this network trusted: the prompt asks again, calmer
        await until(pilot, lambda: screen_is(app, "TextInputScreen"))
        await pilot.press(*"Home", "enter")
        await until(pilot, lambda: screen_is(app, "FirstContactScreen"))
        # The header must show the network as the prompt does ("Home (trusted)"), not the
        # "(untrusted)" it read before the network was marked.
        app.refresh_network()
        await until(pilot, lambda: "Home (trusted)" in app.network_text)
        save(app, "first-contact")

        await pilot.press("t")
        await until(pilot, lambda: inbox_letters(world, "Re: Hello Ada"))
        await pilot.press("1", "home", "enter")
        await pilot.pause(0.5)
        save(app, "reply")

        await pilot.press("T")
        await pilot.pause(0.8)
        save(app, "trust-manager")
        await pilot.press("escape")

        await compose(pilot, app, "carol@nowhere.demo", "Are you there?")
        await pilot.press(*"This server does not exist, so the letter waits in the Outbox.")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: outbox_has(app, "deferred"))
        await pilot.press("o")
        await pilot.pause(0.8)
        save(app, "outbox")
        await pilot.press("escape")

        await pilot.pause(0.3)


def main() -> int:
    global CONVERTER
    CONVERTER = png_tools()
    OUT.mkdir(exist_ok=True)
    os.environ["MISFIN_TUI_NETWORK"] = "demo-home-network"
    root = Path(tempfile.mkdtemp(prefix="misfin-tui-shots-"))
    world = build_world(root, receive_for_you=False)
    try:
        asyncio.run(walk(world))
    finally:
        world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
