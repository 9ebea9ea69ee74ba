"""Option types shared by the commands of ``python -m perf`` (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse

__all__ = ["csv_list", "positive_int"]


def csv_list(value: str) -> list[str]:
    """``a, b,c`` -> ``["a", "b", "c"]``; at least one name."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one name")
    return items


def positive_int(value: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return number
