"""Architecture comparison (the original suite's comparison_analysis) from ONE run folder.

DataCoordinator (``data``, the current approach) against CrucibleCore (``core``, the
candidate), with the ``reference`` dispatcher as the floor, per KPI and per case, from the
result files ``python -m perf run`` writes: one pyperf JSON per suite and the JSON summary
beside it (``{suite}.crucible.json``). :func:`perf.measure.results.load_run` reads them;
everything here is pure and works on the :class:`~perf.measure.results.RunData` it returns.

Conventions, the same for every KPI:

- **Improvement %** is the candidate against the base, positive when the candidate is
  better. With ``r = median(core) / median(data)`` (the ratio of medians of the per-sample
  values) it is ``(r - 1) x 100`` for higher-is-better KPIs (the
  docs/design.md#key-indicators formula
  ``(core - data) / data x 100`` for throughput) and ``(1 - r) x 100`` for lower-is-better
  ones (``(data - core) / data x 100``: a latency 20 % lower is +20 %). The interval is
  the same transform of the ratio's interval, :func:`perf.decide.stats.ratio_ci_unpaired` (seeded
  percentile bootstrap); significance is :func:`perf.decide.stats.unpaired_test` (Mann-Whitney U,
  valid for unequal sample counts), Holm-corrected across every KPI comparison of the
  analysis (:func:`perf.decide.stats.holm`).
- **Throughput** is derived per sample from pyperf's time benchmark: published events per
  workload (the case's ``crucible_events``) divided by the measured seconds per workload.
- **Error rate %** = failed / total x 100, pooled over every workload of every sample:
  per sample, ``failed = error_rate_pct x published / 100`` (rounded back to the integer
  count it came from) with ``published = events x loops``.
- **Memory efficiency %** = freed / allocated x 100 from the memory suite's tracemalloc
  figures, pooled over the samples (sum of freed over sum of allocated).
- **Scalability factor** = actual improvement / expected improvement. The *expected*
  improvement is measured, never assumed: the headroom of the base over the reference
  floor, i.e. the improvement the reference dispatcher (the leanest honest coordinator)
  shows over ``data`` on the same KPI in the same run. A factor of 1 means the candidate
  closed the whole gap to the floor, 0 that it gained nothing, below 0 that it lost ground.
  It is not defined when the headroom is not significant or not positive (nothing to
  close), and then says so.
- **Ratings** use the docs/design.md#ratings thresholds on the medium daemon_performance case.
  The suite records latency percentiles, not the mean, so the "average latency" rating is
  applied to the median (p50) latency and labelled as such. Memory is peak RSS in MiB
  (2**20 bytes, as ``psutil`` RSS / 1024 / 1024).

Nothing is estimated or hard-coded: a figure that is not in the files is reported as
missing, with what is missing, and no number.

The steps live beside this module: :mod:`perf.report.kpis` (the comparisons and their
correction), :mod:`perf.report.figures` (error rates, memory, leaks, sweeps, scalability
factors), :mod:`perf.report.ratings` and :mod:`perf.report.findings` (strengths,
weaknesses, recommendations, the target); :func:`analyze` runs them in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from perf.decide.policy import DEFAULT_ALPHA, DEFAULT_CONFIDENCE
from perf.measure.results import BASE, CANDIDATE, FLOOR, CaseResult, Missing, RunData, load_run
from perf.report.figures import (
    Bottleneck,
    ErrorRateRow,
    LatencyProfile,
    LeakFigure,
    MemoryEfficiency,
    RssSeries,
    ScalabilityFactor,
    SweepCurve,
    bottleneck,
    error_rate_row,
    latency_profile,
    leak_figure,
    memory_efficiency,
    rss_series,
    scalability_factors,
    sweep_curve,
)
from perf.report.findings import (
    Finding,
    Recommendation,
    TargetItem,
    TargetStatus,
    recommendations,
    strengths,
    target,
    weaknesses,
)
from perf.report.kpis import KPIS, KpiComparison, compare_kpi, settle
from perf.report.ratings import Rating, ratings

__all__ = ["Analysis", "analyze", "analyze_run_dir"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """The architecture comparison of one run."""

    source: str
    base: str
    candidate: str
    floor: str
    confidence: float
    alpha: float
    set_name: str | None
    commit: str | None
    suites: tuple[str, ...]
    coordinators: tuple[str, ...]
    missing: tuple[Missing, ...]
    kpis: tuple[KpiComparison, ...]
    error_rates: tuple[ErrorRateRow, ...]
    memory_efficiency: tuple[MemoryEfficiency, ...]
    leaks: tuple[LeakFigure, ...]
    scalability: tuple[ScalabilityFactor, ...]
    bottlenecks: tuple[Bottleneck, ...]
    ratings: tuple[Rating, ...]
    strengths: tuple[Finding, ...]
    weaknesses: tuple[Finding, ...]
    recommendations: tuple[Recommendation, ...]
    target: tuple[TargetItem, ...]
    latency: tuple[LatencyProfile, ...]
    sweeps: tuple[SweepCurve, ...]
    rss: tuple[RssSeries, ...]

    @property
    def target_met(self) -> bool:
        return bool(self.target) and all(t.status is TargetStatus.MET for t in self.target)


def analyze(
    run: RunData,
    *,
    base: str = BASE,
    candidate: str = CANDIDATE,
    floor: str = FLOOR,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Analysis:
    """The architecture comparison of a loaded run; see the module docstring."""
    by_case = _by_case(run)
    raw = _compare_all(
        by_case, base=base, candidate=candidate, floor=floor, confidence=confidence, seed=seed
    )
    kpis = settle(raw, alpha)
    figures = _case_figures(by_case, base=base, candidate=candidate)
    factors = scalability_factors(kpis, base=base, floor=floor)
    missing = list(run.missing)
    if "scalability_testing" in run.suites and not factors:
        missing.append(
            Missing(what="scalability factor", detail="no sweep capacity figure in the results")
        )
    shown = _shown(run.coordinators, (base, candidate, floor))
    rated = ratings(run, shown or [base, candidate, floor])
    advice = recommendations(
        kpis,
        rated,
        figures.leaks,
        figures.bottlenecks,
        factors,
        figures.error_rows,
        missing,
        candidate,
        base,
    )
    return Analysis(
        source=run.source,
        base=base,
        candidate=candidate,
        floor=floor,
        confidence=confidence,
        alpha=alpha,
        set_name=run.set_name,
        commit=run.commit,
        suites=run.suites,
        coordinators=tuple(shown),
        missing=tuple(missing),
        kpis=tuple(kpis),
        error_rates=tuple(figures.error_rows),
        memory_efficiency=tuple(figures.efficiencies),
        leaks=tuple(figures.leaks),
        scalability=tuple(factors),
        bottlenecks=tuple(figures.bottlenecks),
        ratings=tuple(rated),
        strengths=tuple(strengths(kpis, rated, candidate, base)),
        weaknesses=tuple(weaknesses(kpis, rated, figures.leaks, candidate, base)),
        recommendations=tuple(advice),
        target=tuple(target(kpis, figures.error_rows)),
        latency=tuple(figures.latency),
        sweeps=tuple(figures.sweeps),
        rss=tuple(figures.rss),
    )


def _by_case(run: RunData) -> dict[tuple[str, str], dict[str, CaseResult]]:
    """(suite, case) -> coordinator -> its result, in the run's order."""
    by_case: dict[tuple[str, str], dict[str, CaseResult]] = {}
    for result in run.cases:
        by_case.setdefault((result.suite, result.case), {})[result.coordinator] = result
    return by_case


