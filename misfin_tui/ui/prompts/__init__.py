"""The trust prompts (one module per question), the paste and name inputs, and Confirm."""

from __future__ import annotations

from datetime import datetime

from textual.screen import Screen

from misfin_tui.core.trust.model import Answer, Ask, Question
from misfin_tui.ui.prompts.changed_key import ChangedKeyScreen
from misfin_tui.ui.prompts.common import QuestionScreen
from misfin_tui.ui.prompts.confirm import ConfirmScreen
from misfin_tui.ui.prompts.first_contact import FirstContactScreen, UnfamiliarNetworkScreen
from misfin_tui.ui.prompts.mailbox import MailboxAlarmScreen, MailboxChangedScreen
from misfin_tui.ui.prompts.redirect import RedirectScreen
from misfin_tui.ui.prompts.renewal import RenewalScreen

PROMPTS: dict[Ask, type[QuestionScreen] | type[ChangedKeyScreen]] = {
    Ask.FIRST_CONTACT: FirstContactScreen,
    Ask.FIRST_CONTACT_UNTRUSTED: UnfamiliarNetworkScreen,
    Ask.RENEWAL: RenewalScreen,
    Ask.CHANGED: ChangedKeyScreen,
    Ask.MAILBOX_CHANGED: MailboxChangedScreen,
    Ask.MAILBOX_ALARM: MailboxAlarmScreen,
    Ask.REDIRECT: RedirectScreen,
}


def prompt_for(question: Question, *, now: datetime | None = None) -> Screen[Answer | None]:
    """The screen that asks `question`: one prompt per kind of question."""
    return PROMPTS[question.ask](question, now=now)


__all__ = ["ConfirmScreen", "prompt_for"]
