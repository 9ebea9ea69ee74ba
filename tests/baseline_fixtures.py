"""A stored baseline's document, for the tests of baselines and of the gate's use of them."""

from __future__ import annotations

from typing import Any

from perf.workload.calibration import CALIBRATION_VERSION


def baseline_document(**changes: Any) -> dict[str, Any]:
    """A valid document for ``write_baseline``, with ``changes`` on top."""
    doc: dict[str, Any] = {
        "created_utc": "2026-11-26T00:00:00Z",
        "commit": "a" * 40,
        "dirty": False,
        "set": "quick",
        "python": "3.11.7",
        "machine": {"fingerprint": "f" * 16, "cpu": "Test CPU"},
        "calibration": {"version": CALIBRATION_VERSION, "seconds": [0.010, 0.011, 0.012]},
        "sampling": {"unpaced_repeats": 5},
        "samples": {
            "daemon_performance.medium.core": {"time": [0.02, 0.021], "rss_peak": [3e7, 3e7]}
        },
    }
    doc.update(changes)
    return doc
