"""Threshold policy of the perf gate, read from ``[tool.crucible-perf]`` in pyproject.toml.

Every key is optional; the defaults below apply when a key (or the whole table) is absent::

    [tool.crucible-perf]
    alpha = 0.05          # error rate of the correction below, across all comparisons of a run
    correction = "holm"   # "holm" (family-wise) or "bh" (false discovery rate)
    confidence = 0.95     # level of the ratio intervals
    min_rounds = 10       # no verdict on fewer rounds (pairs, or samples per side)
    max_rounds = 70       # inconclusive comparisons get more rounds, up to this many
    checks = ["time:2%", "latency_p99:10%", "rss:10%"]   # metric:threshold, metric may be a glob
    directions = { queue_depth = "lower" }               # for metrics the gate does not know

    [tool.crucible-perf.benchmarks]   # per-benchmark checks; keys are globs on benchmark names
    "daemon_performance.heavy*" = ["time:3%", "latency_p99:15%"]

    [tool.crucible-perf.baseline]     # any key above except directions, for one mode only
    checks = ["time:10%"]             # ([tool.crucible-perf.pr] likewise)

A check ``"time:2%"`` reads: the metric may move at most 2 % in its bad direction (up for
time, latency, memory and CPU; down for throughput, success rate and capacity). For one
benchmark and metric the threshold comes from the first match of: the mode table's
``benchmarks``, the top-level ``benchmarks`` (patterns in file order, and within a pattern's
list the first check whose metric matches), the mode table's ``checks``, the top-level
``checks``, and last the built-in default for the metric's family in this mode::

    family    metrics (globs)                                       PR mode  baseline
    time      time*, throughput* (higher is better), latency_p50*,    2 %      8 %
              latency_mean*, latency_median*
    tail      latency_* (p95, p99, max)                               10 %     15 %
    memory    rss*, mem_efficiency* and memory_efficiency* (higher    10 %     10 %
              is better), *memory*, alloc*
    cpu       cpu*                                                    10 %     15 %
    rate      success_rate* (higher is better)                        2 %      5 %
    capacity  throughput_max*, knee_*, services_max*, payload_max*    10 %     15 %
              (sweep results; higher is better)

Why the modes differ: in PR mode base and head alternate in the same minutes and the
median per-round ratio of identical code stays within about 0.5 % of 1, so 2 % is four
times that noise. In baseline mode the stored samples come from another run, and separate
runs of identical code on the CI machine differ by 3-6 %; no statistic computed inside one
run sees that drift, so the threshold itself must clear it: 8 % stays above the worst
measured 6 % with margin, where 5 % would fail identical code whenever two runs land 5-6 %
apart. Tails, memory and CPU are noisier per sample and get 10 % (15 % across runs where
the machine's state matters), as do capacity figures from sweeps, which move in steps.

The ``scenario`` and ``scenarios`` tables under ``[tool.crucible-perf]`` belong to the
workload module (custom scenarios) and are left to it.

A metric no check or family covers is a :class:`~perf.errors.ConfigError` when compared,
never silently skipped. Unknown keys and bad values are ConfigErrors at load time, naming
the key and what it accepts.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TypeVar

from perf.errors import ConfigError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MIN_ROUNDS",
    "DEFAULT_THRESHOLD_PCT",
    "Check",
    "Correction",
    "Direction",
    "MetricDirection",
    "MetricFamily",
    "Mode",
    "Override",
    "Policy",
    "load_policy",
    "parse_check",
]

DEFAULT_ALPHA = 0.05
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_ROUNDS = 10
# High enough that the gate's time budget, not this cap, ends a run still undecided: at 50,
# PR-mode trials on the CI machine reached the cap 310-350 s into a 360 s budget.
DEFAULT_MAX_ROUNDS = 70

_TABLE = "[tool.crucible-perf]"
_CHECK_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_.*?!\[\]-]+)\s*:\s*(?P<pct>[0-9]+(?:\.[0-9]+)?)\s*%\s*$"
)
_GLOB_CHARS = frozenset("*?[")


class Mode(StrEnum):
    """What the head is compared with."""

    PR = "pr"  # the base commit, measured in the same run, rounds paired
    BASELINE = "baseline"  # a stored baseline from an earlier run, unpaired


class Direction(StrEnum):
    """Which way a metric improves."""

    LOWER_IS_BETTER = "lower"
    HIGHER_IS_BETTER = "higher"


class Correction(StrEnum):
    """Multiple-comparison correction applied across all comparisons of a run."""

    HOLM = "holm"  # Holm step-down: family-wise error rate
    BH = "bh"  # Benjamini-Hochberg: false discovery rate


class MetricFamily(StrEnum):
    """Groups of metrics sharing a default direction and threshold."""

    TIME = "time"
    TAIL = "tail"
    MEMORY = "memory"
    CPU = "cpu"
    RATE = "rate"
    CAPACITY = "capacity"


DEFAULT_THRESHOLD_PCT: Mapping[Mode, Mapping[MetricFamily, float]] = {
    Mode.PR: {
        MetricFamily.TIME: 2.0,
        MetricFamily.TAIL: 10.0,
        MetricFamily.MEMORY: 10.0,
        MetricFamily.CPU: 10.0,
        MetricFamily.RATE: 2.0,
        MetricFamily.CAPACITY: 10.0,
    },
    Mode.BASELINE: {
        MetricFamily.TIME: 8.0,
        MetricFamily.TAIL: 15.0,
        MetricFamily.MEMORY: 10.0,
        MetricFamily.CPU: 15.0,
        MetricFamily.RATE: 5.0,
        MetricFamily.CAPACITY: 15.0,
    },
}

# (metric glob, direction, family); the first match wins, so specific globs come first. The
# names follow perf.workload.metrics (time, latency_p99, rss_peak, mem_efficiency_pct, knee_eps...).
_BUILTIN_METRICS: tuple[tuple[str, Direction, MetricFamily], ...] = (
    ("time*", Direction.LOWER_IS_BETTER, MetricFamily.TIME),
    ("throughput_max*", Direction.HIGHER_IS_BETTER, MetricFamily.CAPACITY),
    ("throughput*", Direction.HIGHER_IS_BETTER, MetricFamily.TIME),
    ("latency_p50*", Direction.LOWER_IS_BETTER, MetricFamily.TIME),
    ("latency_mean*", Direction.LOWER_IS_BETTER, MetricFamily.TIME),
    ("latency_median*", Direction.LOWER_IS_BETTER, MetricFamily.TIME),
    ("latency_*", Direction.LOWER_IS_BETTER, MetricFamily.TAIL),
    ("rss*", Direction.LOWER_IS_BETTER, MetricFamily.MEMORY),
    ("mem_efficiency*", Direction.HIGHER_IS_BETTER, MetricFamily.MEMORY),
    ("memory_efficiency*", Direction.HIGHER_IS_BETTER, MetricFamily.MEMORY),
    ("*memory*", Direction.LOWER_IS_BETTER, MetricFamily.MEMORY),
    ("alloc*", Direction.LOWER_IS_BETTER, MetricFamily.MEMORY),
    ("cpu*", Direction.LOWER_IS_BETTER, MetricFamily.CPU),
    ("success_rate*", Direction.HIGHER_IS_BETTER, MetricFamily.RATE),
    ("knee_*", Direction.HIGHER_IS_BETTER, MetricFamily.CAPACITY),
    ("services_max*", Direction.HIGHER_IS_BETTER, MetricFamily.CAPACITY),
    ("payload_max*", Direction.HIGHER_IS_BETTER, MetricFamily.CAPACITY),
)


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold: metrics matching ``metric`` (a name or glob) may move at most
    ``threshold_pct`` percent in their bad direction."""

    metric: str
    threshold_pct: float

    def matches(self, metric: str) -> bool:
        """Whether this check covers ``metric``."""
        return fnmatchcase(metric, self.metric)

    def __str__(self) -> str:
        return f"{self.metric}:{self.threshold_pct:g}%"


