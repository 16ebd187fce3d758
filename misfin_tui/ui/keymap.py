"""[keys] in config.toml, checked against the app's bindings and Textual's key names.

Textual applies a keymap entry whose id no binding has, or whose key no terminal sends, without
a word: the first does nothing, the second takes the binding's key away and the footer shows the
garbage ("nope+^zz Compose"). Here each such entry is left out (its binding keeps its default
key) and named in one line, for the app to show at start.
"""

from __future__ import annotations

import importlib
import pkgutil
import unicodedata

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import KEY_ALIASES, KEY_TO_UNICODE_NAME, REPLACED_KEYS, Keys

from misfin_tui.core.profile import Config

MODIFIERS = ("shift", "ctrl", "alt", "meta", "super", "hyper")
# Key names without a modifier: Keys' values (their modifiers dropped), the aliases, and the
# names Textual gives characters ("slash", "dollar_sign"); single characters are keys too.
_NAMES = (
    {str(key.value).rpartition("+")[2] for key in Keys}
    | {alias for aliases in KEY_ALIASES.values() for alias in aliases}
    | set(KEY_ALIASES)
    | set(REPLACED_KEYS)
    | set(KEY_TO_UNICODE_NAME)
)
PACKAGE = "misfin_tui.ui"


def key_problem(keys: str) -> str | None:
    """Why `keys` (one key, or several with commas: "ctrl+n,f2") names no key, or None."""
    for key in keys.split(","):
        key = key.strip()
        if not key:
            return f"{keys!r} has an empty key"
        if len(key) == 1:
            continue
        *modifiers, name = key.split("+")
        unknown = [modifier for modifier in modifiers if modifier not in MODIFIERS]
        if unknown:
            return f"{key!r} has {unknown[0]!r}, which is no modifier ({', '.join(MODIFIERS)})"
        if not _is_key_name(name):
            return f"{key!r} names no key ({name!r})" if modifiers else f"{key!r} is no key"
    return None


def _is_key_name(name: str) -> bool:
    if len(name) == 1 or name in _NAMES:
        return True
    try:  # "dollar_sign", "left_parenthesis": how Textual names a character's key
        unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return False
    return True


def binding_ids() -> frozenset[str]:
    """Every binding id of the app's screens, dialogs and widgets: what [keys] can change.

    Read from the classes themselves, so a new binding is known without a list to update. The
    screens are imported here (the app imports them only when they open): called only when
    [keys] has entries.
    """
    package = importlib.import_module(PACKAGE)
    for module in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        importlib.import_module(module.name)
    found: set[str] = set()
    classes: list[type[DOMNode]] = [DOMNode]
    while classes:
        kind = classes.pop()
        classes.extend(kind.__subclasses__())
        if not kind.__module__.startswith(PACKAGE + "."):
            continue
        for binding in kind.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id:
                found.add(binding.id)
    return frozenset(found)


def checked_keymap(config: Config) -> tuple[dict[str, str], list[str]]:
    """The [keys] entries that work, and one line ("<path> line N: …") for each one left out."""
    wanted = config.keys
    if not wanted:
        return {}, []
    known = binding_ids()
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in wanted.items():
        where = config.where("keys", binding_id)
        if binding_id not in known:
            problems.append(
                f"{where}: [keys] {binding_id!r} is no binding id (README, Keys, lists them);"
                " ignored"
            )
        elif problem := key_problem(keys):
            problems.append(f"{where}: [keys] {binding_id}: {problem}; its default key is kept")
        else:
            keymap[binding_id] = keys
    return keymap, problems
