"""The memory gate and the leak gate: pure decisions over parsed profiles.

Inputs are :mod:`perf.profiling.profiles` records (or stored :class:`MemoryFigures`); outputs are
frozen records with a verdict and, when one fails, the allocation sites or stacks that
explain it. Nothing here runs a profiler, reads a file or prints.

Memory checks (:func:`memory_checks`), each "head / base - 1 > threshold" with a default
threshold of 10 %, higher being worse:

- ``allocations`` and ``allocated_bytes``: memray's totals for one scenario run (default
  mode: the same run repeats them to within about 0.5 % here, so no interval is needed);
- ``retained_bytes``: the coordinator-attributable bytes tracemalloc still traces after
  the last settle cycle (``perf/profiling/target.py settle``).

A failing allocation check lists the memray sites whose bytes grew most from base to head
(or head's largest, against a stored figure); a failing ``retained_bytes`` check lists
head's stacks that grew most after the warm-up batches.

Leak check (:func:`leak_check`): "any steady growth beyond a small stated allowance",
``DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT`` bytes per published event, from two figures:

1. growth: the least-squares slope of attributable retained bytes over events published,
   after the warm-up batches, with its t interval (:func:`perf.workload.slope.linear_slope_ci`).
   Bounded caches grow too while a run is short (CrucibleCore remembers every event id
   for its 120 s de-duplication window: about 100 bytes per event here), so growth is
   judged against a reference: the base's slope measured in the same run, or a stored
   slope. It fails when the lower end of the interval of ``head - reference`` (standard
   errors added in quadrature, t with ``n_head + n_base - 4`` degrees of freedom; assumes
   independent residuals) is above the allowance. Without a reference it is reported and
   not judged.
2. held after stop: attributable bytes still alive once the coordinator was stopped, dropped
   and its event loop closed, per event published (minus the reference's, when there is
   one). Nothing of a coordinator should outlive it, so this needs no reference; it fails
   above the allowance. One-off module caches filled during the run are a few kB: far
   below the allowance over a few thousand events.

The leak check fails if either figure does; its ``stacks`` are then those of the failing
figure (innermost frame first, each naming function and file:line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perf.decide.stats import DEFAULT_CONFIDENCE
from perf.decide.verdict import Verdict
from perf.profiling.profiles import MemoryStats, SettleSeries, StackGrowth
from perf.workload.slope import SlopeEstimate, linear_slope_ci

__all__ = [
    "DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT",
    "DEFAULT_MEMORY_THRESHOLD_PCT",
    "DEFAULT_TOP_SITES",
    "LeakCheck",
    "MemoryCheck",
    "MemoryFigures",
    "MemoryGate",
    "SiteChange",
    "growth_slope",
    "leak_check",
    "memory_checks",
    "memory_figures",
    "memory_gate",
]

DEFAULT_MEMORY_THRESHOLD_PCT = 10.0
DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT = 16.0
DEFAULT_TOP_SITES = 5
MEMORY_METRICS: tuple[str, ...] = ("allocations", "allocated_bytes", "retained_bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryFigures:
    """The figures the memory gate compares, as a baseline can store them."""

    allocations: int | None = None
    allocated_bytes: int | None = None
    retained_bytes: int | None = None
    growth_bytes_per_event: float | None = None
    held_after_stop_bytes_per_event: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "allocations": self.allocations,
            "allocated_bytes": self.allocated_bytes,
            "retained_bytes": self.retained_bytes,
            "growth_bytes_per_event": self.growth_bytes_per_event,
            "held_after_stop_bytes_per_event": self.held_after_stop_bytes_per_event,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryFigures:
        def number(key: str) -> float | None:
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"memory figure {key!r} is not a number: {value!r}")
            if not math.isfinite(value) or (key != "growth_bytes_per_event" and value < 0):
                raise ValueError(f"memory figure {key!r} is out of range: {value!r}")
            return float(value)

        def count(key: str) -> int | None:
            value = number(key)
            return None if value is None else int(value)

        return cls(
            allocations=count("allocations"),
            allocated_bytes=count("allocated_bytes"),
            retained_bytes=count("retained_bytes"),
            growth_bytes_per_event=number("growth_bytes_per_event"),
            held_after_stop_bytes_per_event=number("held_after_stop_bytes_per_event"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteChange:
    """An allocation site (or stack) behind a failing check: ``base_bytes`` None when the
    base is a stored figure; ``stack`` innermost first (empty for memray sites, which
    carry only their innermost frame)."""

    site: str
    base_bytes: int | None
    head_bytes: int
    change_bytes: int
    stack: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryCheck:
    """One memory metric of one subject (``"core/medium"``), head against base."""

    subject: str
    metric: str
    base: float
    head: float
    change_pct: float
    threshold_pct: float
    verdict: Verdict
    reason: str
    sites: tuple[SiteChange, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakCheck:
    """The leak check of one subject. Growth figures are bytes per published event;
    ``excess_*`` is head minus the reference (head alone without one)."""

    subject: str
    allowance_bytes_per_event: float
    growth: SlopeEstimate
    reference_growth: float | None
    excess_growth: float
    excess_ci_low: float
    excess_ci_high: float
    growth_judged: bool
    held_after_stop_bytes_per_event: float
    reference_held_bytes_per_event: float | None
    events: int
    verdict: Verdict
    reason: str
    stacks: tuple[StackGrowth, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryGate:
    """Every memory and leak check of a run, and the verdict over them."""

    checks: tuple[MemoryCheck, ...]
    leaks: tuple[LeakCheck, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = [c.verdict for c in self.checks] + [c.verdict for c in self.leaks]
        if Verdict.FAIL in verdicts:
            return Verdict.FAIL
        if not verdicts or Verdict.INCONCLUSIVE in verdicts:
            return Verdict.INCONCLUSIVE
        return Verdict.PASS

    @property
    def failures(self) -> tuple[MemoryCheck | LeakCheck, ...]:
        failed: list[MemoryCheck | LeakCheck] = [
            c for c in self.checks if c.verdict is Verdict.FAIL
        ]
        failed += [c for c in self.leaks if c.verdict is Verdict.FAIL]
        return tuple(failed)


def growth_slope(series: SettleSeries, confidence: float = DEFAULT_CONFIDENCE) -> SlopeEstimate:
    """Slope of attributable retained bytes per event after the warm-up batches.
    ValueError when fewer than 3 readings remain."""
    keep = slice(series.warmup_batches, None)
    return linear_slope_ci(
        [float(e) for e in series.events[keep]],
        [float(b) for b in series.retained_bytes[keep]],
        confidence,
    )


def _held_per_event(series: SettleSeries) -> float:
    return series.held_after_stop_bytes / series.total_events if series.total_events else 0.0


def memory_figures(stats: MemoryStats | None, settle: SettleSeries | None) -> MemoryFigures:
    """What a baseline stores of one subject."""
    growth = None
    if settle is not None:
        try:
            growth = growth_slope(settle).slope
        except ValueError:
            growth = None
    return MemoryFigures(
        allocations=stats.allocations if stats else None,
        allocated_bytes=stats.allocated_bytes if stats else None,
        retained_bytes=settle.retained_bytes[-1] if settle else None,
        growth_bytes_per_event=growth,
        held_after_stop_bytes_per_event=_held_per_event(settle) if settle else None,
    )


def _site_changes(base: MemoryStats | None, head: MemoryStats, top: int) -> tuple[SiteChange, ...]:
    if base is None:
        ranked = sorted(head.site_bytes.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(
            SiteChange(site=s, base_bytes=None, head_bytes=b, change_bytes=b)
            for s, b in ranked[:top]
        )
    changes = [
        SiteChange(
            site=site,
            base_bytes=base.site_bytes.get(site, 0),
            head_bytes=head_bytes,
            change_bytes=head_bytes - base.site_bytes.get(site, 0),
        )
        for site, head_bytes in head.site_bytes.items()
    ]
    grown = [c for c in changes if c.change_bytes > 0]
    return tuple(sorted(grown, key=lambda c: (-c.change_bytes, c.site))[:top])


def _stack_changes(
    head: Sequence[StackGrowth], base: Sequence[StackGrowth] | None, top: int
) -> tuple[SiteChange, ...]:
    """Head's growing sites less the same sites' growth in the base (when measured), so
    that what both sides hold alike (a cache) drops out; largest first."""
    base_growth = {g.site.label: g.size_diff_bytes for g in base} if base is not None else {}
    changes = [
        SiteChange(
            site=g.site.label,
            base_bytes=base_growth.get(g.site.label, 0) if base is not None else None,
            head_bytes=g.size_diff_bytes,
            change_bytes=g.size_diff_bytes - base_growth.get(g.site.label, 0),
            stack=tuple(f.label for f in g.stack),
        )
        for g in head
    ]
    grown = [c for c in changes if c.change_bytes > 0]
    return tuple(sorted(grown, key=lambda c: (-c.change_bytes, c.site))[:top])


def _leading(stacks: Sequence[StackGrowth], events: int, top: int) -> tuple[StackGrowth, ...]:
    """The stacks that matter: at least 1 byte per event (one-off allocations of a few
    hundred bytes are left out), and never none when there is one."""
    kept = [g for g in stacks if events and g.size_diff_bytes / events >= 1.0]
    return tuple((kept or list(stacks[:1]))[:top])


def _compare(
    metric: str, base: float, head: float, threshold_pct: float
) -> tuple[float, Verdict, str]:
    if base <= 0:
        if head <= 0:
            return 0.0, Verdict.PASS, f"{metric}: 0 on both sides"
        return math.inf, Verdict.FAIL, f"{metric}: {head:,.0f} where the base had none"
    change_pct = (head / base - 1.0) * 100.0
    verdict = Verdict.FAIL if change_pct > threshold_pct else Verdict.PASS
    word = "above" if verdict is Verdict.FAIL else "within"
    return (
        change_pct,
        verdict,
        f"{metric} {change_pct:+.1f} % ({base:,.0f} -> {head:,.0f}), {word} the "
        f"{threshold_pct:g} % threshold",
    )


def memory_checks(
    subject: str,
    base: MemoryFigures | tuple[MemoryStats | None, SettleSeries | None],
    head: tuple[MemoryStats | None, SettleSeries | None],
    *,
    threshold_pct: float = DEFAULT_MEMORY_THRESHOLD_PCT,
    top: int = DEFAULT_TOP_SITES,
) -> tuple[MemoryCheck, ...]:
    """Compare head's allocation count, allocated bytes and retained bytes with the base
    (profiles of the base commit, or stored figures). A metric missing on either side is
    left out (the caller reports what was not captured)."""
    head_stats, head_settle = head
    if isinstance(base, MemoryFigures):
        base_stats, base_settle = None, None
        base_fig = base
    else:
        base_stats, base_settle = base
        base_fig = memory_figures(base_stats, base_settle)
    head_fig = memory_figures(head_stats, head_settle)
    out: list[MemoryCheck] = []
    for metric in MEMORY_METRICS:
        b = getattr(base_fig, metric)
        h = getattr(head_fig, metric)
        if b is None or h is None:
            continue
        change_pct, verdict, reason = _compare(metric, float(b), float(h), threshold_pct)
        sites: tuple[SiteChange, ...] = ()
        if verdict is Verdict.FAIL:
            if metric == "retained_bytes" and head_settle is not None:
                base_stacks = base_settle.top_growth if base_settle is not None else None
                sites = _stack_changes(head_settle.top_growth, base_stacks, top)
            elif head_stats is not None:
                sites = _site_changes(base_stats, head_stats, top)
        out.append(
            MemoryCheck(
                subject=subject,
                metric=metric,
                base=float(b),
                head=float(h),
                change_pct=change_pct,
                threshold_pct=threshold_pct,
                verdict=verdict,
                reason=reason,
                sites=sites,
            )
        )
    return tuple(out)


def _difference_ci(
    head: SlopeEstimate, base: SlopeEstimate, confidence: float
) -> tuple[float, float, float]:
    from scipy import stats as sps

    diff = head.slope - base.slope
    stderr = math.hypot(head.stderr, base.stderr)
    dof = max(head.n + base.n - 4, 1)
    half = float(sps.t.ppf(1.0 - (1.0 - confidence) / 2.0, dof)) * stderr
    return diff, diff - half, diff + half


def leak_check(
    subject: str,
    head: SettleSeries,
    reference: SettleSeries | MemoryFigures | None = None,
    *,
    allowance_bytes_per_event: float = DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
    confidence: float = DEFAULT_CONFIDENCE,
    top: int = DEFAULT_TOP_SITES,
) -> LeakCheck:
    """Judge head's settle cycles for a leak (see the module docstring). ValueError when
    a series has fewer than 3 readings after its warm-up batches."""
    if allowance_bytes_per_event < 0:
        raise ValueError("the leak allowance must be >= 0 bytes per event")
    growth = growth_slope(head, confidence)
    held = _held_per_event(head)
    ref_growth: float | None = None
    ref_held: float | None = None
    excess, low, high = growth.slope, growth.ci_low, growth.ci_high
    if isinstance(reference, SettleSeries):
        base_growth = growth_slope(reference, confidence)
        ref_growth = base_growth.slope
        ref_held = _held_per_event(reference)
        excess, low, high = _difference_ci(growth, base_growth, confidence)
    elif isinstance(reference, MemoryFigures):
        ref_growth = reference.growth_bytes_per_event
        ref_held = reference.held_after_stop_bytes_per_event
        if ref_growth is not None:
            excess, low, high = (
                growth.slope - ref_growth,
                growth.ci_low - ref_growth,
                (growth.ci_high - ref_growth),
            )
    judged = ref_growth is not None
    held_excess = held - (ref_held or 0.0)
    growth_fails = judged and low > allowance_bytes_per_event
    held_fails = held_excess > allowance_bytes_per_event
    parts = []
    if judged:
        parts.append(
            f"growth {excess:+.1f} B/event over the reference "
            f"({low:+.1f} to {high:+.1f}, {confidence:.0%})"
        )
    else:
        parts.append(
            f"growth {growth.slope:.1f} B/event ({growth.ci_low:.1f} to {growth.ci_high:.1f}), "
            "not judged: no base or stored figure to compare with (bounded caches grow too)"
        )
    parts.append(f"held after stop {held_excess:.1f} B/event")
    stacks: tuple[StackGrowth, ...] = ()
    if held_fails or growth_fails:
        verdict = Verdict.FAIL
        failing = "held after stop" if held_fails else "growth"
        reason = (
            f"leak: {failing} above the allowance of {allowance_bytes_per_event:g} B/event; "
            + "; ".join(parts)
        )
        stacks = _leading(
            head.top_held_after_stop if held_fails else head.top_growth, head.total_events, top
        )
        if stacks:
            reason += f"; top stack: {stacks[0].site.label}"
    else:
        verdict = Verdict.PASS
        reason = f"no leak beyond {allowance_bytes_per_event:g} B/event; " + "; ".join(parts)
    return LeakCheck(
        subject=subject,
        allowance_bytes_per_event=allowance_bytes_per_event,
        growth=growth,
        reference_growth=ref_growth,
        excess_growth=excess,
        excess_ci_low=low,
        excess_ci_high=high,
        growth_judged=judged,
        held_after_stop_bytes_per_event=held,
        reference_held_bytes_per_event=ref_held,
        events=head.total_events,
        verdict=verdict,
        reason=reason,
        stacks=stacks,
    )


def memory_gate(
    subjects: Mapping[
        str,
        tuple[
            MemoryFigures | tuple[MemoryStats | None, SettleSeries | None] | None,
            tuple[MemoryStats | None, SettleSeries | None],
        ],
    ],
    *,
    threshold_pct: float = DEFAULT_MEMORY_THRESHOLD_PCT,
    allowance_bytes_per_event: float = DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
    top: int = DEFAULT_TOP_SITES,
) -> MemoryGate:
    """Every check for ``subject -> (base, head)``; a None base gets the leak check's
    held-after-stop figure only (nothing else has a reference)."""
    checks: list[MemoryCheck] = []
    leaks: list[LeakCheck] = []
    for subject, (base, head) in subjects.items():
        if base is not None:
            checks.extend(memory_checks(subject, base, head, threshold_pct=threshold_pct, top=top))
        head_settle = head[1]
        if head_settle is None:
            continue
        reference = base if base is None or isinstance(base, MemoryFigures) else base[1]
        leaks.append(
            leak_check(
                subject,
                head_settle,
                reference,
                allowance_bytes_per_event=allowance_bytes_per_event,
                top=top,
            )
        )
    return MemoryGate(checks=tuple(checks), leaks=tuple(leaks))
