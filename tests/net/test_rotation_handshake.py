"""After `identity rotate --ca` in another process, the very next handshake to the running
Misfin receiver and GMAP server presents the new host CA (not after the first request)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from helpers.gmap import serving
from helpers.profiles import make_profile
from helpers.raw_tls import client_context
from helpers.receivers import running

from misfin_tui.core.engine import Engine
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.notice import Reason
from misfin_tui.core.profile import Profile

ALICE = "alice@home.test"


def presented(port: int, sni: str) -> str:
    """The fingerprint of the certificate a handshake gets; no request is written."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context().wrap_socket(raw, server_hostname=sni) as tls,
    ):
        return fingerprint(tls.getpeercert(binary_form=True) or b"")


def test_the_first_handshake_after_a_rotation_presents_the_new_host_ca(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "home", ALICE, ca=True)
    old_ca = profile.identity(ALICE).issuer_fingerprint
    with running(profile) as receiver, serving(profile) as gmap_port:
        assert presented(receiver.port, "home.test") == old_ca
        assert presented(gmap_port, "home.test") == old_ca
        other = Engine(Profile.open(profile.config_dir))  # another process, as the CLI is
        try:
            rotation = other.rotate(ALICE, Reason.STOLEN, ca=True)
        finally:
            other.close()
        (rotated,) = rotation.rotated
        new_ca = rotated.new.issuer_fingerprint
        assert new_ca and new_ca != old_ca
        time.sleep(1.1)  # the servers look at the identities folder at most once a second
        assert presented(receiver.port, "home.test") == new_ca
        assert presented(gmap_port, "home.test") == new_ca
