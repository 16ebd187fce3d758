"""Benchmark 3: start to painted inbox, headless, with 0, 10,000 and 100,000 stored letters.

Each start is a fresh child process (`app_start.py --child PROFILE`) that imports the app, runs
make_app(profile) headless (App.run_test, 120x40) and reports the moment the letter list first
draws a row after the Inbox has loaded (LetterList.render_line wrapped: the first paint with
real content, or the "No letters" line when empty). The parent times from just before spawning
to that moment (CLOCK_MONOTONIC is shared by processes) and reads the child's peak RSS from
os.wait4. Each size runs RUNS times; the medians are compared with the empty profile's.
Targets: 100,000 letters <= 1.3x empty in time, peak RSS <= 1.5x empty.

In the same run, interleaved with the others, a Textual hello world (`--hello`: one Static,
the same run_test size, first paint = its first render) is timed the same way, and the JSON
line gains `hello_world_seconds` and `first_paint_ratio` (the empty profile's painted inbox
over the hello world's first paint): what the app costs over Textual itself.

    .venv/bin/python bench/app_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = (0, 10_000, 100_000)
TIME_TARGET = 1.3
RSS_TARGET = 1.5
LOADING = "Loading…"


def child(profile_dir: str) -> int:
    """Runs in the fresh process: start the app, print when the inbox is painted."""
    from misfin_tui.core.profile import Profile
    from misfin_tui.ui.app import make_app
    from misfin_tui.ui.widgets.letter_list import LetterList

    imported = time.monotonic()
    painted: dict[str, float] = {}
    original = LetterList.render_line

    def render_line(self, y):  # type: ignore[no-untyped-def]
        if "at" not in painted and self.id == "letters" and self.empty_text != LOADING:
            painted["at"] = time.monotonic()
            painted["rows"] = len(self.letters)
        return original(self, y)

    LetterList.render_line = render_line  # type: ignore[method-assign]

    async def run() -> None:
        app = make_app(Profile.open(profile_dir), start_receiver=False)
        async with app.run_test(headless=True, size=(120, 40)) as pilot:
            deadline = time.monotonic() + 120
            while "at" not in painted and time.monotonic() < deadline:
                await pilot.pause(0.005)

    asyncio.run(run())
    print(json.dumps({"imported": imported, **painted}), flush=True)
    return 0 if "at" in painted else 1


def hello_child() -> int:
    """Runs in the fresh process: a Textual hello world, print when it first paints."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    imported = time.monotonic()
    painted: dict[str, float] = {}

    class Hello(Static):
        def render(self):  # type: ignore[no-untyped-def]
            painted.setdefault("at", time.monotonic())
            return super().render()

    class HelloApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Hello("Hello, world")

    async def run() -> None:
        async with HelloApp().run_test(headless=True, size=(120, 40)) as pilot:
            deadline = time.monotonic() + 60
            while "at" not in painted and time.monotonic() < deadline:
                await pilot.pause(0.005)

    asyncio.run(run())
    print(json.dumps({"imported": imported, "rows": 1, **painted}), flush=True)
    return 0 if "at" in painted else 1


def one_start(profile_dir: Path | None) -> dict:
    """One fresh process: the app on `profile_dir`, or the hello world when None."""
    began = time.monotonic()
    which = ["--hello"] if profile_dir is None else ["--child", str(profile_dir)]
    with tempfile.TemporaryFile() as errors:  # shown only when the start failed
        proc = subprocess.Popen(
            [sys.executable, __file__, *which],
            stdout=subprocess.PIPE,
            stderr=errors,
            env={**os.environ, "MISFIN_TUI_NETWORK": "bench-net", "TEXTUAL_ANIMATIONS": "none"},
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out.strip():
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace"))
            raise RuntimeError(f"the app did not paint its inbox (exit {proc.returncode})")
    info = json.loads(out.splitlines()[-1])
    return {
        "seconds": info["at"] - began,
        "import_seconds": info["imported"] - began,
        "rows": info["rows"],
        "rss_mb": usage.ru_maxrss / 1024,
    }


def make_profile(root: Path, letters: int) -> Path:
    from corpus import seeded_db

    from misfin_tui.core.address import Address
    from misfin_tui.core.profile import DB_FILE, Profile

    folder = root / f"profile-{letters}"
    if letters:
        seeded_db(letters, folder / DB_FILE)
    profile = Profile.open(folder)
    profile.create_identity(Address.parse("bob@example.org"), "Bob")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", metavar="PROFILE")
    parser.add_argument("--hello", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    if args.hello:
        return hello_child()
    from common import compile_package, report

    compile_package()
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="misfin-bench-") as tmp:
        profiles = {size: make_profile(Path(tmp), size) for size in SIZES}
        one_start(profiles[0])  # warm the OS file cache for the imports
        one_start(None)
        runs: dict[int, list[dict]] = {size: [] for size in SIZES}
        hello: list[float] = []
        for _ in range(args.runs):
            hello.append(one_start(None)["seconds"])
            for size in SIZES:  # interleaved, so load drift hits every size alike
                runs[size].append(one_start(profiles[size]))
        for size in SIZES:
            results[size] = {
                "seconds": statistics.median(r["seconds"] for r in runs[size]),
                "import_seconds": statistics.median(r["import_seconds"] for r in runs[size]),
                "rss_mb": statistics.median(r["rss_mb"] for r in runs[size]),
                "rows": runs[size][0]["rows"],
            }
    empty, big = results[0], results[SIZES[-1]]
    time_ratio = big["seconds"] / empty["seconds"]
    rss_ratio = big["rss_mb"] / empty["rss_mb"]
    hello_seconds = statistics.median(hello)
    report(
        "app_start",
        figure=big["seconds"],
        baseline=empty["seconds"],
        unit="s to painted inbox (100,000 letters vs empty)",
        target=f"time <= {TIME_TARGET}x empty, peak RSS <= {RSS_TARGET}x empty",
        passed=time_ratio <= TIME_TARGET and rss_ratio <= RSS_TARGET,
        rss_ratio=round(rss_ratio, 3),
        hello_world_seconds=round(hello_seconds, 3),
        first_paint_ratio=round(empty["seconds"] / hello_seconds, 3),
        runs=args.runs,
        sizes={
            str(size): {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
            for size, r in results.items()
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
