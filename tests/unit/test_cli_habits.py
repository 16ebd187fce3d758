"""What a script or a person at a shell expects from the command line (issue 13's findings):
a mistyped --profile creates nothing, a broken config.toml is one line for every command,
usage mistakes exit 2, an empty letter is not sent, and a subject is not sent twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.profile import Profile


def cli(*args: str, body: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def alice(tmp_path: Path) -> Path:
    folder = tmp_path / "alice"
    made = cli("--profile", str(folder), "identity", "new", "alice@alice.test")
    assert made.returncode == 0, made.stderr
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ("mail", "list"),
        ("outbox", "list"),
        ("trust", "list"),
        ("network", "status"),
        ("send", "--to", "bob@b.test", "--no-input"),
        ("sync", "--no-input"),
        ("receive",),
    ],
)
def test_a_mistyped_profile_is_refused_and_nothing_is_created(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "alcie"
    result = cli("--profile", str(missing), *args, body="Hi\n")
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr and "identity new" in result.stderr
    assert not missing.exists()
    assert result.stderr.count("\n") == 1  # one line, no traceback


@pytest.mark.parametrize("args", [("mail", "list"), ("outbox", "list"), ("trust", "list")])
def test_without_a_profile_yet_the_default_place_is_refused_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    """No --profile and nothing written in the usual per-user folders: say so, create nothing
    (a `mail list` used to leave an empty database there)."""
    for name in ("MISFIN_TUI_PROFILE", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert "no profile yet" in result.stderr and "identity new" in result.stderr
    assert list(tmp_path.iterdir()) == []
    made = cli("identity", "new", "x@x.test")  # the first identity makes the profile there
    assert made.returncode == 0, made.stderr
    assert cli(*args).returncode == 0


def test_identity_new_makes_the_profile(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    assert cli("--profile", str(folder), "identity", "new", "x@x.test").returncode == 0
    assert (folder / "config.toml").exists()


@pytest.mark.parametrize(
    "args", [("mail", "list"), ("outbox", "list"), ("trust", "list"), ("network", "status")]
)
def test_a_broken_config_is_one_line_for_every_command(alice: Path, args: tuple[str, ...]) -> None:
    config = alice / "config.toml"
    text = config.read_text()
    assert 'first_contact = "ask"' in text
    config.write_text(text.replace('first_contact = "ask"', "first_contact = 42"))
    result = cli("--profile", str(alice), *args)
    assert result.returncode == 1
    assert "config.toml" in result.stderr and "first_contact" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_an_unknown_setting_is_a_warning_and_the_command_still_runs(alice: Path) -> None:
    config = alice / "config.toml"
    config.write_text(config.read_text() + "\n[reciever]\nenabled = true\n")
    result = cli("--profile", str(alice), "trust", "list")
    assert result.returncode == 0, result.stderr
    line = config.read_text().splitlines().index("[reciever]") + 1
    assert result.stderr == (
        f"misfin-tui: warning: {config} line {line}:"
        " unknown section [reciever], ignored (did you mean [receiver]?)\n"
    )


def test_a_bad_keys_entry_is_a_warning_from_every_command_and_textual_stays_unloaded(
    alice: Path,
) -> None:
    """[keys] is checked as the app checks it (an unknown binding id, a key no terminal sends),
    one warning line each, and the command still runs, without importing Textual."""
    config = alice / "config.toml"
    text = config.read_text()
    assert "\n[keys]\n" in text
    config.write_text(
        text.replace(
            "\n[keys]\n",
            '\n[keys]\n"mail.compse" = "ctrl+n"\n"mail.reply" = "ctrl+nope"\n'
            '"mail.forward" = "ctrl+f, f2"\n',
        )
    )
    lines = config.read_text().splitlines()
    probe = (
        "import sys; from misfin_tui.cli.main import main; code = main(sys.argv[1:]);"
        " print('textual' in sys.modules); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "--profile", str(alice), "trust", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False"
    compse = lines.index('"mail.compse" = "ctrl+n"') + 1
    reply = lines.index('"mail.reply" = "ctrl+nope"') + 1
    assert result.stderr == (
        f"misfin-tui: warning: {config} line {compse}: [keys] 'mail.compse' is no binding id"
        " (README, Keys, lists them); ignored\n"
        f"misfin-tui: warning: {config} line {reply}: [keys] mail.reply: 'ctrl+nope' names no"
        " key ('nope'); its default key is kept\n"
    )


def test_a_missing_body_file_is_a_usage_error(alice: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.gmi"
    result = cli("--profile", str(alice), "send", "--to", "b@b.test", "--body-file", str(missing))
    assert result.returncode == 2 and str(missing) in result.stderr


def test_an_empty_letter_is_not_sent(alice: Path) -> None:
    result = cli("--profile", str(alice), "send", "--to", "b@b.test", "--no-input", body="\n \n")
    assert result.returncode == 2 and "empty" in result.stderr
    assert "outbox is empty" in cli("--profile", str(alice), "outbox", "list").stdout.lower()


def test_a_too_big_letter_says_how_to_split_it(alice: Path) -> None:
    result = cli("--profile", str(alice), "send", "--to", "b@b.test", body="x" * 20_000)
    assert result.returncode == 2 and "Split the body" in result.stderr


def test_a_subject_the_body_already_starts_with_is_not_sent_twice(alice: Path) -> None:
    engine = Engine(Profile.open(alice))
    bob = [Address.parse("bob@b.test")]
    twice = engine.outbox.enqueue("# Hi\nHello\n", bob, subject="Hi")
    once = engine.outbox.enqueue("Hello\n", bob, subject="Hi")
    for letter_id in (twice, once):
        letter = engine.store.get(letter_id)
        assert letter is not None and letter.body == "# Hi\nHello\n"
    engine.close()


def test_every_help_fits_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Descriptions wrap to the terminal and the exit-code table stays a table within it."""
    import argparse

    from misfin_tui.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "80")

    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    found += parsers(child)
        return found

    every = parsers(build_parser())
    assert len(every) > 20
    for parser in every:
        lines = parser.format_help().splitlines()
        assert max(map(len, lines)) <= 80, (parser.prog, max(lines, key=len))
    send = next(p for p in every if p.prog.endswith(" send"))
    assert "  3  held for your decision" in send.format_help()  # the table kept its lines


