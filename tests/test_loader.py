from __future__ import annotations

import pytest

from crucible import CoordinatorError
from crucible._data import DataCoordinator
from crucible._loader import load_coordinator, resolve_factory
from crucible._reference import ReferenceCoordinator


def test_builtins() -> None:
    assert isinstance(load_coordinator("data"), DataCoordinator)
    assert isinstance(load_coordinator("reference"), ReferenceCoordinator)
    assert load_coordinator("core").name == "core"


def test_module_factory_with_options() -> None:
    coord = load_coordinator("crucible._reference:ReferenceCoordinator", max_event_bytes=5)
    assert isinstance(coord, ReferenceCoordinator) and coord.max_event_bytes == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("unknown", "unknown coordinator"),
        ("nosuchmodule:x", "cannot import"),
        ("crucible._reference:Missing", "no attribute"),
        ("crucible._reference:__all__", "not callable"),
        (":x", "not 'module:factory'"),
    ],
)
def test_bad_names_say_what_is_accepted(spec: str, message: str) -> None:
    with pytest.raises(CoordinatorError, match=message):
        resolve_factory(spec)


def test_object_without_the_protocol_is_refused() -> None:
    with pytest.raises(CoordinatorError, match="lacks"):
        load_coordinator("builtins:object")
