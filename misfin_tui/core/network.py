"""Which network the laptop is on, without root, and which networks the person trusts.

First contact with a server is the one moment the pin cannot protect, so the trust rules ask
harder when the network is not one the person marked as trusted. Detection (netdetect.py) reads
named hints (routers' MACs for IPv4 and IPv6, Wi-Fi SSID/BSSID, the default interface, a VPN);
the id is a salted SHA-256 of the strongest of them (nethints.py), so a VPN is its own network
and a new router or SSID under a familiar name is a new network. Without any hardware address
the id is "weak"; without a default route it is "unknown", which is never trusted. The salt is
random per install, so the stored ids do not reveal which routers the laptop has been near.
This is not a security boundary (a cloned router MAC passes); it keeps the first-contact
warnings honest.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from misfin_tui.core.clock import utc_now
from misfin_tui.core.database import Database
from misfin_tui.core.netdetect import (
    Route,
    Runner,
    Sources,
    detect,
    no_commands,
    parse_proc_arp,
    parse_proc_route,
    read,
    run_command,
)
from misfin_tui.core.netdetect import resolvers as parse_resolvers
from misfin_tui.core.nethints import ENV_VAR, UNKNOWN_ID, Hint, HintKind, NetworkHints

__all__ = [
    "ENV_VAR",
    "UNKNOWN_ID",
    "UNKNOWN_LABEL",
    "Network",
    "NetworkError",
    "NetworkHints",
    "Networks",
    "Runner",
    "Sources",
    "detect_hints",
    "detect_network_id",
    "run_command",
]

UNKNOWN_LABEL = "unknown network"
SALT_KEY = "network_salt"
DEFAULT_PROC = Path("/proc")


class NetworkError(Exception):
    """A network request that cannot be honoured (for example trusting "unknown")."""


@dataclass(frozen=True)
class Network:
    """A network as the trust rules see it. strength: strong (router MAC, VPN) | weak | unknown.

    `hints` is the one-line description (signals.describe()); `signals` the named hints. A
    network NetworkManager calls a captive portal is never `trusted` while it says so.
    """

    id: str
    label: str
    trusted: bool
    strength: str
    hints: str = ""
    first_seen: str = ""
    last_seen: str = ""
    signals: NetworkHints = field(default_factory=NetworkHints)

    @property
    def is_unknown(self) -> bool:
        return self.id == UNKNOWN_ID

    @property
    def portal(self) -> bool:
        return self.signals.portal

    @property
    def ssid(self) -> str:
        return self.signals.first(HintKind.WIFI_SSID)


UNKNOWN_NETWORK = Network(UNKNOWN_ID, UNKNOWN_LABEL, False, "unknown")


def sources(
    *,
    proc: Path | str = DEFAULT_PROC,
    sys_root: Path | str | None = None,
    resolv_conf: Path | str = "/etc/resolv.conf",
    run: Runner | None = None,
    system: str | None = None,
) -> Sources:
    """Sources from keyword arguments. Commands describe the real machine, so detection
    pointed at other files runs none unless it is given a runner too."""
    real = Path(proc) == DEFAULT_PROC
    base = Sources()
    return Sources(
        proc=Path(proc),
        sys=Path(sys_root) if sys_root is not None else (base.sys if real else Path(proc) / "sys"),
        resolv_conf=Path(resolv_conf),
        run=run if run is not None else (run_command if real else no_commands),
        system=system if system is not None else base.system,
    )


def detect_hints(
    src: Sources, environ: dict[str, str] | os._Environ[str] | None = None
) -> NetworkHints:
    """The hints of the network now; $MISFIN_TUI_NETWORK names the network instead."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_VAR, "").strip()
    if override == UNKNOWN_ID:
        return NetworkHints.of([Hint(HintKind.NOTE, f"set by {ENV_VAR}")])
    if override:
        return NetworkHints.of([Hint(HintKind.OVERRIDE, override)])
    return NetworkHints.of(detect(src))


