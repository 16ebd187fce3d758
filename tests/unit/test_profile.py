"""Profile paths, config.toml (comments survive, one line per mistake), identities, database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.database import Database
from misfin_tui.core.identity import IdentityError
from misfin_tui.core.profile import DEFAULT_CONFIG, ENV_PROFILE, ConfigError, Profile


@pytest.fixture(autouse=True)
def no_profile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROFILE, raising=False)


def profile_with(tmp_path: Path, text: str) -> Profile:
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    return Profile.open(tmp_path)


# --- where things live -------------------------------------------------------------------------


def test_a_profile_directory_holds_config_and_data_and_nothing_is_created_until_written(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "p"
    profile = Profile.open(folder)
    assert profile.config_dir == profile.data_dir == folder
    assert profile.config_path == folder / "config.toml"
    assert profile.db_path.parent == folder
    assert profile.identities_dir.parent == folder
    assert profile.config.first_contact == "ask"
    assert profile.identities() == []
    assert profile.host_ca("example.org") is None
    assert not folder.exists()


def test_environment_variable_and_argument_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_PROFILE, str(tmp_path / "env"))
    assert Profile.open().config_dir == tmp_path / "env"
    assert Profile.open(tmp_path / "arg").config_dir == tmp_path / "arg"


def test_platformdirs_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform != "linux":
        pytest.skip("XDG variables steer platformdirs on Linux only")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    profile = Profile.open()
    assert profile.config_path == tmp_path / "cfg" / "misfin-tui" / "config.toml"
    assert profile.data_dir == tmp_path / "data" / "misfin-tui"


def test_importing_the_module_creates_nothing(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", "import misfin_tui.core.profile as p; p.Profile.open().config"],
        env=env,
        check=True,
        timeout=60,
    )
    assert list(tmp_path.iterdir()) == []


def test_importing_the_module_leaves_cryptography_unloaded() -> None:
    code = "import sys, misfin_tui.core.profile; print('cryptography' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


# --- config.toml -------------------------------------------------------------------------------


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = Profile.open(tmp_path).config
    assert config.default_identity is None
    assert config.first_contact == "ask"
    assert config.receiver_enabled is False
    assert config.receiver_listen == ("0.0.0.0", 1958)
    assert config.unverified == "quarantine"
    assert config.revalidate_days == 30
    assert config.hosts == {}
    assert config.editor == ""
    assert config.theme == "textual-dark"
    assert config.keys == {}


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    config = profile_with(tmp_path, "").config
    assert config.first_contact == "ask" and config.receiver_listen == ("0.0.0.0", 1958)


def test_first_save_writes_the_commented_default(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "p")
    profile.config.set("receiver.enabled", True)
    profile.save_config()
    text = profile.config_path.read_text()
    assert text.startswith(DEFAULT_CONFIG.splitlines()[0])
    assert 'first_contact = "ask"' in text and "# " in text
    assert "enabled = true" in text
    assert Profile.open(tmp_path / "p").config.receiver_enabled is True


def test_a_persons_comments_survive_a_save(tmp_path: Path) -> None:
    text = (
        "# my own notes\n"
        "[trust]\n"
        'first_contact = "strict"  # I\'m careful\n'
        "\n"
        "[hosts]\n"
        "# the test box\n"
        '"example.org" = "127.0.0.1:19580"\n'
    )
    profile = profile_with(tmp_path, text)
    config = profile.config
    assert config.first_contact == "strict"
    assert config.hosts == {"example.org": ("127.0.0.1", 19580)}
    config.set("hosts.other.example", ("::1", 1958))
    config.set("default_identity", "alice@example.org")
    config.set("receiver.listen", ("127.0.0.1", 0 + 2000))
    profile.save_config()
    saved = profile.config_path.read_text()
    for comment in ("# my own notes", "# I'm careful", "# the test box"):
        assert comment in saved
    again = Profile.open(tmp_path).config
    assert again.hosts == {"example.org": ("127.0.0.1", 19580), "other.example": ("::1", 1958)}
    assert again.default_identity == "alice@example.org"
    assert again.receiver_listen == ("127.0.0.1", 2000)
    again.set("default_identity", None)
    assert again.default_identity is None


def test_a_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, '[trust]\nfirst_contact = "ask"\noops = = 2\n')
    with pytest.raises(ConfigError) as caught:
        profile.config  # noqa: B018
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'config.toml'} line 3: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[ui]\nnotify = "bell"\n[ui]\n', "line 3: the table [ui] appears twice"),
        ("[hosts.x]\n[hosts.x]\n", "line 2: the table [hosts.x] appears twice"),
        (
            '[trust]\nfirst_contact = "ask"\nfirst_contact = "ask"\n',
            "line 3: a setting is given twice",
        ),
    ],
)
def test_a_repeated_table_or_setting_is_said_in_toml_words(
    tmp_path: Path, text: str, said: str
) -> None:
    profile = profile_with(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        profile.config  # noqa: B018
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'config.toml'} {said}"), message
    assert "('" not in message and "Cannot" not in message  # no Python tuple, no tomllib words


@pytest.mark.parametrize(
    ("text", "line", "names"),
    [
        ("[trust]\n\nfirst_contact = 5\n", 3, "trust.first_contact"),
        ('[trust]\nfirst_contact = "sometimes"\n', 2, "trust.first_contact"),
        ('[hosts]\n"a.example" = "1.2.3.4:1"\n"x.example" = "nonsense"\n', 3, 'hosts."x.example"'),
        ('[hosts]\n"x" = 7\n', 2, "hosts.x"),
        ('[receiver]\nenabled = "yes"\n', 2, "receiver.enabled"),
        ('[receiver]\nlisten = "0.0.0.0:99999"\n', 2, "receiver.listen"),
        ("[receiver]\nrevalidate_days = 0\n", 2, "receiver.revalidate_days"),
        ("[receiver]\nrevalidate_days = true\n", 2, "receiver.revalidate_days"),
        ('[receiver]\nunverified = "drop"\n', 2, "receiver.unverified"),
        ("default_identity = 3\n", 1, "default_identity"),
        ("[ui]\ntheme = 1\n", 2, "ui.theme"),
        ('[keys]\ncompose = ["n"]\n', 2, "keys.compose"),
        ('hosts = "x"\n', 1, "hosts"),
    ],
)
def test_a_wrong_value_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, names: str
) -> None:
    profile = profile_with(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        profile.config  # noqa: B018
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'config.toml'} line {line}: {names} must be")
    assert "\n" not in message


def test_set_refuses_a_wrong_value_and_keeps_the_old_one(tmp_path: Path) -> None:
    config = Profile.open(tmp_path).config
    with pytest.raises(ConfigError, match="first_contact"):
        config.set("trust.first_contact", "maybe")
    assert config.first_contact == "ask"
    with pytest.raises(ConfigError, match="unknown setting"):
        config.set("nonsense.key", 1)
    config.set("trust.first_contact", "accept-new")
    config.set("keys.mail.compose", "ctrl+n")
    assert config.first_contact == "accept-new"
    assert config.keys == {"mail.compose": "ctrl+n"}


def test_unknown_settings_and_sections_are_named_with_their_line_and_ignored(
    tmp_path: Path,
) -> None:
    text = (
        'notfy = "bell"\n'  # 1: belongs under [ui], misspelt
        "[reciever]\n"  # 2
        "enabled = true\n"
        "[ui]\n"
        'notify = "bell"\n'
        'them = "nord"\n'  # 6
        "[keys]\n"
        '"anything.at.all" = "x"\n'  # ids are the UI's to check: no warning here
        "[newer_feature]\n"  # 9: a newer version's section, nothing like ours
        "on = true\n"
    )
    config = profile_with(tmp_path, text).config  # opens: warnings are not errors
    path = tmp_path / "config.toml"
    assert config.warnings == [
        f"{path} line 1: unknown setting notfy, ignored (did you mean ui.notify?)",
        f"{path} line 2: unknown section [reciever], ignored (did you mean [receiver]?)",
        f"{path} line 6: unknown setting ui.them, ignored (did you mean ui.theme?)",
        f"{path} line 9: unknown section [newer_feature], ignored",
    ]
    assert config.receiver_enabled is False and config.notify == "bell"


def test_the_default_config_and_every_setting_set_give_no_warning(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path)
    assert profile.config.warnings == []
    profile.config.set("hosts.example.org", ("127.0.0.1", 1))
    profile.config.set("gmap.alice@example.org", ("example.org", 1960))
    profile.config.set("keys.mail.compose", "ctrl+n")
    profile.config.set("receiver.verify_queue", 3)
    profile.save_config()
    assert Profile.open(tmp_path).config.warnings == []


def test_an_unquoted_binding_id_reads_like_a_quoted_one(tmp_path: Path) -> None:
    """`mail.compose = "x"` is a dotted key to TOML (a table [keys.mail]): still the id."""
    text = '[keys]\nmail.compose = "ctrl+n"\n"mail.reply" = "ctrl+r"\n'
    config = profile_with(tmp_path, text).config
    assert config.keys == {"mail.compose": "ctrl+n", "mail.reply": "ctrl+r"}
    assert config.where("keys", "mail.compose") == f"{tmp_path / 'config.toml'} line 2"
    with pytest.raises(ConfigError, match=r'line 2: keys."mail.compose" must be a key in quotes'):
        profile_with(tmp_path, "[keys]\nmail.compose = 3\n").config  # noqa: B018


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Profile.open(tmp_path).config  # noqa: B018


# --- identities and the database ---------------------------------------------------------------


def test_first_identity_becomes_the_default_and_lookup_is_case_insensitive(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "p")
    with pytest.raises(IdentityError, match="no identity yet"):
        profile.identity()
    profile.create_identity(Address.parse("bob@example.org"), "Bob")
    profile.create_identity(Address.parse("alice@example.org"), "Alice")
    assert profile.config.default_identity == "bob@example.org"
    reopened = Profile.open(tmp_path / "p")
    assert reopened.config.default_identity == "bob@example.org"
    assert str(reopened.identity().address) == "bob@example.org"
    assert reopened.identity("ALICE@Example.ORG").blurb == "Alice"
    assert reopened.identity("misfin://alice@example.org").blurb == "Alice"
    with pytest.raises(IdentityError, match="no identity carol@example.org"):
        reopened.identity("carol@example.org")


def test_host_ca_through_the_profile(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path)
    created = profile.create_identity(
        Address.parse("alice@example.org"), ca=True, key_type="ed25519"
    )
    assert created.signer == "new-ca"
    ca_pem, ca_key = profile.host_ca("EXAMPLE.org")
    assert ca_pem.is_file() and ca_key.is_file()
    assert profile.create_identity(Address.parse("bob@example.org")).signer == "ca"


def test_database_is_cached_per_profile(tmp_path: Path) -> None:
    profile = Profile.open(tmp_path / "p")
    db = profile.database()
    assert isinstance(db, Database)
    assert profile.database() is db
    db.connect().execute("SELECT count(*) FROM letters").fetchone()
    assert profile.db_path.is_file()


def test_a_default_identity_that_is_gone_is_named(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, 'default_identity = "gone@example.org"\n')
    profile.create_identity(Address.parse("alice@example.org"))
    with pytest.raises(IdentityError, match="no identity gone@example.org .default_identity in"):
        profile.identity()
    assert profile.identity("alice@example.org").blurb == "alice"
