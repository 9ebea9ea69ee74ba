"""What every result file records about where and on what it was measured.

The machine (CPU model, core count, memory, OS, Python) and a stable fingerprint of it, the
git commit and dirty flag of the measured source tree, the load average, and whether CPU
affinity can be set. Everything here is read from the system; nothing is configured.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass

import psutil

__all__ = [
    "GitState",
    "MachineInfo",
    "cpu_model",
    "default_affinity",
    "git_state",
    "load_average",
    "machine_info",
]

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineInfo:
    """The facts a measurement depends on; ``fingerprint`` is a stable hash of them."""

    cpu_model: str
    cpu_count: int
    memory_total_bytes: int
    os: str
    python_implementation: str
    python_version: str

    @property
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the fields, in a canonical JSON form."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, str | int]:
        out: dict[str, str | int] = dict(asdict(self))
        out["fingerprint"] = self.fingerprint
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class GitState:
    """Commit and dirty flag of a source tree; ``commit`` is "unknown" outside git."""

    commit: str
    dirty: bool

    @property
    def short(self) -> str:
        return self.commit[:10] if self.commit != UNKNOWN else UNKNOWN


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def machine_info() -> MachineInfo:
    return MachineInfo(
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 0,
        memory_total_bytes=int(psutil.virtual_memory().total),
        os=f"{platform.system()} {platform.release()}",
        python_implementation=platform.python_implementation(),
        python_version=platform.python_version(),
    )


def git_state(root: str | os.PathLike[str]) -> GitState:
    """HEAD of the git work tree at ``root`` and whether it differs from HEAD (tracked
    changes or untracked, non-ignored files: both change what is measured)."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", os.fspath(root), *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None:
        return GitState(commit=UNKNOWN, dirty=True)
    status = git("status", "--porcelain", "--untracked-files=normal")
    return GitState(commit=head.strip(), dirty=status is None or bool(status.strip()))


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (psutil emulates them where the OS has none)."""
    one, five, fifteen = psutil.getloadavg()
    return (float(one), float(five), float(fifteen))


def default_affinity() -> str | None:
    """The CPU list to pin benchmark workers to, as pyperf's ``--affinity`` takes it.

    None when this process cannot set its affinity (not supported, not permitted) or may
    use a single CPU only. Otherwise the last allowed CPU: the first is where the kernel
    and other processes tend to run, and the orchestrator itself stays unpinned.
    """
    if not hasattr(psutil.Process, "cpu_affinity"):
        return None
    try:
        proc = psutil.Process()
        allowed = list(proc.cpu_affinity() or [])
        if len(allowed) < 2:
            return None
        proc.cpu_affinity(allowed)  # setting what we have proves we may set it
    except (OSError, psutil.Error, ValueError, AttributeError):
        return None
    return str(allowed[-1])


def python_description() -> str:
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
