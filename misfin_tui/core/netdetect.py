"""Reading the network hints off Linux and macOS without root, from files and short commands.

Linux: the routing tables and ARP cache in /proc, interface types in /sys, `ip route get` (a
route lookup that sends nothing, and the only way to see a WireGuard policy route), `ip -6
neigh`, and NetworkManager (`nmcli`) or `iw` for the Wi-Fi. macOS: `route`, `arp`, `ndp`,
`netstat`, `networksetup` and `airport` (SSID and BSSID are redacted on macOS 14+ without
Location permission, so they are a bonus there). Every source is injectable (`Sources`), every
command has a timeout and the whole detection a time budget, and nothing here raises: what
cannot be read is simply not a hint, and no hints at all is the "unknown" network.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from misfin_tui.core.nethints import Hint, HintKind, normalise_mac

Runner = Callable[[Sequence[str]], str]

COMMAND_TIMEOUT = 2.0  # one command
DETECTION_BUDGET = 5.0  # all commands of one detection together
# Route lookups only (`ip route get` / `route get` send nothing): a global address, so that
# split-tunnel routes (0.0.0.0/1 + 128.0.0.0/1, 2000::/3) are seen as they are used.
LOOKUP_V4 = "1.1.1.1"
LOOKUP_V6 = "2606:4700:4700::1111"
AIRPORT = (
    "/System/Library/PrivateFrameworks/Apple80211.framework/Versions/Current/Resources/airport"
)
MAX_VPN_ROUTES = 8

RTF_UP = 0x1
RTF_GATEWAY = 0x2
RTF_REJECT = 0x200
ATF_COM = 0x2  # /proc/net/arp flag: the entry is complete (the MAC is known)
TUNNEL_PREFIXES = (
    "tun", "tap", "wg", "ppp", "utun", "ipsec", "gpd", "cscotun", "tailscale", "nordlynx",
    "zt", "vpn", "wt", "nebula",
)  # fmt: skip
TUNNEL_TYPES = {512, 768, 769, 776, 778, 823}  # ARPHRD_PPP, TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE


def run_command(argv: Sequence[str]) -> str:
    """Run a short system command in the C locale; any failure or a 2 s timeout -> ""."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


def no_commands(argv: Sequence[str]) -> str:
    """A runner that runs nothing (detection from files alone)."""
    return ""


class Budget:
    """A runner that stops running commands once `seconds` have been spent on them."""

    def __init__(self, run: Runner, seconds: float = DETECTION_BUDGET) -> None:
        self._run = run
        self._left = seconds

    def __call__(self, argv: Sequence[str]) -> str:
        if self._left <= 0:
            return ""
        started = time.monotonic()
        try:
            return self._run(argv)
        except Exception:  # an injected runner that fails is "no output", like a real one
            return ""
        finally:
            self._left -= time.monotonic() - started


@dataclass(frozen=True)
class Sources:
    """Where detection reads from: real /proc, /sys and commands, or fixtures in tests."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    resolv_conf: Path = Path("/etc/resolv.conf")
    run: Runner = run_command
    system: str = field(default_factory=lambda: sys.platform)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return ""


# -- Linux files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One route: destination network, gateway ("" when on-link), interface, metric."""

    destination: str  # "0.0.0.0/0", "10.8.0.0/24", "::/0"
    gateway: str
    iface: str
    metric: int = 0

    @property
    def is_default(self) -> bool:
        return self.destination in ("0.0.0.0/0", "::/0")


def parse_proc_route(text: str) -> list[Route]:
    """/proc/net/route (addresses in host, i.e. little-endian, byte order); usable routes."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
            if not flags & RTF_UP or flags & RTF_REJECT:
                continue
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = struct.pack("<I", int(fields[7], 16))
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{socket.inet_ntoa(mask)}").prefixlen
            gateway = socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
            metric = int(fields[6])
        except (ValueError, struct.error, OSError):
            continue
        gateway = gateway if flags & RTF_GATEWAY and gateway != "0.0.0.0" else ""
        routes.append(Route(f"{dest}/{prefix}", gateway, fields[0], metric))
    return routes


def parse_proc_ipv6_route(text: str) -> list[Route]:
    """/proc/net/ipv6_route: dest, plen, src, splen, next hop, metric, refcnt, use, flags, dev."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            dest = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            prefix = int(fields[1], 16)
            hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
            metric = int(fields[5], 16)
            flags = int(fields[8], 16)
        except ValueError:
            continue
        if not flags & RTF_UP or flags & RTF_REJECT or fields[9] == "lo":
            continue
        gateway = str(hop) if flags & RTF_GATEWAY and not hop.is_unspecified else ""
        routes.append(Route(f"{dest}/{prefix}", gateway, fields[9], metric))
    return routes


