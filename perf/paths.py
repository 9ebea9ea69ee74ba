"""Where the gate's own files live: the one place that knows the repository's layout."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BASELINES",
    "DEFAULT_OUTPUT",
    "REPO_ROOT",
    "SUITE_SCRIPTS",
    "TEMPLATES",
    "display_path",
]

# perf/paths.py -> perf/ -> the repository (or source tree) root
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "templates"
BASELINES = REPO_ROOT / "baselines"
DEFAULT_OUTPUT = REPO_ROOT / "benchmark_results"
# The pyperf suite scripts, ``bench_<suite>.py``, run by path.
SUITE_SCRIPTS = REPO_ROOT / "perf" / "measure"


def display_path(path: Path, root: Path = REPO_ROOT) -> str:
    """``path`` as reports and messages show it: relative to the repository when inside it
    (``baselines/quick.json``), so a report says nothing of the machine's folders; as
    given otherwise."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
