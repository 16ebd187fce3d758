"""Mail from home over GMAP in the tests: our GmapServer running for a test, one raw GMAP
request with exact bytes, and a scripted home (stdlib ssl) that misbehaves on purpose."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.certs import Creds
from helpers.raw_tls import exchange
from misfin_tui.core.gmap.server import GmapServer, Limits
from misfin_tui.core.identity import cert_pem, key_pem, make_self_signed
from misfin_tui.core.profile import Profile

IO_TIMEOUT = 10.0


@contextmanager
def serving(profile: Profile, limits: Limits | None = None) -> Iterator[int]:
    """The product's GMAP server for `profile` on 127.0.0.1; yields its port."""
    server = GmapServer(profile, ("127.0.0.1", 0), limits=limits)
    _, port = server.start()
    try:
        yield port
    finally:
        server.stop()


def gmap_raw(port: int, creds: Creds | None, line: bytes) -> bytes:
    """One raw GMAP request (SNI localhost); the whole answer, status line and body."""
    return exchange(port, line, creds, sni="localhost", timeout=IO_TIMEOUT).response


def ask(port: int, creds: Creds | None, request: str) -> tuple[str, bytes]:
    """One GMAP request URL; the status line and the body."""
    head, _, body = gmap_raw(port, creds, request.encode() + b"\r\n").partition(b"\r\n")
    return head.decode(), body


# -- a scripted GMAP server for faults ----------------------------------------------------------

Script = Callable[[str], "bytes | None"]  # request line -> whole answer; None: hang up silently


class ScriptedHome:
    """A TLS server (stdlib ssl) that answers each request line with what `script` returns;
    `use_key` swaps its certificate to play a different server on the same port."""

    def __init__(self, folder: Path, script: Script) -> None:
        self.script = script
        self.folder = folder
        self.requests: list[str] = []
        self.stall = threading.Event()  # set: accept, then never answer
        self.use_key("first")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def use_key(self, name: str) -> None:
        """Present another certificate from now on (a different server on this address)."""
        cert, key = make_self_signed("gmap", "localhost", name)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{name}.pem").write_bytes(cert_pem(cert))
        (self.folder / f"{name}.key").write_bytes(key_pem(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.folder / f"{name}.pem", self.folder / f"{name}.key")
        self.context = context

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n" not in data:
                    chunk = tls.recv(2048)
                    if not chunk:
                        return
                    data += chunk
                line = data.split(b"\r\n", 1)[0].decode()
                self.requests.append(line)
                if self.stall.is_set():
                    self._stop.wait(15)
                    return
                answer = self.script(line)
                if answer is not None:
                    tls.sendall(answer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)


@contextmanager
def scripted_home(folder: Path, script: Script) -> Iterator[ScriptedHome]:
    home = ScriptedHome(folder, script)
    try:
        yield home
    finally:
        home.close()


def titlani_like(letters: dict[str, bytes], unread: bool = True) -> Script:
    """A minimal well-behaved home: every letter in Inbox (and Unread)."""

    def script(line: str) -> bytes | None:
        path = line.split("/", 3)[3] if line.count("/") >= 3 else ""
        path = "/" + path
        if path.startswith("/tag/Inbox") or (unread and path.startswith("/tag/Unread")):
            return b"20 text/plain\r\n" + ", ".join(letters).encode()
        if path.startswith("/tag/"):
            return b"20 text/plain\r\n"
        if path.startswith("/msgid/"):
            rid = path[len("/msgid/") :]
            if rid in letters:
                return b"20 text/plain\r\n" + letters[rid]
            return b"51 Message not found\r\n"
        return b"51 Unknown route\r\n"

    return script
