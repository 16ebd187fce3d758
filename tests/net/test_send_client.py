"""client.py over real TLS on 127.0.0.1: probe, deliver, the key gate, B fallback, timeouts."""

from __future__ import annotations

import asyncio

import pytest
from helpers.fixture_receiver import FixtureReceiver

from misfin_tui.core.address import Address, parse_hostport
from misfin_tui.core.client import (
    DeliveryError,
    KeyMismatch,
    blank_request,
    deliver,
    probe,
    resolve,
)
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.letter import new_message_c
from misfin_tui.core.profile import Profile
from misfin_tui.core.status import ProtocolError

BOB = Address.parse("bob@example.org")


def message(body: str) -> bytes:
    return new_message_c(body, ["bob@example.org"])


def connect_to(server: FixtureReceiver) -> str:
    return server.hostport


async def test_probe_reads_the_key_and_sends_nothing(sender: Profile, receiver_factory) -> None:
    server = receiver_factory()
    identity = sender.identity()
    presented = await probe(BOB, identity, connect=connect_to(server))
    assert presented.spki == server.server_cert.spki
    assert presented.fingerprint == server.server_cert.fingerprint
    assert presented.der == server.server_cert.der
    assert presented.not_after.endswith("Z")
    await asyncio.sleep(0.2)
    assert server.bytes_received == 0
    arrival = server.arrivals[0]
    assert arrival.sni == "example.org"  # SNI is the hostname, even when connecting to an IP
    assert arrival.client_cert is not None
    assert fingerprint(arrival.client_cert) == identity.fingerprint
    assert identity.issuer_fingerprint is None
    assert all(fingerprint(der) == identity.fingerprint for der in arrival.client_chain)


async def test_deliver_c_request_exactly(sender: Profile, receiver_factory) -> None:
    server = receiver_factory()
    body = message("# Lunch?\nAre you free on Friday?\n")
    result = await deliver(
        BOB,
        sender.identity(),
        body,
        approved_spki=server.server_cert.spki,
        connect=connect_to(server),
    )
    assert result.response.status == 20
    assert result.response.meta == server.mailbox_fp
    assert result.version == "C" and not result.fell_back
    assert server.requests == [b"misfin://bob@example.org\t%d\r\n" % len(body) + body]


async def test_deliver_refuses_another_key_before_writing(
    sender: Profile, receiver_factory
) -> None:
    server = receiver_factory()
    with pytest.raises(KeyMismatch) as caught:
        await deliver(
            BOB,
            sender.identity(),
            message("secret\n"),
            approved_spki="00" * 32,
            connect=connect_to(server),
        )
    assert caught.value.presented.spki == server.server_cert.spki
    await asyncio.sleep(0.2)
    assert server.bytes_received == 0


async def test_b_fallback_keeps_line_feeds(sender: Profile, receiver_factory) -> None:
    server = receiver_factory(mode="B")
    result = await deliver(
        BOB,
        sender.identity(),
        message("Hi\nHow are you?\n"),
        approved_spki=server.server_cert.spki,
        connect=connect_to(server),
    )
    assert result.version == "B" and result.fell_back and result.b_only
    assert result.response.status == 20
    assert server.requests[1] == b"misfin://bob@example.org Hi\nHow are you?\n\r\n"
    assert server.requests[2] == b"misfin://bob@example.org\t0\r\n"  # does it speak C at all?


async def test_a_c_server_refusing_one_letter_is_not_called_b_only(
    sender: Profile, receiver_factory
) -> None:
    """A C server may refuse one letter with 40 (titlani: metadata over its limit): B takes
    it, and a blank C request answered 20 shows the server speaks C after all."""
    server = receiver_factory(answers=["40 metadata too long"])
    result = await deliver(
        BOB,
        sender.identity(),
        message("Hi\n"),
        approved_spki=server.server_cert.spki,
        connect=connect_to(server),
    )
    assert result.version == "B" and result.fell_back and not result.b_only
    assert result.response.status == 20
    assert server.requests[1] == b"misfin://bob@example.org Hi\n\r\n"
    assert server.requests[2] == b"misfin://bob@example.org\t0\r\n"


async def test_prefer_b_sends_b_directly(sender: Profile, receiver_factory) -> None:
    server = receiver_factory(mode="B")
    result = await deliver(
        BOB,
        sender.identity(),
        message("Hi\n"),
        approved_spki=server.server_cert.spki,
        prefer_b=True,
        connect=connect_to(server),
    )
    assert result.version == "B" and not result.fell_back
    assert server.requests == [b"misfin://bob@example.org Hi\n\r\n"]


