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
    durations_s: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """Every benchmark-stored metric of one side as a pyperf suite: one run per round (one
    fresh process each), so ``python -m pyperf stats`` and ``compare_to`` read it. Each run
    carries its case's parameters (``crucible_*`` metadata: scenario, events, seeds) and a
    ``duration``: the wall seconds its round spent on the case (``durations_s``, measured),
    on the case's first metric; its other metrics' runs add 0 s, so the suite's total is the
    time really spent. Without it pyperf estimates a run's duration from its values, which
    for bytes or counts reads as hundreds of thousands of days."""
    import pyperf

    from perf.workload.metrics import METRICS, Storage

    benchmarks = []
    for bench in sorted(side_values):
        took = list((durations_s or {}).get(bench, ()))
        for metric, values in sorted(side_values[bench].items()):
            info = METRICS.get(metric)
            if info is None or info.storage is not Storage.BENCHMARK:
                continue
            spent, took = took, [0.0] * len(took)  # the case's first metric carries its time
            runs = [
                pyperf.Run(
                    [v],
                    metadata={
                        **case_meta.get(bench, {}),
                        "name": f"{bench}.{metric}",
                        "unit": info.unit,
                        "loops": 1,
                        **({"duration": spent[i]} if i < len(spent) else {}),
                    },
                    collect_metadata=False,
                )
                for i, v in enumerate(values)
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
            run_dir / f"{side}.json",
            samples.values[side],
            {i["bench"]: i["meta"] for i in plan},
            samples.durations_s.get(side),
        )
    write_json(
        run_dir / "samples.json",
        {
            "plan": plan,
            "calibration_s": samples.calibration_s,
            "values": samples.values,
            "durations_s": samples.durations_s,
        },
    )
    return (
        *(
            Artifact(label=f"{side} results (pyperf)", path=f"{side}.json", kind="pyperf")
            for side in samples.values
        ),
        Artifact(label="all samples", path="samples.json", kind="json"),
    )