def _compare_all(
    by_case: Mapping[tuple[str, str], Mapping[str, CaseResult]],
    *,
    base: str,
    candidate: str,
    floor: str,
    confidence: float,
    seed: int,
) -> list[KpiComparison]:
    """Every KPI that applies to every case, before the correction across them."""
    out: list[KpiComparison] = []
    for results in by_case.values():
        for kpi in KPIS:
            comparison = compare_kpi(
                kpi,
                results,
                base=base,
                candidate=candidate,
                floor=floor,
                confidence=confidence,
                seed=seed,
            )
            if comparison is not None:
                out.append(comparison)
    return out


def _shown(coordinators: Sequence[str], compared: Sequence[str]) -> list[str]:
    """The run's coordinators, those compared (base, candidate, floor) first."""
    return [c for c in compared if c in coordinators] + [
        c for c in coordinators if c not in compared
    ]


@dataclass(slots=True)
class _CaseFigures:
    """The per-case and per-coordinator figures, gathered in one pass over the cases."""

    error_rows: list[ErrorRateRow] = field(default_factory=list)
    efficiencies: list[MemoryEfficiency] = field(default_factory=list)
    leaks: list[LeakFigure] = field(default_factory=list)
    bottlenecks: list[Bottleneck] = field(default_factory=list)
    latency: list[LatencyProfile] = field(default_factory=list)
    sweeps: list[SweepCurve] = field(default_factory=list)
    rss: list[RssSeries] = field(default_factory=list)


def _case_figures(
    by_case: Mapping[tuple[str, str], Mapping[str, CaseResult]], *, base: str, candidate: str
) -> _CaseFigures:
    out = _CaseFigures()
    for (suite, case), results in by_case.items():
        row = error_rate_row(suite, case, results, base=base, candidate=candidate)
        if row is not None:
            out.error_rows.append(row)
        for result in results.values():
            _add(out.efficiencies, memory_efficiency(result))
            _add(out.leaks, leak_figure(result))
            _add(out.bottlenecks, bottleneck(result))
            _add(out.latency, latency_profile(result))
            _add(out.sweeps, sweep_curve(result))
            _add(out.rss, rss_series(result))
    return out


def _add(items: list[_T], item: _T | None) -> None:
    if item is not None:
        items.append(item)


def analyze_run_dir(
    run_dir: str | Path,
    *,
    summaries: Sequence[str | Path] | None = None,
    pyperf_files: Sequence[str | Path] | None = None,
    **options: Any,
) -> Analysis:
    """:func:`~perf.measure.results.load_run` then :func:`analyze` (keyword options as for
    :func:`analyze`)."""
    return analyze(load_run(run_dir, summaries=summaries, pyperf_files=pyperf_files), **options)
