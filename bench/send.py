"""Benchmark 2: one core.client.deliver() vs a bare TLS request/response with the same keys.

The real Receiver runs in a child process (the sender is pinned there, so it does no
verification work). This process sends the same Misfin(C) letter to it, one at a time:
(a) `await deliver(...)` on one event loop, as the outbox does, and (b) a bare stdlib-ssl client
with a prepared context: connect, handshake, write, read the answer. The two alternate, so
drift in the machine's load hits both alike. Target: deliver() median <= 1.3x the bare median.

    .venv/bin/python bench/send.py [--rounds 200] [--key-type p256]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RECIPIENT,
    Sender,
    ServerProcess,
    client_context,
    make_receiver_profile,
    ms,
    pin_senders,
    report,
    transact,
)

TARGET = 1.3


async def run(rounds: int, key_type: str) -> dict:
    from misfin_tui.core.address import Address
    from misfin_tui.core.client import deliver
    from misfin_tui.core.identity import spki_sha256
    from misfin_tui.core.letter import new_message_c
    from misfin_tui.core.profile import Profile
    from misfin_tui.core.wire import build_c_request

    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        root = Path(tmp)
        server_profile = make_receiver_profile(root, key_type)
        client = Profile.open(root / "client")
        identity = client.create_identity(
            Address.parse("alice@senders.test"), "Alice", key_type
        ).identity
        pin_senders(
            server_profile,
            [
                Sender(
                    str(identity.address),
                    identity.chain_path,
                    identity.key_path,
                    identity.fingerprint,
                )
            ],
        )
        approved = spki_sha256(server_profile.identity().cert_path.read_bytes())
        address = Address.parse(RECIPIENT)
        message = new_message_c("# Hello\n\nA letter for the send benchmark.\n", [RECIPIENT])
        payload = build_c_request(address, message)
        server = ServerProcess("receiver", root / "server")
        try:
            target = f"127.0.0.1:{server.port}"
            ctx = client_context(
                Sender(str(identity.address), identity.chain_path, identity.key_path, "")
            )
            real: list[float] = []
            bare: list[float] = []
            for n in range(rounds + 10):  # the first 10 of each warm up
                begun = time.perf_counter()
                result = await deliver(
                    address, identity, message, approved_spki=approved, connect=target
                )
                took = time.perf_counter() - begun
                assert result.response.status == 20, result
                if n >= 10:
                    real.append(took)
                begun = time.perf_counter()
                answer = transact(ctx, server.port, payload)  # blocking: nothing else runs
                took = time.perf_counter() - begun
                assert answer.startswith(b"20 "), answer
                if n >= 10:
                    bare.append(took)
        finally:
            server.stop()
    return {"real": real, "bare": bare}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--key-type", default="p256", choices=("p256", "ed25519", "rsa2048"))
    args = parser.parse_args()
    samples = asyncio.run(run(args.rounds, args.key_type))
    real, bare = statistics.median(samples["real"]), statistics.median(samples["bare"])
    report(
        "send",
        figure=ms(real),
        baseline=ms(bare),
        unit="ms per letter (median)",
        target=f"<= {TARGET}x bare TLS",
        passed=real / bare <= TARGET,
        key_type=args.key_type,
        rounds=args.rounds,
        deliver_p90_ms=ms(statistics.quantiles(samples["real"], n=10)[-1]),
        bare_p90_ms=ms(statistics.quantiles(samples["bare"], n=10)[-1]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
