"""``core-daemon``: CrucibleCore in a daemon process, measured through its socket.

``start`` spawns ``python -m crucible daemon --socket <tmp>/daemon.sock`` with this
coordinator's configuration, waits for the socket and connects a producer, a service client
and an admin client. ``register`` hosts the Service in this process behind the service
client, so its ``handle`` runs here on events that went through the daemon. ``settle``
waits for the verdicts of everything published and then asks the daemon to settle;
``stats`` returns the daemon's figures as of the last settle (or stop): ``stats()`` is
synchronous and the daemon is in another process, so it is a cached copy (``fetch_stats``
asks now). ``stop`` asks the daemon to drain and stop, keeps its report (``report``), and
makes sure the process is gone.

``publish`` pipelines (``Producer.submit``): it returns None once the event is queued for
the daemon, and a ``Rejected`` only when it cannot be sent; the daemon's own rejections
(no route, duplicate, backpressure "reject") are counted in its stats, not returned. With
``confirm=True`` each publish waits for the daemon's verdict instead (one round trip per
event). Backpressure "wait" reaches the caller through the producer's window.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Final

import crucible
from crucible._core import CoreConfig
from crucible._daemon.client import (
    DEFAULT_WINDOW,
    AdminClient,
    Backoff,
    Producer,
    ServiceClient,
)
from crucible._daemon.options import daemon_argv, default_core_config
from crucible._daemon.protocol import DaemonError, DaemonLimits, RemoteError, stats_from_wire
from crucible._events import Event, Rejected, RejectReason
from crucible._protocol import CoordinatorError, Service, SettleTimeout, Stats

__all__ = ["CoreDaemon"]

DEFAULT_START_TIMEOUT_S: Final = 20.0
DEFAULT_STOP_TIMEOUT_S: Final = 10.0  # beyond the drain timeout
_ZERO = Stats(published=0, delivered=0, failed=0, dead_lettered=0, rejected=0, in_flight=0)


class CoreDaemon:
    """The ``core-daemon`` coordinator. ``CoreDaemon(config, **overrides)`` configures the
    daemon's CrucibleCore like ``CrucibleCore(config, **overrides)`` (default
    ``service_concurrency`` is the daemon's); ``limits`` its socket limits."""

    name = "core-daemon"

    def __init__(
        self,
        config: CoreConfig | None = None,
        *,
        limits: DaemonLimits | None = None,
        socket_path: str | os.PathLike[str] | None = None,
        loop: str = "auto",
        confirm: bool = False,
        window: int | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        python: str | None = None,
        **overrides: Any,
    ) -> None:
        cfg = config if config is not None else default_core_config()
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self.limits = limits or DaemonLimits()
        try:
            self._argv_options = daemon_argv(cfg, self.limits)
        except ValueError as exc:
            raise CoordinatorError(f"core-daemon: {exc}") from None
        self._socket_path = os.fspath(socket_path) if socket_path is not None else None
        self.loop = loop
        self.confirm = confirm
        self.window = window
        self.start_timeout_s = start_timeout_s
        self.python = python or sys.executable
        self.path: str | None = None
        self.report: dict[str, Any] | None = None
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._producer: Producer | None = None
        self._services: ServiceClient | None = None
        self._admin: AdminClient | None = None
        self._stats = _ZERO
        self._local_rejected = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._proc is not None:
            return
        # Short: a Unix socket path is limited to about 100 bytes. Private (0700), and
        # removed by stop(), with the daemon's output.
        self._dir = tempfile.mkdtemp(prefix="crucible-")
        self.path = self._socket_path or os.path.join(self._dir, "daemon.sock")
        out = open(Path(self._dir, "daemon.out"), "w+b")  # noqa: SIM115
        err = open(Path(self._dir, "daemon.err"), "w+b")  # noqa: SIM115
        self._logs = [out, err]
        argv = [self.python, "-m", "crucible", "daemon", "--socket", self.path]
        argv += ["--loop", self.loop, *self._argv_options]
        # The daemon imports this very crucible package, installed or not.
        env = dict(os.environ)
        root = str(Path(crucible.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
        )
        try:
            await self._wait_for_socket()
            backoff = Backoff(attempts=5, base_s=0.02, max_s=0.5)
            self._producer = Producer(
                self.path, backoff=backoff, window=self.window or DEFAULT_WINDOW
            )
            self._services = ServiceClient(self.path, backoff=backoff)
            self._admin = AdminClient(self.path, backoff=backoff)
            await self._producer.connect()
            await self._services.connect()
            await self._admin.connect()
        except BaseException:
            await self._kill()
            raise

    async def _wait_for_socket(self) -> None:
        assert self._proc is not None and self.path is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while not os.path.exists(self.path):
            if self._proc.poll() is not None:
                raise CoordinatorError(
                    f"core-daemon: the daemon exited with status {self._proc.returncode} "
                    f"before listening: {self._stderr_tail()}"
                )
            if loop.time() > deadline:
                raise CoordinatorError(
                    f"core-daemon: no socket at {self.path} after {self.start_timeout_s} s: "
                    f"{self._stderr_tail()}"
                )
            await asyncio.sleep(0.01)

    def _stderr_tail(self) -> str:
        if len(self._logs) < 2:
            return "(no output)"
        err = self._logs[1]
        err.flush()
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
        return text[-2000:] or "(no output)"

    async def stop(self) -> None:
        """Drain and stop the daemon (its report is kept in ``report``); the process is
        killed if it does not exit in time. Idempotent."""
        if self._proc is None:
            return
        try:
            if self._admin is not None and self._proc.poll() is None:
                budget = self.limits.drain_timeout_s + DEFAULT_STOP_TIMEOUT_S
                with contextlib.suppress(DaemonError, TimeoutError):
                    async with asyncio.timeout(budget):
                        self.report = await self._admin.stop()
                if self.report is not None:
                    self._stats = stats_from_wire(self.report["stats"])
        finally:
            await self._kill()

    async def _kill(self) -> None:
        for client in (self._producer, self._services, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                await self._wait_exit(proc, DEFAULT_STOP_TIMEOUT_S)
            if proc.poll() is None:
                proc.terminate()
                await self._wait_exit(proc, 2.0)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        self._logs = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @staticmethod
    async def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ protocol

    async def register(self, service: Service) -> None:
        if self._services is None:
            raise CoordinatorError("core-daemon: register needs a started coordinator")
        try:
            await self._services.add(service)
        except RemoteError as exc:
            raise CoordinatorError(f"core-daemon: {exc.message}") from None

    async def publish(self, event: Event) -> Rejected | None:
        producer = self._producer
        if producer is None:
            self._local_rejected += 1
            return Rejected(RejectReason.NOT_RUNNING, "core-daemon is not started")
        if self.confirm:
            return await producer.publish(event)
        if producer.try_submit(event):
            return None
        return await producer.submit(event)

    async def settle(self, timeout_s: float | None = None) -> None:
        if self._producer is None or self._admin is None:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            await self._producer.flush(timeout_s)
        except TimeoutError:
            raise SettleTimeout(
                f"core-daemon: {self._producer.outstanding} events still without a verdict "
                f"after {timeout_s} s"
            ) from None
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            self._stats = await self._admin.settle(remaining)
        except RemoteError as exc:
            if exc.code == "settle_timeout":
                self._stats = await self._admin.stats()
                raise SettleTimeout(f"core-daemon: {exc.message}") from None
            raise

    def stats(self) -> Stats:
        s = self._stats
        # Rejected here and never sent, so the daemon did not count them.
        local = self._local_rejected
        if self._producer is not None:
            local += self._producer.local_rejected
        if not local:
            return s
        extra = dict(s.extra)
        extra["client_rejected"] = local
        return dataclasses.replace(
            s, published=s.published + local, rejected=s.rejected + local, extra=extra
        )

    # ------------------------------------------------------------------ more

    async def fetch_stats(self) -> Stats:
        """The daemon's figures now (also refreshes the copy ``stats()`` returns)."""
        if self._admin is None:
            return self.stats()
        self._stats = await self._admin.stats()
        return self.stats()

    async def dead_letters(self, limit: int = 1000) -> list[dict[str, Any]]:
        if self._admin is None:
            return list(self.report["dead_letters"]) if self.report else []
        return await self._admin.dead_letters(limit)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
