"""Benchmark: memory per idle connection and a real sender's latency beside 10,000 of them.

The real Receiver (bench/serve.py, child process) gets COUNT idle connections from many
loopback addresses (half TCP only, half with the TLS handshake done, both then silent, which
the receiver keeps until its deadlines); RSS is read at 0 and at COUNT open. Meanwhile a real
sender sends letters one after another: each must get 20, p99 under 1 s. Targets (issue 10):
<= 20 KB an idle connection, p99 < 1 s.

    .venv/bin/python bench/receiver_crowd.py [--count 10000] [--letters 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ServerProcess,
    client_context,
    letter_request,
    make_receiver_profile,
    make_senders,
    ms,
    pin_senders,
    report,
    transact,
)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_idle(port: int, count: int, tls: bool, net: int) -> list[socket.socket]:
    ctx = client_context(None)
    held: list[socket.socket] = []
    for n in range(count):
        source = f"127.{net}.{n // 10 // 250}.{n // 10 % 250 + 1}"  # 10 an address
        try:
            raw = socket.create_connection(("127.0.0.1", port), 5, (source, 0))
            held.append(ctx.wrap_socket(raw, server_hostname="example.org") if tls else raw)
        except (OSError, ssl.SSLError):
            pass
    return held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--letters", type=int, default=30)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count * 2 + 1024), hard))
    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        root = Path(tmp)
        profile = make_receiver_profile(root)
        senders = make_senders(root, 1)
        pin_senders(profile, senders)
        os.environ["BENCH_DEADLINE"] = "600"  # keep the idle ones open while we measure
        server = ServerProcess("receiver", root / "server")
        ctx = client_context(senders[0])
        payload = letter_request()
        transact(ctx, server.port, payload)  # warm-up: imports, first commit
        before = rss_kb(server.proc.pid)
        fds_before = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
        began = time.monotonic()
        held = open_idle(server.port, args.count // 2, True, 6)
        held += open_idle(server.port, args.count - args.count // 2, False, 7)
        opened_in = time.monotonic() - began
        after = rss_kb(server.proc.pid)
        server_held = len(os.listdir(f"/proc/{server.proc.pid}/fd")) - fds_before
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        for _ in range(args.letters):
            start = time.monotonic()
            answer = transact(ctx, server.port, payload, timeout=10)
            latencies.append(time.monotonic() - start)
            status = answer[:2].decode("ascii", "replace") or "closed"
            statuses[status] = statuses.get(status, 0) + 1
        still_open = len(held)
        for sock in held:
            sock.close()
        server.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    per_kb = (after - before) / max(1, server_held)
    report(
        "receiver_crowd",
        figure=round(per_kb, 2),
        baseline=20.0,
        unit="KB per idle connection",
        target="<= 20 KB an idle connection; real sender p99 < 1 s, all 20",
        passed=server_held >= 0.95 * args.count
        and per_kb <= 20
        and p99 < 1.0
        and statuses.get("20") == args.letters,
        idle=server_held,
        idle_client_side=still_open,
        opened_in_s=round(opened_in, 1),
        rss_kb_at_0=before,
        rss_kb_at_count=after,
        sender_p50_ms=ms(latencies[len(latencies) // 2]),
        sender_p99_ms=ms(p99),
        statuses=statuses,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
