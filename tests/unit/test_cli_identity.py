"""The `misfin-tui` front door and `identity` commands, run as a person would: a real subprocess."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from misfin_tui.core.identity import make_self_signed

PEM = serialization.Encoding.PEM


def run(
    profile: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MISFIN_TUI_PROFILE"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        input=stdin,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("misfin-tui: error: ")
    return lines[0]


def show(profile: Path, address: str | None = None) -> dict:
    result = run(profile, "identity", "show", *([address] if address else []), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_new_identity_reads_right_to_openssl_and_show_prints_its_fingerprint(
    tmp_path: Path,
) -> None:
    result = run(tmp_path, "identity", "new", "alice@example.org", "--blurb", "Alice")
    assert result.returncode == 0, result.stderr
    data = show(tmp_path)
    cert_path = Path(data["cert_path"])
    openssl = subprocess.run(
        ["openssl", "x509", "-in", str(cert_path), "-noout", "-subject", "-nameopt", "RFC2253",
         "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    subject = openssl.stdout.splitlines()[0].removeprefix("subject=").split(",")
    assert sorted(subject) == ["CN=Alice", "UID=alice"]
    assert "DNS:example.org" in openssl.stdout
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert data["fingerprint"] == hashlib.sha256(der).hexdigest()
    assert data["fingerprint"] in result.stdout
    assert stat.S_IMODE(Path(data["key_path"]).stat().st_mode) == 0o600
    assert data["address"] == "alice@example.org" and data["blurb"] == "Alice"
    assert data["issuer_fingerprint"] is None and data["key_type"] == "p256"
    assert data["not_after"].endswith("Z") and data["default"] is True


def test_bad_address_is_one_line_and_a_usage_exit(tmp_path: Path) -> None:
    result = run(tmp_path, "identity", "new", "not-an-address")
    assert result.returncode == 2
    assert "not-an-address" in one_error_line(result)
    assert not (tmp_path / "identities").exists()
    assert run(tmp_path, "identity", "new", "alice@example.org:1958").returncode == 2
    missing = run(tmp_path, "identity", "new")
    assert missing.returncode == 2 and "ADDRESS" in one_error_line(missing)


def test_an_existing_identity_is_not_overwritten(tmp_path: Path) -> None:
    assert run(tmp_path, "identity", "new", "alice@example.org").returncode == 0
    before = show(tmp_path)["fingerprint"]
    again = run(tmp_path, "identity", "new", "Alice@example.org", "--key-type", "ed25519")
    assert again.returncode == 1
    assert "already exists" in one_error_line(again)
    assert show(tmp_path)["fingerprint"] == before


def test_host_ca_signs_later_mailboxes_of_its_host(tmp_path: Path) -> None:
    first = run(tmp_path, "identity", "new", "alice@example.org", "--ca", "--key-type", "ed25519")
    assert first.returncode == 0, first.stderr
    assert "new host CA for example.org" in first.stdout
    second = run(tmp_path, "identity", "new", "bob@example.org", "--blurb", "Bob")
    assert second.returncode == 0, second.stderr
    assert "signed by the profile's host CA for example.org" in second.stdout
    other = run(tmp_path, "identity", "new", "carol@example.net")
    assert "self-signed" in other.stdout

    ca = x509.load_pem_x509_certificate(
        (tmp_path / "identities/_ca/example.org/ca.pem").read_bytes()
    )
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ca_fp = hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest()
    listed = json.loads(run(tmp_path, "identity", "list", "--json").stdout)
    assert [i["address"] for i in listed] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.net",
    ]
    assert [i["issuer_fingerprint"] for i in listed] == [ca_fp, ca_fp, None]
    assert [i["default"] for i in listed] == [True, False, False]
    bob = x509.load_pem_x509_certificate(Path(listed[1]["cert_path"]).read_bytes())
    bob.verify_directly_issued_by(ca)
    assert bob.issuer == ca.subject
    assert 'default_identity = "alice@example.org"' in (tmp_path / "config.toml").read_text()
    assert show(tmp_path, "bob@example.org")["blurb"] == "Bob"


def _write_external(tmp_path: Path, passphrase: bytes | None) -> tuple[Path, Path, str]:
    cert, key = make_self_signed("dave", "example.com", "Dave", "rsa2048")
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    cert_path, key_path = tmp_path / "dave.crt", tmp_path / "dave.key"
    cert_path.write_bytes(cert.public_bytes(PEM))
    key_path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, encryption))
    fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_path, key_path, fp


def test_import_with_passphrase_from_the_environment(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    cert_path, key_path, fp = _write_external(tmp_path, b"open sesame")
    # No passphrase and no terminal to ask on: say how to give one.
    asked = run(profile, "identity", "import", str(cert_path), "--key", str(key_path))
    assert "--passphrase-env" in one_error_line(asked)
    wrong = run(profile, "identity", "import", str(cert_path), "--key", str(key_path),
                "--passphrase-env", "PW", env={"PW": "nope"})  # fmt: skip
    assert "wrong passphrase" in one_error_line(wrong)
    unset = run(profile, "identity", "import", str(cert_path), "--key", str(key_path),
                "--passphrase-env", "NOT_SET_ANYWHERE")  # fmt: skip
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE" in one_error_line(unset)
    good = run(profile, "identity", "import", str(cert_path), "--key", str(key_path),
               "--passphrase-env", "PW", env={"PW": "open sesame"})  # fmt: skip
    assert good.returncode == 0, good.stderr
    data = show(profile, "dave@example.com")
    assert data["fingerprint"] == fp and data["key_type"] == "rsa2048"
    stored = Path(data["key_path"])
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    serialization.load_pem_private_key(stored.read_bytes(), password=None)


def test_import_combined_file_and_mismatched_key(tmp_path: Path) -> None:
    cert_path, key_path, fp = _write_external(tmp_path, None)
    combined = tmp_path / "both.pem"
    combined.write_bytes(cert_path.read_bytes() + key_path.read_bytes())
    stranger = tmp_path / "stranger.key"
    stranger.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    mismatched = run(tmp_path / "p", "identity", "import", str(cert_path), "--key", str(stranger))
    assert "does not belong" in one_error_line(mismatched)
    assert run(tmp_path / "p", "identity", "import", str(combined)).returncode == 0
    assert show(tmp_path / "p")["fingerprint"] == fp


def test_list_and_show_with_nothing_there(tmp_path: Path) -> None:
    assert json.loads(run(tmp_path, "identity", "list", "--json").stdout) == []
    assert "identity new" in run(tmp_path, "identity", "list").stdout
    assert "no identity yet" in one_error_line(run(tmp_path, "identity", "show"))
    assert not tmp_path.joinpath("config.toml").exists()


def test_a_broken_config_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[trust]\nfirst_contact = 5\n")
    line = one_error_line(run(tmp_path, "identity", "new", "alice@example.org"))
    assert f"{tmp_path / 'config.toml'} line 2: trust.first_contact" in line


def test_a_profile_that_is_a_file_is_a_friendly_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert "file" in one_error_line(run(not_a_folder, "identity", "new", "alice@example.org"))


def test_help_lists_every_command_with_a_description(tmp_path: Path) -> None:
    from misfin_tui.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    assert commands.choices, "no command registered"
    for choice in commands._choices_actions:
        assert choice.help, f"{choice.dest} has no one-line description"
        assert choice.dest in result.stdout and choice.help.split()[0] in result.stdout
    assert "identity" in result.stdout
    version = run(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("misfin-tui ")


def test_headless_commands_do_not_import_the_ui_toolkit(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from misfin_tui.cli import main\n"
        f"rc = main(['--profile', {str(tmp_path)!r}, 'identity', 'list'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print('LOADED', rc, ','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "LOADED 0"


def test_profile_from_the_environment(tmp_path: Path) -> None:
    environment = dict(os.environ, MISFIN_TUI_PROFILE=str(tmp_path))
    made = subprocess.run(
        [sys.executable, "-m", "misfin_tui", "identity", "new", "eve@example.org"],
        capture_output=True, text=True, timeout=60, env=environment,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "identities" / "eve@example.org" / "cert.pem").is_file()


def test_demo_does_not_take_a_command(tmp_path: Path) -> None:
    result = run(tmp_path, "--demo", "identity", "list")
    assert result.returncode == 2 and "--demo" in one_error_line(result)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_import_asks_for_the_passphrase_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import select

    cert_path, key_path, fp = _write_external(tmp_path, b"typed secret")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "misfin_tui", "--profile", str(tmp_path / "p"),
         "identity", "import", str(cert_path), "--key", str(key_path)],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    seen = b""
    try:
        while b"Passphrase for" not in seen:
            ready, _, _ = select.select([controller], [], [], 30)
            assert ready, f"no passphrase prompt; got {seen!r}"
            seen += os.read(controller, 1024)
        os.write(controller, b"typed secret\n")
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(controller)
    assert show(tmp_path / "p")["fingerprint"] == fp


def test_no_command_opens_the_app_on_the_chosen_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import misfin_tui.ui.app
    from misfin_tui.cli import main

    opened = []
    monkeypatch.setattr(misfin_tui.ui.app, "run_app", lambda profile: opened.append(profile) or 7)
    assert main(["--profile", str(tmp_path)]) == 7
    assert [p.config_dir for p in opened] == [tmp_path]


def test_export_says_what_stops_it_before_asking_for_a_passphrase(tmp_path: Path) -> None:
    """No such identity, no host CA for --with-ca, or a FILE already there: said at once,
    not after the passphrase was typed twice (nor as "a passphrase is needed" without one)."""
    profile = tmp_path / "p"
    assert run(profile, "identity", "new", "alice@example.org").returncode == 0
    existing = tmp_path / "there.bundle"
    existing.write_text("keep me")
    fresh = tmp_path / "new.bundle"
    cases = [
        (("nobody@example.org", str(fresh)), "no identity nobody@example.org"),
        (("alice@example.org", str(existing)), f"{existing} already exists"),
        (("alice@example.org", str(fresh), "--with-ca"), "has no host CA in this profile"),
    ]
    for args, said in cases:
        result = run(profile, "identity", "export", *args)
        assert result.returncode == 1, result.stderr
        assert said in one_error_line(result) and "passphrase" not in result.stderr, args
    assert existing.read_text() == "keep me" and not fresh.exists()
    asks = run(profile, "identity", "export", "alice@example.org", str(fresh))
    assert "a passphrase is needed" in one_error_line(asks)  # the one thing left to give


def test_a_damaged_certificate_is_told_in_words(tmp_path: Path) -> None:
    """A PEM file cut short or edited: said plainly, not as cryptography's pointer to its FAQ
    or its parser's debug dump ("ParseError { kind: UnexpectedTag { … } }")."""
    made = tmp_path / "made"
    assert run(made, "identity", "new", "alice@example.org").returncode == 0
    folder = made / "identities" / "alice@example.org"
    pem = (folder / "cert.pem").read_text()
    cut, edited = tmp_path / "cut.pem", tmp_path / "edited.pem"
    cut.write_text(pem[: len(pem) // 2])
    body = pem.splitlines()
    edited.write_text("\n".join([body[0], "A" * 8 + body[1][8:], *body[2:]]) + "\n")
    for damaged in (cut, edited):
        result = run(tmp_path / "p", "identity", "import", str(damaged), "--key",
                     str(folder / "key.pem"))  # fmt: skip
        line = one_error_line(result)
        assert line == (
            f"misfin-tui: error: {damaged}: unreadable certificate (the PEM block is damaged:"
            " cut short, or edited)"
        ), line
