"""Fingerprints as people read them: 4-character groups, two rows of eight, the algorithm named.

Nobody should compare 64 hex characters by eye; the grouping is for reading aloud and for
spotting which key is which. Comparison is always done by pasting (see screens/prompts.py).
The grouping itself comes from the core (`core.fingerprint.grouped`).
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from misfin_tui.core.fingerprint import grouped as group_fingerprint

ALGORITHM = "SHA-256"
# One name each, everywhere a person reads them (prompts, trust manager, CLI): the SHA-256 of
# the whole certificate is its "Fingerprint"; the SHA-256 of its public key (SPKI) is the
# "Key pin". A person told to paste "the fingerprint" then knows which one is meant.
FINGERPRINT = "Fingerprint"
KEY_PIN = "Key pin"


def fingerprint_rows(hex64: str, per_row: int = 8) -> list[str]:
    """The grouped fingerprint split into rows of `per_row` groups, a wider gap mid-row."""
    groups = group_fingerprint(hex64).split()
    rows: list[str] = []
    for start in range(0, len(groups), per_row):
        row = groups[start : start + per_row]
        half = (len(row) + 1) // 2
        rows.append(" ".join(row[:half]) + ("  " + " ".join(row[half:]) if row[half:] else ""))
    return rows


def short_fingerprint(hex64: str, groups: int = 4) -> str:
    """The first few groups and an ellipsis: enough to tell keys apart in a table."""
    if not hex64:
        return ""
    parts = group_fingerprint(hex64).split()
    return " ".join(parts[:groups]) + (" …" if len(parts) > groups else "")


def fingerprint_text(label: str, hex64: str, width: int | None = None) -> str:
    """'<label> (SHA-256):  AAAA BBBB …' with continuation rows aligned under the first.

    In fewer than `width` cells the rows get four groups each, and the label a line of its
    own if need be: every group stays in sight (a dialog cut the last ones off, under ~70
    columns, the fingerprint looking whole).
    """
    head = f"{label} ({ALGORITHM}):  "
    rows = fingerprint_rows(hex64) or ["(none)"]
    if width is not None and len(head) + max(map(len, rows)) > width:
        rows = fingerprint_rows(hex64, per_row=4) or rows
        if len(head) + max(map(len, rows)) > width:
            return "\n".join([head.rstrip(), *rows])
    pad = " " * len(head)
    return "\n".join([head + rows[0], *(pad + row for row in rows[1:])])


class FingerprintView(Static):
    """A labelled, grouped fingerprint. Never interprets markup: the value may come off the wire."""

    DEFAULT_CSS = """
    FingerprintView {
        height: auto;
        padding: 0 0 0 1;
        text-style: bold;
    }
    """

    def __init__(self, label: str, hex64: str, *, id: str | None = None) -> None:
        super().__init__(Content(fingerprint_text(label, hex64)), id=id)
        self.label = label
        self.hex64 = hex64

    def show(self, label: str, hex64: str) -> None:
        """Switch to another fingerprint (the trust manager's detail pane)."""
        self.label, self.hex64 = label, hex64
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        width = self.content_size.width or None
        self.update(Content(fingerprint_text(self.label, self.hex64, width)))
