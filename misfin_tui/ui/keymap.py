"""[keys] in config.toml, checked against the app's bindings and Textual's key names.

Textual applies a keymap entry whose id no binding has, or whose key no terminal sends, without
a word: the first does nothing, the second takes the binding's key away and the footer shows the
garbage ("nope+^zz Compose"). Here each such entry is left out (its binding keeps its default
key) and named in one line, for the app to show at start.
"""

from __future__ import annotations

import importlib
import pkgutil

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import KEY_ALIASES, KEY_TO_UNICODE_NAME, REPLACED_KEYS, Keys

from misfin_tui import bindings
from misfin_tui.core.profile import Config

# Key names without a modifier: Keys' values (their modifiers dropped), the aliases, and the
# names Textual gives characters ("slash", "dollar_sign"); single characters are keys too.
# bindings.KEY_NAMES is this set written out for the command line (a test keeps them equal).
KEY_NAMES = frozenset(
    {str(key.value).rpartition("+")[2] for key in Keys}
    | {alias for aliases in KEY_ALIASES.values() for alias in aliases}
    | set(KEY_ALIASES)
    | set(REPLACED_KEYS)
    | set(KEY_TO_UNICODE_NAME)
)
PACKAGE = "misfin_tui.ui"


def key_problem(keys: str) -> str | None:
    """Why `keys` (one key, or several with commas: "ctrl+n,f2") names no key, or None."""
    return bindings.key_problem(keys, KEY_NAMES)


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
    """The [keys] entries that work, and one line ("<path> line N: …") for each one left out:
    bindings.checked_keys() against the bindings and key names read live here."""
    if not config.keys:
        return {}, []
    return bindings.checked_keys(config, binding_ids(), KEY_NAMES)
