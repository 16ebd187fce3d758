"""Archive: export a folder (or all) to a gembox file, or import one, from the app.

The work is core/gembox.py's, the same as `mail export --gembox` and `mail import`; it runs in
a thread worker so a big archive never freezes the screen. The result, or the error with the
line number of a bad file, is shown on the screen itself (not only in a toast that fades), and
an import that fails stores nothing (import_gembox is all or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from misfin_tui.core.database import FOLDERS
from misfin_tui.core.gembox import IMPORT_FOLDERS, GemboxError, export_gembox, import_file
from misfin_tui.core.text import one_line
from misfin_tui.ui.session import Session

ALL_FOLDERS = "all"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run gave: the words to show, and whether it went wrong."""

    text: str
    failed: bool = False


def error_words(exc: BaseException) -> str:
    """An error as a person reads it: a bad gembox names its line, a file error its path."""
    if isinstance(exc, GemboxError):
        where = f"{exc.source}, line {exc.line}" if exc.line else exc.source
        return f"Not imported ({where}): {exc.message}. Nothing was stored."
    if isinstance(exc, FileExistsError):
        return f"{exc.filename} exists: tick Overwrite to replace it."
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return f"{exc.filename}: {reason}" if exc.filename else reason
    return str(exc)


class ArchiveScreen(Screen[None]):
    """Export to or import from a gembox file."""

    HELP_TITLE = "Archive (gembox)"
    HELP = (
        "Export writes a folder, or every folder, to a gembox file byte for byte (the same as "
        "`misfin-tui mail export --gembox FILE`); an existing file is kept unless Overwrite is "
        "ticked. Import reads a gembox file (the current format or the old <===== one) into "
        "the folder chosen; letters already stored are skipped, and a bad file is reported "
        "with its line number and nothing from it is stored. Esc goes back."
    )
    BINDINGS = [
        Binding("escape", "close", "Back", id="archive.close"),
        Binding("f1", "app.help", "Help", id="archive.help"),
    ]
    DEFAULT_CSS = """
    ArchiveScreen #archive-form { padding: 1 2; height: auto; }
    ArchiveScreen .archive-row { height: auto; margin-bottom: 1; }
    ArchiveScreen .archive-row Label { width: 12; padding: 1 1 0 0; }
    ArchiveScreen .archive-row Input { width: 1fr; }
    ArchiveScreen .archive-row Select { width: 24; }
    ArchiveScreen .archive-row Button { margin-left: 1; }
    ArchiveScreen .archive-title { text-style: bold; margin-top: 1; }
    ArchiveScreen #archive-result { padding: 0 2; height: auto; }
    ArchiveScreen #archive-result.-failed { color: $error; }
    """

    def __init__(self, session: Session, *, default_dir: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.default_dir = default_dir or Path.home()
        self.last: Outcome | None = None

    def compose(self) -> ComposeResult:
        default = str(self.default_dir / "misfin.gembox")
        yield Header()
        with Vertical(id="archive-form"):
            yield Static("Export to a gembox file", classes="archive-title")
            with Horizontal(classes="archive-row"):
                yield Label("Folder")
                yield Select(
                    [("All folders", ALL_FOLDERS), *((name, name) for name in FOLDERS)],
                    value=ALL_FOLDERS,
                    allow_blank=False,
                    id="export-folder",
                )
                yield Checkbox("Overwrite", id="export-overwrite")
            with Horizontal(classes="archive-row"):
                yield Label("File")
                yield Input(default, placeholder="path of the file to write", id="export-path")
                yield Button("Export", id="export", variant="primary")
            yield Static("Import a gembox file", classes="archive-title")
            with Horizontal(classes="archive-row"):
                yield Label("Into")
                yield Select(
                    [(name, name) for name in IMPORT_FOLDERS],
                    value="Inbox",
                    allow_blank=False,
                    id="import-folder",
                )
            with Horizontal(classes="archive-row"):
                yield Label("File")
                yield Input(placeholder="path of the file to read", id="import-path")
                yield Button("Import", id="import")
        yield Static(id="archive-result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def _path(self, widget_id: str) -> Path | None:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        return Path(text).expanduser() if text else None

    @on(Button.Pressed, "#export")
    @on(Input.Submitted, "#export-path")
    def start_export(self) -> None:
        path = self._path("export-path")
        if path is None:
            self._show(Outcome("Type the path of the file to write.", failed=True))
            return
        folder = self.query_one("#export-folder", Select).value
        overwrite = self.query_one("#export-overwrite", Checkbox).value
        self._show(Outcome(f"Exporting to {path}…"))
        self._export(path, folder if isinstance(folder, str) else ALL_FOLDERS, overwrite)

    @on(Button.Pressed, "#import")
    @on(Input.Submitted, "#import-path")
    def start_import(self) -> None:
        path = self._path("import-path")
        if path is None:
            self._show(Outcome("Type the path of the gembox file to read.", failed=True))
            return
        folder = self.query_one("#import-folder", Select).value
        self._show(Outcome(f"Importing {path}…"))
        self._import(path, folder if isinstance(folder, str) else "Inbox")

    @work(thread=True, exclusive=True, exit_on_error=False, group="archive")
    def _export(self, path: Path, folder: str, overwrite: bool) -> None:
        store = self.session.engine.store
        try:
            result = export_gembox(
                store, path, folder=None if folder == ALL_FOLDERS else folder, overwrite=overwrite
            )
        except Exception as exc:
            outcome = Outcome(f"Not exported: {error_words(exc)}", failed=True)
        else:
            which = "every folder" if folder == ALL_FOLDERS else folder
            outcome = Outcome(
                f"Exported {result.letters:,} letters from {which} to {result.path} "
                f"({result.bytes_written:,} bytes)."
            )
        self.app.call_from_thread(self._show, outcome)

    @work(thread=True, exclusive=True, exit_on_error=False, group="archive")
    def _import(self, path: Path, folder: str) -> None:
        store = self.session.engine.store
        try:
            result = import_file(store, path, folder=folder)
        except GemboxError as exc:
            outcome = Outcome(error_words(exc), failed=True)
        except Exception as exc:
            outcome = Outcome(f"Not imported: {error_words(exc)}", failed=True)
        else:
            skipped = result.already_stored + result.repeated
            words = f"Imported {len(result.added):,} letters into {result.folder}"
            if skipped:
                words += f"; {skipped:,} already stored or repeated, skipped"
            outcome = Outcome(words + f" ({result.format.value} format).")
        self.app.call_from_thread(self._show, outcome)

    def _show(self, outcome: Outcome) -> None:
        self.last = outcome
        result = self.query_one("#archive-result", Static)
        result.update(Content(one_line(outcome.text)))
        result.set_class(outcome.failed, "-failed")
