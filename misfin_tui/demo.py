"""`misfin-tui --demo`: a throwaway Misfin world on 127.0.0.1, so a newcomer can try everything.

Three profiles live in one temporary folder: yours (you@home.demo) and two correspondents,
Ada (ada@lovelace.demo, who answers every letter) and Bob (bob@bobs.demo, who wrote the
welcome letter). Each runs a real
receiver on a loopback port and `[hosts]` maps the demo hostnames there, so sending, the
first-contact prompt, sender verification and the trust manager all work for real, and
nothing is written outside that folder. It is deleted on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from misfin_tui.core.address import Address
from misfin_tui.core.bundle import export_bundle, import_bundle
from misfin_tui.core.client import presented_cert
from misfin_tui.core.engine import Engine
from misfin_tui.core.events import Event, LetterStored
from misfin_tui.core.gmap.server import GmapServer
from misfin_tui.core.outbox.model import State
from misfin_tui.core.profile import Profile
from misfin_tui.core.trust.model import Answer, Choice, HostEvent

log = logging.getLogger(__name__)

DEMO_NETWORK = "demo-home-network"
YOU = ("you@home.demo", "You")
ADA = ("ada@lovelace.demo", "Ada Lovelace")
BOB = ("bob@bobs.demo", "Bob")

WELCOME = (  # gemtext: one line per paragraph or bullet (a line break is a new line)
    "# Welcome to misfin_tui\n"
    "Hello! I'm Bob, a demo correspondent running on this machine. Everything here is real "
    "Misfin: this letter came to your own receiver over TLS, and misfin_tui asked my server "
    "whether I am who my certificate says (see the ✓ next to my letter).\n"
    "\n"
    "## Things to try\n"
    "* Press c and write to ada@lovelace.demo. She answers every letter she gets.\n"
    "* You have never written to Ada's server, so misfin_tui shows you its key and asks whether "
    'to trust it. Choose "Trust & send".\n'
    "* Press T to open the trust manager, and o for the outbox.\n"
    "* Press ? on any screen for help, ctrl+p for every command, q to quit.\n"
    "\n"
    "* Your home server kept a letter for you while you were away: it was fetched (GMAP) when "
    "the app started, and $ syncs with home again.\n"
    "\n"
    "=> misfin://ada@lovelace.demo Ada, who answers\n"
    "=> gemini://geminiprotocol.net/ Gemini, the small web Misfin belongs to\n"
)


AWAY = (
    "# While you were away\n"
    "This letter reached your home server while your laptop was somewhere else. Senders "
    "deliver to the server of your address, so a laptop on a café network cannot receive; "
    "misfin_tui fetched this from home over GMAP, with your own certificate, when it started.\n"
    "\n"
    "Press $ to sync with home again; the status line says when it last did.\n"
)
DEMO_PASSPHRASE = b"demo bundle passphrase"


@dataclass
class DemoWorld:
    """The demo's profiles and running receivers; `close()` stops them and deletes the folder."""

    root: Path
    you: Profile
    correspondents: dict[str, Profile]
    engines: list[Engine] = field(default_factory=list)  # each runs a receiver
    homes: list[GmapServer] = field(default_factory=list)  # your home's GMAP

    def close(self) -> None:
        for server in self.homes:
            server.stop()
        self.homes.clear()
        for engine in self.engines:
            engine.close()
        self.engines.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_profile(root: Path, who: tuple[str, str]) -> Profile:
    address, blurb = who
    profile = Profile.open(root / address.split("@")[0])
    profile.create_identity(Address.parse(address), blurb)
    return profile


def _configure(profile: Profile, listen: int, hosts: dict[str, int], policy: str) -> None:
    config = profile.config
    config.set("receiver.enabled", True)
    config.set("receiver.listen", f"127.0.0.1:{listen}")
    config.set("trust.first_contact", policy)
    for host, port in hosts.items():
        config.set(f"hosts.{host}", f"127.0.0.1:{port}")
    profile.save_config()


def _trust_demo_network(profile: Profile) -> None:
    from misfin_tui.core.network import Networks

    networks = Networks(profile.database())
    networks.current()
    networks.trust(DEMO_NETWORK, "Demo home network")


def build_world(root: Path, *, receive_for_you: bool = True, home: bool = True) -> DemoWorld:
    """Make the three profiles, start every receiver and send Bob's welcome letter.

    With `receive_for_you` your own receiver runs here too and the welcome letter has arrived
    when this returns; without it the app runs your receiver and `deliver_welcome` sends the
    letter once it listens, so the newcomer sees it arrive.
    """
    os.environ["MISFIN_TUI_NETWORK"] = DEMO_NETWORK
    you, ada, bob = (_make_profile(root, who) for who in (YOU, ADA, BOB))
    ports = {name: free_port() for name in ("you", "ada", "bob")}
    _configure(
        you,
        ports["you"],
        {"lovelace.demo": ports["ada"], "bobs.demo": ports["bob"]},
        "ask",
    )
    for profile, name in ((ada, "ada"), (bob, "bob")):
        _configure(profile, ports[name], {"home.demo": ports["you"]}, "accept-new")
    for profile in (you, ada, bob):
        _trust_demo_network(profile)

    world = DemoWorld(root, you, {"ada": ada, "bob": bob})
    try:
        mine = [(you, "you")] if receive_for_you else []
        for profile, name in [*mine, (bob, "bob"), (ada, "ada")]:
            engine = Engine(profile)
            world.engines.append(engine)
            if name == "ada":
                engine.events.subscribe(AnsweringMachine(engine).on_event)
            engine.start_receiver(("127.0.0.1", ports[name]))
        if receive_for_you:
            send_as(bob, [YOU[0]], "", WELCOME)
        if home:
            _start_home(world, bob, ports["bob"])
    except BaseException:
        world.close()
        raise
    return world


