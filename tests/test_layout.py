"""The shape of the code, checked: imports run downwards through perf/'s stages, no module
borrows another's private names, crucible's private modules stay private, and no module or
function grows past what a reader can hold (docs/layout.md says why)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "perf"
CRUCIBLE = ROOT / "crucible"

MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
# The coordinators' hot paths are tuned against instruction counts; a call per step costs
# measurably there (each says so in a comment), so they may stay long.
LONG_ALLOWED = {
    ("crucible/_core/core.py", "CrucibleCore._work"),
    ("crucible/_core/core.py", "CrucibleCore.publish"),
}
# A crucible private module may be imported by perf/ only on a line that says why.
PRIVATE_REASON = "private:"

# Stages, lowest first: a module may import its own stage and the stages below it.
STAGES: dict[str, int] = {
    "base": 0,  # perf/errors.py, progress.py, paths.py, files.py, rundir.py, options.py
    "workload": 1,
    "measure": 2,
    "profiling": 2,
    "decide": 3,
    "report": 4,
    "commands": 5,  # perf/gate.py, run.py, profile.py, __main__.py, __init__.py
    "tools": 5,
}
COMMANDS = {"gate", "run", "profile", "__main__", "__init__"}


def _stage(module: str) -> str:
    if module == "perf":  # the package's lazy re-exports stand above everything
        return "commands"
    parts = module.split(".")
    if len(parts) >= 3 or (len(parts) == 2 and parts[1] in STAGES):
        return parts[1]
    return "commands" if parts[-1] in COMMANDS else "base"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _py_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import, function-level ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _functions(path: Path) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function and method."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                end = child.end_lineno or child.lineno
                yield name, child.lineno, end - child.lineno + 1
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), "")


def test_stage_of_a_module() -> None:
    assert _stage("perf.errors") == "base"
    assert _stage("perf.gate") == "commands"
    assert _stage("perf.decide") == "decide"
    assert _stage("perf.decide.verdict") == "decide"
    assert _stage("perf.report.render") == "report"


def test_perf_imports_run_downwards_only() -> None:
    wrong = []
    for path in _py_files(PERF):
        here = _module_name(path)
        for line, module, _ in _imports(path):
            if module == "perf" or not module.startswith("perf."):
                continue
            if STAGES[_stage(module)] > STAGES[_stage(here)]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({_stage(here)}) imports {module}")
    assert not wrong, "imports that run upwards:\n" + "\n".join(wrong)


def test_no_perf_module_imports_another_modules_private_names() -> None:
    wrong = []
    for path in _py_files(PERF):
        for line, module, names in _imports(path):
            if not module.startswith(("perf", "crucible")):
                continue
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {module}: {', '.join(private)}")
    assert not wrong, "private names imported:\n" + "\n".join(wrong)


def test_perf_imports_crucible_private_modules_only_where_a_comment_says_why() -> None:
    wrong = []
    for path in _py_files(PERF):
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, module, _ in _imports(path):
            if not any(part.startswith("_") for part in module.split(".")[1:]):
                continue
            if not module.startswith("crucible."):
                continue
            said = lines[line - 1] + (lines[line - 2] if line >= 2 else "")
            if PRIVATE_REASON not in said:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "crucible private modules imported without a reason:\n" + "\n".join(wrong)


def test_no_perf_module_is_longer_than_a_reader_can_hold() -> None:
    long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in _py_files(PERF)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


@pytest.mark.parametrize("folder", [PERF, CRUCIBLE], ids=["perf", "crucible"])
def test_no_function_is_longer_than_a_reader_can_hold(folder: Path) -> None:
    long = []
    for path in _py_files(folder):
        rel = path.relative_to(ROOT).as_posix()
        for name, line, length in _functions(path):
            if length > MAX_FUNCTION_LINES and (rel, name) not in LONG_ALLOWED:
                long.append(f"{rel}:{line} {name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_the_hot_paths_allowed_to_be_long_say_why() -> None:
    source = (CRUCIBLE / "_core" / "core.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    for rel, qualified in LONG_ALLOWED:
        cls, name = qualified.split(".")
        (node,) = (
            f
            for c in tree.body
            if isinstance(c, ast.ClassDef) and c.name == cls
            for f in c.body
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.name == name
        )
        body = "\n".join(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
        assert "instruction count" in body, f"{rel} {qualified} does not say why it is long"


def test_one_json_writer() -> None:
    writers = []
    for path in _py_files(PERF):
        if path == PERF / "files.py":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("json.dump(", "def _write_json"):
            if needle in text:
                writers.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not writers, "JSON written outside perf/files.py:\n" + "\n".join(writers)
