"""tox.ini mirrors noxfile.py: the same environments, install lines and commands.

Both files are read as text: tox.ini with configparser, noxfile.py with ``ast`` (each
session's ``session.install`` and ``session.run`` calls), so neither tool is needed to run
the test. Arguments are rendered in tox's terms: ``*session.posargs`` is ``{posargs}`` and
a starred local built with ``Path.glob`` is ``{glob:PATTERN}``, its pattern spelled by the
string literals of the expression (``ROOT / ".github" / "workflows"`` then ``"*.yml"``).
Anything else that is not a literal renders as ``{<source>}``, which no tox command holds,
so the comparison fails and shows it.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOXFILE = ROOT / "noxfile.py"
TOX_INI = ROOT / "tox.ini"
SHARED = ("tests", "lint", "perf_quick", "perf_full", "perf_baseline")


@dataclass(frozen=True, slots=True)
class Install:
    """What an environment installs: the project (editable, non-editable or none), its
    extras, dependency groups from pyproject.toml and any other requirements."""

    project: str
    extras: frozenset[str]
    groups: frozenset[str]
    deps: frozenset[str]


@dataclass(frozen=True, slots=True)
class Environment:
    install: Install
    commands: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Config:
    defaults: tuple[str, ...]
    environments: dict[str, Environment]


# noxfile.py


def _session_method(call: ast.Call) -> str | None:
    """``run`` for ``session.run(...)``; None when the call is not a method of the session."""
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "session"
    ):
        return func.attr
    return None


def _is_session_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return ast.unparse(target) == "nox.session"


def _glob_pattern(func: ast.FunctionDef, name: str) -> str | None:
    """The pattern of ``name = ...(ROOT / "a" / "b").glob("*.x")...`` in ``func``, or None."""
    for node in ast.walk(func):
        if not (
            isinstance(node, ast.Assign)
            and [ast.unparse(t) for t in node.targets] == [name]
            and any(isinstance(n, ast.Attribute) and n.attr == "glob" for n in ast.walk(node))
        ):
            continue
        parts = sorted(
            (n for n in ast.walk(node.value) if isinstance(n, ast.Constant)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        return "/".join(str(p.value) for p in parts)
    return None


def _render(func: ast.FunctionDef, arg: ast.expr) -> str:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Starred):
        if ast.unparse(arg.value) == "session.posargs":
            return "{posargs}"
        if isinstance(arg.value, ast.Name):
            pattern = _glob_pattern(func, arg.value.id)
            if pattern is not None:
                return f"{{glob:{pattern}}}"
    return f"{{{ast.unparse(arg)}}}"


def _render_call(func: ast.FunctionDef, call: ast.Call) -> tuple[str, ...]:
    """The arguments in tox's terms; keywords (``env=``, ``external=``...) become
    ``{key=value}`` tokens, which no tox command holds."""
    keywords = (f"{{{ast.unparse(k)}}}" for k in call.keywords)
    return (*(_render(func, a) for a in call.args), *keywords)


def _dependency_groups(arg: ast.expr) -> list[str] | None:
    """The groups of ``*nox.project.dependency_groups(PYPROJECT, "a", "b")``, else None."""
    if not (
        isinstance(arg, ast.Starred)
        and isinstance(arg.value, ast.Call)
        and ast.unparse(arg.value.func) == "nox.project.dependency_groups"
    ):
        return None
    return [str(ast.literal_eval(a)) for a in arg.value.args[1:]]


def _nox_install(func: ast.FunctionDef, calls: list[ast.Call]) -> Install:
    args: list[str] = []
    groups: set[str] = set()
    for call in calls:
        for arg in call.args:
            found = _dependency_groups(arg)
            if found is None:
                args.append(_render(func, arg))
            else:
                groups.update(found)
        args.extend(f"{{{ast.unparse(k)}}}" for k in call.keywords)
    project = [a for a in args if a == "." or a.startswith(".[")]
    extras = {e.strip() for p in project if p.startswith(".[") for e in p[2:-1].split(",")}
    return Install(
        project=("editable" if "-e" in args else "non-editable") if project else "none",
        extras=frozenset(extras),
        groups=frozenset(groups),
        deps=frozenset(a for a in args if a != "-e" and a not in project),
    )


def _nox_session(func: ast.FunctionDef) -> Environment:
    calls = sorted(
        (n for n in ast.walk(func) if isinstance(n, ast.Call) and _session_method(n)),
        key=lambda n: (n.lineno, n.col_offset),
    )
    for call in calls:
        method = _session_method(call)
        assert method in ("install", "run"), (
            f"{func.name}: session.{method} has no counterpart in this test; "
            "mirror it in tox.ini by hand and teach tests/test_tox_config.py about it"
        )
    installs = [c for c in calls if _session_method(c) == "install"]
    commands = tuple(_render_call(func, c) for c in calls if _session_method(c) == "run")
    return Environment(_nox_install(func, installs), commands)


def load_nox(path: Path) -> Config:
    module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defaults: tuple[str, ...] = ()
    environments: dict[str, Environment] = {}
    for node in module.body:
        if (
            isinstance(node, ast.Assign)
            and [ast.unparse(t) for t in node.targets] == ["nox.options.sessions"]
            and isinstance(node.value, ast.List)
        ):
            defaults = tuple(str(ast.literal_eval(e)) for e in node.value.elts)
        if isinstance(node, ast.FunctionDef) and any(
            _is_session_decorator(d) for d in node.decorator_list
        ):
            environments[node.name] = _nox_session(node)
    return Config(defaults, environments)


# tox.ini


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"[,\s]+", value) if v]


def _commands(value: str) -> list[tuple[str, ...]]:
    joined = re.sub(r"\\\n", " ", value)
    lines = (line.strip() for line in joined.splitlines())
    return [tuple(shlex.split(line)) for line in lines if line and not line.startswith("#")]


def _value(parser: configparser.ConfigParser, section: str, key: str) -> str:
    """``key`` of ``section``, else of ``[testenv]`` (tox's fallback for run environments)."""
    return parser.get(section, key, fallback=parser.get("testenv", key, fallback=""))


def _tox_environment(parser: configparser.ConfigParser, section: str) -> Environment:
    def get(key: str) -> str:
        return _value(parser, section, key)

    if get("skip_install").strip().lower() == "true":
        project = "none"
    elif get("package").strip() in ("editable", "editable-legacy"):
        project = "editable"
    else:
        project = "non-editable"
    install = Install(
        project=project,
        extras=frozenset(_split(get("extras"))),
        groups=frozenset(_split(get("dependency_groups"))),
        deps=frozenset(line.strip() for line in get("deps").splitlines() if line.strip()),
    )
    commands = [_commands(get(key)) for key in ("commands_pre", "commands", "commands_post")]
    return Environment(install, tuple(c for part in commands for c in part))


def load_tox(path: Path) -> Config:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    environments = {
        section.removeprefix("testenv:"): _tox_environment(parser, section)
        for section in parser.sections()
        if section.startswith("testenv:")
    }
    defaults = tuple(_split(parser.get("tox", "env_list", fallback="")))
    return Config(defaults, environments)


@pytest.fixture(scope="module")
def nox_config() -> Config:
    return load_nox(NOXFILE)


@pytest.fixture(scope="module")
def tox_config() -> Config:
    return load_tox(TOX_INI)


def test_both_list_the_shared_environments(nox_config: Config, tox_config: Config) -> None:
    assert sorted(tox_config.environments) == sorted(SHARED)
    assert set(SHARED) <= set(nox_config.environments)


def test_default_environments_agree(nox_config: Config, tox_config: Config) -> None:
    assert tox_config.defaults == nox_config.defaults


@pytest.mark.parametrize("name", SHARED)
def test_commands_agree(name: str, nox_config: Config, tox_config: Config) -> None:
    nox_commands = nox_config.environments[name].commands
    assert nox_commands, f"nox session {name} runs nothing; the parse of noxfile.py failed"
    assert tox_config.environments[name].commands == nox_commands, (
        f"tox.ini [testenv:{name}] commands differ from noxfile.py {name}()"
    )


@pytest.mark.parametrize("name", SHARED)
def test_install_lines_agree(name: str, nox_config: Config, tox_config: Config) -> None:
    assert tox_config.environments[name].install == nox_config.environments[name].install, (
        f"tox.ini [testenv:{name}] installs differ from noxfile.py {name}()"
    )
