"""Errors of the perf gate, and the exit codes the gate ends with.

Every error the gate raises on purpose derives from one root, and every one of them means
the same thing to CI: the gate could not decide (exit 2). None of them ever turns into a
pass, and none is skipped with a warning.

Hierarchy::

    GateError           the gate could not decide                                  exit 2
    ├── BaselineError   stored baseline missing, corrupt, incompatible with this
    │                   machine, or written by a newer schema than this gate reads
    ├── ResultError     a benchmark result missing, with zero samples, present on
    │                   one side only, non-finite, or from a crashed worker
    ├── ConfigError     a bad ``[tool.crucible-perf]`` policy in pyproject.toml
    ├── RefError        the base git ref does not exist
    └── OutputError     the output folder cannot be written

Each error carries what went wrong (``message``), the file, ref or benchmark it concerns
(``subject``) and the command or edit that fixes it (``fix``); ``str(error)`` reads as one
sentence naming all three.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "EXIT_INTERRUPTED",
    "BaselineError",
    "ConfigError",
    "ExitCode",
    "GateError",
    "OutputError",
    "RefError",
    "ResultError",
    "exit_code",
]


class ExitCode(IntEnum):
    """The gate's exit status, the one contract CI reads.

    ``PASS`` (0): no regression. ``REGRESSION`` (1): at least one comparison failed.
    ``UNDECIDED`` (2): the gate itself could not decide - any :class:`GateError`, any
    unexpected exception, and an inconclusive run under ``--strict``
    (see :func:`perf.decide.verdict.exit_status`).

    Every command of ``python -m perf`` ends with one of these, or with
    :data:`EXIT_INTERRUPTED`; none defines its own.
    """

    PASS = 0
    REGRESSION = 1
    UNDECIDED = 2


class GateError(Exception):
    """Root of the gate's errors: the gate could not decide (exit 2).

    ``subject`` names the file, git ref or benchmark concerned, ``fix`` the command (or the
    edit) that resolves it. Pass them separately where the raiser knows them; a lone
    ``message`` must then name both itself. The three are also ``args``, so the error
    pickles across processes.
    """

    def __init__(self, message: str, subject: str = "", fix: str = "") -> None:
        super().__init__(message, subject, fix)
        self.message = message
        self.subject = subject
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.subject}: {self.message}" if self.subject else self.message
        return f"{text}. To fix: {self.fix}" if self.fix else text


class BaselineError(GateError):
    """A stored baseline is missing, corrupt, incompatible or of a newer schema."""


class ResultError(GateError):
    """A benchmark result is missing, empty, one-sided, non-finite or from a crashed worker."""


class ConfigError(GateError):
    """The ``[tool.crucible-perf]`` policy in pyproject.toml is invalid."""


class RefError(GateError):
    """The base git ref to measure against does not exist."""


class OutputError(GateError):
    """The output folder for results and reports cannot be written."""


# ``python -m perf run`` stopped by Ctrl-C after keeping what it had measured: the shell's
# convention for SIGINT (128 + 2), not a verdict.
EXIT_INTERRUPTED = 130


def exit_code(error: BaseException) -> ExitCode:
    """Exit code for an error that stopped the gate: always :attr:`ExitCode.UNDECIDED`.

    A :class:`GateError` is a known reason the gate could not decide. Any other exception
    is a bug in the gate, which is no more a regression than a pass, so it maps to 2 as
    well; mapping it here keeps Python's default exit status 1 (which CI would read as
    "regression") from leaking out of the CLI.
    """
    return ExitCode.UNDECIDED
