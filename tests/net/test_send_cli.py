"""`misfin-tui send|outbox|trust|network` run as scripts run them: subprocess, real TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.certs import make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import env_for, route

from misfin_tui.core.network import Networks
from misfin_tui.core.profile import Profile

BOB = "bob@example.org"


def run(profile: Profile, *args: str, body: str = "Hello Bob\n", network: str = "test-net"):
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        input=body.encode(),
        capture_output=True,
        env=env_for(profile, network),
        timeout=60,
    )


def send(profile: Profile, *args: str, **kwargs):
    return run(profile, "send", "--to", BOB, "--no-input", *args, **kwargs)


def outbox_json(profile: Profile) -> list[dict]:
    result = run(profile, "outbox", "list", "--all", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def bob(sender: Profile, receiver_factory) -> FixtureReceiver:
    server = receiver_factory("example.org")
    route(sender, "example.org", server)
    return server


def trust_network(profile: Profile) -> None:
    Networks(profile.database()).trust(None, "Home")


def test_help_lists_exit_codes(sender: Profile) -> None:
    result = run(sender, "send", "--help")
    assert result.returncode == 0
    for line in ("0  delivered", "3  held", "4  deferred", "5  failed", "2  usage"):
        assert line in result.stdout.decode()


def test_trusted_network_trust_new_delivers(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    result = send(sender, "--trust-new", "--subject", "Lunch?")
    assert result.returncode == 0, result.stderr
    assert b"delivered" in result.stdout
    [request] = bob.requests
    assert request.endswith(b"\n\n\n# Lunch?\nHello Bob\n")
    listed = run(sender, "trust", "list", "--json")
    entries = {e["kind"]: e for e in json.loads(listed.stdout)}
    assert entries["host"]["name"] == "example.org:1958"
    assert entries["host"]["fingerprint"] == bob.server_cert.fingerprint
    assert entries["mailbox"]["name"] == BOB
    assert entries["mailbox"]["fingerprint"] == bob.mailbox_fp
    for entry in entries.values():
        assert {"kind", "name", "fingerprint", "state", "first_seen", "last_seen"} <= set(entry)
    shown = run(sender, "trust", "show", "example.org", "--json")
    assert json.loads(shown.stdout)["state"] == "pinned"


def test_sending_to_a_pinned_server_never_imports_cryptography(
    sender: Profile, bob: FixtureReceiver
) -> None:
    """Its import is most of a `send` process's time (issue 13): the pin is read by core.der
    and the identity from its remembered facts. -X importtime lists every module imported."""
    trust_network(sender)
    assert send(sender, "--trust-new").returncode == 0  # first contact, approved in advance
    again = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "misfin_tui", "send", "--to", BOB, "--no-input"],
        input=b"Once more\n",
        capture_output=True,
        env=env_for(sender, "test-net"),
        timeout=60,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    imported = again.stderr.decode()
    assert "misfin_tui.core.der" in imported and "cryptography" not in imported
    assert len(bob.requests) == 2


def test_unknown_network_first_contact_exits_3_sending_nothing(
    sender: Profile, bob: FixtureReceiver
) -> None:
    result = send(sender, network="unknown")
    assert result.returncode == 3, result.stderr
    assert bob.bytes_received == 0 and len(bob.arrivals) == 1  # a handshake, no request
    [probed] = bob.settled()
    assert probed.client_cert is None  # an anonymous one: not who we are either
    [item] = outbox_json(sender)
    assert item["state"] == "held"
    assert item["question"]["ask"] == "first-contact-untrusted-network"
    assert item["question"]["presented"]["fingerprint"] == bob.server_cert.fingerprint
    assert "der" not in item["question"]["presented"]


def test_trust_new_does_not_send_on_an_untrusted_network(
    sender: Profile, bob: FixtureReceiver
) -> None:
    result = send(sender, "--trust-new")  # test-net, never marked trusted
    assert result.returncode == 3
    assert bob.bytes_received == 0


def test_trust_new_does_not_override_a_strict_profile(
    sender: Profile, bob: FixtureReceiver
) -> None:
    """first_contact = "strict" promises new servers only by a pasted fingerprint: a script's
    --trust-new does not loosen it."""
    trust_network(sender)
    sender.config.set("trust.first_contact", "strict")
    sender.save_config()
    result = send(sender, "--trust-new")
    assert result.returncode == 3, result.stdout + result.stderr
    assert bob.requests == []
    [item] = outbox_json(sender)
    assert item["state"] == "decision" and "strict" in item["question"]["reason"]


def test_network_trust_sends_held_letters(sender: Profile, bob: FixtureReceiver) -> None:
    sender.config.set("trust.first_contact", "accept-new")
    sender.save_config()
    assert send(sender).returncode == 3
    assert bob.requests == []
    result = run(sender, "network", "trust", "Home", "--no-input")
    assert result.returncode == 0, result.stderr
    assert b"delivered" in result.stdout
    assert len(bob.requests) == 1
    status = json.loads(run(sender, "network", "status", "--json").stdout)
    current = status["current"]
    assert {k: current[k] for k in ("id", "label", "trusted", "current")} == {
        "id": "test-net",
        "label": "Home",
        "trusted": True,
        "current": True,
    }
    assert {"strength", "hints", "portal", "signals"} <= current.keys()
    assert current["signals"] == [{"kind": "override", "value": "test-net"}]


def test_a_held_first_contact_is_approved_by_its_fingerprint_without_a_terminal(
    sender: Profile, bob: FixtureReceiver
) -> None:
    """On a network nobody marked trusted, a script's first contact is held; the person who
    was given the server's fingerprint approves it with --verify, no terminal needed."""
    assert send(sender, network="cafe").returncode == 3
    [item] = outbox_json(sender)
    held = run(sender, "outbox", "list", network="cafe").stdout.decode()
    assert f"outbox retry {item['id']} --verify FINGERPRINT" in held
    wrong = run(sender, "outbox", "retry", str(item["id"]), "--verify", "00" * 32, network="cafe")
    assert wrong.returncode == 5 and b"does not match" in wrong.stderr
    assert bob.requests == [] and outbox_json(sender)[0]["state"] == "held"
    garbage = run(sender, "outbox", "retry", str(item["id"]), "--verify", "zzzz", network="cafe")
    assert garbage.returncode == 2, garbage.stderr
    said = garbage.stderr.decode()
    assert "'zzzz' is not a fingerprint" in said and "64 hexadecimal digits" in said, said
    assert "does not match" not in said and said.count("\n") == 1
    assert bob.requests == [] and outbox_json(sender)[0]["state"] == "held"
    spaced = " ".join(bob.server_cert.fingerprint[i : i + 4] for i in range(0, 64, 4)).upper()
    right = run(sender, "outbox", "retry", str(item["id"]), "--verify", spaced, network="cafe")
    assert right.returncode == 0, right.stdout + right.stderr
    assert len(bob.requests) == 1
    shown = json.loads(run(sender, "trust", "show", "example.org", "--json").stdout)
    assert shown["state"] == "verified"
    later = run(sender, "outbox", "retry", str(item["id"]), "--verify", spaced, network="cafe")
    assert later.returncode == 2 and b"not waiting for a decision" in later.stderr


