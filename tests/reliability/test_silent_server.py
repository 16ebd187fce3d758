"""A server that accepts the TLS handshake and then never answers, and a client killed mid-send.

- The outbox's send times out (bounded by deliver_timeout) and the letter is deferred, still in
  the Outbox folder, with a retry time and the reason.
- `misfin-tui send` killed with SIGKILL while it waits for the answer: after a restart the
  letter is still in the outbox, and it is delivered once a real receiver is there.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from helpers.certs import CertAndKey
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import RECIPIENT, trust_network
from helpers.receivers import stored_subjects

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.outbox import State
from misfin_tui.core.outbox import outbox as outbox_module
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust.model import Policy

DELIVER_TIMEOUT = 2.0


@pytest.mark.timeout(60)
async def test_a_silent_server_times_out_and_the_letter_is_deferred(sender, silent_server):
    profile = sender
    trust_network(profile)
    engine = Engine(profile, probe_timeout=DELIVER_TIMEOUT, deliver_timeout=DELIVER_TIMEOUT)
    outbox = engine.outbox
    letter_id = outbox.enqueue(
        "Are you there?\n",
        [Address.parse(RECIPIENT)],
        subject="silence",
        connect=f"127.0.0.1:{silent_server.port}",
    )
    began = time.monotonic()
    [item] = await outbox.process(policy=Policy.ACCEPT_NEW)
    took = time.monotonic() - began

    assert len(silent_server.requests) == 1, "the letter was never written to the server"
    assert item.state is State.DEFERRED, item
    assert item.next_attempt_at, "a deferred letter needs a retry time"
    assert "answer" in item.reason, item.reason
    assert took < DELIVER_TIMEOUT * 3, f"the send waited {took:.1f} s on a silent server"
    assert MailStore(profile.database()).get(letter_id).folder == "Outbox"


@pytest.mark.timeout(90)
def test_a_client_killed_mid_send_keeps_the_letter(
    request, tmp_path, setup, receiver_process, monkeypatch, sender
):
    folder = sender.config_dir
    trust_network(sender)
    bob = setup.profile().identity()
    # Silent, but with the real receiver's key: the pin made now still holds after the restart.
    silent_server = FixtureReceiver(CertAndKey.load(bob.cert_path, bob.key_path), silent=True)
    request.addfinalizer(silent_server.stop)
    send = subprocess.Popen(
        [sys.executable, "-m", "misfin_tui", "--profile", str(folder), "send"]
        + ["--to", RECIPIENT, "--subject", "interrupted", "--trust-new", "--no-input"]
        + ["--connect", f"127.0.0.1:{silent_server.port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert send.stdin is not None
    send.stdin.write(b"Hello before the crash.\n")
    send.stdin.close()
    assert silent_server.request_seen.wait(30), "the send never reached the server"
    send.send_signal(signal.SIGKILL)  # mid-send: the request is written, no answer yet
    send.wait(timeout=10)
    assert send.returncode == -signal.SIGKILL

    profile = Profile.open(folder)  # "restart"
    store = MailStore(profile.database())
    [letter] = store.summaries("Outbox")
    assert letter.subject == "interrupted"
    [item] = Engine(profile).outbox.items()
    assert item.state in (State.SENDING, State.QUEUED), item

    # Once the crashed attempt is stale it is sent again; here, to a real receiver.
    monkeypatch.setattr(outbox_module, "STALE_SENDING", timedelta(0))
    time.sleep(1.1)  # times have one-second resolution
    receiver = receiver_process(setup.profile_dir)
    outbox = Engine(Profile.open(folder)).outbox
    [item] = outbox.items()
    assert item.state is State.QUEUED, item
    # The server is back (at another port: this send's --connect override follows it).
    outbox.db.connect().execute(
        "UPDATE outbox SET connect = ? WHERE id = ?", (f"127.0.0.1:{receiver.port}", item.id)
    )
    [item] = asyncio.run(outbox.process(policy=Policy.ACCEPT_NEW))
    assert item.state is State.DELIVERED, item
    assert store.summaries("Sent")[0].subject == "interrupted"
    assert receiver.stop() == 0
    assert "interrupted" in stored_subjects(setup.profile_dir)
