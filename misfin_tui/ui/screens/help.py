"""Help: the keys of the screen underneath and a few words about it."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

CLOSE = "Esc (or q, ?) closes this help."
GENERAL = (
    "ctrl+p opens the command palette: every action is there by name. "
    'Keys can be changed in config.toml under [keys] (binding id = "key").'
)


# Keys every scrolling widget or screen has (scrolling, focus moves, copying a selection, the
# palette): not worth a line in help.
_PLUMBING = ("scroll_", "page_left", "page_right", "focus_", "copy_text", "command_palette")


def _bare(action: str) -> str:
    """'app.focus_next' / 'screen.copy_text' -> 'focus_next' / 'copy_text'."""
    for prefix in ("app.", "screen."):
        action = action.removeprefix(prefix)
    return action


class HelpScreen(ModalScreen[None]):
    """Lists the bindings active on `target` (the screen help was asked for)."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 80; max-width: 95%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; color: $accent; }
    HelpScreen #help-close { color: $text-muted; margin-bottom: 1; }
    HelpScreen #help-text { margin-bottom: 1; }
    HelpScreen VerticalScroll { height: auto; max-height: 24; }
    HelpScreen #help-general { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, target: Screen[Any]) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        title = getattr(self.target, "HELP_TITLE", None) or type(self.target).__name__
        text = getattr(self.target, "HELP", None) or ""
        with Vertical():
            yield Static(Content(f"Help: {title}"), id="help-title")
            yield Static(Content(CLOSE), id="help-close")
            if text:
                yield Static(Content(text), id="help-text")
            with VerticalScroll():
                yield Static(self._keys(), id="help-keys")
            yield Static(Content(GENERAL), id="help-general")

    def _keys(self) -> Content:
        rows: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        # The screen's own keys first, then the app's, then those of the focused widget.
        ordered = sorted(
            self.target.active_bindings.values(),
            key=lambda active: (
                0 if active.node is self.target else 1 if active.node is self.app else 2
            ),
        )
        for active in ordered:
            binding = active.binding
            if not binding.description or binding.system:
                continue
            if _bare(binding.action).startswith(_PLUMBING):
                continue
            key = self.app.get_key_display(binding)
            description = binding.tooltip or binding.description
            if (key, description) in seen:
                continue
            seen.add((key, description))
            rows.append((key, description))
        if not rows:
            return Content("No keys on this screen.")
        width = max(len(key) for key, _ in rows) + 2
        parts: list[Content | str | tuple[str, str]] = []
        for index, (key, description) in enumerate(rows):
            if index:
                parts.append("\n")
            parts.append((key.ljust(width), "bold"))
            parts.append(description)
        return Content.assemble(*parts)
