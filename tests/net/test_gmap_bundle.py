"""`identity export` / `identity import` of a bundle: one identity on two machines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from helpers.profiles import make_profile

from misfin_tui.cli import main
from misfin_tui.core.address import Address
from misfin_tui.core.bundle import BundleError, export_bundle, import_bundle
from misfin_tui.core.identity import PassphraseRequired
from misfin_tui.core.profile import Profile

SECRET = b"correct horse battery"


def test_bundle_carries_the_identity_and_home(tmp_path: Path) -> None:
    home = make_profile(tmp_path / "home", "alice@example.org", ca=True)
    home.config.set("gmap.alice@example.org", ("mail.example.org", 1961))
    home.save_config()
    bundle = export_bundle(home, "alice@example.org", tmp_path / "alice.bundle", SECRET)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    data = bundle.read_bytes()
    assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN ENCRYPTED PRIVATE KEY" in data
    assert data.count(b"BEGIN CERTIFICATE") == 2  # mailbox and host CA
    assert data.count(b"ENCRYPTED PRIVATE KEY-----\n") == 2  # one key: BEGIN and END
    laptop = Profile.open(tmp_path / "laptop")
    with pytest.raises(PassphraseRequired):
        import_bundle(laptop, bundle, None)
    with pytest.raises(BundleError, match="wrong passphrase"):
        import_bundle(laptop, bundle, b"not the passphrase")
    imported = import_bundle(laptop, bundle, SECRET)
    original = home.identity("alice@example.org")
    assert imported.identity.fingerprint == original.fingerprint
    assert imported.identity.issuer_fingerprint == original.issuer_fingerprint
    assert not imported.with_ca and laptop.host_ca("example.org") is None
    assert imported.home == "mail.example.org:1961"
    assert Profile.open(tmp_path / "laptop").config.gmap_homes == {
        "alice@example.org": ("mail.example.org", 1961)
    }
    with pytest.raises(BundleError):  # never overwritten
        export_bundle(home, "alice@example.org", bundle, SECRET)


def test_with_ca_the_laptop_can_sign_new_mailboxes(tmp_path: Path) -> None:
    home = make_profile(tmp_path / "home", "alice@example.org", ca=True)
    bundle = export_bundle(home, "alice@example.org", tmp_path / "b", SECRET, with_ca=True)
    laptop = Profile.open(tmp_path / "laptop")
    imported = import_bundle(laptop, bundle, SECRET)
    assert imported.with_ca and imported.home == "example.org:1960"
    created = laptop.create_identity(Address.parse("carol@example.org"))
    assert created.signer == "ca"
    assert created.identity.issuer_fingerprint == home.identity().issuer_fingerprint


def test_cli_export_and_import_with_passphrase_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_profile(tmp_path / "home", "alice@example.org")
    monkeypatch.setenv("BUNDLE_PASS", SECRET.decode())
    out = tmp_path / "alice.bundle"
    home = str(tmp_path / "home")
    assert main(["--profile", home, "identity", "export", "alice@example.org", str(out),
                 "--passphrase-env", "BUNDLE_PASS"]) == 0  # fmt: skip
    assert main(["--profile", str(tmp_path / "laptop"), "identity", "import", str(out),
                 "--passphrase-env", "BUNDLE_PASS"]) == 0  # fmt: skip
    assert "Imported identity alice@example.org" in capsys.readouterr().out
    # Without the passphrase and without a terminal: a clear error, exit 1.
    assert main(["--profile", str(tmp_path / "third"), "identity", "import", str(out)]) == 1
    assert "passphrase" in capsys.readouterr().err
    # --with-ca on a self-signed identity: nothing to export.
    assert main(["--profile", str(tmp_path / "home"), "identity", "export",
                 "alice@example.org", str(tmp_path / "x"), "--with-ca",
                 "--passphrase-env", "BUNDLE_PASS"]) == 1  # fmt: skip
