"""The front door pauses the collector while the command's modules load, and only its own."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from misfin_tui.cli import main


def test_a_caller_keeps_its_collector_as_it_was() -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(SystemExit) as done:
        main(["outbox", "--help"])
    assert done.value.code == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_process_front_door_freezes_what_it_loaded_and_collects_again() -> None:
    code = (
        "import gc, sys\n"
        "from misfin_tui.cli.main import _load\n"
        "_load(['outbox'], own_process=True)\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 1000,"
        " 'misfin_tui.cli.outbox' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert shown == ["True", "True", "True"]


def test_a_send_does_not_load_what_only_receiving_or_rotating_needs() -> None:
    """A `send` process imports the send command and builds the engine; key-change notices
    are judged only for received letters and written only by a rotation (issue 13)."""
    code = (
        "import sys\n"
        "from misfin_tui.cli.main import _load\n"
        "_load(['send'], own_process=True)\n"
        "import misfin_tui.core.engine\n"
        "unwanted = ('misfin_tui.core.notice', 'misfin_tui.core.trust.notices')\n"
        "print(sorted(m for m in unwanted if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert shown == "[]"
