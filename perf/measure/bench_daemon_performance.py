"""daemon_performance: the light, medium, heavy and stress scenarios, published as fast
as each coordinator accepts them; time per workload, latency p50/p95/p99, peak RSS, USS,
CPU %, success and error rates.

Runnable alone from any source tree, importing crucible from that tree::

    python TREE/perf/measure/bench_daemon_performance.py [--set quick|full] [--case NAME] \
        [--coordinator data,core,reference,module:factory] -o OUT.json [pyperf options]

``--list`` shows the benchmarks; see perf/measure/sidecar.py for how the metrics are recorded.
"""

import sys
from pathlib import Path

# The measured tree's root (two folders up) replaces this script's directory at the head
# of sys.path, so that ``crucible`` and ``perf`` come from the tree the script lives in.
sys.path[0] = str(Path(__file__).resolve().parents[2])

from perf.measure.sidecar import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main("daemon_performance"))