def default_route(routes: Sequence[Route], *, tunnels: Callable[[str], bool]) -> Route | None:
    """The route most traffic takes: a split pair into a tunnel (0/1 + 128/1) beats the
    lowest-metric default; a default needs a gateway unless it goes into a tunnel."""
    for route in routes:
        if (
            route.destination == "0.0.0.0/1"
            and tunnels(route.iface)
            and any(r.destination == "128.0.0.0/1" and r.iface == route.iface for r in routes)
        ):
            return route
    defaults = [r for r in routes if r.is_default and (r.gateway or tunnels(r.iface))]
    return min(defaults, key=lambda r: r.metric) if defaults else None


def underlay_route(routes: Sequence[Route], *, tunnels: Callable[[str], bool]) -> Route | None:
    """The best route with a router outside every tunnel (the Wi-Fi or cable under a VPN)."""
    outside = [r for r in routes if r.gateway and not tunnels(r.iface)]
    defaults = [r for r in outside if r.is_default]
    pool = defaults or outside
    return min(pool, key=lambda r: r.metric) if pool else None


def parse_proc_arp(text: str, gateway: str, iface: str) -> str:
    """The gateway's MAC from /proc/net/arp, or "" when missing or incomplete."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6 or fields[0] != gateway or (iface and fields[5] != iface):
            continue
        try:
            complete = int(fields[2], 16) & ATF_COM
        except ValueError:
            continue
        mac = normalise_mac(fields[3]) if complete else ""
        if mac:
            return mac
    return ""


def linux_is_tunnel(sys_root: Path, iface: str) -> bool:
    """tun/tap/wg/ppp and other tunnels, by sysfs (tun_flags, type, DEVTYPE) or by name."""
    if not iface:
        return False
    base = sys_root / "class" / "net" / iface
    if (base / "tun_flags").exists():
        return True
    try:
        if int(read(base / "type").strip() or "1") in TUNNEL_TYPES:
            return True
    except ValueError:
        pass
    if re.search(r"^DEVTYPE=(wireguard|ppp|vpn)\s*$", read(base / "uevent"), re.MULTILINE):
        return True
    return iface.lower().startswith(TUNNEL_PREFIXES)


# -- Linux commands -------------------------------------------------------------------------------


def parse_ip_route_get(text: str) -> Route | None:
    """`ip route get <addr>`: "1.1.1.1 via 10.0.0.1 dev eth0 table main src ..." -> a Route."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    words = first.split()
    if "dev" not in words:
        return None
    dev = words[words.index("dev") + 1] if words.index("dev") + 1 < len(words) else ""
    via = words[words.index("via") + 1] if "via" in words[:-1] else ""
    if via.startswith(("inet ", "inet6 ")):
        via = via.split()[-1]
    family = "::/0" if ":" in (words[0] if words else "") else "0.0.0.0/0"
    return Route(family, via, dev) if dev else None


@dataclass(frozen=True)
class Neighbour:
    address: str
    iface: str
    mac: str
    router: bool


