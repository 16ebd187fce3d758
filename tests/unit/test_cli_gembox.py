"""`mail export --gembox` and `mail import`, run as a person would: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

C_HEAD = b"alice@example.net Alice\n\n2024-05-01T12:00:00Z\n"
LETTERS = [
    ("C", C_HEAD + b"# Lunch?\n[a line that looks like an id]\n\\[escaped already]\n"),
    ("B", b"< alice@example.net Alice\n@ 2024-05-02T12:00:00Z\nHi Bob!"),
    ("C", C_HEAD + b"# Crlf\r\nbody\r\n<=====\r\n"),
]


def run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MISFIN_TUI_PROFILE"}
    return subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


def raw_of(profile: Path, letter_id: int) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "misfin_tui", "--profile", str(profile), "mail", "show", "--raw"]
        + [str(letter_id)],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def seeded(folder: Path) -> Path:
    store = MailStore(Profile.open(folder).database())
    for n, (version, raw) in enumerate(LETTERS):
        store.add(
            folder="Inbox", raw=raw, version=version, received_at=f"2024-05-0{n + 1}T12:00:00Z"
        )
    store.add(folder="Archive", raw=C_HEAD + b"# archived\n")
    store.db.close()
    return folder


def test_export_then_import_gives_the_same_bytes(tmp_path: Path) -> None:
    source = seeded(tmp_path / "source")
    box = tmp_path / "inbox.gembox"
    result = run(source, "mail", "export", "--gembox", str(box))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exported 3 letters from Inbox to {box}"

    again = run(source, "mail", "export", "--gembox", str(box), "--folder", "all")
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr
    forced = run(source, "mail", "export", "--gembox", str(box), "--folder", "all", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == f"exported 4 letters from all folders to {box}"
    assert box.read_bytes().count(b"\n[") + box.read_bytes().startswith(b"[") == 4

    target = tmp_path / "target"
    imported = run(target, "mail", "import", str(box), "--folder", "archive", "--json")
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert report["format"] == "current" and report["folder"] == "Archive"
    assert len(report["added"]) == 4 and report["already_stored"] == 0
    raws = [raw_of(target, i) for i in report["added"]]
    assert raws == [raw for _, raw in LETTERS] + [C_HEAD + b"# archived\n"]

    twice = run(target, "mail", "import", str(box))
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.strip() == (
        f"imported 0 of 4 letters into Inbox from {box} (current gembox format)"
        " (skipped: 4 already stored)"
    )
    listed = json.loads(run(target, "mail", "list", "--folder", "all", "--json").stdout)
    assert len(listed) == 4 and {e["folder"] for e in listed} == {"Archive"}


def test_a_bad_file_is_one_error_line_with_its_line_number_and_adds_nothing(
    tmp_path: Path,
) -> None:
    box = tmp_path / "bad.gembox"
    box.write_bytes(b"[1]\nSenders: alice@example.net\n# fine\n[2]\n# fine too\n[oops\n")
    result = run(tmp_path / "p", "mail", "import", str(box))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"misfin-tui: error: {box}: line 6: ")
    assert lines[0].endswith("(nothing was imported)")
    listed = run(tmp_path / "p", "mail", "list", "--folder", "all", "--json")
    assert json.loads(listed.stdout) == []


def test_old_format_import_and_usage_errors(tmp_path: Path) -> None:
    old = tmp_path / "old.gembox"
    old.write_bytes(C_HEAD + b"# one\n<=====\n" + C_HEAD.replace(b"01T", b"02T") + b"# two\n")
    result = run(tmp_path / "p", "mail", "import", str(old))
    assert result.returncode == 0, result.stderr
    assert "imported 2 of 2 letters into Inbox" in result.stdout and "old gembox" in result.stdout
    outbox = run(tmp_path / "p", "mail", "import", str(old), "--folder", "Outbox")
    assert outbox.returncode == 2 and "Outbox" in outbox.stderr
    nowhere = run(
        tmp_path / "p", "mail", "export", "--gembox", str(tmp_path / "x"), "--folder", "X"
    )
    assert nowhere.returncode == 2 and "no folder" in nowhere.stderr
    missing = run(tmp_path / "p", "mail", "import", str(tmp_path / "nope.gembox"))
    assert missing.returncode == 1 and "No such file" in missing.stderr
    assert "Traceback" not in missing.stderr
