"""misfin_tui: a terminal mail client for Misfin."""

__version__ = "0.1.0"
