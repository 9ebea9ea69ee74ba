"""Sessions: tests and lint by default; the perf sessions are run by name."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest)."""
    session.install("-e", ".[profile]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style, formatting, types and workflows (ruff, mypy, check-jsonschema)."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("python", "-m", "perf.tools.check_workflows", *workflows)


@nox.session(default=False)
def perf_quick(session: nox.Session) -> None:
    """Gate the head: against its base commit (PR mode) or the stored baseline."""
    session.install("-e", ".[profile]")
    session.run("python", "-m", "perf", "gate", "--set", "quick", *session.posargs)


@nox.session(default=False)
def perf_full(session: nox.Session) -> None:
    """Measure every pyperf suite (stress included) and profile, then gate the head."""
    session.install("-e", ".[profile]")
    session.run(
        "python",
        "-m",
        "perf",
        "gate",
        "--set",
        "quick",
        "--suites-set",
        "full",
        "--profile",
        *session.posargs,
    )


@nox.session(default=False)
def perf_baseline(session: nox.Session) -> None:
    """Measure the head and store it as baselines/quick.json (the only writer of baselines)."""
    session.install("-e", ".")
    session.run(
        "python", "-m", "perf", "gate", "--set", "quick", "--write-baseline", *session.posargs
    )


@nox.session(default=False)
def perf_suites(session: nox.Session) -> None:
    """Measure the pyperf suites of one tree, no verdict (python -m perf run)."""
    session.install("-e", ".")
    session.run("python", "-m", "perf", "run", *session.posargs)


@nox.session(default=False)
def perf_daemon(session: nox.Session) -> None:
    """CrucibleCore through its daemon beside in-process, against the daemon's targets
    (python -m perf.tools.daemon_speed)."""
    session.install("-e", ".[daemon]")
    session.run("python", "-m", "perf.tools.daemon_speed", *session.posargs)


@nox.session(default=False)
def perf_profile(session: nox.Session) -> None:
    """Capture memray and py-spy profiles of each coordinator (python -m perf profile)."""
    session.install("-e", ".[profile]")
    session.run("python", "-m", "perf", "profile", *session.posargs)
