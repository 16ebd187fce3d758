"""Benchmark 5: what a mutual-TLS handshake costs the server for each identity key type.

For P-256, Ed25519 and RSA-2048 (server and 32 senders all of that type), the handshake-floor
server (bench/serve.py floor: pyOpenSSL, the receiver's TLS options) runs in a child process and
32 concurrent senders hammer it for DURATION seconds. Reported per type: handshakes/s, server
CPU ms per handshake (the figure that sets a receiver's ceiling on its own core) and p50/p99.
The figure is the default key type's (identity.DEFAULT_KEY_TYPE) server CPU per handshake, the
baseline the cheapest type's; the check is that the default is not the costliest.

    .venv/bin/python bench/key_types.py [--duration 4] [--rounds 3]
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
    report,
    run_load,
)

KEY_TYPES = ("p256", "ed25519", "rsa2048")
CONCURRENCY = 32


def measure(root: Path, key_type: str, duration: float) -> dict:
    make_receiver_profile(root, key_type)
    senders = make_senders(root, CONCURRENCY, key_type)
    server = ServerProcess("floor", root / "server")
    before = server.cpu()
    load = run_load(
        server.port, senders, letter_request(), concurrency=CONCURRENCY, duration=duration
    )
    used = server.cpu() - before  # includes the warm-up second
    final = server.stop()
    served = final.get("served") or 1
    return {
        "handshakes_per_s": round(load.rate, 1),
        "server_cpu_ms": round(used * 1000 / served, 3),
        "p50_ms": ms(load.percentile(50)),
        "p99_ms": ms(load.percentile(99)),
        "failed": load.failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from misfin_tui.core.identity import DEFAULT_KEY_TYPE

    runs: dict[str, list[dict]] = {key_type: [] for key_type in KEY_TYPES}
    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        for n in range(args.rounds):  # the types alternate, so load drift hits each alike
            for key_type in KEY_TYPES:
                folder = Path(tmp) / f"{key_type}-{n}"
                runs[key_type].append(measure(folder, key_type, args.duration))
    # per type, the run with the median server CPU per handshake
    results = {k: sorted(v, key=lambda r: r["server_cpu_ms"])[len(v) // 2] for k, v in runs.items()}
    cheapest = min(KEY_TYPES, key=lambda k: results[k]["server_cpu_ms"])
    costliest = max(KEY_TYPES, key=lambda k: results[k]["server_cpu_ms"])
    report(
        "key_types",
        figure=results[DEFAULT_KEY_TYPE]["server_cpu_ms"],
        baseline=results[cheapest]["server_cpu_ms"],
        unit="server CPU ms per mutual-TLS handshake (default type vs cheapest)",
        target="the default key type is not the costliest",
        passed=costliest != DEFAULT_KEY_TYPE,
        default=DEFAULT_KEY_TYPE,
        cheapest=cheapest,
        concurrency=CONCURRENCY,
        rounds=args.rounds,
        types=results,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