def test_changed_key_exits_3_sending_nothing(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    assert send(sender, "--trust-new").returncode == 0
    bob.swap_cert(make_server_cert("example.org"))
    result = send(sender, "--trust-new", body="second letter\n")
    assert result.returncode == 3, result.stderr
    assert len(bob.requests) == 1  # only the first letter
    waiting = [i for i in outbox_json(sender) if i["state"] == "decision"]
    assert waiting[0]["question"]["ask"] == "changed"
    assert "trust" not in waiting[0]["choices"]


def test_trust_verify_of_a_server_that_cannot_be_asked_exits_4_changing_nothing(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    assert send(sender, "--trust-new").returncode == 0
    before = json.loads(run(sender, "trust", "show", "example.org", "--json").stdout)
    bob.stop()  # a paste naming another key: the server must be asked, and cannot be
    result = run(sender, "trust", "verify", "example.org", "ab" * 32)
    assert result.returncode == 4, result.stderr
    said = result.stderr.decode()
    assert "could not ask example.org:1958" in said and "nothing was changed" in said, said
    assert json.loads(run(sender, "trust", "show", "example.org", "--json").stdout) == before


@pytest.mark.parametrize(("answer", "code"), [("41 busy", 4), ("51 nobody here", 5)])
def test_deferred_and_failed_exit_codes(
    sender: Profile, bob: FixtureReceiver, answer: str, code: int
) -> None:
    trust_network(sender)
    bob.answers.append(answer)
    result = send(sender, "--trust-new")
    assert result.returncode == code, result.stderr
    assert answer[3:].encode() in result.stdout


def test_retry_and_drop(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    bob.answers.append("41 busy")
    assert send(sender, "--trust-new").returncode == 4
    [item] = outbox_json(sender)
    retried = run(sender, "outbox", "retry", str(item["id"]), "--no-input")
    assert retried.returncode == 0, retried.stderr
    assert len(bob.requests) == 2
    bob.answers.append("51 gone")
    assert send(sender).returncode == 5
    failed = [i for i in outbox_json(sender) if i["state"] == "failed"]
    assert run(sender, "outbox", "drop", str(failed[0]["id"])).returncode == 0
    assert all(i["state"] == "delivered" for i in outbox_json(sender))


def test_trust_verify_forget_reject(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    assert send(sender, "--trust-new").returncode == 0
    assert run(sender, "trust", "verify", "example.org", "00" * 32).returncode == 5
    fp = ":".join(bob.server_cert.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    assert run(sender, "trust", "verify", "example.org:1958", fp).returncode == 0
    assert run(sender, "trust", "verify", BOB, bob.mailbox_fp[:32]).returncode == 0
    entries = json.loads(run(sender, "trust", "list", "--json").stdout)
    assert {e["state"] for e in entries} == {"verified"}
    assert run(sender, "trust", "reject", "example.org").returncode == 0
    assert send(sender).returncode == 5
    assert run(sender, "trust", "forget", "example.org").returncode == 0
    assert run(sender, "trust", "forget", "example.org").returncode == 1


def test_trust_verify_of_a_mailbox_queues_the_letters_paused_on_it(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    assert send(sender, "--trust-new").returncode == 0
    assert run(sender, "trust", "verify", BOB, bob.mailbox_fp).returncode == 0
    bob.mailbox_fp = "cd" * 32  # a verified mailbox rotated: later letters wait for a paste
    assert send(sender).returncode == 0  # delivered; the 20 named the new key
    assert send(sender).returncode != 0
    assert [i["state"] for i in outbox_json(sender) if i["state"] != "delivered"] == ["decision"]
    result = run(sender, "trust", "verify", BOB, "cd" * 32, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["released"] == 1 and "queued again" in report["detail"], report
    assert [i["state"] for i in outbox_json(sender) if i["state"] != "delivered"] == ["queued"]


@pytest.mark.parametrize(
    "args",
    [
        ("send", "--to", "not an address", "--no-input"),
        ("send", "--to", BOB, "--connect", "nowhere", "--no-input"),
        ("send", "--no-input"),
    ],
)
def test_usage_errors_exit_2(sender: Profile, args: tuple[str, ...]) -> None:
    result = run(sender, *args)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


def test_too_big_is_a_usage_error(sender: Profile) -> None:
    result = send(sender, body="x" * 17000)
    assert result.returncode == 2 and b"Split the body into several files" in result.stderr
    assert outbox_json(sender) == []


def test_connect_override_for_one_send(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org")
    trust_network(sender)
    result = send(sender, "--trust-new", "--connect", server.hostport)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 1


def test_headless_commands_never_import_textual(sender: Profile) -> None:
    code = (
        "import sys; from misfin_tui.cli.main import build_parser; build_parser();"
        "import misfin_tui.cli.send, misfin_tui.cli.outbox, misfin_tui.cli.trust;"
        "import misfin_tui.cli.network, misfin_tui.core.outbox, misfin_tui.core.engine;"
        "assert 'textual' not in sys.modules, 'textual imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


def run_on_terminal(profile: Profile, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run misfin-tui with a pseudo-terminal as its controlling terminal and answer prompts."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is now its /dev/tty
        os.execve(sys.executable, [sys.executable, "-m", "misfin_tui", *args], env_for(profile))
    output = b""
    answered_at = 0  # answer each prompt once: only text after the last answer counts
    pending = list(answers)
    prompts = (b"Your choice:", b"Paste the fingerprint:")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if pending and output[answered_at:].rstrip().endswith(prompts):
            os.write(fd, pending.pop(0).encode() + b"\n")
            answered_at = len(output)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_terminal_asks_and_trust_sends(
    sender: Profile, bob: FixtureReceiver, tmp_path: Path
) -> None:
    trust_network(sender)
    body = tmp_path / "body.gmi"
    body.write_text("Hello Bob\n")
    code, output = run_on_terminal(sender, ["send", "--to", BOB, "--body-file", str(body)], ["t"])
    assert code == 0, output
    assert "Presented fingerprint (SHA-256)" in output and "[t] Trust this key and send" in output
    assert len(bob.requests) == 1


def test_terminal_verify_by_pasting(sender: Profile, bob: FixtureReceiver, tmp_path: Path) -> None:
    trust_network(sender)
    body = tmp_path / "body.gmi"
    body.write_text("Hello Bob\n")
    code, output = run_on_terminal(
        sender,
        ["send", "--to", BOB, "--body-file", str(body)],
        ["v", "00" * 32, "v", bob.server_cert.fingerprint.upper()],
    )
    assert code == 0, output
    assert "does not match" in output
    assert len(bob.requests) == 1


def test_ctrl_c_at_the_prompt_ends_the_command_at_once(
    sender: Profile, bob: FixtureReceiver, tmp_path: Path
) -> None:
    """Ctrl-C while the terminal asks about a first contact exits 130 at once, the letter kept
    in the outbox for that decision: the command used to hang, even through a second Ctrl-C,
    until Enter was pressed."""
    import contextlib
    import os
    import pty
    import select
    import time

    trust_network(sender)
    body = tmp_path / "body.gmi"
    body.write_text("Hello Bob\n")
    args = ["send", "--to", BOB, "--body-file", str(body)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is now its /dev/tty
        os.execve(sys.executable, [sys.executable, "-m", "misfin_tui", *args], env_for(sender))
    output, interrupted_at, status = b"", 0.0, None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status is None:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):  # the child exited and closed the terminal
                output += os.read(fd, 4096)
        if not interrupted_at and output.rstrip().endswith(b"Your choice:"):
            os.write(fd, b"\x03")  # the terminal's Ctrl-C: SIGINT to the command
            interrupted_at = time.monotonic()
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
        elif interrupted_at and time.monotonic() - interrupted_at > 10:
            os.kill(pid, 9)  # still waiting for a line after Ctrl-C: the defect
            status = os.waitpid(pid, 0)[1]
    os.close(fd)
    assert interrupted_at, output.decode(errors="replace")
    assert status is not None and os.waitstatus_to_exitcode(status) == 130, output
    assert time.monotonic() - interrupted_at < 10
    [item] = outbox_json(sender)
    assert item["state"] == "decision" and item["recipient"] == BOB, item
    assert bob.requests == []


def test_terminal_names_the_choices_after_an_answer_it_does_not_know(
    sender: Profile, bob: FixtureReceiver, tmp_path: Path
) -> None:
    """An unknown answer is told which keys are understood (it was asked again in silence)."""
    trust_network(sender)
    body = tmp_path / "body.gmi"
    body.write_text("Hello Bob\n")
    code, output = run_on_terminal(
        sender, ["send", "--to", BOB, "--body-file", str(body)], ["yes please", "t"]
    )
    assert code == 0, output
    assert "Type one of t, o, v, h, d (Enter: t)." in output
    assert len(bob.requests) == 1


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_while_sending_leaves_the_letter_deferred_for_a_retry(
    sender: Profile, signame: str, code: int
) -> None:
    """Ctrl-C (or a kill) while the server has not answered yet: the item is deferred, its
    outcome told as unknown, and `outbox retry` takes it at once. It was left "sending", which
    `outbox retry` refuses ("nothing to retry") until it is recovered as stale, 5 minutes
    later."""
    import signal
    import time

    from helpers.raw_tls import BlackHole

    silent = BlackHole()  # connects, never answers: the send waits out its 10 s
    route(sender, "example.org", silent)
    assert outbox_json(sender) == []  # the database made before two processes share it
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "misfin_tui", "send", "--to", BOB, "--no-input"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(sender, "test-net"),
        )
        assert process.stdin is not None
        process.stdin.write(b"Hello Bob\n")
        process.stdin.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [i["state"] for i in outbox_json(sender)] != [
            "sending"
        ]:
            time.sleep(0.1)
        process.send_signal(getattr(signal, signame))
        assert process.wait(timeout=5) == code
    finally:
        silent.close()
    [item] = outbox_json(sender)
    assert item["state"] == "deferred", item
    assert item["reason"].startswith("the sending was interrupted; the letter may or may not")
    retried = run(sender, "outbox", "retry", str(item["id"]), "--no-input")
    assert b"nothing to retry" not in retried.stderr and retried.returncode == 4, retried


def test_network_untrust_says_when_nothing_changed(sender: Profile) -> None:
    assert run(sender, "network", "trust", "Home").returncode == 0
    first = run(sender, "network", "untrust")
    again = run(sender, "network", "untrust")
    assert first.returncode == again.returncode == 0
    assert first.stdout.decode().strip() == "Home is no longer trusted."
    assert again.stdout.decode().strip() == "Home was not trusted; nothing changed."


def test_trust_show_of_an_unknown_name_is_one_error_line(sender: Profile) -> None:
    shown = run(sender, "trust", "show", "nowhere.example")
    assert shown.returncode == 1 and shown.stdout == b""
    assert shown.stderr == b"misfin-tui: error: nowhere.example is not in the trust store\n"
