"""Benchmark: grouping 100,000 letter summaries into threads (core.threads.build_threads).

Synthetic conversations like a real mailbox: 400 correspondents, conversations of 1-8 letters
whose replies carry Re:/Fwd: prefixes and alternate between them and us, some with a second
correspondent, a few links (our replies' in_reply_to), a tenth unread, dates over five years,
shuffled. The figure is the median of ROUNDS runs of build_threads; the baseline is a plain
sort of the same list by (received_at, id), the floor of any newest-first view (target: at
most 5x that sort, which build_threads itself does once; compare ratios, the absolute
figures swing 2x with this shared machine's load).

    .venv/bin/python bench/threads.py [--letters 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import ms, report  # noqa: E402
from corpus import word  # noqa: E402

from misfin_tui.core.store import Summary  # noqa: E402
from misfin_tui.core.threads import build_threads  # noqa: E402

ROUNDS = 5
TARGET_RATIO = 5.0
ME = "me@home.example"


def synthetic(count: int, seed: int = 1958) -> tuple[list[Summary], dict[int, int]]:
    rng = random.Random(seed)
    people = [f"{word(n * 7)}@{word(n % 37)}.example" for n in range(400)]
    start = datetime(2021, 1, 1, tzinfo=UTC)
    letters: list[Summary] = []
    links: dict[int, int] = {}
    conversation = 0
    while len(letters) < count:
        conversation += 1
        subject = f"{word(rng.randrange(6000)).capitalize()} {word(conversation)}"
        them = rng.sample(people, 2 if rng.random() < 0.2 else 1)
        when = start + timedelta(seconds=rng.randrange(5 * 365 * 86400))
        previous: int | None = None
        for step in range(min(rng.randint(1, 8), count - len(letters))):
            letter_id = len(letters) + 1
            ours = step % 2 == 1
            prefix = "" if step == 0 else rng.choice(["Re: ", "RE: ", "Re: Re: ", "Fwd: "])
            letters.append(
                Summary(
                    id=letter_id,
                    folder="Sent" if ours else "Inbox",
                    sender=ME if ours else them[0],
                    sender_blurb="",
                    subject=prefix + subject,
                    received_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    unread=not ours and rng.random() < 0.1,
                    trust="verified",
                    recipients=tuple(them) if ours else (ME, *them[1:]),
                )
            )
            if ours and previous is not None and rng.random() < 0.5:
                links[letter_id] = previous
            previous = letter_id
            when += timedelta(seconds=rng.randrange(60, 3 * 86400))
    rng.shuffle(letters)
    return letters, links


def median_seconds(fn: object, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        begun = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - begun)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--letters", type=int, default=100_000)
    args = parser.parse_args()
    letters, links = synthetic(args.letters)
    baseline = median_seconds(
        lambda: sorted(letters, key=attrgetter("received_at", "id"), reverse=True), ROUNDS
    )
    figure = median_seconds(lambda: build_threads(letters, me=[ME], links=links), ROUNDS)
    threads = build_threads(letters, me=[ME], links=links)
    report(
        "threads",
        figure=figure,
        baseline=baseline,
        unit="s to group letters into threads (vs a plain sort of the same list)",
        target=f"<= {TARGET_RATIO}x a plain sort of {args.letters} summaries",
        passed=figure <= TARGET_RATIO * baseline,
        letters=args.letters,
        threads=len(threads),
        largest=max(t.count for t in threads),
        figure_ms=ms(figure),
        baseline_ms=ms(baseline),
        rounds=ROUNDS,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