def parse_ip_neigh(text: str) -> list[Neighbour]:
    """`ip -6 neigh show`: "fe80::1 dev wlan0 lladdr 3c:22:.. router REACHABLE"."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if "lladdr" not in words[:-1] or "dev" not in words[:-1] or "FAILED" in words:
            continue
        mac = normalise_mac(words[words.index("lladdr") + 1])
        if mac:
            dev = words[words.index("dev") + 1]
            found.append(Neighbour(words[0], dev, mac, "router" in words))
    return found


def router_mac(neighbours: Sequence[Neighbour], gateway: str, iface: str) -> str:
    """The default router's MAC: the gateway's entry, else the one router on that link."""
    for n in neighbours:
        if _same_v6(n.address, gateway) and (not iface or n.iface == iface):
            return n.mac
    routers = {n.mac for n in neighbours if n.router and (not iface or n.iface == iface)}
    return routers.pop() if len(routers) == 1 else ""


def _same_v6(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False


def split_terse(line: str) -> list[str]:
    """One line of `nmcli -t -e yes`: fields split on ':', with '\\:' and '\\\\' escaped."""
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def parse_nmcli_wifi(text: str, iface: str) -> tuple[str, str]:
    """(SSID, BSSID) of the active access point on `iface` from `nmcli -t ... device wifi`."""
    for line in text.splitlines():
        fields = split_terse(line)
        if len(fields) < 4:
            continue
        active, ssid, bssid, device = fields[0], fields[1], fields[2], fields[3]
        if active.strip().lower() in ("yes", "*") and (not iface or device == iface):
            return ssid, normalise_mac(bssid)
    return "", ""


def parse_nmcli_connectivity(text: str) -> str:
    """ "connected:portal" from `nmcli -t -f STATE,CONNECTIVITY general` -> "portal"."""
    fields = split_terse(text.strip().splitlines()[0]) if text.strip() else []
    return fields[-1].strip().lower() if len(fields) >= 2 else ""


def parse_iw_link(text: str) -> tuple[str, str]:
    """(SSID, BSSID) from `iw dev <if> link` ("Connected to <bssid> (on wlan0)", "SSID: x")."""
    bssid = re.search(r"^Connected to ([0-9a-fA-F:]{17})", text, re.MULTILINE)
    ssid = re.search(r"^\s*SSID: (.*)$", text, re.MULTILINE)
    if bssid is None:
        return "", ""
    return (ssid.group(1) if ssid else ""), normalise_mac(bssid.group(1))


def resolvers(text: str) -> list[str]:
    """Name servers listed in resolv.conf, sorted (a weak, secondary signal)."""
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            found.add(fields[1])
    return sorted(found)


def detect_linux(src: Sources, run: Runner) -> list[Hint]:
    proc = src.proc / "net"
    routes4 = parse_proc_route(read(proc / "route"))
    routes6 = parse_proc_ipv6_route(read(proc / "ipv6_route"))

    def tunnel(iface: str) -> bool:
        return linux_is_tunnel(src.sys, iface)

    hints: list[Hint] = []
    main4 = default_route(routes4, tunnels=tunnel)
    main6 = default_route(routes6, tunnels=tunnel)
    # A policy route (wg-quick's table 51820) is invisible in /proc: ask the kernel.
    for family, lookup in (("-4", LOOKUP_V4), ("-6", LOOKUP_V6)):
        if (family == "-4" and main4 is None) or (family == "-6" and main6 is None):
            continue
        used = parse_ip_route_get(run(["ip", family, "route", "get", lookup]))
        if used is not None and tunnel(used.iface):
            if family == "-4":
                main4 = used
            else:
                main6 = used
    vpn = next((r for r in (main4, main6) if r is not None and tunnel(r.iface)), None)
    if vpn is not None:
        hints.append(Hint(HintKind.VPN, vpn.iface))
        for r in (main4, main6):
            if r is not None and r.iface == vpn.iface and r.gateway:
                hints.append(Hint(HintKind.VPN_GATEWAY, r.gateway))
        inside = sorted(
            {
                r.destination
                for r in routes4 + routes6
                if r.iface == vpn.iface
                and not r.is_default
                and r.destination not in ("0.0.0.0/1", "128.0.0.0/1")
                and not r.destination.startswith(("fe80:", "ff00:"))
            }
        )
        hints += [Hint(HintKind.VPN_ROUTE, d) for d in inside[:MAX_VPN_ROUTES]]
    under4 = underlay_route(routes4, tunnels=tunnel) if vpn else main4
    under6 = underlay_route(routes6, tunnels=tunnel) if vpn else main6
    under4 = under4 if under4 is not None and not tunnel(under4.iface) else None
    under6 = under6 if under6 is not None and not tunnel(under6.iface) else None
    if under4 is not None and under4.gateway:
        hints.append(Hint(HintKind.GATEWAY_V4, under4.gateway))
        mac = parse_proc_arp(read(proc / "arp"), under4.gateway, under4.iface)
        if mac:
            hints.append(Hint(HintKind.ROUTER_MAC_V4, mac))
    if under6 is not None and under6.gateway:
        hints.append(Hint(HintKind.GATEWAY_V6, under6.gateway))
        mac = router_mac(
            parse_ip_neigh(run(["ip", "-6", "neigh", "show"])), under6.gateway, under6.iface
        )
        if mac:
            hints.append(Hint(HintKind.ROUTER_MAC_V6, mac))
    under = under4 or under6
    iface = under.iface if under is not None else ""
    if iface:
        hints.append(Hint(HintKind.INTERFACE, iface))
        hints += linux_wifi(src, run, iface)
    elif main4 is None and main6 is None:
        hints.append(Hint(HintKind.NOTE, "no default route found"))
    hints += [Hint(HintKind.RESOLVER, r) for r in resolvers(read(src.resolv_conf))]
    return hints


def linux_wifi(src: Sources, run: Runner, iface: str) -> list[Hint]:
    """SSID/BSSID of `iface` from NetworkManager, else `iw`; NM's captive-portal verdict."""
    hints: list[Hint] = []
    general = run(["nmcli", "-t", "-f", "STATE,CONNECTIVITY", "general"])
    connectivity = parse_nmcli_connectivity(general)
    if connectivity in ("portal", "limited"):
        hints.append(Hint(HintKind.PORTAL, connectivity))
    ssid, bssid = "", ""
    if general:
        wifi = run(
            ["nmcli", "-t", "-e", "yes", "-f", "ACTIVE,SSID,BSSID,DEVICE"]
            + ["device", "wifi", "list", "--rescan", "no"]
        )
        ssid, bssid = parse_nmcli_wifi(wifi, iface)
    wireless = (src.sys / "class" / "net" / iface / "wireless").exists()
    if not ssid and not bssid and (wireless or iface.startswith("wl")):
        ssid, bssid = parse_iw_link(run(["iw", "dev", iface, "link"]))
    if ssid:
        hints.append(Hint(HintKind.WIFI_SSID, ssid))
    if bssid:
        hints.append(Hint(HintKind.WIFI_BSSID, bssid))
    return hints