def _start_home(world: DemoWorld, bob: Profile, bob_port: int) -> None:
    """Your home server: your identity on a second machine (brought there in a bundle, as
    `identity export`/`import` do), receiving while you were away and serving it over GMAP."""
    you = world.you
    home = Profile.open(world.root / "home")
    bundle = export_bundle(you, YOU[0], world.root / "you.bundle", DEMO_PASSPHRASE)
    import_bundle(home, bundle, DEMO_PASSPHRASE)
    bundle.unlink()
    misfin_port, gmap_port = free_port(), free_port()
    _configure(home, misfin_port, {"bobs.demo": bob_port}, "accept-new")
    _trust_demo_network(home)
    engine = Engine(home)
    world.engines.append(engine)
    engine.start_receiver(("127.0.0.1", misfin_port))
    server = GmapServer(home, ("127.0.0.1", gmap_port))
    server.start()
    world.homes.append(server)
    send_as(bob, [YOU[0]], "", AWAY, connect=f"127.0.0.1:{misfin_port}", attempts=20)
    # Your laptop knows where home is, and you approved home's key when you set it up.
    you.config.set(f"gmap.{YOU[0]}", ("127.0.0.1", gmap_port))
    you.save_config()
    laptop = Engine(you)
    hostport = f"127.0.0.1:{gmap_port}"
    presented = presented_cert(home.identity(YOU[0]).cert_der())
    network = laptop.networks.current()
    laptop.policy.answer(
        HostEvent.FIRST_CONTACT, hostport, presented, network, Answer(Choice.TRUST)
    )


def send_as(
    profile: Profile,
    recipients: list[str],
    subject: str,
    body: str,
    *,
    attempts: int = 1,
    **kw: Any,
) -> bool:
    """Queue and deliver a letter from a demo correspondent (its policy accepts new servers).

    With several `attempts`, a deferred delivery (the receiver not listening yet) is retried
    every quarter second. Returns whether every recipient has it.
    """
    outbox = Engine(profile).outbox
    addresses = [Address.parse(r) for r in recipients]
    letter_id = outbox.enqueue(body, addresses, subject=subject, **kw)
    ids = [item.id for item in outbox.items(letter_id)]
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.25)
            for item_id in ids:
                if outbox.item(item_id).state is State.DEFERRED:
                    outbox.retry(item_id)
        items = asyncio.run(outbox.process(ids))
        if all(item.state is State.DELIVERED for item in items):
            return True
    return False


def deliver_welcome(world: DemoWorld) -> threading.Thread:
    """Bob's welcome letter, sent from a thread as soon as your receiver (the app's) listens."""

    def send() -> None:
        try:
            if not send_as(world.correspondents["bob"], [YOU[0]], "", WELCOME, attempts=60):
                log.warning("Bob's welcome letter could not be delivered")
        except Exception:
            log.exception("Bob's welcome letter failed")

    thread = threading.Thread(target=send, name="demo-welcome", daemon=True)
    thread.start()
    return thread


class AnsweringMachine:
    """Ada answers every letter she receives, quoting it, from a thread of her own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.profile = engine.profile
        self._lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        if isinstance(event, LetterStored):
            threading.Thread(target=self._answer, args=(event.letter_id,), daemon=True).start()

    def _answer(self, letter_id: int) -> None:
        from misfin_tui.core.letter import quote, reply_subject

        letter = self.engine.store.get(letter_id)
        if letter is None:
            return
        body = (
            f"Thank you for your letter, {letter.sender}! Here is what you wrote:\n\n"
            f"{quote(letter.body)}\n\n"
            "Now open the trust manager (T): my server and my mailbox are in it."
        )
        with self._lock:
            try:
                send_as(
                    self.profile,
                    [letter.sender],
                    reply_subject(letter.subject or "your letter"),
                    body,
                    in_reply_to=letter_id,
                )
            except Exception:  # the demo must never take the app down
                log.exception("Ada could not answer letter %s", letter_id)


def run_demo() -> int:
    """Build the world in a temporary folder, open the app on your profile, clean up."""
    from misfin_tui.ui.app import make_app

    root = Path(tempfile.mkdtemp(prefix="misfin-tui-demo-"))
    world = build_world(root, receive_for_you=False)
    try:
        app = make_app(world.you)

        def leave(signum: int, _frame: object) -> None:
            app.exit(128 + signum)  # a closed terminal or a kill still cleans up below

        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, leave)
        deliver_welcome(world)
        result = app.run()
        return int(result or 0)
    finally:
        world.close()
