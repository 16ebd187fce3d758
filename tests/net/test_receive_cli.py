"""`misfin-tui receive` as a real process, and `mail list|show` on what it stored."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.certs import forged, write_creds
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from helpers.receivers import running

from misfin_tui.cli import main
from misfin_tui.core.identity import make_self_signed
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

UNREACHABLE = {"example.net": ("127.0.0.1", 9)}  # verification stays pending, and offline


def _start(profile_dir: Path) -> tuple[subprocess.Popen, int]:
    return _start_receive(profile_dir, "bob@example.org")


def test_acknowledged_letter_survives_sigkill(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org", hosts=UNREACHABLE)
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    proc, port = _start(profile.config_dir)
    try:
        body = b"\n\n\n# Durable\nkept\n"
        out = exchange(port, b"misfin://bob@example.org\t%d\r\n%s" % (len(body), body), alice)
        assert status_of(out.response) == 20
        os.kill(proc.pid, signal.SIGKILL)  # right after the 20: no clean shutdown at all
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = MailStore(Profile.open(profile.config_dir).database())
    letter = store.get(store.latest_id())
    assert letter is not None and letter.sender == "alice@example.net"
    assert letter.raw.endswith(b"\n# Durable\nkept\n") and letter.subject == "Durable"


def test_receive_logs_each_transaction_and_stops_on_sigterm(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org", hosts=UNREACHABLE)
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    proc, port = _start(profile.config_dir)
    try:
        assert status_of(exchange(port, b"misfin://bob@example.org Hi\r\n", alice).response) == 20
        assert status_of(exchange(port, b"misfin://carol@example.org Hi\r\n", alice).response) == 51
        # A direction mark, an invisible character or a look-alike @ would show the address as
        # another: not a valid sender at all.
        for name, mailbox in (("bidi", "ev\u202eil"), ("zwsp", "ev\u200bil"), ("at", "a\uff20b")):
            cert, key = make_self_signed(mailbox, "example.net", "Evil")
            creds = write_creds(tmp_path / "certs", name, cert, key)
            response = exchange(port, b"misfin://bob@example.org Hi\r\n", creds).response
            assert status_of(response) == 62, (mailbox, response)
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    lines = stdout.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert any(
        re.fullmatch(
            stamp
            + r" peer=127\.0\.0\.1:\d+ sender=alice@example\.net"
            + r" mailbox=bob@example\.org status=20",
            ln,
        )
        for ln in lines
    ), stdout
    assert any(
        re.fullmatch(stamp + r" peer=127\.0\.0\.1:\d+ sender=- mailbox=- status=51", ln)
        for ln in lines
    ), stdout
    # A sender's address comes from its certificate: shown, never executed or reordered.
    assert "\u202e" not in stdout and "\u200b" not in stdout and "\uff20" not in stdout


def test_receive_without_identity_is_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()  # a profile folder without an identity
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "misfin_tui",
            "--profile",
            str(empty),
            "receive",
            "--listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert (
        result.stderr.startswith("misfin-tui: error: no identity")
        and result.stderr.count("\n") == 1
    )


def test_a_port_in_use_is_named_in_one_line(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "p", "bob@example.org")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "misfin_tui", "--profile", str(profile.config_dir)]
            + ["receive", "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1, result
    assert result.stderr == (
        f"misfin-tui: error: cannot listen on 127.0.0.1:{port}: Address already in use (is "
        "another receiver running? --listen picks another)\n"
    )


@pytest.fixture
def mailbox(tmp_path: Path):
    """bob's profile with three letters: two in the Inbox, one quarantined by hand."""
    profile = make_profile(tmp_path / "bob", "bob@example.org", hosts=UNREACHABLE)
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    with running(profile) as r:
        for body in (
            b"\n\n\n# First\none\n",
            b"\n\n\n# Evil \x1b[31mred\x1b[0m\nbody \x1b]0;x\x07 here\n",
        ):
            assert (
                status_of(
                    exchange(
                        r.port, b"misfin://bob@example.org\t%d\r\n%s" % (len(body), body), alice
                    ).response
                )
                == 20
            )
        assert (
            status_of(exchange(r.port, b"misfin://bob@example.org Third\r\n", alice).response) == 20
        )
    store = MailStore(profile.database())
    store.move([1, 2], "Inbox")  # unverifiable senders wait in Quarantine: take two out by hand
    store.move([3], "Quarantine")
    store.set_trust(3, "quarantined", "example.net vouches for another certificate")
    return profile


