"""perf.profiling.differential: base and head profiled, their tables linked to both sides."""

from __future__ import annotations

import io
from pathlib import Path

from perf.paths import REPO_ROOT
from perf.profiling.capture import CaptureOptions
from perf.profiling.differential import differential
from tests.capture_fixtures import listed_files_exist


def test_differential_same_tree_links_both_sides(tmp_path: Path) -> None:
    options = CaptureOptions(native=False, diff_seconds=0.3, flamegraphs=False)
    result = differential(
        tmp_path,
        "light",
        "core",
        REPO_ROOT,
        REPO_ROOT,
        options=options,
        stream=io.StringIO(),
        top=5,
    )
    listed_files_exist(tmp_path, result.artifacts)
    assert (tmp_path / "profiles/diff/core-light/diff.json").is_file()
    if result.cpu is None:
        assert any("py-spy" in n for n in result.notes)
    else:
        assert 0 < len(result.cpu.rows) <= 5
        row = result.cpu.rows[0]
        assert row.base_link.startswith("profiles/diff/core-light/base/pyspy.svg?s=")
        assert row.head_link.startswith("profiles/diff/core-light/head/pyspy.svg?s=")
    if result.alloc is None:
        assert any("memray" in n for n in result.notes)
    else:
        # without flame graphs (to keep this test short) rows link the stats files
        assert result.alloc.base_flamegraph.endswith("base/memray-stats.json")
        assert result.alloc.rows