@dataclass(frozen=True, slots=True)
class Override:
    """Checks for the benchmarks whose names match ``benchmark`` (a glob)."""

    benchmark: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class MetricDirection:
    """A configured direction for metrics matching ``metric`` (a name or glob)."""

    metric: str
    direction: Direction


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The gate's decision settings for one mode; build it with :func:`load_policy`.

    ``checks`` and ``overrides`` are in lookup order (mode table first); ``source`` names
    where the policy came from, for error messages.
    """

    mode: Mode = Mode.PR
    alpha: float = DEFAULT_ALPHA
    correction: Correction = Correction.HOLM
    confidence: float = DEFAULT_CONFIDENCE
    min_rounds: int = DEFAULT_MIN_ROUNDS
    max_rounds: int = DEFAULT_MAX_ROUNDS
    checks: tuple[Check, ...] = ()
    overrides: tuple[Override, ...] = ()
    directions: tuple[MetricDirection, ...] = ()
    source: str = "<defaults>"

    def __post_init__(self) -> None:
        if self.mode not in set(Mode):
            raise _error(self.source, "Policy", "mode", f"got {self.mode!r}", "'pr' or 'baseline'")
        if self.correction not in set(Correction):
            raise _error(
                self.source, "Policy", "correction", f"got {self.correction!r}", "'holm' or 'bh'"
            )
        _check_alpha(self.alpha, self.source, "Policy", "alpha")
        _check_confidence(self.confidence, self.source, "Policy", "confidence")
        _check_rounds(self.min_rounds, self.max_rounds, self.source, "Policy")

    def direction(self, metric: str) -> Direction:
        """Which way ``metric`` improves: configured ``directions`` first, then built-ins."""
        for rule in self.directions:
            if fnmatchcase(metric, rule.metric):
                return rule.direction
        builtin = _builtin(metric)
        if builtin is not None:
            return builtin[0]
        raise ConfigError(
            f"metric {metric!r} has no known direction",
            self.source,
            f'add {metric} = "lower" (or "higher") to [tool.crucible-perf.directions]',
        )

    def threshold_pct(self, benchmark: str, metric: str) -> float:
        """Largest allowed move of ``metric`` of ``benchmark`` in its bad direction, in %.

        Lookup order: benchmark overrides, then checks, then the family default for this
        mode (see the module docstring). No match is a ConfigError naming the metric.
        """
        for override in self.overrides:
            if fnmatchcase(benchmark, override.benchmark):
                for check in override.checks:
                    if check.matches(metric):
                        return check.threshold_pct
        for check in self.checks:
            if check.matches(metric):
                return check.threshold_pct
        builtin = _builtin(metric)
        if builtin is not None:
            return DEFAULT_THRESHOLD_PCT[self.mode][builtin[1]]
        raise ConfigError(
            f"no threshold for metric {metric!r} of benchmark {benchmark!r}",
            self.source,
            f'add "{metric}:<N>%" to checks in {_TABLE}, and its direction to '
            "[tool.crucible-perf.directions] unless a built-in family covers it",
        )


def _builtin(metric: str) -> tuple[Direction, MetricFamily] | None:
    for pattern, direction, family in _BUILTIN_METRICS:
        if fnmatchcase(metric, pattern):
            return direction, family
    return None


def _error(source: str, where: str, key: str, problem: str, accepted: str) -> ConfigError:
    return ConfigError(f"{where} {key}: {problem}", source, f"set {key} in {where} to {accepted}")


def _number(value: object, source: str, where: str, key: str, accepted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(source, where, key, f"got {value!r}", accepted)
    return float(value)


def _check_alpha(value: object, source: str, where: str, key: str) -> float:
    accepted = "a number above 0 and at most 0.5"
    alpha = _number(value, source, where, key, accepted)
    if not 0.0 < alpha <= 0.5:
        raise _error(source, where, key, f"got {value!r}", accepted)
    return alpha


def _check_confidence(value: object, source: str, where: str, key: str) -> float:
    accepted = "a number above 0.5 and below 1"
    confidence = _number(value, source, where, key, accepted)
    if not 0.5 < confidence < 1.0:
        raise _error(source, where, key, f"got {value!r}", accepted)
    return confidence


def _check_int(value: object, source: str, where: str, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _error(source, where, key, f"got {value!r}", f"a whole number of at least {minimum}")
    return value


def _check_rounds(min_rounds: int, max_rounds: int, source: str, where: str) -> None:
    _check_int(min_rounds, source, where, "min_rounds", 2)
    _check_int(max_rounds, source, where, "max_rounds", 2)
    if max_rounds < min_rounds:
        raise _error(
            source,
            where,
            "max_rounds",
            f"{max_rounds} is below min_rounds {min_rounds}",
            f"a whole number of at least min_rounds ({min_rounds})",
        )


def parse_check(
    text: str, *, source: str = "<text>", where: str = _TABLE, key: str = "checks"
) -> Check:
    """Parse one check, ``"<metric>:<percent>%"`` such as ``"time:2%"`` or ``"latency_*:10%"``.

    The metric is a name or an fnmatch glob; the percentage is above 0 and below 100 (a
    throughput cannot fall by 100 % or more). ``source``, ``where`` and ``key`` locate the
    text in error messages.
    """
    match = _CHECK_RE.match(text) if isinstance(text, str) else None
    accepted = (
        'checks written "<metric>:<percent>%" with a percentage above 0 and below 100, '
        'such as "time:2%" or "rss:10%"'
    )
    if match is None:
        raise _error(source, where, key, f"cannot parse {text!r}", accepted)
    threshold_pct = float(match.group("pct"))
    if not 0.0 < threshold_pct < 100.0:
        raise _error(source, where, key, f"{text!r}: threshold out of range", accepted)
    return Check(metric=match.group("metric"), threshold_pct=threshold_pct)


def _parse_checks(value: object, source: str, where: str, key: str) -> tuple[Check, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _error(source, where, key, f"got {value!r}", 'a list of strings such as ["time:2%"]')
    checks = tuple(parse_check(item, source=source, where=where, key=key) for item in items)
    seen: set[str] = set()
    for check in checks:
        if check.metric in seen:
            raise _error(
                source, where, key, f"metric {check.metric!r} listed twice", "one check per metric"
            )
        seen.add(check.metric)
    return checks


def _quote_hint(where: str, key: str) -> str:
    return f'a quoted key, as in {where} "{key}.*" = ...; dotted keys make nested tables'


def _parse_overrides(value: object, source: str, where: str) -> tuple[Override, ...]:
    if not isinstance(value, dict):
        raise _error(source, where, "benchmarks", f"got {value!r}", "a table of glob = [checks]")
    overrides = []
    for pattern, checks in value.items():
        if isinstance(checks, dict):
            raise _error(
                source, where, f"benchmarks.{pattern}", "is a table", _quote_hint(where, pattern)
            )
        key = f"benchmarks.{pattern!r}"
        overrides.append(Override(pattern, _parse_checks(checks, source, where, key)))
    return tuple(overrides)


def _parse_directions(value: object, source: str, where: str) -> tuple[MetricDirection, ...]:
    if not isinstance(value, dict):
        raise _error(source, where, "directions", f"got {value!r}", 'a table of metric = "lower"')
    rules = []
    accepted = ", ".join(repr(str(d)) for d in Direction)
    for metric, direction in value.items():
        if isinstance(direction, dict):
            raise _error(
                source, where, f"directions.{metric}", "is a table", _quote_hint(where, metric)
            )
        if direction not in {d.value for d in Direction}:
            raise _error(source, where, f"directions.{metric}", f"got {direction!r}", accepted)
        rules.append(MetricDirection(metric, Direction(direction)))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class _Layer:
    """The settings one table gives; None where it gives none."""

    alpha: float | None = None
    correction: Correction | None = None
    confidence: float | None = None
    min_rounds: int | None = None
    max_rounds: int | None = None
    checks: tuple[Check, ...] = ()
    overrides: tuple[Override, ...] = ()
    directions: tuple[MetricDirection, ...] = ()


_LAYER_KEYS = ("alpha", "correction", "confidence", "min_rounds", "max_rounds", "checks")
_MODE_KEYS = frozenset((*_LAYER_KEYS, "benchmarks"))
# Tables under [tool.crucible-perf] that other parts of the gate own and read themselves:
# custom workload scenarios (crucible._workload.scenario_from_toml). The policy skips them.
_FOREIGN_TABLES = frozenset(("scenario", "scenarios"))
_TOP_KEYS = frozenset((*_MODE_KEYS, "directions", *(m.value for m in Mode), *_FOREIGN_TABLES))


def _parse_layer(
    table: Mapping[str, object], source: str, where: str, allowed: frozenset[str]
) -> _Layer:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r}",
                source,
                f"remove it; {where} accepts {', '.join(sorted(allowed))}",
            )
    correction = table.get("correction")
    if correction is not None and correction not in {c.value for c in Correction}:
        accepted = " or ".join(repr(str(c)) for c in Correction)
        raise _error(source, where, "correction", f"got {correction!r}", accepted)
    for key in _FOREIGN_TABLES.intersection(table):
        if not isinstance(table[key], dict):
            raise _error(
                source, where, key, f"got {table[key]!r}", f"a [{where[1:-1]}.{key}] table"
            )
    get = table.get
    return _Layer(
        alpha=None if get("alpha") is None else _check_alpha(get("alpha"), source, where, "alpha"),
        correction=None if correction is None else Correction(correction),
        confidence=None
        if get("confidence") is None
        else _check_confidence(get("confidence"), source, where, "confidence"),
        min_rounds=None
        if get("min_rounds") is None
        else _check_int(get("min_rounds"), source, where, "min_rounds", 2),
        max_rounds=None
        if get("max_rounds") is None
        else _check_int(get("max_rounds"), source, where, "max_rounds", 2),
        checks=()
        if get("checks") is None
        else _parse_checks(get("checks"), source, where, "checks"),
        overrides=()
        if get("benchmarks") is None
        else _parse_overrides(get("benchmarks"), source, where),
        directions=()
        if get("directions") is None
        else _parse_directions(get("directions"), source, where),
    )


def _looks_like_path(text: str) -> bool:
    """A one-line string with nothing TOML-like in it names a file."""
    return bool(text.strip()) and not any(mark in text for mark in ("\n", "=", "["))


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """The TOML text and a name for it in messages."""
    if isinstance(source, str) and not _looks_like_path(source):
        return source, "<pyproject text>"
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as error:
        raise ConfigError(
            f"cannot read the policy file ({error.strerror or error})",
            str(path),
            "pass the path of the project's pyproject.toml",
        ) from error


def load_policy(source: str | os.PathLike[str], mode: Mode | str = Mode.PR) -> Policy:
    """Read the policy for ``mode`` from a pyproject.toml path or its text.

    A ``pathlib.Path`` (or a one-line string without ``=`` or ``[``) is read as a file; any
    other string is parsed as TOML text. A missing ``[tool.crucible-perf]`` table gives the
    defaults. Both mode tables are validated whichever mode is asked for, so a typo cannot
    hide until the nightly run. Raises :class:`~perf.errors.ConfigError` for an unreadable
    file, invalid TOML, an unknown key or a bad value, naming the key and what it accepts.
    """
    if mode not in {m.value for m in Mode}:
        raise ConfigError(
            f"unknown gate mode {mode!r}",
            "mode",
            f"use one of {', '.join(m.value for m in Mode)}",
        )
    mode = Mode(mode)
    text, origin = _read_source(source)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"not valid TOML ({error})", origin, "fix the TOML syntax of the file"
        ) from error
    tool = document.get("tool", {})
    table = tool.get("crucible-perf", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(
            f"{_TABLE} is not a table", origin, f"write the settings under a {_TABLE} header"
        )
    top = _parse_layer(table, origin, _TABLE, _TOP_KEYS)
    layers: dict[Mode, _Layer] = {}
    for each in Mode:
        where = f"[tool.crucible-perf.{each.value}]"
        sub = table.get(each.value, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{where} is not a table", origin, f"write it as a {where} table")
        layers[each] = _parse_layer(sub, origin, where, _MODE_KEYS)
    active = layers[mode]
    policy = Policy(
        mode=mode,
        alpha=_first(active.alpha, top.alpha, DEFAULT_ALPHA),
        correction=_first(active.correction, top.correction, Correction.HOLM),
        confidence=_first(active.confidence, top.confidence, DEFAULT_CONFIDENCE),
        min_rounds=_first(active.min_rounds, top.min_rounds, DEFAULT_MIN_ROUNDS),
        max_rounds=_first(active.max_rounds, top.max_rounds, DEFAULT_MAX_ROUNDS),
        checks=active.checks + top.checks,
        overrides=active.overrides + top.overrides,
        directions=top.directions,
        source=origin,
    )
    _check_literal_directions(policy, layers, top)
    return policy


_T = TypeVar("_T")


def _first(*values: _T | None) -> _T:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the last candidate is always a default")


def _check_literal_directions(policy: Policy, layers: Mapping[Mode, _Layer], top: _Layer) -> None:
    """A check naming a metric exactly must name one whose direction is known."""
    every = [*top.checks, *(c for o in top.overrides for c in o.checks)]
    for layer in layers.values():
        every += [*layer.checks, *(c for o in layer.overrides for c in o.checks)]
    for check in every:
        if not _GLOB_CHARS.intersection(check.metric):
            policy.direction(check.metric)
