"""The command line: the TUI by default, scriptable subcommands beside it (see main.py)."""

from misfin_tui.cli.main import main

__all__ = ["main"]
