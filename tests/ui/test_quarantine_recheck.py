"""V on a Quarantine letter checks its sender again, with real servers on 127.0.0.1: "home"
serves example.net and vouches for alice; the app's profile pinned an old key for it."""

from __future__ import annotations

from pathlib import Path

from helpers.certs import forged, identity_creds
from helpers.pilot import SIZE, record_notes, settle, wait_for
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from helpers.receivers import running

from misfin_tui.core.client import presented_cert
from misfin_tui.core.network import Networks
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.trust.model import Origin
from misfin_tui.ui.app import make_app
from misfin_tui.ui.widgets.letter_list import LetterList

BODY = b"\n\n\n# Hello\nFrom alice.\n"
LETTER = b"misfin://bob@example.org\t%d\r\n%s" % (len(BODY), BODY)


async def test_v_checks_a_quarantined_sender_again_and_moves_it_once_it_passes(
    tmp_path: Path,
) -> None:
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    with running(home_profile) as home:
        bob = make_profile(
            tmp_path / "bob", "bob@example.org", hosts={"example.net": ("127.0.0.1", home.port)}
        )
        trust = TrustStore(bob.database())
        stale = forged(tmp_path / "certs", "old", "example.net", "old-server")
        network = Networks(bob.database()).current()
        trust.pin_host("example.net:1958", presented_cert(stale.der), network, Origin.APPROVED)
        with running(bob) as receiver:
            alice = identity_creds(home_profile, "alice@example.net")
            assert status_of(exchange(receiver.port, LETTER, alice).response) == 20
            (quarantined,) = receiver.wait_for("quarantined")

        app = make_app(bob, start_receiver=False)
        notes = record_notes(app)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("V")  # in the Inbox: nothing to check
            await settle(pilot)
            assert notes[-1] == "Only letters in Quarantine are checked again."
            await pilot.press("5")
            await settle(pilot)
            rows = app.screen.query_one("#letters", LetterList)
            assert [s.id for s in rows.letters] == [quarantined["id"]]
            await pilot.press("V")  # the old key is still pinned: it stays
            await wait_for(pilot, lambda: notes[-1].startswith("Still not verified"))
            assert "different key from the one you trust" in notes[-1]
            assert [s.id for s in rows.letters] == [quarantined["id"]]

            assert trust.forget_host("example.net:1958")  # the person reviewed it in Trust
            await pilot.press("V")
            await wait_for(pilot, lambda: notes[-1] == "Verified: 1 moved to the Inbox.")
            await settle(pilot)
            assert [s.id for s in rows.letters] == []
            letter = app.engine.store.get(quarantined["id"])
            assert letter is not None and (letter.folder, letter.trust) == ("Inbox", "verified")
