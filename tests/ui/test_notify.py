"""New-mail notification beyond the toast ([ui] notify = "toast" | "bell" | "desktop")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers.letters import add_letter
from helpers.pilot import SIZE, settle
from helpers.profiles import make_profile

from misfin_tui.core.profile import ConfigError, Profile
from misfin_tui.ui.app import make_app
from misfin_tui.ui.notify import (
    Announcement,
    Channel,
    Notifier,
    NotifyMode,
    osc,
    terminal_channels,
)

HOSTILE = "Hi\x1b]0;pwned\x07;\nthere <b>&"


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


def with_notify(tmp_path: Path, value: str) -> Profile:
    profile = make_profile(tmp_path / "p")
    profile.config.set("ui.notify", value)
    profile.save_config()
    return Profile.open(tmp_path / "p")


class Recorder:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.rings = 0
        self.spawned: list[list[str]] = []

    def write(self, text: str) -> None:
        self.written.append(text)

    def bell(self) -> None:
        self.rings += 1

    def spawn(self, argv: Sequence[str]) -> None:
        self.spawned.append(list(argv))


def notifier(mode: str, rec: Recorder, environ: dict[str, str], has_send: bool) -> Notifier:
    return Notifier(
        mode,
        write=rec.write,
        bell=rec.bell,
        environ=environ,
        which=lambda name: f"/usr/bin/{name}" if has_send else None,
        spawn=rec.spawn,
    )


def test_text_from_the_network_never_reaches_the_terminal_raw() -> None:
    note = Announcement.of("New letter", HOSTILE)
    for channel in (Channel.OSC777, Channel.OSC9):
        sequence = osc(channel, note)
        inner = sequence[2:-1]  # between the OSC introducer and its BEL terminator
        assert "\x1b" not in inner and "\x07" not in inner and "\n" not in inner
    assert note.body.count(";") == 0  # would split OSC 777's fields
    assert osc(Channel.OSC777, note).startswith("\x1b]777;notify;New letter;Hi")


def test_terminals_get_only_the_escapes_they_understand() -> None:
    assert terminal_channels({"TERM": "xterm-256color"}) == []
    assert terminal_channels({"VTE_VERSION": "7600"}) == [Channel.OSC777]
    assert terminal_channels({"TERM_PROGRAM": "iTerm.app"}) == [Channel.OSC9]
    assert terminal_channels({"TERM_PROGRAM": "WezTerm"}) == [Channel.OSC777, Channel.OSC9]


def test_each_mode_does_what_it_says() -> None:
    rec = Recorder()
    assert notifier("toast", rec, {"VTE_VERSION": "1"}, True).announce("t", "b") == []
    assert notifier("toast", rec, {}, True).desktop_command("t", "b") is None
    assert notifier("bell", rec, {"VTE_VERSION": "1"}, True).announce("t", "b") == [Channel.BELL]
    assert rec.rings == 1 and rec.written == []
    desktop = notifier("desktop", rec, {"VTE_VERSION": "1"}, True)
    assert desktop.announce("New letter", HOSTILE) == [Channel.OSC777]
    assert len(rec.written) == 1 and rec.rings == 1
    command = desktop.desktop_command("New letter", HOSTILE)
    assert command is not None and command[0] == "/usr/bin/notify-send"
    assert "<b>" not in command[-1] and "&lt;b&gt;" in command[-1]
    assert "\x1b" not in command[-1]
    assert notifier("desktop", rec, {}, False).desktop_command("t", "b") is None
    with pytest.raises(ValueError):
        notifier("loud", rec, {}, False)


def test_the_setting_defaults_to_toast_and_refuses_nonsense(tmp_path: Path) -> None:
    assert make_profile(tmp_path / "d").config.notify == "toast"
    assert 'notify = "toast"' in (tmp_path / "d" / "config.toml").read_text()
    assert with_notify(tmp_path / "b", "bell").config.notify == "bell"
    (tmp_path / "x").mkdir()
    bad = with_notify(tmp_path / "x", "desktop")
    with pytest.raises(ConfigError, match="notify"):
        bad.config.set("ui.notify", "loud")
    config = tmp_path / "x" / "p" / "config.toml"
    config.write_text(config.read_text().replace('notify = "desktop"', 'notify = "loud"'))
    with pytest.raises(ConfigError, match="notify"):
        Profile.open(tmp_path / "x" / "p").config.validate()


async def test_a_new_letter_rings_the_bell_when_asked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = with_notify(tmp_path, "bell")
    app = make_app(profile, start_receiver=False)
    assert app.notifier.mode is NotifyMode.BELL
    rings: list[int] = []
    app.notifier.bell = lambda: rings.append(1)
    add_letter(app.engine.store, subject="Before")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert rings == []
        add_letter(app.engine.store, subject="Fresh news", when="2026-02-01T09:00:00Z")
        app.poll_mail()
        await settle(pilot)
        assert rings == [1]


async def test_desktop_mode_writes_the_escape_and_runs_notify_send(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = with_notify(tmp_path, "desktop")
    app = make_app(profile, start_receiver=False)
    rec = Recorder()
    app.notifier = notifier("desktop", rec, {"VTE_VERSION": "7600"}, True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        add_letter(app.engine.store, subject=HOSTILE, when="2026-02-01T09:00:00Z")
        app.poll_mail()
        await settle(pilot)
        assert len(rec.written) == 1 and rec.written[0].startswith("\x1b]777;notify;New letter;")
        assert "pwned\x07" not in rec.written[0]
        assert len(rec.spawned) == 1 and rec.spawned[0][2] == "New letter"
