"""Formatting: one reading of each figure, shared by the analysis, charts and templates."""

from __future__ import annotations

import pytest

from perf.report.format import (
    format_change_pct,
    format_duration,
    format_factor,
    format_loadavg,
    format_pct,
    format_pvalue,
    format_ratio,
    format_value,
    median,
)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.00025, "s", "250 µs"),
        (0.0123, "s", "12.3 ms"),
        (2.5, "s", "2.50 s"),
        (40 * 2**20, "bytes", "40.0 MiB"),
        (1536, "bytes", "1.50 KiB"),
        (512, "bytes", "512 B"),
        (-2048, "bytes", "-2.00 KiB"),
        (123456.7, "eps", "123,457 events/s"),
        (12.5, "eps", "12.5 events/s"),
        (5.5, "pct", "5.50 %"),
        (55.55, "pct", "55.5 %"),
        (42.0, "count", "42"),
        (1.03456, "ratio", "1.0346"),
        (None, "s", "n/a"),
        (float("nan"), "eps", "n/a"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_percentages_signed_and_unsigned() -> None:
    assert format_pct(5.0) == "5.00 %"
    assert format_pct(5.0, 1) == "5.0 %"
    assert format_change_pct(5.0) == "+5.00 %"
    assert format_change_pct(-1.25, 1) == "-1.2 %"
    assert format_pct(None) == format_change_pct(float("inf")) == "n/a"


def test_ratios_p_values_factors_durations_and_loads() -> None:
    assert format_ratio(1.03456) == "1.0346"
    assert format_pvalue(0.00001) == "< 0.0001"
    assert format_pvalue(0.05) == "0.0500"
    assert format_pvalue(0.5) == "0.500"
    assert format_factor(0.456) == "0.46"
    assert format_duration(372.0) == "6 min 12 s"
    assert format_duration(3720.0) == "1 h 2 min"
    assert format_duration(42.0) == "42 s"
    assert format_loadavg((1.2, 1.1, 0.9)) == "1.20 / 1.10 / 0.90"
    assert format_loadavg(None) == "n/a"


def test_median_is_a_float() -> None:
    assert median([3, 1, 2]) == 2.0 and isinstance(median([3, 1, 2]), float)
    assert median([1.0, 2.0]) == 1.5
