"""Which network the laptop is on, without root, and which networks the person trusts.

First contact with a server is the one moment the pin cannot protect, so the trust rules ask
harder when the network is not one the person marked as trusted. The network id is a salted
SHA-256 of the default gateway's MAC address (read from /proc on Linux, `route`/`arp` on
macOS); without a MAC it falls back to the gateway IP plus the resolvers ("weak"), and without
a default route it is "unknown", which is never trusted. The salt is random per install, so the
stored ids do not reveal which routers the laptop has been near. This is not a security
boundary (a cloned router MAC passes); it only keeps the first-contact warnings honest.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from misfin_tui.core.clock import utc_now
from misfin_tui.core.database import Database

ENV_VAR = "MISFIN_TUI_NETWORK"
UNKNOWN_ID = "unknown"
UNKNOWN_LABEL = "unknown network"
SALT_KEY = "network_salt"
COMMAND_TIMEOUT = 2.0

RTF_UP = 0x1
RTF_GATEWAY = 0x2
ATF_COM = 0x2  # /proc/net/arp flag: the entry is complete (the MAC is known)

Runner = Callable[[Sequence[str]], str]


class NetworkError(Exception):
    """A network request that cannot be honoured (for example trusting "unknown")."""


@dataclass(frozen=True)
class Network:
    """A network as the trust rules see it. strength: strong (gateway MAC) | weak | unknown."""

    id: str
    label: str
    trusted: bool
    strength: str
    hints: str = ""
    first_seen: str = ""
    last_seen: str = ""

    @property
    def is_unknown(self) -> bool:
        return self.id == UNKNOWN_ID


UNKNOWN_NETWORK = Network(UNKNOWN_ID, UNKNOWN_LABEL, False, "unknown")


def run_command(argv: Sequence[str]) -> str:
    """Run a short system command (macOS `route`/`arp`); any failure or a 2 s timeout -> ""."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _normalise_mac(text: str) -> str:
    """Lower-case colon form with two digits per octet ("a4:91:b1:2:..." on macOS pads to 02)."""
    parts = text.strip().lower().split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return ""
    mac = ":".join(p.zfill(2) for p in parts)
    return "" if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") else mac


def linux_default_gateway(proc: Path) -> tuple[str, str] | None:
    """(gateway IPv4, interface) of the lowest-metric default route in <proc>/net/route."""
    best: tuple[int, str, str] | None = None
    for line in _read(proc / "net" / "route").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        iface, destination, gateway, flags, metric, mask = (
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            fields[6],
            fields[7],
        )
        try:
            flag_bits = int(flags, 16)
            if int(destination, 16) != 0 or int(mask, 16) != 0:
                continue
            if not flag_bits & RTF_UP or not flag_bits & RTF_GATEWAY:
                continue
            # The kernel prints the address in host (little-endian) byte order.
            address = socket.inet_ntoa(struct.pack("<I", int(gateway, 16)))
            rank = int(metric)
        except (ValueError, struct.error):
            continue
        if best is None or rank < best[0]:
            best = (rank, address, iface)
    return None if best is None else (best[1], best[2])


def linux_gateway_mac(proc: Path, gateway: str, iface: str) -> str:
    """The gateway's MAC from <proc>/net/arp, or "" when the entry is missing or incomplete."""
    for line in _read(proc / "net" / "arp").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6 or fields[0] != gateway:
            continue
        if iface and fields[5] != iface:
            continue
        try:
            complete = int(fields[2], 16) & ATF_COM
        except ValueError:
            continue
        mac = _normalise_mac(fields[3]) if complete else ""
        if mac:
            return mac
    return ""


def macos_default_gateway(run: Runner) -> tuple[str, str] | None:
    """(gateway IPv4, interface) from `route -n get default`."""
    output = run(["route", "-n", "get", "default"])
    gateway = re.search(r"^\s*gateway:\s*(\S+)", output, re.MULTILINE)
    interface = re.search(r"^\s*interface:\s*(\S+)", output, re.MULTILINE)
    if gateway is None:
        return None
    try:
        socket.inet_aton(gateway.group(1))
    except OSError:
        return None  # a link-local "gateway" such as link#14: no router to identify
    return gateway.group(1), interface.group(1) if interface else ""


