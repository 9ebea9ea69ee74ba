"""Measuring: the base/head round driver and its per-round worker, the pyperf suites and
their sidecar, memory and scalability runs, the machine watch, run metadata, git worktrees,
and the reading of a run folder's results (``results``).

Nothing here decides or renders; it imports only ``perf.workload`` and the base modules."""
