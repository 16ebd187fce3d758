"""Where a person's things live: config.toml, the database and identities.

`--profile DIR` (or $MISFIN_TUI_PROFILE) puts everything under one folder, which tests, demos and
several people on one machine rely on; otherwise platformdirs picks the usual places. Nothing is
created until something is written. config.toml goes through tomlkit so a person's comments and
layout survive when the app changes a setting.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from misfin_tui.core.address import GMAP_PORT, Address, AddressError, parse_hostport
from misfin_tui.core.database import Database, private_dir
from misfin_tui.core.identity import (
    DEFAULT_KEY_TYPE,
    Created,
    Identity,
    IdentityError,
    NoIdentity,
    create_identity,
    host_ca_paths,
    import_identity,
    load_identities,
    load_identity,
)

RETIRED_DIR = "_retired"  # identities/_retired/<address>/<fingerprint prefix>/


class FolderWatch:
    """Whether a folder changed since it was last read, looked at at most once a second: a
    rotation done by another process swaps folders in identities/, which changes its mtime, and
    a running server must serve (and refuse) what it now holds without a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read = 0  # mtime_ns when last read; 0: never (nothing to compare with)
        self._looked = 0.0

    def stamp(self) -> int:
        """Take this before reading the folder, and hand it to `read` once that worked."""
        try:
            return self.folder.stat().st_mtime_ns
        except OSError:
            return 0

    def read(self, stamp: int) -> None:
        self._read = stamp

    def due(self) -> bool:
        """True when the folder changed since it was read (a failed reload is tried again a
        second later: `read` was not called for it)."""
        now = time.monotonic()
        if now - self._looked < 1.0:
            return False
        self._looked = now
        stamp = self.stamp()
        return bool(self._read and stamp) and stamp != self._read


if TYPE_CHECKING:
    import tomlkit.toml_document

    from misfin_tui.core.database import Database

APP_NAME = "misfin-tui"
ENV_PROFILE = "MISFIN_TUI_PROFILE"
DB_FILE = "misfin.db"

FIRST_CONTACT = ("ask", "accept-new", "strict")
UNVERIFIED = ("quarantine", "reject")

DEFAULT_CONFIG = """\
# misfin-tui configuration. Edit freely: comments and layout you add here are kept when the
# app changes a setting. Delete a line to get its default back.

# The identity (mailbox@host) that sends when you don't pick one.
# default_identity = "alice@example.org"

[trust]
# First contact with a mail server whose key you have never seen:
#   "ask"        show its fingerprint and ask (default)
#   "accept-new" trust it silently, like ssh's StrictHostKeyChecking=accept-new
#   "strict"     refuse until you verify the fingerprint yourself
first_contact = "ask"

[receiver]
# Run the built-in receiver while the app is open, so mail arrives without another server.
enabled = false
listen = "0.0.0.0:1958"
# Letters whose sender could not be verified: "quarantine" (keep them aside) or "reject".
unverified = "quarantine"
# Check a known sender's server again after this many days.
revalidate_days = 30
# Also serve GMAP (mail from home) for these mailboxes, e.g. "0.0.0.0:1960"; empty: off.
gmap_listen = ""

# Limits that keep one sender, or a crowd, from hurting the others (0 turns a limit off).
# Connections open at once; when full, the one that made the least progress makes room.
max_connections = 10000
# Connections open at once from one address.
max_per_address = 16
# Letters a minute from one sender certificate, and from one source address; more get 44.
letters_per_sender = 30
letters_per_address = 120
# Megabytes stored from one sender address (Trash aside); more get 45 (mailbox full).
sender_quota_mb = 50
# unverified = "reject": seconds a check may take before the answer (then 40), and how many
# letters may wait for one (more get 44 at once).
verify_seconds = 5
verify_queue = 16

[gmap]
# Where each identity's home server serves GMAP (mail from home), when it is not the
# address's own host on port 1960: "alice@example.org" = "mail.example.org:1960"

[hosts]
# Connect to a host somewhere else, like curl's --connect-to:
# "example.org" = "127.0.0.1:19580"

[ui]
# Command for composing in your own editor (empty: $VISUAL, then $EDITOR).
editor = ""
theme = "textual-dark"
# How new mail is announced besides the list: "toast" (a note in the app), "bell" (also the
# terminal bell) or "desktop" (also a desktop notification: OSC 9 / OSC 777, and notify-send).
notify = "toast"

[keys]
# Change a key: binding id = "key" (ids: README, "Keys"), e.g. Compose on ctrl+n:
# "mail.compose" = "ctrl+n"
"""


