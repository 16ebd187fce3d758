"""The trust store: host and mailbox pins over the shared database, with an append-only history.

Every change is written to the trust history, so "I accepted that by mistake" can always be
traced. Hosts are pinned by SPKI SHA-256, so a renewed certificate with the same key needs no
prompt. This module only keeps records; `policy.TrustPolicy` decides what may be written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address
from misfin_tui.core.clock import utc_now
from misfin_tui.core.database import Database
from misfin_tui.core.network import Network
from misfin_tui.core.trust.model import (
    HistoryEntry,
    HostPin,
    HostState,
    MailboxEvent,
    MailboxPin,
    MailboxState,
    Origin,
    PresentedCert,
    Revocation,
    Sighting,
    TrustError,
    Vouch,
)


class TrustStore:
    """Pins for hosts and mailboxes over the shared database, with an append-only history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ----- history ------------------------------------------------------------------------

    def log(self, kind: str, subject: str, event: str, detail: str = "", network: str = "") -> None:
        """Append one trust event (the table refuses updates and deletes)."""
        self.db.connect().execute(
            "INSERT INTO trust_history(at, kind, subject, event, detail, network)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), kind, subject, event, detail, network),
        )

    def history(self, limit: int = 500, subject: str | None = None) -> list[HistoryEntry]:
        """Newest first; optionally only the events of one host, address or network."""
        sql = "SELECT * FROM trust_history"
        args: tuple[str, ...] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            args = (subject,)
        rows = self.db.connect().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [HistoryEntry(*(row[k] for k in HistoryEntry.__dataclass_fields__)) for row in rows]

    # ----- hosts ----------------------------------------------------------------------------

    def host(self, hostport: str) -> HostPin | None:
        row = self.db.connect().execute("SELECT * FROM hosts WHERE hostport = ?", (hostport,))
        found = row.fetchone()
        return None if found is None else _host(found)

    def hosts(self) -> list[HostPin]:
        rows = self.db.connect().execute("SELECT * FROM hosts ORDER BY hostport")
        return [_host(row) for row in rows]

    def pin_host(
        self,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        origin: Origin,
        *,
        replace: bool = False,
    ) -> HostPin:
        """Pin the presented key as approved (a first contact, or a renewal with `replace`).

        Refuses (TrustError) to overrule a rejection (forget the host first) or to replace an
        approved key without `replace` (a changed key is replaced only by verify_host). A key
        merely learned while verifying is evidence, so an approval replaces it.
        """
        if not origin.approves:
            raise ValueError(f"pin_host records approvals, not {origin.value!r}")
        with self.db.transaction():
            pin = self.host(hostport)
            if pin is not None and pin.state is HostState.REJECTED:
                raise TrustError(f"{hostport} is rejected; forget it first to trust it again.")
            changed = pin is not None and pin.approved and pin.spki != presented.spki
            if changed and not replace:
                raise TrustError(
                    f"{hostport} presents a different key while the trusted one is still "
                    "valid; it can only be replaced by pasting the new fingerprint."
                )
            state = HostState.PINNED
            if pin is not None and pin.spki == presented.spki and pin.state is HostState.VERIFIED:
                state = HostState.VERIFIED  # trusting a key again never undoes its verification
                origin = pin.origin
            self._write_host(hostport, presented, network, state, origin, pin)
            if pin is None or not pin.approved:
                detail = f"key {presented.spki}, first contact ({origin.words})"
                if pin is not None and pin.spki == presented.spki:
                    detail += "; it had vouched for a sender before"
                self.log("host", hostport, "accepted", detail, network.id)
            elif changed:
                self.log(
                    "host",
                    hostport,
                    "replaced",
                    f"renewal accepted: key {pin.spki} -> {presented.spki}",
                    network.id,
                )
            else:
                self.log("host", hostport, "accepted", f"key {presented.spki}", network.id)
        return self._must_host(hostport)

    def learn_host(
        self, hostport: str, presented: PresentedCert, network: Network, sender: str
    ) -> None:
        """Record a key that vouched for a sender (it checked out): evidence, not approval.

        Only where nothing is recorded yet; an existing pin is never replaced this way.
        """
        now = utc_now()
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO hosts(hostport, spki, fingerprint, not_after, cert_der,"
                " state, protocol, first_seen, first_network, last_seen, last_network, origin,"
                " origin_network, vouched_for, vouched_at, vouched_network)"
                " VALUES (?, ?, ?, ?, ?, 'pinned', 'C', ?, ?, ?, ?, 'learned', ?, ?, ?, ?)",
                (
                    hostport,
                    presented.spki,
                    presented.fingerprint,
                    presented.not_after,
                    presented.der,
                    now,
                    network.id,
                    now,
                    network.id,
                    network.id,
                    sender,
                    now,
                    network.label,
                ),
            )
            if cursor.rowcount == 1:
                self.log(
                    "host",
                    hostport,
                    "learned",
                    f"key {presented.spki} vouched for {sender}; not approved for sending",
                    network.id,
                )

    def expire_learned(self, before: str) -> int:
        """Forget keys learned while verifying (hosts, and mailboxes never verified by a
        person) that no verified letter used since `before`: a stranger's forged letters
        leave nothing behind for long. Logged; returns how many were forgotten."""
        with self.db.transaction() as conn:
            hosts = conn.execute(
                "SELECT hostport FROM hosts WHERE origin = 'learned' AND last_seen < ?", (before,)
            ).fetchall()
            boxes = conn.execute(
                "SELECT address FROM mailboxes WHERE origin = 'learned' AND state = 'pinned'"
                " AND verified_at IS NULL AND last_seen < ?",
                (before,),
            ).fetchall()
            for (hostport,) in hosts:
                conn.execute("DELETE FROM hosts WHERE hostport = ?", (hostport,))
                self.log("host", hostport, "expired", "a learned key no letter used again")
            for (address,) in boxes:
                conn.execute("DELETE FROM mailboxes WHERE address = ?", (address,))
                self.log("mailbox", address, "expired", "a learned key no letter used again")
        return len(hosts) + len(boxes)

    def saw_host(
        self, hostport: str, presented: PresentedCert, network: Network, sender: str
    ) -> None:
        """The pinned key vouched again: last seen, and whom a learned key vouched for."""
        now = utc_now()
        self.db.connect().execute(
            "UPDATE hosts SET last_seen = ?, last_network = ?,"
            " vouched_for = CASE WHEN origin = 'learned' THEN ? ELSE vouched_for END,"
            " vouched_at = CASE WHEN origin = 'learned' THEN ? ELSE vouched_at END,"
            " vouched_network = CASE WHEN origin = 'learned' THEN ? ELSE vouched_network END"
            " WHERE hostport = ? AND spki = ?",
            (now, network.id, sender, now, network.label, hostport, presented.spki),
        )

    def saw_changed(
        self, hostport: str, presented: PresentedCert, network: Network, by: str
    ) -> bool:
        """Keep a key `hostport` presented that is not its pin beside the pin, which stays:
        evidence of a change for the person to review, never approval. True when it is news
        (not the key recorded last time), which the history logs.

        Only TrustPolicy.saw calls it. Nothing is kept for a server that is not pinned, is
        rejected, or presented its pinned key."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None or pin.state is HostState.REJECTED or pin.spki == presented.spki:
                return False
            news = pin.changed is None or pin.changed.presented.spki != presented.spki
            sighting = Sighting(presented, utc_now(), by, network.id, network.label)
            conn.execute(
                "UPDATE hosts SET changed = ? WHERE hostport = ?",
                (json.dumps(sighting.to_json()), hostport),
            )
            if news:
                self.log(
                    "host",
                    hostport,
                    "changed-seen",
                    f"presented key {presented.spki} instead of the pinned {pin.spki} while "
                    f"{by}; not approved, the pinned key stays",
                    network.id,
                )
        return news

    def keep_host(self, hostport: str, network: Network | None = None) -> bool:
        """The person reviewed a changed key and keeps the pinned one: the sighting is set
        aside (the history keeps which key it was). False when none was recorded."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None or pin.changed is None:
                return False
            conn.execute("UPDATE hosts SET changed = '' WHERE hostport = ?", (hostport,))
            self.log(
                "host",
                hostport,
                "kept",
                f"kept the pinned key {pin.spki}; the key {pin.changed.presented.spki} it "
                f"presented instead ({pin.changed.words}) is not trusted",
                network.id if network else "",
            )
        return True

    def accept_once(self, hostport: str, presented: PresentedCert, network: Network) -> None:
        """Record that one letter was allowed to this key without pinning it ("Send once")."""
        self.log("host", hostport, "accepted-once", f"key {presented.spki}", network.id)

    def touch_host(self, hostport: str, presented: PresentedCert, network: Network) -> HostPin:
        """Refresh a pin after MATCH or NEW_DATES: last seen, dates, fingerprint, certificate."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None or pin.spki != presented.spki:
                raise TrustError(f"{hostport} does not present its pinned key; nothing updated.")
            conn.execute(
                "UPDATE hosts SET fingerprint = ?, not_after = ?, cert_der = ?, last_seen = ?,"
                " last_network = ? WHERE hostport = ?",
                (
                    presented.fingerprint,
                    presented.not_after,
                    presented.der,
                    utc_now(),
                    network.id,
                    hostport,
                ),
            )
            if (pin.fingerprint, pin.not_after) != (presented.fingerprint, presented.not_after):
                self.log(
                    "host",
                    hostport,
                    "new-dates",
                    f"same key, certificate {presented.fingerprint} valid until "
                    f"{presented.not_after}",
                    network.id,
                )
        return self._must_host(hostport)

    def verify_host(
        self,
        hostport: str,
        pasted: str,
        presented: PresentedCert | None = None,
        network: Network | None = None,
    ) -> bool:
        """Verify by a pasted fingerprint (certificate or SPKI hash); True when it matched.

        Without `presented` the pasted value is checked against the stored pin (approved or
        learned). With it, a match against the presented certificate pins it as verified: on a
        first contact, a renewal, or a changed key — the only way to replace a valid pin.
        A paste that is no fingerprint (fingerprint.pasted()) is a TrustError, not a mismatch.
        """
        check_pasted(pasted)
        net_id = network.id if network else ""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is not None and pin.state is HostState.REJECTED:
                raise TrustError(f"{hostport} is rejected; forget it first to trust it again.")
            if presented is None:
                if pin is None:
                    raise TrustError(f"{hostport} is not known; connect to it first.")
                target_fp, target_spki = pin.fingerprint, pin.spki
            else:
                target_fp, target_spki = presented.fingerprint, presented.spki
            if not (
                fingerprint.matches(pasted, target_fp) or fingerprint.matches(pasted, target_spki)
            ):
                self.log(
                    "host", hostport, "verify-failed", f"pasted {pasted.strip()[:80]!r}", net_id
                )
                return False
            if presented is None or (pin is not None and pin.spki == presented.spki):
                conn.execute(
                    "UPDATE hosts SET state = 'verified', origin = 'pasted', origin_network = ?"
                    " WHERE hostport = ?",
                    (net_id, hostport),
                )
                if presented is not None and network is not None:
                    self.touch_host(hostport, presented, network)
                self.log("host", hostport, "verified", f"key {target_spki}", net_id)
                return True
            net = network or Network(net_id, "", False, "unknown")
            self._write_host(hostport, presented, net, HostState.VERIFIED, Origin.PASTED, pin)
            if pin is None or not pin.approved:
                self.log(
                    "host", hostport, "verified", f"key {presented.spki}, first contact", net_id
                )
            else:
                self.log(
                    "host",
                    hostport,
                    "replaced",
                    f"verified by a pasted fingerprint: key {pin.spki} -> {presented.spki}",
                    net_id,
                )
        return True

    def reject_host(
        self,
        hostport: str,
        presented: PresentedCert | None = None,
        network: Network | None = None,
    ) -> None:
        """Never send to this server again (until forgotten)."""
        net_id = network.id if network else ""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None:
                if presented is None:
                    raise TrustError(f"{hostport} is not known; there is nothing to reject.")
                net = network or Network(net_id, "", False, "unknown")
                self._write_host(
                    hostport, presented, net, HostState.REJECTED, Origin.APPROVED, None
                )
            else:
                conn.execute("UPDATE hosts SET state = 'rejected' WHERE hostport = ?", (hostport,))
            self.log("host", hostport, "rejected", "", net_id)

    def forget_host(self, hostport: str) -> bool:
        """Remove the pin: the next letter is a first contact again. Logged."""
        with self.db.transaction() as conn:
            pin = self.host(hostport)
            if pin is None:
                return False
            conn.execute("DELETE FROM hosts WHERE hostport = ?", (hostport,))
            self.log("host", hostport, "forgotten", f"was {pin.state.value}, key {pin.spki}")
        return True

    def set_protocol(self, hostport: str, protocol: str) -> None:
        """Remember that a server speaks only Misfin B ("B"), or C again ("C")."""
        if protocol not in ("B", "C"):
            raise ValueError(f"protocol must be 'B' or 'C', not {protocol!r}")
        self.db.connect().execute(
            "UPDATE hosts SET protocol = ? WHERE hostport = ?", (protocol, hostport)
        )

    def _write_host(
        self,
        hostport: str,
        presented: PresentedCert,
        network: Network,
        state: HostState,
        origin: Origin,
        previous: HostPin | None,
    ) -> None:
        now = utc_now()
        first_seen = previous.first_seen if previous else now
        first_network = previous.first_network if previous else network.id
        protocol = previous.protocol if previous else "C"
        note = previous.note if previous else ""
        self.db.connect().execute(
            "INSERT OR REPLACE INTO hosts(hostport, spki, fingerprint, not_after, cert_der, state,"
            " protocol, first_seen, first_network, last_seen, last_network, note, origin,"
            " origin_network) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                hostport,
                presented.spki,
                presented.fingerprint,
                presented.not_after,
                presented.der,
                state.value,
                protocol,
                first_seen,
                first_network,
                now,
                network.id,
                note,
                origin.value,
                network.id,
            ),
        )

    def _must_host(self, hostport: str) -> HostPin:
        pin = self.host(hostport)
        if pin is None:
            raise TrustError(f"{hostport} is not known.")
        return pin

    # ----- mailboxes ------------------------------------------------------------------------

    def mailbox(self, address: str) -> MailboxPin | None:
        key = _address_key(address)
        row = self.db.connect().execute("SELECT * FROM mailboxes WHERE address = ?", (key,))
        found = row.fetchone()
        return None if found is None else self._mailbox(found)

    def mailboxes(self) -> list[MailboxPin]:
        rows = self.db.connect().execute("SELECT * FROM mailboxes ORDER BY address")
        return [self._mailbox(row) for row in rows]

    def record_mailbox(
        self,
        address: str,
        reported: str,
        origin: Origin,
        issuer_spki: str = "",
        blurb: str = "",
    ) -> MailboxEvent:
        """Record a mailbox fingerprint from a 20 answer (DELIVERY) or a verified sender (LEARNED).

        FIRST: pinned now. MATCH: as pinned. ROTATION: changed, but issued by the same host CA
        as before (issuer_spki equal and non-empty): the pin moves on and it is logged; if the
        person had verified the old key, sends wait for re-verification. ALARM: changed
        otherwise: the old key stays pinned, the new one is kept in alarm_fingerprint, sends
        wait. A fingerprint learned under a server key the person never approved gives way to
        what their approved server reports on delivery.
        """
        key = _address_key(address)
        try:
            new = fingerprint.parse(reported)
        except fingerprint.NotAFingerprint as exc:
            raise TrustError(str(exc)) from None
        issuer = issuer_spki.strip().lower()
        now = utc_now()
        with self.db.transaction() as conn:
            if self.revocation(key, new) is not None:
                self.log("mailbox", key, "revoked-seen", f"fingerprint {new} is retired; refused")
                return MailboxEvent.REVOKED
            pin = self.mailbox(key)
            if pin is None:
                conn.execute(
                    "INSERT INTO mailboxes(address, fingerprint, issuer_spki, state, blurb,"
                    " first_seen, last_seen, origin) VALUES (?, ?, ?, 'pinned', ?, ?, ?, ?)",
                    (key, new, issuer, blurb, now, now, origin.value),
                )
                self.log("mailbox", key, "first-seen", f"fingerprint {new} ({origin.words})")
                return MailboxEvent.FIRST
            if new == pin.fingerprint:
                conn.execute(
                    "UPDATE mailboxes SET last_seen = ?,"
                    " blurb = CASE WHEN ? = '' THEN blurb ELSE ? END,"
                    " issuer_spki = CASE WHEN issuer_spki = '' THEN ? ELSE issuer_spki END,"
                    " origin = CASE WHEN origin = 'learned' THEN ? ELSE origin END"
                    " WHERE address = ?",
                    (now, blurb, blurb, issuer, origin.value, key),
                )
                return MailboxEvent.MATCH
            learned_elsewhere = (
                pin.origin is Origin.LEARNED
                and origin is Origin.DELIVERY
                and pin.state is MailboxState.PINNED
                and not pin.verified_at
                and issuer != pin.issuer_spki
            )
            if learned_elsewhere:
                conn.execute(
                    "UPDATE mailboxes SET fingerprint = ?, issuer_spki = ?, origin = ?,"
                    " last_seen = ? WHERE address = ?",
                    (new, issuer, origin.value, now, key),
                )
                self.log(
                    "mailbox",
                    key,
                    "replaced",
                    f"fingerprint {pin.fingerprint} was only seen while verifying a sender, under "
                    f"a server key you never approved; your approved server reports {new}",
                )
                return MailboxEvent.FIRST
            if pin.state is MailboxState.ALARM:
                if new != pin.alarm_fingerprint:
                    conn.execute(
                        "UPDATE mailboxes SET alarm_fingerprint = ? WHERE address = ?", (new, key)
                    )
                    self.log("mailbox", key, "alarm", _alarm_detail(new, pin.fingerprint))
                return MailboxEvent.ALARM
            if pin.state is not MailboxState.REJECTED and issuer and issuer == pin.issuer_spki:
                # A verified mailbox that rotated keeps verified_at but drops to "pinned":
                # blocked() holds sends until the person re-verifies or unverifies.
                state = MailboxState.PINNED if pin.state is MailboxState.VERIFIED else pin.state
                conn.execute(
                    "UPDATE mailboxes SET fingerprint = ?, state = ?, last_seen = ?,"
                    " blurb = CASE WHEN ? = '' THEN blurb ELSE ? END WHERE address = ?",
                    (new, state.value, now, blurb, blurb, key),
                )
                self.log(
                    "mailbox",
                    key,
                    "rotated",
                    f"new fingerprint {new} (was {pin.fingerprint}), issued by the same "
                    f"server key {issuer}",
                )
                return MailboxEvent.ROTATION
            if pin.state is not MailboxState.REJECTED:
                conn.execute(
                    "UPDATE mailboxes SET state = 'alarm', alarm_fingerprint = ?, last_seen = ?"
                    " WHERE address = ?",
                    (new, now, key),
                )
            self.log("mailbox", key, "alarm", _alarm_detail(new, pin.fingerprint))
            return MailboxEvent.ALARM

    def follow_issuer(
        self, hostport: str, old_spki: str, new_spki: str, network: str = ""
    ) -> list[str]:
        """The person replaced `hostport`'s approved key `old_spki` by `new_spki`: the mailboxes
        of that host whose certificates it issued are judged against the new key from now on
        (a new certificate reported under it is a rotation, not an alarm). Pins issued by any
        other key, or by none, keep theirs. Logged; returns the addresses that moved on.

        Only TrustPolicy calls it, right after an approval replaced the key."""
        host = (hostport.rpartition(":")[0] or hostport).lower()
        old, new = old_spki.strip().lower(), new_spki.strip().lower()
        if not old or not new or old == new:
            return []
        moved: list[str] = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT address FROM mailboxes WHERE issuer_spki = ?", (old,)
            ).fetchall()
            for (address,) in rows:
                if address.rpartition("@")[2].lower() != host:
                    continue  # a host CA speaks only for its own host's mailboxes
                conn.execute(
                    "UPDATE mailboxes SET issuer_spki = ? WHERE address = ?", (new, address)
                )
                self.log(
                    "mailbox",
                    address,
                    "issuer-replaced",
                    f"issued by server key {old}, which you replaced by {new} for {hostport}; "
                    "a new certificate issued by the new key is a rotation",
                    network,
                )
                moved.append(address)
        return moved

    def blocked(self, address: str) -> str | None:
        """Why letters to this address must wait for the person, or None when they may go."""
        pin = self.mailbox(address)
        if pin is None:
            return None
        if pin.state is MailboxState.REJECTED:
            return f"You rejected {pin.address}; letters to it are not sent."
        if pin.state is MailboxState.GONE:
            return f"{pin.address} no longer exists (its server answered 52); nothing is sent."
        if pin.state is MailboxState.ALARM:
            return (
                f"The server reported a different key for {pin.address} than the one you "
                "trusted, and it is not issued by the same server key. Letters to this "
                "address are paused until you review it in Trust (paste the fingerprint "
                "the person gives you to verify it)."
            )
        if pin.state is MailboxState.PINNED and pin.verified_at:
            return (
                f"You had verified {pin.address}, and its key has changed since (still "
                "issued by the same server). Re-verify it by pasting its fingerprint, or "
                "send as unverified."
            )
        return None

    def verify_mailbox(self, address: str, pasted: str) -> bool:
        """Verify by a pasted fingerprint: the pinned one or, during an alarm, the new one.

        A match pins that fingerprint as verified and ends an alarm. Mismatches are logged.
        """
        key = _address_key(address)
        check_pasted(pasted)
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                raise TrustError(f"{key} is not known yet; send to it or receive from it first.")
            if fingerprint.matches(pasted, pin.fingerprint):
                chosen, event = pin.fingerprint, "verified"
            elif pin.alarm_fingerprint and fingerprint.matches(pasted, pin.alarm_fingerprint):
                chosen, event = pin.alarm_fingerprint, "replaced"
            else:
                self.log("mailbox", key, "verify-failed", f"pasted {pasted.strip()[:80]!r}")
                return False
            conn.execute(
                "UPDATE mailboxes SET fingerprint = ?, state = 'verified', verified_at = ?,"
                " alarm_fingerprint = '', origin = 'pasted' WHERE address = ?",
                (chosen, utc_now(), key),
            )
            detail = f"fingerprint {chosen} verified by paste"
            if event == "replaced":
                detail = f"fingerprint {pin.fingerprint} -> {chosen}, verified by paste"
            self.log("mailbox", key, event, detail)
        return True

    def unverify_mailbox(self, address: str) -> None:
        """Keep the current key but as unverified ("send as unverified" after a rotation)."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self._must_mailbox(key)
            if pin.state not in (MailboxState.VERIFIED, MailboxState.PINNED):
                raise TrustError(f"{key} is {pin.state.value}; review it in Trust instead.")
            conn.execute(
                "UPDATE mailboxes SET state = 'pinned', verified_at = NULL WHERE address = ?",
                (key,),
            )
            self.log("mailbox", key, "unverified", f"fingerprint {pin.fingerprint}")

    def resolve_alarm(self, address: str) -> bool:
        """Accept the new key of an alarm as pinned (unverified), without a paste.

        Allowed only when the old key was never verified; a verified mailbox needs
        verify_mailbox with the pasted fingerprint. False when there was nothing to accept.
        """
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self._must_mailbox(key)
            if pin.state is not MailboxState.ALARM or not pin.alarm_fingerprint:
                return False
            if pin.verified_at:
                raise TrustError(
                    f"You had verified {key}; paste the new fingerprint to accept its new key."
                )
            conn.execute(
                "UPDATE mailboxes SET fingerprint = ?, state = 'pinned', alarm_fingerprint = ''"
                " WHERE address = ?",
                (pin.alarm_fingerprint, key),
            )
            self.log(
                "mailbox",
                key,
                "accepted",
                f"new key accepted unverified: {pin.fingerprint} -> {pin.alarm_fingerprint}",
            )
        return True

    def reject_mailbox(self, address: str) -> None:
        key = _address_key(address)
        with self.db.transaction() as conn:
            self._must_mailbox(key)
            conn.execute("UPDATE mailboxes SET state = 'rejected' WHERE address = ?", (key,))
            self.log("mailbox", key, "rejected")

    def forget_mailbox(self, address: str) -> bool:
        """Remove the pin (and the nickname): the next answer is a first contact. Logged."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                return False
            conn.execute("DELETE FROM mailboxes WHERE address = ?", (key,))
            self.log(
                "mailbox", key, "forgotten", f"was {pin.state.value}, fingerprint {pin.fingerprint}"
            )
        return True

    def set_nickname(self, address: str, nickname: str) -> None:
        key = _address_key(address)
        with self.db.transaction() as conn:
            self._must_mailbox(key)
            conn.execute(
                "UPDATE mailboxes SET nickname = ? WHERE address = ?", (nickname.strip(), key)
            )

    def record_check(self, address: str, result: str, *, succeeded: bool = False) -> None:
        """The receiver's verdict on a sender, cached on its pin; a success also stamps
        checked_at, which decides when the sender's server is asked again."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            if succeeded:
                conn.execute(
                    "UPDATE mailboxes SET checked_at = ?, check_result = ? WHERE address = ?",
                    (utc_now(), result, key),
                )
            else:
                conn.execute(
                    "UPDATE mailboxes SET check_result = ? WHERE address = ?", (result, key)
                )

    # ----- retired fingerprints and gone mailboxes -----------------------------------------

    def revoke(
        self,
        address: str,
        fp: str,
        why: str,
        *,
        announced: str = "",
        announced_ca: str = "",
        notice_at: str = "",
        letter_id: int | None = None,
    ) -> bool:
        """Retire a mailbox fingerprint for good; False when it already was (nothing changes).

        A pin on that fingerprint stays (it is who the person knows) but its cached check is
        dropped, so no letter signed with it is taken from the cache again."""
        key = _address_key(address)
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO revoked_fingerprints(address, fingerprint, at, why,"
                " announced, announced_ca, notice_at, letter_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, fp, utc_now(), why, announced, announced_ca, notice_at, letter_id),
            )
            if cursor.rowcount != 1:
                return False
            conn.execute(
                "UPDATE mailboxes SET check_result = 'revoked', checked_at = NULL"
                " WHERE address = ? AND fingerprint = ?",
                (key, fp),
            )
            detail = f"fingerprint {fp} retired ({why}); never accepted again"
            if announced:
                detail += (
                    f"; the notice names {announced} as its successor, trusted only once a "
                    "letter comes with it and its server confirms it"
                )
            self.log("mailbox", key, "revoked", detail)
        return True

    def revocation(self, address: str, fp: str) -> Revocation | None:
        row = (
            self.db.connect()
            .execute(
                "SELECT * FROM revoked_fingerprints WHERE address = ? AND fingerprint = ?",
                (_address_key(address), fp),
            )
            .fetchone()
        )
        return None if row is None else _revocation(row)

    def revocations(self, address: str | None = None) -> list[Revocation]:
        """Retired fingerprints, newest first (of one address, or all)."""
        sql = "SELECT * FROM revoked_fingerprints"
        args: tuple[str, ...] = ()
        if address is not None:
            sql, args = sql + " WHERE address = ?", (_address_key(address),)
        rows = self.db.connect().execute(sql + " ORDER BY at DESC", args)
        return [_revocation(row) for row in rows]

    def mark_gone(self, address: str, detail: str) -> None:
        """Its server answered 52: the mailbox is gone; letters to it are never retried."""
        key = _address_key(address)
        now = utc_now()
        with self.db.transaction() as conn:
            pin = self.mailbox(key)
            if pin is None:
                conn.execute(
                    "INSERT INTO mailboxes(address, fingerprint, state, first_seen, last_seen)"
                    " VALUES (?, '', 'gone', ?, ?)",
                    (key, now, now),
                )
            elif pin.state is MailboxState.GONE:
                return
            else:
                conn.execute(
                    "UPDATE mailboxes SET state = 'gone', last_seen = ? WHERE address = ?",
                    (now, key),
                )
            self.log("mailbox", key, "gone", detail)

    # ----- the address book ----------------------------------------------------------------

    def record_move(self, old: str, new: str) -> None:
        """`old` moved for good to `new` (a 31 the person followed): the address book offers
        `new` under the name `old` had, and no longer `old`. Entries that pointed at `old` now
        point at `new`; moving back to an old address makes it an entry of its own again.

        Only the address book changes: no pin is made, copied or changed, so the new server's
        key and the new mailbox's fingerprint are decided about as for anyone new. Logged.
        """
        old_key, new_addr = _address_key(old), Address.parse(new)
        if new_addr.key == old_key:
            return
        now = utc_now()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM moved_mailboxes WHERE address = ?", (new_addr.key,))
            for address, moved_to in self.moves().items():
                if Address.parse(moved_to).key == old_key:
                    conn.execute(
                        "UPDATE moved_mailboxes SET moved_to = ?, at = ? WHERE address = ?",
                        (new_addr.display, now, address),
                    )
            conn.execute(
                "INSERT OR REPLACE INTO moved_mailboxes(address, moved_to, at) VALUES (?, ?, ?)",
                (old_key, new_addr.display, now),
            )
            self.log("mailbox", old_key, "moved", f"now {new_addr.display}")
            pin, new_pin = self.mailbox(old_key), self.mailbox(new_addr.key)
            if pin is not None and pin.nickname and new_pin is not None and not new_pin.nickname:
                conn.execute(
                    "UPDATE mailboxes SET nickname = ? WHERE address = ?",
                    (pin.nickname, new_addr.key),
                )

    def moves(self) -> dict[str, str]:
        """Old address (a mailboxes key) -> the address it moved to for good."""
        rows = self.db.connect().execute("SELECT address, moved_to FROM moved_mailboxes")
        return {row["address"]: row["moved_to"] for row in rows}

    def moved_to(self, address: str) -> str | None:
        """Where `address` moved for good, when a followed 31 said so."""
        return self.moves().get(_address_key(address))

    def contacts(self, correspondents: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """The address book for compose completion: (address, nickname, blurb) of every mailbox
        not rejected, then each of `correspondents` not already there (no nickname or blurb).

        A mailbox that moved for good is offered at its new address, under its name when the
        new one has none, and its old address is not offered any more (nor as a correspondent).
        Each address once, ignoring case.
        """
        pins = {pin.address: pin for pin in self.mailboxes()}
        moves = self.moves()
        named: dict[str, MailboxPin] = {}  # a new address -> the pin of what moved there
        for old, new in sorted(moves.items()):
            pin = pins.get(old)
            if pin is not None and pin.state is not MailboxState.REJECTED:
                named.setdefault(Address.parse(new).key, pin)
        result: list[tuple[str, str, str]] = []
        seen: set[str] = set()

        def add(address: str, pin: MailboxPin | None) -> None:
            if address.lower() in seen:
                return
            seen.add(address.lower())
            key = Address.parse(address).key if Address.is_valid(address) else address
            own, before = pins.get(key), named.get(key)
            if own is not None and own.state is MailboxState.REJECTED:
                return
            nickname = next((p.nickname for p in (own, before, pin) if p and p.nickname), "")
            blurb = next((p.blurb for p in (own, before, pin) if p and p.blurb), "")
            result.append((address, nickname, blurb))

        spelled = {Address.parse(new).key: new for new in moves.values()}  # with its port
        for address, pin in pins.items():
            if pin.state is not MailboxState.REJECTED:
                add(moves.get(address) or spelled.get(address, address), pin)
        for old, new in sorted(moves.items()):
            if old not in pins:
                add(new, None)
        for address in correspondents:
            key = Address.parse(address).key if Address.is_valid(address) else ""
            add(moves.get(key, address), None)
        return result

    def _mailbox(self, row: sqlite3.Row) -> MailboxPin:
        return MailboxPin(
            address=row["address"],
            fingerprint=row["fingerprint"],
            issuer_spki=row["issuer_spki"],
            state=MailboxState(row["state"]),
            blurb=row["blurb"],
            nickname=row["nickname"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            verified_at=row["verified_at"],
            checked_at=row["checked_at"],
            check_result=row["check_result"],
            alarm_fingerprint=row["alarm_fingerprint"],
            origin=Origin(row["origin"]),
        )

    def _must_mailbox(self, key: str) -> MailboxPin:
        pin = self.mailbox(key)
        if pin is None:
            raise TrustError(f"{key} is not known.")
        return pin


def _revocation(row: sqlite3.Row) -> Revocation:
    return Revocation(
        address=row["address"],
        fingerprint=row["fingerprint"],
        at=row["at"],
        why=row["why"],
        announced=row["announced"],
        announced_ca=row["announced_ca"],
        notice_at=row["notice_at"],
        letter_id=row["letter_id"],
    )


def _alarm_detail(new: str, old: str) -> str:
    return f"reported {new} instead of the pinned {old}"


def check_pasted(pasted: str) -> None:
    """A paste that is no fingerprint at all is refused saying what one looks like (TrustError),
    never compared and reported as a mismatch with the key."""
    try:
        fingerprint.pasted(pasted)
    except fingerprint.NotAFingerprint as exc:
        raise TrustError(f"{exc}; nothing was changed") from None


def _address_key(address: str) -> str:
    """Mailboxes are keyed "mailbox@host" in lower case (servers match mailboxes that way)."""
    return address.strip().lower()


def _host(row: sqlite3.Row) -> HostPin:
    vouch = None
    if row["vouched_for"]:
        vouch = Vouch(row["vouched_for"], row["vouched_at"], row["vouched_network"])
    changed = None
    if row["changed"]:
        try:
            changed = Sighting.from_json(json.loads(row["changed"]))
        except (ValueError, KeyError, TypeError):  # unreadable evidence is no pin change
            changed = None
    return HostPin(
        hostport=row["hostport"],
        spki=row["spki"],
        fingerprint=row["fingerprint"],
        not_after=row["not_after"],
        state=HostState(row["state"]),
        protocol=row["protocol"],
        first_seen=row["first_seen"],
        first_network=row["first_network"],
        last_seen=row["last_seen"],
        last_network=row["last_network"],
        origin=Origin(row["origin"]),
        origin_network=row["origin_network"],
        vouch=vouch,
        note=row["note"],
        cert_der=row["cert_der"],
        changed=changed,
    )
