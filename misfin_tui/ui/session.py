"""What the screens share, typed: the engine, the sender and the identities we send as.

The app makes one `Session` and hands it to every screen it opens; screens never reach into
the app for stores or senders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from misfin_tui.core.engine import Engine
from misfin_tui.ui.sending import Sending


@dataclass
class Session:
    engine: Engine
    sending: Sending
    identities: list[str] = field(default_factory=list)  # filled once they are loaded
    default_identity: str = ""
