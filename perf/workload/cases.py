"""The benchmark cases of every suite, for the quick, full and smoke sets. Pure.

A case definition (``CaseDef``) says what to run: the scenario, the arrival pattern and
rate, the injected faults, the seed, which metrics it records and, for the memory and
scalability suites, the leak run or the sweep. A ``Case`` is a definition measured on one
coordinator; its pyperf benchmarks are named ``"{suite}.{case}.{coordinator}.{metric}"``
(``...time`` for pyperf's own time benchmark).

The quick set is a subset of the full set with identical parameters, so a full baseline
covers every quick benchmark. The smoke set is tiny, for the test suite only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from perf.workload.library import (
    BUILTIN_COORDINATORS,
    DAEMON_COORDINATORS,
    RunSpec,
    Scenario,
    centered_range,
    get_scenario,
)
from perf.workload.metrics import (
    LEAK_METRICS,
    PACED_METRICS,
    SWEEP_METRICS,
    TRACED_METRICS,
    WORKLOAD_METRICS,
    metric,
)

__all__ = [
    "DAEMON_COORDINATOR",
    "DEFAULT_COORDINATORS",
    "SETS",
    "SUITES",
    "SUITE_COORDINATORS",
    "Case",
    "CaseDef",
    "Faults",
    "Kind",
    "LeakSpec",
    "PyperfSettings",
    "SweepSpec",
    "case_definitions",
    "coordinator_label",
    "estimated_cost_s",
    "select_cases",
    "settings_for",
]

SUITES: tuple[str, ...] = (
    "daemon_performance",
    "load_testing",
    "memory_profiling",
    "scalability_testing",
)
SETS: tuple[str, ...] = ("quick", "full", "smoke")
DEFAULT_COORDINATORS: tuple[str, ...] = BUILTIN_COORDINATORS  # data, core, reference
# The suites (python -m perf run) also measure CrucibleCore through its daemon, on the cases
# marked ``daemon=True``, so their reports show what the socket transport costs. The gate's
# rounds keep to DEFAULT_COORDINATORS: a daemon start per workload would cost them minutes.
DAEMON_COORDINATOR = DAEMON_COORDINATORS[0]
SUITE_COORDINATORS: tuple[str, ...] = (*BUILTIN_COORDINATORS, *DAEMON_COORDINATORS)

# Load testing: the medium scenario offered at this mean rate (0.25 s per workload).
LOAD_RATE_EPS = 4000.0
# Injected faults of the load-testing fault variant (issue 3 item 4).
FAULT_ERROR_RATE = 0.05
FAULT_SLOW_S = 0.002
# A benchmark whose settle takes longer than this is a hang, not a measurement.
SETTLE_TIMEOUT_S = 120.0

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class Kind(StrEnum):
    WORKLOAD = "workload"  # one scenario run per loop (crucible.measure.measure)
    LEAK = "leak"  # one long run per loop: retained memory after each settle
    SWEEP = "sweep"  # one sweep per loop: offered load raised until a limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Injected faults as ``RunSpec`` takes them (no hangs: the reference coordinator has
    no event timeout and would wait for a hung handler forever)."""

    failure_rate: float = 0.0
    crashed_services: int = 0
    slow_services: int = 0
    slow_s: float = FAULT_SLOW_S

    @property
    def any(self) -> bool:
        return bool(self.failure_rate or self.crashed_services or self.slow_services)


