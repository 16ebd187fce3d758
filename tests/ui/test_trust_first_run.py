"""Pilot tests of the first-run screen: create or import an identity, turn the receiver on."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from helpers.certs import fixed_cert
from helpers.pilot import TrustHost, wait_for, wait_screen
from helpers.profiles import open_profile
from textual.widgets import Checkbox, Input, RadioButton, Select, Static, TabbedContent

from misfin_tui.core.profile import Profile
from misfin_tui.ui.screens.first_run import FirstRunScreen


async def start(app: TrustHost, pilot) -> tuple[FirstRunScreen, list[bool]]:
    results: list[bool] = []
    app.push_screen(FirstRunScreen(), results.append)
    return await wait_screen(pilot, FirstRunScreen), results


async def test_create_host_ca_identity_and_turn_on_receiver(tmp_path: Path) -> None:
    profile = open_profile(tmp_path / "carol", None, None)
    app = TrustHost(profile)
    async with app.run_test(size=(120, 36)) as pilot:
        screen, results = await start(app, pilot)
        screen.query_one("#address", Input).value = "carol@carol.test"
        screen.query_one("#blurb", Input).value = "Carol"
        screen.query_one("#with-ca", RadioButton).value = True
        screen.query_one("#key-type", Select).value = "ed25519"
        screen.query_one("#receiver", Checkbox).value = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: results == [True])
    again = Profile.open(tmp_path / "carol")
    identity = again.identity()
    assert str(identity.address) == "carol@carol.test"
    assert identity.blurb == "Carol"
    assert identity.issuer_fingerprint is not None  # signed by the new host CA
    assert again.host_ca("carol.test") is not None
    assert again.config.receiver_enabled is True


async def test_bad_address_is_explained_and_nothing_is_made(tmp_path: Path) -> None:
    profile = open_profile(tmp_path / "dave", None, None)
    app = TrustHost(profile)
    async with app.run_test(size=(120, 36)) as pilot:
        screen, results = await start(app, pilot)
        screen.query_one("#address", Input).value = "no at sign"
        await pilot.press("enter")  # Enter in a field submits too
        status = screen.query_one("#first-run-status", Static)
        await wait_for(pilot, lambda: str(status.content) != "")
        assert app.screen is screen and results == []
        assert profile.identities() == []
        await pilot.press("escape")
        await wait_for(pilot, lambda: results == [False])


async def test_import_pem_files(tmp_path: Path) -> None:
    cert = fixed_cert(7, "erin@erin.test", blurb="Erin")
    cert_path, key_path = tmp_path / "erin.pem", tmp_path / "erin.key"
    cert_path.write_bytes(cert.cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        cert.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"sesame"),
        )
    )
    profile = open_profile(tmp_path / "erin", None, None)
    app = TrustHost(profile)
    async with app.run_test(size=(120, 36)) as pilot:
        screen, results = await start(app, pilot)
        await pilot.click("#--content-tab-import")
        assert screen.query_one(TabbedContent).active == "import"
        screen.query_one("#cert-path", Input).value = str(cert_path)
        screen.query_one("#key-path", Input).value = str(key_path)
        screen.query_one("#passphrase", Input).value = "wrong"
        await pilot.press("ctrl+s")
        status = screen.query_one("#first-run-status", Static)
        await wait_for(pilot, lambda: str(status.content) != "")
        assert results == []
        screen.query_one("#passphrase", Input).value = "sesame"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: results == [True])
    identity = Profile.open(tmp_path / "erin").identity()
    assert identity.fingerprint == cert.fingerprint
    assert Profile.open(tmp_path / "erin").config.receiver_enabled is False
