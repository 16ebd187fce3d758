"""A full disk during receipt: the sender gets a temporary failure (4x), nothing is half-written,
and the receiver recovers by itself once there is room again.

"Full" without root tricks: the running `misfin-tui receive` process gets a tiny RLIMIT_FSIZE
(prlimit on its pid), so SQLite's next write past the end of the WAL fails (EFBIG; Python
ignores SIGXFSZ), exactly where ENOSPC would. Root ignores file permissions, so a read-only
file would prove nothing in CI. Then the limit is lifted and letters are accepted again.
"""

from __future__ import annotations

import resource

import pytest
from helpers.letters import check_integrity
from helpers.raw_tls import exchange, letter, status_of
from helpers.receivers import stored_subjects

TRIES = 6


def wal_size(db_path) -> int:
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.timeout(120)
def test_full_disk_answers_4x_and_writes_nothing_half(setup, receiver_process) -> None:
    receiver = receiver_process(setup.profile_dir)
    creds = setup.senders[0]
    assert status_of(exchange(receiver.port, letter("before-full"), creds).response) == 20
    db_path = setup.profile().db_path

    # No file of the receiver may grow past what it is now: the next WAL append fails.
    limit = max(wal_size(db_path), db_path.stat().st_size)
    resource.prlimit(receiver.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    answers = []
    for n in range(TRIES):
        try:
            answers.append(
                exchange(receiver.port, letter(f"while-full-{n}"), creds, timeout=20).response
            )
        except ConnectionError:
            answers.append(b"")
    statuses = [status_of(answer) for answer in answers]
    assert receiver.alive(), "the receiver died when the disk filled"

    resource.prlimit(
        receiver.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    assert status_of(exchange(receiver.port, letter("after-room"), creds).response) == 20
    assert receiver.stop() == 0

    stored = stored_subjects(setup.profile_dir)
    acknowledged = {f"while-full-{n}" for n, status in enumerate(statuses) if status == 20}
    assert acknowledged <= set(stored), "a letter answered 20 is missing"
    unacknowledged = {f"while-full-{n}" for n, status in enumerate(statuses) if status != 20}
    assert not unacknowledged & set(stored), "a letter not answered 20 was stored anyway"
    assert {"before-full", "after-room"} <= set(stored)
    check_integrity(db_path)
    # The failure must be reported as temporary, so the sender retries later.
    failed = [s for s in statuses if s != 20]
    assert failed, f"the limit did not bite: {statuses}"
    assert all(s is not None and s // 10 == 4 for s in failed), (
        f"a full disk must be answered 4x (temporary), got {answers}"
    )
