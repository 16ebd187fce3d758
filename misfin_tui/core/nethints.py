"""What the machine can see of the network it is on, as named hints, and the id made from them.

The trust rules ask harder on a network the person has not marked, so two places must never
share an id: a VPN is its own network (never the router under it), and a router or Wi-Fi that
changes under the same name is a new network. Each hint is a typed fact ("router 3c:…:91",
"Wi-Fi 'CafeNet'", "through VPN wg0"); the id is a salted SHA-256 of the strongest of them, and
`describe()` is the one line a person reads to see why the network is what it is. Values that
came off the air (an SSID) are made printable here, so they are safe to show as plain text.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

UNKNOWN_ID = "unknown"
ENV_VAR = "MISFIN_TUI_NETWORK"  # names the network instead of detection (tests, scripts)
MAX_VALUE = 96  # an SSID is at most 32 bytes; every hint value is capped for display
# The first version hashed "v4:<mac>" for the IPv4 router; a router is named the same way for
# both families so a wired network keeps the id (and the trust mark) it had.
ROUTER_PART = "v4:"


class Strength(StrEnum):
    """How much the id says: strong (router hardware address or a VPN), weak, unknown."""

    STRONG = "strong"
    WEAK = "weak"
    UNKNOWN = "unknown"


class HintKind(StrEnum):
    """What a hint is; the order here is strongest first."""

    OVERRIDE = "override"  # MISFIN_TUI_NETWORK named the network (the value is its id)
    VPN = "vpn"  # the default route goes through this tunnel interface
    VPN_GATEWAY = "vpn-gateway"  # the tunnel's peer address, when the route names one
    VPN_ROUTE = "vpn-route"  # a subnet routed into the tunnel (tells two VPNs on wg0 apart)
    ROUTER_MAC_V4 = "router-mac-v4"  # the IPv4 default gateway's MAC (ARP)
    ROUTER_MAC_V6 = "router-mac-v6"  # the IPv6 default router's MAC (neighbour table)
    WIFI_SSID = "wifi-ssid"
    WIFI_BSSID = "wifi-bssid"  # the access point's MAC
    INTERFACE = "interface"  # the default route's interface (under the VPN, if any)
    GATEWAY_V4 = "gateway-v4"  # router addresses: 192.168.1.1 is everywhere, so weak
    GATEWAY_V6 = "gateway-v6"
    RESOLVER = "resolver"  # a name server from resolv.conf (weak id only)
    PORTAL = "captive-portal"  # NetworkManager's own connectivity check says portal/limited
    NOTE = "note"  # why nothing better was found


@dataclass(frozen=True)
class Hint:
    """One named fact about the network."""

    kind: HintKind
    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", printable(self.value))

    def text(self, *, short: bool = True) -> str:
        """The hint for people: "router 3c:…:91", "Wi-Fi 'CafeNet'", "through VPN wg0"."""
        value = self.value
        kind = self.kind
        if kind in (HintKind.ROUTER_MAC_V4, HintKind.ROUTER_MAC_V6, HintKind.WIFI_BSSID):
            value = short_mac(value) if short else value
        match kind:
            case HintKind.OVERRIDE:
                return f"set by {ENV_VAR}"
            case HintKind.VPN:
                return f"through VPN {value}"
            case HintKind.VPN_GATEWAY:
                return f"VPN peer {value}"
            case HintKind.VPN_ROUTE:
                return f"VPN route {value}"
            case HintKind.ROUTER_MAC_V4:
                return f"router {value}"
            case HintKind.ROUTER_MAC_V6:
                return f"IPv6 router {value}"
            case HintKind.WIFI_SSID:
                return f"Wi-Fi '{value}'"
            case HintKind.WIFI_BSSID:
                return f"access point {value}"
            case HintKind.INTERFACE:
                return f"on {value}"
            case HintKind.GATEWAY_V4 | HintKind.GATEWAY_V6:
                return f"gateway {value}"
            case HintKind.RESOLVER:
                return f"name server {value}"
            case HintKind.PORTAL:
                return f"captive portal? (NetworkManager says {value})"
        return value


@dataclass(frozen=True)
class NetworkHints:
    """Every hint detection found, and the id, strength and sentence they make."""

    hints: tuple[Hint, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, hints: Iterable[Hint]) -> NetworkHints:
        """Hints in strength order (HintKind order), duplicates dropped."""
        order = list(HintKind)
        unique = dict.fromkeys(hints)
        return cls(tuple(sorted(unique, key=lambda h: order.index(h.kind))))

    def values(self, kind: HintKind) -> list[str]:
        return [h.value for h in self.hints if h.kind is kind]

    def first(self, kind: HintKind) -> str:
        found = self.values(kind)
        return found[0] if found else ""

    def macs(self) -> list[str]:
        """The routers' hardware addresses, IPv4 first."""
        return self.values(HintKind.ROUTER_MAC_V4) + self.values(HintKind.ROUTER_MAC_V6)

    @property
    def is_vpn(self) -> bool:
        return bool(self.values(HintKind.VPN))

    @property
    def portal(self) -> bool:
        """NetworkManager says this network is a captive portal (or limited) right now."""
        return bool(self.values(HintKind.PORTAL))

    def identity(self) -> tuple[Strength, list[str]]:
        """Which hints make the id, and how strong that id is.

        A VPN: its interface, peer and routes only, so it is one network wherever the laptop
        is. Otherwise the routers' MACs and the SSID (a new router or a new SSID is a new
        network); the BSSID counts only without a router MAC, since mesh access points change
        it while roaming at home and it adds nothing a cloned router MAC would not also fake.
        Without any hardware address: gateway addresses, SSID and resolvers, a weak id.
        """
        override = self.first(HintKind.OVERRIDE)
        if override:
            return Strength.STRONG, ["override:" + override]
        if self.is_vpn:
            parts = ["vpn:" + v for v in self.values(HintKind.VPN)]
            parts += ["vpn-gw:" + v for v in self.values(HintKind.VPN_GATEWAY)]
            parts += ["vpn-net:" + v for v in self.values(HintKind.VPN_ROUTE)]
            strong = len(parts) > 1
            return (Strength.STRONG if strong else Strength.WEAK), parts
        macs = self.macs()
        ssids = ["ssid:" + v for v in self.values(HintKind.WIFI_SSID)]
        if macs:
            return Strength.STRONG, sorted({ROUTER_PART + m for m in macs}) + ssids
        gateways = self.values(HintKind.GATEWAY_V4) + self.values(HintKind.GATEWAY_V6)
        bssids = ["bssid:" + v for v in self.values(HintKind.WIFI_BSSID)]
        if not gateways and not bssids:
            return Strength.UNKNOWN, []
        # The first version's weak id was "weak", "gw:<ip>", "dns:<ip>"...: kept for wired.
        parts = ["weak"] + ["gw:" + g for g in gateways] + ssids + bssids
        parts += ["dns:" + r for r in self.values(HintKind.RESOLVER)]
        return Strength.WEAK, parts

    @property
    def strength(self) -> Strength:
        return self.identity()[0]

    def network_id(self, salt: bytes) -> str:
        """The salted id ("unknown" when nothing identifies the network)."""
        override = self.first(HintKind.OVERRIDE)
        if override:
            return override
        strength, parts = self.identity()
        return UNKNOWN_ID if strength is Strength.UNKNOWN else digest(salt, parts)

    def describe(self) -> str:
        """One line for the status line, the prompts and `network status`.

        "Wi-Fi 'CafeNet', router 3c:…:91, through VPN wg0"; a weak or unknown id says so.
        """
        override = self.first(HintKind.OVERRIDE)
        if override:
            return Hint(HintKind.OVERRIDE, override).text()
        texts = [Hint(HintKind.WIFI_SSID, v).text() for v in self.values(HintKind.WIFI_SSID)]
        strength = self.strength
        macs = list(dict.fromkeys(self.macs()))
        gateways = self.values(HintKind.GATEWAY_V4) + self.values(HintKind.GATEWAY_V6)
        if macs:
            # only the addresses whose router answered: "(192.168.1.1, fe80::1)"
            known = self.values(HintKind.GATEWAY_V4) if self.values(HintKind.ROUTER_MAC_V4) else []
            known += self.values(HintKind.GATEWAY_V6) if self.values(HintKind.ROUTER_MAC_V6) else []
            router = "router " + ", ".join(short_mac(m) for m in macs)
            texts.append(router + (f" ({', '.join(known)})" if known else ""))
        elif gateways:
            texts.append("gateway " + ", ".join(gateways))
        texts[-1:] = [" ".join(texts[-1:] + [f"on {i}" for i in self.values(HintKind.INTERFACE)])]
        texts += [Hint(HintKind.VPN, v).text() for v in self.values(HintKind.VPN)]
        texts += [Hint(HintKind.PORTAL, v).text() for v in self.values(HintKind.PORTAL)]
        if strength is Strength.WEAK:
            texts.append(
                "the VPN has no peer or routes to tell it apart: weak id"
                if self.is_vpn
                else "router hardware address unknown: weak id"
            )
        elif strength is Strength.UNKNOWN:
            texts += self.values(HintKind.NOTE) or ["no default route found"]
        texts = [t for t in texts if t]
        return ", ".join(texts)

    def brief(self) -> str:
        """describe() where room is short (the status line at 80 columns): a network named by
        $MISFIN_TUI_NETWORK says only "set by env"; the long form stays in `network status`."""
        if self.first(HintKind.OVERRIDE):
            return "set by env"
        return self.describe()

    def details(self) -> list[str]:
        """Every hint, in full, strongest first (for `network status` and the Networks tab)."""
        return [h.text(short=False) for h in self.hints if h.kind is not HintKind.NOTE]

    def to_json(self) -> str:
        return json.dumps([[h.kind.value, h.value] for h in self.hints])

    @classmethod
    def from_json(cls, text: str) -> NetworkHints:
        """Stored hints back; anything unreadable (an older row) is no hints."""
        try:
            rows = json.loads(text) if text else []
            return cls.of(Hint(HintKind(kind), str(value)) for kind, value in rows)
        except (ValueError, TypeError):
            return cls()


def digest(salt: bytes, parts: Sequence[str]) -> str:
    """Salted SHA-256 of the sorted parts, 32 hex digits (the salt hides which routers)."""
    data = salt + b"\0" + "\n".join(sorted(parts)).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:32]


def printable(text: str) -> str:
    """Any text made safe to show as it is: control and format characters escaped, capped."""
    out = []
    for char in text.strip():
        if char.isprintable() and unicodedata.category(char) not in ("Cf", "Co", "Cs"):
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    joined = "".join(out)
    return joined if len(joined) <= MAX_VALUE else joined[: MAX_VALUE - 1] + "…"


def normalise_mac(text: str) -> str:
    """Lower-case colon form, two digits per octet ("a4:91:b1:2:..." on macOS pads to 02)."""
    parts = re.split(r"[:-]", text.strip().lower())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return ""
    mac = ":".join(p.zfill(2) for p in parts)
    return "" if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") else mac


def short_mac(mac: str) -> str:
    """ "3c:22:fb:a0:17:91" -> "3c:…:91" for one-line text."""
    parts = mac.split(":")
    return f"{parts[0]}:…:{parts[-1]}" if len(parts) == 6 else mac
