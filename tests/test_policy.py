"""Tests of perf.decide.policy: the threshold grammar, defaults, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.decide.policy import (
    DEFAULT_THRESHOLD_PCT,
    Check,
    Correction,
    Direction,
    MetricFamily,
    Mode,
    Policy,
    load_policy,
    parse_check,
)
from perf.errors import ConfigError

FULL = """
[project]
name = "x"

[tool.crucible-perf]
alpha = 0.01
correction = "bh"
confidence = 0.9
min_rounds = 12
max_rounds = 40
checks = ["latency_*:12%", "queue_depth:5%"]
directions = { queue_depth = "lower", "goodput*" = "higher" }

[tool.crucible-perf.benchmarks]
"daemon_performance.heavy*" = ["time:3%", "rss:20%"]
"*" = ["time:2.5%"]

[tool.crucible-perf.baseline]
alpha = 0.02
checks = ["time:10%"]

[tool.crucible-perf.baseline.benchmarks]
"daemon_performance.heavy*" = ["time:12%"]
"""

# --- the grammar ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "pct"),
    [
        ("time:2%", "time", 2.0),
        (" latency_p99 : 10.5 % ", "latency_p99", 10.5),
        ("latency_*:10%", "latency_*", 10.0),
        ("rss:10%", "rss", 10.0),
    ],
)
def test_parse_check(text: str, metric: str, pct: float) -> None:
    check = parse_check(text)
    assert check == Check(metric=metric, threshold_pct=pct)
    assert check.matches(metric.replace("*", "p95"))


@pytest.mark.parametrize(
    "text", ["time:2", "time=2%", ":2%", "time:0%", "time:100%", "time:-1%", "time:x%", "time"]
)
def test_parse_check_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_check(text)
    assert "checks" in str(info.value)
    assert '"time:2%"' in info.value.fix


def test_check_prints_in_its_own_grammar() -> None:
    assert str(parse_check("time:2.5%")) == "time:2.5%"


# --- defaults -------------------------------------------------------------------------------


def test_defaults_without_a_table() -> None:
    policy = load_policy('[project]\nname = "x"\n')
    assert policy == Policy(source="<pyproject text>")
    assert (policy.alpha, policy.correction, policy.confidence) == (0.05, Correction.HOLM, 0.95)
    assert (policy.min_rounds, policy.max_rounds) == (10, 70)


@pytest.mark.parametrize(
    ("metric", "pr_pct", "baseline_pct", "direction"),
    [
        ("time", 2.0, 8.0, Direction.LOWER_IS_BETTER),
        ("throughput_eps", 2.0, 8.0, Direction.HIGHER_IS_BETTER),
        ("latency_p50_s", 2.0, 8.0, Direction.LOWER_IS_BETTER),
        ("latency_p99_s", 10.0, 15.0, Direction.LOWER_IS_BETTER),
        ("rss_bytes", 10.0, 10.0, Direction.LOWER_IS_BETTER),
        ("peak_memory_bytes", 10.0, 10.0, Direction.LOWER_IS_BETTER),
        ("success_rate_pct", 2.0, 5.0, Direction.HIGHER_IS_BETTER),
        ("mem_efficiency_pct", 10.0, 10.0, Direction.HIGHER_IS_BETTER),
        ("memory_uss", 10.0, 10.0, Direction.LOWER_IS_BETTER),
        ("retained_memory", 10.0, 10.0, Direction.LOWER_IS_BETTER),
        ("allocated", 10.0, 10.0, Direction.LOWER_IS_BETTER),
        ("cpu_pct", 10.0, 15.0, Direction.LOWER_IS_BETTER),
        ("throughput_max_eps", 10.0, 15.0, Direction.HIGHER_IS_BETTER),
        ("knee_services", 10.0, 15.0, Direction.HIGHER_IS_BETTER),
        ("services_max", 10.0, 15.0, Direction.HIGHER_IS_BETTER),
        ("payload_max_bytes", 10.0, 15.0, Direction.HIGHER_IS_BETTER),
        ("latency_max", 10.0, 15.0, Direction.LOWER_IS_BETTER),
    ],
)
def test_builtin_defaults_per_mode(
    metric: str, pr_pct: float, baseline_pct: float, direction: Direction
) -> None:
    pr = load_policy("", Mode.PR)
    baseline = load_policy("", "baseline")
    assert pr.threshold_pct("any", metric) == pr_pct
    assert baseline.threshold_pct("any", metric) == baseline_pct
    assert pr.direction(metric) is direction


def test_baseline_mode_time_threshold_clears_the_measured_run_to_run_spread() -> None:
    # Separate runs of identical code differ by 3-6 % on the CI machine.
    assert DEFAULT_THRESHOLD_PCT[Mode.BASELINE][MetricFamily.TIME] > 6.0
    assert DEFAULT_THRESHOLD_PCT[Mode.PR][MetricFamily.TIME] == 2.0


def test_unknown_metric_is_a_config_error_not_a_skip() -> None:
    policy = load_policy("")
    with pytest.raises(ConfigError, match="queue_depth") as info:
        policy.threshold_pct("bench", "queue_depth")
    assert "checks" in info.value.fix
    with pytest.raises(ConfigError, match="direction") as info:
        policy.direction("queue_depth")
    assert "[tool.crucible-perf.directions]" in info.value.fix


# --- a full table ---------------------------------------------------------------------------


def test_full_table_in_pr_mode() -> None:
    policy = load_policy(FULL, "pr")
    assert policy.mode is Mode.PR
    assert (policy.alpha, policy.correction, policy.confidence) == (0.01, Correction.BH, 0.9)
    assert (policy.min_rounds, policy.max_rounds) == (12, 40)
    assert policy.threshold_pct("daemon_performance.heavy_core", "time") == 3.0
    assert policy.threshold_pct("daemon_performance.heavy_core", "rss") == 20.0
    # The first pattern has no latency check, "*" has none either: the checks list applies.
    assert policy.threshold_pct("daemon_performance.heavy_core", "latency_p99") == 12.0
    assert policy.threshold_pct("load_testing.burst", "time") == 2.5
    assert policy.threshold_pct("load_testing.burst", "rss") == 10.0
    assert policy.threshold_pct("x", "queue_depth") == 5.0
    assert policy.direction("queue_depth") is Direction.LOWER_IS_BETTER
    assert policy.direction("goodput_eps") is Direction.HIGHER_IS_BETTER


def test_full_table_in_baseline_mode_layers_the_mode_table_first() -> None:
    policy = load_policy(FULL, Mode.BASELINE)
    assert policy.alpha == 0.02  # from the mode table
    assert policy.confidence == 0.9  # from the top level
    assert policy.threshold_pct("daemon_performance.heavy_core", "time") == 12.0
    assert policy.threshold_pct("daemon_performance.heavy_core", "rss") == 20.0
    assert policy.threshold_pct("load_testing.burst", "time") == 2.5  # top-level "*" override
    assert policy.threshold_pct("load_testing.burst", "latency_p99") == 12.0


def test_mode_checks_override_top_level_checks() -> None:
    text = """
