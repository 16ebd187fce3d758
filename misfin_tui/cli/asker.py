"""The command line's side of the delivery conversation: ask on the terminal, or never.

Questions go to the controlling terminal (/dev/tty), since standard input may carry the
letter's body. Without a terminal, or with --no-input, nothing is answered: the letter stays
in the outbox, held for a decision, and the exit code says so (3).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import TextIO

from misfin_tui.cli import render
from misfin_tui.core.outbox.model import OutboxItem
from misfin_tui.core.trust.model import Answer, Choice, Question

ASKED = (
    Choice.TRUST,
    Choice.ONCE,
    Choice.VERIFY,
    Choice.TRUST_NETWORK,
    Choice.FOLLOW,
    Choice.HOLD,
    Choice.DROP,
)


class NoInput:
    """--no-input, or no terminal: every question is left for later."""

    async def ask(self, question: Question, problem: str) -> Answer | None:
        return None

    def ask_now(self, question: Question, problem: str) -> Answer | None:
        return None

    async def tell(self, item: OutboxItem) -> None:
        return None


class TerminalAsker:
    """Explains each question and reads a one-letter answer (and a paste) from the terminal."""

    def __init__(self, tty_in: TextIO, out: TextIO) -> None:
        self.tty_in = tty_in
        self.out = out

    async def ask(self, question: Question, problem: str) -> Answer | None:
        """ask_now on a daemon thread: Ctrl-C at the prompt ends the command at once. On the
        loop's executor (asyncio.to_thread) the interrupted run waited, while shutting down,
        for that thread's read of the terminal: the command hung until Enter was pressed."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Answer | None] = loop.create_future()

        def settle(result: Answer | None, error: BaseException | None) -> None:
            if answered.done():  # the run was cancelled meanwhile
                return
            if error is not None:
                answered.set_exception(error)
            else:
                answered.set_result(result)

        def work() -> None:
            result, error = None, None
            try:
                result = self.ask_now(question, problem)
            except BaseException as exc:  # handed to the awaiting task, raised there
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name="terminal-asker", daemon=True).start()
        return await answered

    async def tell(self, item: OutboxItem) -> None:
        return None  # the command reports every item when the conversation ends

    def ask_now(self, question: Question, problem: str) -> Answer | None:
        """Blocking: for callers on a thread of their own (a sync from home)."""
        out = self.out
        if problem:
            print(f"  {render.safe(problem)}", file=out)
        else:
            render.explain(question, out)
        choices = [c for c in ASKED if c in question.choices]
        if Choice.VERIFY in choices:
            print(
                "  If you were given a fingerprint, choose v and paste it; it is compared for you.",
                file=out,
            )
        for choice in choices:
            mark = " (default)" if choice is question.default else ""
            print(f"  [{choice.key}] {question.words(choice)}{mark}", file=out)
        keys = {c.key: c for c in choices}
        while True:
            line = self._read("  Your choice: ")
            if line is None:
                return None
            picked = keys.get((line.strip().lower() or question.default.key)[:1])
            if picked is None:  # say what is understood, rather than ask again in silence
                print(
                    f"  Type one of {', '.join(keys)} (Enter: {question.default.key}).",
                    file=out,
                )
                continue
            if picked is Choice.VERIFY:
                return Answer(picked, pasted=self._read("  Paste the fingerprint: ") or "")
            if picked is Choice.TRUST_NETWORK:
                label = self._read("  A name for this network (e.g. Home): ") or ""
                return Answer(picked, label=label.strip())
            return Answer(picked)

    def _read(self, prompt: str) -> str | None:
        print(prompt, end="", file=self.out, flush=True)
        line = self.tty_in.readline()
        return line.rstrip("\n") if line else None


def asker_for(no_input: bool) -> NoInput | TerminalAsker:
    """The terminal when there is one and questions are allowed, else NoInput."""
    if no_input:
        return NoInput()
    try:
        tty_in = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 (closed at exit)
    except OSError:
        return NoInput()
    if not tty_in.isatty():
        tty_in.close()
        return NoInput()
    return TerminalAsker(tty_in, sys.stderr)
