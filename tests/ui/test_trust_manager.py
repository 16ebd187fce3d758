"""Pilot tests of the trust manager's actions against a real delivery's pins."""

from __future__ import annotations

import re

from helpers.certs import fixed_cert
from helpers.pilot import TrustHost, type_text, wait_for, wait_screen
from helpers.profiles import CAFE, RECIPIENT, SENDER, trust_network
from textual.widgets import DataTable, Static, Tab, Tabs
from textual.widgets._footer import FooterKey

from misfin_tui.core.address import Address
from misfin_tui.core.fingerprint import grouped
from misfin_tui.core.trust.model import HistoryEntry, HostState, MailboxState
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.prompts.common import PasteFingerprintScreen, TextInputScreen
from misfin_tui.ui.prompts.first_contact import FirstContactScreen
from misfin_tui.ui.screens.help import HelpScreen
from misfin_tui.ui.screens.trust_manager import TrustManagerScreen, history_detail, state_mark

HOSTPORT = "example.org:1958"


async def delivered_once(app: TrustHost, pilot) -> None:
    """One letter to bob, first contact trusted: a host pin and a mailbox pin exist."""
    app.sending.submit(
        identity=SENDER, recipients=[Address.parse(RECIPIENT)], subject="Hi", body="Hello\n"
    )
    await wait_screen(pilot, FirstContactScreen)
    await pilot.press("t")
    await wait_for(pilot, lambda: [i.state for i in app.engine.outbox.items()] == ["delivered"])


async def open_manager(app: TrustHost, pilot) -> TrustManagerScreen:
    app.push_screen(TrustManagerScreen(app.session))
    manager = await wait_screen(pilot, TrustManagerScreen)
    await wait_for(pilot, lambda: manager.row_key("servers") == HOSTPORT)
    return manager


def detail(manager: TrustManagerScreen) -> str:
    return str(manager.query_one("#detail-text", Static).content)


async def test_servers_tab_shows_pin_and_verifies_by_paste(sender, peer) -> None:
    trust_network(sender, "a-network-id-longer-than-twelve", "Home")
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        manager = await open_manager(app, pilot)
        text = detail(manager)
        assert "Fingerprint (SHA-256):" in text and "Key pin (SHA-256):" in text
        assert " on Home\n" in text  # the network by its label, not a cut-off id
        assert "Protocol: Misfin C" in text
        grouped = peer.cert.fingerprint.upper()
        assert f"{grouped[:4]} {grouped[4:8]}" in text
        await pilot.press("v")
        paste = await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, "ff" * 32)
        await pilot.press("enter")
        assert app.screen is paste
        paste.query_one("Input").value = ""
        await type_text(pilot, peer.cert.fingerprint)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.engine.trust.host(HOSTPORT).state == "verified")
        await wait_for(pilot, lambda: "✓ verified" in detail(manager))


async def test_a_gmap_home_says_so_instead_of_a_misfin_protocol(sender, peer) -> None:
    trust_network(sender)
    sender.config.set(f"gmap.{SENDER}", ("example.org", 1958))
    sender.save_config()
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        manager = await open_manager(app, pilot)
        await wait_for(pilot, lambda: "Serves: GMAP (your mail from home)" in detail(manager))
        assert "Protocol:" not in detail(manager)


async def test_a_server_whose_key_changed_under_a_waiting_letter_is_flagged(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        peer.swap_cert(fixed_cert(3, RECIPIENT, blurb="Bob rebuilt"))
        app.engine.outbox.enqueue("Two\n", [Address.parse(RECIPIENT)])
        [item] = await app.engine.outbox.process()
        assert item.question is not None and item.question.ask.value == "changed"
        manager = await open_manager(app, pilot)
        row = manager.query_one("#servers-table", DataTable).get_row(HOSTPORT)
        assert "⚠ changed" in [str(cell) for cell in row]


async def test_a_key_seen_changed_while_verifying_is_flagged_and_reviewed(sender, peer) -> None:
    """The verifier saw bob's server present another key (through the one policy): the server
    shows ⚠ changed with what was seen, enter asks the changed-key alarm, h keeps the trusted
    key, and a matching paste replaces it, as a letter's alarm would."""
    from misfin_tui.core.client import presented_cert
    from misfin_tui.ui.prompts.changed_key import ChangedKeyScreen

    trust_network(sender)
    app = TrustHost(sender)
    other = fixed_cert(3, RECIPIENT, blurb="Bob rebuilt")
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        engine = app.engine
        pinned = engine.trust.host(HOSTPORT)

        def seen() -> None:  # what the verifier does when bob's server shows `other`
            engine.policy.for_verifying(
                "example.org",
                presented_cert(other.der),
                engine.networks.current(),
                by="verifying bob@example.org",
            )

        seen()
        manager = await open_manager(app, pilot)
        row = manager.query_one("#servers-table", DataTable).get_row(HOSTPORT)
        assert "⚠ changed" in [str(cell) for cell in row]
        text = detail(manager)
        assert "State: ⚠ changed" in text and "Presented instead, fingerprint" in text
        assert "while verifying bob@example.org on Home." in text
        assert grouped(other.fingerprint)[:9].upper() in text.upper()
        await pilot.press("enter")
        alarm = await wait_screen(pilot, ChangedKeyScreen)
        assert alarm.reviewing and "verifying bob@example.org" in alarm.question.reason
        await pilot.press("h")  # keep the trusted key
        await wait_for(pilot, lambda: engine.trust.host(HOSTPORT).changed is None)
        kept = engine.trust.host(HOSTPORT)
        assert (kept.spki, kept.fingerprint) == (pinned.spki, pinned.fingerprint)
        assert "kept" in [h.event for h in engine.trust.history(subject=HOSTPORT)]
        await wait_for(pilot, lambda: "Presented instead" not in detail(manager))

        seen()  # seen again: a paste of the new fingerprint replaces the pin
        manager.refresh_data()
        await wait_for(pilot, lambda: "Presented instead" in detail(manager))
        await pilot.press("enter")
        await wait_screen(pilot, ChangedKeyScreen)
        await pilot.press("r")
        await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, other.fingerprint)
        await pilot.press("enter")
        await wait_for(pilot, lambda: engine.trust.host(HOSTPORT).fingerprint == other.fingerprint)
        replaced = engine.trust.host(HOSTPORT)
        assert replaced.changed is None and replaced.state is HostState.VERIFIED


