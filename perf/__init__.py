"""The Crucible CI performance gate: statistics, policy, verdicts and errors.

Names are re-exported lazily: a benchmark worker importing ``perf.<module>`` must not pay
for importing scipy (over a second on the CI machine) through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from perf.policy import (
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
    from perf.stats import (
        CIMethod,
        RatioEstimate,
        Significance,
        SlopeEstimate,
        benjamini_hochberg,
        holm,
        linear_slope_ci,
        min_detectable_change_pct,
        noise_floor_pct,
        paired_ratios,
        paired_test,
        ratio_ci_paired,
        ratio_ci_unpaired,
        unpaired_test,
    )
    from perf.verdict import (
        Comparison,
        Verdict,
        compare,
        decide,
        exit_status,
        needs_more_samples,
        run_verdict,
    )

_EXPORTS: dict[str, str] = {
    "BaselineError": "perf.errors",
    "ConfigError": "perf.errors",
    "ExitCode": "perf.errors",
    "GateError": "perf.errors",
    "OutputError": "perf.errors",
    "RefError": "perf.errors",
    "ResultError": "perf.errors",
    "exit_code": "perf.errors",
    "Check": "perf.policy",
    "Correction": "perf.policy",
    "Direction": "perf.policy",
    "MetricDirection": "perf.policy",
    "MetricFamily": "perf.policy",
    "Mode": "perf.policy",
    "Override": "perf.policy",
    "Policy": "perf.policy",
    "load_policy": "perf.policy",
    "parse_check": "perf.policy",
    "CIMethod": "perf.stats",
    "RatioEstimate": "perf.stats",
    "Significance": "perf.stats",
    "SlopeEstimate": "perf.stats",
    "benjamini_hochberg": "perf.stats",
    "holm": "perf.stats",
    "linear_slope_ci": "perf.stats",
    "min_detectable_change_pct": "perf.stats",
    "noise_floor_pct": "perf.stats",
    "paired_ratios": "perf.stats",
    "paired_test": "perf.stats",
    "ratio_ci_paired": "perf.stats",
    "ratio_ci_unpaired": "perf.stats",
    "unpaired_test": "perf.stats",
    "Comparison": "perf.verdict",
    "Verdict": "perf.verdict",
    "compare": "perf.verdict",
    "decide": "perf.verdict",
    "exit_status": "perf.verdict",
    "needs_more_samples": "perf.verdict",
    "run_verdict": "perf.verdict",
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
