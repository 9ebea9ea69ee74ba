"""perf.workload.library: crucible's names from the tree being measured, public or, in a tree
older than crucible's public modules, private. The profile target has its own copy of the
fallback (it cannot import perf); both are tried on such a tree here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import crucible.loader
import crucible.measure
import crucible.workload
from perf.workload import library

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = ("daemon.py", "loader.py", "measure.py", "workload.py")


def test_names_come_from_the_public_modules() -> None:
    assert library.HAS_PUBLIC_MODULES
    assert library.RunSpec is crucible.measure.RunSpec
    assert library.measure is crucible.measure.measure
    assert library.get_scenario is crucible.workload.get_scenario
    assert library.resolve_factory is crucible.loader.resolve_factory
    assert set(library.__all__) <= set(dir(library))


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source tree whose crucible predates the public modules: only the private ones."""
    tree = tmp_path_factory.mktemp("old-tree")
    shutil.copytree(
        ROOT / "crucible", tree / "crucible", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in PUBLIC_MODULES:
        (tree / "crucible" / name).unlink()
    return tree


def _run(code: str, tree: Path, cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tree)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_tree_without_the_public_modules_gets_the_private_ones(old_tree: Path) -> None:
    # As perf.measure.sample does: the measured tree first on sys.path, then the import.
    code = """if True:
        import json, sys
        sys.path.insert(0, sys.argv[1])
        import crucible
        from perf.workload import library
        print(json.dumps({
            "crucible": crucible.__file__,
            "public": library.HAS_PUBLIC_MODULES,
            "RunSpec": library.RunSpec.__module__,
            "get_scenario": library.get_scenario.__module__,
            "load_coordinator": library.load_coordinator.__module__,
        }))
    """
    seen = _run(code, old_tree, ROOT)
    assert Path(seen["crucible"]).is_relative_to(old_tree)
    assert not seen["public"]
    assert (seen["RunSpec"], seen["get_scenario"], seen["load_coordinator"]) == (
        "crucible._measure",
        "crucible._workload",
        "crucible._loader",
    )


def test_the_profile_target_falls_back_to_the_private_modules_too(old_tree: Path) -> None:
    # As perf.profile runs it: by path, in the tree, with only the tree on the path.
    code = f"""if True:
        import json, runpy, sys
        sys.path.insert(0, sys.argv[1])
        target = runpy.run_path({str(ROOT / "perf" / "profiling" / "target.py")!r})
        loader, measure, workload = target["_crucible"]()
        import crucible
        print(json.dumps({{
            "crucible": crucible.__file__,
            "modules": [loader.__name__, measure.__name__, workload.__name__],
        }}))
    """
    seen = _run(code, old_tree, old_tree)
    assert Path(seen["crucible"]).is_relative_to(old_tree)
    assert seen["modules"] == ["crucible._loader", "crucible._measure", "crucible._workload"]