def macos_gateway_mac(run: Runner, gateway: str) -> str:
    """The gateway's MAC from `arp -n <gw>` ("(incomplete)" -> "")."""
    match = re.search(r"\bat\s+([0-9A-Fa-f:]+)(?:\s|$)", run(["arp", "-n", gateway]))
    return _normalise_mac(match.group(1)) if match else ""


def resolvers(resolv_conf: Path) -> list[str]:
    """Name servers listed in resolv.conf, sorted (a weak, secondary signal)."""
    found = set()
    for line in _read(resolv_conf).splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            found.add(fields[1])
    return sorted(found)


def _digest(salt: bytes, parts: Sequence[str]) -> str:
    data = salt + b"\0" + "\n".join(sorted(parts)).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:32]


def detect_network_id(
    salt: bytes,
    *,
    proc: Path | str = "/proc",
    resolv_conf: Path | str = "/etc/resolv.conf",
    run: Runner = run_command,
    system: str | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[str, str, str]:
    """(id, strength, hints) of the current network. $MISFIN_TUI_NETWORK overrides detection.

    strength is "strong" for a gateway MAC, "weak" for gateway IP + resolvers, "unknown" when
    nothing could be found. hints are for people (gateway IP, interface), never for decisions.
    """
    env = os.environ if environ is None else environ
    override = env.get(ENV_VAR, "").strip()
    if override:
        strength = "unknown" if override == UNKNOWN_ID else "strong"
        return override, strength, f"set by {ENV_VAR}"
    system = sys.platform if system is None else system
    if system == "darwin":
        route = macos_default_gateway(run)
        mac = macos_gateway_mac(run, route[0]) if route else ""
    elif system.startswith("linux"):
        route = linux_default_gateway(Path(proc))
        mac = linux_gateway_mac(Path(proc), route[0], route[1]) if route else ""
    else:
        route, mac = None, ""
    if route is None:
        return UNKNOWN_ID, "unknown", "no default route found"
    gateway, iface = route
    hints = f"gateway {gateway}" + (f" on {iface}" if iface else "")
    if mac:
        return _digest(salt, ["v4:" + mac]), "strong", hints
    servers = resolvers(Path(resolv_conf))
    parts = ["weak", "gw:" + gateway] + ["dns:" + s for s in servers]
    return _digest(salt, parts), "weak", hints + " (router address unknown: weak id)"


class Networks:
    """The networks registry over the database: detection, first/last seen, trusted or not."""

    def __init__(
        self,
        db: Database,
        *,
        proc: Path | str = "/proc",
        resolv_conf: Path | str = "/etc/resolv.conf",
        run: Runner = run_command,
        system: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.db = db
        self._proc = proc
        self._resolv_conf = resolv_conf
        self._run = run
        self._system = system
        self._environ = environ

    def salt(self) -> bytes:
        """This install's random salt, made on first use and kept in settings."""
        query = "SELECT value FROM settings WHERE key = ?"
        row = self.db.connect().execute(query, (SALT_KEY,)).fetchone()
        if row is None:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO settings(key, value) VALUES (?, ?)",
                    (SALT_KEY, secrets.token_hex(16)),
                )
                row = conn.execute(query, (SALT_KEY,)).fetchone()
        return bytes.fromhex(row["value"])

    def detect(self) -> tuple[str, str, str]:
        """(id, strength, hints) of the network now, with this install's salt."""
        return detect_network_id(
            self.salt(),
            proc=self._proc,
            resolv_conf=self._resolv_conf,
            run=self._run,
            system=self._system,
            environ=self._environ,
        )

    def current(self) -> Network:
        """The network the laptop is on now, recorded (first/last seen) unless it is unknown."""
        network_id, strength, hints = self.detect()
        if network_id == UNKNOWN_ID:
            return Network(UNKNOWN_ID, UNKNOWN_LABEL, False, "unknown", hints)
        now = utc_now()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO networks(id, strength, hints, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen,"
                " hints = excluded.hints, strength = excluded.strength",
                (network_id, strength, hints, now, now),
            )
        network = self.get(network_id)
        assert network is not None
        return network

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
    )
