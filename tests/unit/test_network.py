"""Network identity from real /proc-format files and real command output, and the registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from misfin_tui.core.database import Database
from misfin_tui.core.network import (
    ENV_VAR,
    UNKNOWN_ID,
    NetworkError,
    Networks,
    detect_network_id,
    linux_default_gateway,
    linux_gateway_mac,
    resolvers,
    run_command,
)

SALT = b"0123456789abcdef"

ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)
# wlan0 default via 192.168.2.1 (metric 600), eth0 default via 10.0.0.1 (metric 100),
# plus the on-link subnet routes the kernel always lists.
ROUTE = ROUTE_HEADER + (
    "wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
    "wlan0\t0002A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
    "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth0\t0000000A\t00000000\t0001\t0\t0\t100\t000000FF\t0\t0\t0\n"
)
ARP = (
    "IP address       HW type     Flags       HW address            Mask     Device\n"
    "192.168.2.1      0x1         0x2         a4:91:b1:02:3c:4d     *        wlan0\n"
    "10.0.0.1         0x1         0x2         00:1A:2B:3C:4D:5E     *        eth0\n"
    "10.0.0.7         0x1         0x0         00:00:00:00:00:00     *        eth0\n"
)
RESOLV = "# generated\nsearch lan\nnameserver 10.0.0.1\nnameserver 1.1.1.1\noptions edns0\n"


def write_proc(tmp_path: Path, route: str, arp: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "route").write_text(route)
    (proc / "net" / "arp").write_text(arp)
    return proc


def write_resolv(tmp_path: Path, text: str = RESOLV) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    return path


def linux(tmp_path: Path, route: str = ROUTE, arp: str = ARP, salt: bytes = SALT):
    return detect_network_id(
        salt,
        proc=write_proc(tmp_path, route, arp),
        resolv_conf=write_resolv(tmp_path),
        system="linux",
        environ={},
    )


def test_default_route_picks_lowest_metric_and_decodes_little_endian(tmp_path: Path) -> None:
    proc = write_proc(tmp_path, ROUTE, ARP)
    assert linux_default_gateway(proc) == ("10.0.0.1", "eth0")
    assert linux_gateway_mac(proc, "10.0.0.1", "eth0") == "00:1a:2b:3c:4d:5e"
    assert linux_gateway_mac(proc, "192.168.2.1", "wlan0") == "a4:91:b1:02:3c:4d"


def test_incomplete_arp_entry_gives_no_mac(tmp_path: Path) -> None:
    proc = write_proc(tmp_path, ROUTE, ARP)
    assert linux_gateway_mac(proc, "10.0.0.7", "eth0") == ""
    assert linux_gateway_mac(proc, "10.0.0.1", "wlan0") == ""  # other interface


def test_strong_id_from_gateway_mac_is_stable_and_salted(tmp_path: Path) -> None:
    network_id, strength, hints = linux(tmp_path / "a")
    assert strength == "strong"
    assert "10.0.0.1" in hints and "eth0" in hints
    assert len(network_id) == 32 and "00:1a" not in network_id
    assert linux(tmp_path / "b")[0] == network_id
    assert linux(tmp_path / "c", salt=b"another install")[0] != network_id


def test_same_router_ip_different_mac_is_a_different_network(tmp_path: Path) -> None:
    other = ARP.replace("00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5F")
    assert linux(tmp_path / "a")[0] != linux(tmp_path / "b", arp=other)[0]


def test_cold_arp_cache_falls_back_to_weak_id(tmp_path: Path) -> None:
    header_only = ARP.splitlines(keepends=True)[0]
    network_id, strength, hints = linux(tmp_path / "a", arp=header_only)
    assert strength == "weak"
    assert "weak" in hints
    assert network_id != UNKNOWN_ID
    assert linux(tmp_path / "b", arp=header_only)[0] == network_id


def test_weak_id_depends_on_resolvers(tmp_path: Path) -> None:
    proc = write_proc(tmp_path, ROUTE, ARP.splitlines(keepends=True)[0])
    first = detect_network_id(
        SALT, proc=proc, resolv_conf=write_resolv(tmp_path), system="linux", environ={}
    )
    other_conf = tmp_path / "other.conf"
    other_conf.write_text("nameserver 9.9.9.9\n")
    second = detect_network_id(SALT, proc=proc, resolv_conf=other_conf, system="linux", environ={})
    assert first[1] == second[1] == "weak"
    assert first[0] != second[0]


def test_no_default_route_is_unknown(tmp_path: Path) -> None:
    only_local = ROUTE_HEADER + "eth0\t0000000A\t00000000\t0001\t0\t0\t100\t000000FF\t0\t0\t0\n"
    assert linux(tmp_path, route=only_local)[:2] == (UNKNOWN_ID, "unknown")


def test_missing_proc_files_are_unknown(tmp_path: Path) -> None:
    result = detect_network_id(
        SALT, proc=tmp_path / "nothing", resolv_conf=tmp_path / "none", system="linux", environ={}
    )
    assert result[0] == UNKNOWN_ID


def test_resolvers_parsed_and_sorted(tmp_path: Path) -> None:
    assert resolvers(write_resolv(tmp_path)) == ["1.1.1.1", "10.0.0.1"]


MAC_ROUTE = """   route to: default
destination: default
       mask: default
    gateway: 192.168.1.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>
 recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire
       0         0         0         0         0         0      1500         0
