"""The Crucible CI performance gate: statistics, policy, verdicts and errors.

Names are re-exported lazily: a benchmark worker importing ``perf.<module>`` must not pay
for importing scipy (over a second on the CI machine) through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perf.decide.policy import (
        Check,
        Correction,
        Direction,
        MetricDirection,
        MetricFamily,
        Mode,
        Override,
        Policy,
        load_policy,
        parse_check,
    )
    from perf.decide.stats import (
        CIMethod,
        RatioEstimate,
        Significance,
        benjamini_hochberg,
        holm,
        min_detectable_change_pct,
        noise_floor_pct,
        paired_ratios,
        paired_test,
        ratio_ci_paired,
        ratio_ci_unpaired,
        unpaired_test,
    )
    from perf.decide.verdict import (
        Comparison,
        Verdict,
        compare,
        decide,
        exit_status,
        needs_more_samples,
        run_verdict,
    )
    from perf.errors import (
        BaselineError,
        ConfigError,
        ExitCode,
        GateError,
        OutputError,
        RefError,
        ResultError,
        exit_code,
    )
    from perf.workload.slope import SlopeEstimate, linear_slope_ci

_EXPORTS: dict[str, str] = {
    "BaselineError": "perf.errors",
    "ConfigError": "perf.errors",
    "ExitCode": "perf.errors",
    "GateError": "perf.errors",
    "OutputError": "perf.errors",
    "RefError": "perf.errors",
    "ResultError": "perf.errors",
    "exit_code": "perf.errors",
    "Check": "perf.decide.policy",
    "Correction": "perf.decide.policy",
    "Direction": "perf.decide.policy",
    "MetricDirection": "perf.decide.policy",
    "MetricFamily": "perf.decide.policy",
    "Mode": "perf.decide.policy",
    "Override": "perf.decide.policy",
    "Policy": "perf.decide.policy",
    "load_policy": "perf.decide.policy",
    "parse_check": "perf.decide.policy",
    "CIMethod": "perf.decide.stats",
    "RatioEstimate": "perf.decide.stats",
    "Significance": "perf.decide.stats",
    "SlopeEstimate": "perf.workload.slope",
    "benjamini_hochberg": "perf.decide.stats",
    "holm": "perf.decide.stats",
    "linear_slope_ci": "perf.workload.slope",
    "min_detectable_change_pct": "perf.decide.stats",
    "noise_floor_pct": "perf.decide.stats",
    "paired_ratios": "perf.decide.stats",
    "paired_test": "perf.decide.stats",
    "ratio_ci_paired": "perf.decide.stats",
    "ratio_ci_unpaired": "perf.decide.stats",
    "unpaired_test": "perf.decide.stats",
    "Comparison": "perf.decide.verdict",
    "Verdict": "perf.decide.verdict",
    "compare": "perf.decide.verdict",
    "decide": "perf.decide.verdict",
    "exit_status": "perf.decide.verdict",
    "needs_more_samples": "perf.decide.verdict",
    "run_verdict": "perf.decide.verdict",
}

__all__ = [
    "BaselineError",
    "CIMethod",
    "Check",
    "Comparison",
    "ConfigError",
    "Correction",
    "Direction",
    "ExitCode",
    "GateError",
    "MetricDirection",
    "MetricFamily",
    "Mode",
    "OutputError",
    "Override",
    "Policy",
    "RatioEstimate",
    "RefError",
    "ResultError",
    "Significance",
    "SlopeEstimate",
    "Verdict",
    "benjamini_hochberg",
    "compare",
    "decide",
    "exit_code",
    "exit_status",
    "holm",
    "linear_slope_ci",
    "load_policy",
    "min_detectable_change_pct",
    "needs_more_samples",
    "noise_floor_pct",
    "paired_ratios",
    "paired_test",
    "parse_check",
    "ratio_ci_paired",
    "ratio_ci_unpaired",
    "run_verdict",
    "unpaired_test",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
