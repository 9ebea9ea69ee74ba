"""Scalability sweeps: raise the offered load step by step until a limit is hit.

A sweep raises one axis (the offered rate, the number of services, or the payload size)
by a factor per step. Each step is an open-loop steady workload measured by
``crucible.measure.measure``; a step *passes* while its p99 latency, and the publisher's
p99 lateness against its schedule, stay within the bound and its error rate within the
limit. A failing step is measured once more and fails only if it fails again (a single
stall of a shared machine must not end a sweep). After the first failing step, bisection
steps narrow the limit down.

From the measured points (pure functions, tested on synthetic points):

- the maximum sustainable value: on the rate axis the highest *measured* delivered
  throughput of a passing step; on the other axes the largest passing value;
- the knee: the last value, in increasing order, before p99 latency exceeds
  ``knee_factor`` times the p99 of the smallest value, floored at ``knee_floor_s`` (or a
  step fails);
- the binding resource at the limit, judged from that step's measurements: ``cpu`` (the
  process used >= 90 % of one core), ``io_wait`` (>= 10 % of system CPU time in I/O wait),
  ``memory`` (RSS grew by >= 64 MiB and >= 50 % during the step), else ``queue`` (latency
  grew with none of those saturated: events waited in queues, contention). ``none`` when
  no step failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import psutil

from perf.workload.cases import CaseDef, SweepSpec
from perf.workload.library import RunResult, RunSpec, centered_range, measure
from perf.workload.metrics import SampleValues, check_accounting

__all__ = [
    "CPU_BOUND_PCT",
    "IOWAIT_BOUND_PCT",
    "MEMORY_GROWTH_BYTES",
    "MEMORY_GROWTH_FRACTION",
    "StepMeasurement",
    "SweepPoint",
    "SweepResult",
    "binding_resource",
    "judge",
    "knee",
    "max_sustainable",
    "run_sweep",
    "step_spec",
    "sweep_sample",
]

CPU_BOUND_PCT = 90.0
IOWAIT_BOUND_PCT = 10.0
MEMORY_GROWTH_BYTES = 64 * 2**20
MEMORY_GROWTH_FRACTION = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class StepMeasurement:
    """What one step measured."""

    value: float
    offered_eps: float
    achieved_eps: float
    events: int
    latency_p99_s: float | None
    schedule_lag_p99_s: float | None
    error_rate_pct: float
    cpu_pct: float
    iowait_pct: float | None
    rss_start_bytes: int
    rss_peak_bytes: int
    wall_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepPoint:
    """A judged step. ``first_try`` is the failed first measurement of a step that was
    measured again (``SweepSpec.confirm_failures``); ``step`` is the one that counts."""

    step: StepMeasurement
    passed: bool
    reason: str
    first_try: StepMeasurement | None = None

    def as_dict(self) -> dict[str, object]:
        s = self.step
        return {
            "value": s.value,
            "offered_eps": s.offered_eps,
            "achieved_eps": s.achieved_eps,
            "events": s.events,
            "latency_p99_s": s.latency_p99_s,
            "schedule_lag_p99_s": s.schedule_lag_p99_s,
            "error_rate_pct": s.error_rate_pct,
            "cpu_pct": s.cpu_pct,
            "iowait_pct": s.iowait_pct,
            "rss_start_bytes": s.rss_start_bytes,
            "rss_peak_bytes": s.rss_peak_bytes,
            "wall_s": s.wall_s,
            "passed": self.passed,
            "reason": self.reason,
            "first_try_latency_p99_s": None
            if self.first_try is None
            else (self.first_try.latency_p99_s),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    axis: str
    points: tuple[SweepPoint, ...]  # in the order they were run
    max_sustainable: float | None
    knee: float | None
    limit_reached: bool
    binding: str
    evidence: str

    @property
    def wall_s(self) -> float:
        return sum(
            p.step.wall_s + (p.first_try.wall_s if p.first_try is not None else 0.0)
            for p in self.points
        )


def judge(step: StepMeasurement, spec: SweepSpec) -> tuple[bool, str]:
    """Whether a step passed, and if not why (p99, publisher lateness, or errors)."""
    bound = spec.p99_bound_s
    if step.latency_p99_s is None:
        return False, "no event was delivered"
    if step.latency_p99_s > bound:
        return False, f"p99 latency {step.latency_p99_s * 1e3:.2f} ms > {bound * 1e3:g} ms"
    lag = step.schedule_lag_p99_s
    if lag is not None and lag > bound:
        return False, f"publisher p99 lateness {lag * 1e3:.2f} ms > {bound * 1e3:g} ms"
    if step.error_rate_pct > spec.max_error_pct:
        return False, f"error rate {step.error_rate_pct:.2f} % > {spec.max_error_pct:g} %"
    return True, ""


def binding_resource(step: StepMeasurement) -> tuple[str, str]:
    """The resource judged to bind at a failing step, and the figures that show it."""
    at = f"at {step.value:,.0f}"
    if step.cpu_pct >= CPU_BOUND_PCT:
        return "cpu", f"process CPU {step.cpu_pct:.0f} % of one core {at}"
    if step.iowait_pct is not None and step.iowait_pct >= IOWAIT_BOUND_PCT:
        return "io_wait", f"I/O wait {step.iowait_pct:.0f} % of system CPU time {at}"
    growth = step.rss_peak_bytes - step.rss_start_bytes
    if growth >= MEMORY_GROWTH_BYTES and growth >= MEMORY_GROWTH_FRACTION * step.rss_start_bytes:
        return "memory", f"RSS grew {growth / 2**20:.0f} MiB during the step {at}"
    p99 = "n/a" if step.latency_p99_s is None else f"{step.latency_p99_s * 1e3:.2f} ms"
    return "queue", (
        f"p99 latency {p99} with CPU at {step.cpu_pct:.0f} % and RSS growth "
        f"{growth / 2**20:.1f} MiB {at}: events waited in queues"
    )


def max_sustainable(points: Sequence[SweepPoint], axis: str) -> float | None:
    """Rate axis: the highest measured throughput of a passing step; other axes: the
    largest passing value. None if no step passed."""
    passing = [p.step for p in points if p.passed]
    if not passing:
        return None
    if axis == "rate":
        return max(s.achieved_eps for s in passing)
    return max(s.value for s in passing)


def knee(points: Sequence[SweepPoint], factor: float, floor_s: float = 0.0) -> float | None:
    """The last value, in increasing order, before the p99 latency exceeds ``factor`` times
    the p99 at the smallest value (taken as at least ``floor_s``), or before the first
    failing step. None if the smallest value already failed."""
    ordered = sorted(points, key=lambda p: p.step.value)
    if not ordered or not ordered[0].passed or ordered[0].step.latency_p99_s is None:
        return None
    base = max(ordered[0].step.latency_p99_s, floor_s)
    last = ordered[0].step.value
    for p in ordered[1:]:
        p99 = p.step.latency_p99_s
        if not p.passed or p99 is None or p99 > factor * base:
            break
        last = p.step.value
    return last


def _axis_value(axis: str, value: float) -> float:
    return value if axis == "rate" else float(round(value))


def sweep_values(spec: SweepSpec) -> list[float]:
    """The increasing values of the doubling phase."""
    out: list[float] = []
    value = spec.start
    for _ in range(spec.max_steps):
        v = _axis_value(spec.axis, value)
        if spec.max_value is not None:
            v = min(v, spec.max_value)
        if out and v <= out[-1]:
            break
        out.append(v)
        value *= spec.factor
    return out


def run_sweep(spec: SweepSpec, step: Callable[[float], StepMeasurement]) -> SweepResult:
    """Run a sweep with ``step(value)`` measuring one step."""
    points: list[SweepPoint] = []

    def run(value: float) -> SweepPoint:
        measured = step(value)
        passed, reason = judge(measured, spec)
        first: StepMeasurement | None = None
        if not passed and spec.confirm_failures:
            # A failure is confirmed by a second measurement: one stall of the machine
            # (another process taking the CPU for 10 ms) must not end a sweep.
            first, measured = measured, step(value)
            passed, reason = judge(measured, spec)
        point = SweepPoint(step=measured, passed=passed, reason=reason, first_try=first)
        points.append(point)
        return point

    last_pass: float | None = None
    first_fail: float | None = None
    for value in sweep_values(spec):
        if run(value).passed:
            last_pass = value
        else:
            first_fail = value
            break
    if first_fail is not None and last_pass is not None:
        lo, hi = last_pass, first_fail
        for _ in range(spec.refine_steps):
            mid = _axis_value(spec.axis, (lo + hi) / 2)
            if mid <= lo or mid >= hi:
                break
            if run(mid).passed:
                lo = mid
            else:
                hi = mid
    failing = sorted((p for p in points if not p.passed), key=lambda p: p.step.value)
    if failing:
        binding, evidence = binding_resource(failing[0].step)
        evidence = f"{failing[0].reason}; {evidence}"
    else:
        top = max(p.step.value for p in points)
        binding, evidence = "none", f"no limit reached up to {top:,.0f}"
    return SweepResult(
        axis=spec.axis,
        points=tuple(points),
        max_sustainable=max_sustainable(points, spec.axis),
        knee=knee(points, spec.knee_factor, spec.knee_floor_s),
        limit_reached=bool(failing),
        binding=binding,
        evidence=evidence,
    )


def step_spec(definition: CaseDef, coordinator: str, value: float) -> RunSpec:
    """The RunSpec of one sweep step: a steady open-loop workload of ``step_s`` seconds."""
    sweep = definition.sweep
    if sweep is None:
        raise ValueError(f"case {definition.name} is not a sweep")
    scenario = definition.scenario
    rate = sweep.rate_eps
    if sweep.axis == "rate":
        rate = value
    elif sweep.axis == "services":
        scenario = replace(scenario, services=int(value))
    else:
        scenario = replace(scenario, payload_bytes=centered_range(int(value)))
    events = max(sweep.min_events, round(rate * sweep.step_s))
    scenario = replace(scenario, events=events)
    spec = replace(definition, scenario=scenario, pattern="steady", rate_eps=rate)
    return spec.run_spec(coordinator)


def _iowait(times: object) -> float | None:
    value = getattr(times, "iowait", None)
    return float(value) if value is not None else None


def measure_step(definition: CaseDef, coordinator: str, value: float) -> StepMeasurement:
    """Measure one real sweep step, with the system's I/O wait share during it."""
    spec = step_spec(definition, coordinator, value)
    before = psutil.cpu_times()
    result: RunResult = asyncio.run(measure(spec))
    after = psutil.cpu_times()
    check_accounting(result)
    iowait: float | None = None
    io0, io1 = _iowait(before), _iowait(after)
    total = sum(after) - sum(before)
    if io0 is not None and io1 is not None and total > 0:
        iowait = 100.0 * (io1 - io0) / total
    return StepMeasurement(
        value=value,
        offered_eps=result.offered_rate_eps or spec.rate_eps,
        achieved_eps=result.throughput_eps,
        events=result.published,
        latency_p99_s=result.latency_p99_s,
        schedule_lag_p99_s=result.schedule_lag_p99_s,
        error_rate_pct=result.error_rate_pct,
        cpu_pct=result.cpu_percent,
        iowait_pct=iowait,
        rss_start_bytes=result.rss_start_bytes,
        rss_peak_bytes=result.peak_rss_bytes,
        wall_s=result.wall_s,
    )


_MAX_NAME = {
    "rate": "throughput_max_eps",
    "services": "services_max",
    "payload": "payload_max_bytes",
}
_KNEE_NAME = {"rate": "knee_eps", "services": "knee_services", "payload": "knee_payload_bytes"}


def sweep_sample(results: Sequence[SweepResult]) -> tuple[SampleValues, dict[str, str]]:
    """The figures of one sample of sweeps (one sweep per loop; several are averaged) and
    its labels (the binding resource of the last sweep, with its evidence)."""
    if not results:
        raise ValueError("a sample needs at least one sweep")
    axis = results[0].axis
    maxima = [r.max_sustainable for r in results]
    knees = [r.knee for r in results]
    values: SampleValues = {
        _MAX_NAME[axis]: None if None in maxima else sum(m or 0.0 for m in maxima) / len(maxima),
        _KNEE_NAME[axis]: None if None in knees else sum(k or 0.0 for k in knees) / len(knees),
        "limit_reached": float(sum(r.limit_reached for r in results)) / len(results),
    }
    last = results[-1]
    return values, {"binding": last.binding, "binding_evidence": last.evidence}
