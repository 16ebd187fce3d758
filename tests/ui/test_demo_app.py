"""The newcomer's walk through `misfin-tui --demo`, in the real app: the welcome letter
arrives, a letter to Ada meets the first-contact prompt, her verified answer arrives, the
trust manager shows her server, and ctrl+q quits cleanly."""

from __future__ import annotations

from helpers.pilot import wait_for

from misfin_tui.core.store import MailStore
from misfin_tui.demo import DemoWorld, deliver_welcome
from misfin_tui.ui.app import make_app

SIZE = (120, 36)


def inbox_subjects(demo_world: DemoWorld) -> list[str]:
    return [s.subject for s in MailStore(demo_world.you.database()).summaries("Inbox")]


def screen_name(app) -> str:  # type: ignore[no-untyped-def]
    return type(app.screen).__name__


async def test_newcomer_sends_to_ada_approves_first_contact_and_reads_her_answer(
    demo_world: DemoWorld,
) -> None:
    app = make_app(demo_world.you)
    async with app.run_test(size=SIZE) as pilot:
        deliver_welcome(demo_world)
        await wait_for(pilot, lambda: "Welcome to misfin_tui" in inbox_subjects(demo_world))

        await pilot.press("c")
        await wait_for(pilot, lambda: screen_name(app) == "ComposeScreen")
        await pilot.press(*"ada@lovelace.demo", "enter", *"Hello Ada", "enter", *"Hi!")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen_name(app) == "FirstContactScreen")
        assert not any(s.startswith("Re:") for s in inbox_subjects(demo_world))  # nothing sent yet

        await pilot.press("t")
        await wait_for(pilot, lambda: "Re: Hello Ada" in inbox_subjects(demo_world))
        answer = MailStore(demo_world.you.database()).summaries("Inbox")[0]
        assert answer.sender == "ada@lovelace.demo"
        await wait_for(
            pilot,
            lambda: MailStore(demo_world.you.database()).get(answer.id).trust == "verified",
        )

        await pilot.press("T")
        await wait_for(pilot, lambda: screen_name(app) == "TrustManagerScreen")
        assert app.engine.trust.host("lovelace.demo:1958") is not None

        assert app.engine.receiver is not None  # the app runs your receiver in the demo
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert app.engine.receiver is None  # stopped on the way out
