"""Benchmark: `misfin-tui send` as a script runs it, against a bare one-shot stdlib sender.

Both are fresh processes (ours the installed `misfin-tui` script) sending the same letter with
the same keys to the real Receiver (in a child process, the sender pinned there), one after the
other so drift in the machine's load hits both alike. The server is pinned and approved in the
sender's profile, on a trusted network: the case a script lives in. Target (issue 13):
misfin-tui send <= 2x the bare process. The bare sender disables Nagle's algorithm as our
client does (asyncio's default): without that, the TLS handshake's last write and the request
wait ~40 ms for a delayed ACK, a stall that would flatter the ratio.

    .venv/bin/python bench/send_process.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RECIPIENT,
    Sender,
    ServerProcess,
    compile_package,
    make_receiver_profile,
    ms,
    pin_senders,
)

TARGET = 2.0
BODY = "A letter for the send benchmark.\n"
NETWORK = "bench-network"

BARE = """
import socket, ssl, sys
cert, key, port, recipient, body = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
message = ("\\n\\n\\n# Hello\\n" + body).encode()
request = f"misfin://{recipient}\\t{len(message)}\\r\\n".encode() + message
with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio, and so our client
    with ctx.wrap_socket(raw, server_hostname=recipient.split("@")[1]) as tls:
        tls.sendall(request)
        answer = tls.recv(2048)
sys.exit(0 if answer.startswith(b"20") else 1)
"""


def front_door() -> list[str]:
    """The installed `misfin-tui` script, as a user's script runs it (`python -m` would add
    runpy's own ~20 ms); -m only where the package is not installed with its script."""
    script = Path(sys.executable).with_name("misfin-tui")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "misfin_tui"]


def run(rounds: int) -> dict[str, list[float]]:
    from misfin_tui.core.address import Address
    from misfin_tui.core.client import presented_cert
    from misfin_tui.core.engine import Engine
    from misfin_tui.core.profile import Profile
    from misfin_tui.core.trust.model import Answer, Choice, HostEvent

    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        root = Path(tmp)
        os.environ["MISFIN_TUI_NETWORK"] = NETWORK
        server_profile = make_receiver_profile(root)
        client = Profile.open(root / "client")
        identity = client.create_identity(Address.parse("alice@senders.test"), "Alice").identity
        sender = Sender(
            str(identity.address), identity.chain_path, identity.key_path, identity.fingerprint
        )
        pin_senders(server_profile, [sender])
        server = ServerProcess("receiver", root / "server")
        try:
            host = RECIPIENT.split("@")[1]
            client.config.set(f"hosts.{host}", ("127.0.0.1", server.port))
            client.save_config()
            engine = Engine(Profile.open(root / "client"))
            network = engine.networks.trust(None, "Bench")
            presented = presented_cert(server_profile.identity().cert_der())
            engine.policy.answer(  # as if the person had approved it on an earlier send
                HostEvent.FIRST_CONTACT, f"{host}:1958", presented, network, Answer(Choice.TRUST)
            )
            engine.close()
            env = {**os.environ, "MISFIN_TUI_PROFILE": str(root / "client")}
            ours = [*front_door(), "send", "--to", RECIPIENT, "--no-input", "--subject", "Hello"]
            bare = [sys.executable, "-c", BARE, str(identity.chain_path), str(identity.key_path),
                    str(server.port), RECIPIENT, BODY]  # fmt: skip
            real: list[float] = []
            base: list[float] = []
            for n in range(rounds + 2):  # the first 2 of each warm the page cache
                begun = time.perf_counter()
                done = subprocess.run(ours, input=BODY.encode(), env=env, capture_output=True)
                took = time.perf_counter() - begun
                assert done.returncode == 0, done.stdout + done.stderr
                if n >= 2:
                    real.append(took)
                begun = time.perf_counter()
                done = subprocess.run(bare, env=env, capture_output=True)
                took = time.perf_counter() - begun
                assert done.returncode == 0, done.stderr
                if n >= 2:
                    base.append(took)
        finally:
            server.stop()
    return {"real": real, "bare": base}


def main() -> int:
    from common import report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    compile_package()
    samples = run(args.rounds)
    real, bare = statistics.median(samples["real"]), statistics.median(samples["bare"])
    report(
        "send_process",
        figure=ms(real),
        baseline=ms(bare),
        unit="ms per `misfin-tui send` process (median)",
        target=f"<= {TARGET}x a bare one-shot stdlib sender process",
        passed=real / bare <= TARGET,
        rounds=args.rounds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
