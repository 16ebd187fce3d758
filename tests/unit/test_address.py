"""Addresses: what we accept, how we normalise it, and that bad input is always an AddressError."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from misfin_tui.core.address import DEFAULT_PORT, Address, AddressError
from misfin_tui.core.status import ProtocolError, Status


def test_plain_address() -> None:
    address = Address.parse("bob@example.org")
    assert (address.mailbox, address.host, address.port) == ("bob", "example.org", None)
    assert str(address) == "bob@example.org"
    assert address.connect_port == DEFAULT_PORT == 1958


@pytest.mark.parametrize("prefix", ["", "misfin://", "misfin:", "MISFIN://"])
def test_prefixes_are_accepted(prefix: str) -> None:
    assert Address.parse(prefix + "bob@example.org") == Address("bob", "example.org")


@pytest.mark.parametrize("url", ["misfin://bob@example.org/", "misfin://bob@example.org:1958/"])
def test_a_url_may_end_in_the_empty_path(url: str) -> None:
    """Gemtext links often end in "/": still the address, not "invalid host"."""
    assert Address.parse(url).key == "bob@example.org"


def test_port_is_for_connecting_only() -> None:
    address = Address.parse("bob@example.org:1959")
    assert address.port == 1959 and address.connect_port == 1959
    assert str(address) == "bob@example.org"  # the wire form never carries the port
    assert address.display == "bob@example.org:1959"


def test_host_is_lower_case_mailbox_kept() -> None:
    address = Address.parse("Bob@Example.ORG")
    assert address.host == "example.org" and address.mailbox == "Bob"
    assert address.key == Address.parse("bob@example.org").key


def test_idna_host() -> None:
    assert Address.parse("anna@Bücher.de").host == "xn--bcher-kva.de"
    assert Address.parse("anna@xn--bcher-kva.de").host == "xn--bcher-kva.de"


def test_the_absolute_form_of_a_host_is_the_host() -> None:
    """ "example.org." is the same name: pins, routes and mailboxes must not see two hosts."""
    assert Address.parse("bob@Example.org.").host == "example.org"
    assert Address.parse("bob@example.org.:1958").key == Address.parse("bob@example.org").key


def test_ip_literal_host() -> None:
    assert Address.parse("bob@127.0.0.1:19580").host == "127.0.0.1"
    assert Address.parse("bob@0.0.0.0").host == "0.0.0.0"
    assert Address.parse("bob@255.255.255.255").host == "255.255.255.255"
    assert Address.parse("bob@127.0.0.1.").host == "127.0.0.1"  # the absolute form


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0x7f.0.0.1", "0X7F000001", "127.0.0.01", "127.0.1"]
    + ["1.2.3.256", "1.2.3.4.5", "0177.0.0.1"],
)
def test_odd_ipv4_spellings_are_refused(host: str) -> None:
    """Each connects to an IPv4 address (inet_aton reads them), so it would be pinned and
    trusted apart from that address written as a dotted quad."""
    with pytest.raises(AddressError) as caught:
        Address.parse(f"bob@{host}")
    assert "write an IPv4 address as four numbers, e.g. 127.0.0.1" in caught.value.message


def test_names_with_numbers_are_still_names() -> None:
    for host in ("1.example", "123.45.com", "0xdead.example", "0x7g", "0x", "cafe.0x1"):
        assert Address.parse(f"bob@{host}").host == host


def test_unicode_mailbox_is_allowed() -> None:
    assert Address.parse("åsa@example.org").mailbox == "åsa"
    assert Address.parse("日本@example.org").mailbox == "日本"


def test_a_look_alike_separator_is_named_in_the_error() -> None:
    with pytest.raises(AddressError) as caught:
        Address.parse("alice\uff20good.test@evil.test")
    assert caught.value.message == "the mailbox may not contain U+FF20, which reads as '@'"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bob",
        "@example.org",
        "bob@",
        "bob@evil@example.org",  # vector 21
        "b ob@example.org",
        "bob@exa mple.org",
        "bob\t@example.org",
        "bob\r@example.org",
        "bob@example.org\n",
        "bob,carol@example.org",
        "bob@example.org,",
        "bob\x00@example.org",
        "bob\x7f@example.org",
        "bob\u202egro.elpmaxe@example.org",  # shows as another address
        "\u2067bob@example.org",
        # Invisible or look-alike: each lets one address pass for another on screen.
        "alice\uff20good.test@evil.test",  # a fullwidth @ inside the mailbox
        "alice\ufe6bgood.test@evil.test",  # a small @
        "alice" + "\u3164" * 60 + "@evil.test",  # Hangul fillers push "@evil.test" off the row
        "bob\U000e0062@example.org",  # a tag character
        "b\u200dob@example.org",  # zero-width joiner
        "bob\ue000@example.org",  # private use
        "bob\U0010fffe@example.org",  # unassigned
        "bob@example.org:",
        "bob@example.org:0",
        "bob@example.org:65536",
        "bob@example.org:+5",
        "bob@example.org:1958:1958",
        "bob@a..b",
        "bob@-example.org",
        "bob@example-.org",
        "bob@example.org..",
        "bob@.",
        "bob@example.org/path",
        "bob@xn--zz.de",
        "bob@" + "a" * 64 + ".org",
        "misfin://",
        "bob@example.org/",  # not a URL: a slash is no part of a host
        "misfin://bob@example.org//",
        "bob@[::1]",
        "bob@[::1]:1958",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(AddressError) as caught:
        Address.parse(text)
    assert caught.value.status == Status.BAD_REQUEST
    assert isinstance(caught.value, ProtocolError)
    assert caught.value.message


def test_an_ipv6_literal_is_told_as_such_not_as_a_bad_port() -> None:
    with pytest.raises(AddressError, match="not an IP address in"):
        Address.parse("bob@[::1]:1958")


mailboxes = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp"),
        blacklist_characters=",@:\u115f\u1160\u3164\uffa0",
    ),
    min_size=1,
    max_size=20,
).filter(
    lambda s: not any(c.isspace() or set(unicodedata.normalize("NFKC", c)) & set(" ,@") for c in s)
)
labels = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda s: s[2:4] != "--"
)
hosts = (
    st.lists(labels, min_size=1, max_size=4)
    .filter(lambda parts: not all(p.isdigit() or p.startswith("0x") for p in parts))
    .map(".".join)
)
addresses = st.builds(Address, mailboxes, hosts, st.none() | st.integers(1, 65535))


@settings(max_examples=200)
@given(addresses)
def test_display_round_trip(address: Address) -> None:
    assert Address.parse(address.display) == address
    assert Address.parse("misfin://" + address.display) == address


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_arbitrary_text_is_an_address_or_an_address_error(text: str) -> None:
    try:
        address = Address.parse(text)
    except AddressError:
        return
    assert str(address).count("@") == 1
    assert address.host == address.host.lower() and address.host.isascii()


def test_one_host_port_parser_for_connect_hosts_and_listen() -> None:
    from misfin_tui.core.address import parse_hostport

    assert parse_hostport(" Example.ORG:1958 ") == ("example.org", 1958)
    assert parse_hostport("[::1]:19580") == ("::1", 19580)
    assert parse_hostport("127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
    for bad in ("example.org", "host:0", "host:65536", "ho st:1", "[::1]", ":1958", "a:b"):
        with pytest.raises(ValueError):
            parse_hostport(bad)
