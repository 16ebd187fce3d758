"""First run: there is no identity yet, so make one or import one, and maybe turn on receiving.

A Misfin identity is a TLS client certificate: the mailbox address lives in it, and its
fingerprint is what correspondents pin. The certificates themselves are made by the core
(`Profile.create_identity` / `Profile.import_identity`); this screen only collects the answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from misfin_tui.core.identity import DEFAULT_KEY_TYPE, KEY_TYPES

KEY_TYPE_LABELS = {
    "p256": "P-256 (ECDSA) - widely supported",
    "ed25519": "Ed25519 - fastest, newer",
    "rsa2048": "RSA 2048 - oldest servers",
}


class FirstRunScreen(Screen[bool]):
    """Create or import an identity. Dismisses True once the profile has one."""

    HELP_TITLE = "First run"

    HELP = """\
First run: misfin_tui needs an identity (a mailbox address with its certificate) to send.
Create  make a new certificate: self-signed for one mailbox, or a host CA for your domain
        that signs the mailbox (choose this if you run the server for that domain)
Import  use an existing certificate and key (PEM files); an encrypted key needs its passphrase
Receiver  tick to let letters arrive here (listens on the port from config.toml)
ctrl+s  create / import;  Tab  next field;  Esc  leave without an identity
"""

    DEFAULT_CSS = """
    FirstRunScreen { align: center top; }
    FirstRunScreen #first-run { width: 90; max-width: 100%; height: auto; padding: 1 2; }
    FirstRunScreen .title { text-style: bold; }
    FirstRunScreen .para { margin: 1 0 0 0; }
    FirstRunScreen TabbedContent { height: auto; margin: 1 0 0 0; }
    FirstRunScreen TabPane { height: auto; padding: 1 0 0 0; }
    FirstRunScreen Label { margin: 1 0 0 0; }
    FirstRunScreen #receiver { margin: 1 0 0 0; }
    FirstRunScreen RadioSet { width: 100%; }
    FirstRunScreen #first-run-status { margin: 1 0 0 0; color: $text-error; }
    FirstRunScreen .buttons { height: auto; margin: 1 0 0 0; }
    FirstRunScreen .buttons Button { margin: 0 2 0 0; }
    """

    BINDINGS = [
        Binding("ctrl+s", "submit", "Create / import", id="first_run.submit"),
        Binding("escape", "leave", "Leave", id="first_run.leave"),
        Binding("question_mark", "app.help", "Help", id="first_run.help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(), Vertical(id="first-run"):
            yield Static("Welcome to misfin_tui", classes="title")
            yield Static(
                "To send Misfin mail you need an identity: a mailbox address and a "
                "certificate that proves it. Make a new one here, or import one you already "
                "have.",
                classes="para",
            )
            with TabbedContent(id="first-run-tabs"):
                with TabPane("Create a new identity", id="create"):
                    yield Label("Address (mailbox@host)")
                    yield Input(placeholder="alice@example.org", id="address", compact=True)
                    yield Label("Blurb (your name, shown to people you write to)")
                    yield Input(placeholder="Alice", id="blurb", compact=True)
                    yield Label("Kind")
                    with RadioSet(id="kind", compact=True):
                        yield RadioButton("Self-signed mailbox", value=True, id="self-signed")
                        yield RadioButton(
                            "Host CA plus mailbox (I run the server for this host)", id="with-ca"
                        )
                    yield Label("Key type")
                    yield Select(
                        [(KEY_TYPE_LABELS.get(k, k), k) for k in KEY_TYPES],
                        value=DEFAULT_KEY_TYPE,
                        allow_blank=False,
                        id="key-type",
                        compact=True,
                    )
                with TabPane("Import PEM files", id="import"):
                    yield Label("Certificate file (PEM)")
                    yield Input(placeholder="~/misfin/alice.pem", id="cert-path", compact=True)
                    yield Label("Private key file (PEM; empty if it is in the certificate file)")
                    yield Input(placeholder="~/misfin/alice.key", id="key-path", compact=True)
                    yield Label("Passphrase (only if the key is encrypted)")
                    yield Input(password=True, id="passphrase", compact=True)
            yield Checkbox(
                "Turn on the receiver so letters can arrive while misfin_tui runs",
                id="receiver",
                compact=True,
            )
            yield Static("", id="first-run-status")
            with Horizontal(classes="buttons"):
                yield Button(Content("Create / import (ctrl+s)"), id="submit", variant="primary")
                yield Button(Content("Leave (Esc)"), id="leave")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#address", Input).focus()

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        """Create or import, depending on the open tab."""
        tab = self.query_one(TabbedContent).active
        receiver = self.query_one("#receiver", Checkbox).value
        if tab == "import":
            cert = self.query_one("#cert-path", Input).value.strip()
            if not cert:
                self.say("Give the path of the certificate file.")
                return
            self.make(
                "import",
                receiver=receiver,
                cert=cert,
                key=self.query_one("#key-path", Input).value.strip(),
                passphrase=self.query_one("#passphrase", Input).value,
            )
            return
        address = self.query_one("#address", Input).value.strip()
        if not address:
            self.say("Type the address this identity will have, like alice@example.org.")
            return
        self.make(
            "create",
            receiver=receiver,
            address=address,
            blurb=self.query_one("#blurb", Input).value.strip(),
            ca=self.query_one("#with-ca", RadioButton).value,
            key_type=str(self.query_one("#key-type", Select).value),
        )

    def say(self, text: str) -> None:
        self.query_one("#first-run-status", Static).update(Content(text))

    @work(thread=True, exclusive=True, group="first-run")
    def make(self, how: str, *, receiver: bool, **answers: Any) -> None:
        """Create or import in a thread (key generation and file writes take a moment)."""
        from misfin_tui.core.address import Address, AddressError
        from misfin_tui.core.identity import IdentityError
        from misfin_tui.core.profile import ConfigError

        app: Any = self.app
        profile = app.profile
        try:
            if how == "import":
                key = answers["key"]
                identity = profile.import_identity(
                    Path(answers["cert"]).expanduser(),
                    Path(key).expanduser() if key else None,
                    answers["passphrase"].encode() if answers["passphrase"] else None,
                )
                done = f"Imported {identity.address}."
            else:
                created = profile.create_identity(
                    Address.parse(answers["address"]),
                    answers["blurb"],
                    answers["key_type"],
                    ca=answers["ca"],
                )
                identity = created.identity
                done = f"Created {identity.address}" + (
                    f", signed by the new host CA for {identity.address.host}."
                    if created.signer == "new-ca"
                    else f", signed by the host CA for {identity.address.host}."
                    if created.signer == "ca"
                    else " (self-signed)."
                )
            if receiver:
                profile.config.set("receiver.enabled", True)
                profile.save_config()
                done += " The receiver is on."
        except (AddressError, IdentityError, ConfigError, OSError, ValueError) as exc:
            app.call_from_thread(self.say, str(exc))
            return
        app.call_from_thread(self.finish, done)

    def finish(self, message: str) -> None:
        self.app.notify(message, markup=False)
        self.dismiss(True)

    @on(Button.Pressed, "#leave")
    def action_leave(self) -> None:
        """Leave this screen; without an identity nothing can be sent."""
        app: Any = self.app
        self.dismiss(bool(app.profile.identities()))
