"""The daemon as a real process: CLI, signals, socket mode, a service process killed
mid-event, restart and reconnection, and the ``core-daemon`` coordinator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from crucible import Event, Kind, Source, SourceType
from crucible._daemon.client import AdminClient, Backoff, Producer, ServiceClient
from crucible._daemon.coordinator import CoreDaemon
from crucible._loader import load_coordinator
from crucible._measure import RunSpec, measure, publish_unpaced
from crucible._workload import build_services, generate_events, get_scenario

from .test_daemon_support import (
    WAIT_S,
    Remote,
    daemon_env,
    short_dir,
    spawn_daemon,
    stop_process,
    until,
)

_SOURCE = Source("proc-test", SourceType.API)
_FAST = ["--retry-backoff", "0.001", "--retry-backoff-max", "0.005"]
_TINY_FRAMES = ["--max-frame-bytes", "10"]
_DAEMON_LIGHT = ["--coordinator", "core-daemon", "--scenario", "light"]


def ev(i: int, kind: Kind = Kind.FILE_CREATED) -> Event:
    return Event(id=f"p{i}", kind=kind, source=_SOURCE, payload=b"y" * 100)


def run(coro: object) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(60):
            await coro  # type: ignore[misc]

    asyncio.run(bounded())


def test_the_daemon_process_serves_then_stops_on_sigterm_with_its_report() -> None:
    with short_dir() as tmp:
        path = os.path.join(tmp, "d.sock")
        proc = spawn_daemon(path, *_FAST)
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

            async def traffic() -> None:
                service = Remote("file-0")
                host = ServiceClient(path, reconnect=False)
                producer = Producer(path)
                admin = AdminClient(path)
                await host.add(service)
                assert await producer.publish_many([ev(i) for i in range(50)]) == [None] * 50
                stats = await admin.settle(WAIT_S)
                assert stats.delivered == 50 and stats.balanced and len(service.seen) == 50
                for client in (producer, admin, host):
                    await client.close()

            run(traffic())
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=WAIT_S)
        finally:
            stop_process(proc)
        assert proc.returncode == 0, err
        report = json.loads(out)
        assert report["invariant_holds"] and report["drained"]
        assert report["stats"]["published"] == 50 and report["stats"]["delivered"] == 50
        assert not os.path.exists(path)


def test_a_service_process_killed_mid_event_loses_nothing() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from crucible._daemon.client import ServiceClient

        async def main():
            host = ServiceClient(sys.argv[1], reconnect=False)

            async def hang(event):
                await asyncio.sleep(3600)

            await host.subscribe("file-0", "file", hang)
            print("ready", flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    with short_dir() as tmp:
        path = os.path.join(tmp, "d.sock")
        proc = spawn_daemon(path, *_FAST)
        victim = subprocess.Popen(
            [sys.executable, "-c", script, path],
            stdout=subprocess.PIPE,
            text=True,
            env=daemon_env(),
        )
        try:
            assert victim.stdout is not None
            assert victim.stdout.readline().strip() == "ready"

            async def traffic() -> None:
                spare = Remote("file-1")
                host = ServiceClient(path, reconnect=False)
                producer = Producer(path)
                admin = AdminClient(path)
                await host.add(spare)
                assert await producer.publish_many([ev(i) for i in range(20)]) == [None] * 20

                async def victim_holds_some() -> bool:
                    return bool((await admin.health())["file-0"]["in_flight"])

                deadline = asyncio.get_running_loop().time() + WAIT_S
                while not await victim_holds_some():
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.01)
                victim.kill()  # SIGKILL: no goodbye, events in hand
                stats = await admin.settle(WAIT_S)
                assert stats.delivered == 20 and stats.balanced and stats.retried >= 1
                assert sorted(spare.seen) == sorted(f"p{i}" for i in range(20))
                assert "file-0" not in await admin.health()
                for client in (producer, admin, host):
                    await client.close()

            run(traffic())
        finally:
            stop_process(victim)
            stop_process(proc)


def test_after_a_crash_a_new_daemon_replaces_the_stale_socket_and_services_come_back() -> None:
    with short_dir() as tmp:
        path = os.path.join(tmp, "d.sock")
        first = spawn_daemon(path, *_FAST)
        second: subprocess.Popen[str] | None = None
        try:

            async def scenario() -> None:
                nonlocal second
                service = Remote("file-0")
                host = ServiceClient(path, backoff=Backoff(attempts=100, base_s=0.02, max_s=0.1))
                await host.add(service)
                first.kill()  # the socket file stays behind: stale
                first.wait(timeout=WAIT_S)
                assert os.path.exists(path)
                second = await asyncio.to_thread(spawn_daemon, path, *_FAST)
                admin = AdminClient(path, backoff=Backoff(attempts=50, base_s=0.02))
                deadline = asyncio.get_running_loop().time() + WAIT_S
                while "file-0" not in await admin.health():  # registered again
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.02)
                producer = Producer(path)
                assert await producer.publish(ev(1)) is None
                await admin.settle(WAIT_S)
                assert service.seen == ["p1"]
                for client in (producer, admin, host):
                    await client.close()

            run(scenario())
        finally:
            stop_process(first)
            if second is not None:
                stop_process(second)


def test_the_cli_refuses_a_path_that_is_not_a_socket_and_bad_limits() -> None:
    with short_dir() as tmp:
        path = os.path.join(tmp, "file")
        with open(path, "w") as f:
            f.write("keep me")
        proc = subprocess.run(
            [sys.executable, "-m", "crucible", "daemon", "--socket", path],
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=WAIT_S,
        )
        assert proc.returncode == 1 and "not a socket" in proc.stderr
        proc = subprocess.run(
            [sys.executable, "-m", "crucible", "daemon", "--socket", f"{path}2", *_TINY_FRAMES],
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=WAIT_S,
        )
        assert proc.returncode == 2 and "max_frame_bytes" in proc.stderr


# ---------------------------------------------------------------------------- coordinator


def test_core_daemon_runs_a_scenario_with_the_invariant() -> None:
    coordinator = load_coordinator("core-daemon", retry_backoff_s=0.001)
    assert isinstance(coordinator, CoreDaemon)
    spec = RunSpec(coordinator="core-daemon", scenario=get_scenario("light"), failure_rate=0.2)
    result = asyncio.run(measure(spec, coordinator))
    assert result.coordinator == "core-daemon"
    assert result.invariant_holds and result.in_flight == 0
    assert result.published == 100 and result.delivered + result.dead_lettered == 100
    assert result.retried > 0
    assert result.latency_samples >= result.delivered  # measured in this process
    assert result.coordinator_stats["daemon_cpu_s"] > 0
    assert coordinator.report is not None and coordinator.report["invariant_holds"]
    assert coordinator.pid is None and coordinator.path is not None
    assert not os.path.exists(os.path.dirname(coordinator.path))


def test_the_daemon_process_collects_garbage_rarely_under_load() -> None:
    # tune_gc: with the default thresholds these 3,000 events cost dozens of collections.
    async def main() -> None:
        scenario = dataclasses.replace(get_scenario("medium"), events=3_000)
        coordinator = CoreDaemon()
        await coordinator.start()
        try:
            for service in build_services(scenario):
                await coordinator.register(service)
            before = (await coordinator.fetch_stats()).extra["daemon_gc_collections"]
            await publish_unpaced(coordinator, generate_events(scenario))
            await coordinator.settle(WAIT_S)
            after = await coordinator.fetch_stats()
            assert after.delivered == 3_000
            assert after.extra["daemon_gc_collections"] - before <= 3
        finally:
            await coordinator.stop()

    run(main())


def test_core_daemon_from_the_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crucible", "run", *_DAEMON_LIGHT, "--json"],
        capture_output=True,
        text=True,
        env=daemon_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["coordinator"] == "core-daemon" and data["delivered"] == 100


def test_core_daemon_says_why_it_cannot_start() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        CoreDaemon(max_queue=0)

    async def broken() -> None:
        coordinator = CoreDaemon(python="/bin/false", start_timeout_s=WAIT_S)
        try:
            await coordinator.start()
        finally:
            await coordinator.stop()

    with pytest.raises(Exception, match="exited with status 1"):
        asyncio.run(broken())


def test_core_daemon_confirm_mode_returns_the_daemons_verdicts() -> None:
    async def main() -> None:
        coordinator = CoreDaemon(confirm=True)
        await coordinator.start()
        try:
            await coordinator.register(Remote("file-0"))
            assert await coordinator.publish(ev(1)) is None
            verdict = await coordinator.publish(ev(1))  # same id: a duplicate
            assert verdict is not None and verdict.reason.value == "duplicate"
            verdict = await coordinator.publish(ev(2, Kind.RECORD_CREATED))  # no database role
            assert verdict is not None and verdict.reason.value == "no_route"
            await coordinator.settle(WAIT_S)
            stats = coordinator.stats()
            assert (stats.published, stats.delivered, stats.rejected) == (3, 1, 2)
        finally:
            await coordinator.stop()
        assert coordinator.stats().balanced

    asyncio.run(main())


def test_until_is_bounded() -> None:
    async def main() -> None:
        with pytest.raises(AssertionError):
            await until(lambda: False, timeout_s=0.05)

    asyncio.run(main())