T = TypeVar("T")


class ConfigError(Exception):
    """config.toml is unreadable or has a wrong value; str() = "<path> line N: what is wrong"."""


# dotted key -> (table, key): where each typed setting lives in config.toml
NOTIFY_CHOICES = ("toast", "bell", "desktop")

_KEYS: dict[str, tuple[str | None, str]] = {
    "default_identity": (None, "default_identity"),
    "trust.first_contact": ("trust", "first_contact"),
    "receiver.enabled": ("receiver", "enabled"),
    "receiver.listen": ("receiver", "listen"),
    "receiver.unverified": ("receiver", "unverified"),
    "receiver.revalidate_days": ("receiver", "revalidate_days"),
    "receiver.gmap_listen": ("receiver", "gmap_listen"),
    "receiver.max_connections": ("receiver", "max_connections"),
    "receiver.max_per_address": ("receiver", "max_per_address"),
    "receiver.letters_per_sender": ("receiver", "letters_per_sender"),
    "receiver.letters_per_address": ("receiver", "letters_per_address"),
    "receiver.sender_quota_mb": ("receiver", "sender_quota_mb"),
    "receiver.verify_seconds": ("receiver", "verify_seconds"),
    "receiver.verify_queue": ("receiver", "verify_queue"),
    "ui.editor": ("ui", "editor"),
    "ui.theme": ("ui", "theme"),
    "ui.notify": ("ui", "notify"),
}
_MAP_TABLES = ("hosts", "keys", "gmap")
# table (None: the top level) -> the settings it holds; what else a file has is reported
_SETTINGS: dict[str | None, frozenset[str]] = {
    table: frozenset(key for t, key in _KEYS.values() if t == table)
    for table in {t for t, _ in _KEYS.values()}
}