NO_FAULTS = Faults()
LOAD_FAULTS = Faults(failure_rate=FAULT_ERROR_RATE, crashed_services=1, slow_services=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakSpec:
    """A long run on one coordinator: ``batches`` of ``batch_events`` events, each followed
    by settle, gc and a tracemalloc reading. The first ``warmup_batches`` readings are left
    out of the slope (first-use caches)."""

    batches: int
    batch_events: int
    warmup_batches: int = 3
    rss_interval_s: float = 0.02

    def __post_init__(self) -> None:
        if self.batch_events < 1 or self.warmup_batches < 0:
            raise ValueError("batch_events must be >= 1 and warmup_batches >= 0")
        if self.batches - self.warmup_batches < 3:
            raise ValueError("a leak slope needs at least 3 batches after the warm-up ones")


SWEEP_AXES: tuple[str, ...] = ("rate", "services", "payload")


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """Raise ``axis`` from ``start`` by ``factor`` per step (at most ``max_steps`` steps,
    capped at ``max_value``) until a step fails: p99 latency (or the publisher's p99
    lateness against the schedule) above ``p99_bound_s``, or error rate above
    ``max_error_pct``. Then ``refine_steps`` bisection steps between the last passing and
    the first failing value. The knee is where p99 exceeds ``knee_factor`` times the p99 of
    the smallest value, counting any p99 under ``knee_floor_s`` as that floor (sub-ms
    tails move with timer and scheduling granularity, not load). Each step offers a steady
    open-loop rate (``rate_eps``, or the step's rate on the rate axis) for ``step_s``
    seconds, at least ``min_events`` events. With ``confirm_failures`` a failing step is
    measured again and fails only if it fails twice."""

    axis: str
    start: float
    factor: float = 2.0
    max_steps: int = 8
    max_value: float | None = None
    refine_steps: int = 2
    step_s: float = 0.1
    rate_eps: float = 4000.0
    min_events: int = 100
    p99_bound_s: float = 0.010
    max_error_pct: float = 1.0
    knee_factor: float = 2.0
    knee_floor_s: float = 0.001
    confirm_failures: bool = True

    def __post_init__(self) -> None:
        if self.axis not in SWEEP_AXES:
            raise ValueError(f"sweep axis must be one of {', '.join(SWEEP_AXES)}")
        if self.start <= 0 or self.factor <= 1 or self.max_steps < 1 or self.refine_steps < 0:
            raise ValueError("sweep needs start > 0, factor > 1, max_steps >= 1")
        if self.step_s <= 0 or self.rate_eps <= 0 or self.p99_bound_s <= 0:
            raise ValueError("step_s, rate_eps and p99_bound_s must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PyperfSettings:
    """pyperf Runner defaults for a set (pyperf's --fast / --rigorous scale from these)."""

    processes: int
    values: int
    warmups: int
    min_time_s: float


SETTINGS: Mapping[str, PyperfSettings] = {
    # >= 3 worker processes per benchmark (pyperf's own floor for --fast).
    # A value of at least 50 ms of measured time: light workloads measure ~1 ms of a
    # ~4 ms loop (event generation, start, stop), so 0.1 s would cost 0.4 s per value.
    "quick": PyperfSettings(processes=3, values=3, warmups=1, min_time_s=0.05),
    "full": PyperfSettings(processes=5, values=3, warmups=1, min_time_s=0.1),
    "smoke": PyperfSettings(processes=1, values=1, warmups=0, min_time_s=0.001),
}


def settings_for(set_name: str) -> PyperfSettings:
    try:
        return SETTINGS[set_name]
    except KeyError:
        raise ValueError(f"unknown set {set_name!r}; accepted: {', '.join(SETS)}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseDef:
    """One case of a suite, independent of the coordinator measuring it.

    ``options`` maps a coordinator label to keyword arguments for its factory (for example
    CrucibleCore's ``max_queue``); ``only`` restricts the case to those coordinator labels.
    ``fixed_loops`` skips pyperf's loop calibration where one loop already exceeds
    pyperf's minimum time (paced workloads, leak runs, sweeps): calibration would pick 1.
    """

    suite: str
    name: str
    description: str
    scenario: Scenario
    kind: Kind = Kind.WORKLOAD
    pattern: str | None = None
    rate_eps: float = 1000.0
    faults: Faults = NO_FAULTS
    seed: int = 0
    metrics: tuple[str, ...] = WORKLOAD_METRICS
    traced: bool = False
    leak: LeakSpec | None = None
    sweep: SweepSpec | None = None
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    only: tuple[str, ...] | None = None
    fixed_loops: int | None = None
    settle_timeout_s: float = SETTLE_TIMEOUT_S
    daemon: bool = False  # also measured through the CrucibleCore daemon (core-daemon)

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; accepted: {', '.join(SUITES)}")
        if not _NAME_RE.match(self.name):
            raise ValueError(f"case name {self.name!r} must match {_NAME_RE.pattern}")
        for name in self.metrics:
            metric(name)
        if self.metrics[:1] != ("time",):
            raise ValueError("every case records 'time' first (pyperf's own benchmark)")
        if (self.kind is Kind.LEAK) != (self.leak is not None):
            raise ValueError("a leak case needs a LeakSpec, and only a leak case has one")
        if (self.kind is Kind.SWEEP) != (self.sweep is not None):
            raise ValueError("a sweep case needs a SweepSpec, and only a sweep case has one")

    def applies_to(self, coordinator: str) -> bool:
        if coordinator == DAEMON_COORDINATOR:
            return self.daemon
        return self.only is None or coordinator_label(coordinator) in self.only

    def run_spec(self, coordinator: str) -> RunSpec:
        """The RunSpec of one workload of this case on ``coordinator``."""
        f = self.faults
        return RunSpec(
            coordinator=coordinator,
            scenario=self.scenario,
            pattern=self.pattern,
            rate_eps=self.rate_eps,
            failure_rate=f.failure_rate,
            crashed_services=f.crashed_services,
            slow_services=f.slow_services,
            slow_s=f.slow_s,
            seed=self.seed,
            settle_timeout_s=self.settle_timeout_s,
            coordinator_options=dict(self.options.get(coordinator_label(coordinator), {})),
        )


@dataclass(frozen=True, slots=True)
class Case:
    """A case definition measured on one coordinator (a builtin name or module:factory)."""

    definition: CaseDef
    coordinator: str

    @property
    def label(self) -> str:
        return coordinator_label(self.coordinator)

    @property
    def name(self) -> str:
        """``"{suite}.{case}.{coordinator}"``."""
        return f"{self.definition.suite}.{self.definition.name}.{self.label}"

    def benchmark(self, metric_name: str) -> str:
        """The pyperf benchmark name of one metric."""
        metric(metric_name)
        return f"{self.name}.{metric_name}"

    def run_spec(self) -> RunSpec:
        return self.definition.run_spec(self.coordinator)

    def metadata(self) -> dict[str, str | int | float]:
        """Scenario parameters and seeds, as pyperf run metadata (``crucible_*`` keys)."""
        d = self.definition
        s = d.scenario
        meta: dict[str, str | int | float] = {
            "crucible_suite": d.suite,
            "crucible_case": d.name,
            "crucible_kind": d.kind.value,
            "crucible_coordinator": self.label,
            "crucible_coordinator_spec": self.coordinator,
            "crucible_scenario": s.name,
            "crucible_events": s.events,
            "crucible_services": s.services,
            "crucible_payload_min_bytes": s.payload_bytes[0],
            "crucible_payload_max_bytes": s.payload_bytes[1],
            "crucible_work": f"{s.work.kind}x{s.work.rounds}+{s.work.latency_s}s",
            "crucible_pattern": d.pattern or "unpaced",
            "crucible_rate_eps": d.rate_eps if d.pattern else 0.0,
            "crucible_failure_rate": d.faults.failure_rate,
            "crucible_crashed_services": d.faults.crashed_services,
            "crucible_slow_services": d.faults.slow_services,
            "crucible_slow_s": d.faults.slow_s,
            "crucible_seed": d.seed,
            "crucible_scenario_seed": s.seed,
        }
        options = d.options.get(self.label)
        if options:
            meta["crucible_options"] = json.dumps(dict(options), sort_keys=True)
        if d.leak is not None:
            meta["crucible_leak_batches"] = d.leak.batches
            meta["crucible_leak_batch_events"] = d.leak.batch_events
            meta["crucible_leak_warmup_batches"] = d.leak.warmup_batches
        if d.sweep is not None:
            sw = d.sweep
            meta["crucible_sweep_axis"] = sw.axis
            meta["crucible_sweep_start"] = sw.start
            meta["crucible_sweep_factor"] = sw.factor
            meta["crucible_sweep_step_s"] = sw.step_s
            meta["crucible_sweep_rate_eps"] = sw.rate_eps
            meta["crucible_sweep_p99_bound_s"] = sw.p99_bound_s
            meta["crucible_sweep_max_error_pct"] = sw.max_error_pct
        return meta


def coordinator_label(spec: str) -> str:
    """The coordinator's part of a benchmark name: the builtin name, or ``module:factory``
    with every run of characters other than letters, digits, ``_`` and ``-`` as ``_``."""
    if spec in BUILTIN_COORDINATORS:
        return spec
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", spec).strip("_")
    if not label:
        raise ValueError(f"coordinator {spec!r} gives an empty benchmark label")
    return label


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------

_TINY = Scenario(name="tiny", events=40, services=4, payload_bytes=(64, 512))
_PATTERNS = ("steady", "burst", "ramp", "spike", "mixed")
_MEMORY_PAYLOADS_KB = (1, 4, 16, 64)
_MEMORY_EVENTS = (1_000, 5_000)


def _scenario(name: str, events: int, services: int, payload_bytes: int) -> Scenario:
    return Scenario(
        name=name, events=events, services=services, payload_bytes=centered_range(payload_bytes)
    )


def _daemon() -> list[CaseDef]:
    sizes = {"light": "100", "medium": "1,000", "heavy": "10,000", "stress": "100,000"}
    return [
        CaseDef(
            suite="daemon_performance",
            name=name,
            description=f"{sizes[name]} events published as fast as accepted",
            scenario=get_scenario(name),
            # One stress workload takes seconds: calibration would pick 1 loop.
            fixed_loops=1 if name == "stress" else None,
            daemon=name != "stress",
        )
        for name in ("light", "medium", "heavy", "stress")
    ]


def _load() -> list[CaseDef]:
    medium = get_scenario("medium")
    out: list[CaseDef] = []
    for pattern in _PATTERNS:
        for faults in (NO_FAULTS, LOAD_FAULTS):
            name = f"{pattern}_faults" if faults.any else pattern
            extra = ", 5 % handler errors, 1 crashed service, 1 slow replica" if faults.any else ""
            out.append(
                CaseDef(
                    suite="load_testing",
                    name=name,
                    description=f"medium scenario, {pattern} arrivals at a mean "
                    f"{LOAD_RATE_EPS:,.0f} events/s, open loop{extra}",
                    scenario=medium,
                    pattern=pattern,
                    rate_eps=LOAD_RATE_EPS,
                    faults=faults,
                    metrics=PACED_METRICS,
                    fixed_loops=1,
                    daemon=pattern == "steady" and not faults.any,
                )
            )
    return out


def _memory() -> list[CaseDef]:
    out: list[CaseDef] = []
    for kb in _MEMORY_PAYLOADS_KB:
        for events in _MEMORY_EVENTS:
            name = f"payload{kb}k_events{events}"
            out.append(
                CaseDef(
                    suite="memory_profiling",
                    name=name,
                    description=f"{events:,} events of {kb} KiB (nominal) payloads, 10 "
                    "services; tracemalloc figures from one extra untimed workload per worker",
                    scenario=_scenario(name, events, 10, kb * 1024),
                    traced=True,
                    metrics=TRACED_METRICS,
                )
            )
    leak_scenario = _scenario("leak", 1_000, 10, 1024)
    out.append(
        CaseDef(
            suite="memory_profiling",
            name="leak",
            description="20 batches of 500 events on one coordinator; traced bytes after "
            "each settle give the leak slope per 1,000 events; RSS sampled every 20 ms",
            scenario=leak_scenario,
            kind=Kind.LEAK,
            leak=LeakSpec(batches=20, batch_events=500, warmup_batches=3),
            metrics=LEAK_METRICS,
            fixed_loops=1,
        )
    )
    out.append(
        CaseDef(
            suite="memory_profiling",
            name="pressure_large",
            description="5,000 events of 64 KiB payloads published unpaced: peak memory "
            "while the coordinator holds a large backlog of large events",
            scenario=_scenario("pressure_large", 5_000, 10, 64 * 1024),
            traced=True,
            metrics=TRACED_METRICS,
        )
    )
    slow_scenario = _scenario("pressure_slow", 500, 10, 16 * 1024)
    slow = Faults(slow_services=10, slow_s=0.0005)
    out.append(
        CaseDef(
            suite="memory_profiling",
            name="pressure_slow",
            description="500 events of 16 KiB to 10 slow consumers (0.5 ms each), published "
            "unpaced: queues unbounded (data, reference) or far above 500 (core's default "
            "2,000 per service)",
            scenario=slow_scenario,
            faults=slow,
            traced=True,
            metrics=TRACED_METRICS,
            fixed_loops=1,
        )
    )
    for mode in ("wait", "reject"):
        out.append(
            CaseDef(
                suite="memory_profiling",
                name=f"pressure_bounded_{mode}",
                description=f"pressure_slow with CrucibleCore queues bounded at 16 per service "
                f"and backpressure={mode!r}",
                scenario=slow_scenario,
                faults=slow,
                traced=True,
                metrics=TRACED_METRICS,
                options={"core": {"max_queue": 16, "backpressure": mode}},
                only=("core",),
                fixed_loops=1,
            )
        )
    return out


def _scalability() -> list[CaseDef]:
    medium = get_scenario("medium")
    common: dict[str, Any] = {"suite": "scalability_testing", "kind": Kind.SWEEP}
    return [
        CaseDef(
            name="rate_sweep",
            description="medium scenario, steady offered rate doubled from 4,000 events/s "
            "per 0.1 s step until p99 > 10 ms or errors > 1 %, then 2 bisection steps",
            scenario=medium,
            sweep=SweepSpec(axis="rate", start=4000.0, max_steps=8),
            metrics=SWEEP_METRICS["rate"],
            fixed_loops=1,
            **common,
        ),
        CaseDef(
            name="services_sweep",
            description="4,000 events/s steady, services doubled from 4 up to 100",
            scenario=medium,
            sweep=SweepSpec(axis="services", start=4.0, max_steps=6, max_value=100.0),
            metrics=SWEEP_METRICS["services"],
            fixed_loops=1,
            **common,
        ),
        CaseDef(
            name="payload_sweep",
            description="2,000 events/s steady, payload doubled from 1 KiB up to 512 KiB",
            scenario=medium,
            sweep=SweepSpec(axis="payload", start=1024.0, max_steps=10, rate_eps=2000.0),
            metrics=SWEEP_METRICS["payload"],
            fixed_loops=1,
            **common,
        ),
    ]


def _smoke() -> list[CaseDef]:
    return [
        CaseDef(
            suite="daemon_performance",
            name="tiny",
            description="40 events, 4 services (loops calibrated, to exercise calibration)",
            scenario=_TINY,
        ),
        CaseDef(
            suite="load_testing",
            name="tiny_burst_faults",
            description="40 events in bursts at 4,000 events/s with the fault variant",
            scenario=_TINY,
            pattern="burst",
            rate_eps=4000.0,
            faults=LOAD_FAULTS,
            metrics=PACED_METRICS,
            fixed_loops=1,
        ),
        CaseDef(
            suite="memory_profiling",
            name="tiny_traced",
            description="40 events with tracemalloc figures",
            scenario=_TINY,
            traced=True,
            metrics=TRACED_METRICS,
            fixed_loops=1,
        ),
        CaseDef(
            suite="memory_profiling",
            name="tiny_leak",
            description="5 batches of 20 events",
            scenario=_TINY,
            kind=Kind.LEAK,
            leak=LeakSpec(batches=5, batch_events=20, warmup_batches=1, rss_interval_s=0.005),
            metrics=LEAK_METRICS,
            fixed_loops=1,
        ),
        CaseDef(
            suite="scalability_testing",
            name="tiny_rate_sweep",
            description="2 steps of 0.02 s from 2,000 events/s",
            scenario=_TINY,
            kind=Kind.SWEEP,
            # Plumbing only: a bound no step reaches, even with four suites sharing 2 CPUs.
            sweep=SweepSpec(
                axis="rate",
                start=2000.0,
                max_steps=2,
                refine_steps=0,
                step_s=0.02,
                min_events=20,
                p99_bound_s=5.0,
            ),
            metrics=SWEEP_METRICS["rate"],
            fixed_loops=1,
        ),
    ]


_QUICK: Mapping[str, tuple[str, ...]] = {
    "daemon_performance": ("light", "medium"),
    "load_testing": ("burst", "spike_faults"),
    "memory_profiling": ("payload16k_events1000",),
    "scalability_testing": ("rate_sweep",),
}


def case_definitions(suite: str, set_name: str) -> tuple[CaseDef, ...]:
    """The suite's case definitions in the given set, in run order."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; accepted: {', '.join(SUITES)}")
    settings_for(set_name)
    if set_name == "smoke":
        return tuple(c for c in _smoke() if c.suite == suite)
    full = {
        "daemon_performance": _daemon,
        "load_testing": _load,
        "memory_profiling": _memory,
        "scalability_testing": _scalability,
    }[suite]()
    if set_name == "full":
        return tuple(full)
    by_name = {c.name: c for c in full}
    return tuple(by_name[n] for n in _QUICK[suite])


def select_cases(
    suite: str,
    set_name: str,
    coordinators: Sequence[str] = DEFAULT_COORDINATORS,
    names: Iterable[str] | None = None,
) -> list[Case]:
    """The cases to run, case by case and within a case coordinator by coordinator (so the
    coordinators of one case are measured minutes apart, not a whole suite apart).

    ``names`` restricts to those case names of the set (ValueError listing the set's names
    for an unknown one). A case restricted to some coordinators (``CaseDef.only``) is left
    out for the others.
    """
    if not coordinators:
        raise ValueError("at least one coordinator is needed")
    labels = [coordinator_label(c) for c in coordinators]
    if len(set(labels)) != len(labels):
        raise ValueError(f"coordinators {list(coordinators)} repeat a benchmark label")
    definitions = case_definitions(suite, set_name)
    if names is not None:
        wanted = list(dict.fromkeys(names))
        known = {c.name for c in definitions}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ValueError(
                f"unknown {suite} case(s) {', '.join(unknown)} in the {set_name} set; "
                f"accepted: {', '.join(sorted(known))}"
            )
        definitions = tuple(c for c in definitions if c.name in wanted)
    return [Case(d, c) for d in definitions for c in coordinators if d.applies_to(c)]


def with_scenario(definition: CaseDef, **changes: Any) -> CaseDef:
    """A copy of ``definition`` with its scenario's fields changed."""
    return replace(definition, scenario=replace(definition.scenario, **changes))


# Rough cost model for the progress display's time-left estimate (not a measurement: it is
# scaled by the measured pace of the run as soon as the first benchmark finishes).
_PROCESS_START_S = 0.6
_UNPACED_EVENT_S = 25e-6


def _one_loop_s(d: CaseDef) -> float:
    s = d.scenario
    payload_factor = 1.0 + s.payload_mean_bytes / 16384
    if d.kind is Kind.LEAK and d.leak is not None:
        return d.leak.batches * d.leak.batch_events * _UNPACED_EVENT_S * 3
    if d.kind is Kind.SWEEP and d.sweep is not None:
        return (d.sweep.max_steps / 2 + d.sweep.refine_steps) * (d.sweep.step_s + 0.05)
    work = s.events * _UNPACED_EVENT_S * payload_factor + 0.01
    if d.pattern is not None:
        work = max(work, s.events / d.rate_eps)
    if d.faults.slow_services:
        work += s.events * d.faults.slow_s * d.faults.slow_services / s.services * 2
    return work


def estimated_cost_s(case: Case, settings: PyperfSettings) -> float:
    """A rough a-priori duration of one benchmark, for the progress display."""
    d = case.definition
    one = _one_loop_s(d)
    value = max(one, settings.min_time_s * 1.5)
    calls = settings.warmups + settings.values
    per_process = calls * value * (2.0 if d.traced else 1.0)
    calibration = 0.0 if d.fixed_loops else calls * value + _PROCESS_START_S
    return settings.processes * (per_process + _PROCESS_START_S) + calibration
