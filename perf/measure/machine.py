"""Watch the machine during a gate run: load averages and the CPU other processes use."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

import psutil

__all__ = ["MachineLoad", "MachineWatch"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineLoad:
    """The machine during the run, measured: load averages before and after, and the CPU
    share used by processes other than the gate's own (sampled every second)."""

    load_avg_before: tuple[float, float, float]
    load_avg_after: tuple[float, float, float]
    other_cpu_pct_mean: float
    other_cpu_pct_max: float
    samples: int


class MachineWatch:
    """Samples, once per ``interval_s``, the share of all CPUs busy in processes outside
    this process's tree (the gate and the workers it starts), as a percentage of the whole
    machine. Use as a context manager; ``result()`` afterwards."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)
        self._me = psutil.Process()
        self._samples: list[float] = []
        self._before: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._after: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._ncpu = psutil.cpu_count() or 1

    def _tree_cpu_s(self) -> float:
        total = 0.0
        procs = [self._me]
        with contextlib.suppress(psutil.Error):
            procs += self._me.children(recursive=True)
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def _run(self) -> None:
        busy0 = _busy_s()
        tree0 = self._tree_cpu_s()
        while not self._stop.wait(self._interval_s):
            busy1 = _busy_s()
            tree1 = self._tree_cpu_s()
            other = max(0.0, (busy1 - busy0) - max(0.0, tree1 - tree0))
            self._samples.append(100.0 * other / (self._interval_s * self._ncpu))
            busy0, tree0 = busy1, tree1

    def __enter__(self) -> MachineWatch:
        self._before = os.getloadavg()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._after = os.getloadavg()

    def result(self) -> MachineLoad:
        samples = self._samples or [0.0]
        return MachineLoad(
            load_avg_before=self._before,
            load_avg_after=self._after,
            other_cpu_pct_mean=sum(samples) / len(samples),
            other_cpu_pct_max=max(samples),
            samples=len(self._samples),
        )


def _busy_s() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0)) + float(
        getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)
    )
