"""Help: the keys of the screen underneath and a few words about it."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

CLOSE = "Esc (or q, ?) closes this help; j, k and space scroll it."
GENERAL = (
    "ctrl+p opens the command palette: every action is there by name. "
    'Keys can be changed in config.toml under [keys] by binding id, e.g. "mail.compose" = '
    '"ctrl+n" (the README, under Keys, lists the ids).'
)


# Keys every scrolling widget or screen has (scrolling, focus moves, copying a selection, the
# palette): not worth a line in help.
_PLUMBING = ("scroll_", "page_left", "page_right", "focus_", "copy_text", "command_palette")


def _our_actions(kind: type) -> frozenset[str]:
    """The actions bound in BINDINGS that misfin_tui wrote for this kind of node (its own class
    or one of our classes it derives from); what Textual's widgets bring (DataTable's "Select",
    Input's and TextArea's editing keys, OptionList's cursor) is not ours to list. A binding
    of ours keeps its row with the extra keys Textual gives the same action ("pgup" beside our
    "b" for Page up)."""
    actions: set[str] = set()
    for cls in kind.__mro__:
        if cls.__module__.split(".")[0] != "misfin_tui":
            continue
        for item in cls.__dict__.get("BINDINGS", ()):
            actions.add(item.action if isinstance(item, Binding) else item[1])
    return frozenset(actions)


def _ours(node: object, binding: Binding) -> bool:
    return binding.action in _our_actions(type(node))


def _bare(action: str) -> str:
    """'app.focus_next' / 'screen.copy_text' -> 'focus_next' / 'copy_text'."""
    for prefix in ("app.", "screen."):
        action = action.removeprefix(prefix)
    return action


def reflow(text: str) -> str:
    """A screen's help text with its prose lines joined, so the dialog wraps each paragraph
    to its own width ("… only when the" / "recipient's …" broke mid-sentence at 80 columns).
    Key lines ("r  retry now", "enter / t  open …": two spaces after the key) and blank lines
    stay as they are."""
    out: list[str] = []
    for line in text.splitlines():
        prose = line.strip() and not _key_line(line)
        if prose and out and out[-1].strip() and not _key_line(out[-1]):
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _key_line(line: str) -> bool:
    key, gap, _ = line.partition("  ")
    return bool(gap) and bool(key.strip()) and len(key) <= 12


def merge_rows(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One row per action: "d, del  Delete"; and folder digits as one "1-8  Go to …" row."""
    merged: dict[str, list[str]] = {}
    folders: list[tuple[str, str]] = []
    for key, description in rows:
        if len(key) == 1 and key.isdigit() and description.startswith("Go to "):
            folders.append((key, description.removeprefix("Go to ")))
        else:
            merged.setdefault(description, []).append(key)
    result = [(", ".join(keys), description) for description, keys in merged.items()]
    if folders:
        span = folders[0][0] if len(folders) == 1 else f"{folders[0][0]}-{folders[-1][0]}"
        result.append((span, "Go to " + ", ".join(name for _, name in folders)))
    return result


