"""What [keys] in config.toml may name, without importing Textual: the app's binding ids and
the key names Textual knows, and the one check of a [keys] table against them.

The command line checks [keys] as the app does (a typo is named before the app is ever
opened), and it never imports Textual. So the two sets are written out here: the app's own
check reads them live from its classes and from Textual (ui/keymap.py), and a test
(tests/ui/test_mail_keys_help.py) fails the moment either differs from what is written here,
when a binding is added or Textual (pinned) is upgraded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from misfin_tui.core.profile import Config


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MODIFIERS = ("shift", "ctrl", "alt", "meta", "super", "hyper")

# Every binding id of the app's screens, dialogs and widgets (ui.keymap.binding_ids()).
BINDING_IDS = _words(
    """
    app.help app.quit archive.close archive.help compose.close compose.discard compose.editor
    compose.help compose.send first_run.help first_run.leave first_run.submit help.close
    mail.archive mail.close_search mail.compose mail.delete mail.folder1 mail.folder2
    mail.folder3 mail.folder4 mail.folder5 mail.folder6 mail.folder7 mail.forward mail.help
    mail.next mail.outbox mail.previous mail.quit mail.recheck mail.reply mail.reply_all
    mail.search mail.sync mail.threads mail.to_inbox mail.toggle_read mail.trust_manager
    mail.undo outbox.close outbox.decide outbox.drop outbox.help outbox.retry prompt.accept
    prompt.cancel prompt.details prompt.drop prompt.follow prompt.help prompt.hold prompt.keep
    prompt.mark_network prompt.no prompt.once prompt.replace prompt.review prompt.send_anyway
    prompt.send_unverified prompt.trust prompt.verify prompt.yes reader.back trust.close
    trust.copy trust.decide trust.down trust.forget trust.help trust.mark_network trust.nickname
    trust.reject trust.tab1 trust.tab2 trust.tab3 trust.tab4 trust.tab5 trust.unverify trust.up
    trust.verify
    """
)

# Key names without a modifier, as Textual 8.2.8 knows them (ui.keymap.KEY_NAMES): Keys' values
# (their modifiers dropped), the aliases, and the names Textual gives characters ("slash").
KEY_NAMES = _words(
    """
    0 1 2 3 4 5 6 7 8 9 <any> <ignore> <scroll-down> <scroll-up> @ a at b backslash backspace c
    circumflex_accent commercial_at ctrl+at ctrl+i ctrl+j ctrl+left_square_brace ctrl+m
    ctrl+space ctrl-at d delete dollar_sign down e end enter equals_sign escape exclamation_mark
    f f1 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f2 f20 f21 f22 f23 f24 f3 f4 f5 f6 f7 f8 f9
    full_stop g grave_accent greater_than_sign h home hyphen_minus i insert j k l left
    left_curly_bracket left_parenthesis left_square_bracket less_than_sign low_line m minus n
    newline number_sign o p pagedown pageup percent_sign plus plus_sign q question_mark
    quotation_mark r return reverse_solidus right right_curly_bracket right_parenthesis
    right_square_bracket s slash space t tab u underscore up v vertical_line w x y z
    """
)


def key_problem(keys: str, names: frozenset[str] = KEY_NAMES) -> str | None:
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
        if not _is_key_name(name, names):
            return f"{key!r} names no key ({name!r})" if modifiers else f"{key!r} is no key"
    return None


def _is_key_name(name: str, names: frozenset[str]) -> bool:
    if len(name) == 1 or name in names:
        return True
    try:  # "dollar_sign", "left_parenthesis": how Textual names a character's key
        unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return False
    return True


def checked_keys(
    config: Config,
    known: frozenset[str] = BINDING_IDS,
    names: frozenset[str] = KEY_NAMES,
) -> tuple[dict[str, str], list[str]]:
    """The [keys] entries that work, and one line ("<path> line N: …") for each one left out
    (its binding keeps its default key)."""
    wanted: Mapping[str, str] = config.keys
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in wanted.items():
        where = config.where("keys", binding_id)
        if binding_id not in known:
            problems.append(
                f"{where}: [keys] {binding_id!r} is no binding id (README, Keys, lists them);"
                " ignored"
            )
        elif problem := key_problem(keys, names):
            problems.append(f"{where}: [keys] {binding_id}: {problem}; its default key is kept")
        else:
            keymap[binding_id] = keys
    return keymap, problems
