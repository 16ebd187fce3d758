"""The reference's §13 server vectors (1-21), sent over real TLS to a running receiver."""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path

import pytest
from helpers.certs import Creds, forged, identity_creds, odd_cert, write_creds
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from helpers.receivers import running

from misfin_tui.core.store import MailStore

TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """bob@example.org (self-signed) receiving; alice@example.net and a list as senders."""
    root = tmp_path_factory.mktemp("vectors")
    mp = pytest.MonkeyPatch()
    mp.setenv("MISFIN_TUI_NETWORK", "test-net")
    closed = ("127.0.0.1", 9)  # senders' servers unreachable: verification stays pending, offline
    hosts = {"example.net": closed, "lists.example.com": closed}
    profile = make_profile(root / "bob", "bob@example.org", hosts=hosts)
    alice = forged(root / "certs", "alice", "example.net", "alice")
    lister = _list_creds(root / "certs")
    with running(profile) as r:
        yield r, alice, lister, identity_creds(profile, "bob@example.org")
    mp.undo()


def _list_creds(folder: Path) -> Creds:
    from misfin_tui.core.identity import make_self_signed

    cert, key = make_self_signed("list", "lists.example.com", "Example list")
    return write_creds(folder, "list", cert, key)


def _latest(r) -> bytes:
    store = MailStore(r.profile.database())
    return store.get(store.latest_id()).raw


def _count(r) -> int:
    return MailStore(r.profile.database()).latest_id()


def test_1_b_letter_stamped_with_the_certificate_sender(server) -> None:
    r, alice, _, bob = server
    out = exchange(r.port, b"misfin://bob@example.org Hi Bob!\r\n", alice)
    assert out.response == b"20 " + bob.fingerprint.encode() + b"\r\n"
    assert re.fullmatch(rb"< alice@example.net Alice\n@ " + TIME + rb"\nHi Bob!", _latest(r))
    letter = MailStore(r.profile.database()).get(MailStore(r.profile.database()).latest_id())
    assert (letter.version, letter.sender, letter.sender_blurb, letter.mailbox) == (
        "B",
        "alice@example.net",
        "Alice",
        "bob@example.org",
    )
    assert letter.sender_cert == alice.der and letter.fingerprint == alice.fingerprint
    assert letter.unread and letter.folder == "Quarantine"  # until its sender checks out


def test_2_and_3_b_keeps_line_feeds_and_tabs(server) -> None:
    r, alice, _, _ = server
    assert (
        status_of(
            exchange(r.port, b"misfin://bob@example.org Hi\nHow are you?\r\n", alice).response
        )
        == 20
    )
    assert _latest(r).endswith(b"\nHi\nHow are you?")
    assert (
        status_of(exchange(r.port, b"misfin://bob@example.org col1\tcol2\r\n", alice).response)
        == 20
    )
    assert _latest(r).endswith(b"\ncol1\tcol2")


@pytest.mark.parametrize(
    "payload",
    [
        b"misfin://bob@example.org \r\n",
        b"misfin://bob@example.org\t0\r\n",
        b"misfin://bob@example.org  \t \r\n",
    ],
    ids=["4-B-blank", "9-C-blank", "B-whitespace-only"],
)
def test_4_and_9_blank_requests_need_no_certificate_and_store_nothing(
    server, payload: bytes
) -> None:
    r, _, _, bob = server
    before = _count(r)
    out = exchange(r.port, payload)  # no client certificate
    assert out.response == b"20 " + bob.fingerprint.encode() + b"\r\n"
    assert _count(r) == before


