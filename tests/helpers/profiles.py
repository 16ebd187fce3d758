"""Profiles on disk for the tests, the names they use, and the ways a test points a profile at
a server (config [hosts], like curl --connect-to) or at a network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from helpers.certs import CertAndKey, Creds, install_identity
from misfin_tui.core.address import Address
from misfin_tui.core.clock import utc_now
from misfin_tui.core.network import Networks
from misfin_tui.core.profile import Profile

NETWORK = "test-net"  # every test starts on it (MISFIN_TUI_NETWORK, set by the root conftest)
CAFE = "cafe-net"  # somewhere else
SENDER = "alice@alice.test"  # the `sender` fixture's identity
RECIPIENT = "bob@example.org"  # who the sender writes to: the `peer`, or a receiver under test
ME = "alice@example.org"  # the mail UI's own address


class Listening(Protocol):
    """Anything serving on 127.0.0.1 at a port (a FixtureReceiver, a Peer, a Running)."""

    @property
    def port(self) -> int: ...


def make_profile(
    folder: Path,
    *addresses: str,
    ca: bool = False,
    hosts: dict[str, tuple[str, int]] | None = None,
    unverified: str | None = None,
    trusted: bool = False,
) -> Profile:
    """A profile with one identity per address (the first is the default; none given: ME),
    created by the core as a user would, read back fresh as a new process would read it.
    `trusted`: the test network NETWORK is marked trusted (as "Home")."""
    profile = Profile.open(folder)
    for address in addresses or (ME,):
        parsed = Address.parse(address)
        profile.create_identity(parsed, parsed.mailbox.capitalize(), ca=ca)
    for host, target in (hosts or {}).items():
        profile.config.set(f"hosts.{host}", target)
    if unverified is not None:
        profile.config.set("receiver.unverified", unverified)
    profile.save_config()
    if trusted:
        Networks(profile.database()).trust(NETWORK, "Home")
    return Profile.open(folder)


def open_profile(folder: Path, address: str | None, cert: CertAndKey | None) -> Profile:
    """A profile whose identity is a fixed certificate (see certs.fixed_cert), or none."""
    profile = Profile.open(folder)
    if address and cert:
        install_identity(profile, address, cert)
        profile.config.set("default_identity", address)
    profile.save_config()
    return profile


def route(profile: Profile, host: str, server: Listening) -> None:
    """Map `host` to the server's port on 127.0.0.1 in config [hosts]."""
    profile.config.set(f"hosts.{host}", f"127.0.0.1:{server.port}")
    profile.save_config()


def env_for(profile: Profile, network: str = NETWORK) -> dict[str, str]:
    """The environment of a `misfin-tui` child process using `profile` on `network`."""
    env = dict(os.environ)
    env["MISFIN_TUI_PROFILE"] = str(profile.config_dir)
    env["MISFIN_TUI_NETWORK"] = network
    return env


def trust_network(profile: Profile, network_id: str = NETWORK, label: str = "Home") -> None:
    """Be on `network_id` (MISFIN_TUI_NETWORK; the root conftest restores it) and trust it."""
    networks = Networks(profile.database())
    os.environ["MISFIN_TUI_NETWORK"] = network_id
    networks.current()
    networks.trust(network_id, label)


def pin_verified(profile: Profile, senders: list[Creds]) -> None:
    """The receiver verified these senders a moment ago: its check is a cache hit."""
    now = utc_now()
    rows = []
    for creds in senders:
        assert creds.address is not None, creds
        rows.append((creds.address, creds.fingerprint, now, now, now))
    with profile.database().transaction() as conn:
        conn.executemany(
            "INSERT INTO mailboxes(address, fingerprint, state, first_seen, last_seen,"
            " checked_at, check_result) VALUES (?, ?, 'pinned', ?, ?, ?, 'verified')",
            rows,
        )
