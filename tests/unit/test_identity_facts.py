"""Loading an identity reads what its certificates say from facts.json, kept beside them.

The file is only a memo of what cryptography read: keyed by the certificates' bytes, private,
and never believed when it does not match them.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from misfin_tui.core.address import Address
from misfin_tui.core.identity import (
    CERT_FILE,
    FACTS_FILE,
    Identity,
    cert_pem,
    create_identity,
    load_identity,
    make_self_signed,
)

ALICE = Address.parse("alice@example.org")


def _made(tmp_path: Path, *, ca: bool = False) -> Identity:
    return create_identity(tmp_path, ALICE, "Alice", ca=ca).identity


def test_facts_are_private_and_loading_them_needs_no_cryptography(tmp_path: Path) -> None:
    identity = _made(tmp_path, ca=True)  # CA-signed: the issuer's fingerprint is kept too
    folder = identity.cert_path.parent
    facts = folder / FACTS_FILE
    assert stat.S_IMODE(facts.stat().st_mode) == 0o600
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from misfin_tui.core.identity import load_identity\n"
        f"i = load_identity(Path({str(folder)!r}))\n"
        "print(repr(i)); print('cryptography' in ' '.join(sys.modules))\n"
    )
    shown, imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert imported == "False"
    assert shown == repr(identity) and identity.issuer_fingerprint is not None


def test_a_replaced_certificate_is_read_afresh(tmp_path: Path) -> None:
    before = _made(tmp_path)
    cert, _ = make_self_signed("alice", "example.org", "Alice Renewed")
    before.cert_path.write_bytes(cert_pem(cert))
    after = load_identity(before.cert_path.parent)
    assert after.blurb == "Alice Renewed" and after.fingerprint != before.fingerprint
    assert load_identity(before.cert_path.parent) == after  # now from the renewed memo


def test_damaged_or_mismatched_facts_are_never_believed(tmp_path: Path) -> None:
    identity = _made(tmp_path)
    folder = identity.cert_path.parent
    facts = folder / FACTS_FILE
    good = json.loads(facts.read_text())
    forged = {**good, "address": "mallory@evil.example", "fingerprint": "0" * 64}
    for damage in (
        b"",
        b"\xff\xfe not json",
        b"[1, 2]",
        json.dumps({**good, "not_after": "yesterday"}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "blurb"}).encode(),
        json.dumps({**forged, "digest": "f" * 64}).encode(),  # facts of other certificates
    ):
        facts.write_bytes(damage)
        assert load_identity(folder) == identity, damage
        assert json.loads(facts.read_text()) == good  # and written again
    # Facts that match the bytes are believed: the memo is as private as the key beside it.
    facts.write_text(json.dumps(forged))
    assert str(load_identity(folder).address) == "mallory@evil.example"


def test_an_unwritable_memo_still_loads(tmp_path: Path) -> None:
    identity = _made(tmp_path)
    folder = identity.cert_path.parent
    (folder / FACTS_FILE).unlink()
    (folder / FACTS_FILE).mkdir()  # neither readable as a file nor replaceable
    assert load_identity(folder) == identity
    assert sorted(p.name for p in folder.iterdir()) == [CERT_FILE, FACTS_FILE, "key.pem"]
