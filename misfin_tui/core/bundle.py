"""One identity on two machines: a passphrase-protected bundle to carry it from home to laptop.

The bundle is PEM text: the mailbox certificate, its private key encrypted with the
passphrase (PKCS#8, the best encryption `cryptography` offers), the host CA's certificate
when the identity has one, and the CA's key (encrypted too) only when asked for: a laptop
that only reads and sends needs no power to sign new mailboxes. A header line records where
home's GMAP is, and import writes it into [gmap] in config.toml. Nothing is overwritten,
except an identity by its rotated successor (the bundle exported at home after `identity
rotate`: a newer certificate its host CA signed) or, with `replace`, by any certificate for the
same address; the old one is then kept retired, as rotation keeps it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from misfin_tui.core.address import parse_hostport
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.gmap.sync import home_for
from misfin_tui.core.identity import (
    CA_CERT_FILE,
    CA_DIR,
    CA_KEY_FILE,
    CertInfo,
    Identity,
    IdentityError,
    PassphraseRequired,
    cert_info,
    cert_pem,
    is_signed_by,
    key_matches,
    key_pem,
    load_certificates,
    load_private_key,
    write_private,
)
from misfin_tui.core.profile import RETIRED_DIR

if TYPE_CHECKING:
    from misfin_tui.core.identity import Identity
    from misfin_tui.core.profile import Profile

MAGIC = "Misfin-TUI-Identity-Bundle: 1"
PASSPHRASE_MIN = 8
_HOME_RE = re.compile(r"^Home-GMAP: (\S+)$", re.MULTILINE)
_KEY_BLOCK = re.compile(
    rb"-----BEGIN ENCRYPTED PRIVATE KEY-----.+?-----END ENCRYPTED PRIVATE KEY-----\s*", re.DOTALL
)


class BundleError(IdentityError):
    """The bundle cannot be written or read; the message says why."""


@dataclass(frozen=True)
class Imported:
    identity: Identity
    with_ca: bool  # the host CA's key came along (this profile can sign new mailboxes)
    home: str  # host:port of home's GMAP now in [gmap]
    retired: Identity | None = None  # the certificate this one replaced (kept retired)


def _encrypted(key: Any, passphrase: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return data


def check_export(profile: Profile, address: str, path: Path, *, with_ca: bool = False) -> Identity:
    """The identity export_bundle would write, or the reason it cannot (no such identity, no
    host CA for --with-ca, `path` already there): before a passphrase is asked for."""
    identity = profile.identity(address)
    if with_ca and (
        len(load_certificates(identity.chain_path)) < 2
        or profile.host_ca(identity.address.host) is None
    ):
        raise BundleError(f"{identity.address} has no host CA in this profile to export")
    if os.path.lexists(path):
        raise BundleError(f"{path} already exists; it is never overwritten")
    return identity


def export_bundle(
    profile: Profile, address: str, path: Path, passphrase: bytes, *, with_ca: bool = False
) -> Path:
    """Write ADDRESS's identity to `path` (mode 0600, never over an existing file)."""

    if len(passphrase) < PASSPHRASE_MIN:
        raise BundleError(f"the passphrase must have at least {PASSPHRASE_MIN} characters")
    identity = check_export(profile, address, path, with_ca=with_ca)
    leaf = load_certificates(identity.cert_path)[0]
    key = load_private_key(identity.key_path)
    chain = load_certificates(identity.chain_path)
    ca_cert = chain[1] if len(chain) > 1 else None
    ca_paths = profile.host_ca(identity.address.host)
    home = home_for(profile, identity).hostport
    parts = [
        f"{MAGIC}\nAddress: {identity.address}\nHome-GMAP: {home}\n".encode(),
        cert_pem(leaf),
        _encrypted(key, passphrase),
    ]
    if ca_cert is not None:
        parts.append(cert_pem(ca_cert))
    if with_ca and ca_paths is not None:
        parts.append(_encrypted(load_private_key(ca_paths[1]), passphrase))
    try:
        write_private(path, b"".join(parts))
    except FileExistsError:
        raise BundleError(f"{path} already exists; it is never overwritten") from None
    return path


