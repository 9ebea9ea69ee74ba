"""Support for the daemon tests (no tests here): daemons in-process and as processes, raw
socket clients for bad frames, a scriptable remote service, bounded waiting."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from crucible import Event
from crucible._core import CoreConfig
from crucible._daemon.codec import FrameDecoder, encode_frame
from crucible._daemon.options import default_core_config
from crucible._daemon.protocol import ERROR, DaemonLimits, hello
from crucible._daemon.server import DaemonServer

ROOT = Path(__file__).resolve().parent.parent
# Every wait in these tests is bounded by this (or less).
WAIT_S = 10.0


@contextlib.contextmanager
def short_dir() -> Iterator[str]:
    """A private temporary directory with a short path (Unix socket paths are limited to
    about 100 bytes, too few for pytest's tmp_path)."""
    path = tempfile.mkdtemp(prefix="crd-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fast_core(**overrides: Any) -> CoreConfig:
    """The daemon's core configuration with short retry backoffs, for quick tests."""
    values: dict[str, Any] = {"retry_backoff_s": 0.001, "retry_backoff_max_s": 0.005}
    values.update(overrides)
    return dataclasses.replace(default_core_config(), **values)


@asynccontextmanager
async def daemon(
    *, core: CoreConfig | None = None, limits: DaemonLimits | None = None
) -> AsyncIterator[DaemonServer]:
    """A daemon in this process and loop, on a fresh socket; stopped afterwards."""
    with short_dir() as tmp:
        server = DaemonServer(os.path.join(tmp, "d.sock"), core=core or fast_core(), limits=limits)
        await server.start()
        try:
            yield server
        finally:
            async with asyncio.timeout(WAIT_S):
                await server.request_stop(0.0)


async def until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


class Raw:
    """A raw connection: send any bytes, read frames back (for bad-frame tests)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(1 << 26)
        self.frames: list[Any] = []

    @classmethod
    async def open(cls, path: str, role: str | None = None) -> Raw:
        reader, writer = await asyncio.open_unix_connection(path)
        raw = cls(reader, writer)
        if role is not None:
            raw.send(hello(role, "raw"))
            welcome = await raw.next_frame()
            assert welcome[0] == 2, welcome
        return raw

    def send(self, obj: object) -> None:
        self.writer.write(encode_frame(obj))

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    async def next_frame(self, timeout_s: float = WAIT_S) -> Any:
        async with asyncio.timeout(timeout_s):
            while not self.frames:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("connection closed")
                self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    async def expect_error(self, code: str, timeout_s: float = WAIT_S) -> str:
        """Read until an ERROR frame; check its code and that the daemon then closes."""
        while True:
            frame = await self.next_frame(timeout_s)
            if frame[0] == ERROR:
                break
        assert frame[1] == code, frame
        async with asyncio.timeout(timeout_s):
            # A reset is a close too: the daemon stopped reading what was still on its way.
            with contextlib.suppress(ConnectionResetError):
                while await self.reader.read(65536):
                    pass
        return str(frame[2])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class Remote:
    """A service for a ServiceClient: records what it handled; can fail, or block on a gate
    (for disconnect and timeout tests)."""

    def __init__(self, name: str, role: str | None = None, *, fail: bool = False) -> None:
        self.name = name
        self.role = role if role is not None else name.split("-")[0]
        self.fail = fail
        self.gate: asyncio.Event | None = None
        self.seen: list[str] = []
        self.started: list[str] = []
        self.cancelled = 0

    async def handle(self, event: Event) -> None:
        self.started.append(event.id)
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if self.fail:
            raise RuntimeError(f"{self.name} refused {event.id}")
        self.seen.append(event.id)

    def healthy(self) -> bool:
        return True


def daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def spawn_daemon(path: str, *args: str) -> subprocess.Popen[str]:
    """``python -m crucible daemon --socket path args``; waits for the socket. Its stderr
    goes to a file next to the socket (a pipe nobody reads would block its logging)."""
    with open(path + ".log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crucible", "daemon", "--socket", path, *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=daemon_env(),
        )
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            with open(path + ".log") as log:
                raise AssertionError(f"daemon did not start: {log.read()}")
        time.sleep(0.01)
    return proc


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Make sure ``proc`` is gone (used in finally blocks)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=WAIT_S)