def test_mail_list_json(mailbox: Profile, capsys: pytest.CaptureFixture) -> None:
    assert main(["--profile", str(mailbox.config_dir), "mail", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in entries] == [2, 1]
    first = entries[1]
    assert first["from"] == "alice@example.net" and first["folder"] == "Inbox"
    assert first["subject"] == "First" and first["trust"] == "pending"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["received_at"])
    assert {
        "id",
        "folder",
        "from",
        "subject",
        "received_at",
        "trust",
        "trust_reason",
    } <= first.keys()
    assert (
        main(["--profile", str(mailbox.config_dir), "mail", "list", "--folder", "all", "--json"])
        == 0
    )
    everything = json.loads(capsys.readouterr().out)
    quarantined = [e for e in everything if e["folder"] == "Quarantine"]
    assert [e["id"] for e in quarantined] == [3]
    assert quarantined[0]["trust_reason"] == "example.net vouches for another certificate"


def test_mail_list_text_never_passes_escapes_through(
    mailbox: Profile, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--profile", str(mailbox.config_dir), "mail", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "␛[31m" in out and "First" in out


def test_mail_show_and_raw(mailbox: Profile, capsysbinary: pytest.CaptureFixture) -> None:
    store = MailStore(mailbox.database())
    assert main(["--profile", str(mailbox.config_dir), "mail", "show", "2"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "From:     alice@example.net (Alice)" in out and "Trust:    pending" in out
    assert "\x1b" not in out and "\x07" not in out and "body ␛]0;x␇ here" in out
    assert not store.get(2).unread  # reading it marks it read
    assert main(["--profile", str(mailbox.config_dir), "mail", "show", "3", "--raw"]) == 0
    assert capsysbinary.readouterr().out == store.get(3).raw


def test_mail_errors(mailbox: Profile, capsys: pytest.CaptureFixture) -> None:
    assert main(["--profile", str(mailbox.config_dir), "mail", "show", "99"]) == 1
    assert "no letter 99" in capsys.readouterr().err
    assert main(["--profile", str(mailbox.config_dir), "mail", "list", "--folder", "Nope"]) == 2
    assert "no folder" in capsys.readouterr().err


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _start_receive(profile_dir: Path, address: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "misfin_tui",
            "--profile",
            str(profile_dir),
            "receive",
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.match(rf"receiving on 127\.0\.0\.1:(\d+) for {re.escape(address)}$", line.strip())
    if match is None:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {proc.stderr.read()}")
    return proc, int(match.group(1))


def test_end_to_end_with_our_own_commands(tmp_path: Path) -> None:
    """identity new, receive (twice), send, then mail list/show: the whole story in processes."""
    home, bobs = tmp_path / "home", tmp_path / "bob"
    assert (
        _cli(
            "--profile",
            str(home),
            "identity",
            "new",
            "alice@example.net",
            "--ca",
            "--blurb",
            "Alice",
        ).returncode
        == 0
    )
    assert (
        _cli(
            "--profile", str(bobs), "identity", "new", "bob@example.org", "--blurb", "Bob"
        ).returncode
        == 0
    )
    home_rx, home_port = _start_receive(home, "alice@example.net")
    bob_rx = None
    try:
        profile = Profile.open(bobs)
        profile.config.set("hosts.example.net", ("127.0.0.1", home_port))
        profile.save_config()
        bob_rx, bob_port = _start_receive(bobs, "bob@example.org")
        assert _cli("--profile", str(home), "network", "trust").returncode == 0
        sent = _cli(
            "--profile", str(home), "send", "--to", "bob@example.org", "--subject", "Lunch?",
            "--connect", f"127.0.0.1:{bob_port}", "--trust-new", "--no-input",
            stdin="Are you free on Friday?\n",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        deadline = time.monotonic() + 30
        verdict = ""
        while time.monotonic() < deadline and "trust=" not in verdict:
            verdict = bob_rx.stdout.readline()
        assert "sender=alice@example.net trust=verified" in verdict, verdict
    finally:
        for proc in (home_rx, bob_rx):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=15)
    listed = _cli("--profile", str(bobs), "mail", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert (entry["from"], entry["subject"], entry["trust"]) == (
        "alice@example.net",
        "Lunch?",
        "verified",
    )
    shown = _cli("--profile", str(bobs), "mail", "show", str(entry["id"]))
    assert "From:     alice@example.net (Alice)" in shown.stdout
    assert "Are you free on Friday?" in shown.stdout


def test_receive_sends_what_waits_in_the_outbox_and_holds_what_needs_a_person(
    tmp_path: Path,
) -> None:
    """A host with no app open still sends its Outbox while it receives: a letter to a server
    the person approved leaves; one to a server nobody approved stays held for them."""
    from misfin_tui.core.address import Address
    from misfin_tui.core.client import presented_cert
    from misfin_tui.core.engine import Engine
    from misfin_tui.core.trust.model import Answer, Choice, HostEvent

    bobs = make_profile(tmp_path / "bob", "bob@example.org", hosts=UNREACHABLE)
    bob_rx, bob_port = _start(bobs.config_dir)
    alice_rx = None
    try:
        alice = make_profile(
            tmp_path / "alice",
            "alice@example.net",
            hosts={"example.org": ("127.0.0.1", bob_port), "other.test": ("127.0.0.1", bob_port)},
            trusted=True,
        )
        engine = Engine(alice)
        network = engine.networks.current()
        engine.policy.answer(  # approved on an earlier send
            HostEvent.FIRST_CONTACT,
            "example.org:1958",
            presented_cert(bobs.identity().cert_der()),
            network,
            Answer(Choice.TRUST),
        )
        to_bob = engine.outbox.enqueue("Lunch?\n", [Address.parse("bob@example.org")])
        engine.outbox.enqueue("Hello\n", [Address.parse("carol@other.test")])
        engine.close()

        alice_rx, _ = _start_receive(alice.config_dir, "alice@example.net")
        output: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [output.put(x) for x in alice_rx.stdout], daemon=True
        ).start()
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(lines) < 2:
            with contextlib.suppress(queue.Empty):
                line = output.get(timeout=0.2)
                match = re.search(r" outbox=\d+ to=(\S+) state=(\S+)", line)
                if match:
                    lines[match.group(1)] = match.group(2)
        assert lines == {"bob@example.org": "delivered", "carol@other.test": "decision"}
        started = time.monotonic()
        alice_rx.send_signal(signal.SIGTERM)
        alice_rx.communicate(timeout=15)
        assert time.monotonic() - started < 2 and alice_rx.returncode == 0
    finally:
        for proc in (alice_rx, bob_rx):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=15)
    received = MailStore(Profile.open(bobs.config_dir).database())
    (summary,) = received.summaries("Inbox") + received.summaries("Quarantine")
    assert summary.sender == "alice@example.net" and summary.subject == ""
    outbox = Engine(Profile.open(alice.config_dir)).outbox
    states = {item.recipient: item.state.value for item in outbox.items()}
    assert states["carol@other.test"] == "decision"
    assert MailStore(alice.database()).get(to_bob) is not None


def test_a_gmap_port_in_use_stops_receive_before_it_says_it_is_receiving(
    tmp_path: Path,
) -> None:
    """`receiving on …` is printed only once both listeners are up: it used to be printed,
    then GMAP's port was found taken and the command stopped (a script waiting for that line
    took the receiver for running)."""
    profile = make_profile(tmp_path / "p", "bob@example.org")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "misfin_tui", "--profile", str(profile.config_dir)]
            + ["receive", "--listen", "127.0.0.1:0", "--gmap-listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr == (
        f"misfin-tui: error: cannot listen on 127.0.0.1:{port}: Address already in use (is "
        "another receiver running? --gmap-listen picks another)\n"
    )