@pytest.mark.parametrize(
    "payload",
    [
        b"misfin://bob@example.org\r\n",  # 5
        b"misfin://bob@example.org " + b"x" * 2024 + b"\r\n",  # 6c
        b"misfin://bob@example.org\t16385\r\n",  # 10
        b"misfin://bob@example.org\t+5\r\n",  # 11
        b"misfin://bob@example.org\t5 \r\n",
        b"misfin://bob@example.org\t\r\n",
        b"misfin://bob@example.org\tfive\r\n",
        b"misfin://bob@example.org\t0x10\r\n",
        b"misfin://bob@example.org\t21\r\n\n\n\nline one\rline two\n",  # 12
        b"misfin://" + b"m" * 1002 + b"@example.org\t5\r\n",  # 14 (1027-byte header)
        b"misfin://bob@evil@example.org Hi\r\n",  # 21
        b"gemini://example.org/\r\n",
        b"misfin://bob@example.org \xff\xfe\r\n",
    ],
    ids=[
        "5",
        "6c",
        "10",
        "11+",
        "11sp",
        "11empty",
        "11five",
        "11hex",
        "12",
        "14",
        "21",
        "gemini",
        "utf8",
    ],
)
def test_malformed_requests_get_59(server, payload: bytes) -> None:
    r, alice, _, _ = server
    before = _count(r)
    out = exchange(r.port, payload, alice)
    assert status_of(out.response) == 59
    assert _count(r) == before


def test_6_b_size_limits(server) -> None:
    r, alice, _, _ = server
    for n in (2021, 2022):
        payload = b"misfin://bob@example.org " + b"x" * n + b"\r\n"
        assert status_of(exchange(r.port, payload, alice).response) == 20, n


def test_7_c_letter_stamped_with_sender_and_time(server) -> None:
    r, alice, _, bob = server
    body = b"\n\n\n# Lunch?\nAre you free on Friday?\n"
    out = exchange(r.port, b"misfin://bob@example.org\t36\r\n" + body, alice)
    assert out.response == b"20 " + bob.fingerprint.encode() + b"\r\n"
    raw = _latest(r)
    assert re.fullmatch(
        rb"alice@example.net Alice\n\n" + TIME + rb"\n# Lunch\?\nAre you free on Friday\?\n", raw
    )
    assert len(raw) == 79
    letter = MailStore(r.profile.database()).get(MailStore(r.profile.database()).latest_id())
    assert (
        letter.subject == "Lunch?"
        and letter.version == "C"
        and letter.trust in ("pending", "quarantined")
    )


def test_8_c_with_crlf_lines(server) -> None:
    r, alice, _, _ = server
    payload = (
        b"misfin://bob@example.org\t41\r\n" + b"\r\n\r\n\r\n# Lunch?\r\nAre you free on Friday?\r\n"
    )
    assert status_of(exchange(r.port, payload, alice).response) == 20


def test_10_oversized_length_is_refused_before_the_body(server) -> None:
    r, alice, _, _ = server
    out = exchange(r.port, b"misfin://bob@example.org\t16385\r\n", alice, timeout=5)
    assert status_of(out.response) == 59  # answered without waiting for 16385 bytes


def test_13_length_counts_bytes(server) -> None:
    r, alice, _, _ = server
    payload = b"misfin://bob@example.org\t17\r\n" + "\n\n\nÅsa says hej\n".encode()
    assert status_of(exchange(r.port, payload, alice).response) == 20
    assert _latest(r).endswith("Åsa says hej\n".encode())


def test_14_header_of_1026_bytes_is_accepted(server) -> None:
    r, alice, _, _ = server
    # "misfin://" 9 + mailbox + "@example.org" 12 + "\t5\r\n" 4 = 1026
    mailbox = b"m" * (1026 - 9 - 12 - 4)
    out = exchange(r.port, b"misfin://" + mailbox + b"@example.org\t5\r\n\n\n\nx\n", alice)
    assert status_of(out.response) == 51  # parsed fine; no such mailbox here


def test_15_list_hop_prepends_the_list(server) -> None:
    r, _, lister, _ = server
    body = b"alice@example.net Alice\n\n2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n"
    out = exchange(r.port, b"misfin://bob@example.org\t71\r\n" + body, lister)
    assert status_of(out.response) == 20
    raw = _latest(r)
    assert re.fullmatch(
        rb"list@lists.example.com Example list, alice@example.net Alice\n\n"
        + TIME
        + rb", 2024-03-01T09:59:58Z\n# Hello list\nFirst post.\n",
        raw,
    )
    letter = MailStore(r.profile.database()).get(MailStore(r.profile.database()).latest_id())
    assert letter.sender == "list@lists.example.com"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"misfin://bob@other.example Hi\r\n", 53),
        (b"misfin://carol@example.org Hi\r\n", 51),
        (b"misfin://old@example.org Hi\r\n", 51),  # no retired-mailbox list: unknown is 51
        (b"misfin://bob@other.example \r\n", 53),  # blank requests get the same checks
        (b"misfin://carol@example.org\t0\r\n", 51),
    ],
)
def test_16_other_host_and_unknown_mailbox(server, payload: bytes, status: int) -> None:
    r, alice, _, _ = server
    before = _count(r)
    assert status_of(exchange(r.port, payload, alice).response) == status
    assert _count(r) == before


