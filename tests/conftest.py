"""The fixtures every test folder shares: the network the tests pretend to be on, profiles with
real certificates, our receiver running on 127.0.0.1 (in this process or as a child process),
and the independent FixtureReceiver.

The plain helpers these are built from, and that tests import, are in the `helpers` package
beside this file (pytest puts this folder on sys.path for this conftest).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.certs import Creds, fixed_cert, forged, make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import (
    NETWORK,
    RECIPIENT,
    SENDER,
    make_profile,
    open_profile,
    pin_verified,
    route,
)
from helpers.receivers import Peer, ReceiverProcess

from misfin_tui.core.profile import Profile
from misfin_tui.demo import DEMO_NETWORK, DemoWorld, build_world


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Every test is on the network NETWORK (MISFIN_TUI_NETWORK) and never on the user's
    profile (MISFIN_TUI_PROFILE unset); call the value to move to another network."""

    def use(network_id: str) -> None:
        monkeypatch.setenv("MISFIN_TUI_NETWORK", network_id)

    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    use(NETWORK)
    return use


@pytest.fixture(autouse=True)
def time_zone() -> Iterator[Callable[[str], None]]:
    """Call the value with a TZ string to run the test in that local time zone; the zone
    before the test is back afterwards (TZ restored by monkeypatch, then re-read here)."""
    before = os.environ.get("TZ")

    def use(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


# -- profiles -----------------------------------------------------------------------------------


@pytest.fixture
def sender(tmp_path: Path) -> Profile:
    """A profile with the identity SENDER (alice@alice.test), made by the core."""
    return make_profile(tmp_path / "alice", SENDER)


@pytest.fixture
def peer(tmp_path: Path, sender: Profile) -> Iterator[Peer]:
    """RECIPIENT (bob@example.org, a fixed certificate) served by our Receiver on a real TLS
    port, and the sender's example.org mapped to it. The sender's own host is mapped nowhere
    useful, so the peer's verification of the sender fails fast."""
    cert = fixed_cert(2, RECIPIENT, blurb="Bob")
    profile = open_profile(tmp_path / "bob", RECIPIENT, cert)
    profile.config.set(f"hosts.{SENDER.partition('@')[2]}", ("127.0.0.1", 9))
    profile.save_config()
    found = Peer(profile, RECIPIENT, cert)
    found.start()
    route(sender, "example.org", found)
    yield found
    found.stop()


@dataclass
class Setup:
    """A receiving profile on disk and the senders it already trusts."""

    profile_dir: Path
    senders: list[Creds]

    def profile(self) -> Profile:
        return Profile.open(self.profile_dir)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A receiving profile (bob@example.org, self-signed) and four senders it verified a moment
    ago, so no test waits on verification over the network."""
    profile = make_profile(tmp_path / "server", RECIPIENT)
    senders = [
        forged(tmp_path / "senders", f"sender{n}", "senders.test", name=f"sender{n}")
        for n in range(4)
    ]
    pin_verified(profile, senders)
    profile.database().close()
    return Setup(tmp_path / "server", senders)


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., FixtureReceiver]]:
    """Start FixtureReceivers (a host CA certificate for `host` unless one is given)."""
    started: list[FixtureReceiver] = []

    def start(host: str = "example.org", **kwargs: Any) -> FixtureReceiver:
        kwargs.setdefault("server_cert", make_server_cert(host))
        server = FixtureReceiver(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def silent_server(receiver_factory: Callable[..., FixtureReceiver]) -> FixtureReceiver:
    """A server that completes the TLS handshake, reads the request and never answers."""
    return receiver_factory(silent=True)


@pytest.fixture
def receiver_process() -> Iterator[Callable[..., ReceiverProcess]]:
    """Start `misfin-tui receive` child processes; any still alive are killed afterwards."""
    started: list[ReceiverProcess] = []

    def start(profile_dir: Path, **kwargs: Any) -> ReceiverProcess:
        process = ReceiverProcess(profile_dir, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.kill()


@pytest.fixture
def demo_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoWorld]:
    """The demo world (`misfin-tui --demo`), with the app left to run your receiver."""
    monkeypatch.setenv("MISFIN_TUI_NETWORK", DEMO_NETWORK)
    built = build_world(tmp_path / "demo", receive_for_you=False)
    yield built
    built.close()