# -- macOS ----------------------------------------------------------------------------------------


def parse_route_get(text: str) -> Route | None:
    """`route -n get [-inet6] <dest>`: gateway and interface (a "link#N" gateway is on-link)."""
    gateway = re.search(r"^\s*gateway:\s*(\S+)", text, re.MULTILINE)
    interface = re.search(r"^\s*interface:\s*(\S+)", text, re.MULTILINE)
    if interface is None and gateway is None:
        return None
    address = gateway.group(1) if gateway else ""
    try:
        ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        address = ""
    v6 = ":" in address or "inet6" in text
    return Route("::/0" if v6 else "0.0.0.0/0", address, interface.group(1) if interface else "")


def parse_macos_arp(text: str) -> str:
    """The MAC in `arp -n <gw>` ("(incomplete)" -> "")."""
    match = re.search(r"\bat\s+([0-9A-Fa-f:]+)(?:\s|$)", text)
    return normalise_mac(match.group(1)) if match else ""


def parse_ndp(text: str) -> list[Neighbour]:
    """`ndp -an`: "fe80::1%en0  3c:22:fb:a0:17:91  en0 23h59m58s S R" (R: a router)."""
    found = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) < 3:
            continue
        mac = normalise_mac(words[1])
        if mac:
            found.append(Neighbour(words[0], words[2], mac, "R" in words[4:]))
    return found


def parse_hardware_ports(text: str) -> list[str]:
    """Wi-Fi devices from `networksetup -listallhardwareports`."""
    devices, port = [], ""
    for line in text.splitlines():
        if line.startswith("Hardware Port:"):
            port = line.split(":", 1)[1].strip()
        elif line.startswith("Device:") and port in ("Wi-Fi", "AirPort"):
            devices.append(line.split(":", 1)[1].strip())
    return devices


def parse_airport_network(text: str) -> str:
    """ "Current Wi-Fi Network: CafeNet" -> "CafeNet" (not associated or redacted -> "")."""
    match = re.search(r"^Current (?:Wi-Fi|AirPort) Network: (.+)$", text, re.MULTILINE)
    return _unredacted(match.group(1)) if match else ""


def parse_airport_info(text: str) -> tuple[str, str]:
    """(SSID, BSSID) from `airport -I`."""
    ssid = re.search(r"^\s*SSID: (.*)$", text, re.MULTILINE)
    bssid = re.search(r"^\s*BSSID: (\S+)", text, re.MULTILINE)
    return (
        _unredacted(ssid.group(1)) if ssid else "",
        normalise_mac(bssid.group(1)) if bssid else "",
    )


def _unredacted(value: str) -> str:
    value = value.strip()
    return "" if value.lower() in ("<redacted>", "<ssid redacted>", "") else value


