"""`python -m misfin_tui` runs the same front door as the `misfin-tui` script."""

from misfin_tui.cli import main

raise SystemExit(main())