def detect_network_id(
    salt: bytes,
    *,
    proc: Path | str = DEFAULT_PROC,
    resolv_conf: Path | str = "/etc/resolv.conf",
    run: Runner | None = None,
    system: str | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[str, str, str]:
    """(id, strength, description) of the current network, for callers of the first version."""
    src = sources(proc=proc, resolv_conf=resolv_conf, run=run, system=system)
    hints = detect_hints(src, environ)
    return hints.network_id(salt), str(hints.strength), hints.describe()


def linux_default_gateway(proc: Path) -> tuple[str, str] | None:
    """(gateway IPv4, interface) of the lowest-metric default route in <proc>/net/route."""
    routes: list[Route] = [
        r for r in parse_proc_route(read(Path(proc) / "net" / "route")) if r.is_default
    ]
    best = min((r for r in routes if r.gateway), key=lambda r: r.metric, default=None)
    return None if best is None else (best.gateway, best.iface)


def linux_gateway_mac(proc: Path, gateway: str, iface: str) -> str:
    """The gateway's MAC from <proc>/net/arp, or "" when the entry is missing or incomplete."""
    return parse_proc_arp(read(Path(proc) / "net" / "arp"), gateway, iface)


def resolvers(resolv_conf: Path) -> list[str]:
    """Name servers listed in resolv.conf, sorted (a weak, secondary signal)."""
    return parse_resolvers(read(Path(resolv_conf)))


class Networks:
    """The networks registry over the database: detection, first/last seen, trusted or not."""

    def __init__(
        self,
        db: Database,
        *,
        proc: Path | str = DEFAULT_PROC,
        resolv_conf: Path | str = "/etc/resolv.conf",
        run: Runner | None = None,
        system: str | None = None,
        environ: dict[str, str] | None = None,
        sys_root: Path | str | None = None,
        src: Sources | None = None,
    ) -> None:
        self.db = db
        self.sources = src or sources(
            proc=proc, sys_root=sys_root, resolv_conf=resolv_conf, run=run, system=system
        )
        self._environ = environ

    def salt(self) -> bytes:
        """This install's random salt, made on first use and kept in settings."""
        query = "SELECT value FROM settings WHERE key = ?"
        row = self.db.connect().execute(query, (SALT_KEY,)).fetchone()
        if row is None:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO settings(key, value) VALUES (?, ?)",
                    (SALT_KEY, os.urandom(16).hex()),
                )
                row = conn.execute(query, (SALT_KEY,)).fetchone()
        return bytes.fromhex(row["value"])

    def hints(self) -> NetworkHints:
        """What the machine shows of the network now (blocking: files and short commands)."""
        return detect_hints(self.sources, self._environ)

    def detect(self) -> tuple[str, str, str]:
        """(id, strength, description) of the network now, with this install's salt."""
        hints = self.hints()
        return hints.network_id(self.salt()), str(hints.strength), hints.describe()

    def current(self) -> Network:
        """The network the laptop is on now, recorded (first/last seen) unless it is unknown.

        Trusted only when the person marked it and NetworkManager does not call it a captive
        portal right now.
        """
        hints = self.hints()
        network_id_ = hints.network_id(self.salt())
        strength = hints.strength
        if network_id_ == UNKNOWN_ID:
            return Network(
                UNKNOWN_ID, UNKNOWN_LABEL, False, "unknown", hints.describe(), signals=hints
            )
        now = utc_now()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO networks(id, strength, hints, signals, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen,"
                " hints = excluded.hints, strength = excluded.strength,"
                " signals = excluded.signals",
                (network_id_, str(strength), hints.describe(), hints.to_json(), now, now),
            )
        network = self.get(network_id_)
        assert network is not None
        if network.portal:
            return Network(
                network.id,
                network.label,
                False,
                network.strength,
                network.hints,
                network.first_seen,
                network.last_seen,
                network.signals,
            )
        return network

    def lookalikes(self, network: Network) -> list[Network]:
        """Trusted networks this one could be mistaken for: the same Wi-Fi name or the same
        router address, but another id (a new router, an access point copying an SSID, a
        captive portal). For the prompt: "calls itself 'Home' like your trusted Home, but ..."."""
        if network.is_unknown:
            return []
        mine = network.signals
        names = set(mine.values(HintKind.WIFI_SSID))
        gateways = set(mine.values(HintKind.GATEWAY_V4) + mine.values(HintKind.GATEWAY_V6))
        found = []
        for other in self.list():
            if other.id == network.id or not other.trusted:
                continue
            theirs = other.signals
            if names & set(theirs.values(HintKind.WIFI_SSID)) or (
                not names
                and gateways
                & set(theirs.values(HintKind.GATEWAY_V4) + theirs.values(HintKind.GATEWAY_V6))
            ):
                found.append(other)
        return found

    def caution(self, network: Network) -> str:
        """Why this network deserves extra care, in plain words ("" when nothing stands out)."""
        words = []
        if network.portal:
            words.append("NetworkManager reports a captive portal on this network.")
        for other in self.lookalikes(network):
            name = f"'{network.ssid}'" if network.ssid else "the same router address"
            words.append(
                f"This network uses {name} like your trusted network {other.label}, but it "
                "is not the same network (its router differs): treat it as a new one."
            )
        return " ".join(words)

    def get(self, network_id: str) -> Network | None:
        if network_id == UNKNOWN_ID:
            return UNKNOWN_NETWORK
        row = self.db.connect().execute("SELECT * FROM networks WHERE id = ?", (network_id,))
        found = row.fetchone()
        return None if found is None else _network(found)

    def list(self) -> list[Network]:
        rows = self.db.connect().execute("SELECT * FROM networks ORDER BY last_seen DESC, id")
        return [_network(row) for row in rows]

    def trust(self, network_id: str | None = None, label: str = "") -> Network:
        """Mark a network trusted (None: the current one). "unknown" can never be trusted."""
        return self._set_trusted(network_id, True, label)

    def untrust(self, network_id: str | None = None) -> Network:
        return self._set_trusted(network_id, False, "")

    def _set_trusted(self, network_id: str | None, trusted: bool, label: str) -> Network:
        if network_id is None:
            network_id = self.current().id
        if network_id == UNKNOWN_ID:
            if not trusted:
                return UNKNOWN_NETWORK
            raise NetworkError(
                "This network could not be identified (no router address was found), so it "
                "cannot be marked as trusted; first contacts on it will always ask."
            )
        if self.get(network_id) is None and self.current().id != network_id:
            raise NetworkError(
                f"No network with id {network_id} has been seen; "
                "connect to it first or check the id."
            )
        event = "network-trusted" if trusted else "network-untrusted"
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE networks SET trusted = ?, label = CASE WHEN ? = '' THEN label ELSE ? END"
                " WHERE id = ?",
                (int(trusted), label, label, network_id),
            )
            conn.execute(
                "INSERT INTO trust_history(at, kind, subject, event, detail, network)"
                " VALUES (?, 'network', ?, ?, ?, ?)",
                (utc_now(), network_id, event, label, network_id),
            )
        network = self.get(network_id)
        assert network is not None
        return network


def _network(row: sqlite3.Row) -> Network:
    return Network(
        id=row["id"],
        label=row["label"] or f"network {row['id'][:8]}",
        trusted=bool(row["trusted"]),
        strength=row["strength"],
        hints=row["hints"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        signals=NetworkHints.from_json(row["signals"]),
    )
