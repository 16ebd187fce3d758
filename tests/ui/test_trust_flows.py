"""Pilot tests of the trust flows against a real receiver: first contact, changed key, hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers.certs import fixed_ca, fixed_cert, install_identity
from helpers.pilot import TrustHost, record_notes, type_text, wait_for, wait_screen
from helpers.profiles import CAFE, RECIPIENT, SENDER, trust_network
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from misfin_tui.core.address import Address
from misfin_tui.core.fingerprint import grouped
from misfin_tui.core.outbox import Evidence, State
from misfin_tui.core.trust import Ask, Choice, NetworkFacts, Question
from misfin_tui.ui.app import make_app
from misfin_tui.ui.prompts.changed_key import ChangedKeyScreen
from misfin_tui.ui.prompts.common import PasteFingerprintScreen, TextInputScreen
from misfin_tui.ui.prompts.first_contact import FirstContactScreen, UnfamiliarNetworkScreen
from misfin_tui.ui.prompts.mailbox import MailboxAlarmScreen, MailboxChangedScreen
from misfin_tui.ui.prompts.redirect import RedirectScreen
from misfin_tui.ui.prompts.renewal import RenewalScreen
from misfin_tui.ui.screens.trust_manager import TrustManagerScreen


def send(app: TrustHost, subject: str = "Hello") -> None:
    app.sending.submit(
        identity=SENDER, recipients=[Address.parse(RECIPIENT)], subject=subject, body="Hi Bob.\n"
    )


async def first_letter_trusted(app: TrustHost, pilot) -> None:
    """Letter "One" to Bob, his server trusted at first contact, and delivered."""
    send(app, "One")
    await wait_screen(pilot, FirstContactScreen)
    await pilot.press("t")
    await wait_for(pilot, lambda: states(app) == ["delivered"])


def states(app: TrustHost) -> list[str]:
    return [item.state for item in app.engine.outbox.items()]


async def test_first_contact_trust_and_send(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        screen = await wait_screen(pilot, FirstContactScreen)
        assert screen.question.presented.fingerprint == peer.cert.fingerprint
        assert peer.received() == 0  # asked before a byte of the letter went out
        await pilot.press("t")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert peer.received() == 1
        pin = app.engine.trust.host("example.org:1958")
        assert pin is not None and pin.state == "pinned"


async def test_first_contact_verified_by_paste(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("v")
        paste = await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, "00" * 32)
        await pilot.press("enter")
        assert app.screen is paste  # a wrong fingerprint is refused, with the reason
        assert "does NOT match" in str(paste.query_one("#result", Static).content)
        paste.query_one(Input).value = ""
        await type_text(pilot, grouped(peer.cert.fingerprint).lower())
        await pilot.press("enter")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert app.engine.trust.host("example.org:1958").state == "verified"
        assert peer.received() == 1


async def test_changed_key_blocks_until_pasted_and_mailbox_alarm_follows(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        app.notify("Letter queued for bob — see the Outbox.")
        send(app, "One")
        await wait_screen(pilot, FirstContactScreen)
        assert not list(app._notifications)  # no toast over the question
        await pilot.press("t")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert peer.received() == 1

        new = fixed_cert(3, RECIPIENT, blurb="Bob rebuilt")
        peer.swap_cert(new)
        app.notify("Letter queued for bob — see the Outbox.")
        send(app, "Two")
        alarm = await wait_screen(pilot, ChangedKeyScreen)
        assert not list(app._notifications)  # no toast over the alarm's first lines
        assert (
            alarm.question.pinned.fingerprint == fixed_cert(2, RECIPIENT, blurb="Bob").fingerprint
        )
        assert alarm.question.presented.fingerprint == new.fingerprint
        assert peer.received() == 1  # nothing reached the server
        await pilot.press("t", "a", "y", "o", "s")  # no one-key accept exists
        assert app.screen is alarm
        await pilot.press("r")
        paste = await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, "1234")
        await pilot.press("enter")
        assert "Too short" in str(paste.query_one("#result", Static).content)
        assert "NOT replaced" in str(paste.query_one("#result", Static).content)
        paste.query_one(Input).value = ""
        await type_text(pilot, new.fingerprint[:32])
        await pilot.press("enter")
        # The server's key is replaced and the letter goes. The 20 carries the mailbox key the
        # newly approved server key issued (here its own certificate): a rotation under the
        # server the person approved, not an alarm against the key they replaced.
        await wait_for(pilot, lambda: peer.received() == 2)
        await wait_for(pilot, lambda: states(app) == ["delivered", "delivered"])
        assert app.engine.trust.host("example.org:1958").spki == new.spki
        pin = app.engine.trust.mailbox(RECIPIENT)
        assert pin.fingerprint == new.fingerprint and pin.issuer_spki == new.spki
        assert not isinstance(app.screen, MailboxAlarmScreen | MailboxChangedScreen)

        send(app, "Three")  # nothing paused: it goes without a question
        await wait_for(pilot, lambda: peer.received() == 3)
        assert not isinstance(app.screen, MailboxAlarmScreen | MailboxChangedScreen)


async def test_unfamiliar_network_holds_until_network_trusted(sender, peer, network) -> None:
    network(CAFE)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        screen = await wait_screen(pilot, UnfamiliarNetworkScreen)
        assert screen.focused.id == "do-hold"  # the safe choice is the default
        assert screen.question.network.hints == "set by MISFIN_TUI_NETWORK"
        await pilot.press("t", "o")  # no trust-and-send shortcut on an untrusted network
        assert app.screen is screen
        await pilot.press("h")
        await wait_for(pilot, lambda: states(app) == ["held"])
        assert peer.received() == 0

        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        await pilot.press("3")
        await wait_for(pilot, lambda: manager.row_key("networks") == CAFE)
        await pilot.press("m")
        label = await wait_screen(pilot, TextInputScreen)
        await type_text(pilot, "Cafe I own")
        await pilot.press("enter")
        # Trusting the network re-probes the held letter: now an ordinary first contact.
        await wait_screen(pilot, FirstContactScreen)
        assert label is not app.screen
        await pilot.press("t")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert peer.received() == 1
        assert app.engine.networks.get(CAFE).trusted


async def test_unfamiliar_network_mark_trusted_from_the_prompt(sender, peer, network) -> None:
    network(CAFE)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        await wait_screen(pilot, UnfamiliarNetworkScreen)
        await pilot.press("m")
        await wait_screen(pilot, TextInputScreen)
        await type_text(pilot, "Office")
        await pilot.press("enter")
        prompt = await wait_screen(pilot, FirstContactScreen)
        assert prompt.question.network.trusted
        await pilot.press("t")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert app.engine.networks.get(CAFE).label == "Office"


async def test_the_network_name_left_empty_is_home_and_enter_is_said_to_confirm(
    sender, peer, network
) -> None:
    network(CAFE)
    app = TrustHost(sender)
    async with app.run_test(size=(80, 24)) as pilot:
        send(app)
        await wait_screen(pilot, UnfamiliarNetworkScreen)
        await pilot.press("m")
        dialog = await wait_screen(pilot, TextInputScreen)
        field = dialog.query_one(Input)
        assert field.value == "" and field.placeholder == "Home"
        hint = dialog.query_one(".hint", Static)
        assert "Enter confirms" in str(hint.render()) and "Home" in str(hint.render())
        assert dialog.region.contains_region(hint.region)  # in sight at 80x24
        await pilot.press("enter")  # the empty field: the name shown
        prompt = await wait_screen(pilot, FirstContactScreen)
        assert prompt.question.network.trusted
        assert app.engine.networks.get(CAFE).label == "Home"
        assert app.engine.networks.get(CAFE).trusted


async def test_unfamiliar_network_send_anyway_pins_nothing(sender, peer, network) -> None:
    network(CAFE)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        await wait_screen(pilot, UnfamiliarNetworkScreen)
        await pilot.press("s")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert peer.received() == 1
        assert app.engine.trust.host("example.org:1958") is None


async def test_likely_renewal_is_calm_and_accepts(sender, peer) -> None:
    trust_network(sender)
    soon = datetime.now(UTC) + timedelta(days=10)
    peer.swap_cert(fixed_cert(4, RECIPIENT, blurb="Bob", not_after=soon))
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await first_letter_trusted(app, pilot)
        renewed = fixed_cert(5, RECIPIENT, blurb="Bob")
        peer.swap_cert(renewed)
        send(app, "Two")
        screen = await wait_screen(pilot, RenewalScreen)
        assert screen.focused.id == "do-keep"
        await pilot.press("a")
        await wait_for(pilot, lambda: peer.received() == 2)
        assert app.engine.trust.host("example.org:1958").spki == renewed.spki


async def test_escape_keeps_the_letter_waiting_and_decide_reopens(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: states(app) == ["decision"])
        assert peer.received() == 0
        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        await pilot.press("4")
        await wait_for(pilot, lambda: manager.row_key("pending") is not None)
        await pilot.press("enter")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("o")
        await wait_for(pilot, lambda: states(app) == ["delivered"])
        assert app.engine.trust.host("example.org:1958") is None  # "send once" remembers nothing


async def test_mailbox_rotation_under_the_same_server_key_is_a_quiet_notice(sender, peer) -> None:
    ca = fixed_ca(20, "example.org")
    peer.swap_cert(fixed_cert(21, RECIPIENT, blurb="Bob", issuer=ca), ca)
    trust_network(sender)
    app = TrustHost(sender)
    notes = record_notes(app)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app, "One")
        prompt = await wait_screen(pilot, FirstContactScreen)
        assert (
            prompt.question.presented.fingerprint == ca.fingerprint
        )  # the server shows its host CA
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)
        rotated = fixed_cert(22, RECIPIENT, blurb="Bob", issuer=ca)
        peer.swap_cert(rotated, ca)
        send(app, "Two")
        await wait_for(pilot, lambda: any("new mailbox key" in note for note in notes))
        assert peer.received() == 2
        assert not isinstance(app.screen, ModalScreen)  # a notice, not a question
        assert app.engine.trust.mailbox(RECIPIENT).fingerprint == rotated.fingerprint


async def test_one_answer_covers_every_letter_to_the_same_server(sender, peer) -> None:
    carol = "carol@example.org"
    install_identity(peer.profile, carol, fixed_cert(6, carol, blurb="Carol"))
    peer.swap_cert(peer.cert)  # restart serving both mailboxes
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        app.sending.submit(
            identity=SENDER,
            recipients=[Address.parse(RECIPIENT), Address.parse(carol)],
            subject="Both",
            body="Hi both\n",
        )
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: states(app) == ["delivered", "delivered"])
        assert not isinstance(app.screen, FirstContactScreen)  # asked once, not twice
        assert peer.received() == 2


async def test_strict_policy_offers_only_verify(sender, peer) -> None:
    sender.config.set("trust.first_contact", "strict")
    sender.save_config()
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        prompt = await wait_screen(pilot, FirstContactScreen)
        assert not prompt.query_one("#do-trust").display
        await pilot.press("t", "o")
        assert app.screen is prompt
        await pilot.press("v")
        await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, peer.cert.fingerprint)
        await pilot.press("enter")
        await wait_for(pilot, lambda: states(app) == ["delivered"])


async def test_a_mailbox_key_from_a_server_key_trusted_anew_raises_the_alarm_and_pauses(
    sender, peer
) -> None:
    """The server was forgotten in Trust and its new key trusted as a first contact: the
    mailbox key it then reports was not issued by the server key that vouched for the old."""
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await first_letter_trusted(app, pilot)
        assert peer.received() == 1
        assert app.engine.trust.forget_host("example.org:1958")
        new = fixed_cert(3, RECIPIENT, blurb="Bob rebuilt")
        peer.swap_cert(new)
        send(app, "Two")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        # The letter goes to the key just trusted; the 20 names a mailbox key that the server
        # key which vouched for the old one did not issue: delivered, later letters paused.
        mailbox_alarm = await wait_screen(pilot, MailboxAlarmScreen)
        assert peer.received() == 2
        assert mailbox_alarm.question.reported == new.fingerprint
        await pilot.press("t")
        manager = await wait_screen(pilot, TrustManagerScreen)
        await wait_for(pilot, lambda: manager.row_key("mailboxes") == RECIPIENT)
        assert manager.current_tab == "mailboxes"
        await pilot.press("escape")

        send(app, "Three")
        paused = await wait_screen(pilot, MailboxChangedScreen)
        assert peer.received() == 2  # paused: nothing left
        await pilot.press("v")
        await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, new.fingerprint)
        await pilot.press("enter")
        await wait_for(pilot, lambda: peer.received() == 3)
        assert paused is not app.screen
        assert app.engine.trust.mailbox(RECIPIENT).state == "verified"


async def test_verified_mailbox_rotation_asks_before_sending_as_unverified(sender, peer) -> None:
    ca = fixed_ca(20, "example.org")
    peer.swap_cert(fixed_cert(21, RECIPIENT, blurb="Bob", issuer=ca), ca)
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await first_letter_trusted(app, pilot)
        assert peer.received() == 1
        assert app.engine.trust.verify_mailbox(RECIPIENT, peer.cert.fingerprint)
        peer.swap_cert(fixed_cert(22, RECIPIENT, blurb="Bob", issuer=ca), ca)
        send(app, "Two")  # delivered: the 20 reveals the rotation
        await wait_for(pilot, lambda: peer.received() == 2)
        send(app, "Three")  # now the person who verified Bob is asked
        screen = await wait_screen(pilot, MailboxChangedScreen)
        assert screen.rotated
        assert not screen.query_one("#do-accept").display
        assert peer.received() == 2
        await pilot.press("s")
        await wait_for(pilot, lambda: peer.received() == 3)
        assert app.engine.trust.mailbox(RECIPIENT).verified_at is None


async def test_a_letter_that_cannot_be_queued_is_explained(sender, peer) -> None:
    app = TrustHost(sender)
    notes = record_notes(app)
    async with app.run_test(size=(120, 36)) as pilot:
        app.sending.submit(identity=SENDER, recipients=[], subject="x", body="y")  # no one
        await wait_for(pilot, lambda: any(note.startswith("Not queued:") for note in notes))
        assert app.engine.outbox.items() == []


async def test_an_unidentified_network_cannot_be_marked_trusted(sender, peer, network) -> None:
    network("unknown")
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        send(app)
        screen = await wait_screen(pilot, UnfamiliarNetworkScreen)
        assert not screen.query_one("#do-mark-network").display
        await pilot.press("m")
        assert app.screen is screen
        await pilot.press("h")
        await wait_for(pilot, lambda: states(app) == ["held"])
        assert peer.received() == 0


async def test_held_letter_is_reprobed_at_start_up_on_a_trusted_network(
    sender, peer, network
) -> None:
    network(CAFE)
    first = TrustHost(sender)
    async with first.run_test(size=(120, 36)) as pilot:
        send(first)
        await wait_screen(pilot, UnfamiliarNetworkScreen)
        await pilot.press("h")
        await wait_for(pilot, lambda: states(first) == ["held"])
    trust_network(sender, CAFE, "Home")  # later, at home (marked trusted)
    app = make_app(sender, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        prompt = await wait_screen(pilot, FirstContactScreen)  # asked again, now calmly
        assert prompt.question.network.trusted
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)


async def test_redirect_is_followed_only_when_the_person_agrees(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    old = Address.parse("old@example.org")
    letter = app.engine.outbox.enqueue("Moved?\n", [old], identity=SENDER)
    (item,) = app.engine.outbox.items(letter_id=letter)
    question = Question(
        ask=Ask.REDIRECT,
        recipient=old.display,
        hostport="example.org:1958",
        reason="Send here instead",
        choices=(Choice.FOLLOW,),
        default=Choice.HOLD,
        network=NetworkFacts("test-net", "Home", True),
        target=RECIPIENT,
        permanent=False,
        status=30,
    )
    # The state a 30 answer leaves behind (the receiver we use never redirects).
    sender.database().connect().execute(
        "UPDATE outbox SET state = ?, reason = ?, evidence = ? WHERE id = ?",
        (State.REDIRECTED.value, "Send here instead", Evidence(question).to_json(), item.id),
    )
    async with app.run_test(size=(120, 36)) as pilot:
        app.sending.decide(item.id)
        await wait_screen(pilot, RedirectScreen)
        assert peer.received() == 0
        await pilot.press("f")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)
        assert app.engine.outbox.item(item.id).recipient == RECIPIENT
