"""Where home's GMAP is when config [hosts] maps its name: one rule for sync, trust verify and
revalidate. [hosts] gives the address for the host name; the port stays the GMAP pin's (the
port in [hosts] is the Misfin server's). Real TLS on loopback addresses throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.profiles import make_profile

from misfin_tui.cli import main
from misfin_tui.core.bundle import export_bundle, import_bundle
from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.server import GmapServer
from misfin_tui.core.gmap.sync import GmapSync, SyncStatus
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Receiver
from misfin_tui.core.revalidate import Pasted, Result, present_key
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust.store import TrustStore

SECRET = b"correct horse battery"
HOME_ADDR = "127.0.0.2"  # home is reachable only through [hosts]: home.test does not resolve
RAW = b"bob@example.org Bob\nalice@home.test\n2026-01-02T03:04:05Z\n# Hello\nFirst line\n"


@dataclass
class Setup:
    home: Profile
    laptop: Profile
    gmap_port: int  # home's GMAP, on HOME_ADDR
    misfin_port: int  # another server's Misfin, on HOME_ADDR: what [hosts] names

    @property
    def pin(self) -> str:
        return f"home.test:{self.gmap_port}"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """Home serves alice@home.test's GMAP on 127.0.0.2; [hosts] on the laptop maps home.test
    to 127.0.0.2 and a Misfin port where a server with another key listens."""
    home = make_profile(tmp_path / "home", "alice@home.test", ca=True, trusted=True)
    MailStore(home.database()).add(
        folder="Inbox",
        raw=RAW,
        sender="bob@example.org",
        subject="Hello",
        body="First line\n",
        received_at="2026-01-02T03:04:05Z",
        mailbox="alice@home.test",
        unread=True,
        identity="alice@home.test",
    )
    other = make_profile(tmp_path / "other", "mallory@other.test", ca=True)
    gmap = GmapServer(home, (HOME_ADDR, 0))
    _, gmap_port = gmap.start()
    misfin = Receiver(other, (HOME_ADDR, 0))
    _, misfin_port = misfin.start()
    try:
        home.config.set("gmap.alice@home.test", ("home.test", gmap_port))
        home.save_config()
        bundle = export_bundle(home, "alice@home.test", tmp_path / "alice.bundle", SECRET)
        laptop = make_profile(tmp_path / "laptop", "me@laptop.test", trusted=True)
        import_bundle(laptop, bundle, SECRET)
        laptop.config.set("hosts.home.test", (HOME_ADDR, misfin_port))
        laptop.save_config()
        yield Setup(home, Profile.open(laptop.config_dir), gmap_port, misfin_port)
    finally:
        misfin.stop()
        gmap.stop()


def test_sync_reaches_home_only_through_hosts(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--profile", str(setup.laptop.config_dir), "sync", "--from", "alice@home.test",
                 "--trust-new", "--no-input"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"alice@home.test from {setup.pin}: done - 1 new" in out
    # The app's sync (GmapSync without --connect) takes the same way.
    engine = Engine(setup.laptop)
    try:
        report = GmapSync(engine, timeout=5).sync("alice@home.test")
    finally:
        engine.close()
    assert report.status is SyncStatus.DONE, report.reason
    assert report.hostport == setup.pin and report.fetched == 0


def test_an_explicit_connect_still_wins_over_hosts(setup: Setup) -> None:
    setup.laptop.config.set("hosts.home.test", ("127.0.0.3", setup.misfin_port))  # nobody there
    setup.laptop.save_config()
    engine = Engine(Profile.open(setup.laptop.config_dir))
    try:
        sync = GmapSync(engine, timeout=5)
        missed = sync.sync("alice@home.test", trust_new=True)
        assert missed.status is SyncStatus.UNAVAILABLE, missed.reason
        assert f"127.0.0.3:{setup.gmap_port}" in missed.reason  # [hosts]' address, GMAP's port
        report = sync.sync(
            "alice@home.test", connect=f"{HOME_ADDR}:{setup.gmap_port}", trust_new=True
        )
        assert report.status is SyncStatus.DONE, report.reason
        assert report.hostport == setup.pin and report.fetched == 1
    finally:
        engine.close()


def _synced(setup: Setup) -> Engine:
    engine = Engine(setup.laptop)
    report = GmapSync(engine, timeout=5).sync("alice@home.test", trust_new=True)
    assert report.status is SyncStatus.DONE, report.reason
    return engine


def test_revalidate_probes_the_gmap_port_not_the_misfin_port_in_hosts(setup: Setup) -> None:
    engine = _synced(setup)
    try:
        checks = {c.name: c for c in asyncio.run(engine.revalidate())}
        assert checks[setup.pin].result is Result.MATCH, checks[setup.pin].detail
    finally:
        engine.close()


def test_verify_never_pins_the_misfin_servers_key_as_homes_gmap_key(setup: Setup) -> None:
    engine = _synced(setup)
    try:
        pinned = engine.trust.host(setup.pin)
        assert pinned is not None
        # A Misfin pin for the same name still goes where [hosts] says, port and all.
        misfin_key = asyncio.run(present_key(setup.laptop, "home.test:1958"))
        assert misfin_key.fingerprint != pinned.fingerprint
        check = asyncio.run(engine.verify_server(setup.pin, misfin_key.fingerprint))
        assert check.result is Pasted.MISMATCH, check.detail
        assert check.presented == pinned.fingerprint  # what home's GMAP port presents
        after = TrustStore(setup.laptop.database()).host(setup.pin)
        assert after is not None and after.fingerprint == pinned.fingerprint
    finally:
        engine.close()


def test_cli_trust_verify_and_revalidate_of_the_gmap_pin(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    _synced(setup).close()
    profile = str(setup.laptop.config_dir)
    pinned = TrustStore(setup.laptop.database()).host(setup.pin)
    assert pinned is not None
    misfin_key = asyncio.run(present_key(setup.laptop, "home.test:1958"))
    assert main(["--profile", profile, "trust", "verify", setup.pin, misfin_key.fingerprint]) == 5
    assert "does NOT match" in capsys.readouterr().err
    after = TrustStore(setup.laptop.database()).host(setup.pin)
    assert after is not None and after.fingerprint == pinned.fingerprint
    assert main(["--profile", profile, "trust", "revalidate"]) == 0
    out = capsys.readouterr().out
    assert setup.pin in out and "still presents the key you trust" in out, out
