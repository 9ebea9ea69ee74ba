"""Routing rules: filters on an event's category, kind, source and priority naming a target."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TypeVar

from crucible._events import Category, Kind, Priority, Source, SourceType
from crucible._protocol import DEFAULT_WIRING

__all__ = ["Rule", "default_rules", "match_targets"]

_T = TypeVar("_T")


def _frozen(name: str, values: AbstractSet[_T] | None, kind: type | tuple[type, ...]) -> None:
    if values is None:
        return
    if isinstance(values, str) or not isinstance(values, AbstractSet):
        raise ValueError(f"rule filter {name} must be a set or None, not {values!r}")
    if not values:
        raise ValueError(f"rule filter {name} is empty, so it would match nothing; use None")
    bad = [v for v in values if not isinstance(v, kind)]
    if bad:
        raise ValueError(f"rule filter {name} holds values of the wrong type: {bad!r}")


@dataclass(frozen=True, slots=True)
class Rule:
    """Send matching events to ``target``: a service name, or a role (one replica of it).

    A filter that is None matches anything; a set matches its members. ``min_priority``
    matches events at least that urgent (``Priority.HIGH`` matches CRITICAL and HIGH).
    An event's targets are the union of the targets of all rules that match it.
    """

    name: str
    target: str
    categories: AbstractSet[Category] | None = None
    kinds: AbstractSet[Kind] | None = None
    source_types: AbstractSet[SourceType] | None = None
    source_ids: AbstractSet[str] | None = None
    min_priority: Priority | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"rule name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.target, str) or not self.target:
            raise ValueError(f"rule {self.name!r}: target must be a non-empty string")
        _frozen("categories", self.categories, Category)
        _frozen("kinds", self.kinds, Kind)
        _frozen("source_types", self.source_types, SourceType)
        _frozen("source_ids", self.source_ids, str)
        if self.min_priority is not None and not isinstance(self.min_priority, Priority):
            raise ValueError(f"rule {self.name!r}: min_priority must be a Priority or None")
        # Frozen sets keep the rule hashable and immune to later mutation of the caller's set.
        for name in ("categories", "kinds", "source_types", "source_ids"):
            values = getattr(self, name)
            if values is not None and not isinstance(values, frozenset):
                object.__setattr__(self, name, frozenset(values))

    def matches(self, kind: Kind, source: Source, priority: Priority) -> bool:
        if self.categories is not None and kind.category not in self.categories:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.source_types is not None and source.type not in self.source_types:
            return False
        if self.source_ids is not None and source.id not in self.source_ids:
            return False
        # Lower Priority values are more urgent.
        return self.min_priority is None or priority <= self.min_priority


def default_rules() -> tuple[Rule, ...]:
    """One rule per (category, role) of ``DEFAULT_WIRING``, so CrucibleCore routes by default
    exactly like the DataCoordinator: each event to one replica of each wired role."""
    return tuple(
        Rule(f"default:{category.value}->{role}", role, categories=frozenset({category}))
        for category, roles in DEFAULT_WIRING.items()
        for role in roles
    )


def match_targets(
    rules: Iterable[Rule], kind: Kind, source: Source, priority: Priority
) -> tuple[str, ...]:
    """Targets of every matching rule, in rule order, each once."""
    return tuple(dict.fromkeys(r.target for r in rules if r.matches(kind, source, priority)))
