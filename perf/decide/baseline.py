"""Stored baselines: versioned JSON files under baselines/, written only by
``nox -s perf_baseline``.

Format history (``schema_version``):

- 1 (2026-11): samples per benchmark and metric from fresh-process rounds, the machine
  fingerprint, the calibration kernel's version and median time per round. Each sample
  was one measurement of the case.
- 2 (2026-11): ``sampling.unpaced_repeats``: each unpaced sample is the median of that
  many measurements in the round. A baseline is compared only with rounds sampled the same
  way (``check_sampling``); a version-1 file counts as one measurement per sample.

A file from a newer schema is refused, never guessed at. A baseline from another machine
is compared on calibrated values (time-like metrics scaled by the ratio of the two
machines' calibration figures) and the report says so; without a usable calibration figure
it is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perf.errors import BaselineError, OutputError
from perf.files import write_json
from perf.measure.meta import GitState, MachineInfo
from perf.paths import display_path
from perf.rundir import utc_stamp
from perf.workload.calibration import CALIBRATION_VERSION
from perf.workload.plan import UNPACED_REPEATS

__all__ = [
    "BASELINE_SCHEMA_VERSION",
    "Baseline",
    "baseline_document",
    "baseline_path",
    "check_python",
    "check_sampling",
    "load_baseline",
    "write_baseline",
]

BASELINE_SCHEMA_VERSION = 2
KIND = "crucible-perf-baseline"
FIX = "nox -s perf_baseline"
# Metrics whose values are wall-clock durations: judged only side by side, never against
# figures stored by another run (the machine's speed moves between runs).
TIME_LIKE_PREFIXES = ("time", "latency")

Samples = Mapping[str, Mapping[str, list[float]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    path: Path
    schema_version: int
    created_utc: str
    commit: str
    dirty: bool
    set_name: str
    python: str
    machine: Mapping[str, Any]
    calibration_version: int
    calibration_s: tuple[float, ...]
    samples: Samples
    unpaced_repeats: int = 1

    @property
    def fingerprint(self) -> str:
        return str(self.machine.get("fingerprint", ""))


def baseline_path(root: Path, set_name: str) -> Path:
    return root / "baselines" / f"{set_name}.json"


def _fail(path: Path, problem: str) -> BaselineError:
    return BaselineError(problem, display_path(path), f"refresh it with {FIX}")


def _require(data: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    if key not in data:
        raise _fail(path, f"baseline has no {key!r} field")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, f"baseline field {key!r} is not a {kind.__name__}")
    return value


def _samples(raw: Any, path: Path) -> dict[str, dict[str, list[float]]]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "baseline holds no samples")
    out: dict[str, dict[str, list[float]]] = {}
    for bench, metrics in raw.items():
        if not isinstance(metrics, dict) or not metrics:
            raise _fail(path, f"benchmark {bench!r} has no metrics")
        out[bench] = {}
        for metric, values in metrics.items():
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
                or not all(math.isfinite(v) and v > 0 for v in values)
            ):
                raise _fail(path, f"{bench} / {metric}: samples must be positive finite numbers")
            out[bench][metric] = [float(v) for v in values]
    return out


def load_baseline(path: Path) -> Baseline:
    """Read and check a baseline file; BaselineError names the file and the fix."""
    if not path.exists():
        raise BaselineError(
            "no stored baseline", display_path(path), f"create it on this machine with {FIX}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"baseline is unreadable or truncated ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise _fail(path, f"not a Crucible baseline (kind is not {KIND!r})")
    version = _require(data, "schema_version", int, path)
    if version > BASELINE_SCHEMA_VERSION:
        raise BaselineError(
            f"baseline schema {version} is newer than this gate reads ({BASELINE_SCHEMA_VERSION})",
            display_path(path),
            f"update the gate, or rewrite the baseline with this version: {FIX}",
        )
    if version < 1:
        raise _fail(path, f"baseline schema {version} is not a known version")
    calibration = _require(data, "calibration", dict, path)
    cal_values = calibration.get("seconds")
    if (
        not isinstance(cal_values, list)
        or not cal_values
        or not all(isinstance(v, int | float) and v > 0 for v in cal_values)
    ):
        raise _fail(path, "baseline has no usable calibration figure")
    repeats = 1
    if version >= 2:
        sampling = _require(data, "sampling", dict, path)
        repeats = sampling.get("unpaced_repeats")
        if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
            raise _fail(path, "baseline field 'sampling.unpaced_repeats' is not an integer >= 1")
    return Baseline(
        path=path,
        schema_version=version,
        created_utc=_require(data, "created_utc", str, path),
        commit=_require(data, "commit", str, path),
        dirty=bool(data.get("dirty", False)),
        set_name=_require(data, "set", str, path),
        python=_require(data, "python", str, path),
        machine=_require(data, "machine", dict, path),
        calibration_version=int(calibration.get("version", 0)),
        calibration_s=tuple(float(v) for v in cal_values),
        samples=_samples(data.get("samples"), path),
        unpaced_repeats=repeats,
    )


def check_sampling(baseline: Baseline, unpaced_repeats: int) -> None:
    """Refuse a baseline whose samples were taken another way than this gate's: a median
    of 5 measurements and a single measurement spread differently, so neither the ratio
    nor its interval would mean what the report says."""
    if baseline.unpaced_repeats != unpaced_repeats:
        raise BaselineError(
            f"baseline samples are medians of {baseline.unpaced_repeats} measurement(s) per "
            f"round, this gate takes medians of {unpaced_repeats}",
            display_path(baseline.path),
            f"refresh it with {FIX}",
        )


def check_python(baseline: Baseline, python: str) -> None:
    """Refuse a baseline taken under another Python version: its allocation figures (and
    any count) differ with the interpreter, so no comparison would mean what it says."""
    if baseline.python != python:
        raise BaselineError(
            f"baseline was taken with Python {baseline.python}, this run uses {python}",
            display_path(baseline.path),
            f"take a baseline with this Python: {FIX}",
        )


def baseline_document(
    *,
    head: GitState,
    machine: MachineInfo,
    set_name: str,
    samples: Mapping[tuple[str, str], list[float]],
    calibration_s: Sequence[float],
    unpaced_repeats: int = UNPACED_REPEATS,
) -> dict[str, Any]:
    """The document ``write_baseline`` stores for the head's rounds: its ``samples`` per
    ``(benchmark, metric)``, the calibration kernel's time of each round, and how each
    unpaced sample was taken (the median of ``unpaced_repeats`` measurements)."""
    nested: dict[str, dict[str, list[float]]] = {}
    for (bench, metric), values in samples.items():
        nested.setdefault(bench, {})[metric] = values
    return {
        "created_utc": utc_stamp(),
        "commit": head.commit,
        "dirty": head.dirty,
        "set": set_name,
        "python": machine.python_version,
        "machine": machine.as_dict(),
        "calibration": {"version": CALIBRATION_VERSION, "seconds": calibration_s},
        "sampling": {"unpaced_repeats": unpaced_repeats},
        "samples": nested,
    }


def write_baseline(path: Path, document: Mapping[str, Any]) -> None:
    """Write atomically: a reader never sees half a file, a failure leaves the old one."""
    data = {"kind": KIND, "schema_version": BASELINE_SCHEMA_VERSION, **document}
    _samples(data.get("samples"), path)
    try:
        write_json(path, data)
    except OSError as exc:
        raise OutputError(
            f"cannot write the baseline ({exc})", display_path(path), "make the folder writable"
        ) from None
