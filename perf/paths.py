"""Where the gate's own files live: the one place that knows the repository's layout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BASELINES", "DEFAULT_OUTPUT", "REPO_ROOT", "SUITE_SCRIPTS", "TEMPLATES"]

# perf/paths.py -> perf/ -> the repository (or source tree) root
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "templates"
BASELINES = REPO_ROOT / "baselines"
DEFAULT_OUTPUT = REPO_ROOT / "benchmark_results"
# The pyperf suite scripts, ``bench_<suite>.py``, run by path.
SUITE_SCRIPTS = REPO_ROOT / "perf" / "measure"
