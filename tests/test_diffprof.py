"""perf.profiling.diffprof: differential tables from known shares."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from perf.profiling.diffprof import alloc_diff, cpu_diff, diff_shares
from perf.profiling.profiles import CpuProfile, MemoryStats


def cpu(shares: dict[str, float], samples: int = 1000) -> CpuProfile:
    return CpuProfile(
        source="test",
        samples=samples,
        weight=samples / 100,
        unit="seconds",
        threads=1,
        self_share=MappingProxyType(shares),
        total_share=MappingProxyType(shares),
    )


def test_rows_rank_by_size_of_change() -> None:
    base = {"a (x.py)": 0.50, "b (x.py)": 0.30, "c (y.py)": 0.20}
    head = {"a (x.py)": 0.40, "b (x.py)": 0.24, "c (y.py)": 0.16, "slow (z.py)": 0.20}
    rows = diff_shares(base, head)
    assert [r.function for r in rows] == ["slow (z.py)", "a (x.py)", "b (x.py)", "c (y.py)"]
    assert rows[0].change_pp == pytest.approx(20.0)
    assert rows[0].base_share == 0.0
    assert rows[1].change_pp == pytest.approx(-10.0)


def test_a_small_growth_outranks_a_large_fall() -> None:
    # publish got 4 % slower: its share grows by about 3 pp, and the big worker loop's
    # share falls by more with nothing changed in it.
    base = {"work (w.py)": 0.60, "publish (p.py)": 0.10, "other (o.py)": 0.30}
    head = {"work (w.py)": 0.56, "publish (p.py)": 0.13, "other (o.py)": 0.31}
    rows = diff_shares(base, head)
    assert [r.function for r in rows] == ["publish (p.py)", "other (o.py)", "work (w.py)"]
    assert rows[2].change_pp == pytest.approx(-4.0)


def test_ties_break_by_name_and_top_limits() -> None:
    rows = diff_shares({"b": 0.1, "a": 0.1}, {}, top=1)
    assert [r.function for r in rows] == ["a"]
    with pytest.raises(ValueError):
        diff_shares({}, {}, top=0)


def test_cpu_table_links_both_flame_graphs_with_search() -> None:
    table = cpu_diff(
        cpu({"Deduplicator.admit (crucible/_core/dedup.py)": 0.05}),
        cpu({"Deduplicator.admit (crucible/_core/dedup.py)": 0.25}),
        base_flamegraph="profiles/diff/core-medium/base/pyspy.svg",
        head_flamegraph="profiles/diff/core-medium/head/pyspy.svg",
    )
    (row,) = table.rows
    assert row.base_link == "profiles/diff/core-medium/base/pyspy.svg?s=Deduplicator.admit"
    assert row.head_link == "profiles/diff/core-medium/head/pyspy.svg?s=Deduplicator.admit"
    assert table.kind == "cpu" and table.base_total == 1000
    # binomial error of the two shares over 1000 samples each, in percentage points
    assert row.noise_pp == pytest.approx(100 * ((0.05 * 0.95 + 0.25 * 0.75) / 1000) ** 0.5)


def test_alloc_table_uses_shares_of_all_bytes() -> None:
    def stats(total: int, functions: dict[str, int]) -> MemoryStats:
        return MemoryStats(
            source="t",
            allocations=1,
            allocated_bytes=total,
            peak_bytes=total,
            site_bytes=MappingProxyType({}),
            site_allocations=MappingProxyType({}),
            site_frames=MappingProxyType({}),
            function_bytes=MappingProxyType(functions),
            module_bytes=MappingProxyType({}),
            module_allocations=MappingProxyType({}),
            sites_listed=len(functions),
            python_allocator="pymalloc",
            trace_python_allocators=False,
            native_traces=False,
        )

    table = alloc_diff(
        stats(1000, {"f (a.py)": 500}),
        stats(2000, {"f (a.py)": 500, "g (b.py)": 1200}),
        base_flamegraph="b.html",
        head_flamegraph="h.html",
    )
    assert [r.function for r in table.rows] == ["g (b.py)", "f (a.py)"]
    assert table.rows[0].head_share == pytest.approx(0.6)
    assert table.rows[1].change_pp == pytest.approx(-25.0)
    assert table.rows[0].head_link == "h.html"  # no search parameter for memray's HTML