def import_bundle(
    profile: Profile, path: Path, passphrase: bytes | None, *, replace: bool = False
) -> Imported:
    """Bring a bundle's identity (and CA key, when it has one) into the profile.

    An identity already here for that address is replaced only by its rotated successor (a
    newer certificate signed by the host CA that signed it), or by any with `replace`; the old
    certificate is kept retired (Imported.retired). A certificate retired here is never taken
    back. PassphraseRequired when `passphrase` is None; BundleError for a wrong passphrase, a
    bundle whose parts do not belong together, or an identity it may not replace.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc.strerror or exc})") from None
    text = data.decode("utf-8", "replace")
    if not text.startswith(MAGIC):
        raise BundleError(f"{path}: not a misfin-tui identity bundle")
    if passphrase is None:
        raise PassphraseRequired(f"{path}: the bundle is protected by a passphrase")
    certs = load_certificates(path)
    blocks = _KEY_BLOCK.findall(data)
    if not blocks or len(blocks) > 2:
        raise BundleError(f"{path}: expected one or two encrypted keys, found {len(blocks)}")
    keys = [_decrypt(block, passphrase, path) for block in blocks]
    leaf = next((c for c in certs if key_matches(c, keys[0])), None)
    if leaf is None:
        raise BundleError(f"{path}: the key does not belong to the certificate")
    ca_cert = next((c for c in certs if c is not leaf), None)
    if ca_cert is not None and not is_signed_by(leaf, ca_cert):
        raise BundleError(f"{path}: the host CA certificate did not sign the mailbox certificate")
    ca_key = keys[1] if len(keys) == 2 else None
    if ca_key is not None and (ca_cert is None or not key_matches(ca_cert, ca_key)):
        raise BundleError(f"{path}: the CA key does not belong to the host CA certificate")
    try:
        info = cert_info(leaf)
    except IdentityError as exc:
        raise BundleError(f"{path}: {exc}") from None
    old = _replacing(profile, path, info, ca_cert, replace)
    if ca_key is not None and ca_cert is not None:
        _check_ca(profile, info.host, ca_cert, replace)
    work = Path(tempfile.mkdtemp(prefix="misfin-bundle-"))
    try:
        write_private(work / "cert.pem", cert_pem(leaf) + (cert_pem(ca_cert) if ca_cert else b""))
        write_private(work / "key.pem", key_pem(keys[0]))
        if old is None:
            identity = profile.import_identity(work / "cert.pem", work / "key.pem")
        else:
            identity = profile.replace_identity(old, work / "cert.pem", work / "key.pem")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if ca_key is not None and ca_cert is not None:
        _adopt_ca(profile, identity.address.host, ca_cert, ca_key, replace=replace)
    home = _record_home(profile, identity, text)
    if old is None:
        return Imported(identity, ca_key is not None, home)
    retired = profile.retired_identity(str(old.address), old.fingerprint)
    _record_retired(profile, retired, identity)
    return Imported(identity, ca_key is not None, home, retired)


def _record_retired(profile: Profile, old: Identity, new: Identity) -> None:
    """The replaced fingerprint is retired in our trust store too, as rotation records it."""
    from misfin_tui.core.trust.store import TrustStore

    TrustStore(profile.database()).revoke(
        str(old.address).lower(),
        old.fingerprint,
        "replaced here by an imported bundle (rotated at home)",
        announced=new.fingerprint,
    )


def _replacing(
    profile: Profile, path: Path, info: CertInfo, ca_cert: Any, replace: bool
) -> Identity | None:
    """The identity this bundle's certificate replaces, or None when the address is new here.
    BundleError when it may not replace it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    wanted = f"{info.mailbox}@{info.host}".lower()
    old = next((i for i in profile.identities() if str(i.address).lower() == wanted), None)
    if old is None:
        return None
    if info.fingerprint == old.fingerprint:
        raise BundleError(
            f"{path}: this profile already holds this certificate of {old.address}; nothing changed"
        )
    if info.fingerprint[:16] in profile.retired_prefixes(str(old.address)):
        raise BundleError(
            f"{path}: this certificate of {old.address} was retired here (replaced by a newer"
            " one); it is never taken back. Export the current one at home with"
            f" `misfin-tui identity export {old.address} FILE`"
        )
    if replace:
        return old
    current = cert_info(load_certificates(old.cert_path)[0], check_self_signature=False)
    signer = "" if ca_cert is None else fingerprint(ca_cert.public_bytes(Encoding.DER))
    if old.issuer_fingerprint and signer == old.issuer_fingerprint:
        if info.not_before >= current.not_before:
            return old  # the rotated successor: the same host CA vouches for it
        why = "it is older than the certificate here"
    elif old.issuer_fingerprint:
        why = "it is not signed by the host CA that signed the certificate here"
    else:
        why = "the certificate here is self-signed: no host CA vouches for a successor"
    raise BundleError(
        f"{path}: an identity for {old.address} already exists ({old.cert_path.parent}), and the"
        f" bundle's certificate is not its rotated successor ({why}). If home rotated it with a"
        " new host CA, or you are sure, replace it with `misfin-tui identity import FILE"
        " --replace` (the old certificate is kept retired)"
    )