class Config:
    """A typed view over config.toml, with defaults for absent keys.

    Read with the standard library's tomllib (fast: every command reads it); the tomlkit
    document, which keeps comments when a setting is written, is parsed only for set().

    Settings and their keys in config.toml: default_identity; trust.first_contact;
    receiver.enabled / .listen / .unverified / .revalidate_days / .gmap_listen; [hosts]
    "name" = "host:port"; [gmap] "address" = "host:port" (home's GMAP); ui.editor / ui.theme;
    [keys] "binding id" = "key". What the file holds besides these is ignored, and named in
    `warnings` (a typo; or a setting of a newer version, whose file still opens here).
    """

    def __init__(self, data: dict[str, Any], path: Path, text: str) -> None:
        self._data = data
        self._doc: tomlkit.toml_document.TOMLDocument | None = None
        self._path = path
        self._text = text
        self.validate()

    @property
    def document(self) -> tomlkit.toml_document.TOMLDocument:
        """The file as tomlkit reads it, comments and all (what save_config writes)."""
        if self._doc is None:
            import tomlkit  # only to write: reading needs none of it
            from tomlkit.exceptions import ParseError

            try:
                self._doc = tomlkit.parse(self._text)
            except ParseError as exc:
                problem = str(exc).split(" at line ")[0]
                raise ConfigError(
                    f"{self._path} line {exc.line}: {problem} (column {exc.col})"
                ) from None
        return self._doc

    # -- typed settings --
    @property
    def default_identity(self) -> str | None:
        value = self._get(None, "default_identity", None)
        if value is None:
            return None
        return self._check(str, value, None, "default_identity", "an address in quotes") or None

    @property
    def first_contact(self) -> str:
        return self._choice("trust", "first_contact", "ask", FIRST_CONTACT)

    @property
    def receiver_enabled(self) -> bool:
        value = self._get("receiver", "enabled", False)
        return self._check(bool, value, "receiver", "enabled", "true or false")

    @property
    def receiver_listen(self) -> tuple[str, int]:
        value = self._get("receiver", "listen", "0.0.0.0:1958")
        text = self._check(str, value, "receiver", "listen", '"address:port"')
        return self._hostport(text, "receiver", "listen")

    @property
    def unverified(self) -> str:
        return self._choice("receiver", "unverified", "quarantine", UNVERIFIED)

    @property
    def revalidate_days(self) -> int:
        value = self._get("receiver", "revalidate_days", 30)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self._fail(
                "receiver", "revalidate_days", f"must be a whole number of days >= 1, not {value!r}"
            )
        return int(value)

    def _count(self, key: str, default: int, least: int) -> int:
        value = self._get("receiver", key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            self._fail("receiver", key, f"must be a whole number >= {least}, not {value!r}")
        return int(value)

    @property
    def receiver_max_connections(self) -> int:
        return self._count("max_connections", 10_000, 1)

    @property
    def receiver_max_per_address(self) -> int:
        return self._count("max_per_address", 16, 1)

    @property
    def receiver_letters_per_sender(self) -> int:
        """Letters a minute from one sender certificate; 0 = no limit."""
        return self._count("letters_per_sender", 30, 0)

    @property
    def receiver_letters_per_address(self) -> int:
        """Letters a minute from one source address; 0 = no limit."""
        return self._count("letters_per_address", 120, 0)

    @property
    def receiver_sender_quota_mb(self) -> int:
        """Megabytes stored from one sender address; 0 = no quota."""
        return self._count("sender_quota_mb", 50, 0)

    @property
    def receiver_verify_seconds(self) -> int:
        return self._count("verify_seconds", 5, 1)

    @property
    def receiver_verify_queue(self) -> int:
        return self._count("verify_queue", 16, 1)

    @property
    def hosts(self) -> dict[str, tuple[str, int]]:
        result = {}
        for name, value in self._table("hosts").items():
            text = self._check(str, value, "hosts", name, '"address:port"')
            result[str(name).lower()] = self._hostport(text, "hosts", name)
        return result

    @property
    def receiver_gmap_listen(self) -> tuple[str, int] | None:
        """Where `receive` also serves GMAP for its mailboxes; None when it does not."""
        value = self._get("receiver", "gmap_listen", "")
        text = self._check(str, value, "receiver", "gmap_listen", '"address:port" or ""')
        return self._hostport(text, "receiver", "gmap_listen") if text.strip() else None

    @property
    def gmap_homes(self) -> dict[str, tuple[str, int]]:
        """Address (lower case) -> home's GMAP host:port, for mail from home."""
        result = {}
        for name, value in self._table("gmap").items():
            try:
                address = str(Address.parse(str(name))).lower()
            except AddressError:
                self._fail("gmap", name, 'must be an address like "alice@example.org"')
                raise
            text = self._check(str, value, "gmap", name, '"host:port"')
            result[address] = self._hostport(text, "gmap", name)
        return result

    @property
    def editor(self) -> str:
        return self._check(
            str, self._get("ui", "editor", ""), "ui", "editor", "a command in quotes"
        )

    @property
    def theme(self) -> str:
        return self._check(
            str, self._get("ui", "theme", "textual-dark"), "ui", "theme", "a theme name in quotes"
        )

    @property
    def notify(self) -> str:
        """How new mail is announced: "toast", "bell" or "desktop" (see ui/notify.py)."""
        return self._choice("ui", "notify", "toast", NOTIFY_CHOICES)

    @property
    def keys(self) -> dict[str, str]:
        """Binding id -> key(s), e.g. {"mail.compose": "ctrl+n"}. An id written without quotes
        (mail.compose = "ctrl+n") is a dotted key, a table to TOML: it reads the same. Whether
        an id or a key exists is the UI's to say (it knows the bindings and the key names)."""
        result: dict[str, str] = {}

        def read(table: dict[str, Any], prefix: str) -> None:
            for name, value in table.items():
                binding_id = prefix + str(name)
                if isinstance(value, dict):
                    read(value, binding_id + ".")
                else:
                    result[binding_id] = self._check(
                        str, value, "keys", binding_id, "a key in quotes"
                    )

        read(self._table("keys"), "")
        return result

    @property
    def warnings(self) -> list[str]:
        """One line ("<path> line N: …") for each setting or section this version does not
        know: it has no effect, and a typo (`[reciever]`, `notfy = "bell"`) should not pass
        unnoticed. Not errors, so a config.toml written for a newer version still opens."""
        found: list[str] = []
        tables = {table for table in _SETTINGS if table is not None} | set(_MAP_TABLES)
        settings = [key if table is None else f"{table}.{key}" for table, key in _KEYS.values()]
        for name, value in self._data.items():
            if name in _SETTINGS[None] or name in _MAP_TABLES:
                continue
            if name in tables and isinstance(value, dict):
                known = _SETTINGS[name]
                for key in value:
                    if key not in known:
                        dotted = f"{name}.{_key_repr(key)}"
                        hint = _close(key, sorted(known), name + ".")
                        found.append(
                            f"{self.where(name, key)}: unknown setting {dotted}, ignored{hint}"
                        )
            elif isinstance(value, dict):
                hint = _close(name, sorted(tables), "[", "]")
                found.append(f"{self.where(None, name)}: unknown section [{name}], ignored{hint}")
            else:
                leaves = {dotted.rpartition(".")[2]: dotted for dotted in settings}
                hint = _close(name, sorted(leaves), lookup=leaves)
                found.append(
                    f"{self.where(None, name)}: unknown setting {_key_repr(name)}, ignored{hint}"
                )
        return found

    def where(self, table: str | None, key: str) -> str:
        """The place `key` is set in `[table]` (None: the top level), to begin a message about
        it: "<path> line N", or just the path when the line is not found."""
        line = _line_of(self._text, table, str(key))
        return f"{self._path} line {line}" if line else str(self._path)

    def validate(self) -> None:
        """Read every setting once so a wrong value is reported when the file is loaded."""
        for name in (
            "default_identity", "first_contact", "receiver_enabled", "receiver_listen",
            "unverified", "revalidate_days", "hosts", "editor", "theme", "notify", "keys",
            "receiver_max_connections", "receiver_max_per_address", "receiver_letters_per_sender",
            "receiver_letters_per_address", "receiver_sender_quota_mb", "receiver_verify_seconds",
            "receiver_verify_queue",
            "receiver_gmap_listen", "gmap_homes",
        ):  # fmt: skip
            getattr(self, name)

    def set(self, dotted_key: str, value: Any) -> None:
        """Change one setting, e.g. set("receiver.enabled", True) or set("hosts.example.org",
        ("127.0.0.1", 19580)). None removes the key (its default applies). Call
        Profile.save_config() to write it."""
        import tomlkit

        if dotted_key in _KEYS:
            table, key = _KEYS[dotted_key]
        else:
            table, _, key = dotted_key.partition(".")
            if table not in _MAP_TABLES or not key:
                raise ConfigError(f"{self._path}: unknown setting {dotted_key!r}")
        if isinstance(value, tuple):
            value = _format_hostport(*value)
        document = self.document
        container: Any = document
        if table is not None:
            if table not in document:
                document[table] = tomlkit.table()
            container = document[table]
        old = container.get(key)
        if value is None:
            container.pop(key, None)
        else:
            container[key] = value
        before, self._data = self._data, document.unwrap()
        try:
            self.validate()
        except ConfigError:
            if old is None:
                container.pop(key, None)
            else:
                container[key] = old
            self._data = before
            raise

    # -- helpers --
    def _table(self, table: str) -> dict[str, Any]:
        value = self._data.get(table, {})
        if not isinstance(value, dict):
            self._fail(None, table, "must be a table like [" + table + "]")
        table_value: dict[str, Any] = value
        return table_value

    def _get(self, table: str | None, key: str, default: Any) -> Any:
        container = self._data if table is None else self._table(table)
        return container.get(key, default)

    def _check(self, kind: type[T], value: Any, table: str | None, key: str, wanted: str) -> T:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            self._fail(table, key, f"must be {wanted}, not {_toml_repr(value)}")
        checked: T = value
        return checked

    def _choice(self, table: str, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._get(table, key, default)
        if value not in choices:
            options = ", ".join(f'"{c}"' for c in choices)
            self._fail(table, key, f"must be one of {options}, not {_toml_repr(value)}")
        return str(value)

    def _hostport(self, text: str, table: str, key: str) -> tuple[str, int]:
        try:
            return parse_hostport(text)
        except ValueError:
            self._fail(table, key, f'must be "address:port" (e.g. "127.0.0.1:1958"), not "{text}"')
            raise

    def _fail(self, table: str | None, key: str, problem: str) -> None:
        dotted = key if table is None else f"{table}.{_key_repr(key)}"
        raise ConfigError(f"{self.where(table, key)}: {dotted} {problem}")


def _close(
    name: str,
    choices: list[str],
    before: str = "",
    after: str = "",
    lookup: dict[str, str] | None = None,
) -> str:
    """A hint, " (did you mean …?)", naming the choice closest to a misspelt `name`; or ""."""
    import difflib

    found = difflib.get_close_matches(name, choices, n=1)
    if not found:
        return ""
    choice = lookup[found[0]] if lookup else found[0]
    return f" (did you mean {before}{choice}{after}?)"


def _toml_problem(path: Path, message: str) -> str:
    """tomllib's "Invalid value (at line 3, column 8)" -> "<path> line 3: Invalid value (column
    8)", the shape of every config error."""
    found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message)
    if found is None:
        return f"{path}: {message}"
    problem = found.group(1)
    # "Cannot declare ('ui',) twice" names the table as a Python tuple: say it as TOML does.
    twice = re.fullmatch(r"Cannot declare \((.*)\) twice", problem)
    if twice is not None:
        parts = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", twice.group(1))
        name = ".".join(single or double for single, double in parts)
        problem = f"the table [{name}] appears twice (keep one, with all its settings)"
    elif problem == "Cannot overwrite a value":
        problem = "a setting is given twice (keep one)"
    return f"{path} line {found.group(2)}: {problem} (column {found.group(3)})"


def _format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _toml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _key_repr(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def _line_of(text: str, table: str | None, key: str) -> int | None:
    """The line where `key` is set in `[table]` (or the top level); tomlkit keeps no positions."""
    current: str | None = None
    key_pattern = re.compile(
        r"\s*(?:" + re.escape(key) + r"|\"" + re.escape(key) + r"\"|'" + re.escape(key) + r"')\s*="
    )
    header = re.compile(r"\s*\[\s*([^\]]+?)\s*\]")
    for number, line in enumerate(text.splitlines(), 1):
        found = header.match(line)
        if found:
            current = found.group(1).strip("\"'")
            if table is None and current == key:
                return number
            continue
        if current == table and key_pattern.match(line):
            return number
    return None


class Profile:
    """One person's configuration, database and identities."""

    def __init__(self, config_dir: Path, data_dir: Path) -> None:
        self.config_dir = config_dir
        self.data_dir = data_dir
        self.config_path = config_dir / "config.toml"
        self.db_path = data_dir / DB_FILE
        self.identities_dir = data_dir / "identities"
        self._config: Config | None = None
        self._database: Database | None = None

    @classmethod
    def open(cls, directory: str | Path | None = None) -> Profile:
        """directory > $MISFIN_TUI_PROFILE > platformdirs. A directory holds config and data."""
        if directory is None:
            directory = os.environ.get(ENV_PROFILE) or None
        if directory is not None:
            folder = Path(directory).expanduser().absolute()
            return cls(folder, folder)
        import platformdirs

        return cls(
            platformdirs.user_config_path(APP_NAME, appauthor=False),
            platformdirs.user_data_path(APP_NAME, appauthor=False),
        )

    @property
    def exists(self) -> bool:
        """Something was written here before: the config or the database."""
        return self.config_path.is_file() or self.db_path.is_file()

    # -- configuration --
    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = self._load_config()
        return self._config

    def _load_config(self) -> Config:
        path = self.config_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = DEFAULT_CONFIG
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_problem(path, str(exc))) from None
        return Config(data, path, text)

    def save_config(self) -> None:
        """Write config.toml (the commented default the first time), keeping comments."""
        import tomlkit

        text = tomlkit.dumps(self.config.document)
        private_dir(self.config_dir)
        temporary = self.config_path.with_name(self.config_path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:  # a write on a descriptor names no file: say which (a full disk)
            temporary.unlink(missing_ok=True)
            exc.filename = exc.filename or str(self.config_path)
            raise
        os.replace(temporary, self.config_path)
        self.config._text = text

    # -- identities --
    def identities(self) -> list[Identity]:
        return load_identities(self.identities_dir)

    def retired_dir(self, address: str, fp: str) -> Path:
        """Where a retired certificate of ours is kept (only to sign its rotation notice)."""
        return self.identities_dir / RETIRED_DIR / address.lower() / fp[:16]

    def set_aside(self, old: Identity) -> Path:
        """Move an identity's folder among the retired ones (a rotation, or an import that
        replaced it), where it is kept to sign its notice; returns where it went."""
        import shutil

        aside = self.retired_dir(str(old.address), old.fingerprint)
        aside.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if aside.exists():
            shutil.rmtree(aside)
        old.cert_path.parent.rename(aside)
        return aside

    def retired_identity(self, address: str, fp: str) -> Identity:
        """A retired certificate of ours, to sign a rotation notice with."""
        folder = self.retired_dir(address, fp)
        if not (folder / "cert.pem").is_file():
            raise IdentityError(f"no retired certificate {fp[:16]}… of {address} in this profile")
        identity = load_identity(folder)
        if identity.fingerprint != fp:
            raise IdentityError(f"{folder} does not hold the certificate {fp[:16]}…")
        return identity

    def retired_prefixes(self, address: str) -> frozenset[str]:
        """The fingerprint prefixes of our certificates of `address` rotated away: the folders'
        names, so a copy that no longer loads is still known as retired."""
        folder = self.identities_dir / RETIRED_DIR / address.lower()
        return frozenset(f.name for f in folder.iterdir()) if folder.is_dir() else frozenset()

    def retired_identities(self, address: str) -> list[Identity]:
        folder = self.identities_dir / RETIRED_DIR / address.lower()
        if not folder.is_dir():
            return []
        return [load_identity(f) for f in sorted(folder.iterdir()) if (f / "cert.pem").is_file()]

    def identity(self, address: str | None = None) -> Identity:
        """The identity for `address`; None -> the configured default, else the first one."""
        identities = self.identities()
        if not identities:
            raise NoIdentity("no identity yet")
        source = ""
        if address is None:
            address = self.config.default_identity
            if address is None:
                return identities[0]
            source = f" (default_identity in {self.config_path})"
        try:
            wanted = str(Address.parse(address)).lower()
        except AddressError as exc:
            raise IdentityError(f"{address!r} is not an address: {exc}") from None
        for identity in identities:
            if str(identity.address).lower() == wanted:
                return identity
        known = ", ".join(str(i.address) for i in identities)
        raise IdentityError(f"no identity {address}{source} in this profile (have: {known})")

    # -- where home's GMAP server is (one rule: sync, trust verify, revalidate, the app) --
    def gmap_home(self, identity: Identity) -> tuple[str, int]:
        """Home's GMAP server for an identity, as its pin names it: [gmap] in config.toml
        (written by `identity import` from the bundle), else the address's host on 1960."""
        configured = self.config.gmap_homes.get(str(identity.address).lower())
        return configured or (identity.address.host, GMAP_PORT)

    def gmap_hostports(self) -> frozenset[str]:
        """host:port of every identity's home GMAP server (what its pin is named by)."""
        try:
            homes = [self.gmap_home(identity) for identity in self.identities()]
        except Exception:  # a broken config or identity is reported where it is used
            return frozenset()
        return frozenset(f"{host}:{port}" for host, port in homes)

    def is_gmap_hostport(self, hostport: str) -> bool:
        """Does this pin name a GMAP server: an identity's home, or any host on GMAP's port?"""
        host, _, port = hostport.lower().rpartition(":")
        return port == str(GMAP_PORT) or f"{host}:{port}" in self.gmap_hostports()

    def gmap_target(self, host: str, port: int, connect: str | None = None) -> tuple[str, int]:
        """Where the TCP connection to the GMAP server `host:port` goes. An explicit
        `connect` (HOST:PORT, --connect) wins; else [hosts] gives the address for the host
        name, on the GMAP port itself: the port in [hosts] is the host's Misfin port, never
        GMAP's; else host:port. The name (SNI, request line, pin) stays `host:port`."""
        if connect:
            return parse_hostport(connect)
        mapped = self.config.hosts.get(host.lower())
        return (mapped[0], port) if mapped is not None else (host, port)

    def host_ca(self, host: str) -> tuple[Path, Path] | None:
        return host_ca_paths(self.identities_dir, host)

    def create_identity(
        self, address: Address, blurb: str = "", key_type: str | None = None, *, ca: bool = False
    ) -> Created:
        """Make an identity (see identity.create_identity); the first becomes the default."""

        self._private_data()
        created = create_identity(
            self.identities_dir, address, blurb, key_type or DEFAULT_KEY_TYPE, ca=ca
        )
        self._private_identities()
        self._adopt_default(created.identity)
        return created

    def import_identity(
        self, cert_path: Path, key_path: Path | None = None, passphrase: bytes | None = None
    ) -> Identity:
        self._private_data()
        identity = import_identity(self.identities_dir, cert_path, key_path, passphrase)
        self._private_identities()
        self._adopt_default(identity)
        return identity

    def replace_identity(self, old: Identity, cert_path: Path, key_path: Path) -> Identity:
        """Put a new certificate and key in place of `old` (the same address), keeping the old
        one retired as `identity rotate` keeps it (identities/_retired/<address>/<fp>/). The
        swap is two renames, so a receiver watching the folder picks the new one up."""
        import secrets
        import shutil

        self._private_data()
        staging = self.identities_dir / RETIRED_DIR / f".staging-{secrets.token_hex(6)}"
        staging.mkdir(parents=True, mode=0o700)
        try:
            new = import_identity(staging, cert_path, key_path)
            if str(new.address).lower() != str(old.address).lower():
                raise IdentityError(f"the certificate is for {new.address}, not {old.address}")
            live = old.cert_path.parent
            self.set_aside(old)
            new.cert_path.parent.rename(live)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._private_identities()
        return load_identity(live)

    def _private_data(self) -> None:
        """The data folder (mail, identities) is ours alone: 0700 whatever the umask."""

        private_dir(self.data_dir)

    def _private_identities(self) -> None:
        """Identity files 0600 and their folders 0700 (keys were; certificates now are too)."""

        if not self.identities_dir.is_dir():
            return
        private_dir(self.identities_dir)
        for path in self.identities_dir.rglob("*"):
            if path.is_symlink():
                continue
            if path.is_dir():
                private_dir(path)
            elif path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)

    def _adopt_default(self, identity: Identity) -> None:
        if self.config.default_identity is None:
            self.config.set("default_identity", str(identity.address))
            self.save_config()

    # -- database --
    def database(self) -> Database:
        if self._database is None:
            self._private_data()
            self._database = Database(self.db_path)
        return self._database