def parse_netstat_routes(text: str, iface: str) -> list[str]:
    """Destinations `netstat -rn` routes into `iface` (the split defaults left out)."""
    found = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[3] == iface:
            dest = words[0]
            if dest not in ("default", "0/1", "128.0/1") and not dest.startswith(("fe80", "ff0")):
                found.add(dest)
    return sorted(found)


def netstat_underlay(text: str, tunnel: Callable[[str], bool]) -> Route | None:
    """The first IPv4 default in `netstat -rn` through a router outside the tunnels."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "default" and not tunnel(words[3]):
            try:
                ipaddress.IPv4Address(words[1])
            except ValueError:
                continue
            return Route("0.0.0.0/0", words[1], words[3])
    return None


def detect_macos(src: Sources, run: Runner) -> list[Hint]:
    def tunnel(iface: str) -> bool:
        return iface.lower().startswith(TUNNEL_PREFIXES)

    hints: list[Hint] = []
    main4 = parse_route_get(run(["route", "-n", "get", "default"]))
    mac4 = ""
    if main4 is not None and main4.gateway and not tunnel(main4.iface):
        mac4 = parse_macos_arp(run(["arp", "-n", main4.gateway]))
    used = parse_route_get(run(["route", "-n", "get", LOOKUP_V4])) if main4 else None
    main6 = parse_route_get(run(["route", "-n", "get", "-inet6", "default"]))
    vpn = next((r for r in (used, main4, main6) if r is not None and tunnel(r.iface)), None)
    if vpn is not None:
        hints.append(Hint(HintKind.VPN, vpn.iface))
        if vpn.gateway:
            hints.append(Hint(HintKind.VPN_GATEWAY, vpn.gateway))
        table = run(["netstat", "-rn"])
        inside = parse_netstat_routes(table, vpn.iface)
        hints += [Hint(HintKind.VPN_ROUTE, d) for d in inside[:MAX_VPN_ROUTES]]
        if main4 is not None and tunnel(main4.iface):
            # The default itself goes into the tunnel: the router under it from netstat.
            main4 = netstat_underlay(table, tunnel)
            if main4 is not None:
                mac4 = parse_macos_arp(run(["arp", "-n", main4.gateway]))
    under4 = main4 if main4 is not None and not tunnel(main4.iface) else None
    under6 = main6 if main6 is not None and not tunnel(main6.iface) else None
    if under4 is not None and under4.gateway:
        hints.append(Hint(HintKind.GATEWAY_V4, under4.gateway))
        if mac4:
            hints.append(Hint(HintKind.ROUTER_MAC_V4, mac4))
    if under6 is not None and under6.gateway:
        hints.append(Hint(HintKind.GATEWAY_V6, under6.gateway.split("%")[0]))
        mac6 = router_mac(parse_ndp(run(["ndp", "-an"])), under6.gateway, under6.iface)
        if mac6:
            hints.append(Hint(HintKind.ROUTER_MAC_V6, mac6))
    under = under4 or under6
    iface = under.iface if under is not None else ""
    if iface:
        hints.append(Hint(HintKind.INTERFACE, iface))
        if iface in parse_hardware_ports(run(["networksetup", "-listallhardwareports"])):
            ssid = parse_airport_network(run(["networksetup", "-getairportnetwork", iface]))
            info_ssid, bssid = parse_airport_info(run([AIRPORT, "-I"]))
            ssid = ssid or info_ssid
            if ssid:
                hints.append(Hint(HintKind.WIFI_SSID, ssid))
            if bssid:
                hints.append(Hint(HintKind.WIFI_BSSID, bssid))
    elif main4 is None and main6 is None:
        hints.append(Hint(HintKind.NOTE, "no default route found"))
    hints += [Hint(HintKind.RESOLVER, r) for r in resolvers(read(src.resolv_conf))]
    return hints


def detect(src: Sources) -> list[Hint]:
    """Every hint this machine shows, never raising; [] or a NOTE only means "unknown"."""
    run = Budget(src.run)
    try:
        if src.system == "darwin":
            return detect_macos(src, run)
        if src.system.startswith("linux"):
            return detect_linux(src, run)
    except Exception as exc:  # a parser bug must not stop a send: the network is unknown
        return [Hint(HintKind.NOTE, f"network detection failed ({type(exc).__name__})")]
    return [Hint(HintKind.NOTE, f"network detection is not supported on {src.system}")]
