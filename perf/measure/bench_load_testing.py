"""load_testing: steady, burst, ramp-up, spike and mixed open-loop arrivals of the medium
scenario, each also with injected faults (5 % handler errors, one crashed service, one slow
replica); latency under each, retried, dead-lettered and dropped counts.

Runnable alone from any source tree, importing crucible from that tree::

    python TREE/perf/measure/bench_load_testing.py [--set quick|full] [--case NAME] \
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
    raise SystemExit(main("load_testing"))
