"""Progress of a run on stderr: which benchmark, n of m, elapsed and estimated time left.

The estimate starts from a rough a-priori cost per benchmark
(``perf.workload.cases.estimated_cost_s``) and, once a benchmark has finished, is scaled by
the measured pace of this run: time left = remaining estimated cost x (elapsed / estimated
cost of what is done).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Planned", "Progress", "format_duration"]


@dataclass(frozen=True, slots=True)
class Planned:
    name: str
    estimate_s: float


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` above an hour, else ``m:ss``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Tracks planned benchmarks; ``start`` and ``done`` print one line each to ``stream``."""

    def __init__(
        self,
        planned: Sequence[Planned],
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._planned = list(planned)
        self._index = {p.name: i for i, p in enumerate(self._planned)}
        self._done: set[str] = set()
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._t0 = clock()

    @property
    def total(self) -> int:
        return len(self._planned)

    def elapsed_s(self) -> float:
        return self._clock() - self._t0

    def remaining_s(self) -> float | None:
        """Estimated time left; None before anything has finished (no pace yet)."""
        done_est = sum(p.estimate_s for p in self._planned if p.name in self._done)
        if done_est <= 0:
            return None
        left_est = sum(p.estimate_s for p in self._planned if p.name not in self._done)
        return left_est * self.elapsed_s() / done_est

    def line(self, name: str, verb: str = "") -> str:
        n = self._index.get(name, -1) + 1
        width = len(str(self.total))
        left = self.remaining_s()
        left_text = "?" if left is None else f"~{format_duration(left)}"
        head = f"[{n:>{width}}/{self.total}]"
        return f"{head} {verb}{name}  elapsed {format_duration(self.elapsed_s())}  left {left_text}"

    def start(self, name: str) -> None:
        self._print(self.line(name))

    def done(self, name: str) -> None:
        self._done.add(name)

    def note(self, text: str) -> None:
        self._print(text)

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)