async def test_forget_and_reject_ask_first(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        await open_manager(app, pilot)
        await pilot.press("x")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("n")  # no is the default and changes nothing
        await wait_screen(pilot, TrustManagerScreen)
        assert app.engine.trust.host(HOSTPORT) is not None
        await pilot.press("b")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.engine.trust.host(HOSTPORT).state == "rejected")
        await pilot.press("x")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.engine.trust.host(HOSTPORT) is None)
        events = [e.event for e in app.engine.trust.history(subject=HOSTPORT)]
        assert events[:2] == ["forgotten", "rejected"]


async def test_mailbox_nickname_verify_and_reject(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        manager = await open_manager(app, pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: manager.row_key("mailboxes") == RECIPIENT)
        await pilot.press("n")
        await wait_screen(pilot, TextInputScreen)
        await type_text(pilot, "Bob B.")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.engine.trust.mailbox(RECIPIENT).nickname == "Bob B.")
        await pilot.press("v")
        await wait_screen(pilot, PasteFingerprintScreen)
        await type_text(pilot, peer.cert.fingerprint[:32])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.engine.trust.mailbox(RECIPIENT).state == "verified")
        await pilot.press("b")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.engine.trust.mailbox(RECIPIENT).state == "rejected")
        assert "⛔ rejected" in detail(manager) or manager.current_tab == "mailboxes"


async def test_networks_mark_and_unmark(sender, peer, network) -> None:
    network(CAFE)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        await wait_for(pilot, lambda: manager.snapshot.current is not None)
        title = str(manager.query_one("#trust-title", Static).content)
        assert "current network: network cafe-net (not trusted)" in title
        await pilot.press("m")  # from any tab: the current network
        await wait_screen(pilot, TextInputScreen)
        await type_text(pilot, "Home")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.engine.networks.get(CAFE).trusted)
        await pilot.press("3")
        await wait_for(pilot, lambda: manager.row_key("networks") == CAFE)
        await wait_for(pilot, lambda: "Trusted: yes" in detail(manager))
        await pilot.press("m")
        await wait_for(pilot, lambda: not app.engine.networks.get(CAFE).trusted)
        history = [e.event for e in app.engine.trust.history(subject=CAFE)]
        assert history[:2] == ["network-untrusted", "network-trusted"]