def _check_ca(profile: Profile, host: str, ca_cert: Any, replace: bool) -> None:
    """Before anything is written: a bundle's host CA key never silently meets another."""
    if replace or _same_ca(profile, host, ca_cert) is not False:
        return
    raise BundleError(
        f"this profile already holds a different host CA for {host}; nothing was changed"
        " (with --replace the one here is kept retired and the bundle's is used)"
    )


def _same_ca(profile: Profile, host: str, ca_cert: Any) -> bool | None:
    """None: no host CA for `host` here; else whether it is the bundle's."""
    from cryptography.hazmat.primitives.serialization import Encoding

    existing = profile.host_ca(host)
    if existing is None:
        return None
    here = load_certificates(existing[0])[0].public_bytes(Encoding.DER)
    return bool(here == ca_cert.public_bytes(Encoding.DER))


def _decrypt(block: bytes, passphrase: bytes, path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(block, password=passphrase)
    except (ValueError, TypeError):
        raise BundleError(f"{path}: wrong passphrase (or a damaged bundle)") from None


def _adopt_ca(profile: Profile, host: str, ca_cert: Any, ca_key: Any, *, replace: bool) -> None:
    """Keep the bundle's host CA (and key). A different one here is kept only when not
    `replace`; with it, the one here is retired the way `identity rotate --ca` retires it."""
    same = _same_ca(profile, host, ca_cert)
    if same:
        return
    folder = profile.identities_dir / CA_DIR / host.lower()
    if same is False:
        if not replace:
            raise BundleError(
                f"this profile already holds a different host CA for {host}; it was kept"
            )
        from misfin_tui.core.rotation import cert_info_fp

        fp = cert_info_fp(folder / CA_CERT_FILE)
        aside = profile.identities_dir / RETIRED_DIR / CA_DIR / host.lower() / fp[:16]
        aside.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if aside.exists():
            shutil.rmtree(aside)
        folder.rename(aside)
    folder.mkdir(parents=True, mode=0o700)
    write_private(folder / CA_KEY_FILE, key_pem(ca_key))
    (folder / CA_CERT_FILE).write_bytes(cert_pem(ca_cert))


def _record_home(profile: Profile, identity: Identity, text: str) -> str:

    found = _HOME_RE.search(text[:2048])
    if found is None:
        return ""
    try:
        host, port = parse_hostport(found.group(1))
    except ValueError:
        return ""
    if profile.config.gmap_homes.get(str(identity.address).lower()) is None:
        profile.config.set(f"gmap.{identity.address}", (host, port))
        profile.save_config()
    return f"{host}:{port}"
