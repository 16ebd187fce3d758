"""The café attack, replayed with real processes: a key learned while verifying is no approval.

The attacker's DNS (here: our [hosts]) points bank.test at the attacker's own Misfin server,
and the attacker sends us a letter from a self-signed ceo@bank.test. Our receiver verifies the
sender with a blank request to bank.test, which the attacker answers with the attacker's own
fingerprint, so the letter checks out and the server key is learned. A letter we then send to
ceo@bank.test must still be held (untrusted network) or asked about (trusted network): with
--no-input both exit 3, and nothing reaches the attacker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CAFE, HOME, LAIR = "cafe-net", "home-net", "attackers-net"


def cli(
    profile: Path, *args: str, network: str, body: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MISFIN_TUI_NETWORK": network}
    env.pop("MISFIN_TUI_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile), *args],
        input=body,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def make_profile(root: Path, address: str, hosts: dict[str, int]) -> Path:
    folder = root / address.split("@")[0]
    folder.mkdir()
    lines = ["[receiver]", "enabled = false", "", "[hosts]"]
    lines += [f'"{host}" = "127.0.0.1:{port}"' for host, port in hosts.items()]
    (folder / "config.toml").write_text("\n".join(lines) + "\n")
    made = cli(folder, "identity", "new", address, network=LAIR)
    assert made.returncode == 0, made.stderr
    return folder


def set_host(profile: Path, host: str, port: int) -> None:
    config = profile / "config.toml"
    config.write_text(config.read_text() + f'"{host}" = "127.0.0.1:{port}"\n')


class Receiving:
    """`misfin-tui receive` in a process of its own, on a port the system picked."""

    def __init__(self, profile: Path, network: str) -> None:
        env = {**os.environ, "MISFIN_TUI_NETWORK": network}
        env.pop("MISFIN_TUI_PROFILE", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "misfin_tui",
                "--profile",
                str(profile),
                "receive",
                "--listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("receiving on "), line + (
            self.proc.stderr.read() if self.proc.stderr else ""
        )
        self.port = int(line.split()[2].rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, object]]:
    attacker = make_profile(tmp_path, "ceo@bank.test", {})
    lair = Receiving(attacker, LAIR)
    me = make_profile(tmp_path, "me@home.test", {"bank.test": lair.port})
    mine = Receiving(me, CAFE)
    set_host(attacker, "home.test", mine.port)
    try:
        yield {"attacker": attacker, "me": me}
    finally:
        mine.stop()
        lair.stop()


def letters(profile: Path, folder: str = "all") -> list[dict[str, object]]:
    listed = cli(profile, "mail", "list", "--folder", folder, "--json", network=LAIR)
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_a_key_learned_while_verifying_a_forged_sender_is_never_approval(world) -> None:
    attacker, me = world["attacker"], world["me"]
    assert isinstance(attacker, Path) and isinstance(me, Path)
    # The attacker writes to us as ceo@bank.test from a network of their own.
    assert cli(attacker, "network", "trust", "Lair", network=LAIR).returncode == 0
    sent = cli(
        attacker,
        "send",
        "--to",
        "me@home.test",
        "--trust-new",
        "--no-input",
        network=LAIR,
        body="Please wire the money.\n",
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    # Our receiver, on the café network, verifies the sender against "bank.test" (the
    # attacker's server): the letter checks out and the server key is learned.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        inbox = letters(me, "Inbox")
        if inbox and inbox[0]["trust"] == "verified":
            break
        time.sleep(0.2)
    assert inbox and inbox[0]["trust"] == "verified", inbox
    trusted = json.loads(cli(me, "trust", "list", "--json", network=CAFE).stdout)
    [host] = [e for e in trusted if e["kind"] == "host"]
    assert host["name"] == "bank.test:1958" and host["origin"] == "learned"
    assert host["origin_network"] == CAFE

    # Still on the café network: our answer is held, and the attacker gets nothing.
    held = cli(
        me,
        "send",
        "--to",
        "ceo@bank.test",
        "--no-input",
        network=CAFE,
        body="Sure, which account?\n",
    )
    assert held.returncode == 3, held.stdout + held.stderr
    assert "ceo@bank.test: held" in held.stdout
    assert letters(attacker, "Inbox") == []

    # On a trusted network it is a first contact that asks: with --no-input, exit 3 again.
    assert cli(me, "network", "trust", "Home", "--no-input", network=HOME).returncode == 0
    asked = cli(
        me, "send", "--to", "ceo@bank.test", "--no-input", network=HOME, body="Second thoughts.\n"
    )
    assert asked.returncode == 3, asked.stdout + asked.stderr
    assert "ceo@bank.test: decision" in asked.stdout
    assert letters(attacker, "Inbox") == []
    waiting = json.loads(cli(me, "outbox", "list", "--json", network=HOME).stdout)
    questions = [item["question"] for item in waiting if item["question"]]
    assert {q["ask"] for q in questions} == {"first-contact"}
    assert all(q["vouch"]["sender"] == "ceo@bank.test" for q in questions)
    assert all(q["pinned"] is None for q in questions)  # nothing approved to compare with
