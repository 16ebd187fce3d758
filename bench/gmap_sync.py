"""Benchmark: mail from home. Sync N letters from a local GMAP server (ours, `receive
--gmap-listen`, on 127.0.0.1) against a bare loop that fetches the same ids over TLS with the
same client certificate (stdlib ssl, one connection per id, as GMAP requires) and stores
nothing. Then a re-sync with nothing new: it must cost one request per tag.
Target: sync <= 1.5x the bare loop.

    .venv/bin/python bench/gmap_sync.py [--letters 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from misfin_tui.core.address import Address  # noqa: E402
from misfin_tui.core.clock import utc_now  # noqa: E402
from misfin_tui.core.engine import Engine  # noqa: E402
from misfin_tui.core.gmap.protocol import SYNC_TAGS  # noqa: E402
from misfin_tui.core.gmap.server import GmapServer, gmap_id  # noqa: E402
from misfin_tui.core.gmap.sync import GmapSync, SyncStatus  # noqa: E402
from misfin_tui.core.network import Networks  # noqa: E402
from misfin_tui.core.profile import Profile  # noqa: E402
from misfin_tui.core.store import MailStore  # noqa: E402

TARGET = 1.5


def fill(home: Profile, count: int) -> list[str]:
    store = MailStore(home.database())
    ids = []
    when = utc_now()
    with home.database().transaction():
        for i in range(count):
            raw = (
                f"bob@example.org Bob\nalice@localhost\n{when}\n# Letter {i}\n"
                + "A line of text in the body of the letter.\n" * 8
            ).encode()
            letter = store.add(
                folder="Inbox",
                raw=raw,
                sender="bob@example.org",
                subject=f"Letter {i}",
                received_at=when,
                mailbox="alice@localhost",
                unread=True,
                identity="alice@localhost",
            )
            ids.append(gmap_id(letter, when))
    return ids


def bare_loop(port: int, cert: Path, key: Path, ids: list[str]) -> float:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(cert, key)
    started = time.perf_counter()
    for rid in ids:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(f"gemini://localhost:{port}/msgid/{rid}\r\n".encode())
            data = b""
            while True:
                try:
                    chunk = tls.recv(65536)
                except ssl.SSLError:
                    break
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"20 "), data[:60]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--letters", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["MISFIN_TUI_NETWORK"] = "bench-net"
    with tempfile.TemporaryDirectory() as tmp:
        home = Profile.open(Path(tmp) / "home")
        home.create_identity(Address.parse("alice@localhost"), "Alice")
        ids = fill(home, args.letters)
        laptop = Profile.open(Path(tmp) / "laptop")
        ident = home.identity("alice@localhost")
        laptop.import_identity(ident.chain_path, ident.key_path)
        Networks(laptop.database()).trust("bench-net")
        server = GmapServer(home, ("127.0.0.1", 0))
        _, port = server.start()
        try:
            laptop.config.set("gmap.alice@localhost", ("localhost", port))
            laptop.save_config()
            bare = bare_loop(port, ident.chain_path, ident.key_path, ids)
            sync = GmapSync(Engine(laptop), timeout=15)
            started = time.perf_counter()
            report = sync.sync(connect=f"127.0.0.1:{port}", trust_new=True)
            ours = time.perf_counter() - started
            assert report.status is SyncStatus.DONE and report.fetched == len(ids), report
            started = time.perf_counter()
            again = sync.sync(connect=f"127.0.0.1:{port}")
            resync = time.perf_counter() - started
        finally:
            server.stop()
    result = {
        "bench": "gmap_sync",
        "letters": len(ids),
        "bare_loop_s": round(bare, 2),
        "sync_s": round(ours, 2),
        "ratio": round(ours / bare, 2),
        "target": TARGET,
        "resync_s": round(resync, 3),
        "resync_requests": again.requests,
        "tags": len(SYNC_TAGS),
        "ok": ours / bare <= TARGET and again.requests == len(SYNC_TAGS),
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
