"""A small sampling profiler for threaded servers (py-spy is not installed here).

Every INTERVAL seconds it walks every other thread's Python stack and counts the innermost
frame (self) and every frame on the stack (cumulative). Time a thread spends inside a C call
(a TLS handshake, an fsync) is charged to the Python frame that made the call. Used by
bench/serve.py when BENCH_PROFILE=path is set.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path


def _where(code: object) -> str:
    filename = code.co_filename  # type: ignore[attr-defined]
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{code.co_name}"  # type: ignore[attr-defined]


class Sampler:
    def __init__(self, interval: float = 0.002, idle: tuple[str, ...] = ()) -> None:
        self.interval = interval
        self.idle = idle  # innermost frames that mean "waiting", not working
        self.self_counts: collections.Counter[str] = collections.Counter()
        self.cumulative: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.is_set():
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                stack = []
                while frame is not None:
                    stack.append(_where(frame.f_code))
                    frame = frame.f_back
                if not stack or any(stack[0].endswith(name) for name in self.idle):
                    continue
                self.samples += 1
                self.self_counts[stack[0]] += 1
                for where in set(stack):
                    self.cumulative[where] += 1
            time.sleep(self.interval)

    def dump(self, path: Path) -> None:
        self._stop.set()
        self._thread.join()
        lines = [f"busy samples {self.samples}", "SELF"]
        lines += [f"{n:7d} {where}" for where, n in self.self_counts.most_common(40)]
        lines.append("CUMULATIVE")
        lines += [f"{n:7d} {where}" for where, n in self.cumulative.most_common(80)]
        path.write_text("\n".join(lines) + "\n")
