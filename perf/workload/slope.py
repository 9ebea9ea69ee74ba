"""The slope of a series with its confidence interval: how fast a workload's readings grow.

A pure statistic, used on both sides of the gate: the pyperf memory suite's leak runs report
their slopes (``perf.measure.memory``) and the leak gate judges the profiled settle cycles'
(``perf.decide.leakgate``). It sits below both stages so that measuring never imports the
stage that decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = ["SLOPE_CONFIDENCE", "SlopeEstimate", "linear_slope_ci"]

# The interval's level unless one is given (perf.decide.stats.DEFAULT_CONFIDENCE too).
SLOPE_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class SlopeEstimate:
    """An ordinary least-squares slope with its t-based confidence interval."""

    slope: float
    ci_low: float
    ci_high: float
    intercept: float
    stderr: float
    p_value: float
    n: int
    confidence: float


def linear_slope_ci(
    x: Sequence[float] | npt.NDArray[np.float64],
    y: Sequence[float] | npt.NDArray[np.float64],
    confidence: float = SLOPE_CONFIDENCE,
) -> SlopeEstimate:
    """Least-squares slope of ``y`` on ``x`` with a t-based interval, for leak detection.

    ``scipy.stats.linregress`` gives the slope and its standard error; the interval is
    ``slope +/- t(1 - (1 - confidence) / 2, n - 2) * stderr`` and ``p_value`` is the
    two-sided t-test of "slope = 0". Assumes a linear trend with independent residuals of
    constant variance, roughly normal (or n large). A leak shows as ``ci_low > 0`` with
    ``y`` as retained memory over ``x`` as iterations. Needs n >= 3 points, finite values
    and ``x`` not all equal; a constant ``y`` gives slope 0 with a zero-width interval.
    ``confidence`` must be in [0.5, 1).
    """
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    x_array = np.asarray(x, dtype=np.float64)
    y_array = np.asarray(y, dtype=np.float64)
    if x_array.ndim != 1 or x_array.shape != y_array.shape:
        raise ValueError(f"x and y must be flat and equally long: {x_array.shape}, {y_array.shape}")
    n = int(x_array.size)
    if n < 3:
        raise ValueError(f"a slope interval needs at least 3 points, got {n}")
    if not (np.all(np.isfinite(x_array)) and np.all(np.isfinite(y_array))):
        raise ValueError("x and y must be finite")
    if np.all(x_array == x_array[0]):
        raise ValueError("x values are all equal: the slope is undefined")
    if np.all(y_array == y_array[0]):
        return SlopeEstimate(
            slope=0.0,
            ci_low=0.0,
            ci_high=0.0,
            intercept=float(y_array[0]),
            stderr=0.0,
            p_value=1.0,
            n=n,
            confidence=confidence,
        )
    result = sps.linregress(x_array, y_array)
    slope = float(result.slope)
    stderr = float(result.stderr)
    t_quantile = float(sps.t.ppf(1.0 - (1.0 - confidence) / 2.0, n - 2))
    return SlopeEstimate(
        slope=slope,
        ci_low=slope - t_quantile * stderr,
        ci_high=slope + t_quantile * stderr,
        intercept=float(result.intercept),
        stderr=stderr,
        p_value=float(result.pvalue),
        n=n,
        confidence=confidence,
    )
