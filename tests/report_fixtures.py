"""Gate outcomes and comparisons, for the tests of the reports built from them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from perf.decide.outcome import GateOutcome
from perf.decide.policy import Direction
from perf.decide.verdict import Comparison, Verdict
from perf.measure.machine import MachineLoad
from perf.rundir import Artifact

EVIL = "evil.<script>alert(1)</script>.core"


def comp(
    benchmark: str,
    ratio: float,
    verdict: Verdict,
    *,
    metric: str = "time",
    direction: Direction = Direction.LOWER_IS_BETTER,
    threshold_pct: float = 2.0,
    noise_pct: float = 0.4,
    min_detectable_pct: float = 0.9,
    p_adjusted: float = 0.001,
    half_width: float = 0.005,
) -> Comparison:
    return Comparison(
        benchmark=benchmark,
        metric=metric,
        ratio=ratio,
        ci_low=ratio - half_width,
        ci_high=ratio + half_width,
        p_value=p_adjusted / 4,
        p_adjusted=p_adjusted,
        threshold_pct=threshold_pct,
        noise_pct=noise_pct,
        min_detectable_pct=min_detectable_pct,
        n_base=20,
        n_head=20,
        verdict=verdict,
        direction=direction,
        reason=f"{verdict.value} because of the figures",
    )


def outcome(
    tmp_path: Path,
    comparisons: Sequence[Comparison],
    *,
    verdict: Verdict = Verdict.FAIL,
    exit_status: int = 1,
    artifacts: Sequence[Artifact] = (),
    errors: Sequence[str] = (),
    warnings: Sequence[str] = (),
    machine: MachineLoad | None = None,
) -> GateOutcome:
    return GateOutcome(
        mode="pr",
        verdict=verdict,
        exit_status=exit_status,
        strict=False,
        comparisons=tuple(comparisons),
        head_commit="abcdef1234567890abcdef1234567890abcdef12",
        head_dirty=False,
        base_label="0123456789ab",
        rounds=20,
        max_rounds=30,
        started_utc="2026-11-26T20:00:00Z",
        duration_s=372.0,
        machine=machine,
        run_dir=tmp_path,
        artifacts=tuple(artifacts),
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


MACHINE = MachineLoad(
    load_avg_before=(1.2, 1.1, 0.9),
    load_avg_after=(1.5, 1.2, 1.0),
    other_cpu_pct_mean=3.2,
    other_cpu_pct_max=14.0,
    samples=370,
)


def mixed() -> list[Comparison]:
    return [
        comp("daemon_performance.light.core", 1.06, Verdict.FAIL, min_detectable_pct=2.5),
        comp("daemon_performance.heavy.core", 1.10, Verdict.FAIL),
        comp("daemon_performance.medium.core", 1.003, Verdict.PASS),
        comp(
            "daemon_performance.medium.core",
            0.85,
            Verdict.PASS,
            metric="latency_p99",
            threshold_pct=10.0,
        ),
        comp(
            "load_testing.burst.core",
            1.08,
            Verdict.INCONCLUSIVE,
            metric="latency_p99",
            threshold_pct=10.0,
            p_adjusted=0.2,
        ),
        comp(
            "scalability_testing.rate_sweep.core",
            1.2,
            Verdict.PASS,
            metric="throughput_max_eps",
            direction=Direction.HIGHER_IS_BETTER,
            threshold_pct=10.0,
            noise_pct=1.0,
        ),
        comp(EVIL, 0.999, Verdict.PASS, p_adjusted=0.9),
    ]
