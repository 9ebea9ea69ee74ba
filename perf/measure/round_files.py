"""The gate's rounds as files of its run folder: one pyperf suite per side (``base.json``,
``head.json``), which ``python -m pyperf stats`` and ``compare_to`` read, and every sample
with the plan that produced it (``samples.json``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perf.files import write_json
from perf.measure.rounds import RoundSamples
from perf.rundir import Artifact

__all__ = ["write_pyperf", "write_round_files"]


def write_pyperf(
    path: Path,
    side_values: Mapping[str, Mapping[str, list[float | None]]],
    case_meta: Mapping[str, Mapping[str, str | int | float]],
) -> None:
    """Every benchmark-stored metric of one side as a pyperf suite: one run per round (one
    fresh process each), so ``python -m pyperf stats`` and ``compare_to`` read it. Each run
    carries its case's parameters (``crucible_*`` metadata: scenario, events, seeds)."""
    import pyperf

    from perf.workload.metrics import METRICS, Storage

    benchmarks = []
    for bench in sorted(side_values):
        for metric, values in sorted(side_values[bench].items()):
            info = METRICS.get(metric)
            if info is None or info.storage is not Storage.BENCHMARK:
                continue
            runs = [
                pyperf.Run(
                    [v],
                    metadata={
                        **case_meta.get(bench, {}),
                        "name": f"{bench}.{metric}",
                        "unit": info.unit,
                        "loops": 1,
                    },
                    collect_metadata=False,
                )
                for v in values
                if v is not None and v > 0
            ]
            if runs:
                benchmarks.append(pyperf.Benchmark(runs))
    if benchmarks:
        pyperf.BenchmarkSuite(benchmarks).dump(str(path), replace=True)


def write_round_files(
    run_dir: Path, samples: RoundSamples, plan: Sequence[Mapping[str, Any]]
) -> tuple[Artifact, ...]:
    """Each side's pyperf suite and ``samples.json`` into ``run_dir``; returns them as the
    report links them."""
    for side in samples.values:
        write_pyperf(
            run_dir / f"{side}.json", samples.values[side], {i["bench"]: i["meta"] for i in plan}
        )
    write_json(
        run_dir / "samples.json",
        {"plan": plan, "calibration_s": samples.calibration_s, "values": samples.values},
    )
    return (
        *(
            Artifact(label=f"{side} results (pyperf)", path=f"{side}.json", kind="pyperf")
            for side in samples.values
        ),
        Artifact(label="all samples", path="samples.json", kind="json"),
    )
