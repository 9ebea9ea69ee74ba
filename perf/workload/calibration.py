"""A fixed CPU kernel, timed in the benchmark workers, to put machines on one scale.

The kernel mixes what the coordinators spend their time on: interpreted Python (a loop
with attribute access, dict and list operations) and hashing bytes. Its median time in a
worker process is stored with every sample set; a baseline taken on another machine is
compared on values divided by the calibration figure of their own machine.
"""

from __future__ import annotations

import hashlib
import statistics
import time

__all__ = ["CALIBRATION_VERSION", "calibrate", "kernel"]

# Bump when the kernel changes: figures from different kernels are not comparable.
CALIBRATION_VERSION = 1
_PAYLOAD = bytes(range(256)) * 256  # 64 KiB


class _Item:
    __slots__ = ("key", "value")

    def __init__(self, key: int, value: int) -> None:
        self.key = key
        self.value = value


def kernel() -> int:
    """One pass of the kernel (17.8-36.9 ms per median on the CI machine, which drifts
    that much within a minute); returns a checksum so the work cannot be optimised away."""
    table: dict[int, _Item] = {}
    items: list[_Item] = []
    total = 0
    for i in range(20_000):
        item = _Item(i, (i * 7919) % 1_000_003)
        table[i % 4096] = item
        items.append(item)
        total += table[(i * 31) % 4096].value if (i * 31) % 4096 in table else 0
    items.sort(key=lambda it: it.value)
    digest = b""
    for _ in range(16):
        digest = hashlib.blake2b(_PAYLOAD, digest_size=16, key=digest).digest()
    return total ^ digest[0] ^ items[0].key


def calibrate(repeats: int = 7) -> float:
    """Median seconds of ``repeats`` kernel passes, after one warm-up pass."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    kernel()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        kernel()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
