"""memory_profiling: payloads of 1, 4, 16 and 64 KiB x event counts with tracemalloc
figures, a long leak run (retained bytes per 1,000 events with a confidence interval, RSS
over time) and memory under pressure (large payloads, slow consumers, bounded queues).

Runnable alone from any source tree, importing crucible from that tree::

    python TREE/perf/measure/bench_memory_profiling.py [--set quick|full] [--case NAME] \
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
    raise SystemExit(main("memory_profiling"))
