"""Inline SVG charts for the HTML report: pure functions from plain data to SVG text.

Every chart is a standalone ``<svg>`` element (no scripts, no external references) whose
text is XML-escaped here, so it can be embedded in an autoescaped page as trusted markup.
Figures are formatted by :mod:`perf.report.format`, as in the reports' text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from perf.report.format import format_value

__all__ = [
    "LatencyRow",
    "RatioRow",
    "Series",
    "color_for",
    "latency_chart",
    "line_chart",
    "nice_ticks",
    "ratio_chart",
]

FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
_PALETTE = {"data": "#d95f02", "core": "#1b9e77", "reference": "#7570b3"}
_CYCLE = ("#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#666666")
_VERDICT_COLOR = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}
_MAX_LABEL_CHARS = 48


def color_for(name: str, index: int = 0) -> str:
    """The colour of a coordinator (fixed for data, core and reference) or of series
    ``index`` otherwise."""
    return _PALETTE.get(name, _CYCLE[index % len(_CYCLE)])


def _compact(value: float) -> str:
    size = abs(value)
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def _tick_label(value: float, unit: str) -> str:
    """Axis tick text: short, the unit named once in the axis title where it is long."""
    if unit == "ratio":
        return f"{value:g}"
    if unit == "pct":
        return f"{value:g} %"
    if unit in ("eps", "count", ""):
        return _compact(value)
    if unit == "bytes":
        for factor, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= factor:
                return f"{value / factor:g} {name}"
        return f"{value:g} B"
    return format_value(value, unit)


def _byte_scale(high: float) -> float:
    for factor in (2**30, 2**20, 2**10):
        if abs(high) >= factor:
            return float(factor)
    return 1.0


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 x 10**k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    decades = [10.0**k for k in range(first, last + 1)]
    ticks = [t for t in decades if low <= t <= high]
    if len(ticks) < 3:
        extra = [m * t for t in decades for m in (2.0, 5.0)]
        ticks = sorted({*ticks, *(t for t in extra if low <= t <= high)})
    return ticks or [low, high]


@dataclass(frozen=True, slots=True)
class _Axis:
    low: float
    high: float
    start: float  # pixel of low
    end: float  # pixel of high
    log: bool = False
    unit: str = ""

    def __call__(self, value: float) -> float:
        if self.log:
            value = max(value, self.low)
            span = math.log10(self.high) - math.log10(self.low)
            frac = (math.log10(value) - math.log10(self.low)) / span if span else 0.5
        else:
            span = self.high - self.low
            frac = (value - self.low) / span if span else 0.5
        return self.start + frac * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            return _log_ticks(self.low, self.high)
        if self.unit == "bytes":
            # round numbers of KiB / MiB / GiB, not of bytes
            scale = _byte_scale(max(abs(self.low), abs(self.high)))
            return [t * scale for t in nice_ticks(self.low / scale, self.high / scale)]
        return nice_ticks(self.low, self.high)


def _domain(values: Sequence[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(finite), max(finite)
    if log:
        if low == high:
            return low / 2, high * 2
        return low / 1.2, high * 1.2
    if low == high:
        delta = abs(low) * 0.1 or 1.0
        return low - delta, high + delta
    span = high - low
    return low - span * pad, high + span * pad


def _text(
    x: float, y: float, content: str, *, anchor: str = "start", size: int = 11, extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(content)}</text>"
    )


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} '
        f'style="{FONT}">',
        f"<title>{escape(title)}</title>",
        _text(8, 16, title, size=13, extra=' font-weight="600"'),
    ]


def _empty(title: str, message: str = "no data measured for this chart") -> str:
    parts = _open(480, 60, title)
    parts.append(_text(8, 42, message, extra=' fill="#666"'))
    parts.append("</svg>")
    return "\n".join(parts)


def _short(label: str) -> str:
    if len(label) <= _MAX_LABEL_CHARS:
        return label
    return "…" + label[-(_MAX_LABEL_CHARS - 1) :]


# --------------------------------------------------------------------------------------------
# Ratios with intervals and threshold bands
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RatioRow:
    """One comparison: ``ratio`` = head / base with its interval; the fail zone starts at
    ``1 + threshold`` (lower is better) or ``1 - threshold`` (higher is better)."""

    label: str
    ratio: float
    ci_low: float
    ci_high: float
    threshold_pct: float
    lower_is_better: bool
    verdict: str


def ratio_chart(rows: Sequence[RatioRow], *, title: str = "head / base ratio per benchmark") -> str:
    """A forest plot: per row the ratio (dot, coloured by verdict), its interval (whisker),
    the line at 1 (no change) and the threshold's fail zone (shaded red)."""
    if not rows:
        return _empty(title)
    row_h, top, label_w, width = 18, 44, 330, 820
    height = top + row_h * len(rows) + 34
    edges = [1.0]
    for r in rows:
        edges += [r.ci_low, r.ci_high, r.ratio]
        t = r.threshold_pct / 100.0
        edges.append(1.0 + t if r.lower_is_better else 1.0 - t)
    low, high = _domain(edges, log=False, pad=0.08)
    x = _Axis(low, high, label_w + 10, width - 20)
    parts = _open(width, height, title)
    bottom = top + row_h * len(rows)
    for tick in x.ticks():
        px = x(tick)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{bottom}" stroke="#eee"/>'
        )
        parts.append(_text(px, bottom + 14, _tick_label(tick, "ratio"), anchor="middle", size=10))
    one = x(1.0)
    for i, r in enumerate(rows):
        y = top + i * row_h
        mid = y + row_h / 2
        t = r.threshold_pct / 100.0
        if r.lower_is_better:
            z0, z1 = x(1.0 + t), x.end
        else:
            z0, z1 = x.start, x(1.0 - t)
        if z1 > z0:
            parts.append(
                f'<rect x="{z0:.1f}" y="{y + 2}" width="{z1 - z0:.1f}" height="{row_h - 4}" '
                'fill="#c62828" fill-opacity="0.10"/>'
            )
        color = _VERDICT_COLOR.get(r.verdict, "#555")
        lo, hi = sorted((x(r.ci_low), x(r.ci_high)))
        tip = (
            f"{r.label}: ratio {r.ratio:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}], "
            f"threshold {r.threshold_pct:g} %, {r.verdict}"
        )
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(_text(label_w, mid + 4, _short(r.label), anchor="end", size=10))
        parts.append(
            f'<line x1="{lo:.1f}" y1="{mid:.1f}" x2="{hi:.1f}" y2="{mid:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        for end in (lo, hi):
            parts.append(
                f'<line x1="{end:.1f}" y1="{mid - 4:.1f}" x2="{end:.1f}" y2="{mid + 4:.1f}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
        parts.append(f'<circle cx="{x(r.ratio):.1f}" cy="{mid:.1f}" r="3.5" fill="{color}"/></g>')
    parts.append(
        f'<line x1="{one:.1f}" y1="{top - 4}" x2="{one:.1f}" y2="{bottom}" stroke="#333" '
        'stroke-dasharray="3,3"/>'
    )
    parts.append(
        _text(
            x.end,
            top - 8,
            "dot: ratio · whisker: interval · red: beyond the threshold",
            anchor="end",
            size=10,
            extra=' fill="#666"',
        )
    )
    parts.append("</svg>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Latency distributions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyRow:
    """p50 / p95 / p99 latency (seconds) of one series (coordinator) in one group (case)."""

    group: str
    series: str
    p50_s: float
    p95_s: float
    p99_s: float


def latency_chart(rows: Sequence[LatencyRow], *, title: str = "latency p50 / p95 / p99") -> str:
    """Per group and series a bar from p50 to p99 on a log time axis, with markers at p50
    (circle), p95 (diamond) and p99 (square)."""
    usable = [r for r in rows if min(r.p50_s, r.p95_s, r.p99_s) > 0]
    if not usable:
        return _empty(title)
    row_h, top, label_w, width = 16, 48, 300, 820
    groups: list[str] = list(dict.fromkeys(r.group for r in usable))
    series_names = list(dict.fromkeys(r.series for r in usable))
    colors = {name: color_for(name, i) for i, name in enumerate(series_names)}
    n_rows = len(usable) + len(groups)
    height = top + row_h * n_rows + 34
    low, high = _domain([v for r in usable for v in (r.p50_s, r.p99_s)], log=True)
    x = _Axis(low, high, label_w + 10, width - 20, log=True)
    parts = _open(width, height, title)
    bottom = top + row_h * n_rows
    for tick in x.ticks():
        px = x(tick)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{bottom}" stroke="#eee"/>'
        )
        parts.append(_text(px, bottom + 14, _tick_label(tick, "s"), anchor="middle", size=10))
    legend_x = label_w + 10
    for name in series_names:
        parts.append(f'<rect x="{legend_x}" y="26" width="10" height="10" fill="{colors[name]}"/>')
        parts.append(_text(legend_x + 14, 35, name, size=10))
        legend_x += 20 + 7 * len(name)
    parts.append(
        _text(width - 20, 35, "● p50  ◆ p95  ■ p99", anchor="end", size=10, extra=' fill="#666"')
    )
    y = top
    for group in groups:
        parts.append(_text(8, y + 12, _short(group), size=11, extra=' font-weight="600"'))
        y += row_h
        for r in (r for r in usable if r.group == group):
            mid = y + row_h / 2
            c = colors[r.series]
            p50, p95, p99 = x(r.p50_s), x(r.p95_s), x(r.p99_s)
            tip = (
                f"{r.group} · {r.series}: p50 {format_value(r.p50_s, 's')}, "
                f"p95 {format_value(r.p95_s, 's')}, p99 {format_value(r.p99_s, 's')}"
            )
            parts.append(f"<g><title>{escape(tip)}</title>")
            parts.append(_text(label_w, mid + 4, _short(r.series), anchor="end", size=10))
            parts.append(
                f'<line x1="{p50:.1f}" y1="{mid:.1f}" x2="{p99:.1f}" y2="{mid:.1f}" '
                f'stroke="{c}" stroke-width="4" stroke-opacity="0.35"/>'
            )
            parts.append(f'<circle cx="{p50:.1f}" cy="{mid:.1f}" r="3.5" fill="{c}"/>')
            parts.append(
                f'<path d="M{p95:.1f},{mid - 4:.1f} L{p95 + 4:.1f},{mid:.1f} '
                f'L{p95:.1f},{mid + 4:.1f} L{p95 - 4:.1f},{mid:.1f} Z" fill="{c}"/>'
            )
            parts.append(
                f'<rect x="{p99 - 3.5:.1f}" y="{mid - 3.5:.1f}" width="7" height="7" '
                f'fill="{c}"/></g>'
            )
            y += row_h
    parts.append("</svg>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Line charts: scalability curves, RSS over time
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """A named line of ``(x, y)`` points; ``hollow[i]`` draws point i as an open marker
    (a failed sweep step, for example)."""

    name: str
    points: tuple[tuple[float, float], ...]
    hollow: tuple[bool, ...] = ()
    markers: bool = True


# The line chart's canvas: pixels of the plot's edges.
_LINE_WIDTH, _LINE_HEIGHT = 560, 330
_LEFT, _RIGHT, _TOP, _BOTTOM = 84, _LINE_WIDTH - 16, 54, _LINE_HEIGHT - 46


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_unit: str = "",
    y_unit: str = "",
    log_x: bool = False,
    log_y: bool = False,
    y_zero: bool = True,
    diagonal: bool = False,
    hlines: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines of ``series`` on shared axes, with a legend above the plot. ``y_zero`` starts a
    linear y axis at 0 when every value is positive; ``diagonal`` draws y = x (offered =
    achieved), ``hlines`` labelled horizontal reference lines (a latency bound)."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return _empty(title)
    xs = [p[0] for s in drawn for p in s.points]
    ys = [p[1] for s in drawn for p in s.points] + [v for v, _ in hlines]
    if diagonal:
        ys += xs
    x_lo, x_hi = _domain(xs, log_x)
    y_lo, y_hi = _domain(ys, log_y)
    if y_zero and not log_y and y_lo > 0 and min(ys) >= 0:
        y_lo = 0.0
    x = _Axis(x_lo, x_hi, _LEFT, _RIGHT, log=log_x, unit=x_unit)
    y = _Axis(y_lo, y_hi, _BOTTOM, _TOP, log=log_y, unit=y_unit)
    parts = _open(_LINE_WIDTH, _LINE_HEIGHT, title)
    parts += _line_frame(x, y, x_label, y_label)
    if diagonal:
        parts += _diagonal(x, y)
    parts += _hlines(y, hlines)
    legend_x = _LEFT + 6
    for i, s in enumerate(drawn):
        parts += _line(s, color_for(s.name, i), x, y, legend_x)
        legend_x += 22 + 7 * len(s.name)
    parts.append("</svg>")
    return "\n".join(parts)


def _line_frame(x: _Axis, y: _Axis, x_label: str, y_label: str) -> list[str]:
    """Grid lines, tick labels, the plot's border and the axis titles."""
    parts = []
    for tick in x.ticks():
        px = x(tick)
        parts.append(
            f'<line x1="{px:.1f}" y1="{_TOP}" x2="{px:.1f}" y2="{_BOTTOM}" stroke="#eee"/>'
        )
        parts.append(_text(px, _BOTTOM + 14, _tick_label(tick, x.unit), anchor="middle", size=10))
    for tick in y.ticks():
        py = y(tick)
        parts.append(
            f'<line x1="{_LEFT}" y1="{py:.1f}" x2="{_RIGHT}" y2="{py:.1f}" stroke="#eee"/>'
        )
        parts.append(_text(_LEFT - 4, py + 3, _tick_label(tick, y.unit), anchor="end", size=10))
    parts.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{_RIGHT - _LEFT}" height="{_BOTTOM - _TOP}" '
        'fill="none" stroke="#999"/>'
    )
    parts.append(_text((_LEFT + _RIGHT) / 2, _LINE_HEIGHT - 18, x_label, anchor="middle"))
    parts.append(
        f'<text x="12" y="{(_TOP + _BOTTOM) / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(_TOP + _BOTTOM) / 2:.1f})">{escape(y_label)}</text>'
    )
    return parts


def _diagonal(x: _Axis, y: _Axis) -> list[str]:
    """y = x where the two axes' ranges overlap."""
    lo, hi = max(x.low, y.low), min(x.high, y.high)
    if hi <= lo:
        return []
    return [
        f'<line x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" y2="{y(hi):.1f}" '
        'stroke="#999" stroke-dasharray="4,3"/>'
    ]


def _hlines(y: _Axis, hlines: Sequence[tuple[float, str]]) -> list[str]:
    parts = []
    for value, label in hlines:
        py = y(value)
        parts.append(
            f'<line x1="{_LEFT}" y1="{py:.1f}" x2="{_RIGHT}" y2="{py:.1f}" '
            'stroke="#c62828" stroke-dasharray="5,3"/>'
        )
        parts.append(
            _text(_RIGHT - 4, py - 4, label, anchor="end", size=10, extra=' fill="#c62828"')
        )
    return parts


def _line(s: Series, c: str, x: _Axis, y: _Axis, legend_x: int) -> list[str]:
    """One series: its path in x order, its markers, and its legend entry."""
    ordered = sorted(range(len(s.points)), key=lambda k: s.points[k][0])
    path = " ".join(
        f"{'M' if n == 0 else 'L'}{x(s.points[k][0]):.1f},{y(s.points[k][1]):.1f}"
        for n, k in enumerate(ordered)
    )
    parts = [
        f"<g><title>{escape(s.name)}</title>",
        f'<path d="{path}" fill="none" stroke="{c}" stroke-width="2"/>',
    ]
    if s.markers:
        for k, (px, py) in enumerate(s.points):
            hollow = k < len(s.hollow) and s.hollow[k]
            fill = "#fff" if hollow else c
            parts.append(
                f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{fill}" '
                f'stroke="{c}" stroke-width="1.5"/>'
            )
    parts.append("</g>")
    parts.append(f'<rect x="{legend_x}" y="{_TOP - 24}" width="10" height="10" fill="{c}"/>')
    parts.append(_text(legend_x + 14, _TOP - 15, s.name, size=10))
    return parts