def test_17_letter_without_certificate_gets_60(server) -> None:
    r, _, _, _ = server
    before = _count(r)
    assert status_of(exchange(r.port, b"misfin://bob@example.org Hi Bob!\r\n").response) == 60
    assert _count(r) == before


@pytest.mark.parametrize(
    "kind",
    [{"uid": False}, {"san": False}, {"expired": True}, {"future": True}],
    ids=["no-uid", "no-san", "expired", "not-yet-valid"],
)
def test_18_incomplete_or_expired_certificate_gets_62(server, tmp_path: Path, kind: dict) -> None:
    r, _, _, _ = server
    before = _count(r)
    creds = odd_cert(tmp_path, "odd", **kind)
    assert (
        status_of(exchange(r.port, b"misfin://bob@example.org Hi Bob!\r\n", creds).response) == 62
    )
    assert _count(r) == before


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.0.0.1"])
def test_a_certificate_naming_an_odd_ipv4_spelling_gets_62(
    server, tmp_path: Path, host: str
) -> None:
    """alice@127.1 is 127.0.0.1 to a socket: as a sender it would be known apart from it."""
    r, _, _, _ = server
    before = _count(r)
    creds = forged(tmp_path, "alice", host)
    out = exchange(r.port, b"misfin://bob@example.org Hi Bob!\r\n", creds)
    assert status_of(out.response) == 62
    assert b"four numbers" in out.response
    assert _count(r) == before


def test_a_certificate_without_a_cn_delivers_with_no_blurb(server, tmp_path: Path) -> None:
    """Only the UID and the DNS SAN make an identity: the CN is a blurb, and optional."""
    r, _, _, _ = server
    creds = odd_cert(tmp_path, "nocn", cn=False)
    out = exchange(r.port, b"misfin://bob@example.org Hi Bob!\r\n", creds)
    assert status_of(out.response) == 20
    assert _latest(r).split(b"\n", 1)[0] == b"< alice@example.net"  # no blurb, no space


@pytest.mark.parametrize(
    "address",
    [b"bob@example.org:1958", b"BOB@Example.ORG", b"bob@EXAMPLE.org:19580", b"bob@example.org."],
)
def test_20_port_stripped_and_case_ignored(server, address: bytes) -> None:
    r, alice, _, _ = server
    out = exchange(r.port, b"misfin://" + address + b" Hi\r\n", alice)
    assert status_of(out.response) == 20
    letter = MailStore(r.profile.database()).get(MailStore(r.profile.database()).latest_id())
    assert letter.mailbox == "bob@example.org"


def test_bytes_after_the_content_length_are_ignored(server) -> None:
    r, alice, _, _ = server
    out = exchange(r.port, b"misfin://bob@example.org\t9\r\n\n\n\nhello\nJUNK AFTER", alice)
    assert status_of(out.response) == 20
    assert _latest(r).endswith(b"\nhello\n")


def test_a_request_written_one_byte_at_a_time(server) -> None:
    r, alice, _, bob = server
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(alice.cert, alice.key)
    request = b"misfin://bob@example.org\t9\r\n\n\n\nslow!\n"
    with (
        socket.create_connection(("127.0.0.1", r.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="example.org") as tls,
    ):
        for byte in request:
            tls.sendall(bytes([byte]))
            time.sleep(0.005)
        assert tls.recv(200) == b"20 " + bob.fingerprint.encode() + b"\r\n"
    assert _latest(r).endswith(b"\nslow!\n")
