"""Differential profiles: which functions' shares changed from base to head. Pure.

For a regressed benchmark the gate profiles base and head on that scenario
(``perf.profiling.differential``) and puts two tables in the report: CPU (each function's
share of py-spy's samples taken inside the scenario runs, self time: the function was the
innermost Python frame) and
allocated bytes (each function's share of memray's allocated bytes, summed over its
allocation sites). A row is one function; ``change_pp`` is head's share minus base's in
percentage points; rows are ranked by the size of that change (ties by name), so a
function made slower rises to the top and the functions it displaced follow with small
negative changes. Each row links both sides' flame graphs (for py-spy's SVG, with
``?s=<function>`` so the viewer highlights it).

Shares, not absolute times: the two sides ran for different lengths, and a share says
where the time went in each. A sampling profile's share has a binomial error of about
``sqrt(p (1 - p) / samples)``; ``noise_pp`` states it for each row's larger share so a
reader can tell a change from sampling noise.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from perf.profiling.profiles import CpuProfile, MemoryStats

__all__ = ["DEFAULT_TOP_ROWS", "DiffRow", "DiffTable", "alloc_diff", "cpu_diff", "diff_shares"]

DEFAULT_TOP_ROWS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffRow:
    """One function: shares in 0..1, ``change_pp`` in percentage points; links are paths
    relative to the run folder."""

    function: str
    base_share: float
    head_share: float
    change_pp: float
    noise_pp: float | None
    base_link: str
    head_link: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffTable:
    """``kind`` is "cpu" (share of samples) or "alloc" (share of allocated bytes)."""

    kind: str
    unit: str
    base_total: float
    head_total: float
    base_flamegraph: str
    head_flamegraph: str
    rows: tuple[DiffRow, ...]


def _function_name(key: str) -> str:
    """``"name (file)"`` -> ``"name"``, the term a flame graph search matches."""
    return key.split(" (", 1)[0]


def _svg_link(path: str, key: str) -> str:
    if not path.endswith(".svg"):
        return path
    return f"{path}?s={urllib.parse.quote(_function_name(key), safe='')}"


def diff_shares(
    base: Mapping[str, float],
    head: Mapping[str, float],
    *,
    base_link: str = "",
    head_link: str = "",
    samples: tuple[int, int] | None = None,
    top: int = DEFAULT_TOP_ROWS,
) -> tuple[DiffRow, ...]:
    """Rows for the ``top`` functions whose share grew most, then those whose share fell
    most (change to 0.01 percentage points, then the larger share, then name). Shares sum
    to one, so a function that got slower takes share from all the others: a large
    function's share falls with nothing changed in it, and must not outrank the one that
    grew. ``samples`` (base, head) gives each row a binomial sampling error."""
    if top < 1:
        raise ValueError("top must be >= 1")
    rows = []
    for key in set(base) | set(head):
        b = base.get(key, 0.0)
        h = head.get(key, 0.0)
        noise = None
        if samples is not None and min(samples) > 0:
            noise = 100.0 * math.sqrt(b * (1 - b) / samples[0] + h * (1 - h) / samples[1])
        rows.append(
            DiffRow(
                function=key,
                base_share=b,
                head_share=h,
                change_pp=(h - b) * 100.0,
                noise_pp=noise,
                base_link=_svg_link(base_link, key),
                head_link=_svg_link(head_link, key),
            )
        )
    # Changes equal to 0.01 pp rank by the larger share, so that unchanged rows are the
    # functions that matter rather than an arbitrary few.
    rows.sort(key=_rank)
    return tuple(rows[:top])


def _rank(row: DiffRow) -> tuple[bool, float, float, str]:
    change = round(row.change_pp, 2)
    return (change <= 0, -abs(change), -max(row.base_share, row.head_share), row.function)


def cpu_diff(
    base: CpuProfile,
    head: CpuProfile,
    *,
    base_flamegraph: str = "",
    head_flamegraph: str = "",
    top: int = DEFAULT_TOP_ROWS,
) -> DiffTable:
    """CPU table: self shares of the samples."""
    return DiffTable(
        kind="cpu",
        unit="share of CPU samples",
        base_total=float(base.samples),
        head_total=float(head.samples),
        base_flamegraph=base_flamegraph,
        head_flamegraph=head_flamegraph,
        rows=diff_shares(
            base.self_share,
            head.self_share,
            base_link=base_flamegraph,
            head_link=head_flamegraph,
            samples=(base.samples, head.samples),
            top=top,
        ),
    )


def _byte_shares(stats: MemoryStats) -> dict[str, float]:
    total = stats.allocated_bytes
    if total <= 0:
        return {}
    return {k: v / total for k, v in stats.function_bytes.items()}


def alloc_diff(
    base: MemoryStats,
    head: MemoryStats,
    *,
    base_flamegraph: str = "",
    head_flamegraph: str = "",
    top: int = DEFAULT_TOP_ROWS,
) -> DiffTable:
    """Allocation table: each function's share of all bytes memray saw allocated (over the
    sites ``memray stats -n`` listed; the rest of the bytes are in no row)."""
    return DiffTable(
        kind="alloc",
        unit="share of allocated bytes",
        base_total=float(base.allocated_bytes),
        head_total=float(head.allocated_bytes),
        base_flamegraph=base_flamegraph,
        head_flamegraph=head_flamegraph,
        rows=diff_shares(
            _byte_shares(base),
            _byte_shares(head),
            base_link=base_flamegraph,
            head_link=head_flamegraph,
            top=top,
        ),
    )
