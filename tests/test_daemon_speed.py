"""The daemon speed check: its summaries, its verdicts against the targets, and one real
(tiny) run of both coordinators."""

from __future__ import annotations

import json

import pytest

from perf.tools import daemon_speed
from perf.tools.daemon_speed import STEADY_P99_TARGET_S, THROUGHPUT_TARGET_EPS, summarize, targets

_CORE_EPS = [80_000.0, 90_000.0, 85_000.0]


def _figures(daemon_eps: list[float], daemon_p99: list[float]) -> dict[str, dict[str, list[float]]]:
    return {
        "core": {
            "throughput_eps": _CORE_EPS,
            "ratio_to_first": [1.0, 1.0, 1.0],
            "steady_p99_s": [0.0004, 0.0005, 0.0006],
        },
        "core-daemon": {
            "throughput_eps": daemon_eps,
            "ratio_to_first": [e / c for e, c in zip(daemon_eps, _CORE_EPS, strict=True)],
            "steady_p99_s": daemon_p99,
        },
    }


def test_summary_is_median_and_range_per_figure() -> None:
    s = summarize(_figures([20_000.0, 30_000.0, 25_000.0], [0.001, 0.003, 0.002]))
    eps = s["core-daemon"]["throughput_eps"]
    assert (eps["median"], eps["min"], eps["max"], eps["n"]) == (25_000.0, 20_000.0, 30_000.0, 3)
    assert s["core-daemon"]["steady_p99_s"]["median"] == 0.002
    assert s["core"]["throughput_eps"]["median"] == 85_000.0


@pytest.mark.parametrize(
    ("eps", "p99", "met"),
    [
        # The median decides, not the best round.
        ([39_000.0, 45_000.0, 39_999.0], [0.001] * 3, (False, True)),
        ([40_000.0, 41_000.0, 10_000.0], [0.001] * 3, (True, True)),
        ([50_000.0] * 3, [0.0019, 0.0021, 0.0025], (True, False)),
        ([50_000.0] * 3, [0.001, 0.0019, 0.003], (True, True)),
    ],
)
def test_targets_follow_the_medians(
    eps: list[float], p99: list[float], met: tuple[bool, bool]
) -> None:
    checks = targets(summarize(_figures(eps, p99)))
    assert tuple(c["met"] for c in checks) == met
    assert f"{THROUGHPUT_TARGET_EPS:,.0f}" in checks[0]["target"]
    assert f"{STEADY_P99_TARGET_S * 1e3:g} ms" in checks[1]["target"]


def test_render_says_not_met() -> None:
    summary = summarize(_figures([20_000.0] * 3, [0.001] * 3))
    text = daemon_speed.render(summary, targets(summary), 3)
    assert "NOT met (measured 20,000 events/s)" in text
    assert "0.24 x core" in text  # 20,000 over 85,000 (median of the ratios)


def test_a_real_run_reports_both_coordinators(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon_speed.main(["--rounds", "1", "--events", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rounds"] == 1
    for c in ("core", "core-daemon"):
        figures = out["summary"][c]
        assert figures["throughput_eps"]["n"] == 1
        assert figures["throughput_eps"]["median"] > 0
        assert 0 < figures["steady_p99_s"]["median"] < 5.0
    eps = out["summary"]["core-daemon"]["throughput_eps"]["median"]
    assert out["targets"][0]["met"] is (eps >= THROUGHPUT_TARGET_EPS)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        daemon_speed.main(["--rounds", "0"])
    assert exc.value.code == 2
