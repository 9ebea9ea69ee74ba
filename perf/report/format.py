"""How figures read, in one place: the analysis's findings, the charts and the templates'
filters all format through these functions, so a figure reads the same everywhere.

Every formatter takes None (and NaN or infinity) as "no figure" and prints "n/a".
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence

__all__ = [
    "format_change_pct",
    "format_duration",
    "format_factor",
    "format_loadavg",
    "format_pct",
    "format_pvalue",
    "format_ratio",
    "format_value",
    "markdown_code",
    "markdown_text",
    "median",
]

NA = "n/a"


def median(values: Sequence[float]) -> float:
    """The median of ``values`` as a float; ``values`` must not be empty (callers with
    nothing to summarise say "no figure" themselves)."""
    return float(statistics.median(values))


def _sig(value: float, digits: int = 3) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:,.{decimals}f}"


def format_value(value: float | None, unit: str) -> str:
    """A figure with its unit, for people: ``unit`` is "s" (seconds), "bytes", "eps"
    (events per second), "pct", "count", "ratio" or anything else (plain number).
    None reads "n/a"."""
    if value is None or not math.isfinite(value):
        return NA
    size = abs(value)
    if unit == "s":
        if size == 0:
            return "0 s"
        if size < 1e-3:
            return f"{_sig(value * 1e6)} µs"
        if size < 1:
            return f"{_sig(value * 1e3)} ms"
        return f"{_sig(value)} s"
    if unit == "bytes":
        for factor, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if size >= factor:
                return f"{_sig(value / factor)} {name}"
        return f"{value:,.0f} B"
    if unit == "eps":
        return f"{value:,.0f} events/s" if size >= 100 else f"{_sig(value)} events/s"
    if unit == "pct":
        return f"{value:.2f} %" if size < 10 else f"{value:.1f} %"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() or size >= 100 else _sig(value)
    if unit == "ratio":
        return f"{value:.4f}"
    return _sig(value, 4)


def format_pct(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """A percentage with ``digits`` decimals; ``signed`` prints the sign of a change
    (``+5.00 %``)."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{value:+.{digits}f} %" if signed else f"{value:.{digits}f} %"


def format_change_pct(value: float | None, digits: int = 2) -> str:
    """A change in percent, signed (``+5.00 %``, ``-1.2 %``)."""
    return format_pct(value, digits, signed=True)


def format_ratio(value: float | None) -> str:
    """A ratio such as head / base, to four decimals."""
    return format_value(value, "ratio")


def format_pvalue(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NA
    if value < 1e-4:
        return "< 0.0001"
    return f"{value:.4f}" if value < 0.1 else f"{value:.3f}"


def format_duration(seconds: float) -> str:
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def format_loadavg(values: Sequence[float] | None) -> str:
    """A 1 / 5 / 15 minute load average."""
    if values is None:
        return NA
    return " / ".join(f"{v:.2f}" for v in values)


def format_factor(value: float | None) -> str:
    """A scalability factor (actual / expected improvement), to two decimals."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{value:.2f}"


_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "[": "\\[",
        "]": "\\]",
        "*": "\\*",
        "_": "\\_",
        "~": "\\~",
        "`": "\\`",
        "#": "\\#",
        # An entity shows "@" but is no mention: report text never pings a person or team.
        "@": "&#64;",
        "\n": " ",
        "\r": " ",
    }
)
# GitHub links bare addresses; an entity in the scheme's colon or after "www" stops that.
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp|mailto)(:)|\b(www)(\.)")


def markdown_text(value: object) -> str:
    """Text safe in a markdown table cell or line: no table breaks, no HTML, no links, no
    emphasis, no mentions of people or teams (``@name``), no autolinked addresses."""
    text = str(value).translate(_MD_SPECIAL)
    return _AUTOLINK.sub(lambda m: f"{m[1]}&#58;" if m[1] else f"{m[3]}&#46;", text)


def markdown_code(value: object) -> str:
    """Text as a markdown code span, safe inside a table cell."""
    text = str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return f"`{text}`"
