"""Network hints from fixture files and captured command output, never this machine's network.

Each directory under tests/fixtures/network/ is one place: /proc and /sys files as the kernel
writes them, resolv.conf, and the output of the commands detection runs (commands.json maps a
command line to its captured output; a command not listed prints nothing, like a missing one).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from misfin_tui.core.database import Database
from misfin_tui.core.netdetect import (
    Budget,
    Sources,
    detect,
    no_commands,
    parse_ip_route_get,
    parse_nmcli_connectivity,
    parse_proc_ipv6_route,
    parse_proc_route,
    run_command,
    split_terse,
)
from misfin_tui.core.nethints import (
    UNKNOWN_ID,
    Hint,
    HintKind,
    NetworkHints,
    Strength,
    digest,
    normalise_mac,
    printable,
)
from misfin_tui.core.network import ENV_VAR, Networks, detect_hints, sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "network"
SALT = b"0123456789abcdef"
HOME_MAC = "3c:22:fb:a0:17:91"


class FixtureRunner:
    """Answers with the captured output of one place and records what it was asked."""

    def __init__(self, place: Path) -> None:
        index = json.loads((place / "commands.json").read_text())
        self.answers = {cmd: (place / "commands" / name).read_text() for cmd, name in index.items()}
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(" ".join(argv))
        answer: str = self.answers.get(" ".join(argv), "")
        return answer


def place(name: str, root: Path = FIXTURES) -> Sources:
    base = root / name
    return Sources(
        proc=base / "proc",
        sys=base / "sys",
        resolv_conf=base / "resolv.conf",
        run=FixtureRunner(base),
        system="darwin" if name.startswith("macos") else "linux",
    )


def hints_of(name: str, root: Path = FIXTURES) -> NetworkHints:
    return NetworkHints.of(detect(place(name, root)))


def copy_place(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


# -- places ---------------------------------------------------------------------------------------


def test_linux_home_wifi_every_hint() -> None:
    hints = hints_of("linux-home-wifi")
    assert hints.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]
    assert hints.values(HintKind.ROUTER_MAC_V6) == [HOME_MAC]  # the router in the neighbour table
    assert hints.values(HintKind.GATEWAY_V4) == ["192.168.1.1"]
    assert hints.values(HintKind.GATEWAY_V6) == ["fe80::1"]
    assert hints.values(HintKind.WIFI_SSID) == ["HomeWiFi"]  # the active row, not a neighbour's
    assert hints.values(HintKind.WIFI_BSSID) == ["3c:22:fb:a0:17:92"]  # nmcli's \: unescaped
    assert hints.values(HintKind.INTERFACE) == ["wlan0"]
    assert not hints.is_vpn and not hints.portal
    assert hints.strength is Strength.STRONG
    assert hints.describe() == "Wi-Fi 'HomeWiFi', router 3c:…:91 (192.168.1.1, fe80::1) on wlan0"
    # strongest first
    kinds = [h.kind for h in hints.hints]
    assert kinds.index(HintKind.ROUTER_MAC_V4) < kinds.index(HintKind.WIFI_SSID)
    assert kinds.index(HintKind.WIFI_SSID) < kinds.index(HintKind.INTERFACE)


def test_wireguard_policy_route_is_its_own_network() -> None:
    """wg-quick leaves the main table (and the router) in place; the route lookup sees wg0."""
    home = hints_of("linux-home-wifi")
    vpn = hints_of("linux-home-wireguard")
    assert vpn.values(HintKind.VPN) == ["wg0"]
    assert vpn.values(HintKind.VPN_ROUTE) == ["10.8.0.0/24"]
    assert vpn.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]  # shown, but not the identity
    assert vpn.network_id(SALT) != home.network_id(SALT)
    assert vpn.strength is Strength.STRONG
    assert vpn.describe() == (
        "Wi-Fi 'HomeWiFi', router 3c:…:91 (192.168.1.1, fe80::1) on wlan0, through VPN wg0"
    )


def test_openvpn_split_default_is_a_vpn_wherever_it_is_used(tmp_path: Path) -> None:
    cafe = hints_of("linux-cafe")
    vpn = hints_of("linux-cafe-openvpn")
    assert vpn.values(HintKind.VPN) == ["tun0"]
    assert vpn.values(HintKind.VPN_GATEWAY) == ["10.8.0.1"]
    assert vpn.values(HintKind.VPN_ROUTE) == ["10.8.0.0/24"]
    # the router under it is the cafe's default, not the host route to the VPN server
    assert vpn.values(HintKind.GATEWAY_V4) == ["192.168.0.1"]
    assert vpn.values(HintKind.ROUTER_MAC_V4) == ["a4:91:b1:02:3c:4d"]
    assert vpn.values(HintKind.WIFI_SSID) == ["CafeNet"]
    assert vpn.network_id(SALT) != cafe.network_id(SALT)
    assert "through VPN tun0" in vpn.describe() and "CafeNet" in vpn.describe()
    # The same VPN from another Wi-Fi and router: the same network.
    other = copy_place("linux-cafe-openvpn", tmp_path)
    route = other / "proc" / "net" / "route"
    route.write_text(route.read_text().replace("0100A8C0", "0102A8C0"))
    (other / "proc" / "net" / "arp").write_text(
        "IP address HW type Flags HW address Mask Device\n"
        "192.168.2.1 0x1 0x2 00:11:22:33:44:55 * wlan0\n"
    )
    elsewhere = hints_of("linux-cafe-openvpn", tmp_path)
    assert elsewhere.values(HintKind.ROUTER_MAC_V4) == ["00:11:22:33:44:55"]
    assert elsewhere.network_id(SALT) == vpn.network_id(SALT)


def test_the_same_vpn_without_the_vpn_is_the_cafe() -> None:
    runner = FixtureRunner(FIXTURES / "linux-cafe")
    src = place("linux-cafe")
    src = Sources(src.proc, src.sys, src.resolv_conf, runner, src.system)
    hints = NetworkHints.of(detect(src))
    assert not hints.is_vpn and hints.strength is Strength.STRONG
    assert "ip -4 route get 1.1.1.1" in runner.calls


def test_evil_twin_with_the_home_ssid_and_router_address_is_a_new_network() -> None:
    home = hints_of("linux-home-wifi")
    twin = hints_of("linux-evil-twin-portal")
    assert twin.values(HintKind.WIFI_SSID) == ["HomeWiFi"]
    assert twin.values(HintKind.GATEWAY_V4) == ["192.168.1.1"]
    assert twin.values(HintKind.ROUTER_MAC_V4) == ["de:ad:be:ef:00:01"]
    assert twin.network_id(SALT) != home.network_id(SALT)
    assert twin.portal  # NetworkManager's own check said "portal"
    assert "captive portal?" in twin.describe()


def test_ipv6_only_network_is_identified_by_its_router() -> None:
    hints = hints_of("linux-ipv6-only")
    assert hints.values(HintKind.ROUTER_MAC_V6) == ["00:0d:b9:4a:5b:6c"]
    assert hints.values(HintKind.GATEWAY_V4) == []
    assert hints.strength is Strength.STRONG
    assert hints.network_id(SALT) not in (UNKNOWN_ID, hints_of("linux-home-wifi").network_id(SALT))
    assert hints.describe() == "router 00:…:6c (fe80::abc) on eth0"


def test_iw_without_networkmanager_and_an_ssid_with_a_terminal_escape() -> None:
    hints = hints_of("linux-iw")
    assert hints.values(HintKind.WIFI_SSID) == ["Home\\x1b[31mWiFi"]
    assert hints.values(HintKind.WIFI_BSSID) == ["3c:22:fb:a0:17:92"]
    assert "\x1b" not in hints.describe() and "\x1b" not in "".join(hints.details())
    # iw's SSID differs from nmcli's HomeWiFi: another SSID is another network
    assert hints.network_id(SALT) != hints_of("linux-home-wifi").network_id(SALT)


def test_macos_home_wifi_matches_the_same_place_seen_from_linux() -> None:
    mac = hints_of("macos-home-wifi")
    assert mac.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]
    assert mac.values(HintKind.ROUTER_MAC_V6) == [HOME_MAC]
    assert mac.values(HintKind.GATEWAY_V6) == ["fe80::1"]
    assert mac.values(HintKind.WIFI_SSID) == ["HomeWiFi"]
    assert mac.values(HintKind.WIFI_BSSID) == ["3c:22:fb:a0:17:92"]
    assert mac.values(HintKind.INTERFACE) == ["en0"]
    assert mac.network_id(SALT) == hints_of("linux-home-wifi").network_id(SALT)


def test_macos_14_redacted_ssid_still_has_the_router() -> None:
    hints = hints_of("macos-14-redacted")
    assert hints.values(HintKind.WIFI_SSID) == [] and hints.values(HintKind.WIFI_BSSID) == []
    assert hints.strength is Strength.STRONG
    assert hints.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]


def test_macos_vpn_default_route_through_utun() -> None:
    hints = hints_of("macos-vpn")
    assert hints.values(HintKind.VPN) == ["utun4"]
    assert hints.values(HintKind.VPN_ROUTE) == ["10.20/16"]
    assert hints.values(HintKind.GATEWAY_V4) == ["192.168.1.1"]  # from netstat, under the VPN
    assert hints.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]
    assert hints.network_id(SALT) != hints_of("macos-home-wifi").network_id(SALT)
    assert hints.describe().endswith("through VPN utun4")


# -- identity rules -------------------------------------------------------------------------------


def test_wired_ipv4_id_is_the_first_versions_id() -> None:
    """A network marked trusted before hints existed keeps its id (and its mark)."""
    hints = NetworkHints.of(
        [Hint(HintKind.ROUTER_MAC_V4, HOME_MAC), Hint(HintKind.INTERFACE, "eth0")]
    )
    assert hints.network_id(SALT) == digest(SALT, ["v4:" + HOME_MAC])


def test_mesh_roaming_keeps_the_id_but_a_new_ssid_does_not() -> None:
    base = [Hint(HintKind.ROUTER_MAC_V4, HOME_MAC), Hint(HintKind.WIFI_SSID, "HomeWiFi")]
    one = NetworkHints.of([*base, Hint(HintKind.WIFI_BSSID, "3c:22:fb:a0:17:92")])
    two = NetworkHints.of([*base, Hint(HintKind.WIFI_BSSID, "3c:22:fb:a0:17:99")])
    renamed = NetworkHints.of(
        [Hint(HintKind.ROUTER_MAC_V4, HOME_MAC), Hint(HintKind.WIFI_SSID, "HomeWiFi-5G")]
    )
    assert one.network_id(SALT) == two.network_id(SALT)
    assert renamed.network_id(SALT) != one.network_id(SALT)


def test_without_a_router_mac_the_bssid_counts_and_the_id_is_weak() -> None:
    def cold(bssid: str) -> NetworkHints:
        return NetworkHints.of(
            [
                Hint(HintKind.GATEWAY_V4, "192.168.1.1"),
                Hint(HintKind.WIFI_SSID, "HomeWiFi"),
                Hint(HintKind.WIFI_BSSID, bssid),
            ]
        )

    assert cold("3c:22:fb:a0:17:92").strength is Strength.WEAK
    assert cold("3c:22:fb:a0:17:92").network_id(SALT) != cold("de:ad:be:ef:00:02").network_id(SALT)
    assert "weak id" in cold("3c:22:fb:a0:17:92").describe()


def test_a_vpn_with_nothing_but_its_name_is_weak() -> None:
    hints = NetworkHints.of([Hint(HintKind.VPN, "utun3")])
    assert hints.strength is Strength.WEAK and "weak id" in hints.describe()


def test_nothing_found_is_unknown() -> None:
    assert NetworkHints().network_id(SALT) == UNKNOWN_ID
    assert NetworkHints().describe() == "no default route found"
    only_dns = NetworkHints.of([Hint(HintKind.RESOLVER, "1.1.1.1")])
    assert only_dns.strength is Strength.UNKNOWN


def test_hints_round_trip_through_json_and_bad_json_is_no_hints() -> None:
    hints = hints_of("linux-home-wireguard")
    assert NetworkHints.from_json(hints.to_json()) == hints
    assert NetworkHints.from_json("not json") == NetworkHints()
    assert NetworkHints.from_json('[["no-such-kind", "x"]]') == NetworkHints()
    assert NetworkHints.from_json("") == NetworkHints()


def test_printable_escapes_controls_and_caps_length() -> None:
    assert printable("Cafe\x1b]0;owned\x07\u202e") == "Cafe\\x1b]0;owned\\x07\\u202e"
    assert printable("x" * 500).endswith("…") and len(printable("x" * 500)) == 96
    assert Hint(HintKind.WIFI_SSID, "a\nb").value == "a\\x0ab"


# -- parsers --------------------------------------------------------------------------------------


def test_parsers_on_odd_input() -> None:
    assert split_terse("yes:My\\:Net:AA\\:BB:wl\\\\0") == ["yes", "My:Net", "AA:BB", "wl\\0"]
    assert normalise_mac("3C-22-FB-A0-17-91") == HOME_MAC
    assert normalise_mac("ff:ff:ff:ff:ff:ff") == "" and normalise_mac("nonsense") == ""
    assert parse_ip_route_get("") is None
    assert parse_ip_route_get("RTNETLINK answers: Network is unreachable") is None
    route = parse_ip_route_get("1.1.1.1 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0\n    cache\n")
    assert route is not None and (route.gateway, route.iface) == ("10.0.0.1", "eth0")
    assert parse_nmcli_connectivity("connected:limited\n") == "limited"
    assert parse_nmcli_connectivity("") == ""
    garbage = "Iface Destination\nwlan0 zz yy 0003 0 0 x 00000000\n\x00\x01\n"
    assert parse_proc_route(garbage) == []
    assert parse_proc_ipv6_route(garbage) == []


def test_ipv6_route_table_skips_reject_and_loopback_routes() -> None:
    table = (FIXTURES / "linux-home-wifi" / "proc" / "net" / "ipv6_route").read_text()
    defaults = [r for r in parse_proc_ipv6_route(table) if r.is_default]
    assert [(r.gateway, r.iface, r.metric) for r in defaults] == [("fe80::1", "wlan0", 600)]


def test_garbage_everywhere_never_raises(tmp_path: Path) -> None:
    for name in ("proc/net/route", "proc/net/arp", "proc/net/ipv6_route", "resolv.conf"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xfe garbage \x00\n" * 3)

    def explodes(argv: Sequence[str]) -> str:
        raise RuntimeError("boom")

    for system in ("linux", "darwin", "win32"):
        src = Sources(
            tmp_path / "proc", tmp_path / "sys", tmp_path / "resolv.conf", explodes, system
        )
        hints = NetworkHints.of(detect(src))
        assert hints.network_id(SALT) == UNKNOWN_ID


# -- commands: no root, bounded time --------------------------------------------------------------


def test_fixture_files_without_a_runner_run_no_commands(tmp_path: Path) -> None:
    src = sources(proc=FIXTURES / "linux-home-wifi" / "proc", system="linux")
    assert src.run is no_commands
    assert src.sys == FIXTURES / "linux-home-wifi" / "proc" / "sys"
    hints = NetworkHints.of(detect(src))
    assert hints.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]  # /proc alone is enough for IPv4
    assert hints.values(HintKind.WIFI_SSID) == []


def test_budget_stops_running_commands_once_spent() -> None:
    calls: list[str] = []

    def slow(argv: Sequence[str]) -> str:
        calls.append(argv[0])
        time.sleep(0.15)
        return "out"

    run = Budget(slow, seconds=0.25)
    assert [run([str(i)]) for i in range(5)] == ["out", "out", "", "", ""]
    assert calls == ["0", "1"]


def test_run_command_times_out_and_never_raises() -> None:
    started = time.monotonic()
    assert run_command(["sleep", "10"]) == ""
    assert time.monotonic() - started < 4
    assert run_command(["false"]) == ""
    assert run_command(["misfin-tui-no-such-program"]) == ""
    assert run_command(["printf", "a\\377b"]) == "a\ufffdb"  # undecodable output is replaced


# -- the registry ---------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "mail.db")


def test_trust_marks_the_network_the_hints_describe(db: Database) -> None:
    home = Networks(db, src=place("linux-home-wifi"), environ={})
    network = home.trust(label="Home")
    assert network.trusted and network.strength == "strong"
    assert network.hints == "Wi-Fi 'HomeWiFi', router 3c:…:91 (192.168.1.1, fe80::1) on wlan0"
    assert network.ssid == "HomeWiFi"
    assert network.signals.values(HintKind.ROUTER_MAC_V4) == [HOME_MAC]
    listed = home.list()
    assert [n.id for n in listed] == [network.id] and listed[0].signals == network.signals
    # The VPN at home is another network, untrusted until marked.
    vpn = Networks(db, src=place("linux-home-wireguard"), environ={}).current()
    assert vpn.id != network.id and not vpn.trusted
    assert "through VPN wg0" in vpn.hints
    assert home.current().trusted


def test_evil_twin_is_untrusted_and_named_as_a_lookalike(db: Database) -> None:
    home = Networks(db, src=place("linux-home-wifi"), environ={}).trust(label="Home")
    twin_networks = Networks(db, src=place("linux-evil-twin-portal"), environ={})
    twin = twin_networks.current()
    assert twin.id != home.id and not twin.trusted and twin.portal
    assert [n.label for n in twin_networks.lookalikes(twin)] == ["Home"]
    # home is not a lookalike of itself, and the untrusted twin is nobody's lookalike
    assert Networks(db, src=place("linux-home-wifi"), environ={}).lookalikes(home) == []
    # Even marked trusted, a network NetworkManager calls a captive portal is not trusted now.
    assert twin_networks.trust(label="Twin").id == twin.id
    assert not twin_networks.current().trusted


def test_unknown_network_is_not_recorded_and_says_why(db: Database, tmp_path: Path) -> None:
    empty = Sources(tmp_path / "p", tmp_path / "s", tmp_path / "r", no_commands, "linux")
    network = Networks(db, src=empty, environ={}).current()
    assert network.id == UNKNOWN_ID and not network.trusted
    assert network.hints == "no default route found"
    assert Networks(db, src=empty, environ={}).list() == []


def test_env_override_still_wins(db: Database) -> None:
    hints = detect_hints(place("linux-home-wifi"), {ENV_VAR: "test-net"})
    assert hints.network_id(SALT) == "test-net" and hints.strength is Strength.STRONG
    assert hints.describe() == f"set by {ENV_VAR}"
    assert hints.brief() == "set by env"  # the status line's short form
    wifi = detect_hints(place("linux-home-wifi"), {})
    assert wifi.brief() == wifi.describe()
    networks = Networks(db, src=place("linux-home-wifi"), environ={ENV_VAR: "test-net"})
    assert networks.current().id == "test-net"
    unknown = detect_hints(place("linux-home-wifi"), {ENV_VAR: "unknown"})
    assert unknown.network_id(SALT) == UNKNOWN_ID
