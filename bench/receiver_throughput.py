"""Benchmark 1: letters acknowledged per second by the receiver vs the mutual-TLS handshake floor
and titlani's receiver.

32 concurrent senders (each its own identity and loopback address, pinned and verified a moment
ago, so verification after receipt is a cache hit) send small Misfin(C) letters back to back for
DURATION seconds to (a) the real Receiver (letter limits off), (b) a bare pyOpenSSL server with
the same certificate, key type and TLS options that reads one line and answers one, and (c)
titlani 0.4.1's `titlani serve` (from .peers/titlani, same certificate; it does not fsync).
Every server runs in a child process; the load generator is this process. Targets (issue 10):
receiver >= 0.85x the floor and >= 1.5x titlani; server CPU a letter <= 1.3x the floor's.

Also reported: p50/p99 latency of each, and server CPU per letter (what throughput would be on
a core of its own: on 2 shared cores the client's handshakes compete with the server's).

    .venv/bin/python bench/receiver_throughput.py [--duration 6] [--rounds 3] [--key-type p256]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
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
TARGET = 0.85  # x the floor
TARGET_TITLANI = 1.5  # x titlani's receiver
TARGET_CPU = 1.3  # server CPU a letter, x the floor's
TITLANI = Path(__file__).resolve().parent.parent / ".peers" / "titlani" / "bin" / "titlani"


class TitlaniProcess:
    """`titlani serve` for example.org with bob's certificate, as the third server."""

    def __init__(self, profile_dir: Path) -> None:
        from misfin_tui.core.profile import Profile

        identity = Profile.open(profile_dir).identity()
        work = profile_dir.parent / "titlani"
        (work / "mail" / "bob").mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = work / "server.toml"
        config.write_text(
            f"[server]\nhost = '127.0.0.1'\nport = {self.port}\nhostname = 'example.org'\n"
            f"certfile = '{identity.chain_path}'\nkeyfile = '{identity.key_path}'\n"
            f"mailbox_dir = '{work / 'mail'}'\n"
            f"identity_certfile = '{identity.chain_path}'\n"
            f"identity_keyfile = '{identity.key_path}'\n"
        )
        env = {**os.environ, "HOME": str(work), "XDG_DATA_HOME": str(work / "data")}
        self.proc = subprocess.Popen(
            [str(TITLANI), "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.mail = work / "mail" / "bob"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError("titlani serve did not start") from None
                time.sleep(0.1)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return {"served": sum(1 for p in self.mail.rglob("*") if p.is_file())}


def measure(kind: str, profile_dir: Path, senders: list, payload: bytes, duration: float) -> dict:
    server = TitlaniProcess(profile_dir) if kind == "titlani" else ServerProcess(kind, profile_dir)
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
    parser.add_argument("--no-titlani", action="store_true", help="skip titlani's receiver")
    args = parser.parse_args()
    with_titlani = TITLANI.exists() and not args.no_titlani
    floors: list[dict] = []
    reals: list[dict] = []
    titlanis: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        root = Path(tmp)
        profile = make_receiver_profile(root, args.key_type)
        senders = make_senders(root, CONCURRENCY, args.key_type)
        pin_senders(profile, senders)
        payload = letter_request()
        for _ in range(args.rounds):  # alternating, so the machine's load drift hits both
            floors.append(measure("floor", root / "server", senders, payload, args.duration))
            reals.append(measure("receiver", root / "server", senders, payload, args.duration))
            if with_titlani:
                titlanis.append(
                    measure("titlani", root / "server", senders, payload, args.duration)
                )
    real, floor = median_run(reals), median_run(floors)
    titlani = median_run(titlanis) if titlanis else None
    ratio = real["rate"] / floor["rate"] if floor["rate"] else 0.0
    cpu_ratio = real["server_cpu_ms_per_letter"] / max(1e-9, floor["server_cpu_ms_per_letter"])
    titlani_ratio = real["rate"] / titlani["rate"] if titlani and titlani["rate"] else None
    passed = (
        ratio >= TARGET
        and cpu_ratio <= TARGET_CPU
        and (titlani_ratio is None or titlani_ratio >= TARGET_TITLANI)
        and all(r["failed"] == 0 for r in reals)
    )
    report(
        "receiver_throughput",
        figure=real["rate"],
        baseline=floor["rate"],
        unit="letters/s",
        target=f">= {TARGET}x floor, >= {TARGET_TITLANI}x titlani, CPU <= {TARGET_CPU}x floor",
        passed=passed,
        cpu_ratio=round(cpu_ratio, 3),
        titlani_ratio=None if titlani_ratio is None else round(titlani_ratio, 3),
        titlani=titlani,
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
