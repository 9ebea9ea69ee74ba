"""Fuzzing a daemon process from several connections while a well-behaved producer and its
services keep working: the daemon keeps serving, and every event the well-behaved producer
published is delivered, dead-lettered or rejected, never lost.

The test runs for ``CRUCIBLE_FUZZ_S`` seconds (default 3); for a longer run:
``CRUCIBLE_FUZZ_S=60 pytest tests/test_daemon_fuzz.py -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from crucible import Event, Kind, Source, SourceType
from crucible._daemon.client import AdminClient, Producer, ServiceClient
from crucible._daemon.codec import encode_frame, event_fields
from crucible._daemon.protocol import (
    ACK,
    DELIVER,
    HEALTH,
    HELLO,
    PROTOCOL_VERSION,
    PUBLISH,
    REGISTER,
    REQUEST,
    UNREGISTER,
    hello,
)

from .test_daemon_support import WAIT_S, Remote, short_dir, spawn_daemon, stop_process

FUZZ_S = float(os.environ.get("CRUCIBLE_FUZZ_S", "3"))
FUZZERS = 6
_SOURCE = Source("good", SourceType.API)
_KINDS = (Kind.FILE_CREATED, Kind.DATA_RECEIVED, Kind.RECORD_CREATED)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    """A random msgpack-able value."""
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice([0, 1, -1, 2**31, -(2**63), 2**64 - 1, rng.randrange(-1000, 1000)])
    if pick == 3:
        return rng.choice(["", "crucible", "file", "stop-not", "x" * rng.randrange(50)])
    if pick == 4:
        return rng.randbytes(rng.randrange(40))
    if pick == 5:
        return rng.random() * 1e6
    if pick == 6:
        return [_junk(rng, depth + 1) for _ in range(rng.randrange(5))]
    if pick == 7:
        return {str(_junk(rng, 3)): _junk(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [rng.randrange(40), *(_junk(rng, depth + 1) for _ in range(rng.randrange(5)))]


def _event_like(rng: random.Random) -> Any:
    fields = list(
        event_fields(Event(id=f"fz{rng.random()}", kind=rng.choice(_KINDS), source=_SOURCE))
    )
    for _ in range(rng.randrange(3)):
        fields[rng.randrange(len(fields))] = _junk(rng)
    return fields


def _attack(rng: random.Random) -> list[bytes]:
    """What one fuzzing connection sends: chunks, written with pauses between them."""
    role = rng.choice(["producer", "service", "admin"])
    opening = encode_frame(hello(role, "fuzz"))
    pick = rng.randrange(12)
    if pick == 0:
        return [rng.randbytes(rng.randrange(1, 300))]
    if pick == 1:
        return [struct.pack(">I", rng.randrange(2**24, 2**32)) + rng.randbytes(20)]
    if pick == 10:  # a first frame over max_hello_bytes, within max_frame_bytes
        return [struct.pack(">I", rng.randrange(4097, 2**20)) + rng.randbytes(200)]
    if pick == 11:  # a frame trickled a few bytes at a time (past its deadline, or not)
        frame = encode_frame([PUBLISH, 1, [_event_like(rng)]])
        cut = rng.randrange(1, len(frame))
        return [opening] + [frame[i : i + 3] for i in range(0, cut, 3)]
    if pick == 2:
        body = rng.randbytes(rng.randrange(1, 200))
        return [struct.pack(">I", len(body)) + body]
    if pick == 3:
        return [encode_frame([HELLO, "crucible", rng.randrange(-3, 5), role, "fuzz"])]
    if pick == 4:
        return [opening, encode_frame(_junk(rng))]
    if pick == 5:  # partial frame, then a pause (stall) or the end of the stream
        frame = encode_frame([PUBLISH, 1, [_event_like(rng)]])
        return [opening, frame[: rng.randrange(1, len(frame))]]
    if pick == 6:
        events = [_event_like(rng) for _ in range(rng.randrange(1, 6))]
        return [encode_frame(hello("producer", "fuzz")), encode_frame([PUBLISH, 1, events])]
    if pick == 7:
        frames = [
            [REGISTER, rng.randrange(5), _junk(rng), rng.choice(["file", "zz"]), _junk(rng)],
            [ACK, [rng.randrange(100) for _ in range(3)], [[rng.randrange(100), "x"]]],
            [HEALTH, rng.randrange(5), _junk(rng)],
            [UNREGISTER, _junk(rng)],
            [DELIVER, 0, [], []],
        ]
        return [encode_frame(hello("service", "fuzz"))] + [
            encode_frame(f) for f in rng.sample(frames, rng.randrange(1, 5))
        ]
    if pick == 8:
        op = rng.choice(["ping", "stats", "health", "dead_letters", "nope", _junk(rng)])
        return [encode_frame(hello("admin", "fuzz")), encode_frame([REQUEST, 1, op, _junk(rng)])]
    return [opening, encode_frame([rng.randrange(100), *(_junk(rng) for _ in range(3))])]


@dataclass
class _Tally:
    connections: int = 0
    errors_seen: int = 0
    codes: dict[str, int] = field(default_factory=dict)


async def _fuzzer(path: str, seed: int, stop: asyncio.Event, tally: _Tally) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        tally.connections += 1
        try:
            for chunk in _attack(rng):
                writer.write(chunk)
                await asyncio.sleep(rng.choice([0, 0, 0.001, 0.01]))
            if rng.random() < 0.3:
                writer.write_eof()
            async with asyncio.timeout(rng.choice([0.02, 0.1, 0.4])):
                data = await reader.read(65536)
                if b"\x03" in data[:8]:
                    tally.errors_seen += 1
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _fuzz(path: str, proc_alive: Any) -> None:
    good = [Remote("file-0"), Remote("file-1"), Remote("event-0")]
    host = ServiceClient(path, reconnect=False)
    for service in good:
        await host.add(service)
    producer = Producer(path)
    admin = AdminClient(path)
    stop = asyncio.Event()
    tally = _Tally()
    fuzzers = [asyncio.create_task(_fuzzer(path, seed, stop, tally)) for seed in range(FUZZERS)]
    published: list[str] = []
    accepted: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FUZZ_S
    i = 0
    try:
        while loop.time() < deadline:
            batch = [
                Event(id=f"good-{i + j}", kind=_KINDS[(i + j) % 2], source=_SOURCE, payload=b"g")
                for j in range(20)
            ]
            i += len(batch)
            verdicts = await producer.publish_many(batch)
            for event, verdict in zip(batch, verdicts, strict=True):
                published.append(event.id)
                if verdict is None:
                    accepted.add(event.id)
            await asyncio.sleep(0.005)
            assert proc_alive(), "the daemon died"
    finally:
        stop.set()
        await asyncio.gather(*fuzzers, return_exceptions=True)
    stats = await admin.settle(WAIT_S)
    handled = {e for service in good for e in service.seen}
    dead = await admin.dead_letters(100_000)
    letters = {d["id"] for d in dead}
    reasons = Counter(d["reason"] for d in dead if d["id"] in accepted)
    lost = {e for e in accepted if e not in handled and e not in letters}
    print(
        f"\nfuzz {FUZZ_S:.0f} s: {tally.connections} fuzzing connections, "
        f"{int(stats.extra['protocol_errors'])} closed for protocol errors; well-behaved "
        f"producer: {len(published)} published, {len(accepted)} accepted, "
        f"{len(accepted & handled)} handled, {len(accepted & letters)} dead-lettered, "
        f"{len(lost)} lost (dead letters by reason: {dict(reasons)}); daemon stats "
        f"{stats.as_dict()}"
    )
    assert not lost
    assert len(published) == len(accepted)  # unique ids, routable kinds: all accepted
    assert stats.balanced and stats.in_flight == 0
    assert tally.connections > FUZZERS and stats.extra["protocol_errors"] > 0
    assert (await admin.ping())["version"] == PROTOCOL_VERSION  # still serving
    assert await producer.publish(Event(id="after", kind=_KINDS[0], source=_SOURCE)) is None
    report = await admin.stop(drain_timeout_s=WAIT_S)
    assert report["invariant_holds"] and report["drained"]
    for client in (producer, host, admin):
        await client.close()


def test_fuzzing_leaves_the_daemon_serving_with_the_invariant_intact() -> None:
    with short_dir() as tmp:
        path = os.path.join(tmp, "d.sock")
        # Short timeouts so that stalled fuzzers and services they registered go quickly.
        proc = spawn_daemon(
            path,
            "--read-timeout",
            "0.2",
            "--frame-timeout",
            "0.3",
            "--idle-timeout",
            "1",
            "--handshake-timeout",
            "0.5",
            "--event-timeout",
            "1",
            "--retry-backoff",
            "0.001",
            "--retry-backoff-max",
            "0.01",
            "--max-retries",
            "20",
        )
        try:

            async def bounded() -> None:
                async with asyncio.timeout(FUZZ_S + 60):
                    await _fuzz(path, lambda: proc.poll() is None)

            asyncio.run(bounded())
            proc.wait(timeout=WAIT_S)
            assert proc.returncode == 0
        finally:
            stop_process(proc)
