"""Help text: prose is rewrapped to the dialog, key lines stay one per line."""

from __future__ import annotations

from misfin_tui.ui.prompts.first_contact import UnfamiliarNetworkScreen
from misfin_tui.ui.screens.help import reflow
from misfin_tui.ui.screens.outbox import OutboxScreen


def test_a_sentence_broken_in_the_source_is_one_paragraph() -> None:
    text = reflow(OutboxScreen.HELP)
    lines = text.splitlines()
    assert lines[0].endswith(
        "A letter leaves it only when the recipient's server confirms delivery."
    )
    assert lines[1:] == OutboxScreen.HELP.splitlines()[2:]  # the key lines, as written


def test_key_lines_blank_lines_and_a_key_lines_continuation_stay() -> None:
    text = "Intro one\nintro two.\n\nr  retry\n   more about r\nenter / t  open\n"
    assert reflow(text) == "Intro one intro two.\n\nr  retry\n   more about r\nenter / t  open\n"
    first = reflow(UnfamiliarNetworkScreen.HELP).splitlines()[0]
    assert "could point the recipient's server name" in first