async def test_no_fallback_when_b_does_not_fit(sender: Profile, receiver_factory) -> None:
    server = receiver_factory(mode="B")
    result = await deliver(
        BOB,
        sender.identity(),
        message("x" * 3000),
        approved_spki=server.server_cert.spki,
        connect=connect_to(server),
    )
    assert result.version == "C" and not result.fell_back and not result.speaks_c
    assert result.response.status == 40
    assert len(server.requests) == 1


async def test_too_big_for_c_is_refused_before_connecting(
    sender: Profile, receiver_factory
) -> None:
    server = receiver_factory()
    with pytest.raises(ProtocolError):
        await deliver(
            BOB,
            sender.identity(),
            message("x" * 16384),
            approved_spki=server.server_cert.spki,
            connect=connect_to(server),
        )
    assert server.arrivals == []


async def test_silent_server_times_out(sender: Profile, receiver_factory) -> None:
    server = receiver_factory(silent=True)
    with pytest.raises(DeliveryError, match="did not answer"):
        await deliver(
            BOB,
            sender.identity(),
            message("hello\n"),
            approved_spki=server.server_cert.spki,
            connect=connect_to(server),
            timeout=0.5,
        )
    assert len(server.requests) == 1


async def test_connection_refused_is_a_delivery_error(sender: Profile) -> None:
    with pytest.raises(DeliveryError, match="cannot connect"):
        await probe(BOB, sender.identity(), connect="127.0.0.1:1", timeout=2)


async def test_eof_before_crlf_is_outcome_unknown(sender: Profile, receiver_factory) -> None:
    server = receiver_factory(answers=[b"20 " + b"ab" * 16])  # closed before the CRLF
    with pytest.raises(DeliveryError, match="may or may not"):
        await deliver(
            BOB,
            sender.identity(),
            message("hello\n"),
            approved_spki=server.server_cert.spki,
            connect=connect_to(server),
            timeout=3,
        )
    assert len(server.requests) == 1


async def test_blank_request(sender: Profile, receiver_factory) -> None:
    server = receiver_factory()
    presented, response = await blank_request(BOB, sender.identity(), connect=connect_to(server))
    assert presented.spki == server.server_cert.spki
    assert response.status == 20
    assert server.requests == [b"misfin://bob@example.org\t0\r\n"]


def test_resolve_precedence() -> None:
    hosts = {"example.org": ("127.0.0.1", 19580)}
    assert resolve(BOB, {}, None) == ("example.org", 1958)
    assert resolve(Address.parse("bob@example.org:1960"), {}, None) == ("example.org", 1960)
    assert resolve(BOB, hosts, None) == ("127.0.0.1", 19580)
    assert resolve(BOB, hosts, "10.0.0.1:7") == ("10.0.0.1", 7)
    assert parse_hostport("[::1]:1958") == ("::1", 1958)
    with pytest.raises(ValueError):
        parse_hostport("example.org")


@pytest.mark.parametrize(("size", "falls_back"), [(2021, True), (2022, False)])
async def test_b_fallback_byte_limit(
    sender: Profile, receiver_factory, size: int, falls_back: bool
) -> None:
    """B carries at most 2048 bytes with CRLF: 25 for "misfin://bob@example.org " + body + 2."""
    server = receiver_factory(mode="B")
    result = await deliver(
        BOB,
        sender.identity(),
        message("x" * size),
        approved_spki=server.server_cert.spki,
        connect=connect_to(server),
    )
    assert result.fell_back is falls_back
    if falls_back:
        assert len(server.requests[1]) == 2048
    else:
        assert len(server.requests) == 1 and result.response.status == 40


async def test_ca_signed_identity_presents_its_chain(tmp_path, receiver_factory) -> None:
    profile = Profile.open(tmp_path / "carol")
    profile.create_identity(Address.parse("carol@ca.test"), "Carol", ca=True)
    identity = profile.identity()
    assert identity.chain_path != identity.cert_path
    server = receiver_factory()
    await probe(BOB, identity, connect=connect_to(server))
    await asyncio.sleep(0.1)
    [arrival] = server.arrivals
    assert fingerprint(arrival.client_cert) == identity.fingerprint
    chain = [fingerprint(der) for der in arrival.client_chain]
    assert identity.issuer_fingerprint in chain  # the host CA travels with the leaf


async def test_ip_literal_address_sends_no_sni(sender: Profile, receiver_factory) -> None:
    server = receiver_factory()
    await probe(Address.parse(f"bob@127.0.0.1:{server.port}"), sender.identity())
    await asyncio.sleep(0.1)
    assert server.arrivals[0].sni is None
