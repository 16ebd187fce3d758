"""Letters sent by many threads at once, each by token, with how it was answered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from helpers.certs import Creds
from helpers.raw_tls import exchange, letter, status_of

REFUSED = -1  # the connection was refused: this letter never left
GARBLED = 0  # an answer that is not one status line: counted as a failure


@dataclass
class Ledger:
    """Every letter sent, by token: its status (None: closed with no answer; REFUSED; GARBLED)."""

    status: dict[str, int | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self, port: int, token: str, creds: Creds, source: str, timeout: float = 20
    ) -> int | None:
        status: int | None
        try:
            response = exchange(port, letter(token), creds, source=source, timeout=timeout)
        except ConnectionRefusedError:
            status = REFUSED
        except OSError:
            status = None
        else:
            status = status_of(response.response)
            if status is None and response.response:
                status = GARBLED
        with self.lock:
            self.status[token] = status
        return status

    def tokens(self, test: Callable[[int | None], bool], prefix: str = "") -> set[str]:
        with self.lock:
            return {t for t, s in self.status.items() if test(s) and t.startswith(prefix)}

    def with_status(self, status: int, prefix: str = "") -> set[str]:
        return self.tokens(lambda s: s == status, prefix)
