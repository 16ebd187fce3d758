"""The Textual app. Holds no protocol logic: it calls misfin_tui.core."""
