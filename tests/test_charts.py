"""Inline SVG charts: well-formed XML whatever the labels, readable ticks, stable colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from perf.report.charts import (
    LatencyRow,
    RatioRow,
    Series,
    color_for,
    latency_chart,
    line_chart,
    nice_ticks,
    ratio_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
NASTY = 'bench.<script>alert("x")</script> & co'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{SVG}text"))


def ratio_rows() -> list[RatioRow]:
    return [
        RatioRow(
            label=NASTY,
            ratio=1.06,
            ci_low=1.05,
            ci_high=1.07,
            threshold_pct=2.0,
            lower_is_better=True,
            verdict="fail",
        ),
        RatioRow(
            label="daemon_performance.medium.core · throughput_max_eps",
            ratio=0.99,
            ci_low=0.97,
            ci_high=1.01,
            threshold_pct=10.0,
            lower_is_better=False,
            verdict="pass",
        ),
    ]


def test_ratio_chart_is_well_formed_and_escapes_labels() -> None:
    svg = ratio_chart(ratio_rows())
    root = parse(svg)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert len(root.findall(f".//{SVG}circle")) == 2
    # one fail zone per row
    assert len(root.findall(f".//{SVG}rect")) == 2
    assert "alert" in texts(root)


def test_latency_chart_is_well_formed() -> None:
    rows = [
        LatencyRow(group="medium", series=c, p50_s=1e-4 * k, p95_s=5e-4 * k, p99_s=2e-3 * k)
        for k, c in enumerate(("data", "core", NASTY), 1)
    ]
    root = parse(latency_chart(rows))
    assert len(root.findall(f".//{SVG}circle")) == 3
    assert "ms" in texts(root) or "µs" in texts(root)


def test_line_chart_with_log_axes_diagonal_and_bound() -> None:
    series = [
        Series(
            name="core",
            points=((1000.0, 990.0), (2000.0, 1900.0), (4000.0, 2500.0)),
            hollow=(False, False, True),
        ),
        Series(name=NASTY, points=((1000.0, 1000.0),)),
    ]
    svg = line_chart(
        series,
        title="achieved <vs> offered",
        x_label="offered",
        y_label="achieved",
        x_unit="eps",
        y_unit="eps",
        diagonal=True,
        log_x=True,
        hlines=[(3000.0, "bound & limit")],
    )
    root = parse(svg)
    assert len(root.findall(f".//{SVG}path")) == 2
    hollow = [c for c in root.iter(f"{SVG}circle") if c.get("fill") == "#fff"]
    assert len(hollow) == 1
    assert "bound & limit" in texts(root)


@pytest.mark.parametrize(
    "svg",
    [
        ratio_chart([]),
        latency_chart([]),
        line_chart([], title="t", x_label="x", y_label="y"),
        line_chart([Series(name="a", points=())], title="t", x_label="x", y_label="y"),
        latency_chart([LatencyRow(group="g", series="s", p50_s=0.0, p95_s=0.0, p99_s=0.0)]),
    ],
)
def test_empty_charts_say_so(svg: str) -> None:
    assert "no data" in texts(parse(svg))


def test_single_point_and_constant_values_do_not_divide_by_zero() -> None:
    svg = line_chart(
        [Series(name="x", points=((5.0, 3.0), (5.0, 3.0)))],
        title="flat",
        x_label="x",
        y_label="y",
        log_y=True,
    )
    parse(svg)
    one = RatioRow(
        label="a",
        ratio=1.0,
        ci_low=1.0,
        ci_high=1.0,
        threshold_pct=2.0,
        lower_is_better=True,
        verdict="pass",
    )
    parse(ratio_chart([one]))


def test_nice_ticks() -> None:
    assert nice_ticks(0.0, 10.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    ticks = nice_ticks(0.95, 1.07)
    assert ticks == pytest.approx([0.95, 1.0, 1.05])
    assert nice_ticks(1.0, 1.0) == [1.0]


def test_colors_are_stable_for_known_coordinators() -> None:
    assert color_for("core", 5) == color_for("core", 0)
    assert color_for("other", 0) != color_for("other", 1)
