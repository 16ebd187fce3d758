"""kill -9 of a receiver during a load: every letter it acknowledged with 20 survives.

Eight senders write letters back to back into a real `misfin-tui receive` process; halfway
through, the process gets SIGKILL (no shutdown code runs). A 20 promises the letter was committed
(WAL, synchronous=FULL), so after a restart every letter answered 20 must be in the store, whole,
and the database must pass its integrity check.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from helpers.raw_tls import exchange, letter, status_of
from helpers.receivers import ReceiverProcess, stored_subjects

SENDERS = 8
KILL_AFTER = 2.0  # seconds of load before SIGKILL


@pytest.mark.timeout(90)
def test_every_acknowledged_letter_survives_sigkill(setup, receiver_process) -> None:
    receiver: ReceiverProcess = receiver_process(setup.profile_dir)
    acknowledged: list[str] = []
    unanswered = 0
    lock = threading.Lock()
    killed = threading.Event()

    def sender(n: int) -> None:
        nonlocal unanswered
        creds = setup.senders[n % len(setup.senders)]
        count = 0
        while not killed.is_set():
            token = f"letter-{n}-{count}"
            count += 1
            try:
                answer = exchange(receiver.port, letter(token), creds, timeout=10).response
            except OSError:
                answer = b""
            with lock:
                if status_of(answer) == 20:
                    acknowledged.append(token)
                else:
                    unanswered += 1

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    time.sleep(KILL_AFTER)
    receiver.kill()  # SIGKILL mid-load: senders are between handshakes, writes and commits
    killed.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 20, f"too little load before the kill: {len(acknowledged)}"

    restarted = receiver_process(setup.profile_dir)  # opens the database: WAL recovery runs
    assert restarted.alive()
    creds = setup.senders[0]
    assert status_of(exchange(restarted.port, letter("after-restart"), creds).response) == 20
    assert restarted.stop() == 0

    stored = stored_subjects(setup.profile_dir)
    missing = sorted(set(acknowledged) - set(stored))
    assert not missing, f"{len(missing)} acknowledged letters lost, e.g. {missing[:5]}"
    assert "after-restart" in stored
    conn = sqlite3.connect(setup.profile().db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # every stored letter is whole: its raw bytes still carry the subject it was indexed by
        for subject, raw in conn.execute("SELECT subject, raw FROM letters"):
            assert f"# {subject}".encode() in raw
    finally:
        conn.close()