"""
MAC_ARP = "? (192.168.1.1) at a4:91:b1:2:3c:4d on en0 ifscope [ethernet]\n"


class RecordingRunner:
    """Answers with captured macOS output and records the commands it was asked to run."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        return self.answers.get(" ".join(argv), "")


def test_macos_route_and_arp(tmp_path: Path) -> None:
    run = RecordingRunner({"route -n get default": MAC_ROUTE, "arp -n 192.168.1.1": MAC_ARP})
    network_id, strength, hints = detect_network_id(
        SALT, run=run, system="darwin", environ={}, resolv_conf=write_resolv(tmp_path)
    )
    assert strength == "strong"
    assert "192.168.1.1" in hints and "en0" in hints
    assert run.calls[:2] == [["route", "-n", "get", "default"], ["arp", "-n", "192.168.1.1"]]
    # macOS drops leading zeros ("2"); the id must equal the zero-padded Linux form's.
    proc = write_proc(
        tmp_path,
        ROUTE_HEADER + "en0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        "IP address HW type Flags HW address Mask Device\n"
        "192.168.1.1 0x1 0x2 a4:91:b1:02:3c:4d * en0\n",
    )
    linux_id = detect_network_id(SALT, proc=proc, system="linux", environ={})[0]
    assert network_id == linux_id


def test_macos_incomplete_arp_is_weak(tmp_path: Path) -> None:
    run = RecordingRunner(
        {
            "route -n get default": MAC_ROUTE,
            "arp -n 192.168.1.1": "? (192.168.1.1) at (incomplete) on en0 ifscope [ethernet]\n",
        }
    )
    result = detect_network_id(
        SALT, run=run, system="darwin", environ={}, resolv_conf=write_resolv(tmp_path)
    )
    assert result[1] == "weak"


def test_macos_no_route_is_unknown() -> None:
    assert detect_network_id(SALT, run=RecordingRunner({}), system="darwin", environ={})[0] == (
        UNKNOWN_ID
    )


def test_run_command_failure_and_missing_program_give_empty_output() -> None:
    assert run_command(["false"]) == ""
    assert run_command(["misfin-tui-no-such-program-here"]) == ""
    assert run_command(["echo", "gateway: 1.2.3.4"]).strip() == "gateway: 1.2.3.4"


def test_env_override(tmp_path: Path) -> None:
    env = {ENV_VAR: "test-net"}
    result = detect_network_id(SALT, proc=tmp_path, system="linux", environ=env)
    assert result[:2] == ("test-net", "strong")
    assert detect_network_id(SALT, environ={ENV_VAR: "unknown"})[:2] == (UNKNOWN_ID, "unknown")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "mail.db")


def networks_on(db: Database, tmp_path: Path, arp: str = ARP) -> Networks:
    return Networks(db, proc=write_proc(tmp_path, ROUTE, arp), system="linux", environ={})


def test_salt_is_made_once_and_kept(db: Database, tmp_path: Path) -> None:
    first = Networks(db, environ={}).salt()
    assert len(first) == 16
    assert Networks(db, environ={}).salt() == first
    other = Database(tmp_path / "other.db")
    assert Networks(other, environ={}).salt() != first


def test_current_records_first_and_last_seen(db: Database, tmp_path: Path) -> None:
    networks = networks_on(db, tmp_path)
    network = networks.current()
    assert network.strength == "strong" and not network.trusted
    assert network.first_seen and network.last_seen
    assert [n.id for n in networks.list()] == [network.id]
    again = networks.current()
    assert again.first_seen == network.first_seen
    assert again.last_seen >= network.last_seen


def test_trust_and_untrust_current_are_logged(db: Database, tmp_path: Path) -> None:
    networks = networks_on(db, tmp_path)
    trusted = networks.trust(label="Home")
    assert trusted.trusted and trusted.label == "Home"
    assert networks.current().trusted
    untrusted = networks.untrust()
    assert not untrusted.trusted and untrusted.label == "Home"
    events = [
        (row["kind"], row["subject"], row["event"], row["detail"])
        for row in db.connect().execute("SELECT * FROM trust_history ORDER BY id")
    ]
    assert events == [
        ("network", trusted.id, "network-trusted", "Home"),
        ("network", trusted.id, "network-untrusted", ""),
    ]


def test_unknown_network_can_never_be_trusted(db: Database, tmp_path: Path) -> None:
    networks = Networks(db, proc=tmp_path / "empty", system="linux", environ={})
    current = networks.current()
    assert current.id == UNKNOWN_ID and not current.trusted and current.strength == "unknown"
    with pytest.raises(NetworkError, match="cannot be marked as trusted"):
        networks.trust()
    with pytest.raises(NetworkError):
        networks.trust(UNKNOWN_ID, "Cafe")
    assert networks.list() == []
    overridden = Networks(db, environ={ENV_VAR: "unknown"})
    with pytest.raises(NetworkError):
        overridden.trust()


def test_trusting_an_id_never_seen_is_refused(db: Database, tmp_path: Path) -> None:
    networks = networks_on(db, tmp_path)
    with pytest.raises(NetworkError, match="has been seen"):
        networks.trust("0" * 32, "Typo")


def test_env_override_network_can_be_trusted(db: Database) -> None:
    networks = Networks(db, environ={ENV_VAR: "test-net"})
    assert networks.trust("test-net", "Tests").trusted
    assert networks.current() == networks.get("test-net")
    assert networks.current().trusted
