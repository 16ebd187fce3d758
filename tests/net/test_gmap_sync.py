"""Sync against a home that misbehaves: down, slow, malformed, cut off mid-sync, a different
key mid-sync; a big mailbox with progress. Real TLS on 127.0.0.1 throughout."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.gmap import scripted_home, titlani_like
from helpers.profiles import make_profile
from helpers.raw_tls import free_port

from misfin_tui.cli import main
from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.protocol import id_time
from misfin_tui.core.gmap.sync import GmapSync, Progress, SyncStatus
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust.model import Ask


def _letters(n: int) -> dict[str, bytes]:
    return {
        f"20260101T12{i // 60:02d}{i % 60:02d}Z-{i:08x}": (
            f"bob@example.org Bob\nalice@localhost\n2026-01-01T12:00:00Z\n# Letter {i}\n".encode()
        )
        for i in range(n)
    }


def _laptop(tmp_path: Path, port: int, *, trusted: bool = True) -> Profile:
    laptop = make_profile(tmp_path / "laptop", "alice@localhost", trusted=trusted)
    laptop.config.set("gmap.alice@localhost", ("localhost", port))
    laptop.save_config()
    return laptop


def _sync(laptop: Profile, port: int, **kwargs: object):  # type: ignore[no-untyped-def]
    return GmapSync(Engine(laptop), timeout=2).sync(
        connect=f"127.0.0.1:{port}",
        trust_new=True,
        **kwargs,  # type: ignore[arg-type]
    )


def test_home_down_is_unavailable_and_retried_later(tmp_path: Path) -> None:
    port = free_port()
    laptop = _laptop(tmp_path, port)
    report = _sync(laptop, port)
    assert report.status is SyncStatus.UNAVAILABLE and report.retry_after
    assert "cannot connect" in report.reason
    assert MailStore(laptop.database()).sync_state("alice@localhost").last_error == report.reason


def test_a_home_name_that_cannot_be_found_is_said_in_plain_words(tmp_path: Path) -> None:
    laptop = _laptop(tmp_path, free_port())
    report = GmapSync(Engine(laptop), timeout=2).sync(connect="home.invalid:1960", trust_new=True)
    assert report.status is SyncStatus.UNAVAILABLE
    assert "the server's name could not be found" in report.reason, report.reason
    assert "Name or service" not in report.reason


def test_home_that_never_answers_times_out(tmp_path: Path) -> None:
    with scripted_home(tmp_path / "srv", titlani_like({})) as home:
        home.stall.set()
        laptop = _laptop(tmp_path, home.port)
        report = _sync(laptop, home.port)
        assert report.status is SyncStatus.UNAVAILABLE
        assert "within 2 s" in report.reason


def test_malformed_answers_are_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    letters = _letters(3)
    state = {"broken": b"20 text/plain\r\n\xff\xfe\x00 not text"}
    good = titlani_like(letters)

    def script(line: str) -> bytes | None:
        if "/tag/Archive" in line and state["broken"]:
            return state["broken"]
        return good(line)

    with scripted_home(tmp_path / "srv", script) as home:
        laptop = _laptop(tmp_path, home.port)
        report = _sync(laptop, home.port)
        assert report.status is SyncStatus.FAILED and "not UTF-8" in report.reason
        store = MailStore(laptop.database())
        assert store.count("Inbox") == 0
        state["broken"] = b"2O not a status\r\n"
        assert _sync(laptop, home.port).status is SyncStatus.FAILED
        state["broken"] = b""
        fixed = _sync(laptop, home.port)
        assert fixed.status is SyncStatus.DONE and fixed.fetched == 3
        assert store.count("Inbox") == 3


def test_unusable_ids_are_reported_and_the_rest_synced(tmp_path: Path) -> None:
    letters = _letters(2)
    good = titlani_like(letters)

    def script(line: str) -> bytes | None:
        if "/tag/Inbox" in line:
            return b"20 text/plain\r\n" + ", ".join([*letters, "../../etc/passwd", "a b"]).encode()
        return good(line)

    with scripted_home(tmp_path / "srv", script) as home:
        laptop = _laptop(tmp_path, home.port)
        report = _sync(laptop, home.port)
        assert report.status is SyncStatus.DONE and report.fetched == 2
        assert len(report.problems) == 2 and "../../etc/passwd" in report.problems[0]
        assert not any("passwd" in r for r in home.requests)


def test_cut_off_mid_sync_resumes_where_it_stopped_without_duplicates(tmp_path: Path) -> None:
    letters = _letters(6)
    ids = list(letters)
    good = titlani_like(letters)
    state = {"cut": ids[3]}

    def script(line: str) -> bytes | None:
        if state["cut"] and line.endswith(f"/msgid/{state['cut']}"):
            return None  # the connection drops (network changed, home restarted, ...)
        return good(line)

    with scripted_home(tmp_path / "srv", script) as home:
        laptop = _laptop(tmp_path, home.port)
        store = MailStore(laptop.database())
        first = _sync(laptop, home.port)
        assert first.status is SyncStatus.UNAVAILABLE  # dropped without a word
        assert first.fetched == 3 and store.count("Inbox") == 3
        assert store.sync_state("alice@localhost").since == id_time(ids[3])
        state["cut"] = ""
        home.requests.clear()
        second = _sync(laptop, home.port)
        assert second.status is SyncStatus.DONE and second.fetched == 3
        assert store.count("Inbox") == 6
        assert all(f"/msgid/{rid}" not in " ".join(home.requests) for rid in ids[:3])
        assert any(f"/tag/Inbox/{id_time(ids[3])}" in r for r in home.requests)


def test_a_different_key_mid_sync_stops_and_holds(tmp_path: Path) -> None:
    letters = _letters(4)
    good = titlani_like(letters)
    holder: dict[str, object] = {}

    def script(line: str) -> bytes | None:
        if line.endswith(f"/msgid/{list(letters)[1]}"):
            holder["home"].use_key("impostor")  # type: ignore[attr-defined]
        return good(line)

    with scripted_home(tmp_path / "srv", script) as home:
        holder["home"] = home
        laptop = _laptop(tmp_path, home.port)
        report = _sync(laptop, home.port)
        assert report.status is SyncStatus.HELD
        assert report.question is not None and report.question.ask is Ask.CHANGED
        assert report.fetched == 2  # what came before the change is kept
        # Nothing was asked of the impostor: its connection got no request line.
        assert len([r for r in home.requests if "/msgid/" in r]) == 2
        code = main(["--profile", str(laptop.config_dir), "sync", "--no-input", "--json",
                     "--connect", f"127.0.0.1:{home.port}"])  # fmt: skip
        assert code == 3


def test_a_big_mailbox_reports_progress_and_commits_in_batches(tmp_path: Path) -> None:
    letters = _letters(240)
    with scripted_home(tmp_path / "srv", titlani_like(letters)) as home:
        laptop = _laptop(tmp_path, home.port)
        seen: list[Progress] = []
        report = GmapSync(Engine(laptop), timeout=5, batch=50).sync(
            connect=f"127.0.0.1:{home.port}", trust_new=True, on_progress=seen.append
        )
        assert report.status is SyncStatus.DONE and report.fetched == 240
        fetching = [p for p in seen if p.stage == "fetching"]
        assert [p.done for p in fetching] == list(range(1, 241))
        assert {p.total for p in fetching} == {240}
        assert MailStore(laptop.database()).count("Inbox") == 240


def test_cli_json_and_exit_codes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with scripted_home(tmp_path / "srv", titlani_like(_letters(2))) as home:
        laptop = _laptop(tmp_path, home.port)
        args = ["--profile", str(laptop.config_dir), "sync", "--no-input", "--json",
                "--connect", f"127.0.0.1:{home.port}"]  # fmt: skip
        assert main(args) == 3  # first contact, policy "ask", no terminal: held
        held = json.loads(capsys.readouterr().out)
        assert held["status"] == "held" and held["requests"] == 0
        assert main([*args, "--trust-new"]) == 0
        done = json.loads(capsys.readouterr().out)
        assert done["fetched"] == 2
    port = free_port()
    assert main(["--profile", str(laptop.config_dir), "sync", "--no-input",
                 "--connect", f"127.0.0.1:{port}"]) == 4  # fmt: skip
