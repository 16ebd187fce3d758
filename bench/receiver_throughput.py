"""Benchmark 1: letters acknowledged per second by the receiver vs the mutual-TLS handshake floor.

32 concurrent senders (each its own identity, pinned and verified a moment ago, so verification
after receipt is a cache hit) send small Misfin(C) letters back to back for DURATION seconds to
(a) the real Receiver and (b) a bare pyOpenSSL server with the same certificate, key type, TLS
options and worker count that reads one line and answers one. Both servers run in a child
process; the load generator is this process. Target: receiver >= 0.7x the floor.

Also reported: p50/p99 latency of each, and server CPU per letter (what throughput would be on
a core of its own: on 2 shared cores the client's handshakes compete with the server's).

    .venv/bin/python bench/receiver_throughput.py [--duration 6] [--rounds 3] [--key-type p256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ServerProcess,
    letter_request,
    make_receiver_profile,
    make_senders,
    ms,
    pin_senders,
    report,
    run_load,
)

CONCURRENCY = 32
TARGET = 0.7


def measure(kind: str, profile_dir: Path, senders: list, payload: bytes, duration: float) -> dict:
    server = ServerProcess(kind, profile_dir)
    cpu_before = server.cpu()
    load = run_load(server.port, senders, payload, concurrency=CONCURRENCY, duration=duration)
    cpu_during = server.cpu() - cpu_before  # includes the warm-up second
    final = server.stop()
    total = load.ok + load.failed
    return {
        "rate": load.rate,
        "ok": load.ok,
        "failed": load.failed,
        "statuses": load.statuses,
        "p50_ms": ms(load.percentile(50)),
        "p99_ms": ms(load.percentile(99)),
        "server_cpu_ms_per_letter": round(cpu_during * 1000 / max(1, total), 3),
        "server_served": final.get("served"),
        "server_trust": final.get("trust"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="floor/receiver pairs; medians")
    parser.add_argument("--key-type", default="p256", choices=("p256", "ed25519", "rsa2048"))
    args = parser.parse_args()
    floors: list[dict] = []
    reals: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        root = Path(tmp)
        profile = make_receiver_profile(root, args.key_type)
        senders = make_senders(root, CONCURRENCY, args.key_type)
        pin_senders(profile, senders)
        payload = letter_request()
        for _ in range(args.rounds):  # alternating, so the machine's load drift hits both
            floors.append(measure("floor", root / "server", senders, payload, args.duration))
            reals.append(measure("receiver", root / "server", senders, payload, args.duration))
    real, floor = median_run(reals), median_run(floors)
    ratio = real["rate"] / floor["rate"] if floor["rate"] else 0.0
    report(
        "receiver_throughput",
        figure=real["rate"],
        baseline=floor["rate"],
        unit="letters/s",
        target=f">= {TARGET}x floor",
        passed=ratio >= TARGET and all(r["failed"] == 0 for r in reals),
        key_type=args.key_type,
        concurrency=CONCURRENCY,
        duration_s=args.duration,
        round_ratios=[round(r["rate"] / f["rate"], 3) for r, f in zip(reals, floors, strict=True)],
        receiver=real,
        floor=floor,
    )
    return 0


def median_run(runs: list[dict]) -> dict:
    """The run with the median rate (its latencies and CPU figures stay together)."""
    return sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]


if __name__ == "__main__":
    raise SystemExit(main())
