"""Rotating a certificate from the app (issue 12): the palette command asks first, then the
identity has a new certificate and a notice to each past contact waits in the Outbox."""

from __future__ import annotations

import time
from pathlib import Path

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.profile import Profile
from misfin_tui.core.trust.model import Origin
from misfin_tui.ui.app import make_app
from misfin_tui.ui.prompts import ConfirmScreen


async def test_rotate_from_the_palette_asks_then_rotates_and_tells_contacts(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "alice")
    profile.create_identity(Address.parse("alice@a.test"), "Alice", ca=True)
    profile.config.set("hosts.b.test", ("127.0.0.1", 9))  # bob's server is away: notices wait
    profile.save_config()
    engine = Engine(profile)
    engine.trust.record_mailbox("bob@b.test", "ab" * 32, Origin.DELIVERY, "cd" * 32)
    old = profile.identity("alice@a.test").fingerprint
    app = make_app(profile, engine=engine, start_receiver=False)
    async with app.run_test(size=(100, 30)) as pilot:
        deadline = time.monotonic() + 15
        while app.session.default_identity != "alice@a.test":
            assert time.monotonic() < deadline
            await pilot.pause(0.1)
        await app.run_action("rotate_identity")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        while not engine.outbox.items():
            assert time.monotonic() < deadline + 15, "no notice was queued"
            await pilot.pause(0.1)
        [notice] = engine.outbox.items()
    assert notice.recipient == "bob@b.test" and notice.present == old  # the old certificate
    assert Profile.open(tmp_path / "alice").identity("alice@a.test").fingerprint != old