def test_outbox_list_wraps_a_long_reason_to_the_terminal(
    alice: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = cli(
        "--profile", str(alice), "send", "--to", "bob@127.0.0.1:1", "--no-input", body="Hi\n"
    )
    assert sent.returncode == 4, sent.stderr  # nothing listens on port 1: deferred
    monkeypatch.setenv("COLUMNS", "60")
    listed = cli("--profile", str(alice), "outbox", "list").stdout.splitlines()
    assert max(map(len, listed[:-1])) <= 60, listed  # the command below is never cut
    reason = " ".join(line.strip() for line in listed[1:-1])
    assert "the server refused the connection (nothing is listening there)" in reason
    # Typed as printed, the suggested command reaches the same profile.
    assert listed[-1].strip() == f"to try now: misfin-tui --profile {alice} outbox retry 1"


HUGE = "9223372036854775808"  # 2**63: beyond SQLite's INTEGER


@pytest.mark.parametrize("command", [("mail", "show"), ("outbox", "retry"), ("outbox", "drop")])
@pytest.mark.parametrize("huge", [HUGE, "99999999999999999999", "-9223372036854775809"])
def test_an_id_beyond_sqlite_is_told_as_an_unknown_id(
    alice: Path, command: tuple[str, ...], huge: str
) -> None:
    """Not an OverflowError traceback: the same line and exit code as any id nobody has."""
    unknown = cli("--profile", str(alice), *command, "--", "12345")
    result = cli("--profile", str(alice), *command, "--", huge)
    assert unknown.returncode in (1, 2) and unknown.stderr.count("\n") == 1, unknown.stderr
    assert result.returncode == unknown.returncode, result.stderr
    assert result.stderr == unknown.stderr.replace("12345", huge)


def test_every_id_argument_is_parsed_as_a_row_id() -> None:
    """Every command that takes a letter or outbox id parses it with the row-id type."""
    import argparse

    from misfin_tui.cli.main import build_parser

    def actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
        found = [(parser.prog, a) for a in parser._actions]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    found += actions(child)
        return found

    ids = [(prog, a) for prog, a in actions(build_parser()) if a.metavar == "ID" or a.dest == "id"]
    assert {prog.split(" ", 1)[1] for prog, _ in ids} >= {
        "mail show",
        "outbox retry",
        "outbox drop",
    }
    for prog, action in ids:
        assert action.type is not int and "row_id" in getattr(action.type, "__qualname__", ""), prog


@pytest.mark.parametrize("subject", ["Two\n=> gemini://evil.example/ click", "a\tb", "a\rb"])
def test_a_subject_of_more_than_one_line_is_a_usage_error(alice: Path, subject: str) -> None:
    result = cli(
        "--profile",
        str(alice),
        "send",
        "--to",
        "b@b.test",
        "--no-input",
        "--subject",
        subject,
        body="Hello\n",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "one line" in result.stderr, result.stderr
    assert "outbox is empty" in cli("--profile", str(alice), "outbox", "list").stdout.lower()


def test_the_core_refuses_such_a_subject_on_every_path(alice: Path) -> None:
    from misfin_tui.core.status import ProtocolError

    engine = Engine(Profile.open(alice))
    with pytest.raises(ProtocolError, match="one line"):
        engine.outbox.enqueue("Hello\n", [Address.parse("bob@b.test")], subject="Two\n=> x")
    assert engine.outbox.items() == []
    engine.close()


def test_mail_show_names_a_sent_letters_fingerprint_as_the_recipients(alice: Path) -> None:
    """A sent letter's fingerprint is what the recipient's server answered with its 20 (the
    recipient's mailbox certificate), not a sender certificate."""
    engine = Engine(Profile.open(alice))
    sent = engine.outbox.enqueue("Hello\n", [Address.parse("bob@b.test")], subject="Hi")
    engine.store.mark_sent(sent, ["ab" * 32])
    received = engine.store.add(
        folder="Inbox",
        raw=b"Hello\n",
        sender="carol@c.test",
        mailbox="alice@alice.test",
        sender_cert=b"der",
        fingerprint="cd" * 32,
    )
    engine.close()
    shown = cli("--profile", str(alice), "mail", "show", str(sent))
    assert shown.returncode == 0, shown.stderr
    assert f"Recipient's mailbox fingerprint (SHA-256): {'ab' * 32}" in shown.stdout
    assert "Sender" not in shown.stdout
    came = cli("--profile", str(alice), "mail", "show", str(received)).stdout
    assert f"Sender's fingerprint (SHA-256): {'cd' * 32}" in came


def test_mail_show_raw_never_writes_a_letters_bytes_to_a_terminal(alice: Path) -> None:
    """--raw is for files and pipes: on a terminal the sender's escape sequences (a clipboard
    write, a new window title) would run, so it is refused there and nothing is written."""
    import os
    import pty

    raw = b"carol@c.test\n\n\n# \x1b]0;owned\x07Hi\n\x1b]52;c;aGk=\x07\x1b[2J\n"
    engine = Engine(Profile.open(alice))
    letter = engine.store.add(
        folder="Inbox", raw=raw, sender="carol@c.test", mailbox="alice@alice.test"
    )
    engine.close()
    args = ("--profile", str(alice), "mail", "show", str(letter), "--raw")
    piped = subprocess.run(
        [sys.executable, "-m", "misfin_tui", *args], capture_output=True, timeout=60
    )
    assert piped.returncode == 0 and piped.stdout == raw  # a pipe gets the bytes exactly
    leader, follower = pty.openpty()
    try:
        shown = subprocess.run(
            [sys.executable, "-m", "misfin_tui", *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        os.close(follower)
        written = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(leader)
    assert shown.returncode == 2, shown.stderr
    assert "not to a terminal" in shown.stderr and "> letter.gmi" in shown.stderr
    assert shown.stderr.count("\n") == 1
    assert written == b""  # not one byte of the letter reached the terminal


@pytest.mark.parametrize(
    "args",
    [
        ("identity", "show"),
        ("identity", "list"),
        ("send", "--to", "bob@b.test", "--no-input"),
        ("sync", "--no-input"),
        ("receive", "--listen", "127.0.0.1:0"),
    ],
)
def test_without_an_identity_the_hint_names_the_profile(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Typed as printed, `identity new` makes the identity in the profile this run was given,
    not in the usual per-user folders (the hint used to leave --profile out)."""
    folder = tmp_path / "empty"
    folder.mkdir()  # a profile folder with nothing in it yet (a first run left it so)
    result = cli("--profile", str(folder), *args, body="Hi\n")
    said = result.stderr or result.stdout
    assert f"misfin-tui --profile {folder} identity new " in said, said
    assert result.returncode == (0 if args == ("identity", "list") else 1), said
    assert "Traceback" not in result.stderr


def test_every_command_that_can_hold_or_defer_lists_its_exit_codes() -> None:
    """`sync` and `outbox retry` exit 3, 4 or 5 as `send` does: their --help says so too (it
    said nothing), and sync's table names every code its outcomes map to."""
    import argparse
    import re

    from misfin_tui.cli.main import build_parser
    from misfin_tui.cli.sync import _exit_code
    from misfin_tui.core.gmap.sync import SyncStatus

    def find(parser: argparse.ArgumentParser, *words: str) -> argparse.ArgumentParser:
        for word in words:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[word]
        return parser

    parser = build_parser()
    for words in [("send",), ("sync",), ("outbox", "retry"), ("identity", "rotate")]:
        text = find(parser, *words).format_help()
        assert "exit codes:" in text, words
        listed = {int(code) for code in re.findall(r"^  (\d)  ", text, re.MULTILINE)}
        assert {0, 2, 3, 4, 5} <= listed, (words, listed)
    sync_help = find(parser, "sync").format_help()
    for status in SyncStatus:
        assert f"  {_exit_code(status)}  " in sync_help, status
    assert "ID                    the item's id" in find(parser, "outbox", "retry").format_help()


def test_an_endless_body_is_refused_without_reading_it_all(alice: Path) -> None:
    """`--body-file /dev/zero` (or `yes |`) is a usage error as soon as more than any letter
    could hold has been read: it used to read until memory ran out."""
    from misfin_tui.cli.send import BODY_READ_MAX

    endless = cli(
        "--profile", str(alice), "send", "--to", "b@b.test", "--no-input",
        "--body-file", "/dev/zero",
    )  # fmt: skip
    assert endless.returncode == 2, endless.stderr
    assert f"/dev/zero holds more than {BODY_READ_MAX} bytes" in endless.stderr
    assert "Split the body" in endless.stderr and endless.stderr.count("\n") == 1
    piped = cli(
        "--profile", str(alice), "send", "--to", "b@b.test", "--no-input",
        body="y\n" * BODY_READ_MAX,
    )  # fmt: skip
    assert piped.returncode == 2 and "standard input holds more than" in piped.stderr
    assert "outbox is empty" in cli("--profile", str(alice), "outbox", "list").stdout.lower()


def test_retrying_an_item_being_sent_says_when_it_is_queued_again(alice: Path) -> None:
    """An item left "sending" (by a process killed mid-send, or one still sending) is not
    retried; it was told "item 1 is sending; there is nothing to retry", as if lost for good."""
    engine = Engine(Profile.open(alice))
    engine.outbox.enqueue("Hello\n", [Address.parse("bob@b.test")], subject="Hi")
    [item] = engine.outbox.items()
    assert engine.outbox._claim(item.id)  # what a send does just before it connects
    since = engine.outbox.item(item.id).updated_at
    engine.close()
    result = cli("--profile", str(alice), "outbox", "retry", str(item.id), "--no-input")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"misfin-tui: error: item {item.id} is being sent, by this or another misfin-tui since"
        f" {since}; if that one was stopped, the item is queued again 5 minutes after that time\n"
    )


@pytest.mark.parametrize("args", [("identity", "new", "x@x.test"), ("mail", "list")])
def test_an_empty_profile_name_is_refused_and_the_current_folder_left_alone(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """`--profile "$UNSET"` used to make the current folder the profile: config.toml and a
    private key written there, and the folder itself made 0700."""
    here = tmp_path / "work"
    here.mkdir(mode=0o755)
    here.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", "", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=here,
    )
    assert result.returncode == 2, result.stderr
    assert "--profile was given an empty folder name" in result.stderr
    assert result.stderr.count("\n") == 1
    assert list(here.iterdir()) == [] and here.stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_device_is_not_told_as_a_full_disk(alice: Path) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "misfin_tui", "--profile", str(alice), "identity", "list"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr == "misfin-tui: error: No space left on device\n"
