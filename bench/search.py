"""Benchmark 4: searching 100,000 letters (MailStore.search) and opening one (get + gemtext).

Queries are what a person types: a rare word, a common word, two words, a word being typed
(prefix), a sender's address, and a word that is nowhere. Each runs ROUNDS times; the figure is
the median over all of them (target <= 50 ms), with each query's median beside it. Opening a
letter = MailStore.get(id) + gemtext.parse(body) for random ids (target <= 20 ms median).
The baseline is the cost of the same FTS5 match counted in plain SQL (no rows built): the floor
any search over this index pays.

    .venv/bin/python bench/search.py [--letters 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ms, report  # noqa: E402
from corpus import common_word, rare_word, seeded_db, word  # noqa: E402

ROUNDS = 15
SEARCH_TARGET_MS = 50.0
OPEN_TARGET_MS = 20.0


def timed(fn, rounds: int) -> list[float]:
    fn()  # warm the page cache once
    samples = []
    for _ in range(rounds):
        begun = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - begun)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=100_000)
    args = parser.parse_args()
    from misfin_tui.core import gemtext
    from misfin_tui.core.database import Database
    from misfin_tui.core.store import MailStore, fts_query

    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        path = seeded_db(args.letters, Path(tmp) / "misfin.db")
        db = Database(path)
        store = MailStore(db)
        sender = store.summaries("Inbox", limit=1)[0].sender
        queries = {
            "rare word": rare_word(),
            "common word": common_word(),
            "two words": f"{common_word()} {word(40)}",
            "typing a prefix": word(321)[:4],
            "sender address": sender,
            "no match": "zzzqqq",
        }
        per_query = {}
        everything: list[float] = []
        floors: list[float] = []
        conn = db.connect()
        for label, text in queries.items():
            samples = timed(lambda text=text: store.search(text), ROUNDS)
            hits = len(store.search(text))
            per_query[label] = {
                "query": text,
                "median_ms": ms(statistics.median(samples)),
                "hits": hits,
            }
            everything += samples
            match = fts_query(text)
            floors += timed(
                lambda match=match: conn.execute(
                    "SELECT COUNT(*) FROM letters_fts WHERE letters_fts MATCH ?", (match,)
                ).fetchone(),
                ROUNDS,
            )
        rng = random.Random(7)
        top = store.latest_id()
        ids = [rng.randint(1, top) for _ in range(200)]

        def open_letter(letter_id: int) -> None:
            letter = store.get(letter_id)
            assert letter is not None
            gemtext.parse(letter.body)

        opening = []
        for letter_id in ids:
            begun = time.perf_counter()
            open_letter(letter_id)
            opening.append(time.perf_counter() - begun)
        db.close()
    search_median = statistics.median(everything)
    open_median = statistics.median(opening)
    report(
        "search",
        figure=ms(search_median),
        baseline=ms(statistics.median(floors)),
        unit="ms per search (median over all queries)",
        target=f"search <= {SEARCH_TARGET_MS:g} ms, open <= {OPEN_TARGET_MS:g} ms",
        passed=ms(search_median) <= SEARCH_TARGET_MS and ms(open_median) <= OPEN_TARGET_MS,
        letters=args.letters,
        search_p90_ms=ms(statistics.quantiles(everything, n=10)[-1]),
        queries=per_query,
        open_median_ms=ms(open_median),
        open_p99_ms=ms(sorted(opening)[int(0.99 * (len(opening) - 1))]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
