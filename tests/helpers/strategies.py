"""Hypothesis strategies more than one test module draws from."""

from __future__ import annotations

from hypothesis import strategies as st


def hosts(label: int = 12, dots: int = 3) -> st.SearchStrategy[str]:
    """Host names of lower-case labels. All-number hosts ("0", "1.2") are left out: they are
    IPv4 spellings, which an address accepts only as a dotted quad."""
    pattern = rf"[a-z0-9]{{1,{label}}}(\.[a-z0-9]{{1,{label}}}){{0,{dots}}}"
    return st.from_regex(pattern, fullmatch=True).filter(
        lambda host: not all(part.isdigit() or part.startswith("0x") for part in host.split("."))
    )
