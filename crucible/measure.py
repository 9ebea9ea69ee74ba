"""Measuring a run: one scenario through one coordinator, and what the run reports.

``measure(spec)`` (``run(spec)`` outside an event loop) publishes a ``RunSpec``'s workload and
returns a ``RunResult``: latency, throughput, RSS, USS, CPU and the accounting. Its parts
are public for harnesses that measure differently: ``publish_unpaced`` (the publisher of a
run without a schedule), ``RssSampler`` (the RSS sampler thread) and ``percentile_summary``.

The implementation lives in ``crucible._measure``; this module is the name to import.
"""

from crucible._measure import (
    DEFAULT_SETTLE_TIMEOUT_S,
    PUBLISH_YIELD_EVERY,
    RSS_SAMPLE_INTERVAL_S,
    LatencySummary,
    RssSampler,
    RunResult,
    RunSpec,
    measure,
    percentile_summary,
    publish_unpaced,
    run,
)

__all__ = [
    "DEFAULT_SETTLE_TIMEOUT_S",
    "PUBLISH_YIELD_EVERY",
    "RSS_SAMPLE_INTERVAL_S",
    "LatencySummary",
    "RssSampler",
    "RunResult",
    "RunSpec",
    "measure",
    "percentile_summary",
    "publish_unpaced",
    "run",
]
