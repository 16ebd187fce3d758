"""A server for the benchmarks, run as a child process.

    serve.py receiver PROFILE_DIR      the real misfin_tui Receiver serving the profile
    serve.py floor PROFILE_DIR         the handshake floor: bare pyOpenSSL mutual TLS with the
                                       profile's certificate and the receiver's TLS options,
                                       reads one line, answers one line

Prints {"port": N} when listening; on "stop" from stdin, stops and prints its CPU seconds
(user + system, all threads) and how many connections it answered. With BENCH_PROFILE=FILE set,
bench/sampler.py samples every thread's stack while it runs and writes the counts to FILE.
To measure a proposed fix, put a patched copy of the package first on PYTHONPATH: the child
imports misfin_tui from there (run the benchmark as a script, not with `python -c`).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORKERS = 64  # the receiver's default max_connections: same concurrency either way


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Floor:
    """The least a mutual-TLS Misfin server can do: handshake, one line in, one line out."""

    def __init__(self, cert_path: Path, key_path: Path, answer: bytes) -> None:
        from OpenSSL import SSL

        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: True)
        ctx.use_certificate_chain_file(str(cert_path))
        ctx.use_privatekey_file(str(key_path))
        self.ctx = ctx
        self.answer = answer
        self.served = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.pool = ThreadPoolExecutor(max_workers=WORKERS)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def start(self) -> None:
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.pool.submit(self._serve, conn)

    def _serve(self, sock: socket.socket) -> None:
        from OpenSSL import SSL

        # Blocking fd (pyOpenSSL calls OpenSSL on it directly) with kernel-level timeouts.
        sock.setblocking(True)
        timeval = struct.pack("ll", 10, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        conn = SSL.Connection(self.ctx, sock)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            data = b""
            while b"\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            conn.sendall(self.answer)
            conn.shutdown()
            with self._lock:
                self.served += 1
        except (SSL.Error, OSError):
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        self.sock.close()
        self.pool.shutdown(wait=True)


def main() -> int:
    kind, profile_dir = sys.argv[1], Path(sys.argv[2])
    sampler = None
    if os.environ.get("BENCH_PROFILE"):
        from sampler import Sampler

        idle = ("_wait", "select", "wait", "_worker", "readline", "_accept", "accept", "_work")
        sampler = Sampler(idle=idle)
        sampler.start()
    try:
        return serve(kind, profile_dir)
    finally:
        if sampler is not None:
            sampler.dump(Path(os.environ["BENCH_PROFILE"]))


def serve(kind: str, profile_dir: Path) -> int:
    from misfin_tui.core.profile import Profile

    profile = Profile.open(profile_dir)
    if kind == "receiver":
        from misfin_tui.core.receiver import UNLIMITED, Receiver

        # The letter rate limits and quota are off: 32 senders send hundreds a second each.
        limits = UNLIMITED
        if os.environ.get("BENCH_DEADLINE"):  # receiver_crowd: idle connections stay open
            from dataclasses import replace

            seconds = float(os.environ["BENCH_DEADLINE"])
            limits = replace(limits, handshake_timeout=seconds, request_timeout=seconds)
        receiver = Receiver(profile, ("127.0.0.1", 0), limits=limits)
        _, port = receiver.start()
        print(json.dumps({"port": port}), flush=True)
        sys.stdin.readline()
        assert receiver.verifier is not None
        receiver.verifier.wait_idle(30)
        receiver.stop()
        rows = (
            profile.database()
            .connect()
            .execute("SELECT trust, COUNT(*) FROM letters GROUP BY trust")
        )
        trust = {row[0]: row[1] for row in rows}
        print(json.dumps({"cpu": cpu_seconds(), "served": sum(trust.values()), "trust": trust}))
        return 0
    if kind == "floor":
        identity = profile.identity()
        floor = Floor(
            identity.chain_path, identity.key_path, f"20 {identity.fingerprint}\r\n".encode()
        )
        floor.start()
        print(json.dumps({"port": floor.port}), flush=True)
        sys.stdin.readline()
        floor.stop()
        print(json.dumps({"cpu": cpu_seconds(), "served": floor.served}))
        return 0
    print(f"unknown server kind {kind!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