async def test_history_lists_every_trust_event(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        manager = await open_manager(app, pilot)
        await pilot.press("5")
        await wait_for(pilot, lambda: manager.table("history").row_count >= 3)
        subjects = {e.subject for e in manager.snapshot.history}
        assert {HOSTPORT, RECIPIENT} <= subjects
        assert "Event:" in detail(manager)


async def test_mailbox_unverify_and_copy_fingerprint(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        assert app.engine.trust.verify_mailbox(RECIPIENT, peer.cert.fingerprint)
        manager = await open_manager(app, pilot)
        await pilot.press("c")
        assert app.clipboard == peer.cert.fingerprint  # the server's certificate
        await pilot.press("2")
        await wait_for(pilot, lambda: manager.row_key("mailboxes") == RECIPIENT)
        await pilot.press("u")
        await wait_for(pilot, lambda: app.engine.trust.mailbox(RECIPIENT).state == "pinned")
        assert app.engine.trust.mailbox(RECIPIENT).verified_at is None


async def test_the_table_has_the_focus_and_j_k_1_5_and_q_work(sender, peer) -> None:
    """Arrows and j/k move at once (the focus is on the table, not the tab bar); 1-5 switch
    tabs and keep the focus on that tab's table; help tells the truth; q closes."""
    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        manager = await open_manager(app, pilot)
        assert manager.focused is manager.table("servers")
        await pilot.press("2")
        await pilot.pause()
        assert manager.current_tab == "mailboxes"
        assert manager.focused is manager.table("mailboxes")
        await pilot.press("5")
        await pilot.pause()
        history = manager.table("history")
        assert manager.focused is history and history.row_count >= 2
        assert history.cursor_row == 0
        await pilot.press("j")
        assert history.cursor_row == 1
        await pilot.press("k")
        assert history.cursor_row == 0
        await pilot.press("down")
        assert history.cursor_row == 1
        assert "Tab switches" not in manager.HELP and "Tab / 1-5" not in manager.HELP
        await pilot.press("q")
        await wait_for(pilot, lambda: not isinstance(app.screen, TrustManagerScreen))


async def test_every_tab_label_shows_whole_at_80_columns(sender) -> None:
    app = TrustHost(sender)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        await pilot.pause()
        bar = manager.query_one(Tabs).region
        for tab in manager.query(Tab):
            assert bar.contains_region(tab.region), f"{tab.label} is cut"


async def test_the_footer_shows_close_and_help_whole_at_80_columns(sender) -> None:
    app = TrustHost(sender)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        for tab in "12345":
            await pilot.press(tab)
            await pilot.pause()
            keys = list(manager.query(FooterKey))
            palette = next(key for key in keys if key.has_class("-command-palette"))
            shown = {key.description for key in keys if key is not palette}
            assert {"Close", "Help"} <= shown, tab
            for key in keys:
                if key is not palette:
                    assert key.region.right <= palette.region.x, f"{key.description} is cut"


def test_history_detail_groups_fingerprints_and_keeps_them_whole() -> None:
    spki = "fa589a9c6fa1fd60dcf19a3e52516e91ac7d1bfeeddcb5aad490b5bd8cdb379c"
    entry = HistoryEntry(1, "2026-11-20T18:05:00Z", "host", HOSTPORT, "learned", f"key {spki}", "")
    text = history_detail(entry)
    assert spki not in text
    assert f"key {grouped(spki)}" in text  # all sixteen groups: the full value


def test_every_state_the_core_keeps_has_one_mark() -> None:
    """The words are the core's own states; none is shown bare or under another name."""
    for state in [*HostState, *MailboxState]:
        assert state_mark(state).endswith(" " + state.value) or state == MailboxState.ALARM
    assert state_mark(MailboxState.ALARM) == "⚠ changed"


async def test_help_lists_every_key_of_every_tab_and_its_words_wrap(sender) -> None:
    """On the Servers tab too: u and n (mailboxes only) and enter (pending only) are listed."""
    app = TrustHost(sender)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(TrustManagerScreen(app.session))
        manager = await wait_screen(pilot, TrustManagerScreen)
        app.push_screen(HelpScreen(manager))
        help_screen = await wait_screen(pilot, HelpScreen)
        keys = str(help_screen.query_one("#help-keys", Static).content)
        for key in ("esc, q", "j", "k", "v", "x", "b", "u", "n", "c", "m", "⏎", "1-5", "?"):
            assert re.search(rf"(^|  ){re.escape(key)}  ", keys, re.MULTILINE), key
        assert "Go to Servers, Mailboxes, Networks, Pending, History" in keys
        half = (min(80, int(80 * 0.95)) - HelpScreen.FRAME - 1) // 2
        # Every key fits a column of two at 80x24; only 1-5 runs across. (This host app's
        # ctrl+q is Textual's own App binding, not one of ours, so help leaves it out; the real
        # app declares its ^q and lists it.)
        across = [line for line in keys.splitlines() if line[half - 2 : half].strip()]
        assert [line.split()[0] for line in across] == ["1-5"]
        assert "\n" not in manager.HELP  # one paragraph: the help screen wraps it


async def test_the_detail_says_whether_a_key_was_approved_or_only_seen(sender, peer) -> None:
    """A server key learned while verifying a sender is shown as seen, not pinned, and the
    detail says it is evidence, not approved, so nobody mistakes it for a decision."""
    from misfin_tui.core.client import presented_cert

    trust_network(sender)
    app = TrustHost(sender)
    async with app.run_test(size=(120, 36)) as pilot:
        await delivered_once(app, pilot)
        app.engine.trust.learn_host(
            "seen.test:1958",
            presented_cert(peer.cert.der),
            app.engine.networks.current(),
            "carol@seen.test",
        )
        manager = await open_manager(app, pilot)
        assert "Origin: approved by you" in detail(manager)
        await pilot.press("j")
        await wait_for(pilot, lambda: manager.row_key("servers") == "seen.test:1958")
        await wait_for(pilot, lambda: "seen.test:1958" in detail(manager))
        assert "Origin: seen while verifying a sender (not approved)" in detail(manager)
        assert "State: ◦ seen" in detail(manager)
        row = manager.query_one("#servers-table", DataTable).get_row("seen.test:1958")
        assert "◦ seen" in [str(cell) for cell in row]
        await pilot.press("2")  # Mailboxes: bob's key, as his server answered the delivery
        await wait_for(pilot, lambda: "Origin: reported by its server" in detail(manager))
