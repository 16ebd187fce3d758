"""After `identity rotate` at home, the laptop gets going again: sync says what to do, and
`identity import` of the new bundle replaces the old certificate (kept retired). Real TLS on
127.0.0.1 against our own GMAP server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.gmap import serving
from helpers.profiles import NETWORK, make_profile

from misfin_tui.cli import main
from misfin_tui.core.engine import Engine
from misfin_tui.core.network import Networks
from misfin_tui.core.notice import Reason
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust.store import TrustStore

PASS_ENV = "BUNDLE_PASS"
ME = "alice@localhost"


def _receive(profile: Profile, n: int) -> None:
    MailStore(profile.database()).add(
        folder="Inbox",
        raw=f"bob@example.org Bob\n{ME}\n2026-01-02T03:04:0{n}Z\n# Hello {n}\nLine\n".encode(),
        sender="bob@example.org",
        subject=f"Hello {n}",
        body="Line\n",
        received_at=f"2026-01-02T03:04:0{n}Z",
        mailbox=ME,
        unread=True,
        identity=ME,
    )


def _cli(profile: Path, *args: str) -> int:
    return main(["--profile", str(profile), *args])


def _export(home: Path, bundle: Path) -> None:
    assert _cli(home, "identity", "export", ME, str(bundle), "--passphrase-env", PASS_ENV) == 0


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASS_ENV, "correct horse battery")


def test_laptop_imports_the_rotated_bundle_and_syncs_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = make_profile(tmp_path / "home", ME, ca=True, trusted=True)
    laptop_dir = tmp_path / "laptop"
    _receive(home, 1)
    _export(home.config_dir, tmp_path / "old.bundle")
    assert _cli(laptop_dir, "identity", "import", str(tmp_path / "old.bundle"),
                "--passphrase-env", PASS_ENV) == 0  # fmt: skip
    old_fp = Profile.open(laptop_dir).identity(ME).fingerprint
    Networks(Profile.open(laptop_dir).database()).trust(NETWORK, "Home")
    with serving(home) as port:
        sync = ["sync", "--connect", f"127.0.0.1:{port}", "--trust-new", "--no-input"]
        assert _cli(laptop_dir, *sync) == 0, capsys.readouterr()
        assert "1 new" in capsys.readouterr().out

        engine = Engine(home)
        try:
            engine.rotate(ME, Reason.ROUTINE)
        finally:
            engine.close()
        time.sleep(1.1)  # the server looks at the identities folder at most once a second
        _receive(home, 2)

        assert _cli(laptop_dir, *sync) == 5
        out = capsys.readouterr().out
        assert "61 'Certificate retired'" in out
        assert "was retired at home (rotated?)" in out
        assert f"misfin-tui identity export {ME} FILE" in out
        assert "misfin-tui identity import FILE" in out

        _export(home.config_dir, tmp_path / "new.bundle")
        new_fp = Profile.open(home.config_dir).identity(ME).fingerprint
        assert new_fp != old_fp
        capsys.readouterr()
        # The successor (signed by the same host CA) replaces the old one without --replace.
        assert _cli(laptop_dir, "identity", "import", str(tmp_path / "new.bundle"),
                    "--passphrase-env", PASS_ENV) == 0  # fmt: skip
        out = capsys.readouterr().out
        assert f"Replaced identity {ME}" in out and old_fp in out
        laptop = Profile.open(laptop_dir)
        assert laptop.identity(ME).fingerprint == new_fp
        assert [i.address for i in laptop.identities()] == [laptop.identity(ME).address]
        assert laptop.retired_identity(ME, old_fp).fingerprint == old_fp  # kept, as rotate does
        revoked = TrustStore(laptop.database()).revocation(ME, old_fp)
        assert revoked is not None

        # The retired bundle is never taken back, even with --replace.
        for extra in ((), ("--replace",)):
            assert _cli(laptop_dir, "identity", "import", str(tmp_path / "old.bundle"),
                        "--passphrase-env", PASS_ENV, *extra) == 1  # fmt: skip
            assert "was retired here" in capsys.readouterr().err
        assert Profile.open(laptop_dir).identity(ME).fingerprint == new_fp

        assert _cli(laptop_dir, *sync) == 0, capsys.readouterr()
        assert "done - 1 new" in capsys.readouterr().out
    assert MailStore(Profile.open(laptop_dir).database()).count("Inbox") == 2


def test_a_bundle_that_is_not_the_successor_needs_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = make_profile(tmp_path / "home", ME, ca=True)
    stranger = make_profile(tmp_path / "stranger", ME)  # self-signed, another key
    laptop_dir = tmp_path / "laptop"
    _export(home.config_dir, tmp_path / "home.bundle")
    _export(stranger.config_dir, tmp_path / "other.bundle")
    assert _cli(laptop_dir, "identity", "import", str(tmp_path / "home.bundle"),
                "--passphrase-env", PASS_ENV) == 0  # fmt: skip
    before = Profile.open(laptop_dir).identity(ME).fingerprint
    capsys.readouterr()
    assert _cli(laptop_dir, "identity", "import", str(tmp_path / "home.bundle"),
                "--passphrase-env", PASS_ENV) == 1  # fmt: skip
    assert "already holds this certificate" in capsys.readouterr().err
    assert _cli(laptop_dir, "identity", "import", str(tmp_path / "other.bundle"),
                "--passphrase-env", PASS_ENV) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "not its rotated successor" in err and "--replace" in err
    assert Profile.open(laptop_dir).identity(ME).fingerprint == before
    assert _cli(laptop_dir, "identity", "import", str(tmp_path / "other.bundle"),
                "--passphrase-env", PASS_ENV, "--replace") == 0  # fmt: skip
    laptop = Profile.open(laptop_dir)
    assert laptop.identity(ME).fingerprint == stranger.identity(ME).fingerprint
    assert laptop.retired_identity(ME, before).fingerprint == before
