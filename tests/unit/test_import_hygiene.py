"""The core must never pull in the UI toolkit: headless commands stay fast and testable."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import misfin_tui.core


def core_modules() -> list[str]:
    """Every module under misfin_tui.core, subpackages (core/trust/, core/outbox/) included."""
    return sorted(
        info.name
        for info in pkgutil.walk_packages(misfin_tui.core.__path__, prefix="misfin_tui.core.")
    )


def test_core_has_modules() -> None:
    assert "misfin_tui.core.database" in core_modules()


def test_core_never_imports_textual_or_rich() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"