[tool.crucible-perf]
checks = ["time:3%"]
[tool.crucible-perf.baseline]
checks = ["time:9%"]
"""
    assert load_policy(text, "pr").threshold_pct("b", "time") == 3.0
    assert load_policy(text, "baseline").threshold_pct("b", "time") == 9.0


def test_load_from_a_path(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.crucible-perf]\ncorrection = "bh"\n', encoding="utf-8")
    assert load_policy(pyproject).correction is Correction.BH
    assert load_policy(str(pyproject)).source == str(pyproject)


def test_the_projects_own_pyproject_loads() -> None:
    root = Path(__file__).resolve().parent.parent
    for mode in Mode:
        assert load_policy(root / "pyproject.toml", mode).mode is mode


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "accepted"),
    [
        ("colour = 1", "colour", "accepts"),
        ("alpha = 0", "alpha", "at most 0.5"),
        ("alpha = 0.6", "alpha", "at most 0.5"),
        ('alpha = "0.05"', "alpha", "a number"),
        ("alpha = true", "alpha", "a number"),
        ('correction = "bonferroni"', "correction", "'holm' or 'bh'"),
        ("confidence = 1.0", "confidence", "below 1"),
        ("min_rounds = 1", "min_rounds", "at least 2"),
        ("min_rounds = 2.5", "min_rounds", "whole number"),
        ("min_rounds = 20\nmax_rounds = 10", "max_rounds", "at least min_rounds"),
        ('checks = "time:2"', "checks", '"time:2%"'),
        ("checks = [2]", "checks", "list of strings"),
        ('checks = ["time:2%", "time:3%"]', "checks", "one check per metric"),
        ('checks = ["queue:2%"]', "queue", 'queue = "lower"'),
        ('directions = { foo = "down" }', "directions.foo", "'lower', 'higher'"),
        ('benchmarks = { a = "time:x" }', "benchmarks", '"time:2%"'),
        ("[tool.crucible-perf.pr]\ndirections = {}", "directions", "accepts"),
        ("[tool.crucible-perf.baseline]\nmax_round = 3", "max_round", "accepts"),
    ],
)
def test_bad_policy_names_the_key_and_what_is_accepted(body: str, key: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(f"[tool.crucible-perf]\n{body}\n")
    text = str(info.value)
    assert key in text
    assert accepted in text
    assert info.value.subject == "<pyproject text>"


def test_scenario_tables_are_left_to_the_workload_module() -> None:
    text = '[tool.crucible-perf.scenario]\nbase = "medium"\nname = "m2"\n'
    assert load_policy(text) == Policy(source="<pyproject text>")
    with pytest.raises(ConfigError, match="scenario"):
        load_policy('[tool.crucible-perf]\nscenario = "medium"\n')


def test_a_bad_baseline_table_is_caught_in_pr_mode_too() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        load_policy("[tool.crucible-perf.baseline]\nalpha = 2\n", "pr")


def test_an_unquoted_dotted_benchmark_pattern_gets_a_quoting_hint() -> None:
    text = '[tool.crucible-perf.benchmarks]\ndaemon_performance.heavy = ["time:3%"]\n'
    with pytest.raises(ConfigError, match="quoted key"):
        load_policy(text)


def test_invalid_toml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy("[tool.crucible-perf\nalpha = ")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_policy(missing)
    assert info.value.subject == str(missing)
    with pytest.raises(ConfigError, match="mode"):
        load_policy("", "nightly")


def test_policy_objects_validate_themselves() -> None:
    with pytest.raises(ConfigError, match="alpha"):
        Policy(alpha=0.0)
    with pytest.raises(ConfigError, match="max_rounds"):
        Policy(min_rounds=10, max_rounds=5)
    with pytest.raises(ConfigError, match="mode"):
        Policy(mode="nightly")  # type: ignore[arg-type]
    assert Policy(mode="baseline").threshold_pct("b", "time") == 8.0  # type: ignore[arg-type]
