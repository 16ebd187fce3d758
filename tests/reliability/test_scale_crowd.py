"""Crowds from many loopback addresses against a real `misfin-tui receive` process.

Tricklers (a ClientHello or a request one byte every half second, reopened whenever cut) must
not keep a real sender out: every letter is answered 20 and the slowest under a second, even
with the receiver full (max_connections below the crowd), and no trickler outlives the
deadline from accept (request_timeout). Thousands of idle connections cost little memory.
"""

from __future__ import annotations

import time

import pytest
from helpers.certs import Creds
from helpers.crowd import Crowd, rss_kb
from helpers.raw_tls import exchange, letter, status_of
from helpers.receivers import raise_nofile

LETTERS = 12
WITHIN = 1.0
DEADLINE = 10.0  # Limits.request_timeout: from accept to the complete request


def send_letters(port: int, creds: Creds, count: int) -> list[tuple[int | None, float]]:
    results = []
    for n in range(count):
        began = time.monotonic()
        try:
            answer = exchange(port, letter(f"real-{n}"), creds, timeout=10).response
        except OSError:
            answer = b""
        results.append((status_of(answer), round(time.monotonic() - began, 3)))
        time.sleep(0.3)
    return results


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["trickle-handshake", "trickle-request"])
def test_trickling_crowd_over_capacity_does_not_starve_a_sender(
    setup, receiver_process, mode: str
) -> None:
    profile = setup.profile()
    profile.config.set("receiver.max_connections", 300)
    profile.save_config()
    raise_nofile(4096)
    receiver = receiver_process(setup.profile_dir)
    creds = setup.senders[0]
    with Crowd(receiver.port, mode, size=450, addresses=45) as crowd:  # 10 an address
        time.sleep(1.5)  # the crowd is past the grace and holds every slot
        results = send_letters(receiver.port, creds, LETTERS)
        time.sleep(max(0.0, DEADLINE + 2.5 - 1.5 - sum(t for _, t in results) - 0.3 * LETTERS))
        lifetimes = list(crowd.lifetimes)
    assert receiver.alive()
    assert all(status == 20 for status, _ in results), results
    assert max(took for _, took in results) < WITHIN, results
    assert crowd.reopened > 0, "the receiver never cut a trickler"
    assert max(lifetimes) < DEADLINE + 1.5, f"a trickler lived {max(lifetimes):.1f} s"


@pytest.mark.timeout(120)
def test_two_thousand_idle_connections_cost_little_memory(setup, receiver_process) -> None:
    raise_nofile(8192)
    receiver = receiver_process(setup.profile_dir)
    creds = setup.senders[0]
    assert status_of(exchange(receiver.port, letter("warm-up"), creds).response) == 20
    before = rss_kb(receiver.pid)
    with (
        Crowd(receiver.port, "idle-tls", size=1000, addresses=100, net=5, tick=2.0) as tls,
        Crowd(receiver.port, "idle-tcp", size=1000, addresses=100, net=4, tick=2.0) as tcp,
    ):
        held = tcp.held + tls.held
        after = rss_kb(receiver.pid)
        results = send_letters(receiver.port, creds, 6)
    per_connection_kb = (after - before) / held
    print(f"{held} idle connections: {per_connection_kb:.1f} KB each")
    assert held >= 1900, f"only {held} connections held"
    assert per_connection_kb <= 20, f"{per_connection_kb:.1f} KB an idle connection"
    assert all(status == 20 for status, _ in results), results
    assert max(took for _, took in results) < WITHIN, results
