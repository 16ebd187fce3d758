"""Receiver behaviour beyond the vectors: certificates per host, limits, timeouts, shutdown."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from helpers.certs import forged, identity_creds
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from helpers.receivers import running, wait_until

from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Limits
from misfin_tui.core.store import MailStore


def _tls(port: int, sni: str = "example.org", timeout: float = 10.0) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)


def _multi_host(tmp_path: Path) -> Profile:
    """bob@example.org self-signed, and carol/dan@example.com signed by a host CA."""
    profile = make_profile(tmp_path / "multi", "bob@example.org")
    profile.create_identity(_addr("carol@example.com"), "Carol", ca=True)
    profile.create_identity(_addr("dan@example.com"), "Dan")
    return Profile.open(profile.config_dir)


def _addr(text: str):
    from misfin_tui.core.address import Address

    return Address.parse(text)


def test_tls_certificate_per_host_and_mailbox_fingerprint_in_the_answer(tmp_path: Path) -> None:
    profile = _multi_host(tmp_path)
    ca_pem = profile.host_ca("example.com")[0].read_bytes()
    ca_der = ssl.PEM_cert_to_DER_cert(ca_pem.decode())
    with running(profile) as r:
        bob = identity_creds(profile, "bob@example.org")
        carol = identity_creds(profile, "carol@example.com")
        dan = identity_creds(profile, "dan@example.com")
        out = exchange(r.port, b"misfin://bob@example.org \r\n", sni="example.org")
        assert out.server_der == bob.der  # a single self-signed mailbox presents its own
        assert out.response == f"20 {bob.fingerprint}\r\n".encode()
        for who in (carol, dan):
            mailbox = who.cert.parent.name.encode()
            out = exchange(r.port, b"misfin://" + mailbox + b"\t0\r\n", sni="example.com")
            assert out.server_der == ca_der  # the host CA, so verifiers can check signatures
            assert fingerprint(out.server_der) != who.fingerprint
            assert out.response == f"20 {who.fingerprint}\r\n".encode()  # the mailbox's own
        # No SNI at all (transponder sends none): still answered, by request line.
        out = exchange(r.port, b"misfin://dan@example.com \r\n", sni=None)
        assert out.response == f"20 {dan.fingerprint}\r\n".encode()


def test_a_host_without_a_ca_keeps_its_key_when_a_mailbox_is_added(tmp_path: Path) -> None:
    """Correspondents pinned the key bob@example.org's server presents; a new mailbox that
    sorts first ("admin", or an upper-case name) must not change it under them."""
    profile = make_profile(tmp_path / "solo", "bob@example.org")
    bob = identity_creds(profile, "bob@example.org")
    profile.create_identity(_addr("Admin@example.org"), "Admin")
    profile.create_identity(_addr("aaron@example.org"), "Aaron")
    with running(Profile.open(profile.config_dir)) as r:
        out = exchange(r.port, b"misfin://aaron@example.org \r\n", sni="example.org")
        assert out.server_der == bob.der  # the first (default) identity's, as before
        assert out.response.startswith(b"20 ")


def test_blank_requests_are_rate_limited_per_address(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile, Limits(blank_per_window=3, blank_window=60)) as r:
        answers = [exchange(r.port, b"misfin://bob@example.org \r\n").response for _ in range(4)]
        assert [status_of(a) for a in answers] == [20, 20, 20, 44]
        seconds = int(answers[-1].split()[1])
        assert 1 <= seconds <= 60


def test_partial_request_times_out_with_59_and_silence_gets_closed(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile, Limits(request_timeout=1.0)) as r:
        with _tls(r.port) as tls:
            tls.sendall(b"misfin://bob@exa")
            started = time.monotonic()
            assert tls.recv(100) == b"59 request timeout\r\n"
            assert time.monotonic() - started < 5
        with _tls(r.port) as tls:  # nothing sent: nothing said, just closed
            assert tls.recv(100) == b""


def test_answer_ends_with_close_notify(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile) as r, _tls(r.port) as tls:
        tls.sendall(b"misfin://bob@example.org \r\n")
        data = b""
        while chunk := tls.recv(100):  # suppress_ragged_eofs=False: a cut raises SSLEOFError
            data += chunk
        assert status_of(data) == 20


@pytest.mark.parametrize(
    "limits", [Limits(max_connections=2), Limits(max_per_peer=2)], ids=["total", "per-peer"]
)
def test_connection_cap(tmp_path: Path, limits: Limits) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile, limits) as r:
        first, second = _tls(r.port), _tls(r.port)
        try:
            try:
                third = _tls(r.port, timeout=5)
                refused = third.recv(10) == b""
                third.close()
            except (ssl.SSLError, OSError):
                refused = True
            assert refused
        finally:
            first.close()
            second.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # slots come back when the idle ones close
            try:
                if status_of(exchange(r.port, b"misfin://bob@example.org \r\n").response) == 20:
                    break
            except (ssl.SSLError, OSError, AssertionError):
                time.sleep(0.1)
        else:
            raise AssertionError("the receiver did not serve again after connections closed")


def test_when_full_the_longest_silent_connection_makes_room(tmp_path: Path) -> None:
    """Stalled peers holding every slot cannot lock a sender out: past idle_grace, the one
    silent longest is closed to serve the newcomer."""
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile, Limits(max_connections=2, idle_grace=0.3)) as r:
        idle = [_tls(r.port), _tls(r.port)]
        try:
            time.sleep(0.6)
            answer = exchange(r.port, b"misfin://bob@example.org \r\n").response
            assert status_of(answer) == 20
            closed = 0
            for sock in idle:
                sock.settimeout(2)
                try:
                    closed += sock.recv(10) == b""
                except (ssl.SSLError, OSError):
                    closed += 1
            assert closed >= 1
        finally:
            for sock in idle:
                sock.close()


def test_stop_is_quick_with_connections_open(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile) as r:
        idle = _tls(r.port)
        idle.sendall(b"misfin://bob")
        started = time.monotonic()
        r.receiver.stop()
        assert time.monotonic() - started < 3
        idle.close()
        try:
            socket.create_connection(("127.0.0.1", r.port), timeout=2).close()
            listening = True
        except OSError:
            listening = False
        assert not listening


def test_sender_line_written_by_the_client_is_not_trusted(tmp_path: Path) -> None:
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"example.net": ("127.0.0.1", 9)}
    )
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    body = b"mallory@evil.example Mallory\n\n2020-01-01T00:00:00Z\nhi\n"
    with running(profile) as r:
        request = b"misfin://bob@example.org\t%d\r\n%s" % (len(body), body)
        assert status_of(exchange(r.port, request, alice).response) == 20
        store = MailStore(profile.database())
        letter = store.get(store.latest_id())
        assert letter.sender == "alice@example.net"
        assert letter.raw.startswith(b"alice@example.net Alice, mallory@evil.example Mallory\n")


def test_letters_received_are_indexed_for_search_in_batches_soon_after(tmp_path: Path) -> None:
    """Indexing lags the commit (migration 8): the receiver's writer drains the backlog
    between commits, so the index holds every letter within about a second, unsearched."""
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"example.net": ("127.0.0.1", 9)}
    )
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    with running(profile) as r:
        for n in range(5):
            body = f"# walrus {n}\nnumber {n}\n".encode()
            request = b"misfin://bob@example.org\t%d\r\n%s" % (len(body), body)
            assert status_of(exchange(r.port, request, alice).response) == 20
        conn = profile.database().connect()

        def indexed() -> int:
            query = "SELECT COUNT(*) FROM letters_fts WHERE letters_fts MATCH 'walrus'"
            return int(conn.execute(query).fetchone()[0])

        assert wait_until(lambda: indexed() == 5, timeout=10)
        assert conn.execute("SELECT COUNT(*) FROM fts_backlog").fetchone()[0] == 0