def layout_keys(rows: list[tuple[str, str]], width: int) -> Content:
    """The rows in two columns of `width` cells in all, where they fit; a row too long for
    half the width gets a line of its own after them."""
    if not rows:
        return Content("No keys on this screen.")
    key_width = max(len(key) for key, _ in rows) + 2
    half = width // 2
    short = [row for row in rows if key_width + len(row[1]) + 2 <= half]
    long = [row for row in rows if row not in short]
    if len(short) < 2:
        short, long = [], rows
    height = -(-len(short) // 2)
    lines: list[list[tuple[str, str]]] = [short[i::height] for i in range(height)] if short else []
    lines += [[row] for row in long]
    parts: list[Content | str | tuple[str, str]] = []
    for number, line in enumerate(lines):
        if number:
            parts.append("\n")
        for column, (key, description) in enumerate(line):
            parts.append((key.ljust(key_width), "bold"))
            last = column == len(line) - 1
            parts.append(description if last else description.ljust(half - key_width))
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    """Lists the bindings active on `target` (the screen help was asked for): keys first, in
    two columns where they fit, then the screen's words; the body scrolls with j/k/space."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
        Binding("j,down", "scroll(1)", "Scroll down", show=False),
        Binding("k,up", "scroll(-1)", "Scroll up", show=False),
        Binding("space,pagedown", "page(1)", "Page down", show=False),
        Binding("b,pageup", "page(-1)", "Page up", show=False),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 80; max-width: 95%; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; color: $accent; }
    HelpScreen #help-close { color: $text-muted; }
    HelpScreen VerticalScroll { height: auto; margin-top: 1; }
    HelpScreen #help-text { margin-top: 1; }
    HelpScreen #help-general { color: $text-muted; margin-top: 1; }
    """

    # Cells the dialog's frame takes from its width: border and padding on both sides.
    FRAME = 4

    def __init__(self, target: Screen[Any]) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        title = getattr(self.target, "HELP_TITLE", None) or type(self.target).__name__
        text = getattr(self.target, "HELP", None) or ""
        width = min(80, int(self.app.size.width * 0.95)) - self.FRAME - 1  # 1: the scrollbar
        with Vertical():
            yield Static(Content(f"Help: {title}"), id="help-title")
            yield Static(Content(CLOSE), id="help-close")
            with VerticalScroll(can_focus=False) as body:
                body.styles.max_height = self._body_height()
                yield Static(layout_keys(merge_rows(self._rows()), width), id="help-keys")
                if text:
                    yield Static(Content(reflow(text)), id="help-text")
                yield Static(Content(GENERAL), id="help-general")

    def _body_height(self) -> int:
        """What the dialog leaves for its scrolling body: 95% of the screen, less the border
        (2), the title and close lines (2) and the gap above the keys (1)."""
        return max(3, int(self.app.size.height * 0.95) - 5)

    def on_resize(self) -> None:
        self.query_one(VerticalScroll).styles.max_height = self._body_height()

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, pages: int) -> None:
        body = self.query_one(VerticalScroll)
        body.scroll_relative(y=pages * max(1, body.size.height - 1), animate=False)

    def _listed(self) -> list[tuple[object, Binding]]:
        """(node, binding): the screen's own keys first, then the app's, then those of the
        focused widget; only bindings of ours (see _our_actions): a key a Textual widget
        takes from us (Input's "delete") is not listed as ours either. A screen whose keys
        depend on where you are (HELP_EVERY_KEY: the trust manager's tabs) has all of its own
        listed, not only those that work right now."""
        chain = self.target._modal_binding_chain
        # Each node's keys in the order it declares them (a priority key of the screen's that
        # displaced a widget's would otherwise take the widget's place, first).
        place = {
            (id(node), key): index
            for node, bindings in chain
            for index, (key, _) in enumerate(bindings)
        }
        ordered = sorted(
            self.target.active_bindings.items(),
            key=lambda item: (
                0 if item[1].node is self.target else 1 if item[1].node is self.app else 2,
                place.get((id(item[1].node), item[0]), 0),
            ),
        )
        ordered_bindings = [active for _, active in ordered]
        if not getattr(self.target, "HELP_EVERY_KEY", False):
            return [(a.node, a.binding) for a in ordered_bindings if _ours(a.node, a.binding)]
        own: list[tuple[object, Binding]] = [
            (node, binding)
            for node, bindings in chain
            if node is self.target
            for _, binding in bindings
            if _ours(node, binding)
        ]
        taken = {binding.key for _, binding in own}  # a widget's key the screen's own shadows
        rest = [
            (a.node, a.binding)
            for a in ordered_bindings
            if a.node is not self.target and _ours(a.node, a.binding)
        ]
        return own + [(node, binding) for node, binding in rest if binding.key not in taken]

    def _rows(self) -> list[tuple[str, str]]:
        """(key, description) for each binding worth a line; the keys of one action (a
        widget's "b" and the "pgup" it inherits, say) share a row."""
        rows: list[tuple[list[str], str]] = []
        by_action: dict[tuple[int, str], list[str]] = {}
        for node, binding in self._listed():
            if not binding.description or binding.system:
                continue
            if _bare(binding.action).startswith(_PLUMBING):
                continue
            key = self.app.get_key_display(binding)
            keys = by_action.get((id(node), binding.action))
            if keys is None:
                keys = by_action[(id(node), binding.action)] = []
                rows.append((keys, binding.tooltip or binding.description))
            if key not in keys:
                keys.append(key)
        return [(", ".join(keys), description) for keys, description in rows]
