"""Command palette: every action the current screen has a key for, plus the app-wide ones.

Built from the live bindings, so a key, its footer entry and its palette entry are one
definition, and a key override from config shows up here too. It is the palette's only
provider: our commands come first, each once, then the two of Textual's worth keeping
(Theme, Screenshot); Textual's Quit and Keys would repeat ours.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

# Always offered, whatever screen is showing: (name, help, app action).
APP_COMMANDS = (
    ("Compose a new letter", "Write a letter", "compose"),
    ("Trust manager", "Servers, mailboxes, networks, pending decisions, history", "trust_manager"),
    ("Outbox", "Letters waiting to go, and why", "outbox"),
    (
        "Mark this network as trusted",
        "Name the network you are on and trust it for first contacts",
        "mark_network",
    ),
    (
        "Sync with home",
        "Fetch mail from your home server (GMAP) and send back changes",
        "sync_home",
    ),
    ("New identity", "Make or import a mailbox certificate", "first_run"),
    (
        "Rotate my certificate",
        "A new certificate for your identity; everyone you wrote to is told",
        "rotate_identity",
    ),
    ("Archive (gembox)", "Export letters to a gembox file, or import one", "archive"),
    ("Help", "Keys and hints for this screen", "help"),
    ("Quit", "Stop the receiver and leave", "quit"),
)
# Textual's own commands kept, by name.
SYSTEM_KEPT = ("Theme", "Screenshot")
# Screen plumbing that is not a command (focus moves, copying a selection, the palette itself).
PLUMBING = frozenset(
    {"focus_next", "focus_previous", "copy_text", "command_palette", "close_search"}
)


def _bare(action: str) -> str:
    """'app.quit' / 'screen.copy_text' -> 'quit' / 'copy_text'."""
    for prefix in ("app.", "screen."):
        action = action.removeprefix(prefix)
    return action


class MailCommands(Provider):
    """The actions of the screen the palette was opened on."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        seen: set[str] = set()
        names: set[str] = set()
        commands: list[tuple[str, str, Callable[[], Any]]] = []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            action = _bare(binding.action)
            if not binding.description or not active.enabled or action in seen:
                continue
            if binding.system or action in PLUMBING:
                continue
            if not isinstance(active.node, Screen | App):
                continue  # cursor and scrolling keys of the focused widget are not commands
            seen.add(action)
            names.add(binding.description)
            key = app.get_key_display(binding)
            # The name is the description: the help line adds only what it does not say.
            help_text = f"{binding.tooltip} ({key})" if binding.tooltip else f"Key: {key}"
            run = partial(app.run_action, binding.action, active.node)
            commands.append((binding.description, help_text, run))
        for name, help_text, action in APP_COMMANDS:
            if action not in seen and name not in names:
                commands.append((name, help_text, partial(app.run_action, action, app)))
        for command in app.get_system_commands(self.screen):
            if command.title in SYSTEM_KEPT:
                commands.append((command.title, command.help, command.callback))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, run in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
