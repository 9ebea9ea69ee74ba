from __future__ import annotations

import io

from perf.progress import Planned, Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_and_time_left_from_the_measured_pace() -> None:
    clock = Clock()
    out = io.StringIO()
    progress = Progress(
        [Planned("a", 10.0), Planned("b", 30.0), Planned("c", 60.0)], stream=out, clock=clock
    )
    progress.start("a")
    assert out.getvalue() == "[1/3] a  elapsed 0:00  left ?\n"
    assert progress.remaining_s() is None
    clock.now += 20.0  # "a" took twice its estimate: the rest will too
    progress.done("a")
    assert progress.remaining_s() == 180.0
    progress.start("b")
    assert out.getvalue().splitlines()[-1] == "[2/3] b  elapsed 0:20  left ~3:00"
    progress.note("hello")
    assert out.getvalue().endswith("hello\n")
    assert progress.total == 3


def test_format_duration_rounds() -> None:
    assert format_duration(59.6) == "1:00"
    assert format_duration(-3) == "0:00"
